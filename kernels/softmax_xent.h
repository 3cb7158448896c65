// Fused softmax cross-entropy: per-image loss, batch-mean loss and the gradient of the batch
// mean with respect to the logits in one pass (the classifier's counterpart of the fused ELBO).
#pragma once

#include <cstdint>

#include "core/buffer.h"
#include "core/context.h"
#include "core/tensor.h"
#include "kernels/emu/stream.h"

namespace cuvae {

/// CPU reference. logits [n, k], labels [n] int32 in [0, k):
///   p[i, :] = softmax(logits[i, :])  (max-subtracted, log-sum-exp in double),
///   loss[i] = −log p[i, labels[i]]  (nats per image),
///   *mean_loss = (1/n) Σ_i loss[i]  (if mean_loss is non-null; summed in double),
///   dlogits[i, j] = (p[i, j] − [j == labels[i]]) / n  (if dlogits is non-null),
///   probs[i, j] = p[i, j]  (if probs is non-null).
/// loss is required; dlogits may alias logits. Throws cuvae::Error on n < 1, k < 1, a null loss
/// or a label outside [0, k) (naming the row and the label), before writing anything.
template <typename T>
void softmax_xent_cpu(const T* logits, const int32_t* labels, int64_t n, int64_t k, T* loss,
                      T* mean_loss, T* dlogits, T* probs);

/// CUDA version of softmax_xent_cpu (device pointers, float, on `s`; one warp per row, the
/// batch mean summed in a fixed order by one block, so results are deterministic; no
/// allocation, no synchronisation). A label outside [0, k) is not an error on the device
/// (that would need a synchronisation): that row's loss is written as NaN, which the trainer's
/// loss monitor catches. loss is required (the per-row scratch of the batch mean). Throws
/// cuvae::Error on n < 1, k < 1, k > 1024, a null loss or a launch error.
/// S: Stream on the GPU, EmuStream on the emulated device (kernels/emu/stream.h).
template <class S>
void softmax_xent_cuda(const float* logits, const int32_t* labels, int64_t n, int64_t k,
                       float* loss, float* mean_loss, float* dlogits, float* probs, S s);

/// Tensor form on the context's device: logits [n, k], labels (at least n int32 class indices in
/// a typed buffer on the context's device), loss [n], mean_loss [1] (or null), dlogits [n, k]
/// (or null), probs [n, k] (or null). Throws cuvae::Error on a shape or device mismatch (naming
/// the tensor or buffer), and as the functions above.
void softmax_xent(Context& ctx, const Tensor& logits, const IntBuffer& labels, Tensor& loss,
                  Tensor* mean_loss, Tensor* dlogits, Tensor* probs);

}  // namespace cuvae
