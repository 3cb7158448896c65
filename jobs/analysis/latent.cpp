#include "jobs/analysis/latent.h"

#include <Eigen/Dense>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <numeric>

#include "core/check.h"
#include "core/philox.h"
#include "io/metrics.h"
#include "jobs/batching.h"

namespace cuvae {

namespace {

void check_shape(const Dataset& d, const VaeConfig& c) {
  if (d.c != c.channels || d.h != c.height || d.w != c.width)
    CUVAE_FAIL("data set '" << d.name << "' has images of " << d.c << "x" << d.h << "x" << d.w
                            << " but the VAE expects " << c.channels << "x" << c.height << "x" << c.width);
}

// Parses a whole string as a base-10 integer; false on anything else (sign allowed).
bool parse_int(const std::string& s, int64_t& out) {
  if (s.empty() || s.size() > 18) return false;
  size_t i = (s[0] == '-' || s[0] == '+') ? 1 : 0;
  if (i == s.size()) return false;
  for (size_t k = i; k < s.size(); ++k)
    if (s[k] < '0' || s[k] > '9') return false;
  out = std::strtoll(s.c_str(), nullptr, 10);
  return true;
}

void check_steps(int steps) {
  if (steps < 2 || steps > 256) CUVAE_FAIL(option("steps") << " must be in [2, 256], got " << steps);
}

std::vector<float> encode_mu(Context& ctx, ConvVAE& vae, const std::vector<float>& pixels, int64_t n) {
  const VaeConfig& c = vae.config();
  Tensor x = Tensor::from_vector(pixels, {n, c.channels, c.height, c.width}, Device::CPU);
  Tensor xd = x.to(ctx.device());
  vae.encode(ctx, xd);
  return vae.mu().to_vector();
}

}  // namespace

LatentCodes encode_dataset(Context& ctx, ConvVAE& vae, const Dataset& data, int64_t n, int64_t batch, bool progress,
                           const char* option_name) {
  const VaeConfig& c = vae.config();
  check_shape(data, c);
  if (n < 0) CUVAE_FAIL(option(option_name) << " must be >= 0, got " << n);
  if (n > data.n)
    CUVAE_FAIL(option(option_name) << " " << n << " is larger than the " << data.name << " split (" << data.n << " images)");
  if (n == 0) n = data.n;
  CUVAE_CHECK(batch >= 1, "encode_dataset: batch must be positive, got " << batch);
  const int64_t D = c.latent;
  LatentCodes out;
  out.n = n;
  out.latent = D;
  out.mu.resize(static_cast<size_t>(n * D));
  out.logvar.resize(static_cast<size_t>(n * D));
  out.label.resize(static_cast<size_t>(n));
  out.index.resize(static_cast<size_t>(n));
  const DeviceDataset dd(data, ctx.device());
  ProgressBar bar("encode", n, progress);
  for_each_batch(ctx, dd, batch, n, [&](const Batch& b) {
    vae.encode(ctx, b.x);
    const std::vector<float> mu = vae.mu().to_vector(), lv = vae.logvar().to_vector();
    std::copy(mu.begin(), mu.end(), out.mu.begin() + b.first * D);
    if (!c.is_ae()) std::copy(lv.begin(), lv.end(), out.logvar.begin() + b.first * D);
    bar.update(b.first + b.size);
  });
  bar.finish();
  if (c.is_ae()) out.logvar.clear();  // a deterministic code: no posterior variance
  for (int64_t i = 0; i < n; ++i) {
    out.label[static_cast<size_t>(i)] = data.labels[static_cast<size_t>(i)];
    out.index[static_cast<size_t>(i)] = i;
  }
  return out;
}

std::vector<float> fitted_gaussian_samples(const LatentCodes& codes, int64_t n, uint64_t seed) {
  CUVAE_CHECK(codes.n >= 2, "fitted_gaussian_samples: need at least 2 codes, got " << codes.n);
  const int64_t D = codes.latent;
  Eigen::Map<const Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>> mu(
      codes.mu.data(), codes.n, D);
  const Eigen::MatrixXd m = mu.cast<double>();
  const Eigen::RowVectorXd mean = m.colwise().mean();
  const Eigen::MatrixXd centred = m.rowwise() - mean;
  Eigen::MatrixXd cov = centred.transpose() * centred / static_cast<double>(codes.n - 1);
  cov.diagonal().array() += 1e-6;
  const Eigen::LLT<Eigen::MatrixXd> llt(cov);
  const Eigen::MatrixXd L = llt.matrixL();
  std::vector<float> out(static_cast<size_t>(n * D));
  Eigen::VectorXd eps(D);
  for (int64_t i = 0; i < n; ++i) {
    for (int64_t d = 0; d < D; ++d) eps[d] = philox_normal(seed, 0x5a3b1e01ull, static_cast<uint64_t>(i * D + d));
    const Eigen::VectorXd z = mean.transpose() + L * eps;
    for (int64_t d = 0; d < D; ++d) out[static_cast<size_t>(i * D + d)] = static_cast<float>(z[d]);
  }
  return out;
}

std::vector<int64_t> LatentDimStats::by_kl() const {
  std::vector<int64_t> dims(kl.size());
  std::iota(dims.begin(), dims.end(), int64_t{0});
  // Without a KL term (an autoencoder's codes) the variance of μ_d ranks the dimensions.
  const bool no_kl = std::all_of(kl.begin(), kl.end(), [](double v) { return v == 0.0; });
  const std::vector<double>& key = no_kl && activity.size() == kl.size() ? activity : kl;
  std::stable_sort(dims.begin(), dims.end(),
                   [&](int64_t a, int64_t b) { return key[static_cast<size_t>(a)] > key[static_cast<size_t>(b)]; });
  return dims;
}

LatentDimStats latent_dim_stats(const LatentCodes& codes, double threshold) {
  CUVAE_CHECK(codes.n >= 2, "latent_dim_stats: need at least 2 codes, got " << codes.n);
  const int64_t n = codes.n, D = codes.latent;
  std::vector<double> kl(static_cast<size_t>(D), 0.0), sum(static_cast<size_t>(D), 0.0);
  for (int64_t i = 0; i < n; ++i)
    for (int64_t d = 0; d < D; ++d) {
      const double m = codes.mu[static_cast<size_t>(i * D + d)];
      const double lv = codes.logvar.empty() ? 0.0 : codes.logvar[static_cast<size_t>(i * D + d)];
      kl[static_cast<size_t>(d)] += codes.logvar.empty() ? 0.0 : 0.5 * (m * m + std::exp(lv) - 1.0 - lv);
      sum[static_cast<size_t>(d)] += m;
    }
  LatentDimStats s;
  s.kl.resize(static_cast<size_t>(D));
  s.activity.resize(static_cast<size_t>(D));
  s.active.resize(static_cast<size_t>(D));
  for (int64_t d = 0; d < D; ++d) {
    const double mean = sum[static_cast<size_t>(d)] / static_cast<double>(n);
    double v = 0;
    for (int64_t i = 0; i < n; ++i) {
      const double e = codes.mu[static_cast<size_t>(i * D + d)] - mean;
      v += e * e;
    }
    s.kl[static_cast<size_t>(d)] = kl[static_cast<size_t>(d)] / static_cast<double>(n);
    s.activity[static_cast<size_t>(d)] = v / static_cast<double>(n);
    s.active[static_cast<size_t>(d)] = s.activity[static_cast<size_t>(d)] > threshold;
    s.active_units += s.active[static_cast<size_t>(d)] ? 1 : 0;
  }
  return s;
}

InterpMode parse_interp_mode(const std::string& s) {
  if (s == "lerp") return InterpMode::Lerp;
  if (s == "slerp") return InterpMode::Slerp;
  CUVAE_FAIL(option("mode") << " must be lerp or slerp, got '" << s << "'");
}

const char* interp_mode_name(InterpMode m) { return m == InterpMode::Slerp ? "slerp" : "lerp"; }

std::vector<float> interpolate_latent(const float* a, const float* b, int64_t D, double t, InterpMode mode) {
  std::vector<float> z(static_cast<size_t>(D));
  double wa = 1.0 - t, wb = t;
  if (mode == InterpMode::Slerp) {
    double na = 0, nb = 0, dot = 0;
    for (int64_t d = 0; d < D; ++d) {
      na += double(a[d]) * a[d];
      nb += double(b[d]) * b[d];
      dot += double(a[d]) * b[d];
    }
    na = std::sqrt(na);
    nb = std::sqrt(nb);
    if (na > 0 && nb > 0) {
      const double cos_omega = std::clamp(dot / (na * nb), -1.0, 1.0);
      const double omega = std::acos(cos_omega), so = std::sin(omega);
      if (so >= 1e-6) {
        wa = std::sin((1.0 - t) * omega) / so;
        wb = std::sin(t * omega) / so;
      }
    }
  }
  for (int64_t d = 0; d < D; ++d) z[static_cast<size_t>(d)] = static_cast<float>(wa * a[d] + wb * b[d]);
  return z;
}

std::vector<float> decode_to_host(Context& ctx, ConvVAE& vae, const std::vector<float>& z, int64_t n,
                                  const std::vector<int32_t>* labels) {
  const int64_t D = vae.config().latent, P = vae.config().pixels();
  CUVAE_CHECK(static_cast<int64_t>(z.size()) == n * D, "decode_to_host: " << z.size() << " values for " << n << "x" << D);
  std::vector<float> out(static_cast<size_t>(n * P));
  for (int64_t first = 0; first < n; first += 256) {  // bounded decoder buffers for any n
    const int64_t b = std::min<int64_t>(256, n - first);
    std::vector<int32_t> y;
    if (labels != nullptr) y.assign(labels->begin() + first, labels->begin() + first + b);
    const std::vector<float> h =
        vae.decode_images(ctx, std::vector<float>(z.begin() + first * D, z.begin() + (first + b) * D), b,
                      labels != nullptr ? &y : nullptr)
            .to_vector();
    std::copy(h.begin(), h.end(), out.begin() + first * P);
  }
  return out;
}

EncodedImages encode_images(Context& ctx, ConvVAE& vae, const std::vector<float>& x, int64_t n) {
  const VaeConfig& c = vae.config();
  CUVAE_CHECK(n >= 1 && static_cast<int64_t>(x.size()) == n * c.pixels(),
              "encode_images: " << x.size() << " values for " << n << " images of " << c.pixels() << " pixels");
  EncodedImages r;
  r.n = n;
  r.mu = encode_mu(ctx, vae, x, n);
  r.logvar = vae.logvar().to_vector();
  r.reconstruction = decode_to_host(ctx, vae, r.mu, n);
  return r;
}

std::vector<float> dataset_images(const Dataset& data, const std::vector<int64_t>& indices, const char* option_name) {
  for (int64_t i : indices)
    if (i < 0 || i >= data.n)
      CUVAE_FAIL(option(option_name) << " " << i << " is out of range: the " << data.name << " test set has images 0.." << data.n - 1);
  Context host(DeviceRequest::CPU, CpuBackend::Reference);  // host floats: the CPU's plain gather
  return images_of_rows(host, data, indices);
}

std::pair<int64_t, int64_t> parse_pair(const std::string& s, const char* option_name) {
  const size_t colon = s.find(':');
  int64_t a = -1, b = -1;
  if (colon == std::string::npos || !parse_int(s.substr(0, colon), a) || !parse_int(s.substr(colon + 1), b) || a < 0 ||
      b < 0)
    CUVAE_FAIL(option(option_name) << " expects pairs A:B of non-negative integers, got '" << s << "'");
  return {a, b};
}

std::vector<std::pair<int64_t, int64_t>> pairs_from_classes(const Dataset& test,
                                                            const std::vector<std::pair<int, int>>& classes) {
  auto first_of = [&](int k) -> int64_t {
    if (k < 0 || k >= test.num_classes)
      CUVAE_FAIL(option("classes") << " " << k << " is out of range: expected a class in 0.." << test.num_classes - 1);
    for (int64_t i = 0; i < test.n; ++i)
      if (test.labels[static_cast<size_t>(i)] == k) return i;
    CUVAE_FAIL(option("classes") << " " << k << ": the " << test.name << " test set has no image of that class");
  };
  std::vector<std::pair<int64_t, int64_t>> out;
  for (const auto& [a, b] : classes) out.emplace_back(first_of(a), first_of(b));
  return out;
}

InterpolateResult interpolate(Context& ctx, ConvVAE& vae, const Dataset& test, const InterpolateOptions& opt) {
  const VaeConfig& c = vae.config();
  check_shape(test, c);
  check_steps(opt.steps);
  if (opt.pairs.empty()) CUVAE_FAIL("interpolate: give at least one pair with " << option("pairs") << " I:J or " << option("classes") << " A:B");
  std::vector<int64_t> ends;
  for (const auto& [i, j] : opt.pairs) {
    ends.push_back(i);
    ends.push_back(j);
  }
  const std::vector<float> x = dataset_images(test, ends, "pairs");
  const int64_t D = c.latent, P = c.pixels(), np = static_cast<int64_t>(opt.pairs.size());
  const std::vector<float> mu = encode_mu(ctx, vae, x, 2 * np);
  InterpolateResult r;
  r.pairs = opt.pairs;
  r.mode = opt.mode;
  for (int s = 0; s < opt.steps; ++s) r.t.push_back(static_cast<double>(s) / (opt.steps - 1));
  std::vector<float> z;
  for (int64_t p = 0; p < np; ++p)
    for (double t : r.t) {
      const std::vector<float> zi = interpolate_latent(&mu[(2 * p) * D], &mu[(2 * p + 1) * D], D, t, opt.mode);
      z.insert(z.end(), zi.begin(), zi.end());
    }
  const std::vector<float> dec = decode_to_host(ctx, vae, z, np * opt.steps);
  r.grid = {np, opt.steps + 2, static_cast<int>(c.channels), static_cast<int>(c.height), static_cast<int>(c.width), {}};
  r.grid.pixels.reserve(static_cast<size_t>(np * (opt.steps + 2) * P));
  for (int64_t p = 0; p < np; ++p) {
    r.grid.pixels.insert(r.grid.pixels.end(), x.begin() + (2 * p) * P, x.begin() + (2 * p + 1) * P);
    r.grid.pixels.insert(r.grid.pixels.end(), dec.begin() + p * opt.steps * P, dec.begin() + (p + 1) * opt.steps * P);
    r.grid.pixels.insert(r.grid.pixels.end(), x.begin() + (2 * p + 1) * P, x.begin() + (2 * p + 2) * P);
  }
  return r;
}

void ArithmeticOptions::validate(int64_t classes, int64_t test_images) const {
  if (indices.empty()) CUVAE_FAIL("arithmetic: give the test images to move with " << option("index"));
  for (int64_t i : indices)
    if (i < 0 || i >= test_images)
      CUVAE_FAIL(option("index") << " " << i << " is out of range: the test set has images 0.." << test_images - 1);
  if (from_class < 0 || from_class >= classes)
    CUVAE_FAIL(option("from_class") << " " << from_class << " is out of range: expected a class in 0.." << classes - 1);
  if (to_class < 0 || to_class >= classes)
    CUVAE_FAIL(option("to_class") << " " << to_class << " is out of range: expected a class in 0.." << classes - 1);
  if (!std::isfinite(alpha)) CUVAE_FAIL(option("alpha") << " must be a finite number, got " << alpha);
}

ArithmeticResult latent_arithmetic(Context& ctx, ConvVAE& vae, const Dataset& test, const AnchorStats& stats,
                                   const ArithmeticOptions& opt) {
  const VaeConfig& c = vae.config();
  check_shape(test, c);
  opt.validate(stats.classes, test.n);
  const int64_t D = c.latent, P = c.pixels(), n = static_cast<int64_t>(opt.indices.size());
  CUVAE_CHECK(stats.latent == D, "arithmetic: class statistics have " << stats.latent << " dimensions, the VAE " << D);
  const std::vector<float> x = dataset_images(test, opt.indices, "index");
  const std::vector<float> mu = encode_mu(ctx, vae, x, n);
  ArithmeticResult r;
  r.alphas = {0.25 * opt.alpha, 0.5 * opt.alpha, 0.75 * opt.alpha, opt.alpha};
  r.direction.resize(static_cast<size_t>(D));
  for (int64_t d = 0; d < D; ++d)
    r.direction[static_cast<size_t>(d)] =
        static_cast<float>(stats.mean[static_cast<size_t>(opt.to_class * D + d)] -
                           stats.mean[static_cast<size_t>(opt.from_class * D + d)]);
  // Decode μ itself first (the reconstructions), then the moved codes.
  std::vector<float> z(mu.begin(), mu.end());
  for (int64_t i = 0; i < n; ++i)
    for (double a : r.alphas)
      for (int64_t d = 0; d < D; ++d) {
        const float v = mu[static_cast<size_t>(i * D + d)] + static_cast<float>(a) * r.direction[static_cast<size_t>(d)];
        z.push_back(v);
        r.z.push_back(v);
      }
  const std::vector<float> dec = decode_to_host(ctx, vae, z, n * 5);
  r.grid = {n, 6, static_cast<int>(c.channels), static_cast<int>(c.height), static_cast<int>(c.width), {}};
  for (int64_t i = 0; i < n; ++i) {
    r.grid.pixels.insert(r.grid.pixels.end(), x.begin() + i * P, x.begin() + (i + 1) * P);
    r.grid.pixels.insert(r.grid.pixels.end(), dec.begin() + i * P, dec.begin() + (i + 1) * P);
    r.grid.pixels.insert(r.grid.pixels.end(), dec.begin() + (n + 4 * i) * P, dec.begin() + (n + 4 * i + 4) * P);
  }
  return r;
}

DimSelection parse_dims(const std::string& s, int64_t latent) {
  DimSelection sel;
  const std::string prefix = "top-kl:";
  if (s.rfind(prefix, 0) == 0) {
    int64_t k = 0;
    if (!parse_int(s.substr(prefix.size()), k) || k < 1)
      CUVAE_FAIL(option("dims") << " top-kl:K expects a positive integer K, got '" << s << "'");
    sel.top_kl = std::min(k, latent);
    return sel;
  }
  size_t start = 0;
  while (start <= s.size()) {
    const size_t comma = s.find(',', start);
    const std::string tok = s.substr(start, comma == std::string::npos ? std::string::npos : comma - start);
    int64_t d = 0;
    if (!parse_int(tok, d) || d < 0)
      CUVAE_FAIL(option("dims") << " expects top-kl:K or a comma-separated list of dimensions such as 3,7,12, got '" << s << "'");
    if (d >= latent)
      CUVAE_FAIL(option("dims") << " " << d << " is out of range: the VAE's latent dimensions are 0.." << latent - 1);
    sel.dims.push_back(d);
    if (comma == std::string::npos) break;
    start = comma + 1;
  }
  return sel;
}

TraverseBase parse_base(const std::string& s) {
  TraverseBase b;
  int64_t v = 0;
  if (s == "zero") return b;
  if (s.rfind("index:", 0) == 0 && parse_int(s.substr(6), v) && v >= 0) {
    b.kind = TraverseBase::Index;
    b.arg = v;
    return b;
  }
  if (s.rfind("class:", 0) == 0 && parse_int(s.substr(6), v) && v >= 0) {
    b.kind = TraverseBase::Class;
    b.arg = v;
    return b;
  }
  CUVAE_FAIL(option("base") << " must be zero, index:I or class:K, got '" << s << "'");
}

std::vector<float> traverse_base(Context& ctx, ConvVAE& vae, const Dataset& test, const AnchorStats* stats,
                                 const TraverseBase& base) {
  const int64_t D = vae.config().latent;
  switch (base.kind) {
    case TraverseBase::Zero:
      return std::vector<float>(static_cast<size_t>(D), 0.0f);
    case TraverseBase::Index: {
      check_shape(test, vae.config());
      if (base.arg >= test.n)
        CUVAE_FAIL(option("base") << " index:" << base.arg << " is out of range: the " << test.name << " test set has images 0.."
                                   << test.n - 1);
      return encode_mu(ctx, vae, dataset_images(test, {base.arg}, "base"), 1);
    }
    case TraverseBase::Class: {
      CUVAE_REQUIRE(stats != nullptr, "traverse_base: class statistics are needed for " << option("base") << " class:K");
      if (base.arg >= stats->classes)
        CUVAE_FAIL(option("base") << " class:" << base.arg << " is out of range: expected a class in 0.." << stats->classes - 1);
      std::vector<float> z(static_cast<size_t>(D));
      for (int64_t d = 0; d < D; ++d) z[static_cast<size_t>(d)] = static_cast<float>(stats->mean[static_cast<size_t>(base.arg * D + d)]);
      return z;
    }
  }
  CUVAE_FAIL(option("base") << ": unknown kind");
}

void TraverseOptions::validate(int64_t latent) const {
  check_steps(steps);
  if (!(range > 0) || !std::isfinite(range)) CUVAE_FAIL(option("range") << " must be a positive number, got " << range);
  for (int64_t d : dims.dims)
    if (d < 0 || d >= latent) CUVAE_FAIL(option("dims") << " " << d << " is out of range: the VAE's latent dimensions are 0.." << latent - 1);
}

TraverseResult traverse(Context& ctx, ConvVAE& vae, const LatentDimStats& stats, const std::vector<float>& base,
                        const TraverseOptions& opt) {
  const VaeConfig& c = vae.config();
  const int64_t D = c.latent;
  opt.validate(D);
  CUVAE_CHECK(static_cast<int64_t>(base.size()) == D, "traverse: base has " << base.size() << " values, expected " << D);
  TraverseResult r;
  r.base = base;
  if (!opt.dims.dims.empty()) {
    r.dims = opt.dims.dims;
  } else {
    CUVAE_CHECK(static_cast<int64_t>(stats.kl.size()) == D, "traverse: statistics for " << stats.kl.size() << " dimensions, expected " << D);
    const std::vector<int64_t> order = stats.by_kl();
    r.dims.assign(order.begin(), order.begin() + std::min<int64_t>(opt.dims.top_kl, D));
  }
  for (int s = 0; s < opt.steps; ++s) r.values.push_back(-opt.range + 2.0 * opt.range * s / (opt.steps - 1));
  const int64_t rows = static_cast<int64_t>(r.dims.size());
  std::vector<float> z;
  z.reserve(static_cast<size_t>(rows * opt.steps * D));
  for (int64_t d : r.dims)
    for (double v : r.values) {
      z.insert(z.end(), base.begin(), base.end());
      z[z.size() - static_cast<size_t>(D) + static_cast<size_t>(d)] = static_cast<float>(v);
    }
  r.grid = {rows, opt.steps, static_cast<int>(c.channels), static_cast<int>(c.height), static_cast<int>(c.width),
            decode_to_host(ctx, vae, z, rows * opt.steps)};
  return r;
}

}  // namespace cuvae
