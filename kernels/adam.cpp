// The Tensor-level adam op: checks shapes and devices, then picks the CPU reference
// (adam_cpu.cpp), the CUDA kernels (adam.cu) or the emulated device (detail::dispatch).
#include "kernels/adam.h"

#include <cmath>

#include "core/check.h"
#include "kernels/dispatch_util.h"

namespace cuvae {

void adam_step(Context& ctx, Tensor& param, const Tensor& grad, Tensor& m, Tensor& v,
               const AdamConfig& cfg) {
  const char* op = "adam_step";
  const int64_t n = param.numel();
  detail::require_all(ctx, n, op, {{"param", &param}, {"grad", &grad}, {"m", &m}, {"v", &v}});
  detail::dispatch(
      ctx, op,
      [&] {
        adam_step_cpu(param.data(), grad.data(), m.data(), v.data(), n, cfg);
      },
      [&](auto s) {
        adam_step_cuda(param.data(), grad.data(), m.data(), v.data(), n, cfg, s);
      });
}

}  // namespace cuvae
