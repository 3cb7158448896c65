#include "kernels/residual.h"

#include "core/check.h"

namespace cuvae {

template <typename T>
void residual_add_cpu(const T* a, const T* b, T* y, int64_t n, bool relu) {
  CUVAE_CHECK(n >= 0, "residual_add: negative size " << n);
  for (int64_t i = 0; i < n; ++i) {
    const T s = a[i] + b[i];
    y[i] = relu ? (s > T(0) ? s : T(0)) : s;
  }
}

template <typename T>
void residual_add_backward_cpu(const T* y, const T* dy, T* d, int64_t n, bool relu) {
  CUVAE_CHECK(n >= 0, "residual_add_backward: negative size " << n);
  for (int64_t i = 0; i < n; ++i) d[i] = relu ? (y[i] > T(0) ? dy[i] : T(0)) : dy[i];
}

template <typename T>
void accumulate_cpu(T* dst, const T* src, int64_t n) {
  CUVAE_CHECK(n >= 0, "accumulate: negative size " << n);
  for (int64_t i = 0; i < n; ++i) dst[i] += src[i];
}

template <typename T>
void add_scaled_cpu(const T* a, const T* b, T scale, T* y, int64_t n) {
  CUVAE_CHECK(n >= 0, "add_scaled: negative size " << n);
  for (int64_t i = 0; i < n; ++i) {
    const T sum = a[i] + b[i];  // rounded before the product, as the kernel does
    y[i] = sum * scale;
  }
}

template void residual_add_cpu<float>(const float*, const float*, float*, int64_t, bool);
template void residual_add_cpu<double>(const double*, const double*, double*, int64_t, bool);
template void residual_add_backward_cpu<float>(const float*, const float*, float*, int64_t, bool);
template void residual_add_backward_cpu<double>(const double*, const double*, double*, int64_t,
                                                bool);
template void accumulate_cpu<float>(float*, const float*, int64_t);
template void accumulate_cpu<double>(double*, const double*, int64_t);
template void add_scaled_cpu<float>(const float*, const float*, float, float*, int64_t);
template void add_scaled_cpu<double>(const double*, const double*, double, double*, int64_t);

}  // namespace cuvae
