// Launch helpers shared by the kernels/*.cu files (CUDA only; not a public header).
#pragma once

#include <algorithm>
#include <cstdint>

#include "host/check.h"
#include "host/cuda_check.h"
#include "host/tensor.h"

namespace cuvae::detail {

/// Threads per block of the elementwise and per-row kernels.
constexpr int kBlock = 256;

/// Most blocks an elementwise grid-stride kernel is launched with: enough to fill an
/// H100/H200 (132 SMs x 2048 threads / 256 = 1056 blocks) several times over.
constexpr int64_t kMaxGrid = 8192;

/// Blocks for a grid-stride loop over `n` items with `block` threads each (at least 1).
inline unsigned grid_for(int64_t n, int block = kBlock) {
  const int64_t b = (n + block - 1) / block;
  return static_cast<unsigned>(std::clamp<int64_t>(b, 1, kMaxGrid));
}

/// The runtime type of a cuvae::Stream (they are the same type; this documents the cast).
inline cudaStream_t to_cuda(Stream s) { return static_cast<cudaStream_t>(s); }

}  // namespace cuvae::detail
