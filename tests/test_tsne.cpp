// t-SNE, PCA and the map-quality measures of numerics/embed.h and kernels/tsne.h:
// the exact gradient against central differences of KL(P‖Q) in double, perplexity calibration,
// Barnes–Hut against exact, small end-to-end runs, PCA against an SVD, and trustworthiness /
// k-NN accuracy against hand-worked cases (checked with scikit-learn) and a naive O(n²) oracle.
// GCC 12 reports false "maybe-uninitialized" warnings from inside its own AVX-512 intrinsics
// when Eigen's kernels (the SVD reference below) are inlined; they are not in our code.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif

#include <gtest/gtest.h>

#include <Eigen/Dense>
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <numeric>
#include <random>
#include <vector>

#include "core/context.h"
#include "kernels/tsne.h"
#include "numerics/embed.h"
#include "tests/synthetic_data.h"
#include "tests/test_util.h"

using namespace cuvae;
using cuvae::test::all_close;
using cuvae::test::error_of;
using cuvae::test::random_values;

namespace {


// KL(P‖Q) of a 2-D map, written directly from the definition.
double kl_reference(const std::vector<double>& P, const std::vector<double>& Y, int64_t n) {
  double Z = 0;
  for (int64_t i = 0; i < n; ++i)
    for (int64_t j = 0; j < n; ++j)
      if (i != j) {
        const double dx = Y[2 * i] - Y[2 * j], dy = Y[2 * i + 1] - Y[2 * j + 1];
        Z += 1.0 / (1.0 + dx * dx + dy * dy);
      }
  double kl = 0;
  for (int64_t i = 0; i < n; ++i)
    for (int64_t j = 0; j < n; ++j) {
      const double p = P[i * n + j];
      if (i == j || p <= 0) continue;
      const double dx = Y[2 * i] - Y[2 * j], dy = Y[2 * i + 1] - Y[2 * j + 1];
      const double q = 1.0 / (1.0 + dx * dx + dy * dy) / Z;
      kl += p * std::log(p / q);
    }
  return kl;
}

// Dense copy of a sparse P.
std::vector<double> to_dense(const TsneSparseP& P) {
  std::vector<double> D(static_cast<size_t>(P.n * P.n), 0.0);
  for (int64_t i = 0; i < P.n; ++i)
    for (int64_t e = P.row_ptr[static_cast<size_t>(i)]; e < P.row_ptr[static_cast<size_t>(i + 1)]; ++e)
      D[static_cast<size_t>(i * P.n + P.col[static_cast<size_t>(e)])] = P.val[static_cast<size_t>(e)];
  return D;
}

// `clusters` Gaussian blobs (std 1) around centres 10 apart in d dimensions, labels in order.
std::vector<float> blobs(int64_t n, int64_t d, int clusters, std::vector<int64_t>& labels,
                         uint64_t seed) {
  std::mt19937_64 gen(seed);
  std::normal_distribution<double> N(0, 1);
  std::vector<float> x(static_cast<size_t>(n * d));
  labels.resize(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) {
    const int64_t c = i % clusters;
    labels[static_cast<size_t>(i)] = c;
    for (int64_t k = 0; k < d; ++k)
      x[static_cast<size_t>(i * d + k)] = static_cast<float>((k == c % d ? 10.0 * (1 + c / d) : 0.0) + N(gen));
  }
  return x;
}

// Trustworthiness straight from the definition, O(n²) memory (ties by index).
double trust_reference(const std::vector<float>& x, int64_t dx, const std::vector<float>& y,
                       int64_t dy, int64_t n, int k) {
  auto dist = [](const std::vector<float>& v, int64_t d, int64_t a, int64_t b) {
    double s = 0;
    for (int64_t c = 0; c < d; ++c) {
      const double t = static_cast<double>(v[a * d + c]) - v[b * d + c];
      s += t * t;
    }
    return s;
  };
  double total = 0;
  for (int64_t i = 0; i < n; ++i) {
    std::vector<int64_t> ox, oy;
    for (int64_t j = 0; j < n; ++j)
      if (j != i) ox.push_back(j), oy.push_back(j);
    std::stable_sort(ox.begin(), ox.end(), [&](int64_t a, int64_t b) { return dist(x, dx, i, a) < dist(x, dx, i, b); });
    std::stable_sort(oy.begin(), oy.end(), [&](int64_t a, int64_t b) { return dist(y, dy, i, a) < dist(y, dy, i, b); });
    for (int m = 0; m < k; ++m) {
      const int64_t r = 1 + (std::find(ox.begin(), ox.end(), oy[static_cast<size_t>(m)]) - ox.begin());
      total += std::max<int64_t>(0, r - k);
    }
  }
  return 1.0 - total * 2.0 / (n * k * (2.0 * n - 3.0 * k - 1.0));
}

}  // namespace

