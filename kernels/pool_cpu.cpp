#include "kernels/pool.h"

#include "core/check.h"

namespace cuvae {

template <typename T>
void global_avg_pool_cpu(const T* x, T* y, int64_t n, int64_t c, int64_t hw) {
  CUVAE_CHECK(n >= 0 && c >= 0 && hw >= 1,
              "global_avg_pool: bad size n=" << n << " c=" << c << " hw=" << hw);
  for (int64_t r = 0; r < n * c; ++r) {
    double s = 0.0;
    for (int64_t j = 0; j < hw; ++j) s += static_cast<double>(x[r * hw + j]);
    y[r] = static_cast<T>(s / static_cast<double>(hw));
  }
}

template <typename T>
void global_avg_pool_backward_cpu(const T* dy, T* dx, int64_t n, int64_t c, int64_t hw) {
  CUVAE_CHECK(n >= 0 && c >= 0 && hw >= 1,
              "global_avg_pool_backward: bad size n=" << n << " c=" << c << " hw=" << hw);
  const T count = static_cast<T>(hw);
  for (int64_t r = 0; r < n * c; ++r)
    for (int64_t j = 0; j < hw; ++j) dx[r * hw + j] = dy[r] / count;
}

template void global_avg_pool_cpu<float>(const float*, float*, int64_t, int64_t, int64_t);
template void global_avg_pool_cpu<double>(const double*, double*, int64_t, int64_t, int64_t);
template void global_avg_pool_backward_cpu<float>(const float*, float*, int64_t, int64_t, int64_t);
template void global_avg_pool_backward_cpu<double>(const double*, double*, int64_t, int64_t,
                                                   int64_t);

}  // namespace cuvae
