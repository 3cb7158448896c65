// The Tensor-level sgd op: checks shapes and devices, then picks the CPU reference
// (sgd_cpu.cpp), the CUDA kernels (sgd.cu) or the emulated device (detail::dispatch).
#include "kernels/sgd.h"

#include <cmath>

#include "core/check.h"
#include "kernels/dispatch_util.h"

namespace cuvae {

void sgd_step(Context& ctx, Tensor& param, const Tensor& grad, Tensor& buf, const SgdConfig& cfg) {
  const char* op = "sgd_step";
  const int64_t n = param.numel();
  detail::require_all(ctx, n, op, {{"param", &param}, {"grad", &grad}, {"buf", &buf}});
  detail::dispatch(
      ctx, op,
      [&] {
        sgd_step_cpu(param.data(), grad.data(), buf.data(), n, cfg);
      },
      [&](auto s) {
        sgd_step_cuda(param.data(), grad.data(), buf.data(), n, cfg, s);
      });
}

}  // namespace cuvae
