// The Tensor-level activation op: checks shapes and devices, then picks the CPU reference
// (activation_cpu.cpp), the CUDA kernels (activation.cu) or the emulated device (detail::dispatch).
#include "kernels/activation.h"

#include <cmath>

#include "core/check.h"
#include "kernels/dispatch_util.h"

namespace cuvae {

void activation_forward(Context& ctx, Activation a, const Tensor& x, Tensor& y, float slope) {
  const char* op = "activation_forward";
  detail::require_all(ctx, x.numel(), op, {{"x", &x}, {"y", &y}});
  detail::dispatch(
      ctx, op,
      [&] {
        activation_forward_cpu(a, x.data(), y.data(), x.numel(), slope);
      },
      [&](auto s) {
        activation_forward_cuda(a, x.data(), y.data(), x.numel(), slope, s);
      });
}

void activation_backward(Context& ctx, Activation a, const Tensor& y, const Tensor& dy, Tensor& dx,
                         float slope) {
  const char* op = "activation_backward";
  detail::require_all(ctx, y.numel(), op, {{"y", &y}, {"dy", &dy}, {"dx", &dx}});
  detail::dispatch(
      ctx, op,
      [&] {
        activation_backward_cpu(a, y.data(), dy.data(), dx.data(), y.numel(), slope);
      },
      [&](auto s) {
        activation_backward_cuda(a, y.data(), dy.data(), dx.data(), y.numel(), slope, s);
      });
}

}  // namespace cuvae
