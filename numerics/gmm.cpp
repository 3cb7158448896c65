#include "numerics/gmm.h"

#include <Eigen/Dense>
#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>
#include <vector>

#include "core/check.h"
#include "core/philox.h"

namespace cuvae {

namespace {

using MatRM = Eigen::Matrix<double, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
using ConstMapRM = Eigen::Map<const MatRM>;

constexpr uint64_t kKmeansStream = 0x6d6d0000ull;  // Philox offset of the k-means++ draws

/// Squared distances [n, M] between the rows of x and of c.
MatRM squared_distances(const ConstMapRM& x, const MatRM& c) {
  MatRM d2 = (-2.0 * (x * c.transpose())).eval();
  d2.colwise() += x.rowwise().squaredNorm();
  d2.rowwise() += c.rowwise().squaredNorm().transpose();
  return d2.cwiseMax(0.0);
}

/// k-means++ centres (Arthur & Vassilvitskii 2007) then Lloyd's iterations; returns each point's
/// cluster in [0, M).
std::vector<int> kmeans_labels(const ConstMapRM& x, int M, int iters, uint64_t seed) {
  const int64_t n = x.rows();
  MatRM c(M, x.cols());
  auto pick = [&](int m, double u_total, const Eigen::VectorXd& weight) {
    int64_t i = 0;
    double acc = 0;
    for (; i < n - 1; ++i) {
      acc += weight(i);
      if (acc > u_total) break;
    }
    c.row(m) = x.row(i);
  };
  const double u0 = philox_uniform_at(seed, kKmeansStream, 0);
  c.row(0) = x.row(std::min<int64_t>(n - 1, static_cast<int64_t>(u0 * static_cast<double>(n))));
  Eigen::VectorXd nearest = (x.rowwise() - c.row(0)).rowwise().squaredNorm();
  for (int m = 1; m < M; ++m) {
    const double total = nearest.sum();
    const double u = philox_uniform_at(seed, kKmeansStream, static_cast<uint64_t>(m));
    if (total > 0) {
      pick(m, u * total, nearest);
    } else {  // every point sits on a centre already
      c.row(m) = x.row(m % n);
    }
    nearest = nearest.cwiseMin((x.rowwise() - c.row(m)).rowwise().squaredNorm());
  }
  std::vector<int> label(static_cast<size_t>(n), -1);
  for (int it = 0; it < std::max(1, iters); ++it) {
    const MatRM d2 = squared_distances(x, c);
    bool changed = false;
    for (int64_t i = 0; i < n; ++i) {
      Eigen::Index best = 0;
      d2.row(i).minCoeff(&best);
      if (label[static_cast<size_t>(i)] != static_cast<int>(best)) {
        label[static_cast<size_t>(i)] = static_cast<int>(best);
        changed = true;
      }
    }
    if (!changed) break;
    MatRM sum = MatRM::Zero(M, x.cols());
    std::vector<int64_t> count(static_cast<size_t>(M), 0);
    for (int64_t i = 0; i < n; ++i) {
      sum.row(label[static_cast<size_t>(i)]) += x.row(i);
      ++count[static_cast<size_t>(label[static_cast<size_t>(i)])];
    }
    for (int m = 0; m < M; ++m)
      if (count[static_cast<size_t>(m)] > 0) c.row(m) = sum.row(m) / static_cast<double>(count[static_cast<size_t>(m)]);
  }
  return label;
}

/// The M-step: weights, means and covariances (plus reg on the diagonal) from responsibilities
/// r [n, M].
void m_step(const ConstMapRM& x, const MatRM& r, double reg, GmmFit& g) {
  const int64_t n = x.rows(), d = x.cols(), M = r.cols();
  const double tiny = 10 * std::numeric_limits<double>::epsilon();  // as scikit-learn: no empty component
  const Eigen::VectorXd nk = (r.colwise().sum().transpose().array() + tiny).matrix();
  const MatRM means = (r.transpose() * x).array().colwise() / nk.array();
  for (int64_t m = 0; m < M; ++m) {
    g.weight[static_cast<size_t>(m)] = nk(m) / static_cast<double>(n);
    const MatRM diff = x.rowwise() - means.row(m);
    MatRM cov = (diff.array().colwise() * r.col(m).array()).matrix().transpose() * diff / nk(m);
    cov.diagonal().array() += reg;
    for (int64_t i = 0; i < d; ++i) {
      g.mean[static_cast<size_t>(m * d + i)] = means(m, i);
      for (int64_t j = 0; j < d; ++j) g.cov[static_cast<size_t>((m * d + i) * d + j)] = 0.5 * (cov(i, j) + cov(j, i));
    }
  }
  const double wsum = std::accumulate(g.weight.begin(), g.weight.end(), 0.0);
  for (double& w : g.weight) w /= wsum;
}

/// The E-step: log w_m + log N(x_i; mean_m, cov_m) normalised over m into r [n, M]; returns the
/// mean log-likelihood per point.
double e_step(const ConstMapRM& x, const GmmFit& g, MatRM* r) {
  const int64_t n = x.rows(), d = x.cols(), M = g.components;
  MatRM logp(n, M);
  const double log2pi = std::log(2.0 * 3.14159265358979323846);
  for (int64_t m = 0; m < M; ++m) {
    const Eigen::Map<const MatRM> cov(g.cov.data() + m * d * d, d, d);
    const Eigen::Map<const Eigen::RowVectorXd> mean(g.mean.data() + m * d, d);
    const Eigen::LLT<Eigen::MatrixXd> llt(cov);
    CUVAE_CHECK(llt.info() == Eigen::Success,
                "Gaussian mixture: component " << m << "'s covariance is not positive definite");
    const double logdet = 2.0 * llt.matrixLLT().diagonal().array().log().sum();
    const Eigen::MatrixXd diff_t = (x.rowwise() - mean).transpose();
    const Eigen::MatrixXd y = llt.matrixL().solve(diff_t);
    const double logw = std::log(g.weight[static_cast<size_t>(m)]);
    logp.col(m) = (logw - 0.5 * (static_cast<double>(d) * log2pi + logdet + y.colwise().squaredNorm().array())).transpose();
  }
  const Eigen::VectorXd mx = logp.rowwise().maxCoeff();
  const Eigen::VectorXd lse = mx.array() + (logp.colwise() - mx).array().exp().rowwise().sum().log();
  if (r) *r = (logp.colwise() - lse).array().exp();
  return lse.mean();
}

}  // namespace

GmmFit fit_gmm(const double* x, int64_t n, int64_t d, const GmmOptions& opt) {
  CUVAE_CHECK(x != nullptr, "fit_gmm: null data");
  CUVAE_REQUIRE(opt.components >= 1, "Gaussian mixture: components must be >= 1, got " << opt.components);
  CUVAE_REQUIRE(d >= 1, "Gaussian mixture: points need at least 1 dimension, got " << d);
  CUVAE_REQUIRE(n >= 2 * static_cast<int64_t>(opt.components),
                "Gaussian mixture: " << opt.components << " components need at least " << 2 * opt.components
                                     << " points, got " << n);
  CUVAE_REQUIRE(opt.max_iter >= 1, "Gaussian mixture: max_iter must be >= 1, got " << opt.max_iter);
  CUVAE_REQUIRE(opt.tol >= 0 && std::isfinite(opt.tol), "Gaussian mixture: tol must be >= 0, got " << opt.tol);
  CUVAE_REQUIRE(opt.reg_covar > 0 && std::isfinite(opt.reg_covar),
                "Gaussian mixture: reg_covar must be > 0, got " << opt.reg_covar);
  const ConstMapRM X(x, n, d);
  CUVAE_REQUIRE(X.allFinite(), "Gaussian mixture: the points contain NaN or infinity");
  const int M = opt.components;
  GmmFit g;
  g.components = M;
  g.dim = d;
  g.weight.assign(static_cast<size_t>(M), 0.0);
  g.mean.assign(static_cast<size_t>(M * d), 0.0);
  g.cov.assign(static_cast<size_t>(M * d * d), 0.0);
  MatRM r = MatRM::Zero(n, M);
  const std::vector<int> label = kmeans_labels(X, M, opt.kmeans_iter, opt.seed);
  for (int64_t i = 0; i < n; ++i) r(i, label[static_cast<size_t>(i)]) = 1.0;
  m_step(X, r, opt.reg_covar, g);
  double prev = -std::numeric_limits<double>::infinity();
  for (int it = 1; it <= opt.max_iter; ++it) {
    const double ll = e_step(X, g, &r);
    m_step(X, r, opt.reg_covar, g);
    g.iterations = it;
    if (std::abs(ll - prev) < opt.tol) {
      g.converged = true;
      break;
    }
    prev = ll;
  }
  g.mean_log_likelihood = e_step(X, g, nullptr);
  return g;
}

double gmm_mean_log_likelihood(const GmmFit& g, const double* x, int64_t n, int64_t d) {
  CUVAE_CHECK(x != nullptr, "gmm_mean_log_likelihood: null data");
  CUVAE_REQUIRE(n >= 1, "Gaussian mixture: no points to score");
  CUVAE_REQUIRE(d == g.dim, "Gaussian mixture: points have " << d << " dimensions, the mixture " << g.dim);
  return e_step(ConstMapRM(x, n, d), g, nullptr);
}

}  // namespace cuvae
