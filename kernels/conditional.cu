#include <climits>
#include <cmath>

#include "core/check.h"
#include "kernels/conditional.h"
#include "kernels/launch.cuh"

namespace cuvae {
namespace {


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

}  // namespace cuvae
