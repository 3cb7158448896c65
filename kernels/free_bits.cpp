// The Tensor-level free_bits op: checks shapes and devices, then picks the CPU reference
// (free_bits_cpu.cpp), the CUDA kernels (free_bits.cu) or the emulated device (detail::dispatch).
#include "kernels/free_bits.h"

#include <cmath>

#include "core/check.h"
#include "kernels/dispatch_util.h"

namespace cuvae {

void free_bits(Context& ctx, const Tensor& mu, const Tensor& logvar, float lambda, float beta, Tensor& dmu,
               Tensor& dlogvar, Tensor& kl_dim, Tensor& loss, const StepState* step_state) {
  const char* op = "free_bits";
  CUVAE_CHECK(mu.ndim() == 2, op << ": mu " << mu.shape_str() << " must be [n, d]");
  const int64_t n = mu.dim(0), d = mu.dim(1);
  detail::require_all(ctx, n * d, op, {{"mu", &mu}, {"logvar", &logvar}, {"dmu", &dmu}, {"dlogvar", &dlogvar}});
  detail::require_all(ctx, d, op, {{"kl_dim", &kl_dim}});
  detail::require_all(ctx, 1, op, {{"loss", &loss}});
  detail::dispatch(
      ctx, op,
      [&] {
        free_bits_cpu(mu.data(), logvar.data(), n, d, lambda, step_state ? step_state->kl_weight : beta, dmu.data(),
                      dlogvar.data(), kl_dim.data(), loss.data());
      },
      [&](auto s) {
        free_bits_cuda(mu.data(), logvar.data(), n, d, lambda, beta, dmu.data(), dlogvar.data(), kl_dim.data(), loss.data(),
                       s, step_state);
      });
}

}  // namespace cuvae
