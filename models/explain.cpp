#include "models/explain.h"

#include <algorithm>
#include <cmath>

#include "host/check.h"
#include "host/image.h"
#include "kernels/gradcam.h"
#include "models/classifier_trainer.h"

namespace cuvae {

GradcamResult gradcam_explain(Context& ctx, ResNet18& model, const Tensor& x, int layer, int klass) {
  const ResNetConfig& c = model.config();
  CUVAE_CHECK(layer >= 1 && layer <= 4, "Grad-CAM: layer must be layer1..layer4, got " << layer);
  CUVAE_REQUIRE(klass < c.classes, "--class " << klass << " is out of range: the classifier has classes 0.." << c.classes - 1);
  const int64_t n = x.dim(0), K = c.classes;
  GradcamResult r;
  r.n = n;
  r.height = c.height;
  r.width = c.width;
  const std::vector<float> probs = classify(ctx, model, x);  // evaluation-mode forward
  std::vector<float> onehot(static_cast<size_t>(n * K), 0.0f);
  for (int64_t i = 0; i < n; ++i) {
    const float* p = probs.data() + i * K;
    const int64_t pred = std::max_element(p, p + K) - p;
    const int64_t t = klass >= 0 ? klass : pred;
    r.predicted.push_back(pred);
    r.predicted_prob.push_back(p[pred]);
    r.target.push_back(t);
    r.target_prob.push_back(p[t]);
    onehot[static_cast<size_t>(i * K + t)] = 1.0f;  // ∂y^c/∂logits
  }
  model.dlogits().copy_from(Tensor::from_vector(onehot, {n, K}), ctx.stream());
  model.backward(ctx);
  Tensor heat({n, c.height, c.width}, ctx.device());
  gradcam(ctx, model.layer_output(layer), model.layer_grad(layer), c.height, c.width, heat);
  r.heat = heat.to_vector();
  return r;
}

void write_gradcam_png(const std::string& path, const float* image, int c, int h, int w, const float* heat,
                       const std::string& caption, int scale) {
  CUVAE_REQUIRE(scale >= 1 && scale <= 64, "--scale must be in [1, 64], got " << scale);
  std::vector<float> over(static_cast<size_t>(3) * h * w);
  overlay_heatmap(image, c, h, w, heat, 0.5f, over.data());
  const int tile_w = w * scale, tile_h = h * scale, gap = 4, text_h = 7 * std::max(1, scale / 4) + 6;
  const int W = 2 * tile_w + gap, H = tile_h + text_h;
  std::vector<float> img(static_cast<size_t>(3) * H * W, 1.0f);
  const int64_t hw = static_cast<int64_t>(h) * w;
  for (int y = 0; y < tile_h; ++y)
    for (int x = 0; x < tile_w; ++x) {
      const int64_t p = static_cast<int64_t>(y / scale) * w + x / scale;
      for (int k = 0; k < 3; ++k) {
        const float v = c == 3 ? image[k * hw + p] : image[p];
        img[static_cast<size_t>(k) * H * W + static_cast<size_t>(y) * W + x] = std::clamp(v, 0.0f, 1.0f);
        img[static_cast<size_t>(k) * H * W + static_cast<size_t>(y) * W + tile_w + gap + x] = over[static_cast<size_t>(k * hw + p)];
      }
    }
  const float black[3] = {0.0f, 0.0f, 0.0f};
  draw_text(img.data(), H, W, 2, tile_h + 3, caption, black, std::max(1, scale / 4));
  write_png_grid(path, img.data(), 1, 3, H, W, 1, 0, 1);
}

}  // namespace cuvae
