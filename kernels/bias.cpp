// The Tensor-level bias op: checks shapes and devices, then picks the CPU reference
// (bias_cpu.cpp), the CUDA kernels (bias.cu) or the emulated device (detail::dispatch).
#include "kernels/bias.h"

#include "core/check.h"
#include "kernels/dispatch_util.h"

namespace cuvae {

namespace {
// n, c, hw of an [N, C, ...] tensor.
void nchw_dims(const Tensor& t, const char* op, int64_t& n, int64_t& c, int64_t& hw) {
  CUVAE_CHECK(t.ndim() >= 2, op << ": expected an [N, C, ...] tensor, got " << t.shape_str());
  n = t.dim(0);
  c = t.dim(1);
  hw = 1;
  for (int i = 2; i < t.ndim(); ++i) hw *= t.dim(i);
}
}  // namespace

void add_bias_nchw(Context& ctx, Tensor& y, const Tensor& bias) {
  const char* op = "add_bias_nchw";
  int64_t n = 0, c = 0, hw = 0;
  nchw_dims(y, op, n, c, hw);
  detail::require_numel(bias, c, op, "bias");
  detail::require_device(ctx, y, op, "y");
  detail::require_device(ctx, bias, op, "bias");
  detail::dispatch(
      ctx, op,
      [&] {
        add_bias_nchw_cpu(y.data(), bias.data(), n, c, hw);
      },
      [&](auto s) {
        add_bias_nchw_cuda(y.data(), bias.data(), n, c, hw, s);
      });
}

void bias_grad_nchw(Context& ctx, const Tensor& dy, Tensor& dbias) {
  const char* op = "bias_grad_nchw";
  int64_t n = 0, c = 0, hw = 0;
  nchw_dims(dy, op, n, c, hw);
  detail::require_numel(dbias, c, op, "dbias");
  detail::require_device(ctx, dy, op, "dy");
  detail::require_device(ctx, dbias, op, "dbias");
  detail::dispatch(
      ctx, op,
      [&] {
        bias_grad_nchw_cpu(dy.data(), dbias.data(), n, c, hw);
      },
      [&](auto s) {
        bias_grad_nchw_cuda(dy.data(), dbias.data(), n, c, hw, s);
      });
}

}  // namespace cuvae