// ---- exact gradient -------------------------------------------------------------------------

TEST(TsneGrad, ExactMatchesCentralDifferencesOfKl) {
  const int64_t n = 12;
  const std::vector<double> P = cuvae::test::random_joint_p<double>(n, 7);
  std::vector<double> Y = random_values<double>(static_cast<size_t>(2 * n), -2, 2, 8);
  std::vector<double> grad(static_cast<size_t>(2 * n));
  double kl = 0;
  tsne_grad_exact_cpu<double>(P.data(), Y.data(), n, 1.0, grad.data(), &kl);
  EXPECT_NEAR(kl, kl_reference(P, Y, n), 1e-12);
  cuvae::test::check_gradient(Y, grad, [&] { return kl_reference(P, Y, n); }, "dKL/dY", 1e-9, 1e-6);
}

TEST(TsneGrad, ExaggerationScalesOnlyTheAttraction) {
  const int64_t n = 9;
  const std::vector<double> P = cuvae::test::random_joint_p<double>(n, 11);
  const std::vector<double> Y = random_values<double>(static_cast<size_t>(2 * n), -1, 1, 12);
  std::vector<double> g1(2 * n), g2(2 * n), g4(2 * n);
  tsne_grad_exact_cpu<double>(P.data(), Y.data(), n, 1.0, g1.data(), nullptr);
  tsne_grad_exact_cpu<double>(P.data(), Y.data(), n, 2.0, g2.data(), nullptr);
  tsne_grad_exact_cpu<double>(P.data(), Y.data(), n, 4.0, g4.data(), nullptr);
  // Linear in α: g(4) − g(1) = 3 (g(2) − g(1)).
  for (size_t k = 0; k < g1.size(); ++k) EXPECT_NEAR(g4[k] - g1[k], 3 * (g2[k] - g1[k]), 1e-12);
}

TEST(TsneGrad, FloatMatchesDouble) {
  const int64_t n = 50;
  const std::vector<double> P = cuvae::test::random_joint_p<double>(n, 3);
  const std::vector<double> Y = random_values<double>(static_cast<size_t>(2 * n), -5, 5, 4);
  std::vector<double> gd(2 * n);
  std::vector<float> gf(2 * n);
  double kld = 0;
  float klf = 0;
  tsne_grad_exact_cpu<double>(P.data(), Y.data(), n, 12.0, gd.data(), &kld);
  const auto Pf = cuvae::test::convert<float>(P), Yf = cuvae::test::convert<float>(Y);
  tsne_grad_exact_cpu<float>(Pf.data(), Yf.data(), n, 12.0f, gf.data(), &klf);
  double gmax = 0;
  for (double v : gd) gmax = std::max(gmax, std::fabs(v));
  EXPECT_TRUE(all_close(gf, gd, 1e-5 * gmax, 1e-5));
  EXPECT_NEAR(klf, kld, 1e-5 * std::fabs(kld));
}

