#include "jobs/analysis/likelihood.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <limits>

#include "core/check.h"
#include "core/philox.h"
#include "io/metrics.h"
#include "jobs/batching.h"
#include "kernels/elbo.h"

namespace cuvae {

double log_mean_exp(const double* v, int64_t n) {
  LogMeanExp l;
  for (int64_t i = 0; i < n; ++i) l.add(v[i]);
  return l.value();
}

void LogMeanExp::add(double v) {
  ++n;
  if (std::isnan(v) || std::isnan(max)) {
    max = std::numeric_limits<double>::quiet_NaN();
    return;
  }
  if (v == -std::numeric_limits<double>::infinity()) return;
  if (v > max) {
    sum = sum * std::exp(max - v) + 1.0;  // exp(−inf) = 0 on the first finite value
    max = v;
  } else {
    sum += std::exp(v - max);
  }
}

double LogMeanExp::value() const {
  if (n == 0 || sum == 0) return std::isnan(max) ? max : -std::numeric_limits<double>::infinity();
  if (std::isnan(max) || std::isinf(max)) return max;
  return max + std::log(sum / static_cast<double>(n));
}

double iwae_log_weight(double recon, const float* mu, const float* logvar, const float* eps, int64_t D) {
  double s = -recon;
  for (int64_t d = 0; d < D; ++d) {
    const double e = eps[d], lv = logvar[d];
    const double z = static_cast<double>(mu[d]) + std::exp(0.5 * lv) * e;
    s += -0.5 * z * z + 0.5 * (e * e + lv);
  }
  return s;
}

Dataset binarized_copy(const Dataset& data, uint64_t seed) {
  Dataset b = data;
  for (size_t i = 0; i < b.images.size(); ++i) {
    const float u = philox_uniform_at(seed, 0, i);
    b.images[i] = u < static_cast<float>(data.images[i]) / 255.0f ? 255 : 0;
  }
  b.name = data.name + " (binarized)";
  return b;
}

NllResult estimate_nll(Context& ctx, ConvVAE& model, const Dataset& data, const NllOptions& opt) {
  const VaeConfig& c = model.config();
  if (c.is_ae())
    CUVAE_FAIL(option("nll") << " needs a VAE checkpoint: an autoencoder has no q(z|x) to sample from");
  if (opt.k < 1) CUVAE_FAIL(option("nll") << " must be at least 1 importance sample, got " << opt.k);
  CUVAE_CHECK(opt.chunk_rows >= 1, "estimate_nll: chunk_rows must be >= 1");
  if (data.c != c.channels || data.h != c.height || data.w != c.width)
    CUVAE_FAIL("data set '" << data.name << "' has images of " << data.c << "x" << data.h << "x" << data.w
                            << " but the model expects " << c.channels << "x" << c.height << "x" << c.width);
  const int64_t n = (opt.limit > 0 && opt.limit < data.n) ? opt.limit : data.n;
  if (n < 1) CUVAE_FAIL("data set '" << data.name << "' has no images to evaluate");
  const int64_t D = c.latent, P = c.pixels();
  // Rows per decoder pass: S samples of each of B images.
  const int64_t S = std::min(opt.k, opt.chunk_rows);
  const int64_t B = std::max<int64_t>(1, std::min<int64_t>(opt.chunk_rows / S, 500));
  const auto t0 = std::chrono::steady_clock::now();

  NllResult r;
  r.n = n;
  r.k = opt.k;
  r.per_image.resize(static_cast<size_t>(n));
  Tensor zt({B * S, D}, ctx.device()), xt({B * S, c.channels, c.height, c.width}, ctx.device());
  Tensor zeros({B * S, D}, ctx.device()), recon({B * S}, ctx.device()), kl({B * S}, ctx.device());
  Tensor loss({1}, ctx.device());
  std::vector<float> zh(static_cast<size_t>(B * S * D)), eh(static_cast<size_t>(B * S * D)),
      xrep(static_cast<size_t>(B * S * P));
  // This process's images [lo, hi): all n, or its share of them over the ranks.
  const bool sharded = opt.comm != nullptr && opt.comm->distributed();
  const std::pair<int64_t, int64_t> range = sharded ? opt.comm->shard(n) : std::pair<int64_t, int64_t>{0, n};
  const int64_t lo = range.first, hi = range.second;  // plain names: the batch lambda captures them
  const Dataset shard = sharded ? dataset_rows(data, lo, hi) : Dataset{};  // one process: no copy
  ProgressBar bar("nll K=" + std::to_string(opt.k), hi - lo, opt.progress && (!sharded || opt.comm->writes()));
  double sum_k1 = 0;
  if (hi > lo) {
    const DeviceDataset dd(sharded ? shard : data, ctx.device());
    for_each_batch(ctx, dd, B, hi - lo, [&](const Batch& batch) {
      const int64_t first = lo + batch.first, b = batch.size;  // first: the global index of the batch's first image
      const std::vector<float> xh = batch.x.to_vector();  // each image is repeated for its samples
      model.encode(ctx, batch.x);
      const std::vector<float> mu = model.mu().to_vector(), lv = model.logvar().to_vector();
      std::vector<LogMeanExp> acc(static_cast<size_t>(b));
      for (int64_t s0 = 0; s0 < opt.k; s0 += S) {
        const int64_t s = std::min(S, opt.k - s0), rows = b * s;
        for (int64_t i = 0; i < b; ++i) {
          const int64_t g = first + i;
          for (int64_t j = 0; j < s; ++j) {
            const size_t row = static_cast<size_t>(i * s + j);
            for (int64_t d = 0; d < D; ++d) {
              const size_t q = static_cast<size_t>(i * D + d);
              const float e = philox_normal(opt.seed, opt.offset + static_cast<uint64_t>(s0 + j),
                                            static_cast<uint64_t>(g * D + d));
              eh[row * D + d] = e;
              zh[row * D + d] = mu[q] + std::exp(0.5f * lv[q]) * e;
            }
            std::copy_n(xh.begin() + i * P, P, xrep.begin() + static_cast<int64_t>(row) * P);
          }
        }
        Tensor z = zt.rows(0, rows), xr = xt.rows(0, rows);
        memcpy_any(z.data(), ctx.device(), zh.data(), Device::CPU, static_cast<size_t>(rows * D) * sizeof(float));
        memcpy_any(xr.data(), ctx.device(), xrep.data(), Device::CPU, static_cast<size_t>(rows * P) * sizeof(float));
        Tensor& logits = model.decode(ctx, z);
        Tensor rc = recon.rows(0, rows), kt = kl.rows(0, rows), zr = zeros.rows(0, rows);
        ElboConfig ec;
        ec.beta = 0.0f;
        elbo(ctx, logits, xr, z, zr, &rc, &kt, loss, nullptr, nullptr, nullptr, ec);
        const std::vector<float> rec = rc.to_vector();
        for (int64_t i = 0; i < b; ++i)
          for (int64_t j = 0; j < s; ++j) {
            const size_t row = static_cast<size_t>(i * s + j);
            const double lw = iwae_log_weight(rec[row], mu.data() + i * D, lv.data() + i * D, eh.data() + row * D, D);
            if (s0 + j == 0) sum_k1 += -lw;
            acc[static_cast<size_t>(i)].add(lw);
          }
      }
      for (int64_t i = 0; i < b; ++i) r.per_image[static_cast<size_t>(first + i)] = -acc[static_cast<size_t>(i)].value();
      bar.update(first + b - lo);
    });
  }
  bar.finish();
  if (sharded) {  // each rank filled its share of per_image; the rest are zeros
    opt.comm->allreduce_sum(r.per_image.data(), n);
    opt.comm->allreduce_sum(&sum_k1, 1);
  }
  double mean = 0;
  for (double v : r.per_image) mean += v;
  mean /= static_cast<double>(n);
  double var = 0;
  for (double v : r.per_image) var += (v - mean) * (v - mean);
  r.nll = mean;
  r.nll_stderr = n > 1 ? std::sqrt(var / static_cast<double>(n - 1) / static_cast<double>(n)) : 0.0;
  r.neg_elbo_k1 = sum_k1 / static_cast<double>(n);
  r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  if (!std::isfinite(r.nll)) CUVAE_FAIL("the NLL estimate is not finite (the model produced non-finite values)");
  return r;
}

}  // namespace cuvae
