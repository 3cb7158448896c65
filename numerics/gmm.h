// Gaussian mixtures with full covariances, fitted by expectation–maximisation: the density that
// class-anchored sampling draws from (one mixture per class over the posterior means μ of its
// training images, "ex-post density estimation" as in P. Ghosh et al., "From Variational to
// Deterministic Autoencoders", ICLR 2020, which fits a 10-component mixture to the codes).
//
// EM follows A. Dempster, N. Laird, D. Rubin, "Maximum Likelihood from Incomplete Data via the EM
// Algorithm", JRSS B 39 (1977), with scikit-learn's GaussianMixture recipe: k-means
// initialisation, reg_covar added to every covariance's diagonal, stop when the mean
// log-likelihood per point changes by less than tol.
#pragma once

#include <cstdint>
#include <vector>

namespace cuvae {

/// Options of fit_gmm (scikit-learn's names and defaults).
struct GmmOptions {
  int components = 10;     ///< M, >= 1; more than n / 2 is refused
  int max_iter = 100;      ///< EM iterations at most, >= 1
  double tol = 1e-3;       ///< stop when the mean log-likelihood per point moves less than this (nats)
  double reg_covar = 1e-6; ///< added to each covariance's diagonal, > 0 (keeps them positive definite)
  int kmeans_iter = 20;    ///< Lloyd iterations of the k-means initialisation at most
  uint64_t seed = 0;       ///< seed of the k-means++ choice of the first centres (Philox)
};

/// A fitted mixture p(x) = Σ_m w_m N(x; mean_m, cov_m) in d dimensions.
struct GmmFit {
  int64_t components = 0;           ///< M
  int64_t dim = 0;                  ///< d
  std::vector<double> weight;       ///< [M] mixing weights, summing to 1
  std::vector<double> mean;         ///< [M, d]
  std::vector<double> cov;          ///< [M, d, d], symmetric positive definite (reg_covar included)
  double mean_log_likelihood = 0;   ///< (1/n) Σ_i log p(x_i) at the returned parameters, nats per point
  int iterations = 0;               ///< EM iterations run
  bool converged = false;           ///< whether the change fell under tol before max_iter
};

/// Fits a Gaussian mixture with full covariances to x [n, d] (row-major doubles) by EM. The
/// initial responsibilities are a k-means partition (k-means++ centres chosen with Philox under
/// opt.seed, then Lloyd's iterations); the mean log-likelihood never decreases from one EM
/// iteration to the next (up to rounding). Deterministic for a given input and seed. Cost
/// O(iterations · M · n · d²). Throws cuvae::Error if x is null, n < 2·M, d < 1 or an option is
/// out of range.
GmmFit fit_gmm(const double* x, int64_t n, int64_t d, const GmmOptions& opt);

/// (1/n) Σ_i log p(x_i) of the mixture `g` at x [n, d] (row-major), in nats per point. Throws
/// cuvae::Error if x is null, n < 1 or d differs from g.dim.
double gmm_mean_log_likelihood(const GmmFit& g, const double* x, int64_t n, int64_t d);

}  // namespace cuvae
