#include "kernels/softmax_xent.h"

#include <math_constants.h>

#include <cub/block/block_reduce.cuh>
#include <cub/warp/warp_reduce.cuh>

#include "kernels/launch.cuh"

namespace cuvae {
namespace {

constexpr int kWarp = 32;
constexpr int kRowWarps = detail::kBlock / kWarp;  // rows in flight per block of the row kernel
constexpr int kMeanThreads = 512;                  // threads of the batch-mean block
constexpr int64_t kMaxClasses = 1024;              // at most 32 logits per lane

// max(a, b) for cub::WarpReduce::Reduce (independent of the CCCL version's functor names).
struct MaxOp {
  __device__ __forceinline__ float operator()(float a, float b) const { return fmaxf(a, b); }
};

// One warp per row i (grid-stride over rows): the row maximum and the sum of exponentials by
// warp reductions (broadcast from lane 0), the loss, then p = softmax(l) into probs and
// (p - [j == y]) / n into dlogits. logits and dlogits may alias, so neither is __restrict__.
__global__ void __launch_bounds__(detail::kBlock)
    softmax_xent_row_kernel(const float* logits, const int32_t* __restrict__ labels, int64_t n,
                            int64_t k, float* __restrict__ loss, float* dlogits, float* probs,
                            float inv_n) {
  using WarpReduce = cub::WarpReduce<float>;
  __shared__ typename WarpReduce::TempStorage tmp[kRowWarps];
  const int warp = static_cast<int>(threadIdx.x) / kWarp;
  const int lane = static_cast<int>(threadIdx.x) % kWarp;
  const int64_t stride = static_cast<int64_t>(gridDim.x) * kRowWarps;
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * kRowWarps + warp; i < n; i += stride) {
    const float* l = logits + i * k;
    float m = -CUDART_INF_F;
    for (int64_t j = lane; j < k; j += kWarp) m = fmaxf(m, l[j]);
    m = __shfl_sync(0xffffffffu, WarpReduce(tmp[warp]).Reduce(m, MaxOp()), 0);
    float s = 0.0f;
    for (int64_t j = lane; j < k; j += kWarp) s += expf(l[j] - m);
    s = __shfl_sync(0xffffffffu, WarpReduce(tmp[warp]).Sum(s), 0);
    const int32_t y = labels[i];
    const bool valid = y >= 0 && y < k;
    const float ly = valid ? l[y] : 0.0f;
    if (lane == 0) loss[i] = valid ? (m - ly) + logf(s) : CUDART_NAN_F;
    __syncwarp();  // every lane has read l[y] before dlogits (maybe logits) is written
    for (int64_t j = lane; j < k; j += kWarp) {
      const float p = expf(l[j] - m) / s;
      if (probs != nullptr) probs[i * k + j] = p;
      if (dlogits != nullptr) dlogits[i * k + j] = (p - (j == y ? 1.0f : 0.0f)) * inv_n;
    }
  }
}

// mean_loss[0] = (1/n) sum_i loss[i] in one block: each thread sums a fixed strided subset,
// then cub::BlockReduce combines them in a fixed order, so the result is reproducible.
__global__ void __launch_bounds__(kMeanThreads)
    softmax_xent_mean_kernel(const float* __restrict__ loss, float* __restrict__ mean_loss,
                             int64_t n) {
  using Reduce = cub::BlockReduce<float, kMeanThreads>;
  __shared__ typename Reduce::TempStorage tmp;
  float acc = 0.0f;
  for (int64_t i = threadIdx.x; i < n; i += kMeanThreads) acc += loss[i];
  const float total = Reduce(tmp).Sum(acc);
  if (threadIdx.x == 0) mean_loss[0] = total / static_cast<float>(n);
}

}  // namespace

template <>
void softmax_xent_cuda(const float* logits, const int32_t* labels, int64_t n, int64_t k,
                       float* loss, float* mean_loss, float* dlogits, float* probs, detail::DeviceStream s) {
  CUVAE_CHECK(n >= 1 && k >= 1,
              "softmax_xent_cuda: sizes must be positive, got n=" << n << " k=" << k);
  CUVAE_CHECK(k <= kMaxClasses,
              "softmax_xent_cuda: " << k << " classes, at most " << kMaxClasses << " supported");
  CUVAE_CHECK(loss != nullptr, "softmax_xent_cuda: loss must not be null");
  const float inv_n = 1.0f / static_cast<float>(n);
  detail::launch<softmax_xent_row_kernel>(detail::grid_for(n, kRowWarps), detail::kBlock, 0, s, logits, labels, n, k, loss, dlogits, probs, inv_n);
  if (mean_loss != nullptr) {
    detail::launch<softmax_xent_mean_kernel>(1, kMeanThreads, 0, s, loss, mean_loss, n);
  }
}

}  // namespace cuvae
