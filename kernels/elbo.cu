#include "kernels/elbo.h"

#include <climits>
#include <cub/block/block_reduce.cuh>

#include "core/philox.h"
#include "kernels/launch.cuh"

namespace cuvae {
namespace {

constexpr int kImageThreads = 256;  // threads of the per-image block
constexpr int kMeanThreads = 512;   // threads of the batch-mean block

// One block per image i: the BCE sum over its p pixels (writing dlogits on the way) and the
// KL sum over its d latents (writing dmu, dlogvar), both reduced with cub::BlockReduce.
__global__ void __launch_bounds__(kImageThreads)
    elbo_image_kernel(const float* __restrict__ logits, const float* __restrict__ x,
                      const float* __restrict__ mu, const float* __restrict__ logvar,
                      float* __restrict__ recon, float* __restrict__ kl,
                      float* __restrict__ dlogits, float* __restrict__ dmu,
                      float* __restrict__ dlogvar, int64_t p, int64_t d, float beta, float inv_n,
                      bool binarize, bool mse, uint64_t seed, uint64_t offset, const StepState* st) {
  uint64_t base = 0;  // the batch's first pixel within a data-parallel global batch
  if (st != nullptr) {  // this step's values, read when the kernel runs
    beta = st->kl_weight;
    offset += st->philox_offset;
    base = static_cast<uint64_t>(st->row_base * p);
  }
  using Reduce = cub::BlockReduce<float, kImageThreads>;
  __shared__ typename Reduce::TempStorage tmp;
  const int64_t i = blockIdx.x;

  float rec = 0.0f;
  for (int64_t j = threadIdx.x; j < p; j += kImageThreads) {
    const int64_t k = i * p + j;
    const float l = logits[k];
    float t = x[k];
    if (binarize) t = philox_uniform_at(seed, offset, base + static_cast<uint64_t>(k)) < t ? 1.0f : 0.0f;
    const float e = expf(-fabsf(l));  // exp(-|l|) in (0, 1]: no overflow for any l
    const float sig = l >= 0.0f ? 1.0f / (1.0f + e) : e / (1.0f + e);
    if (mse) {
      rec += (sig - t) * (sig - t);
      if (dlogits != nullptr) dlogits[k] = 2.0f * (sig - t) * sig * (1.0f - sig) * inv_n;
    } else {
      rec += fmaxf(l, 0.0f) - l * t + log1pf(e);
      if (dlogits != nullptr) dlogits[k] = (sig - t) * inv_n;
    }
  }
  const float rec_sum = Reduce(tmp).Sum(rec);
  __syncthreads();  // tmp is reused below

  float kls = 0.0f;
  for (int64_t j = threadIdx.x; j < d; j += kImageThreads) {
    const int64_t k = i * d + j;
    const float m = mu[k], lv = logvar[k];
    const float var = expf(lv);
    kls += m * m + var - 1.0f - lv;
    if (dmu != nullptr) dmu[k] = beta * m * inv_n;
    if (dlogvar != nullptr) dlogvar[k] = beta * 0.5f * (var - 1.0f) * inv_n;
  }
  const float kl_sum = Reduce(tmp).Sum(kls);
  if (threadIdx.x == 0) {
    recon[i] = rec_sum;
    kl[i] = 0.5f * kl_sum;
  }
}

// loss[0] = (1/n) sum_i (recon[i] + beta*kl[i]) in one block: each thread sums a fixed
// strided subset, then a fixed-shape tree reduction, so the result is bitwise reproducible.
__global__ void __launch_bounds__(kMeanThreads)
    elbo_mean_kernel(const float* __restrict__ recon, const float* __restrict__ kl,
                     float* __restrict__ loss, int64_t n, float beta, const StepState* st) {
  if (st != nullptr) beta = st->kl_weight;
  using Reduce = cub::BlockReduce<float, kMeanThreads>;
  __shared__ typename Reduce::TempStorage tmp;
  float acc = 0.0f;
  for (int64_t i = threadIdx.x; i < n; i += kMeanThreads) acc += recon[i] + beta * kl[i];
  const float total = Reduce(tmp).Sum(acc);
  if (threadIdx.x == 0) loss[0] = total / static_cast<float>(n);
}

}  // namespace

template <>
void elbo_cuda(const float* logits, const float* x, const float* mu, const float* logvar,
               float* recon, float* kl, float* loss, float* dlogits, float* dmu, float* dlogvar,
               const ElboConfig& cfg, detail::DeviceStream s) {
  check_elbo_config(cfg);
  CUVAE_CHECK(recon != nullptr && kl != nullptr && loss != nullptr,
              "elbo_cuda: recon, kl and loss must not be null");
  CUVAE_CHECK(cfg.n <= INT_MAX, "elbo_cuda: batch of " << cfg.n << " images is too large");
  const float inv_n = 1.0f / static_cast<float>(cfg.n);
  detail::launch<elbo_image_kernel>(static_cast<unsigned>(cfg.n), kImageThreads, 0, s, logits, x, mu, logvar, recon, kl, dlogits, dmu, dlogvar, cfg.p, cfg.d, cfg.beta, inv_n, cfg.binarize, cfg.mse, cfg.seed, cfg.offset, cfg.state);
  detail::launch<elbo_mean_kernel>(1, kMeanThreads, 0, s, recon, kl, loss, cfg.n, cfg.beta, cfg.state);
}

}  // namespace cuvae
