#include "jobs/analysis/latent_jobs.h"

#include <chrono>
#include <cstdio>
#include <memory>
#include <nlohmann/json.hpp>
#include <utility>

#include "core/check.h"
#include "io/dataset.h"
#include "io/gif.h"
#include "io/plot.h"
#include "jobs/analysis/latent_io.h"
#include "jobs/anchor.h"
#include "models/checkpoint.h"

namespace cuvae {

namespace {

/// A latent-space job's VAE on its device, and the data set that goes with it.
struct LoadedVae {
  explicit LoadedVae(const LatentJobCommon& c)
      : ctx(c.device), vae(load_vae(c.vae, ctx.device())), data(c.data) {
    const std::string& own = vae->config().dataset;
    dataset = !c.dataset.empty() ? c.dataset : own.empty() ? "mnist" : own;
  }
  /// The training (`train`) or test split of the data set.
  Dataset split(bool train) const {
    return load_dataset(dataset, data.empty() ? default_data_dir(dataset) : data, train);
  }

  Context ctx;
  std::unique_ptr<ConvVAE> vae;
  std::string dataset;  ///< --dataset, else the one the VAE was trained on (mnist when it does not say)
  std::string data;     ///< --data (empty: the data set's default folder)
};

/// Class pairs "A:B" as numbers. Only the narrowing to int is checked here; pairs_from_classes
/// checks the classes against the data set.
std::vector<std::pair<int, int>> parse_class_pairs(const std::vector<std::string>& texts) {
  std::vector<std::pair<int, int>> pairs;
  for (const std::string& s : texts) {
    auto [a, b] = parse_pair(s, "classes");
    if (a > 1000000 || b > 1000000) CUVAE_FAIL(option("classes") << " " << s << " is out of range");
    pairs.emplace_back(static_cast<int>(a), static_cast<int>(b));
  }
  return pairs;
}

/// The traversal `job` asks for, checked against the VAE's `latent` dimensions (before the test
/// set is encoded).
TraverseOptions traverse_options(const TraverseJob& job, int64_t latent) {
  TraverseOptions opt;
  opt.dims = parse_dims(job.dims, latent);
  opt.range = job.range;
  opt.steps = job.steps;
  opt.validate(latent);
  return opt;
}

/// The class statistics a traversal from class K's mean needs (null for another base). K is
/// checked against the data set before they are computed.
std::unique_ptr<AnchorStats> class_stats_for_base(LoadedVae& m, const Dataset& test, const TraverseBase& base,
                                                  const LatentJobCommon& common, std::ostream& log) {
  if (base.kind != TraverseBase::Class) return nullptr;
  if (base.arg >= test.num_classes)
    CUVAE_FAIL(option("base") << " class:" << base.arg << " is out of range: expected a class in 0.." << test.num_classes - 1);
  return std::make_unique<AnchorStats>(anchor_stats_for(m.ctx, *m.vae, common.vae, common.data, log, common.progress, 0));
}

/// "active units: A of D (...)", the summary of a traversal.
std::string active_units_summary(const LatentDimStats& stats, int64_t latent, int64_t test_images) {
  return "active units: " + std::to_string(stats.active_units) + " of " + std::to_string(latent) +
         " (Cov_x(E_q[z_d]) > 0.01 over " + std::to_string(test_images) + " test images)";
}

/// The images `split` names: test, train, or all (the training images, then the test images).
/// Its name says which split it is, as the messages about it do ("the mnist test split").
Dataset embed_split(const LoadedVae& m, const std::string& split) {
  Dataset data = m.split(split != "test");
  if (split == "all") {  // train then test: indices 0..59999 train, 60000.. test
    Dataset test = m.split(false);
    data.images.insert(data.images.end(), test.images.begin(), test.images.end());
    data.labels.insert(data.labels.end(), test.labels.begin(), test.labels.end());
    data.n += test.n;
  }
  data.name = m.dataset + " " + split;
  return data;
}

/// What embed.json records besides the result: data set, split, checkpoint, device, seed, the
/// t-SNE settings and the job's wall time so far.
nlohmann::json embed_meta(const EmbedJob& job, const EmbedOptions& opt, const LoadedVae& m,
                          std::chrono::steady_clock::duration elapsed) {
  nlohmann::json meta = {{"dataset", m.dataset},
                         {"split", job.split},
                         {"vae", job.common.vae},
                         {"device", m.ctx.description()},
                         {"seed", job.common.seed}};
  if (opt.method == "tsne") {
    meta["perplexity"] = opt.tsne.perplexity;
    meta["iters"] = opt.tsne.iters;
  }
  meta["seconds_total"] = std::chrono::duration<double>(elapsed).count();
  return meta;
}

/// The summary line of an embedding.
std::string embed_summary(const EmbedResult& r, const std::string& dataset, const std::string& split) {
  char line[256];
  std::snprintf(line, sizeof line,
                "%s (%s) of %lld %s %s images: %.1f s; trustworthiness %.4f, 5-NN accuracy %.4f in the map, %.4f in "
                "mu space",
                r.method.c_str(), r.algorithm.c_str(), static_cast<long long>(r.codes.n), dataset.c_str(),
                split.c_str(), r.seconds, r.trustworthiness, r.knn_accuracy, r.knn_accuracy_latent);
  return line;
}

}  // namespace

LatentJobResult interpolate_job(const InterpolateJob& job) {
  InterpolateOptions opt;
  opt.steps = job.steps;
  opt.mode = parse_interp_mode(job.mode);
  LoadedVae m(job.common);
  const Dataset test = m.split(false);
  for (const std::string& s : job.pairs) opt.pairs.push_back(parse_pair(s, "pairs"));
  if (!job.classes.empty()) opt.pairs = pairs_from_classes(test, parse_class_pairs(job.classes));
  const InterpolateResult r = interpolate(m.ctx, *m.vae, test, opt);
  return {write_interpolation(job.out, r, test, job.common.scale), ""};
}

LatentJobResult arithmetic_job(const ArithmeticJob& job, std::ostream& log) {
  LoadedVae m(job.common);
  const Dataset test = m.split(false);
  job.arithmetic.validate(test.num_classes, test.n);  // before the class statistics are computed
  const AnchorStats stats = anchor_stats_for(m.ctx, *m.vae, job.common.vae, job.common.data, log, job.common.progress, 0);
  const ArithmeticResult r = latent_arithmetic(m.ctx, *m.vae, test, stats, job.arithmetic);
  return {write_arithmetic(job.out, r, job.arithmetic, test, job.common.scale), ""};
}

LatentJobResult traverse_job(const TraverseJob& job, std::ostream& log) {
  if (job.gif && !gif_available())
    CUVAE_FAIL(option("gif") << " is unavailable: this build of cuvae has no giflib (install libgif-dev and rebuild)");
  const TraverseBase base = parse_base(job.base);
  LoadedVae m(job.common);
  const int64_t latent = m.vae->config().latent;
  const TraverseOptions opt = traverse_options(job, latent);
  const Dataset test = m.split(false);
  const std::unique_ptr<AnchorStats> stats = class_stats_for_base(m, test, base, job.common, log);
  const std::vector<float> z0 = traverse_base(m.ctx, *m.vae, test, stats.get(), base);
  const LatentDimStats dim_stats = latent_dim_stats(encode_dataset(m.ctx, *m.vae, test, 0, 500, job.common.progress));
  const TraverseResult r = traverse(m.ctx, *m.vae, dim_stats, z0, opt);
  return {write_traversal(job.out, r, dim_stats, job.common.scale, job.gif),
          active_units_summary(dim_stats, latent, test.n)};
}

LatentJobResult embed_job(const EmbedJob& job, std::ostream& log) {
  const auto t0 = std::chrono::steady_clock::now();
  EmbedOptions opt = job.embed;
  opt.method = parse_embed_method(opt.method);
  // embed_latents reads n = 0 as "every image"; a job maps at least 4.
  if (opt.n < 4) CUVAE_FAIL(option("n") << " must be at least 4, got " << opt.n);
  opt.progress = opt.tsne.progress = job.common.progress;
  opt.tsne.seed = job.common.seed;

  LoadedVae m(job.common);
  const Dataset data = embed_split(m, job.split);
  const EmbedResult r = embed_latents(m.ctx, *m.vae, data, opt);

  const nlohmann::json meta = embed_meta(job, opt, m, std::chrono::steady_clock::now() - t0);
  if (!plot_available()) log << "note: embedding.png skipped: this build of cuvae has no PLplot\n";
  return {write_embedding(job.out, r, class_names(m.dataset), meta), embed_summary(r, m.dataset, job.split)};
}

}  // namespace cuvae
