// Class-anchored generation: per-class statistics of a VAE's posterior means over the training
// set (the class's mean and covariance, and a Gaussian mixture fitted to its codes), and sampling
// z from them: z ~ N(mean_c, s²·Σ_c), or with a mixture, a component m by its weight and then
// z ~ N(mean_cm, s²·Σ_cm). The mixture is ex-post density estimation (P. Ghosh et al., "From
// Variational to Deterministic Autoencoders", ICLR 2020): a class whose codes form several
// clusters (coats with and without a zip) is sampled near its clusters rather than between them.
#pragma once

#include <cstdint>
#include <ostream>
#include <string>
#include <vector>

#include "core/context.h"
#include "io/dataset.h"
#include "models/conv_vae.h"

namespace cuvae {

/// Mixture components per class that anchored sampling uses unless told otherwise (`--components`).
constexpr int kDefaultAnchorComponents = 10;

/// Per-class mean and covariance of μ(x) over a labelled data set, and per class a Gaussian
/// mixture of `components` components fitted to the same codes.
struct AnchorStats {
  int64_t classes = 0;
  int64_t latent = 0;
  std::vector<int64_t> count;  ///< [K] images per class
  std::vector<double> mean;    ///< [K, D]
  std::vector<double> cov;     ///< [K, D, D], the maximum-likelihood (1/count) covariance
  /// M, mixture components per class; 1: no mixture, sampling uses mean and cov.
  int64_t components = 1;
  /// [K, M] mixing weights (empty when M == 1). A class with fewer than 2·(D + 1) images per
  /// component gets fewer components; the rest have weight 0.
  std::vector<double> mix_weight;
  std::vector<double> mix_mean;  ///< [K, M, D] (empty when M == 1)
  std::vector<double> mix_cov;   ///< [K, M, D, D] (empty when M == 1)
  std::string vae_fingerprint;   ///< identifies the VAE checkpoint the statistics belong to
};

/// Encodes every image of `data` (z = μ, batches of `batch`), accumulates each class's mean and
/// covariance of μ (in double) and, when components > 1, fits each class's Gaussian mixture
/// (numerics/gmm.h: full covariances, EM from a k-means start with seed 0, reg_covar 1e-6).
/// Throws cuvae::Error when the data's image shape differs from the model's, a class has fewer
/// than 2 images, or components < 1.
AnchorStats compute_anchor_stats(Context& ctx, ConvVAE& vae, const Dataset& data, int64_t batch = 500,
                                 bool progress = false, int components = 1);

/// A fingerprint of a file's bytes (size and 64-bit FNV-1a hash, as hex text).
std::string file_fingerprint(const std::string& path);

/// Where a VAE checkpoint's anchor statistics are kept: beside it, `<stem>.anchors.safetensors`
/// (runs/vae/model.safetensors → runs/vae/model.anchors.safetensors).
std::string anchor_stats_path(const std::string& vae_path);

/// Writes `s` as safetensors (F64 "mean" [K, D], "cov" [K, D, D], I64 "count" [K]; with a
/// mixture also F64 "mix_weight" [K, M], "mix_mean" [K, M, D], "mix_cov" [K, M, D, D]; metadata
/// vae_fingerprint and components) atomically. Throws cuvae::Error naming the path on failure.
void save_anchor_stats(const std::string& path, const AnchorStats& s);
/// Reads statistics written by save_anchor_stats; throws cuvae::Error naming the path and field.
AnchorStats load_anchor_stats(const std::string& path);

/// The statistics for the VAE checkpoint at `vae_path`: read from anchor_stats_path() when that
/// file exists, belongs to this checkpoint (same fingerprint) and holds `components` mixture
/// components (0: any number, for callers that need only the class means), else computed (with
/// kDefaultAnchorComponents when `components` is 0) over the training
/// split of the VAE's data set (from `data_dir`, or its default folder when empty) and saved
/// there, so they are computed once (when that folder is not writable they are used without
/// being kept, and `log` says so). Progress and what happened go to `log`.
AnchorStats anchor_stats_for(Context& ctx, ConvVAE& vae, const std::string& vae_path,
                             const std::string& data_dir, std::ostream& log, bool progress = true,
                             int components = kDefaultAnchorComponents);

/// n latent vectors [n, D] (row-major floats) z = mean_c + noise·L·ε with L·Lᵀ = Σ_c (from the
/// symmetric eigendecomposition, negative eigenvalues clipped to 0) and ε ~ N(0, I) from Philox
/// under (seed, class). With a mixture (s.components > 1) each vector first draws its component
/// m by the class's weights (its own Philox uniform) and uses mean_cm and Σ_cm; ε is the same
/// stream as without. Throws cuvae::Error when `klass` is outside [0, K) or noise < 0.
std::vector<float> sample_anchored(const AnchorStats& s, int klass, int64_t n, double noise, uint64_t seed);

}  // namespace cuvae
