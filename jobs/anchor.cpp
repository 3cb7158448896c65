#include "jobs/anchor.h"

#include <Eigen/Dense>
#include <cinttypes>
#include <cstdio>

#include "core/check.h"
#include "core/philox.h"
#include "io/fs.h"
#include "io/metrics.h"
#include "io/safetensors.h"
#include "jobs/batching.h"
#include "kernels/activation.h"

namespace cuvae {

AnchorStats compute_anchor_stats(Context& ctx, ConvVAE& vae, const Dataset& data, int64_t batch, bool progress) {
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
  auto fp = f.metadata.find("vae_fingerprint");
  if (fp != f.metadata.end()) s.vae_fingerprint = fp->second;
  return s;
}

AnchorStats anchor_stats_for(Context& ctx, ConvVAE& vae, const std::string& vae_path, const std::string& data_dir,
                             std::ostream& log, bool progress) {
  const std::string path = anchor_stats_path(vae_path);
  const std::string fp = file_fingerprint(vae_path);
  if (file_exists(path)) {
    try {
      AnchorStats s = load_anchor_stats(path);
      if (s.vae_fingerprint == fp && s.latent == vae.config().latent) {
        log << "class statistics: " << path << "\n";
        return s;
      }
      log << "class statistics in " << path << " belong to another checkpoint; recomputing\n";
    } catch (const Error& e) {
      log << "class statistics in " << path << " unreadable (" << e.what() << "); recomputing\n";
    }
  }
  const std::string dataset = vae.config().dataset.empty() ? "mnist" : vae.config().dataset;
  const std::string dir = data_dir.empty() ? default_data_dir(dataset) : data_dir;
  Dataset train = load_dataset(dataset, dir, true);
  AnchorStats s = compute_anchor_stats(ctx, vae, train, 500, progress);
  s.vae_fingerprint = fp;
  try {
    save_anchor_stats(path, s);
    log << "class statistics of mu over " << train.n << " " << dataset << " training images written to " << path << "\n";
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
  Eigen::MatrixXd cov(D, D);
  Eigen::VectorXd mean(D);
  for (int64_t i = 0; i < D; ++i) {
    mean(i) = s.mean[static_cast<size_t>(klass * D + i)];
    for (int64_t j = 0; j < D; ++j) cov(i, j) = s.cov[static_cast<size_t>((klass * D + i) * D + j)];
  }
  Eigen::SelfAdjointEigenSolver<Eigen::MatrixXd> eig(cov);
  CUVAE_CHECK(eig.info() == Eigen::Success, "class " << klass << ": the covariance eigendecomposition failed");
  const Eigen::MatrixXd L = eig.eigenvectors() * eig.eigenvalues().cwiseMax(0.0).cwiseSqrt().asDiagonal();
  std::vector<float> z(static_cast<size_t>(n * D));
  Eigen::VectorXd eps(D);
  for (int64_t i = 0; i < n; ++i) {
    for (int64_t d = 0; d < D; ++d)
      eps(d) = philox_normal(seed, 0xa9c40000ull + static_cast<uint64_t>(klass), static_cast<uint64_t>(i * D + d));
    const Eigen::VectorXd zi = mean + noise * (L * eps);
    for (int64_t d = 0; d < D; ++d) z[static_cast<size_t>(i * D + d)] = static_cast<float>(zi(d));
  }
  return z;
}

}  // namespace cuvae
