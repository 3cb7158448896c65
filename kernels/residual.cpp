// The Tensor-level residual op: checks shapes and devices, then picks the CPU reference
// (residual_cpu.cpp), the CUDA kernels (residual.cu) or the emulated device (detail::dispatch).
#include "kernels/residual.h"

#include "core/check.h"
#include "kernels/dispatch_util.h"

namespace cuvae {

void residual_add(Context& ctx, const Tensor& a, const Tensor& b, Tensor& y, bool relu) {
  const char* op = "residual_add";
  const int64_t n = a.numel();
  detail::require_all(ctx, n, op, {{"a", &a}, {"b", &b}, {"y", &y}});
  detail::dispatch(
      ctx, op,
      [&] {
        residual_add_cpu(a.data(), b.data(), y.data(), n, relu);
      },
      [&](auto s) {
        residual_add_cuda(a.data(), b.data(), y.data(), n, relu, s);
      });
}

void residual_add_backward(Context& ctx, const Tensor& y, const Tensor& dy, Tensor& d, bool relu) {
  const char* op = "residual_add_backward";
  const int64_t n = y.numel();
  detail::require_all(ctx, n, op, {{"y", &y}, {"dy", &dy}, {"d", &d}});
  detail::dispatch(
      ctx, op,
      [&] {
        residual_add_backward_cpu(y.data(), dy.data(), d.data(), n, relu);
      },
      [&](auto s) {
        residual_add_backward_cuda(y.data(), dy.data(), d.data(), n, relu, s);
      });
}

void accumulate(Context& ctx, Tensor& dst, const Tensor& src) {
  const char* op = "accumulate";
  const int64_t n = dst.numel();
  detail::require_all(ctx, n, op, {{"dst", &dst}, {"src", &src}});
  detail::dispatch(
      ctx, op,
      [&] {
        accumulate_cpu(dst.data(), src.data(), n);
      },
      [&](auto s) {
        accumulate_cuda(dst.data(), src.data(), n, s);
      });
}

void add_scaled(Context& ctx, const Tensor& a, const Tensor& b, float scale, Tensor& y) {
  const char* op = "add_scaled";
  const int64_t n = a.numel();
  detail::require_all(ctx, n, op, {{"a", &a}, {"b", &b}, {"y", &y}});
  detail::dispatch(
      ctx, op,
      [&] {
        add_scaled_cpu(a.data(), b.data(), scale, y.data(), n);
      },
      [&](auto s) {
        add_scaled_cuda(a.data(), b.data(), scale, y.data(), n, s);
      });
}

}  // namespace cuvae
