// The CUDA that kernels/*.cu use, for the emulated device: the same sources compiled as host C++
// (CUVAE_EMU defined, kernels/emu/include first on the include path) run on the CPU through
// kernels/emu/runtime.h. Provided: __global__, __device__, __host__, __forceinline__,
// __launch_bounds__ (checked at launch), __shared__ (static: one section refilled with 0xFF
// for every block; dynamic: detail::dynamic_shared), threadIdx/blockIdx/blockDim/gridDim,
// __syncthreads, __syncwarp, __shfl_sync/_up/_down/_xor with masks and widths, __ballot_sync,
// __any_sync, __all_sync, __activemask, the atomics, float2/float4 and friends with make_*, the
// float intrinsics and math functions the kernels call, and min/max as CUDA overloads them.
// Included through kernels/launch.cuh only.
#pragma once

#ifndef CUVAE_EMU
#error "kernels/emu/device.h is the emulated device's CUDA: include kernels/launch.cuh instead"
#endif

#include <math.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <string>
#include <tuple>
#include <type_traits>
#include <utility>

#include "kernels/emu/runtime.h"

// ---- keywords ----------------------------------------------------------------------------------
#define __global__
#define __device__
#define __host__
#define __forceinline__ inline __attribute__((always_inline))
#define __launch_bounds__(...)
// Static shared variables are function-local statics in one linker section (the runtime fills it
// with 0xFF before every block). A kernel template may not declare any: GCC keeps a template's
// statics in their own COMDAT sections, out of the runtime's reach (tests/emu_op_table.cpp
// checks the sources). `extern __shared__` is not supported: use detail::dynamic_shared.
#define __shared__ static __attribute__((section("cuvae_emu_shared")))
#define __constant__ static const

// ---- types ---------------------------------------------------------------------------------------
struct uint3 {
  unsigned x, y, z;
};
struct dim3 {
  unsigned x = 1, y = 1, z = 1;
  constexpr dim3(unsigned vx = 1, unsigned vy = 1, unsigned vz = 1) : x(vx), y(vy), z(vz) {}
};
struct alignas(8) float2 {
  float x, y;
};
struct alignas(16) float4 {
  float x, y, z, w;
};
struct alignas(8) int2 {
  int x, y;
};
struct alignas(16) int4 {
  int x, y, z, w;
};
struct alignas(16) double2 {
  double x, y;
};
inline float2 make_float2(float x, float y) { return {x, y}; }
inline float4 make_float4(float x, float y, float z, float w) { return {x, y, z, w}; }
inline int2 make_int2(int x, int y) { return {x, y}; }
inline int4 make_int4(int x, int y, int z, int w) { return {x, y, z, w}; }
inline double2 make_double2(double x, double y) { return {x, y}; }

// ---- built-in variables ----------------------------------------------------------------------------
namespace cuvae::emu::detail {
inline uint3 u3(const Dim3& d) { return {d.x, d.y, d.z}; }
}  // namespace cuvae::emu::detail
#define threadIdx (::cuvae::emu::detail::u3(::cuvae::emu::current().thread_idx))
#define blockIdx (::cuvae::emu::detail::u3(::cuvae::emu::current().block_idx))
#define blockDim (::cuvae::emu::detail::u3(::cuvae::emu::current().block_dim))
#define gridDim (::cuvae::emu::detail::u3(::cuvae::emu::current().grid_dim))
constexpr int warpSize = 32;

// ---- barriers and warp collectives -------------------------------------------------------------------
/// Block barrier. Each __syncthreads() in the source is told apart from the others by a static of
/// its own (one per expansion of the macro, through a lambda), not by its return address: an
/// optimising host compiler may duplicate one call into several paths (a loop some threads skip),
/// which must still count as one barrier, as it is one on the GPU.
#define __syncthreads()                            \
  ::cuvae::emu::syncthreads([] {                   \
    static const char cuvae_emu_barrier_site = 0;  \
    return static_cast<const void*>(&cuvae_emu_barrier_site); \
  }())
inline void __syncwarp(unsigned mask = 0xffffffffu) {
  ::cuvae::emu::warp_collective(::cuvae::emu::WarpOp::Sync, mask, 0, 0, 32);
}
inline unsigned __activemask() { return ::cuvae::emu::active_mask(); }

namespace cuvae::emu::detail {
template <class T>
T shuffle(WarpOp op, unsigned mask, T v, int arg, int width) {
  static_assert(std::is_trivially_copyable_v<T> && sizeof(T) <= 8, "shuffles move at most 8 bytes");
  uint64_t bits = 0;
  std::memcpy(&bits, &v, sizeof(T));
  bits = warp_collective(op, mask, bits, arg, width);
  T out;
  std::memcpy(&out, &bits, sizeof(T));
  return out;
}
}  // namespace cuvae::emu::detail

