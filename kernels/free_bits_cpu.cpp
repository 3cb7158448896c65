#include "kernels/free_bits.h"

#include <cmath>

#include "core/check.h"

namespace cuvae {

template <typename T>
void free_bits_cpu(const T* mu, const T* logvar, int64_t n, int64_t d, float lambda, float beta, T* dmu,
                   T* dlogvar, T* kl_dim, T* loss) {
  CUVAE_CHECK(n >= 1 && d >= 1, "free_bits: sizes must be positive, got n=" << n << " d=" << d);
  CUVAE_CHECK(std::isfinite(lambda) && lambda >= 0.0f, "free_bits: lambda must be finite and >= 0, got " << lambda);
  double extra = 0.0;
  for (int64_t j = 0; j < d; ++j) {
    double s = 0.0;
    for (int64_t i = 0; i < n; ++i) {
      const double m = mu[i * d + j], lv = logvar[i * d + j];
      s += 0.5 * (m * m + std::exp(lv) - 1.0 - lv);
    }
    const double mean = s / static_cast<double>(n);
    kl_dim[j] = static_cast<T>(mean);
    if (mean < static_cast<double>(lambda)) {
      for (int64_t i = 0; i < n; ++i) {
        dmu[i * d + j] = T(0);
        dlogvar[i * d + j] = T(0);
      }
      extra += static_cast<double>(lambda) - mean;
    }
  }
  loss[0] = static_cast<T>(static_cast<double>(loss[0]) + static_cast<double>(beta) * extra);
}

template void free_bits_cpu<float>(const float*, const float*, int64_t, int64_t, float, float, float*, float*,
                                   float*, float*);
template void free_bits_cpu<double>(const double*, const double*, int64_t, int64_t, float, float, double*, double*,
                                    double*, double*);

}  // namespace cuvae
