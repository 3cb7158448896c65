#include "kernels/free_bits.h"

#include <cmath>

#include "core/check.h"
#include "kernels/dispatch_util.h"

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

void free_bits(Context& ctx, const Tensor& mu, const Tensor& logvar, float lambda, float beta, Tensor& dmu,
               Tensor& dlogvar, Tensor& kl_dim, Tensor& loss, const StepState* step_state) {
  const char* op = "free_bits";
  CUVAE_CHECK(mu.ndim() == 2, op << ": mu " << mu.shape_str() << " must be [n, d]");
  const int64_t n = mu.dim(0), d = mu.dim(1);
  detail::require_all(ctx, n * d, op, {{"mu", &mu}, {"logvar", &logvar}, {"dmu", &dmu}, {"dlogvar", &dlogvar}});
  detail::require_all(ctx, d, op, {{"kl_dim", &kl_dim}});
  detail::require_all(ctx, 1, op, {{"loss", &loss}});
  detail::dispatch(
      ctx, op,
      [&] {
        free_bits_cpu(mu.data(), logvar.data(), n, d, lambda, step_state ? step_state->kl_weight : beta, dmu.data(),
                      dlogvar.data(), kl_dim.data(), loss.data());
      },
      [&](auto s) {
        free_bits_cuda(mu.data(), logvar.data(), n, d, lambda, beta, dmu.data(), dlogvar.data(), kl_dim.data(), loss.data(),
                       s, step_state);
      });
}

}  // namespace cuvae
