// Shape and device checks shared by the Tensor-level dispatch functions of kernels/.
#pragma once

#include <cstdint>
#include <initializer_list>
#include <type_traits>
#include <utility>

#include "core/buffer.h"
#include "core/check.h"
#include "core/context.h"
#include "core/tensor.h"
#include "kernels/emu/stream.h"

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

/// The one place an op picks its implementation:
///   - `cpu()` on a CPU context with the reference or oneDNN backend;
///   - `device(ctx.stream())` on a CUDA context;
///   - `device(EmuStream{})` on a CPU context with the emulated-device backend (CpuBackend::Emu),
///     which runs the same kernel sources on the CPU (kernels/emu/).
/// `device` is a generic lambda `[&](auto s) { op_cuda(..., s); }` calling the op's launcher with
/// the stream it is given. A device branch that is not invocable with an EmuStream (one that
/// calls cuBLAS or cuDNN and takes no stream) runs only on CUDA; the emulated backend then takes
/// `cpu()`. In a build without CUDA the CUDA branch is never instantiated and a CUDA context
/// throws (naming `op`).
template <class Cpu, class Device>
void dispatch(const Context& ctx, const char* op, Cpu&& cpu, Device&& device) {
  if (!ctx.is_cuda()) {
    if constexpr (std::is_invocable_v<Device&, EmuStream>) {
      if (ctx.cpu_backend() == CpuBackend::Emu) {
        device(EmuStream{});
        return;
      }
    }
    cpu();
    return;
  }
#ifdef CUVAE_HAS_CUDA
  if constexpr (std::is_invocable_v<Device&, Stream>)
    device(ctx.stream());
  else
    device();
#else
  (void)device;
  no_cuda_backend(op);
#endif
}

/// The three-way form the layers use: `onednn()` on a CPU context whose backend is oneDNN, else as
/// the four-argument dispatch (`reference()` on the reference and the emulated backends, `device`
/// on CUDA).
template <class Reference, class Onednn, class Device>
void dispatch(const Context& ctx, const char* op, Reference&& reference, Onednn&& onednn, Device&& device) {
  if (ctx.use_onednn()) {
    onednn();
    return;
  }
  dispatch(ctx, op, std::forward<Reference>(reference), std::forward<Device>(device));
}

}  // namespace cuvae::detail

/// A CUDA-only branch of detail::dispatch (cuBLAS, cuDNN): the lambda itself in a CUDA build,
/// nullptr otherwise (so no CUDA function is referenced where none is compiled).
#ifdef CUVAE_HAS_CUDA
#define CUVAE_CUDA_ONLY(...) __VA_ARGS__
#else
#define CUVAE_CUDA_ONLY(...) nullptr
#endif
