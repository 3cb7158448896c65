#include "jobs/explain.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <ostream>

#include <nlohmann/json.hpp>

#include "core/check.h"
#include "io/dataset.h"
#include "io/fs.h"
#include "io/image.h"
#include "io/safetensors.h"
#include "jobs/anchor.h"
#include "jobs/batching.h"
#include "jobs/classifier_trainer.h"
#include "kernels/gradcam.h"
#include "models/checkpoint.h"

namespace cuvae {

GradcamResult gradcam_explain(Context& ctx, ResNet18& model, const Tensor& x, int layer, int klass) {
  const ResNetConfig& c = model.config();
  CUVAE_CHECK(layer >= 1 && layer <= 4, "Grad-CAM: layer must be layer1..layer4, got " << layer);
  CUVAE_REQUIRE(klass < c.classes, option("class") << " " << klass << " is out of range: the classifier has classes 0.." << c.classes - 1);
  const int64_t n = x.dim(0), K = c.classes;
  GradcamResult r;
  r.n = n;
  r.height = c.height;
  r.width = c.width;
  const std::vector<float> probs = model.classify(ctx, x);  // evaluation-mode forward
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
  CUVAE_REQUIRE(scale >= 1 && scale <= 64, option("scale") << " must be in [1, 64], got " << scale);
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

namespace {

std::string pct(double v) {
  char b[32];
  std::snprintf(b, sizeof b, "%.1f%%", 100.0 * v);
  return b;
}

}  // namespace

int gradcam_layer_index(const std::string& s) {
  if (s == "layer1") return 1;
  if (s == "layer2") return 2;
  if (s == "layer3") return 3;
  if (s == "layer4") return 4;
  CUVAE_FAIL(option("layer") << " must be layer1, layer2, layer3 or layer4, got '" << s << "'");
}

void gradcam_job(const GradcamJob& o, std::ostream& log) {
  if (o.index.empty() && o.image.empty() && o.vae.empty())
    CUVAE_FAIL("gradcam: give the images to explain with " << option("index") << ", " << option("image") << " or " << option("vae") << "/" << option("anchor"));
  const int layer = gradcam_layer_index(o.layer);
  Context ctx(o.device);
  auto model = load_resnet(o.classifier, ctx.device(), o.dataset);
  const ResNetConfig& rc = model->config();
  if (o.klass >= rc.classes || o.klass < -1)
    CUVAE_FAIL(option("class") << " " << o.klass << " is out of range: the classifier has classes 0.." << rc.classes - 1);
  const std::string ds = !o.dataset.empty() ? o.dataset : (rc.dataset.empty() ? "mnist" : rc.dataset);
  const int64_t P = rc.channels * rc.height * rc.width;
  std::vector<float> pixels;
  std::vector<std::string> tags;
  std::vector<int64_t> truth;
  if (!o.index.empty()) {
    Dataset test = load_dataset(ds, o.data.empty() ? default_data_dir(ds) : o.data, false);
    if (test.c != rc.channels || test.h != rc.height || test.w != rc.width)
      CUVAE_FAIL("data set '" << ds << "' has " << test.c << "x" << test.h << "x" << test.w << " images; the classifier expects "
                              << rc.channels << "x" << rc.height << "x" << rc.width);
    for (int64_t i : o.index)
      if (i < 0 || i >= test.n)
        CUVAE_FAIL(option("index") << " " << i << " is out of range: the " << ds << " test set has " << test.n << " images");
    pixels = images_of_rows(ctx, test, o.index);
    for (int64_t i : o.index) {
      tags.push_back("test" + std::to_string(i));
      truth.push_back(test.labels[static_cast<size_t>(i)]);
    }
  } else if (!o.image.empty()) {
    for (const std::string& f : o.image) {
      std::vector<float> v = read_png(f, static_cast<int>(rc.channels), static_cast<int>(rc.height), static_cast<int>(rc.width));
      pixels.insert(pixels.end(), v.begin(), v.end());
      std::string stem = f.substr(f.find_last_of('/') + 1);
      if (stem.size() > 4) stem = stem.substr(0, stem.size() - 4);
      tags.push_back(stem);
      truth.push_back(-1);
    }
  } else {
    auto v = load_vae(o.vae, ctx.device());
    const VaeConfig& vc = v->config();
    if (vc.channels != rc.channels || vc.height != rc.height || vc.width != rc.width)
      CUVAE_FAIL(o.vae << " makes " << vc.channels << "x" << vc.height << "x" << vc.width << " images; " << o.classifier
                        << " classifies " << rc.channels << "x" << rc.height << "x" << rc.width);
    CUVAE_REQUIRE(o.anchor >= 0 && o.anchor < rc.classes,
                option("anchor") << " " << o.anchor << " is out of range: expected a class in 0.." << rc.classes - 1);
    AnchorStats s = anchor_stats_for(ctx, *v, o.vae, o.data, log, true, o.components);
    Tensor gen = v->decode_images(ctx, sample_anchored(s, o.anchor, o.n, o.noise, o.seed), o.n);
    pixels = gen.to_vector();
    for (int64_t i = 0; i < o.n; ++i) {
      tags.push_back("anchor" + std::to_string(o.anchor) + "_" + std::to_string(i));
      truth.push_back(o.anchor);
    }
  }
  const int64_t n = static_cast<int64_t>(tags.size());
  Tensor x = Tensor::from_vector(pixels, {n, rc.channels, rc.height, rc.width}, ctx.device());
  GradcamResult r = gradcam_explain(ctx, *model, x, layer, o.klass);
  const std::vector<std::string> names = class_names(ds);
  ensure_dir(o.out);
  nlohmann::json list = nlohmann::json::array();
  for (int64_t i = 0; i < n; ++i) {
    const std::string path = o.out + "/gradcam_" + tags[static_cast<size_t>(i)] + ".png";
    std::string caption = "pred " + names[static_cast<size_t>(r.predicted[i] % 10)] + " " + pct(r.predicted_prob[i]);
    if (o.klass >= 0) caption += ", cam of " + names[static_cast<size_t>(o.klass % 10)];
    write_gradcam_png(path, pixels.data() + i * P, static_cast<int>(rc.channels), static_cast<int>(rc.height),
                      static_cast<int>(rc.width), r.heat.data() + i * rc.height * rc.width, caption, o.scale);
    nlohmann::json e = {{"image", tags[static_cast<size_t>(i)]}, {"png", path}, {"predicted", r.predicted[i]},
                        {"confidence", r.predicted_prob[i]}, {"explained_class", r.target[i]},
                        {"explained_probability", r.target_prob[i]}, {"layer", o.layer}};
    if (truth[static_cast<size_t>(i)] >= 0) e["label"] = truth[static_cast<size_t>(i)];
    list.push_back(e);
    log << "wrote " << path << "  (predicted " << r.predicted[i] << " '" << names[static_cast<size_t>(r.predicted[i] % 10)]
              << "' " << pct(r.predicted_prob[i]) << ")\n";
  }
  write_file_atomic(o.out + "/gradcam.json", list.dump(2) + "\n");
  log << "wrote " << o.out << "/gradcam.json\n";
  if (o.save_maps) {
    std::vector<int64_t> index(static_cast<size_t>(n));
    for (int64_t i = 0; i < n; ++i) index[static_cast<size_t>(i)] = o.index.empty() ? i : o.index[static_cast<size_t>(i)];
    SafetensorsWriter w;
    w.add_f32("cam", {n, rc.height, rc.width}, r.heat);
    w.add_i64("index", {n}, index);
    w.set_metadata("layer", o.layer);
    w.write(o.out + "/maps.safetensors");
    log << "wrote " << o.out << "/maps.safetensors\n";
  }
}

}  // namespace cuvae
