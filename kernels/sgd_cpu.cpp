#include "kernels/sgd.h"

#include <cmath>

#include "core/check.h"

namespace cuvae {

void check_sgd_config(const SgdConfig& cfg) {
  CUVAE_CHECK(std::isfinite(cfg.lr) && cfg.lr >= 0.0f, "sgd: invalid learning rate " << cfg.lr);
  CUVAE_CHECK(cfg.momentum >= 0.0f && cfg.momentum < 1.0f,
              "sgd: momentum must be in [0, 1), got " << cfg.momentum);
  CUVAE_CHECK(std::isfinite(cfg.weight_decay) && cfg.weight_decay >= 0.0f,
              "sgd: invalid weight_decay " << cfg.weight_decay);
  CUVAE_CHECK(!cfg.nesterov || cfg.momentum > 0.0f,
              "sgd: nesterov momentum needs momentum > 0, got " << cfg.momentum);
}

template <typename T>
void sgd_step_cpu(T* param, const T* grad, T* buf, int64_t n, const SgdConfig& cfg) {
  check_sgd_config(cfg);
  CUVAE_CHECK(n >= 0, "sgd_step_cpu: negative size " << n);
  const T lr = cfg.state ? static_cast<T>(cfg.state->lr) : static_cast<T>(cfg.lr), mu = cfg.momentum, wd = cfg.weight_decay;
  for (int64_t i = 0; i < n; ++i) {
    T g = grad[i];
    if (wd != T(0)) g += wd * param[i];
    T d = g;
    if (mu != T(0)) {
      buf[i] = mu * buf[i] + g;
      d = cfg.nesterov ? g + mu * buf[i] : buf[i];
    }
    param[i] -= lr * d;
  }
}

template void sgd_step_cpu<float>(float*, const float*, float*, int64_t, const SgdConfig&);
template void sgd_step_cpu<double>(double*, const double*, double*, int64_t, const SgdConfig&);

}  // namespace cuvae
