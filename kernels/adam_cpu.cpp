#include "kernels/adam.h"

#include <cmath>

#include "core/check.h"

namespace cuvae {

void check_adam_config(const AdamConfig& cfg) {
  if (cfg.state == nullptr) {
    CUVAE_CHECK(cfg.step >= 1, "adam: step count must be >= 1, got " << cfg.step);
    CUVAE_CHECK(std::isfinite(cfg.lr) && cfg.lr >= 0.0f, "adam: invalid learning rate " << cfg.lr);
  }
  CUVAE_CHECK(std::isfinite(cfg.eps) && cfg.eps >= 0.0f, "adam: invalid eps " << cfg.eps);
  CUVAE_CHECK(cfg.beta1 >= 0.0f && cfg.beta1 < 1.0f,
              "adam: beta1 must be in [0, 1), got " << cfg.beta1);
  CUVAE_CHECK(cfg.beta2 >= 0.0f && cfg.beta2 < 1.0f,
              "adam: beta2 must be in [0, 1), got " << cfg.beta2);
  CUVAE_CHECK(std::isfinite(cfg.weight_decay) && cfg.weight_decay >= 0.0f,
              "adam: invalid weight_decay " << cfg.weight_decay);
}

AdamCorrections adam_corrections(float lr, float beta1, float beta2, int64_t t) {
  const double tt = static_cast<double>(t);
  const double bc1 = 1.0 - std::pow(static_cast<double>(beta1), tt);
  const double bc2 = 1.0 - std::pow(static_cast<double>(beta2), tt);
  return {static_cast<double>(lr) / bc1, std::sqrt(bc2)};
}

template <typename T>
void adam_step_cpu(T* param, const T* grad, T* m, T* v, int64_t n, const AdamConfig& cfg) {
  check_adam_config(cfg);
  CUVAE_CHECK(n >= 0, "adam_step_cpu: negative size " << n);
  const AdamCorrections c = adam_corrections(cfg.lr, cfg.beta1, cfg.beta2, cfg.step);
  const T step_size = cfg.state ? static_cast<T>(cfg.state->adam_step_size) : static_cast<T>(c.step_size);
  const T bc2_sqrt = cfg.state ? static_cast<T>(cfg.state->adam_bc2_sqrt) : static_cast<T>(c.bc2_sqrt);
  const T b1 = cfg.beta1, b2 = cfg.beta2, eps = cfg.eps, wd = cfg.weight_decay;
  for (int64_t i = 0; i < n; ++i) {
    T g = grad[i];
    if (wd != T(0)) g += wd * param[i];
    m[i] = b1 * m[i] + (T(1) - b1) * g;
    v[i] = b2 * v[i] + (T(1) - b2) * g * g;
    const T denom = std::sqrt(v[i]) / bc2_sqrt + eps;
    param[i] -= step_size * m[i] / denom;
  }
}

template void adam_step_cpu<float>(float*, const float*, float*, float*, int64_t,
                                   const AdamConfig&);
template void adam_step_cpu<double>(double*, const double*, double*, double*, int64_t,
                                    const AdamConfig&);

}  // namespace cuvae
