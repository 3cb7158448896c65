// Global average pooling (Lin et al., "Network In Network", ICLR 2014): [N, C, H, W] → [N, C].
#pragma once

#include <cstdint>

#include "core/context.h"
#include "core/tensor.h"
#include "kernels/emu/stream.h"

namespace cuvae {

/// CPU reference: y[i, k] = (1/hw) Σ_j x[i, k, j] for x [n, c, hw] (summed in double), y [n, c].
/// Throws cuvae::Error on a negative size or hw = 0.
template <typename T>
void global_avg_pool_cpu(const T* x, T* y, int64_t n, int64_t c, int64_t hw);

/// CPU reference backward: dx[i, k, j] = dy[i, k] / hw (written, not accumulated).
/// Throws cuvae::Error on a negative size or hw = 0.
template <typename T>
void global_avg_pool_backward_cpu(const T* dy, T* dx, int64_t n, int64_t c, int64_t hw);

/// CUDA versions (device pointers, float, on `s`; the forward reduces each (i, k) row with one
/// warp in a fixed order; no allocation, no synchronisation). Throw cuvae::Error on a bad size
/// or a launch error.
/// S: Stream on the GPU, EmuStream on the emulated device (kernels/emu/stream.h).
template <class S>
void global_avg_pool_cuda(const float* x, float* y, int64_t n, int64_t c, int64_t hw, S s);
/// S: Stream on the GPU, EmuStream on the emulated device (kernels/emu/stream.h).
template <class S>
void global_avg_pool_backward_cuda(const float* dy, float* dx, int64_t n, int64_t c, int64_t hw,
                                   S s);

/// Tensor forms: x [N, C, H, W] → y [N, C] (any y shape with N·C elements); backward dy [N, C]
/// → dx shaped as x. Throw cuvae::Error on a shape or device mismatch, or a CUDA tensor without
/// the CUDA backend.
void global_avg_pool(Context& ctx, const Tensor& x, Tensor& y);
void global_avg_pool_backward(Context& ctx, const Tensor& dy, Tensor& dx);

}  // namespace cuvae
