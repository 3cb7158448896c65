// Per-channel bias of convolution and linear layers: add in the forward pass, reduce in the
// backward pass. Layout [n, c, hw] (NCHW with hw = H*W; hw = 1 for a Linear layer's [n, c]).
#pragma once

#include <cstdint>

#include "core/context.h"
#include "core/tensor.h"
#include "kernels/emu/stream.h"

namespace cuvae {

/// CPU reference: y[i, k, j] += bias[k] for i < n, k < c, j < hw (y is [n, c, hw], bias [c]).
/// Throws cuvae::Error on a negative size.
template <typename T>
void add_bias_nchw_cpu(T* y, const T* bias, int64_t n, int64_t c, int64_t hw);

/// CPU reference: dbias[k] = sum_{i < n, j < hw} dy[i, k, j] (written, not accumulated;
/// summed in double). dy is [n, c, hw], dbias [c]. Throws cuvae::Error on a negative size.
template <typename T>
void bias_grad_nchw_cpu(const T* dy, T* dbias, int64_t n, int64_t c, int64_t hw);

/// CUDA version of add_bias_nchw_cpu (device pointers, float, on `s`; no allocation, no
/// synchronisation). Throws cuvae::Error on a negative size or a launch error.
/// S: Stream on the GPU, EmuStream on the emulated device (kernels/emu/stream.h).
template <class S>
void add_bias_nchw_cuda(float* y, const float* bias, int64_t n, int64_t c, int64_t hw, S s);

/// CUDA version of bias_grad_nchw_cpu: for hw > 1 one block per channel, each thread summing a
/// fixed strided subset and a cub::BlockReduce combining them; for hw = 1 (a Linear layer) one
/// block per 32 channels, 16 row groups each and their partial sums added in order. Deterministic,
/// no atomics. Writes dbias[k] = 0 when n*hw = 0. Throws cuvae::Error on a negative size or a launch error.
/// S: Stream on the GPU, EmuStream on the emulated device (kernels/emu/stream.h).
template <class S>
void bias_grad_nchw_cuda(const float* dy, float* dbias, int64_t n, int64_t c, int64_t hw, S s);

/// y += bias per channel on the context's device: y is [N, C, ...] (N = dim 0, C = dim 1,
/// hw = the product of the remaining dimensions, 1 for [N, C]), bias has C elements.
/// Throws cuvae::Error on a shape or device mismatch, or a CUDA tensor without the backend.
void add_bias_nchw(Context& ctx, Tensor& y, const Tensor& bias);

/// dbias = per-channel sum of dy ([N, C, ...] as in add_bias_nchw) into dbias (C elements),
/// written not accumulated. Throws cuvae::Error as add_bias_nchw.
void bias_grad_nchw(Context& ctx, const Tensor& dy, Tensor& dbias);

}  // namespace cuvae
