// Looking inside a VAE's latent space: posterior codes of a data set, per-dimension KL and
// active units, interpolation (lerp / slerp), latent arithmetic and traversals. Each job takes a
// Context, a model and options and returns data (images as host floats); writing files is the
// caller's separate step (apps/cuvae, the dashboard server).
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "core/context.h"
#include "io/dataset.h"
#include "jobs/anchor.h"
#include "models/conv_vae.h"

namespace cuvae {

/// Posterior parameters of q(z|x) for the first `n` images of a data set.
struct LatentCodes {
  int64_t n = 0;                ///< images encoded
  int64_t latent = 0;           ///< D
  std::vector<float> mu;        ///< [n, D] E_q[z]
  std::vector<float> logvar;    ///< [n, D] log σ²; empty for an autoencoder (no q(z|x) variance)
  std::vector<int64_t> label;   ///< [n] class of each image
  std::vector<int64_t> index;   ///< [n] position of each image in its split (0..n−1)
};

/// Encodes the first `n` images of `data` (0 = all) in batches of `batch`; μ and logσ² come
/// back as host floats. Throws cuvae::Error naming the option `option_name` (a field name, option()) when n exceeds the split
/// ("--n 20000 is larger than the mnist test split (10000 images)") and when the data's image
/// shape differs from the model's.
LatentCodes encode_dataset(Context& ctx, ConvVAE& vae, const Dataset& data, int64_t n = 0, int64_t batch = 500,
                           bool progress = false, const char* option_name = "n");

/// Per-dimension statistics of the codes of a data set.
struct LatentDimStats {
  std::vector<double> kl;        ///< [D] mean over images of KL(q(z_d|x) ‖ N(0,1)), nats
  std::vector<double> activity;  ///< [D] Cov_x(E_q[z_d]): the variance over images of μ_d
  std::vector<bool> active;      ///< [D] activity > threshold (Burda et al. 2016, "active units")
  int64_t active_units = 0;      ///< how many dimensions are active
  /// Dimensions ordered by decreasing mean KL (ties: lower index first); when every KL is 0
  /// (an autoencoder's codes) by decreasing activity instead.
  std::vector<int64_t> by_kl() const;
};

/// Mean KL per dimension, ½(μ² + σ² − 1 − logσ²) averaged over the codes, and the active
/// units of Burda, Grosse & Salakhutdinov 2016 ("Importance Weighted Autoencoders", §5.2):
/// dimension d is active when the variance of μ_d over the data exceeds `threshold` (0.01).
/// Computed in double. Throws cuvae::Error when `codes` holds fewer than 2 images.
LatentDimStats latent_dim_stats(const LatentCodes& codes, double threshold = 0.01);

/// n samples z ~ N(m, Σ) with m and Σ the mean and covariance of codes.mu (a Gaussian fitted
/// to an autoencoder's codes, the usual way to sample from an AE), drawn as m + L·ε with
/// Σ + 1e-6·I = L·Lᵀ (Cholesky) and ε = philox_normal(seed, 0x5a3b1e01, ·). Returns [n, D].
/// Throws cuvae::Error when codes holds fewer than 2 images.
std::vector<float> fitted_gaussian_samples(const LatentCodes& codes, int64_t n, uint64_t seed);

/// Linear or spherical interpolation of latent vectors.
enum class InterpMode { Lerp, Slerp };

/// "lerp" or "slerp"; throws cuvae::Error naming --mode otherwise.
InterpMode parse_interp_mode(const std::string& s);
/// "lerp" or "slerp".
const char* interp_mode_name(InterpMode m);

/// The point at t ∈ [0, 1] between a and b (D values each): lerp (1−t)·a + t·b, or slerp
/// (White 2016, "Sampling Generative Networks", eq. 1):
/// sin((1−t)Ω)/sin Ω · a + sin(tΩ)/sin Ω · b with cos Ω = a·b / (|a||b|), which falls back to
/// lerp when a or b is zero or they are nearly parallel or antiparallel (sin Ω < 1e-6).
std::vector<float> interpolate_latent(const float* a, const float* b, int64_t D, double t, InterpMode mode);

/// Images as host floats, a grid of rows × cols tiles of c×h×w pixels in [0, 1], row-major
/// [rows·cols, c, h, w], ready for write_png_grid with `cols` columns.
struct ImageGrid {
  int64_t rows = 0, cols = 0;
  int c = 1, h = 0, w = 0;
  std::vector<float> pixels;
};

/// What `cuvae interpolate` does.
struct InterpolateOptions {
  std::vector<std::pair<int64_t, int64_t>> pairs;  ///< test-image indices (I, J), one row each
  int steps = 11;                                  ///< points on the path, t = 0, 1/(steps−1), …, 1; ≥ 2
  InterpMode mode = InterpMode::Lerp;
};

/// The interpolation rows and what they were made from.
struct InterpolateResult {
  ImageGrid grid;             ///< per pair: x_I, decoded path (steps images), x_J; cols = steps + 2
  std::vector<double> t;      ///< [steps] the path's t values
  std::vector<std::pair<int64_t, int64_t>> pairs;
  InterpMode mode = InterpMode::Lerp;
};

/// For each pair (I, J) of test images: encodes both (z = μ), decodes the path between their μ
/// and returns one grid row per pair. Throws cuvae::Error naming --pairs for an index outside
/// the test set, --steps when steps < 2 or > 256, and when there are no pairs.
InterpolateResult interpolate(Context& ctx, ConvVAE& vae, const Dataset& test, const InterpolateOptions& opt);

/// Pairs (I, J) where I and J are the first test images of classes A and B, for each (A, B).
/// Throws cuvae::Error naming --classes when a class is outside 0..num_classes−1 or has no image.
std::vector<std::pair<int64_t, int64_t>> pairs_from_classes(const Dataset& test,
                                                            const std::vector<std::pair<int, int>>& classes);

/// Parses "I:J" (two non-negative integers); throws cuvae::Error naming the option `option_name` (a field name, option()) and the text.
std::pair<int64_t, int64_t> parse_pair(const std::string& s, const char* option_name);

/// What `cuvae arithmetic` does.
struct ArithmeticOptions {
  std::vector<int64_t> indices;  ///< test images to move
  int from_class = 0;            ///< A
  int to_class = 0;              ///< B
  double alpha = 1.0;            ///< full step; the grid shows 0.25, 0.5, 0.75 and 1 times it

