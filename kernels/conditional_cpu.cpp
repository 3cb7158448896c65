#include <cmath>

#include "core/check.h"
#include "kernels/conditional.h"

namespace cuvae {

template <typename T>
void concat_onehot_cpu(const T* feat, const int32_t* labels, int64_t n, int64_t f, int64_t k, T* out) {
  CUVAE_CHECK(n >= 0 && f >= 0 && k >= 1, "concat_onehot: bad sizes n=" << n << " f=" << f << " k=" << k);
  const int64_t w = f + k;
  for (int64_t i = 0; i < n; ++i) {
    CUVAE_CHECK(labels[i] >= 0 && labels[i] < k, "concat_onehot: label " << labels[i] << " of row " << i
                                                                           << " is outside [0, " << k << ")");
    for (int64_t j = 0; j < f; ++j) out[i * w + j] = feat[i * f + j];
    for (int64_t j = 0; j < k; ++j) out[i * w + f + j] = j == labels[i] ? T(1) : T(0);
  }
}

template <typename T>
void take_columns_cpu(const T* src, int64_t n, int64_t f, int64_t k, T* dst) {
  CUVAE_CHECK(n >= 0 && f >= 0 && k >= 0, "take_columns: bad sizes n=" << n << " f=" << f << " k=" << k);
  for (int64_t i = 0; i < n; ++i)
    for (int64_t j = 0; j < f; ++j) dst[i * f + j] = src[i * (f + k) + j];
}

template void concat_onehot_cpu<float>(const float*, const int32_t*, int64_t, int64_t, int64_t, float*);
template void concat_onehot_cpu<double>(const double*, const int32_t*, int64_t, int64_t, int64_t, double*);
template void take_columns_cpu<float>(const float*, int64_t, int64_t, int64_t, float*);
template void take_columns_cpu<double>(const double*, int64_t, int64_t, int64_t, double*);
}  // namespace cuvae
