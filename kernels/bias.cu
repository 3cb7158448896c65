#include "kernels/bias.h"

#include <climits>
#include <cub/block/block_reduce.cuh>

#include "kernels/launch.cuh"

namespace cuvae {
namespace {

constexpr int kGradThreads = 512;
constexpr int kVecThreads = 1024;                   // threads of the float4 kernel
constexpr int kColWidth = 32;                       // channels per block of the hw = 1 kernel
constexpr int kColRows = kGradThreads / kColWidth;  // its row groups

// y[idx] += bias[channel of idx]. I is uint32_t when the tensor has at most INT32_MAX elements:
// two 64-bit divisions per element would make this memory-bound add compute-bound.
template <typename I>
__global__ void add_bias_kernel(float* __restrict__ y, const float* __restrict__ bias, I total, I c,
                                I hw) {
  const I stride = static_cast<I>(gridDim.x) * blockDim.x;
  for (I idx = static_cast<I>(blockIdx.x) * blockDim.x + threadIdx.x; idx < total; idx += stride)
    y[idx] += bias[(idx / hw) % c];
}

// The sum of one loaded element: a float, or the four floats of a float4 as (x + y) + (z + w).
__device__ __forceinline__ float element_sum(float v) { return v; }
__device__ __forceinline__ float element_sum(float4 v) { return (v.x + v.y) + (v.z + v.w); }

// This thread's part of channel k's sum over dy [n, c, hw] (V = float, or V = float4 with hw
// counting float4s), for a block of T threads. Thread t takes the channel's flattened elements
// e = t, t + T, t + 2T, ... (e = i·hw + j), so neighbouring threads read neighbouring elements of
// a row; (i, j) and the offset advance by fixed steps instead of a division per element, and the
// unrolled loop keeps several loads in flight. Each thread's order is fixed.
template <typename V, int T>
__device__ __forceinline__ float channel_part(const V* __restrict__ dy, int64_t n, int64_t c, int64_t hw, int64_t k) {
  const int64_t count = n * hw;
  const int64_t plane = c * hw;  // from dy[i, k, j] to dy[i + 1, k, j]
  const int64_t dj = T % hw;
  const int64_t doff = (T / hw) * plane + dj;  // from element e to e + T
  int64_t e = threadIdx.x;
  int64_t j = e % hw;
  int64_t off = (e / hw) * plane + k * hw + j;
  float acc = 0.0f;
#pragma unroll 4
  for (; e < count; e += T) {
    acc += element_sum(dy[off]);
    off += doff;
    j += dj;
    if (j >= hw) {  // the step crossed into the next row
      j -= hw;
      off += plane - hw;
    }
  }
  return acc;
}

// hw >= 2 (convolutions, batch norm). Block k sums channel k over its n·hw elements dy[i, k, j]
// (channel_part, then cub's block reduction, whose order is fixed too: deterministic, no atomics).
__global__ void __launch_bounds__(kGradThreads)
    bias_grad_kernel(const float* __restrict__ dy, float* __restrict__ dbias, int64_t n, int64_t c,
                     int64_t hw) {
  using Reduce = cub::BlockReduce<float, kGradThreads>;
  __shared__ typename Reduce::TempStorage tmp;
  const float total = Reduce(tmp).Sum(channel_part<float, kGradThreads>(dy, n, c, hw, blockIdx.x));
  if (threadIdx.x == 0) dbias[blockIdx.x] = total;
}

// hw % 4 == 0 and dy 16-byte aligned (the 28×28 and 14×14 maps): the same over float4s, with 1024
// threads. A block must keep many loads in flight to stream its channel: 512 threads with 4
// unrolled scalar loads hold 8 KB, which at the GPU's memory latency caps a block near 16 GB/s,
// the rate ncu measured for the VAE's last layer at batch 1024 (one channel of 3.2 MB in 203 µs);
// 1024 threads × 4 float4s hold 64 KB.
__global__ void __launch_bounds__(kVecThreads)
    bias_grad_vec4_kernel(const float* __restrict__ dy, float* __restrict__ dbias, int64_t n, int64_t c,
                          int64_t hw4) {
  using Reduce = cub::BlockReduce<float, kVecThreads>;
  __shared__ typename Reduce::TempStorage tmp;
  const float total =
      Reduce(tmp).Sum(channel_part<float4, kVecThreads>(reinterpret_cast<const float4*>(dy), n, c, hw4, blockIdx.x));
  if (threadIdx.x == 0) dbias[blockIdx.x] = total;
}

// hw = 1 (a Linear layer's [n, c]): block b sums the 32 columns k = 32b..32b+31 over the rows,
// each of 16 row groups taking rows y, y + 16, ... (a warp reads 32 neighbouring floats of a row),
// then one thread per column adds the 16 partial sums in order. Deterministic, no atomics.
__global__ void __launch_bounds__(kGradThreads)
    bias_grad_rows_kernel(const float* __restrict__ dy, float* __restrict__ dbias, int64_t n, int64_t c) {
  __shared__ float part[kColRows][kColWidth + 1];
  const int x = static_cast<int>(threadIdx.x) % kColWidth, y = static_cast<int>(threadIdx.x) / kColWidth;
  const int64_t k = static_cast<int64_t>(blockIdx.x) * kColWidth + x;
  float acc = 0.0f;
  if (k < c) {
#pragma unroll 4
    for (int64_t i = y; i < n; i += kColRows) acc += dy[i * c + k];
  }
  part[y][x] = acc;
  __syncthreads();
  if (y == 0 && k < c) {
    float sum = 0.0f;
    for (int r = 0; r < kColRows; ++r) sum += part[r][x];
    dbias[k] = sum;
  }
}

}  // namespace

template <>
void add_bias_nchw_cuda(float* y, const float* bias, int64_t n, int64_t c, int64_t hw, detail::DeviceStream s) {
  CUVAE_CHECK(n >= 0 && c >= 0 && hw >= 0,
              "add_bias_nchw_cuda: negative size n=" << n << " c=" << c << " hw=" << hw);
  const int64_t total = n * c * hw;
  if (total == 0) return;
  if (total <= INT32_MAX)
    detail::launch<add_bias_kernel<uint32_t>>(detail::grid_for(total), detail::kBlock, 0, s, y, bias,
                                              static_cast<uint32_t>(total), static_cast<uint32_t>(c),
                                              static_cast<uint32_t>(hw));
  else
    detail::launch<add_bias_kernel<int64_t>>(detail::grid_for(total), detail::kBlock, 0, s, y, bias, total, c, hw);
}

template <>
void bias_grad_nchw_cuda(const float* dy, float* dbias, int64_t n, int64_t c, int64_t hw,
                         detail::DeviceStream s) {
  CUVAE_CHECK(n >= 0 && c >= 0 && hw >= 0,
              "bias_grad_nchw_cuda: negative size n=" << n << " c=" << c << " hw=" << hw);
  CUVAE_CHECK(c <= INT_MAX, "bias_grad_nchw_cuda: too many channels " << c);
  if (c == 0) return;
  if (hw <= 1)  // hw = 0: no elements, so zeros, as n = 0 rows give
    detail::launch<bias_grad_rows_kernel>(static_cast<unsigned>((c + kColWidth - 1) / kColWidth), kGradThreads, 0, s,
                                          dy, dbias, hw == 0 ? int64_t{0} : n, c);
  else if (hw % 4 == 0 && detail::aligned16(dy))
    detail::launch<bias_grad_vec4_kernel>(static_cast<unsigned>(c), kVecThreads, 0, s, dy, dbias, n, c, hw / 4);
  else
    detail::launch<bias_grad_kernel>(static_cast<unsigned>(c), kGradThreads, 0, s, dy, dbias, n, c, hw);
}

}  // namespace cuvae
