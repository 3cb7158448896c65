#include "jobs/analysis/embed_job.h"

#include <chrono>
#include <cmath>

#include "core/check.h"

namespace cuvae {

namespace {
double since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}
}  // namespace

std::string parse_embed_method(const std::string& s) {
  if (s == "pca" || s == "tsne") return s;
  CUVAE_FAIL(option("method") << " must be pca or tsne, got '" << s << "'");
}

EmbedResult embed_latents(Context& ctx, ConvVAE& vae, const Dataset& data, const EmbedOptions& opt) {
  EmbedResult r;
  r.method = parse_embed_method(opt.method);
  if (opt.n > data.n)
    CUVAE_FAIL(option("n") << " " << opt.n << " is larger than the " << data.name << " split (" << data.n << " images)");
  if (opt.n < 4 && opt.n != 0) CUVAE_FAIL(option("n") << " must be at least 4, got " << opt.n);
  auto t0 = std::chrono::steady_clock::now();
  r.codes = encode_dataset(ctx, vae, data, opt.n, 500, opt.progress, "n");
  r.seconds_encode = since(t0);
  const int64_t n = r.codes.n, D = r.codes.latent;
  t0 = std::chrono::steady_clock::now();
  if (r.method == "pca") {
    PcaResult p = pca_2d(r.codes.mu.data(), n, D);
    r.y = std::move(p.y);
    r.explained_variance_ratio = p.explained_variance_ratio;
    r.algorithm = "pca";
    r.kl = std::nan("");
  } else {
    TsneResult t = tsne_2d(ctx, r.codes.mu.data(), n, D, opt.tsne);
    r.y = std::move(t.y);
    r.algorithm = t.method;
    r.kl = t.kl;
  }
  r.seconds = since(t0);
  t0 = std::chrono::steady_clock::now();
  r.trustworthiness = trustworthiness(r.codes.mu.data(), n, D, r.y.data(), 2, opt.k);
  r.knn_accuracy = knn_accuracy(r.y.data(), n, 2, r.codes.label.data(), opt.k);
  r.knn_accuracy_latent = knn_accuracy(r.codes.mu.data(), n, D, r.codes.label.data(), opt.k);
  r.seconds_metrics = since(t0);
  return r;
}

}  // namespace cuvae
