// Gaussian mixtures by EM (numerics/gmm.h): recovery of known mixtures, the monotone
// log-likelihood, M = 1 against the sample moments, determinism and the errors.
#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "core/philox.h"
#include "numerics/gmm.h"
#include "test_util.h"

namespace cuvae {
namespace {

using test::error_of;

/// n points [n, 2] from a known 2-D mixture: component m with probability w_m, mean mu_m and
/// covariance L_m L_mᵀ (L_m lower triangular, given as {l00, l10, l11}).
std::vector<double> draw_mixture(int64_t n, const std::vector<double>& w, const std::vector<double>& mu,
                                 const std::vector<double>& l, uint64_t seed) {
  std::vector<double> x(static_cast<size_t>(2 * n));
  for (int64_t i = 0; i < n; ++i) {
    const double u = philox_uniform_at(seed, 1, static_cast<uint64_t>(i));
    size_t m = 0;
    for (double acc = w[0]; m + 1 < w.size() && u >= acc; acc += w[++m]) {
    }
    const double e0 = philox_normal(seed, 2, static_cast<uint64_t>(2 * i));
    const double e1 = philox_normal(seed, 2, static_cast<uint64_t>(2 * i + 1));
    x[static_cast<size_t>(2 * i)] = mu[2 * m] + l[3 * m] * e0;
    x[static_cast<size_t>(2 * i + 1)] = mu[2 * m + 1] + l[3 * m + 1] * e0 + l[3 * m + 2] * e1;
  }
  return x;
}

TEST(Gmm, RecoversThreeKnownComponents) {
  const std::vector<double> w = {0.2, 0.5, 0.3};
  const std::vector<double> mu = {-6, 0, 0, 5, 6, -1};
  const std::vector<double> l = {1.0, 0.0, 0.5, 0.8, 0.6, 0.6, 0.3, -0.2, 1.5};  // lower-triangular factors
  const int64_t n = 6000;
  const std::vector<double> x = draw_mixture(n, w, mu, l, 7);
  GmmOptions opt;
  opt.components = 3;
  const GmmFit g = fit_gmm(x.data(), n, 2, opt);
  EXPECT_TRUE(g.converged);
  ASSERT_EQ(g.components, 3);
  double wsum = 0;
  for (int t = 0; t < 3; ++t) {
    // the fitted component nearest the true mean
    int best = 0;
    double bd = 1e300;
    for (int m = 0; m < 3; ++m) {
      const double d = std::hypot(g.mean[2 * m] - mu[2 * t], g.mean[2 * m + 1] - mu[2 * t + 1]);
      if (d < bd) bd = d, best = m;
    }
    EXPECT_LT(bd, 0.1) << "component " << t;
    EXPECT_NEAR(g.weight[best], w[t], 0.02) << "component " << t;
    const double c00 = l[3 * t] * l[3 * t], c10 = l[3 * t] * l[3 * t + 1];
    const double c11 = l[3 * t + 1] * l[3 * t + 1] + l[3 * t + 2] * l[3 * t + 2];
    EXPECT_NEAR(g.cov[4 * best + 0], c00, 0.1 * c00 + 0.02) << "component " << t;
    EXPECT_NEAR(g.cov[4 * best + 1], c10, 0.1 * std::abs(c10) + 0.03) << "component " << t;
    EXPECT_NEAR(g.cov[4 * best + 2], c10, 0.1 * std::abs(c10) + 0.03) << "component " << t;
    EXPECT_NEAR(g.cov[4 * best + 3], c11, 0.1 * c11 + 0.02) << "component " << t;
    wsum += g.weight[best];
  }
  EXPECT_NEAR(wsum, 1.0, 1e-12);
  EXPECT_NEAR(gmm_mean_log_likelihood(g, x.data(), n, 2), g.mean_log_likelihood, 1e-12);
}

TEST(Gmm, LogLikelihoodNeverFallsAndBeatsOneGaussianOnHeldOutPoints) {
  // overlapping components, so EM takes many small steps
  const std::vector<double> w = {0.5, 0.5};
  const std::vector<double> mu = {-1, 0, 1, 0.5};
  const std::vector<double> l = {1.0, 0.3, 0.8, 0.7, -0.2, 1.2};
  const std::vector<double> x = draw_mixture(2000, w, mu, l, 3);
  double prev = -1e300;
  for (int it = 1; it <= 12; ++it) {
    GmmOptions opt;
    opt.components = 4;
    opt.max_iter = it;
    opt.tol = 0;
    const GmmFit g = fit_gmm(x.data(), 2000, 2, opt);
    EXPECT_EQ(g.iterations, it);
    EXPECT_GE(g.mean_log_likelihood, prev - 1e-9) << "after " << it << " iterations";
    prev = g.mean_log_likelihood;
  }
  // two well-separated clusters: two components describe unseen points far better than one
  const std::vector<double> mu2 = {-4, 0, 4, 0};
  const std::vector<double> train = draw_mixture(1000, w, mu2, l, 11), test = draw_mixture(1000, w, mu2, l, 12);
  GmmOptions one, two;
  one.components = 1;
  two.components = 2;
  const double ll1 = gmm_mean_log_likelihood(fit_gmm(train.data(), 1000, 2, one), test.data(), 1000, 2);
  const double ll2 = gmm_mean_log_likelihood(fit_gmm(train.data(), 1000, 2, two), test.data(), 1000, 2);
  EXPECT_GT(ll2, ll1 + 0.5);
}

TEST(Gmm, OneComponentIsTheSampleMeanAndCovariance) {
  const std::vector<double> x = {1, 2, 3, 5, -1, 0, 4, 4, 2, -3};  // 5 points in 2-D
  GmmOptions opt;
  opt.components = 1;
  opt.reg_covar = 1e-6;
  const GmmFit g = fit_gmm(x.data(), 5, 2, opt);
  const double m0 = (1 + 3 - 1 + 4 + 2) / 5.0, m1 = (2 + 5 + 0 + 4 - 3) / 5.0;
  EXPECT_NEAR(g.mean[0], m0, 1e-12);
  EXPECT_NEAR(g.mean[1], m1, 1e-12);
  double c00 = 0, c01 = 0, c11 = 0;
  for (int i = 0; i < 5; ++i) {
    c00 += (x[2 * i] - m0) * (x[2 * i] - m0) / 5;
    c01 += (x[2 * i] - m0) * (x[2 * i + 1] - m1) / 5;
    c11 += (x[2 * i + 1] - m1) * (x[2 * i + 1] - m1) / 5;
  }
  EXPECT_NEAR(g.cov[0], c00 + 1e-6, 1e-10);
  EXPECT_NEAR(g.cov[1], c01, 1e-10);
  EXPECT_NEAR(g.cov[3], c11 + 1e-6, 1e-10);
  EXPECT_DOUBLE_EQ(g.weight[0], 1.0);
}

TEST(Gmm, DeterministicPerSeedAndRefusesBadInput) {
  const std::vector<double> w = {0.3, 0.7};
  const std::vector<double> mu = {0, 0, 3, 3};
  const std::vector<double> l = {1, 0, 1, 1, 0, 1};
  const std::vector<double> x = draw_mixture(500, w, mu, l, 5);
  GmmOptions opt;
  opt.components = 5;
  const GmmFit a = fit_gmm(x.data(), 500, 2, opt), b = fit_gmm(x.data(), 500, 2, opt);
  EXPECT_EQ(a.mean, b.mean);
  EXPECT_EQ(a.cov, b.cov);
  EXPECT_EQ(a.weight, b.weight);
  opt.components = 0;
  EXPECT_CONTAINS(error_of([&] { fit_gmm(x.data(), 500, 2, opt); }), "components must be >= 1");
  opt.components = 300;
  EXPECT_CONTAINS(error_of([&] { fit_gmm(x.data(), 500, 2, opt); }), "300 components need at least 600 points");
  opt.components = 2;
  opt.reg_covar = 0;
  EXPECT_CONTAINS(error_of([&] { fit_gmm(x.data(), 500, 2, opt); }), "reg_covar must be > 0");
  opt.reg_covar = 1e-6;
  std::vector<double> bad = x;
  bad[17] = std::nan("");
  EXPECT_CONTAINS(error_of([&] { fit_gmm(bad.data(), 500, 2, opt); }), "NaN or infinity");
  const GmmFit g = fit_gmm(x.data(), 500, 2, opt);
  EXPECT_CONTAINS(error_of([&] { gmm_mean_log_likelihood(g, x.data(), 250, 4); }), "4 dimensions, the mixture 2");
}

}  // namespace
}  // namespace cuvae
