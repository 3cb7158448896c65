// Elementwise activations for the layers: forward, and backward from the forward output.
#pragma once

#include <cstdint>
#include <string>

#include "core/context.h"
#include "core/tensor.h"
#include "kernels/emu/stream.h"

namespace cuvae {

/// The elementwise nonlinearities a layer can apply after its affine part.
enum class Activation { None, ReLU, Sigmoid, LeakyReLU };

/// Parses "none", "relu", "sigmoid" or "leaky_relu" (the names activation_name gives);
/// throws cuvae::Error naming the string and the accepted names otherwise.
Activation parse_activation(const std::string& name);

/// "none", "relu", "sigmoid" or "leaky_relu".
const char* activation_name(Activation a);

/// CPU reference of y = f(x) over n elements (y may alias x):
///   None: x;  ReLU: max(x, 0);  Sigmoid: 1/(1 + exp(-x)) (evaluated without overflow);
///   LeakyReLU: x > 0 ? x : slope*x.
/// `slope` is used by LeakyReLU only and must be >= 0 there (so that y > 0 exactly when
/// x > 0, which the backward pass relies on). Throws cuvae::Error on n < 0 or a negative
/// LeakyReLU slope.
template <typename T>
void activation_forward_cpu(Activation a, const T* x, T* y, int64_t n, float slope);

/// CPU reference of dx = f'(x) * dy from the forward OUTPUT y (dx may alias dy):
///   None: dy;  ReLU: y > 0 ? dy : 0;  Sigmoid: dy*y*(1 - y);  LeakyReLU: y > 0 ? dy : slope*dy.
/// At x = 0 the ReLU/LeakyReLU derivative is taken as the left one (0 / slope), as PyTorch
/// does. Throws cuvae::Error on n < 0 or a negative LeakyReLU slope.
template <typename T>
void activation_backward_cpu(Activation a, const T* y, const T* dy, T* dx, int64_t n, float slope);

/// CUDA version of activation_forward_cpu (device pointers, float, on `s`; no allocation, no
/// synchronisation). Throws cuvae::Error as the CPU version or on a launch error.
/// S: Stream on the GPU, EmuStream on the emulated device (kernels/emu/stream.h).
template <class S>
void activation_forward_cuda(Activation a, const float* x, float* y, int64_t n, float slope,
                             S s);

/// CUDA version of activation_backward_cpu (device pointers, float, on `s`). Throws
/// cuvae::Error as the CPU version or on a launch error.
/// S: Stream on the GPU, EmuStream on the emulated device (kernels/emu/stream.h).
template <class S>
void activation_backward_cuda(Activation a, const float* y, const float* dy, float* dx, int64_t n,
                              float slope, S s);

/// y = f(x) on tensors of equal numel on the context's device (y may be x itself). Throws
/// cuvae::Error on a size/device mismatch, a negative LeakyReLU slope, or a CUDA tensor
/// without the CUDA backend.
void activation_forward(Context& ctx, Activation a, const Tensor& x, Tensor& y,
                        float slope = 0.01f);

/// dx = f'(x) * dy from the forward output y, on tensors of equal numel on the context's
/// device (dx may be dy itself). Throws cuvae::Error as activation_forward.
void activation_backward(Context& ctx, Activation a, const Tensor& y, const Tensor& dy, Tensor& dx,
                         float slope = 0.01f);

}  // namespace cuvae
