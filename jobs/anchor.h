// Class-anchored generation: per-class Gaussian statistics of a VAE's posterior means over the
// training set, and sampling z ~ N(mean_c, s²·Σ_c) from them.
#pragma once

#include <cstdint>
#include <ostream>
#include <string>
#include <vector>

#include "core/context.h"
#include "io/dataset.h"
#include "models/conv_vae.h"

namespace cuvae {

/// Per-class mean and covariance of μ(x) over a labelled data set.
struct AnchorStats {
  int64_t classes = 0;
  int64_t latent = 0;
  std::vector<int64_t> count;  ///< [K] images per class
  std::vector<double> mean;    ///< [K, D]
  std::vector<double> cov;     ///< [K, D, D], the maximum-likelihood (1/count) covariance
  std::string vae_fingerprint; ///< identifies the VAE checkpoint the statistics belong to
};

/// Encodes every image of `data` (z = μ, batches of `batch`) and accumulates each class's mean
/// and covariance of μ (in double). Throws cuvae::Error when the data's image shape differs from
/// the model's or a class has fewer than 2 images.
AnchorStats compute_anchor_stats(Context& ctx, ConvVAE& vae, const Dataset& data, int64_t batch = 500,
                                 bool progress = false);

/// A fingerprint of a file's bytes (size and 64-bit FNV-1a hash, as hex text).
std::string file_fingerprint(const std::string& path);

/// Where a VAE checkpoint's anchor statistics are kept: beside it, `<stem>.anchors.safetensors`
/// (runs/vae/model.safetensors → runs/vae/model.anchors.safetensors).
std::string anchor_stats_path(const std::string& vae_path);

/// Writes `s` as safetensors (F64 "mean" [K, D], "cov" [K, D, D], I64 "count" [K]; metadata
/// vae_fingerprint) atomically. Throws cuvae::Error naming the path on failure.
void save_anchor_stats(const std::string& path, const AnchorStats& s);
/// Reads statistics written by save_anchor_stats; throws cuvae::Error naming the path and field.
AnchorStats load_anchor_stats(const std::string& path);

/// The statistics for the VAE checkpoint at `vae_path`: read from anchor_stats_path() when that
/// file exists and belongs to this checkpoint (same fingerprint), else computed over the training
/// split of the VAE's data set (from `data_dir`, or its default folder when empty) and saved
/// there, so they are computed once (when that folder is not writable they are used without
/// being kept, and `log` says so). Progress and what happened go to `log`.
AnchorStats anchor_stats_for(Context& ctx, ConvVAE& vae, const std::string& vae_path,
                             const std::string& data_dir, std::ostream& log, bool progress = true);

/// n latent vectors [n, D] (row-major floats) z = mean_c + noise·L·ε with L·Lᵀ = Σ_c (from the
/// symmetric eigendecomposition, negative eigenvalues clipped to 0) and ε ~ N(0, I) from Philox
/// under (seed, class). Throws cuvae::Error when `klass` is outside [0, K) or noise < 0.
std::vector<float> sample_anchored(const AnchorStats& s, int klass, int64_t n, double noise, uint64_t seed);

}  // namespace cuvae
