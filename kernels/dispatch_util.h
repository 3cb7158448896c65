// Shape and device checks shared by the Tensor-level dispatch functions of kernels/.
#pragma once

#include <cstdint>
#include <initializer_list>
#include <utility>

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

}  // namespace cuvae::detail
