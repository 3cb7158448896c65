// The free-bits KL floor (Kingma et al. 2016, "Improved Variational Inference with Inverse
// Autoregressive Flow", sec. C.8) on the KL term's gradient and loss, per latent dimension.
#pragma once

#include <cstdint>

#include "core/context.h"
#include "core/tensor.h"
#include "kernels/emu/stream.h"
#include "kernels/step_state.h"

namespace cuvae {

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

/// CUDA version (device pointers, float, enqueued on `s`; no allocation, no synchronisation).
/// One block per dimension computes m_j and zeroes the gradient columns below the floor; one
/// more block adds the loss correction in a fixed order (bitwise reproducible). With `step_state`
/// (device memory) beta is its kl_weight, read when the kernel runs.
/// S: Stream on the GPU, EmuStream on the emulated device (kernels/emu/stream.h).
template <class S>
void free_bits_cuda(const float* mu, const float* logvar, int64_t n, int64_t d, float lambda, float beta,
                    float* dmu, float* dlogvar, float* kl_dim, float* loss, S s,
                    const StepState* step_state = nullptr);

/// Tensor-level free_bits: mu, logvar, dmu, dlogvar [n, d]; kl_dim [d]; loss [1]. With
/// `step_state` (on the context's device) beta is its kl_weight.
void free_bits(Context& ctx, const Tensor& mu, const Tensor& logvar, float lambda, float beta, Tensor& dmu,
               Tensor& dlogvar, Tensor& kl_dim, Tensor& loss, const StepState* step_state = nullptr);

}  // namespace cuvae
