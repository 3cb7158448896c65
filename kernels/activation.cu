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

}  // namespace

void activation_forward_cuda(Activation a, const float* x, float* y, int64_t n, float slope,
                             Stream s) {
  check_args(a, n, slope, "activation_forward_cuda");
  if (n == 0) return;
  const cudaStream_t st = detail::to_cuda(s);
  const unsigned grid = detail::grid_for(n);
  switch (a) {
    case Activation::None:
      if (x == y) return;
      activation_forward_kernel<Activation::None><<<grid, detail::kBlock, 0, st>>>(x, y, n, slope);
      break;
    case Activation::ReLU:
      activation_forward_kernel<Activation::ReLU><<<grid, detail::kBlock, 0, st>>>(x, y, n, slope);
      break;
    case Activation::Sigmoid:
      activation_forward_kernel<Activation::Sigmoid>
          <<<grid, detail::kBlock, 0, st>>>(x, y, n, slope);
      break;
    case Activation::LeakyReLU:
      activation_forward_kernel<Activation::LeakyReLU>
          <<<grid, detail::kBlock, 0, st>>>(x, y, n, slope);
      break;
  }
  CUDA_CHECK_LAUNCH();
}

void activation_backward_cuda(Activation a, const float* y, const float* dy, float* dx, int64_t n,
                              float slope, Stream s) {
  check_args(a, n, slope, "activation_backward_cuda");
  if (n == 0) return;
  const cudaStream_t st = detail::to_cuda(s);
  const unsigned grid = detail::grid_for(n);
  switch (a) {
    case Activation::None:
      if (dy == dx) return;
      activation_backward_kernel<Activation::None>
          <<<grid, detail::kBlock, 0, st>>>(y, dy, dx, n, slope);
      break;
    case Activation::ReLU:
      activation_backward_kernel<Activation::ReLU>
          <<<grid, detail::kBlock, 0, st>>>(y, dy, dx, n, slope);
      break;
    case Activation::Sigmoid:
      activation_backward_kernel<Activation::Sigmoid>
          <<<grid, detail::kBlock, 0, st>>>(y, dy, dx, n, slope);
      break;
    case Activation::LeakyReLU:
      activation_backward_kernel<Activation::LeakyReLU>
          <<<grid, detail::kBlock, 0, st>>>(y, dy, dx, n, slope);
      break;
  }
  CUDA_CHECK_LAUNCH();
}

}  // namespace cuvae
