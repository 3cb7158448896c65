#include "kernels/bias.h"

#include "core/check.h"
#include "kernels/dispatch_util.h"

namespace cuvae {

template <typename T>
void add_bias_nchw_cpu(T* y, const T* bias, int64_t n, int64_t c, int64_t hw) {
  CUVAE_CHECK(n >= 0 && c >= 0 && hw >= 0,
              "add_bias_nchw: negative size n=" << n << " c=" << c << " hw=" << hw);
  for (int64_t i = 0; i < n; ++i)
    for (int64_t k = 0; k < c; ++k)
      for (int64_t j = 0; j < hw; ++j) y[(i * c + k) * hw + j] += bias[k];
}

template <typename T>
void bias_grad_nchw_cpu(const T* dy, T* dbias, int64_t n, int64_t c, int64_t hw) {
  CUVAE_CHECK(n >= 0 && c >= 0 && hw >= 0,
              "bias_grad_nchw: negative size n=" << n << " c=" << c << " hw=" << hw);
  for (int64_t k = 0; k < c; ++k) {
    double s = 0.0;
    for (int64_t i = 0; i < n; ++i)
      for (int64_t j = 0; j < hw; ++j) s += static_cast<double>(dy[(i * c + k) * hw + j]);
    dbias[k] = static_cast<T>(s);
  }
}

template void add_bias_nchw_cpu<float>(float*, const float*, int64_t, int64_t, int64_t);
template void add_bias_nchw_cpu<double>(double*, const double*, int64_t, int64_t, int64_t);
template void bias_grad_nchw_cpu<float>(const float*, float*, int64_t, int64_t, int64_t);
template void bias_grad_nchw_cpu<double>(const double*, double*, int64_t, int64_t, int64_t);

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