TEST(TsneGrad, TensorDispatchOnCpuMatchesReference) {
  Context ctx(DeviceRequest::CPU);
  const int64_t n = 20;
  const auto P = cuvae::test::convert<float>(cuvae::test::random_joint_p<double>(n, 5));
  const auto Y = random_values<float>(static_cast<size_t>(2 * n), -3, 3, 6);
  std::vector<float> ref(2 * n);
  tsne_grad_exact_cpu<float>(P.data(), Y.data(), n, 4.0f, ref.data(), nullptr);
  Tensor tP = Tensor::from_vector(P, {n, n}), tY = Tensor::from_vector(Y, {n, 2}), tG({n, 2});
  tsne_grad_exact(ctx, tP, tY, 4.0f, tG);
  EXPECT_EQ(tG.to_vector(), ref);
  Tensor bad({n + 1, 2});
  EXPECT_CONTAINS(error_of([&] { tsne_grad_exact(ctx, tP, tY, 1.0f, bad); }), "grad");
}

TEST(TsneUpdate, GainsAndMomentumByHand) {
  // update·grad < 0 raises the gain by 0.2, anything else multiplies it by 0.8 (min 0.01).
  std::vector<double> y = {1, 1, 1, 1}, grad = {1, -1, 2, 0}, update = {-1, -1, 0, 1},
                      gains = {1, 1, 0.01, 1};
  tsne_update_cpu<double>(y.data(), grad.data(), update.data(), gains.data(), 4, 0.5, 10, 0.01);
  EXPECT_NEAR(gains[0], 1.2, 1e-15);   // −1 · 1 < 0
  EXPECT_NEAR(gains[1], 0.8, 1e-15);   // −1 · −1 > 0
  EXPECT_NEAR(gains[2], 0.01, 1e-15);  // 0 · 2 = 0: ×0.8, clipped to 0.01
  EXPECT_NEAR(gains[3], 0.8, 1e-15);   // 1 · 0 = 0
  EXPECT_NEAR(update[0], 0.5 * -1 - 10 * 1.2 * 1, 1e-12);
  EXPECT_NEAR(update[1], 0.5 * -1 - 10 * 0.8 * -1, 1e-12);
  EXPECT_NEAR(update[2], -10 * 0.01 * 2, 1e-12);
  EXPECT_NEAR(update[3], 0.5, 1e-12);
  EXPECT_NEAR(y[0], 1 + update[0], 1e-12);
  EXPECT_NEAR(y[3], 1.5, 1e-12);
  EXPECT_CONTAINS(error_of([&] {
                    tsne_update_cpu<double>(y.data(), grad.data(), update.data(), gains.data(), 4,
                                            1.0, 10, 0.01);
                  }),
                  "momentum");
}

// ---- perplexity calibration and P -----------------------------------------------------------

TEST(TsnePerplexity, CalibrationReachesTargetEntropy) {
  const int64_t rows = 16, m = 90;
  for (const double perp : {2.0, 5.0, 30.0}) {
    for (const double scale : {1e-6, 1.0, 1e4}) {  // distances of very different magnitudes
      std::vector<double> d2 = random_values<double>(static_cast<size_t>(rows * m), 0, scale, 21);
      std::vector<double> beta(rows);
      const std::vector<double> p = tsne_conditional_p(d2.data(), rows, m, perp, beta.data());
      for (int64_t i = 0; i < rows; ++i) {
        double s = 0, h = 0;
        for (int64_t j = 0; j < m; ++j) {
          const double v = p[static_cast<size_t>(i * m + j)];
          s += v;
          if (v > 0) h -= v * std::log(v);
        }
        EXPECT_NEAR(s, 1.0, 1e-12);
        EXPECT_NEAR(h, std::log(perp), 1e-5) << "perplexity " << perp << " scale " << scale;
        // p_j ∝ exp(−β d_j): the ratio of the two largest entries follows from β.
        std::vector<int64_t> o(m);
        std::iota(o.begin(), o.end(), 0);
        std::partial_sort(o.begin(), o.begin() + 2, o.end(),
                          [&](int64_t a, int64_t b) { return d2[i * m + a] < d2[i * m + b]; });
        const double r = p[static_cast<size_t>(i * m + o[0])] / p[static_cast<size_t>(i * m + o[1])];
        EXPECT_NEAR(std::log(r), -beta[i] * (d2[i * m + o[0]] - d2[i * m + o[1]]), 1e-9);
      }
    }
  }
  EXPECT_CONTAINS(error_of([&] { tsne_conditional_p(nullptr, 1, 0, 5.0); }), "m");
}

