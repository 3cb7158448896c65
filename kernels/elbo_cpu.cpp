#include "kernels/elbo.h"

#include <algorithm>
#include <cmath>

#include "core/check.h"
#include "core/philox.h"

namespace cuvae {

void check_elbo_config(const ElboConfig& cfg) {
  CUVAE_CHECK(cfg.n >= 1 && cfg.p >= 1 && cfg.d >= 1,
              "elbo: sizes must be positive, got n=" << cfg.n << " p=" << cfg.p << " d=" << cfg.d);
  CUVAE_CHECK(std::isfinite(cfg.beta) && cfg.beta >= 0.0f,
              "elbo: beta must be finite and >= 0, got " << cfg.beta);
}

template <typename T>
void elbo_cpu(const T* logits, const T* x, const T* mu, const T* logvar, T* recon, T* kl, T* loss,
              T* dlogits, T* dmu, T* dlogvar, const ElboConfig& cfg_in) {
  ElboConfig cfg = cfg_in;
  uint64_t base = 0;  // the batch's first pixel within a data-parallel global batch
  if (cfg.state != nullptr) {  // this step's values (host memory on the CPU)
    cfg.beta = cfg.state->kl_weight;
    cfg.offset += cfg.state->philox_offset;
    base = static_cast<uint64_t>(cfg.state->row_base * cfg_in.p);
    cfg.state = nullptr;
  }
  check_elbo_config(cfg);
  CUVAE_CHECK(loss != nullptr, "elbo_cpu: loss must not be null");
  const int64_t n = cfg.n, p = cfg.p, d = cfg.d;
  const T beta = static_cast<T>(cfg.beta);
  const T inv_n = T(1) / static_cast<T>(n);
  double total = 0.0;
  for (int64_t i = 0; i < n; ++i) {
    double rec = 0.0;
    for (int64_t j = 0; j < p; ++j) {
      const int64_t k = i * p + j;
      const T l = logits[k];
      T t = x[k];
      if (cfg.binarize) {
        const float u = philox_uniform_at(cfg.seed, cfg.offset, base + static_cast<uint64_t>(k));
        t = static_cast<T>(u) < x[k] ? T(1) : T(0);
      }
      const T sig = l >= T(0) ? T(1) / (T(1) + std::exp(-l)) : std::exp(l) / (T(1) + std::exp(l));
      if (cfg.mse) {
        rec += static_cast<double>((sig - t) * (sig - t));
        if (dlogits != nullptr) dlogits[k] = T(2) * (sig - t) * sig * (T(1) - sig) * inv_n;
      } else {
        rec += static_cast<double>(std::max(l, T(0)) - l * t + std::log1p(std::exp(-std::abs(l))));
        if (dlogits != nullptr) dlogits[k] = (sig - t) * inv_n;
      }
    }
    double kli = 0.0;
    for (int64_t k = i * d; k < (i + 1) * d; ++k) {
      const T m = mu[k], lv = logvar[k];
      const T var = std::exp(lv);
      kli += static_cast<double>(m * m + var - T(1) - lv);
      if (dmu != nullptr) dmu[k] = beta * m * inv_n;
      if (dlogvar != nullptr) dlogvar[k] = beta * T(0.5) * (var - T(1)) * inv_n;
    }
    kli *= 0.5;
    if (recon != nullptr) recon[i] = static_cast<T>(rec);
    if (kl != nullptr) kl[i] = static_cast<T>(kli);
    total += rec + static_cast<double>(cfg.beta) * kli;
  }
  loss[0] = static_cast<T>(total / static_cast<double>(n));
}

template void elbo_cpu<float>(const float*, const float*, const float*, const float*, float*,
                              float*, float*, float*, float*, float*, const ElboConfig&);
template void elbo_cpu<double>(const double*, const double*, const double*, const double*, double*,
                               double*, double*, double*, double*, double*, const ElboConfig&);

}  // namespace cuvae
