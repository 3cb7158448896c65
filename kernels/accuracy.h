// Top-1 accuracy counted on the device, so a training loop can report its accuracy without a
// host synchronisation per step.
#pragma once

#include <cstdint>

#include "core/buffer.h"
#include "core/context.h"
#include "core/tensor.h"
#include "kernels/emu/stream.h"

namespace cuvae {

/// CPU reference: *count += the number of rows i < n of logits [n, k] whose argmax (the first
/// index of the largest value, as torch.argmax) equals labels[i]. A row holding NaN counts as
/// wrong. Throws cuvae::Error on n < 0 or k < 1.
template <typename T>
void count_correct_cpu(const T* logits, const int32_t* labels, int64_t n, int64_t k, T* count);

/// CUDA version (device pointers, float, on `s`; one block, a fixed-order CUB reduction; no
/// allocation, no synchronisation). Throws cuvae::Error on n < 0, k < 1 or a launch error.
/// S: Stream on the GPU, EmuStream on the emulated device (kernels/emu/stream.h).
template <class S>
void count_correct_cuda(const float* logits, const int32_t* labels, int64_t n, int64_t k,
                        float* count, S s);

/// Tensor form: logits [n, k] and count [1] on the context's device, labels (at least n int32
/// class indices in a typed buffer on the same device). Throws cuvae::Error on a shape or device
/// mismatch, or when the buffer holds fewer than n values.
void count_correct(Context& ctx, const Tensor& logits, const IntBuffer& labels, Tensor& count);

}  // namespace cuvae