TEST(TsnePerplexity, SparsePEqualsDensePWhenEveryPointIsANeighbour) {
  // n − 1 = ⌊3·perplexity⌋ + 1: the k-NN graph is complete, so the two P's must agree.
  const int64_t n = 20, d = 6;
  const auto x = random_values<float>(static_cast<size_t>(n * d), -1, 1, 31);
  const TsneSparseP S = tsne_joint_p_sparse(x.data(), n, d, 6.0);
  const std::vector<double> D = tsne_joint_p_dense(x.data(), n, d, 6.0);
  EXPECT_TRUE(all_close(to_dense(S), D, 1e-12, 1e-9));
  double s = 0;
  for (int64_t i = 0; i < n; ++i) {
    EXPECT_EQ(D[i * n + i], 0.0);
    for (int64_t j = 0; j < n; ++j) {
      EXPECT_NEAR(D[i * n + j], D[j * n + i], 1e-15);
      s += D[i * n + j];
    }
  }
  EXPECT_NEAR(s, 1.0, 1e-12);
}

TEST(TsnePerplexity, SparsePIsSymmetricWithSortedColumns) {
  const int64_t n = 300, d = 8;
  const auto x = random_values<float>(static_cast<size_t>(n * d), -1, 1, 41);
  const TsneSparseP S = tsne_joint_p_sparse(x.data(), n, d, 10.0);
  const std::vector<double> D = to_dense(S);
  double s = 0;
  for (int64_t i = 0; i < n; ++i) {
    const int64_t b = S.row_ptr[i], e = S.row_ptr[i + 1];
    EXPECT_GE(e - b, 31);  // k = 31 neighbours at least
    for (int64_t t = b + 1; t < e; ++t) EXPECT_LT(S.col[t - 1], S.col[t]);
    for (int64_t j = 0; j < n; ++j) EXPECT_EQ(D[i * n + j], D[j * n + i]);
    for (int64_t t = b; t < e; ++t) s += S.val[t];
  }
  EXPECT_NEAR(s, 1.0, 1e-12);
}

// ---- Barnes–Hut -----------------------------------------------------------------------------

TEST(TsneBarnesHut, MatchesExactGradientForSmallTheta) {
  const int64_t n = 400, d = 5;
  const auto x = random_values<float>(static_cast<size_t>(n * d), -1, 1, 51);
  const TsneSparseP S = tsne_joint_p_sparse(x.data(), n, d, 15.0);
  const std::vector<double> P = to_dense(S);
  const std::vector<double> Y = random_values<double>(static_cast<size_t>(2 * n), -10, 10, 52);
  std::vector<double> exact(2 * n), bh(2 * n);
  for (const double alpha : {1.0, 12.0}) {
    tsne_grad_exact_cpu<double>(P.data(), Y.data(), n, alpha, exact.data(), nullptr);
    double norm = 0;
    for (double v : exact) norm += v * v;
    // θ = 0 visits every leaf: the same sums as the exact gradient up to rounding.
    tsne_grad_barnes_hut(S, Y.data(), n, alpha, 0.0, bh.data());
    double err0 = 0, err1 = 0;
    for (size_t k = 0; k < bh.size(); ++k) err0 += (bh[k] - exact[k]) * (bh[k] - exact[k]);
    EXPECT_LT(std::sqrt(err0 / norm), 1e-10) << "alpha " << alpha;
    tsne_grad_barnes_hut(S, Y.data(), n, alpha, 0.1, bh.data());
    for (size_t k = 0; k < bh.size(); ++k) err1 += (bh[k] - exact[k]) * (bh[k] - exact[k]);
    EXPECT_LT(std::sqrt(err1 / norm), 1e-2) << "alpha " << alpha;
    EXPECT_GT(err1, 0.0);  // the approximation was really used
  }
  // Z matches the exact normaliser closely at θ = 0.1.
  double Z = 0, Zbh = 0;
  for (int64_t i = 0; i < n; ++i)
    for (int64_t j = 0; j < n; ++j)
      if (i != j) {
        const double dx = Y[2 * i] - Y[2 * j], dy = Y[2 * i + 1] - Y[2 * j + 1];
        Z += 1 / (1 + dx * dx + dy * dy);
      }
  tsne_grad_barnes_hut(S, Y.data(), n, 1.0, 0.1, bh.data(), &Zbh);
  EXPECT_NEAR(Zbh, Z, 1e-3 * Z);
}

