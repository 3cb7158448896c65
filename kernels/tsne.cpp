// The Tensor-level tsne op: checks shapes and devices, then picks the CPU reference
// (tsne_cpu.cpp), the CUDA kernels (tsne.cu) or the emulated device (detail::dispatch).
#include "kernels/tsne.h"

#include <cmath>
#include <vector>

#include "core/check.h"
#include "kernels/dispatch_util.h"

namespace cuvae {

void tsne_grad_exact(Context& ctx, const Tensor& P, const Tensor& Y, float exaggeration,
                     Tensor& grad) {
  const char* op = "tsne_grad_exact";
  CUVAE_CHECK(Y.numel() % 2 == 0, op << ": Y " << Y.shape_str() << " is not [n, 2]");
  const int64_t n = Y.numel() / 2;
  CUVAE_CHECK(n >= 2, op << ": need at least 2 points, got " << n);
  detail::require_all(ctx, 2 * n, op, {{"Y", &Y}, {"grad", &grad}});
  detail::require_numel(P, n * n, op, "P");
  detail::require_device(ctx, P, op, "P");
  detail::dispatch(
      ctx, op,
      [&] {
        tsne_grad_exact_cpu<float>(P.data(), Y.data(), n, exaggeration, grad.data(), nullptr);
      },
      [&](auto s) {
        const size_t bytes = static_cast<size_t>(tsne_grad_workspace_floats(n)) * sizeof(float);
        float* ws = static_cast<float*>(ctx.workspace(bytes));
        tsne_grad_exact_cuda(P.data(), Y.data(), n, exaggeration, grad.data(), ws, s);
      });
}

void tsne_update(Context& ctx, Tensor& y, const Tensor& grad, Tensor& update, Tensor& gains,
                 float momentum, float learning_rate, float min_gain) {
  const char* op = "tsne_update";
  const int64_t m = y.numel();
  detail::require_all(ctx, m, op,
                      {{"y", &y}, {"grad", &grad}, {"update", &update}, {"gains", &gains}});
  detail::dispatch(
      ctx, op,
      [&] {
        tsne_update_cpu<float>(y.data(), grad.data(), update.data(), gains.data(), m, momentum,
                               learning_rate, min_gain);
      },
      [&](auto s) {
        tsne_update_cuda(y.data(), grad.data(), update.data(), gains.data(), m, momentum, learning_rate,
                         min_gain, s);
      });
}

}  // namespace cuvae
