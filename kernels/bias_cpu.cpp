#include "kernels/bias.h"

#include "core/check.h"

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

}  // namespace cuvae