TEST(TsneBarnesHut, HandlesCoincidentPoints) {
  // Many identical map points must neither recurse forever nor produce NaN.
  const int64_t n = 64, d = 3;
  const auto x = random_values<float>(static_cast<size_t>(n * d), -1, 1, 61);
  const TsneSparseP S = tsne_joint_p_sparse(x.data(), n, d, 5.0);
  std::vector<double> Y(2 * n, 0.25), g(2 * n), ge(2 * n);
  Y[0] = 3;
  tsne_grad_barnes_hut(S, Y.data(), n, 1.0, 0.5, g.data());
  tsne_grad_exact_cpu<double>(to_dense(S).data(), Y.data(), n, 1.0, ge.data(), nullptr);
  for (size_t k = 0; k < g.size(); ++k) {
    ASSERT_TRUE(std::isfinite(g[k]));
    EXPECT_NEAR(g[k], ge[k], 1e-3 * (std::fabs(ge[k]) + 1e-3));
  }
}

// ---- whole runs -----------------------------------------------------------------------------

TEST(TsneRun, SeparatesClustersDeterministically) {
  Context ctx(DeviceRequest::CPU);
  const int64_t n = 400, d = 10;
  std::vector<int64_t> labels;
  const auto x = blobs(n, d, 4, labels, 71);
  for (const TsneMethod m : {TsneMethod::Exact, TsneMethod::BarnesHut}) {
    TsneOptions o;
    o.perplexity = 20;
    o.iters = 400;
    o.method = m;
    const TsneResult a = tsne_2d(ctx, x.data(), n, d, o);
    const TsneResult b = tsne_2d(ctx, x.data(), n, d, o);
    EXPECT_EQ(a.method, m == TsneMethod::Exact ? "exact-cpu" : "barnes-hut");
    ASSERT_EQ(a.y.size(), static_cast<size_t>(2 * n));
    EXPECT_EQ(a.y, b.y) << a.method << ": two runs differ";
    EXPECT_EQ(a.kl, b.kl);
    EXPECT_EQ(a.iters, 400);
    EXPECT_TRUE(std::isfinite(a.kl) && a.kl > 0 && a.kl < 2) << a.method << " KL " << a.kl;
    EXPECT_GE(knn_accuracy(a.y.data(), n, 2, labels.data(), 5), 0.99) << a.method;
    EXPECT_GT(trustworthiness(x.data(), n, d, a.y.data(), 2, 5), 0.9) << a.method;
  }
}

TEST(TsneRun, AutoPicksExactForSmallInputsOnTheCpu) {
  Context ctx(DeviceRequest::CPU);
  std::vector<int64_t> labels;
  const auto x = blobs(40, 3, 2, labels, 81);
  TsneOptions o;
  o.perplexity = 5;
  o.iters = 10;
  EXPECT_EQ(tsne_2d(ctx, x.data(), 40, 3, o).method, "exact-cpu");
}

