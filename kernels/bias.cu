#include "kernels/bias.h"

#include <climits>
#include <cub/block/block_reduce.cuh>

#include "kernels/launch.cuh"

namespace cuvae {
namespace {

constexpr int kGradThreads = 256;

__global__ void add_bias_kernel(float* __restrict__ y, const float* __restrict__ bias,
                                int64_t total, int64_t c, int64_t hw) {
  const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t idx = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; idx < total;
       idx += stride)
    y[idx] += bias[(idx / hw) % c];
}

// Block k sums channel k over the n*hw elements dy[i, k, j].
__global__ void __launch_bounds__(kGradThreads)
    bias_grad_kernel(const float* __restrict__ dy, float* __restrict__ dbias, int64_t n, int64_t c,
                     int64_t hw) {
  using Reduce = cub::BlockReduce<float, kGradThreads>;
  __shared__ typename Reduce::TempStorage tmp;
  const int64_t k = blockIdx.x;
  const int64_t count = n * hw;
  float acc = 0.0f;
  for (int64_t e = threadIdx.x; e < count; e += kGradThreads) {
    const int64_t i = e / hw, j = e - i * hw;
    acc += dy[(i * c + k) * hw + j];
  }
  const float total = Reduce(tmp).Sum(acc);
  if (threadIdx.x == 0) dbias[k] = total;
}

}  // namespace

template <>
void add_bias_nchw_cuda(float* y, const float* bias, int64_t n, int64_t c, int64_t hw, detail::DeviceStream s) {
  CUVAE_CHECK(n >= 0 && c >= 0 && hw >= 0,
              "add_bias_nchw_cuda: negative size n=" << n << " c=" << c << " hw=" << hw);
  const int64_t total = n * c * hw;
  if (total == 0) return;
  detail::launch<add_bias_kernel>(detail::grid_for(total), detail::kBlock, 0, s, y, bias, total, c, hw);
}

template <>
void bias_grad_nchw_cuda(const float* dy, float* dbias, int64_t n, int64_t c, int64_t hw,
                         detail::DeviceStream s) {
  CUVAE_CHECK(n >= 0 && c >= 0 && hw >= 0,
              "bias_grad_nchw_cuda: negative size n=" << n << " c=" << c << " hw=" << hw);
  CUVAE_CHECK(c <= INT_MAX, "bias_grad_nchw_cuda: too many channels " << c);
  if (c == 0) return;
  detail::launch<bias_grad_kernel>(static_cast<unsigned>(c), kGradThreads, 0, s, dy, dbias, n, c, hw);
}

}  // namespace cuvae
