// 2-D maps of latent codes: PCA, t-SNE (exact on the CPU or the GPU, Barnes–Hut on the CPU)
// and two measures of how well a map keeps the neighbourhoods of its input (trustworthiness,
// leave-one-out k-NN accuracy). The numerical core of `cuvae embed`; reading latents and
// writing files are the caller's business.
//
// Papers: t-SNE — L. van der Maaten, G. Hinton, "Visualizing Data using t-SNE", JMLR 9 (2008);
// Barnes–Hut t-SNE — L. van der Maaten, "Accelerating t-SNE using Tree-Based Algorithms",
// JMLR 15 (2014); trustworthiness — J. Venna, S. Kaski, "Neighborhood Preservation in Nonlinear
// Projection Methods: An Experimental Study", ICANN 2001. Defaults and recipe follow
// scikit-learn's sklearn.manifold.TSNE (init="pca", learning_rate="auto").
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "core/context.h"

namespace cuvae {

/// Result of pca_2d.
struct PcaResult {
  /// [n, 2] row-major projections of the centred x onto the two components.
  std::vector<float> y;
  /// [2]: λ1/Σλ, λ2/Σλ, the sum over all d eigenvalues of the centred covariance (as
  /// scikit-learn's PCA.explained_variance_ratio_). Both 0 when every point is the same.
  std::vector<double> explained_variance_ratio;
  /// [2, d] row-major unit components; each one's sign is fixed so that its entry of largest
  /// magnitude (the first such on a tie) is positive.
  std::vector<double> components;
};

/// Principal component analysis onto 2 components: x [n, d] row-major float32 is centred, its
/// covariance (d × d, in double, divided by n − 1) is diagonalised with Eigen's
/// SelfAdjointEigenSolver, and the two components of largest eigenvalue are returned with the
/// projections (float32). d == 1: the second component and its column of y are zero. Memory
/// O(n·d) doubles. Throws cuvae::Error if n < 2, d < 1 or x is null.
PcaResult pca_2d(const float* x, int64_t n, int64_t d);

/// How tsne_2d computes the gradient. Auto: on a CUDA context, exact for n <= 10000 and
/// Barnes–Hut above; on the CPU, exact for n <= 1000 and Barnes–Hut above.
enum class TsneMethod { Auto, Exact, BarnesHut };

/// Options of tsne_2d, with scikit-learn's names and defaults (its CLI flag in brackets).
struct TsneOptions {
  double perplexity = 30;           ///< [--perplexity] effective number of neighbours, (0, (n−1)/3]
  int iters = 1000;                 ///< [--iters] total gradient-descent iterations (n_iter), >= 1
  double early_exaggeration = 12;   ///< [--early-exaggeration] factor on P for the first phase, >= 1
  int exaggeration_iters = 250;     ///< [--exaggeration-iters] length of the first phase, >= 0
  double learning_rate = 0;         ///< [--learning-rate] > 0, or 0 = auto: max(n / early_exaggeration / 4, 50)
  double theta = 0.5;               ///< [--theta] Barnes–Hut accuracy (angle), in [0, 1]; 0 = exact sums
  TsneMethod method = TsneMethod::Auto;  ///< [--exact / --approx]
  /// [--seed] Recorded for reproducibility. The PCA initialisation is deterministic, so with
  /// this recipe the map does not depend on it.
  uint64_t seed = 0;
  bool progress = false;            ///< progress bar with ETA on stderr (cuvae::ProgressBar)
};

/// Result of tsne_2d.
struct TsneResult {
  std::vector<float> y;  ///< [n, 2] row-major map coordinates
  std::string method;    ///< "exact-cpu", "exact-cuda" or "barnes-hut"
  /// KL(P‖Q) of the final map, in nats. Exact methods: computed over all pairs. Barnes–Hut:
  /// an estimate as scikit-learn's kl_divergence_: the sum runs over the sparse P exactly,
  /// with the normaliser Z from the Barnes–Hut approximation of the last gradient.
  double kl = 0;
  int iters = 0;  ///< iterations run (= options.iters)
};

/// t-SNE of x [n, d] (row-major float32) to 2-D.
///
/// Recipe (scikit-learn's): squared Euclidean input distances; per point a binary search for
/// β_i = 1/(2σ_i²) so that the conditional distribution has entropy log(perplexity) (nats) to
/// 1e-5 (at most 200 steps); P symmetrised, p_ij = (p_j|i + p_i|j) / Σ. Exact: P dense over all
/// pairs. Barnes–Hut: only the k = min(n − 1, ⌊3·perplexity⌋ + 1) nearest neighbours of each
/// point (brute force in row blocks), sparse P; repulsion by a quadtree with the θ criterion
/// (cell side)² < θ²·(distance to its centre of mass)². Initialisation: PCA projection scaled so
/// the first coordinate has standard deviation 1e-4. Optimisation: gradient descent with gains
/// (+0.2 / ×0.8, min 0.01) and momentum 0.5 under early exaggeration for exaggeration_iters
/// iterations, then momentum 0.8; gains and momentum restart at the switch (as scikit-learn's
/// two _gradient_descent calls). Exact-cuda runs the whole loop on the device in float32; the
/// CPU methods compute in double. Deterministic: the same input, options and thread count give
/// the same map (the CPU methods give the same map for any thread count).
///
/// Throws cuvae::Error with a one-line message naming the CLI flag for n < 4, d < 1, null x,
/// perplexity not in (0, (n−1)/3], iters < 1, exaggeration_iters < 0, early_exaggeration < 1,
/// learning_rate < 0, theta not in [0, 1], or Exact with n > 20000 (dense P would not fit).
TsneResult tsne_2d(Context& ctx, const float* x, int64_t n, int64_t d, const TsneOptions& opt);

/// Perplexity calibration of t-SNE: for each of `rows` rows of `m` finite squared distances
/// (row-major; the point itself must not be among them), finds β by bisection (doubling or
/// halving while unbounded, as scikit-learn's _binary_search_perplexity, at most `max_steps`
/// steps) so that p_j ∝ exp(−β·dist2_j) has entropy −Σ p log p = log(perplexity) within `tol`
/// nats, and returns those p ([rows, m], each row summing to 1). `beta` (nullable, [rows])
/// receives each row's β. Rows whose entropy cannot reach the target (e.g. all distances equal)
/// end after max_steps with the last β. Throws cuvae::Error if m < 1 or perplexity <= 0.
std::vector<double> tsne_conditional_p(const double* dist2, int64_t rows, int64_t m,
                                       double perplexity, double* beta = nullptr,
                                       int max_steps = 200, double tol = 1e-5);

/// The symmetric sparse joint probabilities of Barnes–Hut t-SNE, in CSR form.
struct TsneSparseP {
  int64_t n = 0;
  std::vector<int64_t> row_ptr;  ///< [n + 1]
  std::vector<int32_t> col;      ///< column of each entry, ascending within a row
  std::vector<double> val;       ///< p_ij; the whole matrix sums to 1
};

/// P of Barnes–Hut t-SNE from x [n, d]: k = min(n − 1, ⌊3·perplexity⌋ + 1) nearest neighbours
/// (knn_euclidean), conditional p by tsne_conditional_p on their squared distances (recomputed
/// in double), then P = (C + Cᵀ) / ΣC. Throws cuvae::Error on bad sizes or perplexity.
TsneSparseP tsne_joint_p_sparse(const float* x, int64_t n, int64_t d, double perplexity);

/// Dense P of exact t-SNE from x [n, d]: [n, n] row-major, conditional p over all other points,
/// then P = (C + Cᵀ) / ΣC, zero diagonal. Memory n² doubles. Throws cuvae::Error on bad sizes.
std::vector<double> tsne_joint_p_dense(const float* x, int64_t n, int64_t d, double perplexity);

/// Barnes–Hut t-SNE gradient for a 2-D map Y [n, 2] (double): grad [n, 2] =
/// 4 (α Σ_j p_ij q̃_ij (y_i − y_j) − F_rep,i / Z) with the repulsion F_rep,i = Σ_j q̃_ij²(y_i − y_j)
/// and Z = Σ_{i≠j} q̃_ij both approximated by the quadtree with accuracy θ (θ = 0 sums every
/// pair exactly). `z_out` (nullable) receives Z. OpenMP over points; deterministic for any
/// thread count. Throws cuvae::Error if P.n != n, n < 2 or θ < 0.
void tsne_grad_barnes_hut(const TsneSparseP& P, const double* Y, int64_t n, double exaggeration,
                          double theta, double* grad, double* z_out = nullptr);

/// The k nearest neighbours of every row of x [n, d] (Euclidean, the point itself excluded;
/// ties broken by the lower index), ascending by distance: idx [n, k] and squared distances
/// dist2 [n, k]. d >= 4: squared distances of a block of rows against all points by an Eigen
/// float32 GEMM on the centred data (OpenMP), never an n × n matrix; d <= 3: a sweep over the
/// points sorted by their first coordinate, in double. Throws cuvae::Error unless 1 <= k < n.
void knn_euclidean(const float* x, int64_t n, int64_t d, int k, std::vector<int64_t>& idx,
                   std::vector<float>& dist2);

/// Trustworthiness of the map y [n, dy] of x [n, dx], exactly as scikit-learn's
/// sklearn.manifold.trustworthiness(X, Y, n_neighbors=k, metric="euclidean"):
///   T = 1 − 2/(n k (2n − 3k − 1)) Σ_i Σ_{j ∈ kNN_Y(i)} max(0, r_X(i, j) − k),
/// r_X(i, j) the rank of j among the other points by distance to i in x-space (1 = nearest).
/// Ties (equal distances, which scikit-learn's unstable argsort leaves unspecified) are broken
/// by the lower index, in both spaces. In 1 (perfect) down to about 0 (a random map, ≈ 0.5).
/// Works in row blocks (Eigen GEMM, OpenMP): memory O(n · block), never n × n. Throws
/// cuvae::Error if n < 3, k < 1 or k >= n / 2 (as scikit-learn).
double trustworthiness(const float* x, int64_t n, int64_t dx, const float* y, int64_t dy,
                       int k = 5);

/// Leave-one-out k-NN classification accuracy of points x [n, d] with labels [n]: each point
/// is classified by the majority label of its k nearest other points (Euclidean, distance ties
/// by the lower index); a tie between labels goes to the label of the nearest neighbour among
/// the tied labels. Returns the fraction classified correctly, in [0, 1]. Blocked as
/// knn_euclidean, never n × n. Throws cuvae::Error unless 1 <= k < n.
double knn_accuracy(const float* x, int64_t n, int64_t d, const int64_t* labels, int k = 5);

}  // namespace cuvae