TEST(TsneRun, RejectsBadOptionsNamingTheFlag) {
  Context ctx(DeviceRequest::CPU);
  const auto x = random_values<float>(200, -1, 1, 91);
  TsneOptions o;
  EXPECT_CONTAINS(error_of([&] { tsne_2d(ctx, x.data(), 3, 2, o); }), "at least 4 points");
  o.perplexity = 30;  // (n − 1)/3 = 13 for n = 40
  EXPECT_CONTAINS(error_of([&] { tsne_2d(ctx, x.data(), 40, 2, o); }), "--perplexity");
  o.perplexity = 0;
  EXPECT_CONTAINS(error_of([&] { tsne_2d(ctx, x.data(), 100, 2, o); }), "--perplexity");
  o = TsneOptions{};
  o.iters = 0;
  EXPECT_CONTAINS(error_of([&] { tsne_2d(ctx, x.data(), 100, 2, o); }), "--iters");
  o = TsneOptions{};
  o.theta = -0.1;
  EXPECT_CONTAINS(error_of([&] { tsne_2d(ctx, x.data(), 100, 2, o); }), "--theta");
  o = TsneOptions{};
  o.learning_rate = -1;
  EXPECT_CONTAINS(error_of([&] { tsne_2d(ctx, x.data(), 100, 2, o); }), "--learning-rate");
  o = TsneOptions{};
  o.early_exaggeration = 0.5;
  EXPECT_CONTAINS(error_of([&] { tsne_2d(ctx, x.data(), 100, 2, o); }), "--early-exaggeration");
}

// ---- PCA ------------------------------------------------------------------------------------

TEST(PcaTwoD, ExplainedVarianceMatchesSvdOfCentredData) {
  const int64_t n = 500, d = 7;
  // Correlated data: random latent factors times a random mixing matrix, plus an offset.
  const auto z = random_values<double>(static_cast<size_t>(n * d), -1, 1, 101);
  const auto mix = random_values<double>(static_cast<size_t>(d * d), -1, 1, 102);
  std::vector<float> x(static_cast<size_t>(n * d));
  for (int64_t i = 0; i < n; ++i)
    for (int64_t c = 0; c < d; ++c) {
      double s = 5.0 + c;
      for (int64_t k = 0; k < d; ++k) s += z[i * d + k] * mix[k * d + c] * (k + 1);
      x[i * d + c] = static_cast<float>(s);
    }
  const PcaResult r = pca_2d(x.data(), n, d);
  Eigen::MatrixXd X(n, d);
  for (int64_t i = 0; i < n; ++i)
    for (int64_t c = 0; c < d; ++c) X(i, c) = x[i * d + c];
  X.rowwise() -= X.colwise().mean();
  Eigen::JacobiSVD<Eigen::MatrixXd> svd(X, Eigen::ComputeThinV);
  const Eigen::VectorXd s2 = svd.singularValues().array().square();
  ASSERT_EQ(r.explained_variance_ratio.size(), 2u);
  EXPECT_NEAR(r.explained_variance_ratio[0], s2[0] / s2.sum(), 1e-4 * s2[0] / s2.sum());
  EXPECT_NEAR(r.explained_variance_ratio[1], s2[1] / s2.sum(), 1e-4 * s2[1] / s2.sum());
  for (int c = 0; c < 2; ++c) {
    Eigen::VectorXd v = svd.matrixV().col(c), w(d);
    for (int64_t k = 0; k < d; ++k) w[k] = r.components[c * d + k];
    EXPECT_NEAR(w.norm(), 1.0, 1e-12);
    EXPECT_NEAR(std::fabs(v.dot(w)), 1.0, 1e-6) << "component " << c;
    // Sign convention: the entry of largest magnitude is positive.
    Eigen::Index arg;
    w.cwiseAbs().maxCoeff(&arg);
    EXPECT_GT(w[arg], 0) << "component " << c;
    // Projections are the centred data times the component.
    for (int64_t i = 0; i < n; i += 97)
      EXPECT_NEAR(r.y[2 * i + c], X.row(i).dot(w), 1e-4 * (1 + std::fabs(X.row(i).dot(w))));
  }
}

