#include "kernels/accuracy.h"

#include <cub/block/block_reduce.cuh>

#include "kernels/launch.cuh"

namespace cuvae {
namespace {

constexpr int kThreads = 256;

// One block: each thread judges a strided subset of rows, then a block sum.
__global__ void __launch_bounds__(kThreads)
    count_correct_kernel(const float* __restrict__ logits, const int32_t* __restrict__ labels,
                         int64_t n, int64_t k, float* __restrict__ count) {
  using Reduce = cub::BlockReduce<int, kThreads>;
  __shared__ typename Reduce::TempStorage tmp;
  int mine = 0;
  for (int64_t i = threadIdx.x; i < n; i += kThreads) {
    const float* row = logits + i * k;
    int64_t best = 0;
    bool nan = isnan(row[0]);
    for (int64_t j = 1; j < k; ++j) {
      nan = nan || isnan(row[j]);
      if (row[j] > row[best]) best = j;
    }
    if (!nan && best == labels[i]) ++mine;
  }
  const int total = Reduce(tmp).Sum(mine);
  if (threadIdx.x == 0) *count += static_cast<float>(total);
}

}  // namespace

template <>
void count_correct_cuda(const float* logits, const int32_t* labels, int64_t n, int64_t k,
                        float* count, detail::DeviceStream s) {
  CUVAE_CHECK(n >= 0 && k >= 1, "count_correct_cuda: bad size n=" << n << " k=" << k);
  if (n == 0) return;
  detail::launch<count_correct_kernel>(1, kThreads, 0, s, logits, labels, n, k, count);
}

}  // namespace cuvae
