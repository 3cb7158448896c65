#include "kernels/activation.h"

#include <cmath>

#include "core/check.h"

namespace cuvae {

Activation parse_activation(const std::string& name) {
  if (name == "none") return Activation::None;
  if (name == "relu") return Activation::ReLU;
  if (name == "sigmoid") return Activation::Sigmoid;
  if (name == "leaky_relu") return Activation::LeakyReLU;
  CUVAE_FAIL("unknown activation '" << name << "' (expected none, relu, sigmoid or leaky_relu)");
}

const char* activation_name(Activation a) {
  switch (a) {
    case Activation::None: return "none";
    case Activation::ReLU: return "relu";
    case Activation::Sigmoid: return "sigmoid";
    case Activation::LeakyReLU: return "leaky_relu";
  }
  return "unknown";
}

namespace {
void check_activation_args(Activation a, int64_t n, float slope, const char* op) {
  CUVAE_CHECK(n >= 0, op << ": negative size " << n);
  CUVAE_CHECK(a != Activation::LeakyReLU || slope >= 0.0f,
              op << ": leaky_relu slope must be >= 0, got " << slope);
}
}  // namespace

template <typename T>
void activation_forward_cpu(Activation a, const T* x, T* y, int64_t n, float slope) {
  check_activation_args(a, n, slope, "activation_forward");
  const T s = static_cast<T>(slope);
  for (int64_t i = 0; i < n; ++i) {
    const T v = x[i];
    switch (a) {
      case Activation::None: y[i] = v; break;
      case Activation::ReLU: y[i] = v > T(0) ? v : T(0); break;
      case Activation::Sigmoid:
        y[i] = v >= T(0) ? T(1) / (T(1) + std::exp(-v)) : std::exp(v) / (T(1) + std::exp(v));
        break;
      case Activation::LeakyReLU: y[i] = v > T(0) ? v : s * v; break;
    }
  }
}

template <typename T>
void activation_backward_cpu(Activation a, const T* y, const T* dy, T* dx, int64_t n, float slope) {
  check_activation_args(a, n, slope, "activation_backward");
  const T s = static_cast<T>(slope);
  for (int64_t i = 0; i < n; ++i) {
    const T out = y[i], g = dy[i];
    switch (a) {
      case Activation::None: dx[i] = g; break;
      case Activation::ReLU: dx[i] = out > T(0) ? g : T(0); break;
      case Activation::Sigmoid: dx[i] = g * out * (T(1) - out); break;
      case Activation::LeakyReLU: dx[i] = out > T(0) ? g : s * g; break;
    }
  }
}

template void activation_forward_cpu<float>(Activation, const float*, float*, int64_t, float);
template void activation_forward_cpu<double>(Activation, const double*, double*, int64_t, float);
template void activation_backward_cpu<float>(Activation, const float*, const float*, float*,
                                             int64_t, float);
template void activation_backward_cpu<double>(Activation, const double*, const double*, double*,
                                              int64_t, float);

}  // namespace cuvae