TEST(PcaTwoD, OneFeatureAndErrors) {
  const std::vector<float> x = {1, 2, 3, 10};
  const PcaResult r = pca_2d(x.data(), 4, 1);
  EXPECT_EQ(r.explained_variance_ratio, (std::vector<double>{1.0, 0.0}));
  EXPECT_EQ(r.components, (std::vector<double>{1.0, 0.0}));
  EXPECT_EQ(r.y, (std::vector<float>{-3, 0, -2, 0, -1, 0, 6, 0}));
  EXPECT_CONTAINS(error_of([&] { pca_2d(x.data(), 1, 1); }), "at least 2 points");
  EXPECT_CONTAINS(error_of([&] { pca_2d(x.data(), 4, 0); }), "at least 1 feature");
}

// ---- trustworthiness ------------------------------------------------------------------------

TEST(Trustworthiness, HandWorkedOneDimensionalCases) {
  // x = powers of two (all pairwise distances distinct).
  const std::vector<float> x = {1, 2, 4, 8, 16, 32, 64, 128};
  const int64_t n = 8;
  // The identity map and a mirror image keep every neighbourhood: T = 1.
  EXPECT_DOUBLE_EQ(trustworthiness(x.data(), n, 1, x.data(), 1, 3), 1.0);
  std::vector<float> mirror(x);
  for (float& v : mirror) v = -v;
  EXPECT_DOUBLE_EQ(trustworthiness(x.data(), n, 1, mirror.data(), 1, 2), 1.0);
  // Swap points 0 and 7 in the map. k = 1: point 0's map neighbour is 6 (x-rank 6, penalty 5),
  // point 1's is 7 (x-rank 7, penalty 6), point 7's is 1 (x-rank 6, penalty 5), every other
  // point keeps its nearest neighbour: Σ = 16, T = 1 − 16·2/(8·1·(16 − 3 − 1)) = 2/3.
  std::vector<float> swapped(x);
  std::swap(swapped[0], swapped[7]);
  EXPECT_NEAR(trustworthiness(x.data(), n, 1, swapped.data(), 1, 1), 2.0 / 3.0, 1e-15);
  // Values scikit-learn 1.2.1 gives for the same inputs.
  EXPECT_NEAR(trustworthiness(x.data(), n, 1, swapped.data(), 1, 2), 0.6666666666666667, 1e-15);
  EXPECT_NEAR(trustworthiness(x.data(), n, 1, swapped.data(), 1, 3), 0.6666666666666667, 1e-15);
  std::vector<float> reversed(x.rbegin(), x.rend());  // point i placed where point 7 − i was
  EXPECT_NEAR(trustworthiness(x.data(), n, 1, reversed.data(), 1, 2), 0.5833333333333334, 1e-15);
  // The same in more dimensions (the GEMM path for x, zero-padded): identical values.
  std::vector<float> x5(static_cast<size_t>(n * 5), 0.0f);
  for (int64_t i = 0; i < n; ++i) x5[static_cast<size_t>(i * 5 + 2)] = x[static_cast<size_t>(i)];
  EXPECT_NEAR(trustworthiness(x5.data(), n, 5, swapped.data(), 1, 1), 2.0 / 3.0, 1e-15);
  EXPECT_NEAR(trustworthiness(x5.data(), n, 5, reversed.data(), 1, 2), 0.5833333333333334, 1e-15);
}

TEST(Trustworthiness, MatchesNaiveDefinitionOnRandomData) {
  const int64_t n = 300, dx = 6;
  const auto x = random_values<float>(static_cast<size_t>(n * dx), -1, 1, 111);
  auto y = random_values<float>(static_cast<size_t>(n * 2), -1, 1, 112);
  for (int64_t i = 0; i < n; ++i) y[2 * i] += 2 * x[i * dx];  // a partly faithful map
  for (const int k : {1, 5, 12}) {
    const double ref = trust_reference(x, dx, y, 2, n, k);
    EXPECT_NEAR(trustworthiness(x.data(), n, dx, y.data(), 2, k), ref, 1e-12) << "k " << k;
  }
}

