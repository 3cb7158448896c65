#include <climits>
#include <cmath>
#include <cub/block/block_reduce.cuh>

#include "host/check.h"
#include "kernels/conditional.h"
#include "kernels/launch.cuh"

namespace cuvae {
namespace {

constexpr int kReduceThreads = 256;

__global__ void concat_onehot_kernel(const float* __restrict__ feat, const int32_t* __restrict__ labels, int64_t n,
                                     int64_t f, int64_t k, float* __restrict__ out) {
  const int64_t w = f + k, total = n * w;
  const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t idx = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; idx < total; idx += stride) {
    const int64_t i = idx / w, j = idx - i * w;
    out[idx] = j < f ? feat[i * f + j] : (j - f == static_cast<int64_t>(labels[i]) ? 1.0f : 0.0f);
  }
}

__global__ void take_columns_kernel(const float* __restrict__ src, int64_t n, int64_t f, int64_t k,
                                    float* __restrict__ dst) {
  const int64_t total = n * f;
  const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t idx = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; idx < total; idx += stride) {
    const int64_t i = idx / f, j = idx - i * f;
    dst[idx] = src[i * (f + k) + j];
  }
}

// One block per latent dimension j: the batch mean of its KL term, and the floor.
__global__ void __launch_bounds__(kReduceThreads)
    free_bits_dim_kernel(const float* __restrict__ mu, const float* __restrict__ logvar, int64_t n, int64_t d,
                         float lambda, float* __restrict__ dmu, float* __restrict__ dlogvar,
                         float* __restrict__ kl_dim) {
  using Reduce = cub::BlockReduce<float, kReduceThreads>;
  __shared__ typename Reduce::TempStorage tmp;
  __shared__ float mean;
  const int64_t j = blockIdx.x;
  float s = 0.0f;
  for (int64_t i = threadIdx.x; i < n; i += kReduceThreads) {
    const float m = mu[i * d + j], lv = logvar[i * d + j];
    s += 0.5f * (m * m + expf(lv) - 1.0f - lv);
  }
  const float total = Reduce(tmp).Sum(s);
  if (threadIdx.x == 0) {
    mean = total / static_cast<float>(n);
    kl_dim[j] = mean;
  }
  __syncthreads();
  if (mean < lambda)
    for (int64_t i = threadIdx.x; i < n; i += kReduceThreads) {
      dmu[i * d + j] = 0.0f;
      dlogvar[i * d + j] = 0.0f;
    }
}

// loss[0] += beta * Σ_j max(0, lambda − kl_dim[j]) in one block (fixed order).
__global__ void __launch_bounds__(kReduceThreads)
    free_bits_loss_kernel(const float* __restrict__ kl_dim, int64_t d, float lambda, float beta,
                          float* __restrict__ loss, const StepState* st) {
  if (st != nullptr) beta = st->kl_weight;
  using Reduce = cub::BlockReduce<float, kReduceThreads>;
  __shared__ typename Reduce::TempStorage tmp;
  float s = 0.0f;
  for (int64_t j = threadIdx.x; j < d; j += kReduceThreads) s += fmaxf(0.0f, lambda - kl_dim[j]);
  const float total = Reduce(tmp).Sum(s);
  if (threadIdx.x == 0) loss[0] += beta * total;
}

}  // namespace

template <>
void concat_onehot_cuda(const float* feat, const int32_t* labels, int64_t n, int64_t f, int64_t k, float* out,
                        detail::DeviceStream s) {
  CUVAE_CHECK(n >= 0 && f >= 0 && k >= 1, "concat_onehot_cuda: bad sizes n=" << n << " f=" << f << " k=" << k);
  const int64_t total = n * (f + k);
  if (total == 0) return;
  detail::launch<concat_onehot_kernel>(detail::grid_for(total), detail::kBlock, 0, s, feat, labels, n, f, k, out);
}

template <>
void take_columns_cuda(const float* src, int64_t n, int64_t f, int64_t k, float* dst, detail::DeviceStream s) {
  CUVAE_CHECK(n >= 0 && f >= 0 && k >= 0, "take_columns_cuda: bad sizes n=" << n << " f=" << f << " k=" << k);
  const int64_t total = n * f;
  if (total == 0) return;
  detail::launch<take_columns_kernel>(detail::grid_for(total), detail::kBlock, 0, s, src, n, f, k, dst);
}

template <>
void free_bits_cuda(const float* mu, const float* logvar, int64_t n, int64_t d, float lambda, float beta,
                    float* dmu, float* dlogvar, float* kl_dim, float* loss, detail::DeviceStream s,
                    const StepState* step_state) {
  CUVAE_CHECK(n >= 1 && d >= 1 && d <= INT_MAX, "free_bits_cuda: bad sizes n=" << n << " d=" << d);
  CUVAE_CHECK(std::isfinite(lambda) && lambda >= 0.0f, "free_bits_cuda: lambda must be finite and >= 0, got " << lambda);
  detail::launch<free_bits_dim_kernel>(static_cast<unsigned>(d), kReduceThreads, 0, s, mu, logvar, n, d, lambda, dmu, dlogvar, kl_dim);
  detail::launch<free_bits_loss_kernel>(1, kReduceThreads, 0, s, kl_dim, d, lambda, beta, loss, step_state);
}

}  // namespace cuvae
