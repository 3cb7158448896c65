#include "jobs/anchor.h"

#include <Eigen/Dense>
#include <algorithm>
#include <cinttypes>
#include <cmath>
#include <cstdio>
#include <exception>

#include "core/check.h"
#include "core/philox.h"
#include "io/fs.h"
#include "io/metrics.h"
#include "io/safetensors.h"
#include "jobs/batching.h"
#include "kernels/activation.h"
#include "numerics/gmm.h"

namespace cuvae {

namespace {

/// Fits class k's mixture to its codes and stores it in s.mix_* (fewer components, the rest with
/// weight 0, when the class has fewer than 2·(D + 1) codes per component).
void fit_class_mixture(AnchorStats& s, int64_t k, const std::vector<double>& codes) {
  const int64_t D = s.latent, M = s.components;
  const int64_t n = static_cast<int64_t>(codes.size()) / D;
  const int64_t m_fit = std::max<int64_t>(1, std::min<int64_t>(M, n / (2 * (D + 1))));
  GmmFit g;
  if (m_fit == 1) {  // the class Gaussian itself
    g.components = 1;
    g.weight = {1.0};
    g.mean.assign(s.mean.begin() + k * D, s.mean.begin() + (k + 1) * D);
    g.cov.assign(s.cov.begin() + k * D * D, s.cov.begin() + (k + 1) * D * D);
  } else {
    GmmOptions opt;
    opt.components = static_cast<int>(m_fit);
    g = fit_gmm(codes.data(), n, D, opt);
  }
  for (int64_t m = 0; m < M; ++m) {
    const int64_t src = m < g.components ? m : 0;  // unused components: weight 0, a copy of the first
    s.mix_weight[static_cast<size_t>(k * M + m)] = m < g.components ? g.weight[static_cast<size_t>(m)] : 0.0;
    std::copy_n(g.mean.begin() + src * D, D, s.mix_mean.begin() + (k * M + m) * D);
    std::copy_n(g.cov.begin() + src * D * D, D * D, s.mix_cov.begin() + (k * M + m) * D * D);
  }
}

}  // namespace

AnchorStats compute_anchor_stats(Context& ctx, ConvVAE& vae, const Dataset& data, int64_t batch, bool progress,
                                 int components) {
  CUVAE_REQUIRE(components >= 1, option("components") << " must be >= 1, got " << components);
  const VaeConfig& c = vae.config();
  if (data.c != c.channels || data.h != c.height || data.w != c.width)
    CUVAE_FAIL("data set '" << data.name << "' has images of " << data.c << "x" << data.h << "x" << data.w
                            << " but the VAE expects " << c.channels << "x" << c.height << "x" << c.width);
  const int64_t K = data.num_classes, D = c.latent;
  AnchorStats s;
  s.classes = K;
  s.latent = D;
  s.count.assign(static_cast<size_t>(K), 0);
  s.mean.assign(static_cast<size_t>(K * D), 0.0);
  s.cov.assign(static_cast<size_t>(K * D * D), 0.0);
  std::vector<Eigen::VectorXd> sum(static_cast<size_t>(K), Eigen::VectorXd::Zero(D));
  std::vector<Eigen::MatrixXd> outer(static_cast<size_t>(K), Eigen::MatrixXd::Zero(D, D));
  std::vector<std::vector<double>> codes(components > 1 ? static_cast<size_t>(K) : 0);
  const DeviceDataset dd(data, ctx.device());
  ProgressBar bar("encoding " + data.name, data.n, progress);
  for_each_batch(ctx, dd, batch, 0, [&](const Batch& b) {
    vae.encode(ctx, b.x);
    const std::vector<float> mu = vae.mu().to_vector();
    for (int64_t i = 0; i < b.size; ++i) {
      const int64_t k = data.labels[static_cast<size_t>(b.first + i)];
      Eigen::VectorXd m(D);
      for (int64_t d = 0; d < D; ++d) m(d) = mu[static_cast<size_t>(i * D + d)];
      sum[static_cast<size_t>(k)] += m;
      outer[static_cast<size_t>(k)].selfadjointView<Eigen::Lower>().rankUpdate(m);
      s.count[static_cast<size_t>(k)] += 1;
      if (!codes.empty()) codes[static_cast<size_t>(k)].insert(codes[static_cast<size_t>(k)].end(), m.data(), m.data() + D);
    }
    bar.update(b.first + b.size);
  });
  bar.finish();
  for (int64_t k = 0; k < K; ++k) {
    const int64_t cnt = s.count[static_cast<size_t>(k)];
    CUVAE_REQUIRE(cnt >= 2, "class " << k << " of '" << data.name << "' has " << cnt << " images; at least 2 are needed");
    const Eigen::VectorXd mean = sum[static_cast<size_t>(k)] / static_cast<double>(cnt);
    Eigen::MatrixXd cov = outer[static_cast<size_t>(k)].selfadjointView<Eigen::Lower>();
    cov = cov / static_cast<double>(cnt) - mean * mean.transpose();
    for (int64_t i = 0; i < D; ++i) {
      s.mean[static_cast<size_t>(k * D + i)] = mean(i);
      for (int64_t j = 0; j < D; ++j) s.cov[static_cast<size_t>((k * D + i) * D + j)] = cov(i, j);
    }
  }
  if (components > 1) {
    s.components = components;
    s.mix_weight.assign(static_cast<size_t>(K * components), 0.0);
    s.mix_mean.assign(static_cast<size_t>(K * components * D), 0.0);
    s.mix_cov.assign(static_cast<size_t>(K * components * D * D), 0.0);
    ProgressBar fit_bar("fitting " + std::to_string(components) + "-component mixtures per class", K, progress);
    // The classes are independent: one per thread (each fit is deterministic, so the result does
    // not depend on the thread count); the first error is rethrown after the loop.
    int64_t done = 0;
    std::exception_ptr failure;
#pragma omp parallel for schedule(dynamic, 1)
    for (int64_t k = 0; k < K; ++k) {
      try {
        fit_class_mixture(s, k, codes[static_cast<size_t>(k)]);
      } catch (...) {
#pragma omp critical(cuvae_anchor_fit)
        if (!failure) failure = std::current_exception();
      }
      std::vector<double>().swap(codes[static_cast<size_t>(k)]);
#pragma omp critical(cuvae_anchor_fit)
      fit_bar.update(++done);
    }
    if (failure) std::rethrow_exception(failure);
    fit_bar.finish();
  }
  return s;
}

std::string file_fingerprint(const std::string& path) {
  const std::string bytes = read_file(path);
  uint64_t h = 1469598103934665603ull;
  for (unsigned char ch : bytes) {
    h ^= ch;
    h *= 1099511628211ull;
  }
  char b[64];
  std::snprintf(b, sizeof b, "%zu-%016" PRIx64, bytes.size(), h);
  return b;
}

std::string anchor_stats_path(const std::string& vae_path) {
  const std::string ext = ".safetensors";
  const size_t slash = vae_path.find_last_of('/');
  if (vae_path.size() > ext.size() && vae_path.compare(vae_path.size() - ext.size(), ext.size(), ext) == 0 &&
      (slash == std::string::npos || slash < vae_path.size() - ext.size()))
    return vae_path.substr(0, vae_path.size() - ext.size()) + ".anchors" + ext;
  return vae_path + ".anchors" + ext;
}

void save_anchor_stats(const std::string& path, const AnchorStats& s) {
  SafetensorsWriter w;
  w.add("mean", "F64", {s.classes, s.latent}, s.mean.data(), s.mean.size() * sizeof(double));
  w.add("cov", "F64", {s.classes, s.latent, s.latent}, s.cov.data(), s.cov.size() * sizeof(double));
  w.add_i64("count", {s.classes}, s.count);
  if (s.components > 1) {
    const int64_t K = s.classes, M = s.components, D = s.latent;
    w.add("mix_weight", "F64", {K, M}, s.mix_weight.data(), s.mix_weight.size() * sizeof(double));
    w.add("mix_mean", "F64", {K, M, D}, s.mix_mean.data(), s.mix_mean.size() * sizeof(double));
    w.add("mix_cov", "F64", {K, M, D, D}, s.mix_cov.data(), s.mix_cov.size() * sizeof(double));
  }
  w.set_metadata("components", std::to_string(s.components));
  w.set_metadata("format", "cuvae-anchors");
  w.set_metadata("vae_fingerprint", s.vae_fingerprint);
  w.write(path);
}

AnchorStats load_anchor_stats(const std::string& path) {
  SafetensorsFile f = read_safetensors(path);
  auto it = f.metadata.find("format");
  if (it == f.metadata.end() || it->second != "cuvae-anchors")
    CUVAE_FAIL(path << ": not an anchor statistics file (metadata 'format' is not 'cuvae-anchors')");
  const SafetensorsEntry& m = f.at("mean");
  CUVAE_REQUIRE(m.dtype == "F64" && m.shape.size() == 2, path << ": tensor 'mean' must be F64 [K, D]");
  AnchorStats s;
  s.classes = m.shape[0];
  s.latent = m.shape[1];
  CUVAE_REQUIRE(s.classes >= 1 && s.latent >= 1, path << ": tensor 'mean' is empty");
  const SafetensorsEntry& c = f.at("cov");
  CUVAE_REQUIRE(c.dtype == "F64" && c.shape == std::vector<int64_t>({s.classes, s.latent, s.latent}),
              path << ": tensor 'cov' must be F64 [" << s.classes << ", " << s.latent << ", " << s.latent << "]");
  s.mean.resize(static_cast<size_t>(s.classes * s.latent));
  std::memcpy(s.mean.data(), m.bytes.data(), m.bytes.size());
  s.cov.resize(static_cast<size_t>(s.classes * s.latent * s.latent));
  std::memcpy(s.cov.data(), c.bytes.data(), c.bytes.size());
  s.count = f.i64("count", {s.classes});
  if (f.has("mix_weight")) {  // files from before the mixtures hold none: M = 1
    const SafetensorsEntry& w = f.at("mix_weight");
    CUVAE_REQUIRE(w.dtype == "F64" && w.shape.size() == 2 && w.shape[0] == s.classes && w.shape[1] >= 2,
                  path << ": tensor 'mix_weight' must be F64 [" << s.classes << ", M] with M >= 2");
    const int64_t K = s.classes, M = w.shape[1], D = s.latent;
    s.components = M;
    auto read = [&](const char* name, std::vector<int64_t> shape, std::vector<double>& out) {
      const SafetensorsEntry& e = f.at(name);
      CUVAE_REQUIRE(e.dtype == "F64" && e.shape == shape, path << ": tensor '" << name << "' must be F64 of "
                                                                << shape.size() << " dimensions [K, M, ...] = ["
                                                                << K << ", " << M << ", " << D << "...]");
      out.resize(e.bytes.size() / sizeof(double));
      std::memcpy(out.data(), e.bytes.data(), e.bytes.size());
    };
    read("mix_weight", {K, M}, s.mix_weight);
    read("mix_mean", {K, M, D}, s.mix_mean);
    read("mix_cov", {K, M, D, D}, s.mix_cov);
    for (int64_t k = 0; k < K; ++k) {
      double sum = 0;
      for (int64_t m = 0; m < M; ++m) {
        const double v = s.mix_weight[static_cast<size_t>(k * M + m)];
        CUVAE_REQUIRE(v >= 0 && std::isfinite(v), path << ": 'mix_weight' of class " << k << " holds " << v);
        sum += v;
      }
      CUVAE_REQUIRE(std::abs(sum - 1.0) < 1e-6, path << ": 'mix_weight' of class " << k << " sums to " << sum << ", not 1");
    }
  }
  auto fp = f.metadata.find("vae_fingerprint");
  if (fp != f.metadata.end()) s.vae_fingerprint = fp->second;
  return s;
}

AnchorStats anchor_stats_for(Context& ctx, ConvVAE& vae, const std::string& vae_path, const std::string& data_dir,
                             std::ostream& log, bool progress, int components) {
  CUVAE_REQUIRE(components >= 0, option("components") << " must be >= 1, got " << components);
  const std::string path = anchor_stats_path(vae_path);
  const std::string fp = file_fingerprint(vae_path);
  if (file_exists(path)) {
    try {
      AnchorStats s = load_anchor_stats(path);
      if (s.vae_fingerprint == fp && s.latent == vae.config().latent) {
        if (components == 0 || s.components == components) {
          log << "class statistics: " << path << "\n";
          return s;
        }
        log << "class statistics in " << path << " hold " << s.components << " mixture component(s) per class, not "
            << components << "; recomputing\n";
      } else {
        log << "class statistics in " << path << " belong to another checkpoint; recomputing\n";
      }
    } catch (const Error& e) {
      log << "class statistics in " << path << " unreadable (" << e.what() << "); recomputing\n";
    }
  }
  const std::string dataset = vae.config().dataset.empty() ? "mnist" : vae.config().dataset;
  const std::string dir = data_dir.empty() ? default_data_dir(dataset) : data_dir;
  Dataset train = load_dataset(dataset, dir, true);
  const int m = components == 0 ? kDefaultAnchorComponents : components;
  AnchorStats s = compute_anchor_stats(ctx, vae, train, 500, progress, m);
  s.vae_fingerprint = fp;
  try {
    save_anchor_stats(path, s);
    log << "class statistics of mu over " << train.n << " " << dataset << " training images (" << m
        << " mixture component(s) per class) written to " << path << "\n";
  } catch (const Error& e) {  // a read-only checkpoint folder: use them without keeping them
    log << "note: class statistics computed but not kept (" << e.what() << ")\n";
  }
  return s;
}

std::vector<float> sample_anchored(const AnchorStats& s, int klass, int64_t n, double noise, uint64_t seed) {
  CUVAE_REQUIRE(klass >= 0 && klass < s.classes,
              "class " << klass << " is out of range: the VAE's data set has classes 0.." << s.classes - 1);
  CUVAE_REQUIRE(noise >= 0 && std::isfinite(noise), option("noise") << " must be >= 0, got " << noise);
  CUVAE_CHECK(n >= 0, "sample_anchored: negative count " << n);
  const int64_t D = s.latent;
  const bool mixture = s.components > 1;
  const int64_t M = mixture ? s.components : 1;
  // Component m's mean and factor L (L·Lᵀ = Σ); without a mixture the class's own.
  std::vector<Eigen::VectorXd> mean(static_cast<size_t>(M), Eigen::VectorXd(D));
  std::vector<Eigen::MatrixXd> factor(static_cast<size_t>(M));
  std::vector<double> cumulative(static_cast<size_t>(M), 0.0);
  for (int64_t m = 0; m < M; ++m) {
    const double* mu = mixture ? &s.mix_mean[static_cast<size_t>((klass * M + m) * D)] : &s.mean[static_cast<size_t>(klass * D)];
    const double* sigma =
        mixture ? &s.mix_cov[static_cast<size_t>((klass * M + m) * D * D)] : &s.cov[static_cast<size_t>(klass * D * D)];
    Eigen::MatrixXd cov(D, D);
    for (int64_t i = 0; i < D; ++i) {
      mean[static_cast<size_t>(m)](i) = mu[i];
      for (int64_t j = 0; j < D; ++j) cov(i, j) = sigma[i * D + j];
    }
    Eigen::SelfAdjointEigenSolver<Eigen::MatrixXd> eig(cov);
    CUVAE_CHECK(eig.info() == Eigen::Success, "class " << klass << ": the covariance eigendecomposition failed");
    factor[static_cast<size_t>(m)] = eig.eigenvectors() * eig.eigenvalues().cwiseMax(0.0).cwiseSqrt().asDiagonal();
    cumulative[static_cast<size_t>(m)] =
        (m > 0 ? cumulative[static_cast<size_t>(m - 1)] : 0.0) + (mixture ? s.mix_weight[static_cast<size_t>(klass * M + m)] : 1.0);
  }
  std::vector<float> z(static_cast<size_t>(n * D));
  Eigen::VectorXd eps(D);
  for (int64_t i = 0; i < n; ++i) {
    int64_t m = 0;
    if (mixture) {
      const double u = philox_uniform_at(seed, 0xa9c50000ull + static_cast<uint64_t>(klass), static_cast<uint64_t>(i)) *
                       cumulative.back();
      while (m < M - 1 && (u >= cumulative[static_cast<size_t>(m)] || s.mix_weight[static_cast<size_t>(klass * M + m)] <= 0)) ++m;
    }
    for (int64_t d = 0; d < D; ++d)
      eps(d) = philox_normal(seed, 0xa9c40000ull + static_cast<uint64_t>(klass), static_cast<uint64_t>(i * D + d));
    const Eigen::VectorXd zi = mean[static_cast<size_t>(m)] + noise * (factor[static_cast<size_t>(m)] * eps);
    for (int64_t d = 0; d < D; ++d) z[static_cast<size_t>(i * D + d)] = static_cast<float>(zi(d));
  }
  return z;
}

}  // namespace cuvae