  /// Throws cuvae::Error naming --from-class or --to-class when outside 0..classes−1, --alpha
  /// when not finite, --index when empty or outside 0..test_images−1. Cheap: callers run it before
  /// any long work (latent_arithmetic runs it too).
  void validate(int64_t classes, int64_t test_images) const;
};

/// Latent arithmetic results.
struct ArithmeticResult {
  ImageGrid grid;               ///< per index: image, reconstruction, then the 4 moved images (cols = 6)
  std::vector<double> alphas;   ///< [4] the α of the 4 moved columns
  std::vector<float> direction; ///< [D] m_B − m_A
  std::vector<float> z;         ///< [indices·4, D] the moved codes, row-major
};

/// z = μ(x_I) + α·(m_B − m_A) for α ∈ {¼, ½, ¾, 1}·alpha, with m_c the mean of μ over class c
/// of the training set (`stats`, see anchor_stats_for). With A = B the moved images equal the
/// reconstruction. Throws cuvae::Error naming --index, --from-class or --to-class on values out
/// of range, --alpha when not finite, and when there are no indices.
ArithmeticResult latent_arithmetic(Context& ctx, ConvVAE& vae, const Dataset& test, const AnchorStats& stats,
                                   const ArithmeticOptions& opt);

/// Which dimensions to traverse: an explicit list, or the `top_kl` with the largest mean KL.
struct DimSelection {
  std::vector<int64_t> dims;  ///< explicit dimensions (empty: use top_kl)
  int64_t top_kl = 10;
};

/// Parses --dims: "top-kl:K" (K ≥ 1) or a comma list "3,7,12" of dimensions below `latent`.
/// Throws cuvae::Error naming --dims and what was expected.
DimSelection parse_dims(const std::string& s, int64_t latent);

/// Where a traversal starts.
struct TraverseBase {
  enum Kind { Zero, Index, Class } kind = Zero;
  int64_t arg = 0;  ///< the test index or class
};

/// Parses --base: "zero", "index:I" or "class:K"; throws cuvae::Error naming --base.
TraverseBase parse_base(const std::string& s);

/// What `cuvae traverse` does.
struct TraverseOptions {
  DimSelection dims;
  double range = 3.0;  ///< each dimension goes from −range to +range (absolute values, not offsets)
  int steps = 11;      ///< values per dimension, ≥ 2

