// Test log-likelihood of a VAE by importance sampling: the IWAE bound of Burda, Grosse &
// Salakhutdinov 2016 ("Importance Weighted Autoencoders", ICLR), −log p(x) in nats per image.
#pragma once

#include <cstdint>
#include <limits>
#include <vector>

#include "core/context.h"
#include "core/distributed.h"
#include "io/dataset.h"
#include "models/conv_vae.h"

namespace cuvae {

/// log((1/n) Σ exp(v_i)) computed as m + log((1/n) Σ exp(v_i − m)) with m = max v_i, so it
/// stays finite for log-weights of any magnitude (e.g. all near −1e4). −inf for n = 0 or all
/// v_i = −inf; +inf or NaN propagate.
double log_mean_exp(const double* v, int64_t n);

/// Streaming log-mean-exp: add() one value at a time, value() = log_mean_exp of all added.
struct LogMeanExp {
  double max = -std::numeric_limits<double>::infinity();  ///< running maximum
  double sum = 0;            ///< Σ exp(v − max)
  int64_t n = 0;             ///< values added
  /// Adds one log-weight (rescaling the running sum when the maximum grows).
  void add(double v);
  /// log((1/n) Σ exp(v)); −inf when nothing was added.
  double value() const;
};

/// The importance weight of one sample in log form, for z = μ + σ·ε:
///   log w = log p(x|z) + log p(z) − log q(z|x)
///         = −recon(x, z) − ½Σ_d z_d² + ½Σ_d (ε_d² + logσ²_d),
/// the 2π terms cancelling. recon is the Bernoulli cross-entropy in nats (the `recon` of
/// eval-vae). Shapes: mu, logvar, eps [D].
double iwae_log_weight(double recon, const float* mu, const float* logvar, const float* eps, int64_t D);

/// What estimate_nll does.
struct NllOptions {
  int64_t k = 100;           ///< importance samples per image (≥ 1)
  int64_t limit = 0;         ///< the first N images of the data set (0 = all)
  int64_t chunk_rows = 2000; ///< decoder rows per pass: memory is bounded for any k
  uint64_t seed = 0x11a3e5ull;  ///< ε for image g, sample s, dim d = philox_normal(seed, offset + s, g·D + d)
  uint64_t offset = 0;
  bool progress = false;     ///< progress bar with ETA on stderr (drawn by the rank that writes)
  /// With several ranks, each estimates its share Communicator::shard(n) of the images (with the
  /// ε of their global index, so the values are those of one process) and the per-image values
  /// are summed over the ranks: every rank returns the whole result. nullptr: one process.
  const Communicator* comm = nullptr;
};

/// Per-image and summary results of estimate_nll.
struct NllResult {
  double nll = 0;         ///< mean over images of −log p̂_K(x), nats per image (positive)
  double nll_stderr = 0;  ///< standard error of that mean across images (sample sd / √n)
  double neg_elbo_k1 = 0;  ///< −ELBO estimate: the mean over images of the K = 1 bound from the first sample (nats per image)
  int64_t n = 0, k = 0;
  double seconds = 0;
  std::vector<double> per_image;  ///< [n] −log p̂_K(x_i)
};

/// Estimates −log p(x) for the first opt.limit images of `data` with opt.k importance samples
/// from q(z|x) (the IWAE bound, Burda et al. 2016, eq. 8; log-sum-exp via LogMeanExp), with
/// the Bernoulli likelihood on the grey-level pixels x = byte/255 that eval-vae's recon uses
/// (binarize `data` first, e.g. with binarized_copy, for the binarized benchmark). Samples go
/// through the decoder opt.chunk_rows rows at a time. With k = 1 and offset o, image g's
/// bound is the single-sample ELBO with the ε that model.forward(x, true, seed, o) draws for
/// a batch starting at image 0. With opt.comm over N ranks each rank decodes about n/N images
/// (N times faster) and the ranks must hold one model and one data set. Throws cuvae::Error for an AE checkpoint ("--nll needs a
/// VAE"), k < 1 ("--nll must be at least 1"), an empty data set or a shape mismatch.
NllResult estimate_nll(Context& ctx, ConvVAE& model, const Dataset& data, const NllOptions& opt);

/// A copy of `data` with every pixel set to 255 when philox_uniform_at(seed, 0, i) < byte/255,
/// else 0: dynamic binarization with a fixed seed (as the IWAE paper evaluates MNIST).
Dataset binarized_copy(const Dataset& data, uint64_t seed = 0xb1a7u);

}  // namespace cuvae
