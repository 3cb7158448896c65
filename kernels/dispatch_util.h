// Shape and device checks shared by the Tensor-level dispatch functions of kernels/.
#pragma once

#include <cstdint>
#include <initializer_list>
#include <utility>

#include "host/buffer.h"
#include "host/check.h"
#include "host/context.h"
#include "host/tensor.h"

namespace cuvae::detail {

/// Throws cuvae::Error unless tensor `t` (called `name` in op `op`) lives on the
/// context's device.
inline void require_device(const Context& ctx, const Tensor& t, const char* op, const char* name) {
  CUVAE_CHECK(t.device() == ctx.device(),
              op << ": " << name << " " << t.shape_str() << " is on " << device_name(t.device())
                 << " but the context runs on " << device_name(ctx.device()));
}

/// Throws cuvae::Error unless tensor `t` holds exactly `n` elements.
inline void require_numel(const Tensor& t, int64_t n, const char* op, const char* name) {
  CUVAE_CHECK(t.numel() == n, op << ": " << name << " " << t.shape_str() << " has " << t.numel()
                                 << " elements, expected " << n);
}

/// Throws cuvae::Error unless buffer `b` (called `name` in op `op`) lives on the context's device
/// and holds at least `n` values.
template <typename T>
void require_buffer(const Context& ctx, const Buffer<T>& b, int64_t n, const char* op, const char* name) {
  CUVAE_CHECK(b.device() == ctx.device(), op << ": " << name << " is on " << device_name(b.device())
                                              << " but the context runs on " << device_name(ctx.device()));
  CUVAE_CHECK(b.size() >= n, op << ": " << name << " holds " << b.size() << " values, expected at least " << n);
}

/// Throws cuvae::Error unless every (name, tensor) in `tensors` holds exactly `n` elements
/// and lives on the context's device.
inline void require_all(const Context& ctx, int64_t n, const char* op,
                        std::initializer_list<std::pair<const char*, const Tensor*>> tensors) {
  for (const auto& [name, t] : tensors) {
    require_numel(*t, n, op, name);
    require_device(ctx, *t, op, name);
  }
}

/// Throws cuvae::Error saying that `op` needs the CUDA backend this build lacks.
[[noreturn]] inline void no_cuda_backend(const char* op) {
  CUVAE_FAIL(op << ": a CUDA tensor was given but this build of cuvae has no CUDA backend");
}

/// The one place an op picks its implementation: `cpu()` on a CPU context, `cuda()` on a CUDA
/// one. In a build without CUDA the CUDA branch is CUVAE_CUDA_ONLY(...) = nullptr and a CUDA
/// context throws (naming `op`). A faster CPU backend plugs in as the cpu branch choosing on
/// ctx.cpu_backend(), as the layers do for oneDNN.
template <class Cpu, class Cuda>
void dispatch(const Context& ctx, const char* op, Cpu&& cpu, Cuda&& cuda) {
  if (!ctx.is_cuda()) {
    cpu();
    return;
  }
#ifdef CUVAE_HAS_CUDA
  cuda();
#else
  (void)cuda;
  no_cuda_backend(op);
#endif
}

}  // namespace cuvae::detail

/// The CUDA branch of detail::dispatch: the lambda itself in a CUDA build, nullptr otherwise (so
/// no CUDA function is referenced where none is compiled).
#ifdef CUVAE_HAS_CUDA
#define CUVAE_CUDA_ONLY(...) __VA_ARGS__
#else
#define CUVAE_CUDA_ONLY(...) nullptr
#endif

namespace cuvae::detail {

}  // namespace cuvae::detail
