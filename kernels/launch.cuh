// Launch helpers shared by the kernels/*.cu files (not a public header). Every .cu file is
// compiled twice: by nvcc for the GPU, and as host C++ with CUVAE_EMU defined for the emulated
// device (kernels/emu/), which supplies the CUDA names this file and the kernels use. Each
// compilation puts these helpers in its own inline namespace (gpu or emu) and defines the
// launchers for its own stream type (detail::DeviceStream), so both live in one program.
#pragma once

#include <algorithm>
#include <cstdint>
#include <utility>

#include "core/check.h"
#include "core/tensor.h"
#include "kernels/emu/stream.h"
#ifdef CUVAE_EMU
#include "kernels/emu/device.h"
#define CUVAE_DEVICE_ABI emu
#else
#include "core/cuda_check.h"
#define CUVAE_DEVICE_ABI gpu
#endif

namespace cuvae::detail {
inline namespace CUVAE_DEVICE_ABI {

#ifdef CUVAE_EMU
/// The stream type this compilation's launchers take.
using DeviceStream = EmuStream;
#else
/// The stream type this compilation's launchers take.
using DeviceStream = Stream;
/// The runtime type of a cuvae::Stream (they are the same type; this documents the cast).
inline cudaStream_t to_cuda(Stream s) { return static_cast<cudaStream_t>(s); }
#endif

/// The one way kernels are launched: Kernel over `grid` blocks of `block` threads with `shared`
/// bytes of dynamic shared memory, on stream `s` (the GPU) or on the emulated device (which runs
/// it to completion before returning). Throws cuvae::Error on a launch error, with CUDA's name
/// for it (an invalid configuration, too many threads for the kernel's __launch_bounds__, too
/// much shared memory).
template <auto Kernel, class... Args>
void launch(dim3 grid, dim3 block, size_t shared, DeviceStream s, Args&&... args) {
#ifdef CUVAE_EMU
  (void)s;
  ::cuvae::emu::launch<Kernel>(grid, block, shared, std::forward<Args>(args)...);
#else
  Kernel<<<grid, block, shared, to_cuda(s)>>>(std::forward<Args>(args)...);
  CUDA_CHECK_LAUNCH();
#endif
}

/// Dynamic shared memory of the running block (`extern __shared__`), as T*.
template <class T>
__device__ __forceinline__ T* dynamic_shared() {
#ifdef CUVAE_EMU
  return static_cast<T*>(::cuvae::emu::dynamic_shared());
#else
  extern __shared__ __align__(16) unsigned char cuvae_dynamic_shared[];
  return reinterpret_cast<T*>(cuvae_dynamic_shared);
#endif
}

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

/// True when `p` is 16-byte aligned, so float4 loads and stores may be used on it.
inline bool aligned16(const void* p) { return reinterpret_cast<std::uintptr_t>(p) % 16 == 0; }

/// N float arrays of one elementwise op, with which of them are read and which written.
template <int N>
struct Arrays {
  float* p[N];
  unsigned read = 0;   ///< bit k: array k is loaded
  unsigned write = 0;  ///< bit k: array k is stored
};

// The one elementwise skeleton: element i's values of the N arrays go through op(v) in registers
// (v[k] is array k's value; the op updates the written ones in place). Grid-stride over float4
// groups when every array is 16-byte aligned, then the n % 4 tail elements by the first threads;
// a plain grid-stride loop otherwise. An op may give `resolved()`, called once per thread before
// the loop (to read this step's scalars from device memory, e.g. a StepState). Arrays may alias
// (each element is read before the same thread writes it), so nothing is __restrict__.
// Element e of every array through op, one scalar at a time.
template <int N, class Op>
__device__ __forceinline__ void apply_at(const Arrays<N>& a, int64_t e, const Op& op) {
  float v[N];
#pragma unroll
  for (int k = 0; k < N; ++k) v[k] = (a.read >> k) & 1u ? a.p[k][e] : 0.0f;
  op(v);
#pragma unroll
  for (int k = 0; k < N; ++k)
    if ((a.write >> k) & 1u) a.p[k][e] = v[k];
}

template <int N, class Op>
__global__ void elementwise_vec4_kernel(Arrays<N> a, int64_t n, Op op_in) {
  const Op op = op_in.resolved();
  const int64_t n4 = n / 4;
  const int64_t tid = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t i = tid; i < n4; i += stride) {
    float4 q[N];
#pragma unroll
    for (int k = 0; k < N; ++k)
      q[k] = (a.read >> k) & 1u ? reinterpret_cast<const float4*>(a.p[k])[i] : make_float4(0.f, 0.f, 0.f, 0.f);
    float v[N];
#pragma unroll
    for (int k = 0; k < N; ++k) v[k] = q[k].x;
    op(v);
#pragma unroll
    for (int k = 0; k < N; ++k) q[k].x = v[k], v[k] = q[k].y;
    op(v);
#pragma unroll
    for (int k = 0; k < N; ++k) q[k].y = v[k], v[k] = q[k].z;
    op(v);
#pragma unroll
    for (int k = 0; k < N; ++k) q[k].z = v[k], v[k] = q[k].w;
    op(v);
#pragma unroll
    for (int k = 0; k < N; ++k) {
      q[k].w = v[k];
      if ((a.write >> k) & 1u) reinterpret_cast<float4*>(a.p[k])[i] = q[k];
    }
  }
  const int64_t e = n4 * 4 + tid;
  if (e < n) apply_at(a, e, op);
}

template <int N, class Op>
__global__ void elementwise_scalar_kernel(Arrays<N> a, int64_t n, Op op_in) {
  const Op op = op_in.resolved();
  const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t e = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; e < n; e += stride) apply_at(a, e, op);
}

/// Launches op over n elements of the arrays on `s` (vectorised when every array used is
/// 16-byte aligned). No allocation, no synchronisation; throws cuvae::Error on a launch error.
template <int N, class Op>
void launch_elementwise(const Arrays<N>& a, int64_t n, const Op& op, DeviceStream s) {
  if (n <= 0) return;
  bool vec = true;
  for (int k = 0; k < N; ++k)
    if (((a.read | a.write) >> k) & 1u) vec = vec && aligned16(a.p[k]);
  if (vec) {
    // grid_for launches at least one block, so threads 0..2 exist for the n % 4 tail.
    launch<elementwise_vec4_kernel<N, Op>>(grid_for(n / 4), kBlock, 0, s, a, n, op);
  } else {
    launch<elementwise_scalar_kernel<N, Op>>(grid_for(n), kBlock, 0, s, a, n, op);
  }
}

}  // namespace CUVAE_DEVICE_ABI
}  // namespace cuvae::detail
