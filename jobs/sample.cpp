#include "jobs/sample.h"

#include <algorithm>
#include <cmath>

#include "core/check.h"
#include "io/dataset.h"
#include "io/fs.h"
#include "io/image.h"
#include "jobs/analysis/latent.h"
#include "jobs/anchor.h"
#include "jobs/batching.h"
#include "kernels/reparameterize.h"
#include "models/checkpoint.h"

namespace cuvae {

SampleResult sample_images(const SampleOptions& opt, std::ostream& log) {
  if (opt.n < 1 || opt.n > 10000) CUVAE_FAIL(option("n") << " must be in [1, 10000], got " << opt.n);
  if (opt.scale < 1 || opt.scale > 16) CUVAE_FAIL(option("scale") << " must be in [1, 16], got " << opt.scale);
  if (opt.noise >= 0 ? !std::isfinite(opt.noise) : opt.noise != -1)
    CUVAE_FAIL(option("noise") << " must be a finite number >= 0, got " << opt.noise);
  Context ctx(opt.device);
  std::unique_ptr<ConvVAE> vae = load_vae(opt.vae, ctx.device(), true);
  const VaeConfig& c = vae->config();
  const std::string dataset = !opt.dataset.empty() ? opt.dataset : c.dataset.empty() ? "mnist" : c.dataset;
  const int64_t K = c.is_cvae() ? c.classes : static_cast<int64_t>(class_names(dataset).size());
  if (opt.klass >= K || opt.klass < -1)
    CUVAE_FAIL(option("class") << " " << opt.klass << " is out of range for " << dataset << " (" << K << " classes: 0.." << K - 1 << ")");
  if (!opt.style_index.empty() && !c.is_cvae())
    CUVAE_FAIL(option("style_index") << " needs a conditional VAE (train-vae --model cvae); " << opt.vae << " is unconditional");
  if (!opt.style_index.empty() && opt.klass >= 0) CUVAE_FAIL(option("style_index") << " and " << option("class") << " exclude each other");
  const int C = static_cast<int>(c.channels), H = static_cast<int>(c.height), W = static_cast<int>(c.width);
  const int64_t D = c.latent, P = c.pixels();
  SampleResult r;
  r.path = opt.out + "/samples.png";
  std::vector<float> images;
  if (!opt.style_index.empty()) {
    const Dataset test = load_dataset(dataset, opt.data_dir.empty() ? default_data_dir(dataset) : opt.data_dir, false);
    for (int64_t i : opt.style_index)
      if (i < 0 || i >= test.n)
        CUVAE_FAIL(option("style_index") << " " << i << " is out of range for the " << dataset << " test split (0.." << test.n - 1 << ")");
    if (test.c != c.channels || test.h != c.height || test.w != c.width)
      CUVAE_FAIL("data set '" << dataset << "' has images of another size than " << opt.vae << " makes");
    r.mode = "style";
    r.cols = K + 1;
    const std::vector<float> originals = images_of_rows(ctx, test, opt.style_index);
    for (size_t s = 0; s < opt.style_index.size(); ++s) {
      const int64_t i = opt.style_index[s];
      const std::vector<float> x(originals.begin() + static_cast<int64_t>(s) * P,
                                 originals.begin() + static_cast<int64_t>(s + 1) * P);
      Tensor xt = Tensor::from_vector(x, {1, c.channels, c.height, c.width}, ctx.device());
      IntBuffer y(1, ctx.device());
      y.upload({static_cast<int32_t>(test.labels[static_cast<size_t>(i)])});
      vae->encode(ctx, xt, &y);
      const std::vector<float> mu = vae->mu().to_vector();
      std::vector<float> z;
      std::vector<int32_t> labels;
      for (int64_t k = 0; k < K; ++k) {
        z.insert(z.end(), mu.begin(), mu.end());
        labels.push_back(static_cast<int32_t>(k));
      }
      const std::vector<float> dec = decode_to_host(ctx, *vae, z, K, &labels);
      images.insert(images.end(), x.begin(), x.end());
      images.insert(images.end(), dec.begin(), dec.end());
    }
    r.images = static_cast<int64_t>(opt.style_index.size()) * (K + 1);
  } else if (c.is_cvae()) {
    const double s = opt.noise >= 0 ? opt.noise : 1.0;
    const int64_t rows = opt.klass >= 0 ? 1 : K, per = opt.n;
    std::vector<int32_t> labels;
    for (int64_t k = 0; k < rows; ++k)
      for (int64_t i = 0; i < per; ++i) labels.push_back(static_cast<int32_t>(opt.klass >= 0 ? opt.klass : k));
    const int64_t n = rows * per;
    Tensor zt({n, D}, ctx.device());
    sample_normal(ctx, zt, opt.seed, 0x5a3b1e10ull);
    std::vector<float> z = zt.to_vector();
    for (float& v : z) v = static_cast<float>(v * s);
    images = decode_to_host(ctx, *vae, z, n, &labels);
    r.mode = "conditional";
    r.images = n;
    r.cols = opt.klass >= 0 ? std::min<int64_t>(8, n) : per;  // without --class: one row per class
  } else if (opt.klass >= 0) {
    const double s = opt.noise >= 0 ? opt.noise : 0.5;
    const AnchorStats stats = anchor_stats_for(ctx, *vae, opt.vae, opt.data_dir, log, opt.progress, opt.components);
    const std::vector<float> z = sample_anchored(stats, opt.klass, opt.n, s, opt.seed);
    images = decode_to_host(ctx, *vae, z, opt.n);
    r.mode = "anchored";
    r.images = opt.n;
    r.cols = std::min<int64_t>(8, opt.n);
  } else {
    const double s = opt.noise >= 0 ? opt.noise : 1.0;
    Tensor zt({opt.n, D}, ctx.device());
    sample_normal(ctx, zt, opt.seed, 0x5a3b1e10ull);
    std::vector<float> z = zt.to_vector();
    for (float& v : z) v = static_cast<float>(v * s);
    images = decode_to_host(ctx, *vae, z, opt.n);
    r.mode = "prior";
    r.images = opt.n;
    r.cols = std::min<int64_t>(8, opt.n);
  }
  ensure_dir(opt.out);
  write_png_grid(r.path, images.data(), r.images, C, H, W, static_cast<int>(r.cols), 2, opt.scale);
  log << "wrote " << r.path << " (" << r.images << " images, " << r.mode << ")\n";
  return r;
}

}  // namespace cuvae
