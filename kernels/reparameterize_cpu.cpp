#include "kernels/reparameterize.h"

#include <cmath>

#include "core/check.h"
#include "core/philox.h"

namespace cuvae {

template <typename T>
void reparameterize_forward_cpu(const T* mu, const T* logvar, T* eps, T* z, int64_t n,
                                uint64_t seed, uint64_t offset, uint64_t index_base) {
  CUVAE_CHECK(n >= 0, "reparameterize_forward: negative size " << n);
  for (int64_t i = 0; i < n; ++i) {
    const T e = static_cast<T>(philox_normal(seed, offset, index_base + static_cast<uint64_t>(i)));
    const T sigma = std::exp(T(0.5) * logvar[i]);
    eps[i] = e;
    z[i] = mu[i] + sigma * e;
  }
}

template <typename T>
void reparameterize_backward_cpu(const T* dz, const T* eps, const T* logvar, T* dmu, T* dlogvar,
                                 int64_t n, bool accumulate) {
  CUVAE_CHECK(n >= 0, "reparameterize_backward: negative size " << n);
  for (int64_t i = 0; i < n; ++i) {
    const T g = dz[i];
    const T gl = g * eps[i] * T(0.5) * std::exp(T(0.5) * logvar[i]);
    if (accumulate) {
      dmu[i] += g;
      dlogvar[i] += gl;
    } else {
      dmu[i] = g;
      dlogvar[i] = gl;
    }
  }
}

template <typename T>
void sample_normal_cpu(T* out, int64_t n, uint64_t seed, uint64_t offset) {
  CUVAE_CHECK(n >= 0, "sample_normal: negative size " << n);
  for (int64_t i = 0; i < n; ++i)
    out[i] = static_cast<T>(philox_normal(seed, offset, static_cast<uint64_t>(i)));
}

template void reparameterize_forward_cpu<float>(const float*, const float*, float*, float*, int64_t,
                                                uint64_t, uint64_t, uint64_t);
template void reparameterize_forward_cpu<double>(const double*, const double*, double*, double*,
                                                 int64_t, uint64_t, uint64_t, uint64_t);
template void reparameterize_backward_cpu<float>(const float*, const float*, const float*, float*,
                                                 float*, int64_t, bool);
template void reparameterize_backward_cpu<double>(const double*, const double*, const double*,
                                                  double*, double*, int64_t, bool);
template void sample_normal_cpu<float>(float*, int64_t, uint64_t, uint64_t);
template void sample_normal_cpu<double>(double*, int64_t, uint64_t, uint64_t);

}  // namespace cuvae
