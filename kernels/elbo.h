// The fused ELBO loss of a Bernoulli-decoder VAE and its gradient in one pass (in the
// manner of tiny-cuda-nn's fused losses): per-image reconstruction and KL terms, the
// batch-mean loss and the scaled gradients w.r.t. the decoder logits, mu and logvar.
#pragma once

#include <cstdint>

#include "core/context.h"
#include "core/tensor.h"
#include "kernels/emu/stream.h"
#include "kernels/step_state.h"

namespace cuvae {

/// Sizes and options of one ELBO evaluation.
struct ElboConfig {
  int64_t n = 0;          ///< images in the batch (>= 1)
  int64_t p = 0;          ///< pixels per image, C*H*W (>= 1)
  int64_t d = 0;          ///< latent dimensions (>= 1)
  float beta = 1.0f;      ///< weight of the KL term (beta-VAE, Higgins et al. 2017); 0 = AE
  bool binarize = false;  ///< dynamic binarization of the targets (see elbo_cpu)
  bool mse = false;       ///< recon = squared error of sigmoid(logits) instead of BCE (see elbo_cpu)
  uint64_t seed = 0;      ///< Philox seed of the binarization draws
  uint64_t offset = 0;    ///< Philox stream (offset) of the binarization draws
  /// When set, beta is this step state's kl_weight and the binarization offset is
  /// offset + philox_offset, both read when the op runs (a device pointer for the CUDA version;
  /// a captured step then replays as the next one).
  const StepState* state = nullptr;
};

/// Throws cuvae::Error unless cfg.n, cfg.p, cfg.d >= 1 and cfg.beta is finite and >= 0.
void check_elbo_config(const ElboConfig& cfg);

/// CPU reference of the fused ELBO. Shapes: logits, x [n, p] (decoder output before the
/// sigmoid, targets in [0, 1]); mu, logvar [n, d]. With target t = x, or with
/// cfg.binarize t = (philox_uniform_at(seed, offset, i*p + j) < x) ? 1 : 0, per image i:
///   recon[i] = sum_j max(l,0) - l*t + log1p(exp(-|l|))              (BCE with logits, nats)
///   kl[i]    = 0.5 * sum_k (mu^2 + exp(logvar) - 1 - logvar)          (KL(q(z|x) || N(0,I)))
///   loss[0]  = (1/n) * sum_i (recon[i] + beta*kl[i])                   (written, not added)
/// and the gradients of loss[0]:
///   dlogits = (sigmoid(l) - t)/n,  dmu = beta*mu/n,  dlogvar = beta*0.5*(exp(logvar) - 1)/n.
/// With cfg.mse (the plain autoencoder's alternative) the reconstruction term is instead
///   recon[i] = sum_j (s - t)^2 with s = sigmoid(l)   (sum of squared errors in [0,1] units),
///   dlogits  = 2*(s - t)*s*(1 - s)/n.
/// recon [n], kl [n], dlogits [n, p], dmu and dlogvar [n, d] may each be nullptr to skip
/// them; loss (1 element) is required. Sums are accumulated in double. Throws
/// cuvae::Error on a bad config or a null loss.
template <typename T>
void elbo_cpu(const T* logits, const T* x, const T* mu, const T* logvar, T* recon, T* kl, T* loss,
              T* dlogits, T* dmu, T* dlogvar, const ElboConfig& cfg);

/// CUDA version of elbo_cpu (device pointers, float, enqueued on `s`; no allocation, no
/// synchronisation). One block per image computes recon[i] and kl[i] (CUB block reductions)
/// and writes the gradients; a second single-block kernel reduces the batch mean into
/// loss[0] in a fixed order, so results are bitwise reproducible run to run. Unlike the CPU
/// reference, recon and kl are REQUIRED (they are the per-image scratch of the batch mean);
/// dlogits, dmu and dlogvar may be nullptr. Throws cuvae::Error on a bad config, a null
/// recon/kl/loss, or a launch error.
/// S: Stream on the GPU, EmuStream on the emulated device (kernels/emu/stream.h).
template <class S>
void elbo_cuda(const float* logits, const float* x, const float* mu, const float* logvar,
               float* recon, float* kl, float* loss, float* dlogits, float* dmu, float* dlogvar,
               const ElboConfig& cfg, S s);

/// The fused ELBO on tensors on the context's device: logits and x of N*P elements each
/// (e.g. [N, C, H, W]), mu and logvar of N*D elements ([N, D]), loss of 1 element, and
/// recon, kl of N elements each — both required on every device so that code written for
/// the CPU also runs on the GPU — and optional dlogits (N*P), dmu, dlogvar (N*D).
/// N = logits.dim(0), P = logits.numel()/N, D = mu.numel()/N; cfg.n, cfg.p, cfg.d may be
/// left 0 (then taken from the tensors) or must equal them. Throws cuvae::Error on a shape,
/// device or config mismatch, a null recon/kl, or a CUDA tensor without the CUDA backend.
void elbo(Context& ctx, const Tensor& logits, const Tensor& x, const Tensor& mu,
          const Tensor& logvar, Tensor* recon, Tensor* kl, Tensor& loss, Tensor* dlogits,
          Tensor* dmu, Tensor* dlogvar, const ElboConfig& cfg);

}  // namespace cuvae
