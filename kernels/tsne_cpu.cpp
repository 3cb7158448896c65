#include <cmath>
#include <vector>

#include "core/check.h"
#include "kernels/tsne.h"

namespace cuvae {

template <typename T>
void tsne_grad_exact_cpu(const T* P, const T* Y, int64_t n, T exaggeration, T* grad, T* kl_out) {
  CUVAE_CHECK(n >= 2, "tsne_grad_exact_cpu: need at least 2 points, got " << n);
  // Per row i: z_i = Σ_j q̃_ij, attractive a_i = Σ_j p_ij q̃_ij (y_i − y_j), repulsive
  // r_i = Σ_j q̃_ij² (y_i − y_j), and the KL terms of row i.
  std::vector<double> z(static_cast<size_t>(n)), s(static_cast<size_t>(n)),
      h(static_cast<size_t>(n)), f(static_cast<size_t>(4 * n));
  const bool want_kl = kl_out != nullptr;
#pragma omp parallel for schedule(static)
  for (int64_t i = 0; i < n; ++i) {
    const double xi = static_cast<double>(Y[2 * i]), yi = static_cast<double>(Y[2 * i + 1]);
    const T* Pi = P + i * n;
    double zi = 0, ax = 0, ay = 0, rx = 0, ry = 0, si = 0, hi = 0;
    for (int64_t j = 0; j < n; ++j) {
      if (j == i) continue;
      const double dx = xi - static_cast<double>(Y[2 * j]);
      const double dy = yi - static_cast<double>(Y[2 * j + 1]);
      const double d2 = dx * dx + dy * dy;
      const double q = 1.0 / (1.0 + d2);
      const double p = static_cast<double>(Pi[j]);
      zi += q;
      ax += p * q * dx;
      ay += p * q * dy;
      rx += q * q * dx;
      ry += q * q * dy;
      if (want_kl && p > 0) {
        si += p;
        hi += p * (std::log(p) + std::log1p(d2));
      }
    }
    z[static_cast<size_t>(i)] = zi;
    s[static_cast<size_t>(i)] = si;
    h[static_cast<size_t>(i)] = hi;
    double* fi = f.data() + 4 * i;
    fi[0] = ax;
    fi[1] = ay;
    fi[2] = rx;
    fi[3] = ry;
  }
  double Z = 0, S = 0, H = 0;
  for (int64_t i = 0; i < n; ++i) {
    Z += z[static_cast<size_t>(i)];
    S += s[static_cast<size_t>(i)];
    H += h[static_cast<size_t>(i)];
  }
  const double alpha = static_cast<double>(exaggeration), inv_z = 1.0 / Z;
  for (int64_t i = 0; i < n; ++i) {
    const double* fi = f.data() + 4 * i;
    grad[2 * i] = static_cast<T>(4.0 * (alpha * fi[0] - fi[2] * inv_z));
    grad[2 * i + 1] = static_cast<T>(4.0 * (alpha * fi[1] - fi[3] * inv_z));
  }
  // KL = Σ p log p + Σ p log(1 + d²) + (Σ p) log Z.
  if (want_kl) *kl_out = static_cast<T>(H + S * std::log(Z));
}

template void tsne_grad_exact_cpu<float>(const float*, const float*, int64_t, float, float*,
                                         float*);
template void tsne_grad_exact_cpu<double>(const double*, const double*, int64_t, double, double*,
                                          double*);

int64_t tsne_grad_workspace_floats(int64_t n) { return 5 * n + 1; }

namespace {
template <typename T>
void check_update_args(int64_t m, T momentum, T learning_rate, T min_gain) {
  CUVAE_CHECK(m >= 0, "tsne_update: negative size " << m);
  CUVAE_CHECK(std::isfinite(learning_rate) && learning_rate > T(0),
              "tsne_update: learning rate must be > 0, got " << learning_rate);
  CUVAE_CHECK(momentum >= T(0) && momentum < T(1),
              "tsne_update: momentum must be in [0, 1), got " << momentum);
  CUVAE_CHECK(std::isfinite(min_gain) && min_gain >= T(0),
              "tsne_update: min_gain must be >= 0, got " << min_gain);
}
}  // namespace

template <typename T>
void tsne_update_cpu(T* y, const T* grad, T* update, T* gains, int64_t m, T momentum,
                     T learning_rate, T min_gain) {
  check_update_args(m, momentum, learning_rate, min_gain);
  for (int64_t k = 0; k < m; ++k) {
    const T g = grad[k];
    T gain = update[k] * g < T(0) ? gains[k] + T(0.2) : gains[k] * T(0.8);
    if (gain < min_gain) gain = min_gain;
    gains[k] = gain;
    update[k] = momentum * update[k] - learning_rate * (gain * g);
    y[k] += update[k];
  }
}

template void tsne_update_cpu<float>(float*, const float*, float*, float*, int64_t, float, float,
                                     float);
template void tsne_update_cpu<double>(double*, const double*, double*, double*, int64_t, double,
                                      double, double);

}  // namespace cuvae