TEST(Trustworthiness, RejectsTooManyNeighbours) {
  const std::vector<float> x = {1, 2, 4, 8, 16, 32};
  EXPECT_CONTAINS(error_of([&] { trustworthiness(x.data(), 6, 1, x.data(), 1, 3); }), "n/2");
  EXPECT_CONTAINS(error_of([&] { trustworthiness(x.data(), 2, 1, x.data(), 1, 1); }), "at least 3");
}

// ---- k-NN accuracy --------------------------------------------------------------------------

TEST(KnnAccuracy, HandWorkedWithTieBreaking) {
  // x = 0, 1, 3, 7, 15 with labels 0, 0, 1, 1, 0.
  // k = 2: point 0 → {1, 3}: labels 0, 1 tie → the nearest (label 0) wins: correct.
  //        point 1 → {0, 3}: tie → nearest label 0: correct.   point 3 → {1, 0}: 0: wrong.
  //        point 7 → {3, 1}: tie → nearest label 1: correct.   point 15 → {7, 3}: 1: wrong.
  const std::vector<float> x = {0, 1, 3, 7, 15};
  const std::vector<int64_t> lab = {0, 0, 1, 1, 0};
  EXPECT_DOUBLE_EQ(knn_accuracy(x.data(), 5, 1, lab.data(), 2), 0.6);
  EXPECT_DOUBLE_EQ(knn_accuracy(x.data(), 5, 1, lab.data(), 1), 0.6);
  EXPECT_DOUBLE_EQ(knn_accuracy(x.data(), 5, 1, lab.data(), 3), 0.0);
  // Zero-padded to 6-D (the GEMM path): the same.
  std::vector<float> x6(30, 0.0f);
  for (int i = 0; i < 5; ++i) x6[i * 6 + 4] = x[i];
  EXPECT_DOUBLE_EQ(knn_accuracy(x6.data(), 5, 6, lab.data(), 2), 0.6);
  EXPECT_CONTAINS(error_of([&] { knn_accuracy(x.data(), 5, 1, lab.data(), 5); }), "k = 5");
}

TEST(KnnAccuracy, NeighbourSearchPathsAgree) {
  // The sweep (d <= 3) and the blocked GEMM (d >= 4, zero-padded) find the same neighbours.
  const int64_t n = 2000;
  const auto x3 = random_values<float>(static_cast<size_t>(n * 3), -1, 1, 121);
  std::vector<float> x5(static_cast<size_t>(n * 5), 0.0f);
  for (int64_t i = 0; i < n; ++i)
    for (int c = 0; c < 3; ++c) x5[static_cast<size_t>(i * 5 + c)] = x3[static_cast<size_t>(i * 3 + c)];
  std::vector<int64_t> i3, i5;
  std::vector<float> d3, d5;
  knn_euclidean(x3.data(), n, 3, 7, i3, d3);
  knn_euclidean(x5.data(), n, 5, 7, i5, d5);
  EXPECT_EQ(i3, i5);
  EXPECT_TRUE(all_close(d5, d3, 1e-5, 1e-4));
  // And against brute force for a few rows.
  for (int64_t i = 0; i < n; i += 250) {
    std::vector<std::pair<double, int64_t>> all;
    for (int64_t j = 0; j < n; ++j) {
      if (j == i) continue;
      double s = 0;
      for (int c = 0; c < 3; ++c) {
        const double t = static_cast<double>(x3[i * 3 + c]) - x3[j * 3 + c];
        s += t * t;
      }
      all.emplace_back(s, j);
    }
    std::sort(all.begin(), all.end());
    for (int m = 0; m < 7; ++m) EXPECT_EQ(i3[static_cast<size_t>(i * 7 + m)], all[static_cast<size_t>(m)].second);
  }
}
