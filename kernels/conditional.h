// Kernels of the conditional VAE (Sohn et al. 2015) and of the free-bits KL floor (Kingma et
// al. 2016): appending a one-hot label to a batch of feature rows, taking the feature columns
// of a gradient back, and the per-dimension KL floor on the KL term's gradient and loss.
#pragma once

#include <cstdint>

#include "host/context.h"
#include "host/buffer.h"
#include "host/tensor.h"
#include "kernels/emu/stream.h"
#include "kernels/step_state.h"

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

/// CPU reference of the free-bits floor, applied after the ELBO kernel (kernels/elbo.h) wrote
/// the KL term's gradient into dmu, dlogvar [n, d]: for each dimension j the batch mean
///   m_j = (1/n) Σ_i ½(μ_ij² + exp(logvar_ij) − 1 − logvar_ij)
/// is written to kl_dim[j]; where m_j < lambda the KL term of dimension j is replaced by the
/// constant lambda, so dmu[:, j] and dlogvar[:, j] are set to 0 and loss[0] gains
/// beta·(lambda − m_j). Dimensions at or above the floor are untouched. Sums in double.
/// Throws cuvae::Error on a negative size or a lambda that is negative or not finite.
template <typename T>
void free_bits_cpu(const T* mu, const T* logvar, int64_t n, int64_t d, float lambda, float beta, T* dmu,
                   T* dlogvar, T* kl_dim, T* loss);

/// CUDA versions (device pointers, float, enqueued on `s`; no allocation, no synchronisation).
/// Labels are not checked on the device: one out of range sets no label column.
/// S: Stream on the GPU, EmuStream on the emulated device (kernels/emu/stream.h).
template <class S>
void concat_onehot_cuda(const float* feat, const int32_t* labels, int64_t n, int64_t f, int64_t k, float* out,
                        S s);
/// S: Stream on the GPU, EmuStream on the emulated device (kernels/emu/stream.h).
template <class S>
void take_columns_cuda(const float* src, int64_t n, int64_t f, int64_t k, float* dst, S s);
/// One block per dimension computes m_j and zeroes the gradient columns below the floor; one
/// more block adds the loss correction in a fixed order (bitwise reproducible). With `step_state`
/// (device memory) beta is its kl_weight, read when the kernel runs.
/// S: Stream on the GPU, EmuStream on the emulated device (kernels/emu/stream.h).
template <class S>
void free_bits_cuda(const float* mu, const float* logvar, int64_t n, int64_t d, float lambda, float beta,
                    float* dmu, float* dlogvar, float* kl_dim, float* loss, S s,
                    const StepState* step_state = nullptr);

/// Tensor-level concat_onehot on the context's device: feat [n, f], labels (at least n int32
/// values in a typed buffer on the same device; range checked on the CPU), out [n, f + k].
/// Throws cuvae::Error on a shape or device mismatch, a buffer shorter than n or (CPU) a label
/// out of range.
void concat_onehot(Context& ctx, const Tensor& feat, const IntBuffer& labels, int64_t k, Tensor& out);
/// Tensor-level take_columns: src [n, f + k] → dst [n, f].
void take_columns(Context& ctx, const Tensor& src, int64_t k, Tensor& dst);
/// Tensor-level free_bits: mu, logvar, dmu, dlogvar [n, d]; kl_dim [d]; loss [1]. With
/// `step_state` (on the context's device) beta is its kl_weight.
void free_bits(Context& ctx, const Tensor& mu, const Tensor& logvar, float lambda, float beta, Tensor& dmu,
               Tensor& dlogvar, Tensor& kl_dim, Tensor& loss, const StepState* step_state = nullptr);

}  // namespace cuvae
