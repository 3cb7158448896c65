// The residual connection of a ResNet basic block (He et al., "Deep Residual Learning for Image
// Recognition", CVPR 2016): out = ReLU(branch + shortcut), and the gradient accumulation it
// needs in the backward pass.
#pragma once

#include <cstdint>

#include "core/context.h"
#include "core/tensor.h"
#include "kernels/emu/stream.h"

namespace cuvae {

/// CPU reference: y[i] = a[i] + b[i], then max(·, 0) when `relu`, for i < n (y may alias a or b).
/// Throws cuvae::Error on n < 0.
template <typename T>
void residual_add_cpu(const T* a, const T* b, T* y, int64_t n, bool relu);

/// CPU reference of the backward of residual_add_cpu from its OUTPUT y: d[i] = (relu ? (y[i] > 0
/// ? dy[i] : 0) : dy[i]), the gradient both inputs receive (d may alias dy). Throws on n < 0.
template <typename T>
void residual_add_backward_cpu(const T* y, const T* dy, T* d, int64_t n, bool relu);

/// CPU reference: dst[i] += src[i] for i < n (gradient accumulation). Throws on n < 0.
template <typename T>
void accumulate_cpu(T* dst, const T* src, int64_t n);

/// CPU reference: y[i] = (a[i] + b[i]) · scale, the sum rounded before the product (y may alias
/// a or b). Gradient accumulation's last micro-batch: the micro-batches' summed gradients times
/// 1/micro-batches, rounded as a sum-allreduce over ranks followed by · 1/N. Throws on n < 0.
template <typename T>
void add_scaled_cpu(const T* a, const T* b, T scale, T* y, int64_t n);

/// CUDA versions of the four functions above (device pointers, float, on `s`; vectorised
/// when 16-byte aligned; no allocation, no synchronisation). Throw cuvae::Error on n < 0 or a
/// launch error.
/// S: Stream on the GPU, EmuStream on the emulated device (kernels/emu/stream.h).
template <class S>
void residual_add_cuda(const float* a, const float* b, float* y, int64_t n, bool relu, S s);
/// S: Stream on the GPU, EmuStream on the emulated device (kernels/emu/stream.h).
template <class S>
void residual_add_backward_cuda(const float* y, const float* dy, float* d, int64_t n, bool relu,
                                S s);
/// S: Stream on the GPU, EmuStream on the emulated device (kernels/emu/stream.h).
template <class S>
void accumulate_cuda(float* dst, const float* src, int64_t n, S s);
/// S: Stream on the GPU, EmuStream on the emulated device (kernels/emu/stream.h).
template <class S>
void add_scaled_cuda(const float* a, const float* b, float scale, float* y, int64_t n, S s);

/// Tensor forms on the context's device (all tensors of equal numel). Throw cuvae::Error on a
/// size or device mismatch (naming the tensor) or a CUDA tensor without the CUDA backend.
void residual_add(Context& ctx, const Tensor& a, const Tensor& b, Tensor& y, bool relu);
void residual_add_backward(Context& ctx, const Tensor& y, const Tensor& dy, Tensor& d, bool relu);
void accumulate(Context& ctx, Tensor& dst, const Tensor& src);
void add_scaled(Context& ctx, const Tensor& a, const Tensor& b, float scale, Tensor& y);

}  // namespace cuvae