  /// Throws cuvae::Error naming --steps (outside [2, 256]), --range (not finite or ≤ 0) or --dims
  /// (a dimension ≥ latent). traverse() runs it too.
  void validate(int64_t latent) const;
};

/// A traversal: one grid row per dimension.
struct TraverseResult {
  ImageGrid grid;              ///< rows = dims, cols = steps
  std::vector<int64_t> dims;   ///< the dimensions, in row order
  std::vector<double> values;  ///< [steps] the values each dimension takes
  std::vector<float> base;     ///< [D] the code the other dimensions keep
};

/// Decodes, for each chosen dimension d, the base code with z_d set to each of `steps` values
/// evenly spaced in [−range, range]. `stats` orders the dimensions for top-kl selection.
/// Throws cuvae::Error naming --dims (a dimension ≥ D), --steps (< 2 or > 256) or --range
/// (not finite or ≤ 0), or when base.size() ≠ D.
TraverseResult traverse(Context& ctx, ConvVAE& vae, const LatentDimStats& stats, const std::vector<float>& base,
                        const TraverseOptions& opt);

/// The base code for a traversal: zeros, test image I's μ, or class K's mean μ over the training
/// set (`stats`, which may be null unless kind is Class). Throws cuvae::Error naming --base
/// when the index or class is out of range.
std::vector<float> traverse_base(Context& ctx, ConvVAE& vae, const Dataset& test, const AnchorStats* stats,
                                 const TraverseBase& base);

/// Images [n, C, H, W] in [0, 1] as host floats, decoded from n codes z [n, D] in batches of
/// at most 256 (sigmoid of the decoder's logits); `labels` [n] as for decode_images (CVAE).
std::vector<float> decode_to_host(Context& ctx, ConvVAE& vae, const std::vector<float>& z, int64_t n,
                                  const std::vector<int32_t>* labels = nullptr);

/// Posterior means, log-variances and reconstructions of a few images.
struct EncodedImages {
  int64_t n = 0;
  std::vector<float> mu;              ///< [n, D]
  std::vector<float> logvar;          ///< [n, D]
  std::vector<float> reconstruction;  ///< [n, C, H, W] sigmoid(decoder(μ)) in [0, 1]
};

/// Encodes images x [n, C, H, W] (host floats in [0, 1]) and decodes their μ. Throws
/// cuvae::Error when x.size() ≠ n·C·H·W.
EncodedImages encode_images(Context& ctx, ConvVAE& vae, const std::vector<float>& x, int64_t n);

/// Images [n, C, H, W] in [0, 1] of the test images `indices` as host floats. Throws cuvae::Error
/// naming the option `option_name` (a field name, option()) for an index outside the data set.
std::vector<float> dataset_images(const Dataset& data, const std::vector<int64_t>& indices, const char* option_name);

}  // namespace cuvae
