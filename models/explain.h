// Grad-CAM explanations of the ResNet18 classifier's predictions (Selvaraju et al., ICCV 2017).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "host/context.h"
#include "models/resnet18.h"

namespace cuvae {

/// Grad-CAM maps and the predictions they explain, on the host.
struct GradcamResult {
  int64_t n = 0, height = 0, width = 0;
  std::vector<float> heat;             ///< [n, H, W] in [0, 1]
  std::vector<int64_t> target;         ///< [n] the class whose score was explained
  std::vector<int64_t> predicted;      ///< [n] argmax class
  std::vector<float> target_prob;      ///< [n] softmax probability of target
  std::vector<float> predicted_prob;   ///< [n] softmax probability of predicted (confidence)
};

/// Grad-CAM of layer `layer` (1..4; 4 = layer4, the usual choice) for images x [n, C, H, W]
/// (on the model's device): evaluation-mode forward, gradient of the target class's logit y^c
/// (klass, or each image's predicted class when klass < 0) back to the layer's output, then the
/// fused Grad-CAM kernel (kernels/gradcam.h). Throws cuvae::Error when klass ≥ K or layer is not
/// 1..4.
GradcamResult gradcam_explain(Context& ctx, ResNet18& model, const Tensor& x, int layer, int klass);

/// Writes a PNG of one explained image: the image and the Grad-CAM overlay side by side, each
/// enlarged `scale` times, above a caption (e.g. "pred 7 (98.2%)"). image [c, h, w] in [0, 1],
/// heat [h, w]. Throws cuvae::Error naming `path` when it cannot be written.
void write_gradcam_png(const std::string& path, const float* image, int c, int h, int w, const float* heat,
                       const std::string& caption, int scale);

}  // namespace cuvae
