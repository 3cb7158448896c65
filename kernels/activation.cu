#include "kernels/activation.h"

#include "kernels/launch.cuh"

namespace cuvae {
namespace {

// The activation is a template parameter so each launch runs a branch-free loop.
template <Activation A>
__global__ void activation_forward_kernel(const float* x, float* y, int64_t n, float slope) {
  const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < n;
       i += stride) {
    const float v = x[i];
    float out = v;
    if constexpr (A == Activation::ReLU) {
      out = v > 0.0f ? v : 0.0f;
    } else if constexpr (A == Activation::Sigmoid) {
      const float e = expf(-fabsf(v));
      out = v >= 0.0f ? 1.0f / (1.0f + e) : e / (1.0f + e);
    } else if constexpr (A == Activation::LeakyReLU) {
      out = v > 0.0f ? v : slope * v;
    }
    y[i] = out;
  }
}

template <Activation A>
__global__ void activation_backward_kernel(const float* y, const float* dy, float* dx, int64_t n,
                                           float slope) {
  const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < n;
       i += stride) {
    const float out = y[i], g = dy[i];
    float r = g;
    if constexpr (A == Activation::ReLU) {
      r = out > 0.0f ? g : 0.0f;
    } else if constexpr (A == Activation::Sigmoid) {
      r = g * out * (1.0f - out);
    } else if constexpr (A == Activation::LeakyReLU) {
      r = out > 0.0f ? g : slope * g;
    }
    dx[i] = r;
  }
}

void check_args(Activation a, int64_t n, float slope, const char* op) {
  CUVAE_CHECK(n >= 0, op << ": negative size " << n);
  CUVAE_CHECK(a != Activation::LeakyReLU || slope >= 0.0f,
              op << ": leaky_relu slope must be >= 0, got " << slope);
}

// The kernel of activation a over n elements, with `args`.
template <template <Activation> class Launch, class... Args>
void launch_for(Activation a, Args... args) {
  switch (a) {
    case Activation::None: Launch<Activation::None>::run(args...); break;
    case Activation::ReLU: Launch<Activation::ReLU>::run(args...); break;
    case Activation::Sigmoid: Launch<Activation::Sigmoid>::run(args...); break;
    case Activation::LeakyReLU: Launch<Activation::LeakyReLU>::run(args...); break;
  }
}
template <Activation A>
struct Forward {
  static void run(const float* x, float* y, int64_t n, float slope, detail::DeviceStream s) {
    detail::launch<activation_forward_kernel<A>>(detail::grid_for(n), detail::kBlock, 0, s, x, y, n, slope);
  }
};
template <Activation A>
struct Backward {
  static void run(const float* y, const float* dy, float* dx, int64_t n, float slope, detail::DeviceStream s) {
    detail::launch<activation_backward_kernel<A>>(detail::grid_for(n), detail::kBlock, 0, s, y, dy, dx, n, slope);
  }
};

}  // namespace

template <>
void activation_forward_cuda(Activation a, const float* x, float* y, int64_t n, float slope,
                             detail::DeviceStream s) {
  check_args(a, n, slope, "activation_forward_cuda");
  if (n == 0 || (a == Activation::None && x == y)) return;
  launch_for<Forward>(a, x, y, n, slope, s);
}

template <>
void activation_backward_cuda(Activation a, const float* y, const float* dy, float* dx, int64_t n,
                              float slope, detail::DeviceStream s) {
  check_args(a, n, slope, "activation_backward_cuda");
  if (n == 0 || (a == Activation::None && dy == dx)) return;
  launch_for<Backward>(a, y, dy, dx, n, slope, s);
}

}  // namespace cuvae
