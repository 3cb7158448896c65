#include <climits>
#include <cmath>
#include <cub/block/block_reduce.cuh>

#include "core/check.h"
#include "kernels/free_bits.h"
#include "kernels/launch.cuh"

namespace cuvae {
namespace {

constexpr int kReduceThreads = 256;

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
void free_bits_cuda(const float* mu, const float* logvar, int64_t n, int64_t d, float lambda, float beta,
                    float* dmu, float* dlogvar, float* kl_dim, float* loss, detail::DeviceStream s,
                    const StepState* step_state) {
  CUVAE_CHECK(n >= 1 && d >= 1 && d <= INT_MAX, "free_bits_cuda: bad sizes n=" << n << " d=" << d);
  CUVAE_CHECK(std::isfinite(lambda) && lambda >= 0.0f, "free_bits_cuda: lambda must be finite and >= 0, got " << lambda);
  detail::launch<free_bits_dim_kernel>(static_cast<unsigned>(d), kReduceThreads, 0, s, mu, logvar, n, d, lambda, dmu, dlogvar, kl_dim);
  detail::launch<free_bits_loss_kernel>(1, kReduceThreads, 0, s, kl_dim, d, lambda, beta, loss, step_state);
}

}  // namespace cuvae