template <class T>
T __shfl_sync(unsigned mask, T v, int src_lane, int width = 32) {
  return ::cuvae::emu::detail::shuffle(::cuvae::emu::WarpOp::ShflIdx, mask, v, src_lane, width);
}
template <class T>
T __shfl_up_sync(unsigned mask, T v, unsigned delta, int width = 32) {
  return ::cuvae::emu::detail::shuffle(::cuvae::emu::WarpOp::ShflUp, mask, v, static_cast<int>(delta), width);
}
template <class T>
T __shfl_down_sync(unsigned mask, T v, unsigned delta, int width = 32) {
  return ::cuvae::emu::detail::shuffle(::cuvae::emu::WarpOp::ShflDown, mask, v, static_cast<int>(delta), width);
}
template <class T>
T __shfl_xor_sync(unsigned mask, T v, int lane_mask, int width = 32) {
  return ::cuvae::emu::detail::shuffle(::cuvae::emu::WarpOp::ShflXor, mask, v, lane_mask, width);
}
inline unsigned __ballot_sync(unsigned mask, int pred) {
  return static_cast<unsigned>(::cuvae::emu::warp_collective(::cuvae::emu::WarpOp::Ballot, mask, pred != 0, 0, 32));
}
inline int __any_sync(unsigned mask, int pred) {
  return static_cast<int>(::cuvae::emu::warp_collective(::cuvae::emu::WarpOp::Any, mask, pred != 0, 0, 32));
}
inline int __all_sync(unsigned mask, int pred) {
  return static_cast<int>(::cuvae::emu::warp_collective(::cuvae::emu::WarpOp::All, mask, pred != 0, 0, 32));
}

// ---- atomics (a block's threads never run at the same time, so a plain read-modify-write is atomic) --
namespace cuvae::emu::detail {
template <class T, class F>
T atomic_update(T* p, F f) {
  const T old = *p;
  *p = f(old);
  return old;
}
}  // namespace cuvae::emu::detail
template <class T>
T atomicAdd(T* p, T v) {
  return ::cuvae::emu::detail::atomic_update(p, [v](T o) { return o + v; });
}
template <class T>
T atomicSub(T* p, T v) {
  return ::cuvae::emu::detail::atomic_update(p, [v](T o) { return o - v; });
}
template <class T>
T atomicMax(T* p, T v) {
  return ::cuvae::emu::detail::atomic_update(p, [v](T o) { return o < v ? v : o; });
}
template <class T>
T atomicMin(T* p, T v) {
  return ::cuvae::emu::detail::atomic_update(p, [v](T o) { return v < o ? v : o; });
}
template <class T>
T atomicExch(T* p, T v) {
  return ::cuvae::emu::detail::atomic_update(p, [v](T) { return v; });
}
template <class T>
T atomicCAS(T* p, T compare, T v) {
  return ::cuvae::emu::detail::atomic_update(p, [compare, v](T o) { return o == compare ? v : o; });
}

// ---- math: CUDA's overloads and intrinsics --------------------------------------------------------
inline int min(int a, int b) { return a < b ? a : b; }
inline unsigned min(unsigned a, unsigned b) { return a < b ? a : b; }
inline long min(long a, long b) { return a < b ? a : b; }
inline long long min(long long a, long long b) { return a < b ? a : b; }
inline float min(float a, float b) { return fminf(a, b); }
inline double min(double a, double b) { return fmin(a, b); }
inline int max(int a, int b) { return a > b ? a : b; }
inline unsigned max(unsigned a, unsigned b) { return a > b ? a : b; }
inline long max(long a, long b) { return a > b ? a : b; }
inline long long max(long long a, long long b) { return a > b ? a : b; }
inline float max(float a, float b) { return fmaxf(a, b); }
inline double max(double a, double b) { return fmax(a, b); }
inline float __expf(float x) { return expf(x); }
inline float __logf(float x) { return logf(x); }
inline float __fdividef(float a, float b) { return a / b; }
inline float __saturatef(float x) { return x < 0.0f ? 0.0f : (x > 1.0f ? 1.0f : x); }
inline float rsqrtf(float x) { return 1.0f / sqrtf(x); }
inline double rsqrt(double x) { return 1.0 / sqrt(x); }
template <class T>
T __ldg(const T* p) {
  return *p;
}
using std::isfinite;
using std::isinf;
using std::isnan;

// ---- launching -----------------------------------------------------------------------------------
namespace cuvae::emu {

/// The name of kernel K as the compiler spells it in __PRETTY_FUNCTION__, reduced to the
/// unqualified function name without template arguments (e.g. "elbo_image_kernel").
/// The unqualified function name in a __PRETTY_FUNCTION__ of kernel_name<K>, without template
/// arguments (e.g. "elbo_image_kernel").
inline std::string kernel_name_from(std::string s) {
  const size_t at = s.find("K = ");
  s = at == std::string::npos ? s : s.substr(at + 4);
  if (!s.empty() && s[0] == '&') s.erase(0, 1);
  s = s.substr(0, s.find_first_of("<;]"));
  const size_t colon = s.rfind("::");
  return colon == std::string::npos ? s : s.substr(colon + 2);
}

/// The name of kernel K, as the compiler spells it.
template <auto K>
const char* kernel_name() {
  static const std::string name = kernel_name_from(__PRETTY_FUNCTION__);
  return name.c_str();
}

template <class F>
struct KernelParams;
template <class... P>
struct KernelParams<void (*)(P...)> {
  using Tuple = std::tuple<std::decay_t<P>...>;
};

/// Launches kernel K over grid × block threads with `shared` bytes of dynamic shared memory on the
/// emulated device, each thread receiving its own copy of `args` converted to K's parameter types.
/// Returns when every block has run; throws cuvae::Error as runtime.h's run() says.
template <auto K, class... Args>
void launch(dim3 grid, dim3 block, size_t shared, Args&&... args) {
  using Tuple = typename KernelParams<decltype(K)>::Tuple;
  Tuple params(std::forward<Args>(args)...);
  LaunchConfig cfg;
  cfg.kernel = reinterpret_cast<const void*>(K);
  cfg.name = kernel_name<K>();
  cfg.grid = {grid.x, grid.y, grid.z};
  cfg.block = {block.x, block.y, block.z};
  cfg.shared = shared;
  run(cfg, [](void* p) { std::apply(K, *static_cast<Tuple*>(p)); }, &params);
}

}  // namespace cuvae::emu
