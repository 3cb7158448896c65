// The subset of CUB the kernels use, for the emulated device: cub::BlockReduce (CUB's default
// BLOCK_REDUCE_WARP_REDUCTIONS algorithm) and cub::WarpReduce (shuffle-based), written against
// the emulated shuffles and barriers so that they behave as CUB's do on a GPU:
//   - each warp reduces with __shfl_down_sync at offsets 1, 2, 4, 8, 16; lane 0 holds the result;
//   - BlockReduce then has lane 0 of every warp store its aggregate in the caller's TempStorage,
//     waits at __syncthreads, and thread 0 folds the stored aggregates in warp order;
//   - the result is defined in thread 0 (lane 0) only; other threads hold partial values.
// A kernel that reuses TempStorage without a __syncthreads in between, or reads the result in
// another thread, therefore gets different bytes under different schedules, as it would on a GPU.
#pragma once

#ifndef CUVAE_EMU
#error "kernels/emu/cub.h is CUB for the emulated device only"
#endif

#include <type_traits>

#include "kernels/emu/device.h"

namespace cub {
inline namespace cuvae_emu {

/// x + y.
struct Sum {
  template <class T>
  T operator()(const T& a, const T& b) const {
    return a + b;
  }
};
/// max(x, y) (CUB's cub::Max: b when a < b).
struct Max {
  template <class T>
  T operator()(const T& a, const T& b) const {
    return a < b ? b : a;
  }
};
/// min(x, y) (CUB's cub::Min: b when b < a).
struct Min {
  template <class T>
  T operator()(const T& a, const T& b) const {
    return b < a ? b : a;
  }
};

enum BlockReduceAlgorithm { BLOCK_REDUCE_RAKING_COMMUTATIVE_ONLY, BLOCK_REDUCE_RAKING, BLOCK_REDUCE_WARP_REDUCTIONS };

namespace detail {
// Reduces x over the first `valid` lanes of the calling lane's logical warp of `width` lanes, of
// which the first `existing` exist and call this; the result is defined in its lane 0.
template <class T, class Op>
T warp_reduce(T x, Op op, int width, int valid, int existing) {
  const int lane = static_cast<int>(threadIdx.x + threadIdx.y * blockDim.x + threadIdx.z * blockDim.x * blockDim.y) % 32;
  const int first = lane / width * width, pos = lane - first;
  const unsigned members = existing == 32 ? 0xffffffffu : ((1u << existing) - 1u) << first;
  for (int offset = 1; offset < width; offset *= 2) {
    const T other = __shfl_down_sync(members, x, static_cast<unsigned>(offset), width);
    if (pos + offset < valid) x = op(x, other);
  }
  return x;
}
}  // namespace detail

/// Block-wide reduction of one value per thread (see the file comment). TempStorage must be
/// __shared__ and must not be reused before a __syncthreads().
template <class T, int BLOCK_DIM_X, BlockReduceAlgorithm ALGORITHM = BLOCK_REDUCE_WARP_REDUCTIONS, int BLOCK_DIM_Y = 1,
          int BLOCK_DIM_Z = 1>
class BlockReduce {
  static constexpr int kThreads = BLOCK_DIM_X * BLOCK_DIM_Y * BLOCK_DIM_Z;
  static constexpr int kWarps = (kThreads + 31) / 32;
  struct Storage {
    T warp_aggregates[kWarps];
  };

 public:
  /// Opaque storage the caller places in shared memory.
  struct TempStorage {
    alignas(T) unsigned char bytes[sizeof(Storage)];
  };

  explicit BlockReduce(TempStorage& storage)
      : s_(*reinterpret_cast<Storage*>(storage.bytes)),
        tid_(static_cast<int>(threadIdx.x + threadIdx.y * BLOCK_DIM_X + threadIdx.z * BLOCK_DIM_X * BLOCK_DIM_Y)) {}

  /// The sum over the block's threads, valid in thread 0.
  T Sum(T x) { return Reduce(x, cub::Sum{}, kThreads); }
  /// The sum over the first `num_valid` threads, valid in thread 0.
  T Sum(T x, int num_valid) { return Reduce(x, cub::Sum{}, num_valid); }
  /// op folded over the block's threads, valid in thread 0.
  template <class Op>
  T Reduce(T x, Op op) {
    return Reduce(x, op, kThreads);
  }
  /// op folded over the first `num_valid` threads, valid in thread 0.
  template <class Op>
  T Reduce(T x, Op op, int num_valid) {
    const int warp = tid_ / 32, lane = tid_ % 32;
    const int lanes = warp == kWarps - 1 ? kThreads - warp * 32 : 32;
    int valid = num_valid - warp * 32;
    valid = valid < 0 ? 0 : (valid > lanes ? lanes : valid);
    // A partial last warp's mask holds only the lanes it has.
    T agg = detail::warp_reduce(x, op, 32, valid, lanes);
    if (lane == 0) s_.warp_aggregates[warp] = agg;
    __syncthreads();
    if (tid_ == 0)
      for (int w = 1; w < kWarps; ++w)
        if (w * 32 < num_valid) agg = op(agg, s_.warp_aggregates[w]);
    return agg;
  }

 private:
  Storage& s_;
  int tid_;
};

/// Reduction over a logical warp of LOGICAL_WARP_THREADS lanes by shuffles (CUB's
/// WarpReduceShfl); the result is valid in the logical warp's lane 0. TempStorage is unused,
/// as with CUB's shuffle variant.
template <class T, int LOGICAL_WARP_THREADS = 32>
class WarpReduce {
  static_assert(LOGICAL_WARP_THREADS >= 1 && LOGICAL_WARP_THREADS <= 32 &&
                    (LOGICAL_WARP_THREADS & (LOGICAL_WARP_THREADS - 1)) == 0,
                "logical warps are a power of two up to 32 lanes");

 public:
  struct TempStorage {};
  explicit WarpReduce(TempStorage&) {}
  T Sum(T x) { return detail::warp_reduce(x, cub::Sum{}, LOGICAL_WARP_THREADS, LOGICAL_WARP_THREADS, LOGICAL_WARP_THREADS); }
  T Sum(T x, int valid_items) { return detail::warp_reduce(x, cub::Sum{}, LOGICAL_WARP_THREADS, valid_items, LOGICAL_WARP_THREADS); }
  template <class Op>
  T Reduce(T x, Op op) {
    return detail::warp_reduce(x, op, LOGICAL_WARP_THREADS, LOGICAL_WARP_THREADS, LOGICAL_WARP_THREADS);
  }
  template <class Op>
  T Reduce(T x, Op op, int valid_items) {
    return detail::warp_reduce(x, op, LOGICAL_WARP_THREADS, valid_items, LOGICAL_WARP_THREADS);
  }
};

}  // namespace cuvae_emu
}  // namespace cub
