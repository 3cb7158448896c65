// The Tensor-level reparameterize op: checks shapes and devices, then picks the CPU reference
// (reparameterize_cpu.cpp), the CUDA kernels (reparameterize.cu) or the emulated device (detail::dispatch).
#include "kernels/reparameterize.h"

#include <algorithm>
#include <cmath>

#include "core/check.h"
#include "kernels/dispatch_util.h"

namespace cuvae {

void reparameterize_forward(Context& ctx, const Tensor& mu, const Tensor& logvar, Tensor& eps,
                            Tensor& z, uint64_t seed, uint64_t offset, const StepState* step_state) {
  const char* op = "reparameterize_forward";
  const int64_t n = mu.numel();
  const int64_t row_elems = mu.ndim() >= 2 ? n / std::max<int64_t>(1, mu.dim(0)) : 1;  // values per row
  detail::require_all(ctx, n, op, {{"mu", &mu}, {"logvar", &logvar}, {"eps", &eps}, {"z", &z}});
  detail::dispatch(
      ctx, op,
      [&] {
        reparameterize_forward_cpu(mu.data(), logvar.data(), eps.data(), z.data(), n, seed,
                                   offset + (step_state ? step_state->philox_offset : 0),
                                   step_state ? static_cast<uint64_t>(step_state->row_base * row_elems) : 0);
      },
      [&](auto s) {
        reparameterize_forward_cuda(mu.data(), logvar.data(), eps.data(), z.data(), n, seed, offset,
                                    s, step_state, row_elems);
      });
}

void reparameterize_backward(Context& ctx, const Tensor& dz, const Tensor& eps,
                             const Tensor& logvar, Tensor& dmu, Tensor& dlogvar, bool accumulate) {
  const char* op = "reparameterize_backward";
  const int64_t n = dz.numel();
  detail::require_all(ctx, n, op,
                      {{"dz", &dz}, {"eps", &eps}, {"logvar", &logvar}, {"dmu", &dmu}, {"dlogvar", &dlogvar}});
  detail::dispatch(
      ctx, op,
      [&] {
        reparameterize_backward_cpu(dz.data(), eps.data(), logvar.data(), dmu.data(), dlogvar.data(), n,
                                    accumulate);
      },
      [&](auto s) {
        reparameterize_backward_cuda(dz.data(), eps.data(), logvar.data(), dmu.data(), dlogvar.data(), n,
                                     accumulate, s);
      });
}

void sample_normal(Context& ctx, Tensor& out, uint64_t seed, uint64_t offset) {
  const char* op = "sample_normal";
  detail::require_device(ctx, out, op, "out");
  detail::dispatch(
      ctx, op,
      [&] {
        sample_normal_cpu(out.data(), out.numel(), seed, offset);
      },
      [&](auto s) {
        sample_normal_cuda(out.data(), out.numel(), seed, offset, s);
      });
}

}  // namespace cuvae
