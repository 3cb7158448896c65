// Grad-CAM explanations of the ResNet18 classifier's predictions (Selvaraju et al., ICCV 2017).
#pragma once

#include <cstdint>
#include <string>
#include <ostream>
#include <vector>

#include "core/context.h"
#include "jobs/anchor.h"
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

/// What `cuvae gradcam` explains and where it writes (one of index, image or vae + anchor).
struct GradcamJob {
  std::string classifier;             ///< model.safetensors written by train-classifier
  std::string out = "runs/gradcam";   ///< output folder
  std::string layer = "layer4";       ///< layer1..layer4
  std::string dataset, data;          ///< data set of `index` (default: the classifier's) and its folder
  DeviceRequest device = DeviceRequest::Auto;
  std::string vae;                    ///< explain class-anchored samples of this VAE (with anchor)
  std::vector<int64_t> index;         ///< test-set images to explain
  std::vector<std::string> image;     ///< PNG files to explain
  int klass = -1;                     ///< class whose score is explained (−1: each image's prediction)
  int anchor = -1;                    ///< class of the anchored samples
  int64_t n = 8;                      ///< anchored samples
  double noise = 0.5;                 ///< noise scale of the anchored samples
  int components = kDefaultAnchorComponents;  ///< mixture components per class of the anchored samples
  uint64_t seed = 0;                  ///< seed of the anchored samples
  int scale = 8;                      ///< PNG enlargement
  bool save_maps = false;             ///< also write maps.safetensors (cam [N, H, W], index [N])
};

/// 1..4 for "layer1".."layer4"; throws cuvae::Error naming --layer otherwise.
int gradcam_layer_index(const std::string& s);

/// The `cuvae gradcam` job: loads the classifier (and the data set, PNG files or VAE), explains
/// each image with gradcam_explain, writes gradcam_<tag>.png per image, gradcam.json and, with
/// save_maps, maps.safetensors into o.out, and logs each file written. Throws cuvae::Error on
/// bad input (nothing is written then) or I/O failure.
void gradcam_job(const GradcamJob& o, std::ostream& log);

}  // namespace cuvae
