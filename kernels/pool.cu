#include "kernels/pool.h"

#include <cub/warp/warp_reduce.cuh>

#include "kernels/launch.cuh"

namespace cuvae {
namespace {

constexpr int kWarp = 32;
constexpr int kRowWarps = detail::kBlock / kWarp;  // rows in flight per block

// One warp per (i, k) row r of x [n*c, hw] (grid-stride over rows): each lane sums a fixed
// strided subset, cub::WarpReduce combines them in a fixed order, lane 0 writes the mean.
__global__ void __launch_bounds__(detail::kBlock)
    global_avg_pool_kernel(const float* __restrict__ x, float* __restrict__ y, int64_t rows,
                           int64_t hw) {
  using WarpReduce = cub::WarpReduce<float>;
  __shared__ typename WarpReduce::TempStorage tmp[kRowWarps];
  const int warp = static_cast<int>(threadIdx.x) / kWarp;
  const int lane = static_cast<int>(threadIdx.x) % kWarp;
  const int64_t stride = static_cast<int64_t>(gridDim.x) * kRowWarps;
  for (int64_t r = static_cast<int64_t>(blockIdx.x) * kRowWarps + warp; r < rows; r += stride) {
    float acc = 0.0f;
    for (int64_t j = lane; j < hw; j += kWarp) acc += x[r * hw + j];
    const float total = WarpReduce(tmp[warp]).Sum(acc);
    if (lane == 0) y[r] = total / static_cast<float>(hw);
  }
}

// dx[r, j] = dy[r] / hw over all n*c*hw elements (grid-stride).
__global__ void global_avg_pool_backward_kernel(const float* __restrict__ dy,
                                                float* __restrict__ dx, int64_t total, int64_t hw) {
  const float count = static_cast<float>(hw);
  const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t idx = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; idx < total;
       idx += stride)
    dx[idx] = dy[idx / hw] / count;
}

}  // namespace

template <>
void global_avg_pool_cuda(const float* x, float* y, int64_t n, int64_t c, int64_t hw, detail::DeviceStream s) {
  CUVAE_CHECK(n >= 0 && c >= 0 && hw >= 1,
              "global_avg_pool_cuda: bad size n=" << n << " c=" << c << " hw=" << hw);
  const int64_t rows = n * c;
  if (rows == 0) return;
  detail::launch<global_avg_pool_kernel>(detail::grid_for(rows, kRowWarps), detail::kBlock, 0, s, x, y, rows, hw);
}

template <>
void global_avg_pool_backward_cuda(const float* dy, float* dx, int64_t n, int64_t c, int64_t hw,
                                   detail::DeviceStream s) {
  CUVAE_CHECK(n >= 0 && c >= 0 && hw >= 1,
              "global_avg_pool_backward_cuda: bad size n=" << n << " c=" << c << " hw=" << hw);
  const int64_t total = n * c * hw;
  if (total == 0) return;
  detail::launch<global_avg_pool_backward_kernel>(detail::grid_for(total), detail::kBlock, 0, s, dy, dx, total, hw);
}

}  // namespace cuvae
