#include "jobs/anchor_job.h"

#include <vector>

#include "core/check.h"
#include "io/dataset.h"
#include "io/fs.h"
#include "io/image.h"
#include "jobs/anchor.h"
#include "models/checkpoint.h"

namespace cuvae {

AnchorJobResult anchor_job(const AnchorJob& job, std::ostream& log) {
  Context ctx(job.device);
  auto vae = load_vae(job.vae, ctx.device());
  const std::string dataset = vae->config().dataset.empty() ? "mnist" : vae->config().dataset;
  const std::vector<std::string> names = class_names(dataset);
  const int classes = static_cast<int>(names.size());
  CUVAE_REQUIRE(job.klass >= 0 && job.klass < classes,  // before the class statistics are computed
                option("class") << " " << job.klass << " is out of range: expected a class in 0.." << classes - 1);
  const AnchorStats stats = anchor_stats_for(ctx, *vae, job.vae, job.data, log, job.progress, job.components);
  const std::vector<float> z = sample_anchored(stats, job.klass, job.n, job.noise, job.seed);
  Tensor images = vae->decode_images(ctx, z, job.n);
  ensure_dir(job.out);
  AnchorJobResult r;
  r.path = job.out + "/anchor_class" + std::to_string(job.klass) + ".png";
  write_png_grid(r.path, images, job.cols, 2, job.scale);
  r.class_name = names[static_cast<size_t>(job.klass)];
  return r;
}

}  // namespace cuvae
