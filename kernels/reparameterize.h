// The reparameterization trick (Kingma & Welling, "Auto-Encoding Variational Bayes",
// ICLR 2014, eq. 10) and standard-normal sampling, with Philox4x32-10 noise so the
// CPU and CUDA paths draw the same eps for the same (seed, offset).
#pragma once

#include <cstdint>

#include "core/context.h"
#include "core/tensor.h"
#include "kernels/emu/stream.h"
#include "kernels/step_state.h"

namespace cuvae {

/// CPU reference of the forward pass over n = batch*latent values (flat, any layout):
///   eps[i] = philox_normal(seed, offset, index_base + i),  z[i] = mu[i] + exp(0.5*logvar[i]) * eps[i]
/// (index_base: the first value's index within a data-parallel global batch, else 0).
/// eps is written so the backward pass can reuse it. z may alias mu. Throws cuvae::Error
/// if n < 0.
template <typename T>
void reparameterize_forward_cpu(const T* mu, const T* logvar, T* eps, T* z, int64_t n,
                                uint64_t seed, uint64_t offset, uint64_t index_base = 0);

/// CPU reference of the backward pass over n values:
///   dmu = dz,  dlogvar = dz * eps * 0.5 * exp(0.5*logvar).
/// With `accumulate` the two results are added to dmu/dlogvar (which then hold, e.g., the
/// KL gradient written by the ELBO kernel), otherwise they overwrite them. dmu may not
/// alias dz when accumulating. Throws cuvae::Error if n < 0.
template <typename T>
void reparameterize_backward_cpu(const T* dz, const T* eps, const T* logvar, T* dmu, T* dlogvar,
                                 int64_t n, bool accumulate);

/// CPU reference: out[i] = philox_normal(seed, offset, i) for i in [0, n) (standard normal
/// prior samples). Throws cuvae::Error if n < 0.
template <typename T>
void sample_normal_cpu(T* out, int64_t n, uint64_t seed, uint64_t offset);

/// CUDA version of reparameterize_forward_cpu (device pointers, float, enqueued on `s`;
/// no allocation, no synchronisation). With `step_state` (device memory) the Philox offset is
/// offset + step_state->philox_offset and the index base step_state->row_base · row_elems (the
/// values per row, mu's second dimension), read when the kernel runs. Throws cuvae::Error on n < 0
/// or a launch error.
/// S: Stream on the GPU, EmuStream on the emulated device (kernels/emu/stream.h).
template <class S>
void reparameterize_forward_cuda(const float* mu, const float* logvar, float* eps, float* z,
                                 int64_t n, uint64_t seed, uint64_t offset, S s,
                                 const StepState* step_state = nullptr, int64_t row_elems = 0);

/// CUDA version of reparameterize_backward_cpu (device pointers, float, on `s`).
/// Throws cuvae::Error on n < 0 or a launch error.
/// S: Stream on the GPU, EmuStream on the emulated device (kernels/emu/stream.h).
template <class S>
void reparameterize_backward_cuda(const float* dz, const float* eps, const float* logvar,
                                  float* dmu, float* dlogvar, int64_t n, bool accumulate, S s);

/// CUDA version of sample_normal_cpu (device pointer, float, on `s`).
/// Throws cuvae::Error on n < 0 or a launch error.
/// S: Stream on the GPU, EmuStream on the emulated device (kernels/emu/stream.h).
template <class S>
void sample_normal_cuda(float* out, int64_t n, uint64_t seed, uint64_t offset, S s);

/// Forward pass on tensors: mu, logvar, eps, z of equal numel (typically [N, D]), all on
/// the context's device; fills eps and z as reparameterize_forward_cpu, at Philox offset
/// offset + step_state->philox_offset and index base step_state->row_base · D (D = mu's values per
/// row) when `step_state` (on the context's device) is given. Throws cuvae::Error on a size or device mismatch, or a CUDA tensor without the CUDA backend.
void reparameterize_forward(Context& ctx, const Tensor& mu, const Tensor& logvar, Tensor& eps,
                            Tensor& z, uint64_t seed, uint64_t offset,
                            const StepState* step_state = nullptr);

/// Backward pass on tensors of equal numel on the context's device, as
/// reparameterize_backward_cpu. Throws cuvae::Error as reparameterize_forward.
void reparameterize_backward(Context& ctx, const Tensor& dz, const Tensor& eps,
                             const Tensor& logvar, Tensor& dmu, Tensor& dlogvar, bool accumulate);

/// Fills `out` (any shape, on the context's device) with philox_normal(seed, offset, i) at
/// flat index i. Throws cuvae::Error on a device mismatch or a missing CUDA backend.
void sample_normal(Context& ctx, Tensor& out, uint64_t seed, uint64_t offset);

}  // namespace cuvae
