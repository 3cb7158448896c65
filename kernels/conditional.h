// Kernels of the conditional VAE (Sohn et al. 2015): appending a one-hot label to a batch of
// feature rows, and taking the feature columns of a gradient back.
#pragma once

#include <cstdint>

#include "core/buffer.h"
#include "core/context.h"
#include "core/tensor.h"
#include "kernels/emu/stream.h"

namespace cuvae {

/// CPU reference: out [n, f + k] = [feat | onehot(labels, k)]: out[i, j] = feat[i, j] for j < f,
/// out[i, f + labels[i]] = 1 and the other k − 1 label columns 0. Shapes: feat [n, f], labels
/// [n] int32 in [0, k). Throws cuvae::Error on a negative size or a label out of range.
template <typename T>
void concat_onehot_cpu(const T* feat, const int32_t* labels, int64_t n, int64_t f, int64_t k, T* out);

/// CPU reference: dst [n, f] = the first f columns of src [n, f + k] (the feature part of a
/// gradient of concat_onehot's output; the label columns have no gradient to pass on).
template <typename T>
void take_columns_cpu(const T* src, int64_t n, int64_t f, int64_t k, T* dst);

/// CUDA versions (device pointers, float, enqueued on `s`; no allocation, no synchronisation).
/// Labels are not checked on the device: one out of range sets no label column.
/// S: Stream on the GPU, EmuStream on the emulated device (kernels/emu/stream.h).
template <class S>
void concat_onehot_cuda(const float* feat, const int32_t* labels, int64_t n, int64_t f, int64_t k, float* out,
                        S s);
/// S: Stream on the GPU, EmuStream on the emulated device (kernels/emu/stream.h).
template <class S>
void take_columns_cuda(const float* src, int64_t n, int64_t f, int64_t k, float* dst, S s);
/// Tensor-level concat_onehot on the context's device: feat [n, f], labels (at least n int32
/// values in a typed buffer on the same device; range checked on the CPU), out [n, f + k].
/// Throws cuvae::Error on a shape or device mismatch, a buffer shorter than n or (CPU) a label
/// out of range.
void concat_onehot(Context& ctx, const Tensor& feat, const IntBuffer& labels, int64_t k, Tensor& out);
/// Tensor-level take_columns: src [n, f + k] → dst [n, f].
void take_columns(Context& ctx, const Tensor& src, int64_t k, Tensor& dst);

}  // namespace cuvae
