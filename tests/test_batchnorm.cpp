// CPU tests of BatchNorm2d: hand-computed statistics and running-statistics updates, evaluation
// mode, a double-precision central-difference gradient check of the reference backward, and
// the float layer class (with a fused ReLU) against the double reference.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <vector>

#include "core/context.h"
#include "core/tensor.h"
#include "layers/batchnorm.h"
#include "tests/test_util.h"

using namespace cuvae;
using cuvae::test::all_close;
using cuvae::test::convert;
using cuvae::test::error_of;
using cuvae::test::random_values;

namespace {

// Writes `v` into a CPU tensor of the same numel.
void set(Tensor& t, const std::vector<float>& v) {
  ASSERT_EQ(t.numel(), static_cast<int64_t>(v.size()));
  std::copy(v.begin(), v.end(), t.data());
}

double weighted_sum(const std::vector<double>& r, const std::vector<double>& y) {
  double s = 0.0;
  for (size_t i = 0; i < r.size(); ++i) s += r[i] * y[i];
  return s;
}

}  // namespace

// x [n=2, c=2, hw=2]; channel 0 holds 1, 3, 5, 7 (mean 4, biased variance 5), channel 1 is
// constant 2 (variance 0). eps = 4 makes the inverse standard deviations 1/3 and 1/2.
TEST(BatchNormCpu, KnownValuesAndRunningStatistics) {
  const std::vector<double> x = {1, 3, 2, 2, 5, 7, 2, 2};
  const std::vector<double> gamma = {2, -1}, beta = {1, 0.5};
  std::vector<double> rm = {0, 1}, rv = {1, 2};
  std::vector<double> y(8), mean(2), invstd(2);
  batchnorm_forward_train_cpu<double>(x.data(), gamma.data(), beta.data(), 2, 2, 2, 4.0, 0.1,
                                      y.data(), mean.data(), invstd.data(), rm.data(), rv.data());
  // Channel 0: 2·(x − 4)/3 + 1; channel 1: −1·0·(1/2) + 0.5.
  const std::vector<double> want = {-1, 1.0 / 3, 0.5, 0.5, 5.0 / 3, 3, 0.5, 0.5};
  EXPECT_TRUE(all_close(y, want, 1e-15, 1e-14));
  EXPECT_TRUE(all_close(mean, std::vector<double>{4, 2}, 1e-15, 0));
  EXPECT_TRUE(all_close(invstd, std::vector<double>{1.0 / 3, 0.5}, 1e-15, 1e-15));
  // running_mean = 0.9·old + 0.1·mean; running_var = 0.9·old + 0.1·var·m/(m − 1), m = 4.
  EXPECT_TRUE(all_close(rm, std::vector<double>{0.4, 0.9 * 1 + 0.1 * 2}, 1e-15, 1e-15));
  EXPECT_TRUE(all_close(rv, std::vector<double>{0.9 + 0.1 * 5 * 4 / 3, 0.9 * 2}, 1e-15, 1e-15));
}

// Several steps with momentum 0.3 on random data: the running statistics follow
// r ← (1 − momentum)·r + momentum·stat with the unbiased variance, step after step.
TEST(BatchNormCpu, RunningStatisticsFollowMomentumWithUnbiasedVariance) {
  const int64_t n = 3, c = 2, hw = 5, m = n * hw;
  const double momentum = 0.3;
  const std::vector<double> gamma = {1, 1}, beta = {0, 0};
  std::vector<double> rm = {0, 0}, rv = {1, 1}, want_rm = rm, want_rv = rv;
  std::vector<double> y(n * c * hw), mean(c), invstd(c);
  for (int step = 0; step < 3; ++step) {
    const auto x = random_values<double>(n * c * hw, -2 + step, 3, 40 + step);
    batchnorm_forward_train_cpu<double>(x.data(), gamma.data(), beta.data(), n, c, hw, 1e-5,
                                        momentum, y.data(), mean.data(), invstd.data(), rm.data(),
                                        rv.data());
    for (int64_t k = 0; k < c; ++k) {
      double s = 0, sq = 0;
      for (int64_t i = 0; i < n; ++i)
        for (int64_t j = 0; j < hw; ++j) s += x[(i * c + k) * hw + j];
      const double mu = s / m;
      for (int64_t i = 0; i < n; ++i)
        for (int64_t j = 0; j < hw; ++j) sq += std::pow(x[(i * c + k) * hw + j] - mu, 2);
      want_rm[k] = (1 - momentum) * want_rm[k] + momentum * mu;
      want_rv[k] = (1 - momentum) * want_rv[k] + momentum * sq / (m - 1);
      EXPECT_NEAR(mean[k], mu, 1e-14);
      EXPECT_NEAR(invstd[k], 1 / std::sqrt(sq / m + 1e-5), 1e-13);
    }
    EXPECT_TRUE(all_close(rm, want_rm, 1e-14, 1e-13)) << "step " << step;
    EXPECT_TRUE(all_close(rv, want_rv, 1e-14, 1e-13)) << "step " << step;
  }
  // Null running-statistics pointers are allowed (the statistics are only saved).
  const auto x = random_values<double>(n * c * hw, -1, 1, 49);
  EXPECT_NO_THROW(batchnorm_forward_train_cpu<double>(x.data(), gamma.data(), beta.data(), n, c,
                                                      hw, 1e-5, momentum, y.data(), mean.data(),
                                                      invstd.data(), nullptr, nullptr));
}

TEST(BatchNormCpu, EvalModeUsesRunningStatistics) {
  // Batch statistics of this x would give other values: eval must ignore them.
  const std::vector<double> x = {1, 3, 2, 2, 5, 7, 2, 6};
  const std::vector<double> gamma = {2, -1}, beta = {1, 0.5}, rm = {1, 2}, rv = {3, 0};
  std::vector<double> y(8);
  batchnorm_forward_eval_cpu<double>(x.data(), gamma.data(), beta.data(), rm.data(), rv.data(), 2,
                                     2, 2, 1.0, y.data());
  // Channel 0: 2·(x − 1)/sqrt(3 + 1) + 1 = x; channel 1: −(x − 2)/sqrt(0 + 1) + 0.5.
  const std::vector<double> want = {1, 3, 0.5, 0.5, 5, 7, 0.5, -3.5};
  EXPECT_TRUE(all_close(y, want, 1e-15, 1e-15));
  EXPECT_CONTAINS(error_of([&] {
                    batchnorm_forward_eval_cpu<double>(x.data(), gamma.data(), beta.data(),
                                                       rm.data(), rv.data(), 0, 2, 2, 1.0, y.data());
                  }),
                  "non-positive size");
}

// L = Σ r·y(x, gamma, beta): the reference backward with dy = r against central differences.
TEST(BatchNormCpu, GradientMatchesCentralDifferences) {
  const int64_t n = 3, c = 2, hw = 6, total = n * c * hw;
  const double eps = 1e-5;
  const auto x = random_values<double>(total, -2, 2, 1);
  const auto gamma = random_values<double>(c, 0.5, 2, 2);
  const auto beta = random_values<double>(c, -1, 1, 3);
  const auto r = random_values<double>(total, -1, 1, 4);
  const auto loss = [&](const std::vector<double>& xv, const std::vector<double>& gv,
                        const std::vector<double>& bv) {
    std::vector<double> y(total), mean(c), invstd(c);
    batchnorm_forward_train_cpu<double>(xv.data(), gv.data(), bv.data(), n, c, hw, eps, 0.1,
                                        y.data(), mean.data(), invstd.data(), nullptr, nullptr);
    return weighted_sum(r, y);
  };
  std::vector<double> y(total), mean(c), invstd(c), dx(total), dgamma(c), dbeta(c);
  batchnorm_forward_train_cpu<double>(x.data(), gamma.data(), beta.data(), n, c, hw, eps, 0.1,
                                      y.data(), mean.data(), invstd.data(), nullptr, nullptr);
  batchnorm_backward_cpu<double>(x.data(), r.data(), gamma.data(), mean.data(), invstd.data(), n,
                                 c, hw, dx.data(), dgamma.data(), dbeta.data());
  const double h = 1e-6;
  const auto numeric = [&](std::vector<double> v, int which) {
    std::vector<double> g(v.size());
    for (size_t i = 0; i < v.size(); ++i) {
      const double keep = v[i];
      v[i] = keep + h;
      const double up = which == 0 ? loss(v, gamma, beta) : which == 1 ? loss(x, v, beta) : loss(x, gamma, v);
      v[i] = keep - h;
      const double down = which == 0 ? loss(v, gamma, beta) : which == 1 ? loss(x, v, beta) : loss(x, gamma, v);
      v[i] = keep;
      g[i] = (up - down) / (2 * h);
    }
    return g;
  };
  EXPECT_TRUE(all_close(dx, numeric(x, 0), 1e-6, 1e-4)) << "dx";
  EXPECT_TRUE(all_close(dgamma, numeric(gamma, 1), 1e-6, 1e-4)) << "dgamma";
  EXPECT_TRUE(all_close(dbeta, numeric(beta, 2), 1e-6, 1e-4)) << "dbeta";
  // dx may be null: the parameter gradients are unchanged.
  std::vector<double> dgamma2(c), dbeta2(c);
  batchnorm_backward_cpu<double>(x.data(), r.data(), gamma.data(), mean.data(), invstd.data(), n,
                                 c, hw, nullptr, dgamma2.data(), dbeta2.data());
  EXPECT_EQ(dgamma2, dgamma);
  EXPECT_EQ(dbeta2, dbeta);
}

TEST(BatchNormCpu, TrainingNeedsMoreThanOneValuePerChannel) {
  std::vector<double> x = {1, 2}, g = {1, 1}, b = {0, 0}, y(2), s(2), t(2);
  EXPECT_CONTAINS(error_of([&] {
                    batchnorm_forward_train_cpu<double>(x.data(), g.data(), b.data(), 1, 2, 1, 1e-5,
                                                        0.1, y.data(), s.data(), t.data(), nullptr,
                                                        nullptr);
                  }),
                  "more than 1 value per channel");

  ParamStore ps, buf;
  BatchNorm2d bn(ps, buf, "bn", 2);
  ps.finalize(Device::CPU);
  buf.finalize(Device::CPU);
  bn.reset();
  Context ctx(DeviceRequest::CPU);
  Tensor one({1, 2, 1, 1}), dy({1, 2, 1, 1});
  EXPECT_CONTAINS(error_of([&] { bn.backward(ctx, dy, true); }), "before forward");
  EXPECT_CONTAINS(error_of([&] { bn.forward(ctx, one, true); }), "more than 1 value per channel");
  EXPECT_CONTAINS(error_of([&] { bn.backward(ctx, dy, true); }), "before forward");
  EXPECT_NO_THROW(bn.forward(ctx, one, false));  // evaluation works on a single value
  EXPECT_NO_THROW(bn.backward(ctx, dy, true));
  Tensor two({2, 2, 1, 1});
  EXPECT_NO_THROW(bn.forward(ctx, two, true));  // m = 2 is enough
}

TEST(BatchNormCpu, LayerChecksItsArguments) {
  ParamStore ps, buf;
  EXPECT_CONTAINS(error_of([&] { BatchNorm2d(ps, buf, "a", 0); }), "channels must be positive");
  EXPECT_CONTAINS(error_of([&] { BatchNorm2d(ps, buf, "b", 3, Activation::None, 0.0); }),
                  "eps must be positive");
  EXPECT_CONTAINS(error_of([&] { BatchNorm2d(ps, buf, "c", 3, Activation::None, 1e-5, 1.5); }),
                  "momentum");
  BatchNorm2d bn(ps, buf, "bn", 3);
  EXPECT_CONTAINS(error_of([&] { bn.reset(); }), "finalized");
  ps.finalize(Device::CPU);
  buf.finalize(Device::CPU);
  Context ctx(DeviceRequest::CPU);
  Tensor wrong({2, 4, 3, 3});
  EXPECT_CONTAINS(error_of([&] { bn.forward(ctx, wrong, true); }), "expected [n, 3, h, w]");
  Tensor flat({2, 3});
  EXPECT_CONTAINS(error_of([&] { bn.forward(ctx, flat, true); }), "expected [n, 3, h, w]");
  Tensor x({2, 3, 2, 2});
  bn.forward(ctx, x, true);
  Tensor dy({2, 3, 2, 3});
  EXPECT_CONTAINS(error_of([&] { bn.backward(ctx, dy, true); }), "does not match output");
}

// The float layer with a fused ReLU against the double reference: training forward, running
// statistics, backward (through the ReLU), evaluation forward; names, shapes and reset().
TEST(BatchNormCpu, LayerMatchesReference) {
  const int64_t n = 4, c = 3, h = 5, w = 3, hw = h * w, total = n * c * hw;
  ParamStore ps, buf;
  BatchNorm2d bn(ps, buf, "bn1", c, Activation::ReLU, 1e-5, 0.2);
  EXPECT_EQ(bn.channels(), c);
  ps.finalize(Device::CPU);
  buf.finalize(Device::CPU);
  const int iw = ps.find("bn1.weight"), ib = ps.find("bn1.bias");
  const int im = buf.find("bn1.running_mean"), iv = buf.find("bn1.running_var");
  ASSERT_GE(iw, 0);
  ASSERT_GE(ib, 0);
  ASSERT_GE(im, 0);
  ASSERT_GE(iv, 0);
  EXPECT_EQ(ps.value(iw).shape(), std::vector<int64_t>{c});
  EXPECT_EQ(buf.value(iv).shape(), std::vector<int64_t>{c});
  EXPECT_EQ(ps.params().size(), 2u);
  EXPECT_EQ(buf.params().size(), 2u);
  bn.reset();
  EXPECT_EQ(ps.value(iw).to_vector(), std::vector<float>(c, 1.0f));
  EXPECT_EQ(ps.value(ib).to_vector(), std::vector<float>(c, 0.0f));
  EXPECT_EQ(buf.value(im).to_vector(), std::vector<float>(c, 0.0f));
  EXPECT_EQ(buf.value(iv).to_vector(), std::vector<float>(c, 1.0f));

  const auto gamma = random_values<float>(c, 0.5, 1.5, 11);
  const auto beta = random_values<float>(c, -0.5, 0.5, 12);
  set(ps.value(iw), gamma);
  set(ps.value(ib), beta);
  const auto xv = random_values<float>(total, -1, 3, 13);
  Tensor x = Tensor::from_vector(xv, {n, c, h, w});
  Context ctx(DeviceRequest::CPU);
  Tensor& y = bn.forward(ctx, x, true);
  ASSERT_EQ(y.shape(), (std::vector<int64_t>{n, c, h, w}));
  EXPECT_EQ(&y, &bn.output());

  const auto xd = convert<double>(xv), gd = convert<double>(gamma), bd = convert<double>(beta);
  std::vector<double> yd(total), mean(c), invstd(c), rm(c, 0.0), rv(c, 1.0);
  batchnorm_forward_train_cpu<double>(xd.data(), gd.data(), bd.data(), n, c, hw, 1e-5, 0.2,
                                      yd.data(), mean.data(), invstd.data(), rm.data(), rv.data());
  std::vector<double> relu(total);
  for (int64_t i = 0; i < total; ++i) relu[i] = std::max(yd[i], 0.0);
  EXPECT_TRUE(all_close(y.to_vector(), relu, 1e-5, 1e-5)) << "training forward";
  EXPECT_TRUE(all_close(buf.value(im).to_vector(), rm, 1e-6, 1e-5)) << "running_mean";
  EXPECT_TRUE(all_close(buf.value(iv).to_vector(), rv, 1e-6, 1e-5)) << "running_var";

  const auto dyv = random_values<float>(total, -1, 1, 14);
  Tensor dy = Tensor::from_vector(dyv, {n, c, h, w});
  Tensor& dx = bn.backward(ctx, dy, true);
  ASSERT_EQ(dx.shape(), (std::vector<int64_t>{n, c, h, w}));
  std::vector<double> dpre(total), dxd(total), dg(c), db(c);
  for (int64_t i = 0; i < total; ++i) dpre[i] = yd[i] > 0 ? dyv[i] : 0.0;
  EXPECT_TRUE(all_close(dy.to_vector(), dpre, 0, 0)) << "dy overwritten with the pre-activation gradient";
  batchnorm_backward_cpu<double>(xd.data(), dpre.data(), gd.data(), mean.data(), invstd.data(), n,
                                 c, hw, dxd.data(), dg.data(), db.data());
  EXPECT_TRUE(all_close(dx.to_vector(), dxd, 1e-5, 1e-4)) << "dx";
  EXPECT_TRUE(all_close(ps.grad(iw).to_vector(), dg, 1e-5, 1e-4)) << "dgamma";
  EXPECT_TRUE(all_close(ps.grad(ib).to_vector(), db, 1e-5, 1e-4)) << "dbeta";

  // Without dx: the same parameter gradients, an empty dx.
  Tensor dy2 = Tensor::from_vector(dyv, {n, c, h, w});
  EXPECT_TRUE(bn.backward(ctx, dy2, false).empty());
  EXPECT_TRUE(all_close(ps.grad(iw).to_vector(), dg, 1e-5, 1e-4)) << "dgamma without dx";

  // Evaluation: the running statistics, left unchanged.
  const auto rm_before = buf.value(im).to_vector(), rv_before = buf.value(iv).to_vector();
  Tensor& ye = bn.forward(ctx, x, false);
  std::vector<double> ed(total);
  const auto rmd = convert<double>(rm_before), rvd = convert<double>(rv_before);
  batchnorm_forward_eval_cpu<double>(xd.data(), gd.data(), bd.data(), rmd.data(), rvd.data(), n, c,
                                     hw, 1e-5, ed.data());
  for (double& v : ed) v = std::max(v, 0.0);
  EXPECT_TRUE(all_close(ye.to_vector(), ed, 1e-5, 1e-5)) << "eval forward";
  EXPECT_EQ(buf.value(im).to_vector(), rm_before);
  EXPECT_EQ(buf.value(iv).to_vector(), rv_before);
}

// After an evaluation-mode forward, backward differentiates the fixed affine map of the running
// statistics (what Grad-CAM through an eval-mode network needs): the float layer (with a fused
// ReLU) against central differences of L = Σ r·relu(y_eval) on the double reference.
TEST(BatchNormCpu, EvalModeBackwardMatchesCentralDifferences) {
  const int64_t n = 3, c = 2, h = 3, w = 2, hw = h * w, total = n * c * hw;
  const double eps = 1e-5;
  ParamStore ps, buf;
  BatchNorm2d bn(ps, buf, "bn", c, Activation::ReLU, eps);
  ps.finalize(Device::CPU);
  buf.finalize(Device::CPU);
  const auto gamma = random_values<float>(c, 0.5, 1.5, 31);
  const auto beta = random_values<float>(c, -0.5, 0.5, 32);
  const auto rm = random_values<float>(c, -0.5, 0.5, 33);
  const auto rv = random_values<float>(c, 0.5, 2, 34);
  set(ps.value(ps.find("bn.weight")), gamma);
  set(ps.value(ps.find("bn.bias")), beta);
  set(buf.value(buf.find("bn.running_mean")), rm);
  set(buf.value(buf.find("bn.running_var")), rv);
  const auto xv = random_values<float>(total, -2, 2, 35);
  const auto r = random_values<double>(total, -1, 1, 36);
  Context ctx(DeviceRequest::CPU);
  Tensor x = Tensor::from_vector(xv, {n, c, h, w});
  bn.forward(ctx, x, true);  // a training step first: eval must not use its saved statistics
  set(buf.value(buf.find("bn.running_mean")), rm);
  set(buf.value(buf.find("bn.running_var")), rv);
  bn.forward(ctx, x, false);
  Tensor dy = Tensor::from_vector(convert<float>(r), {n, c, h, w});
  const std::vector<float> dx = bn.backward(ctx, dy, true).to_vector();

  const auto rmd = convert<double>(rm), rvd = convert<double>(rv);
  const auto loss = [&](const std::vector<double>& xd, const std::vector<double>& gd,
                        const std::vector<double>& bd) {
    std::vector<double> y(total);
    batchnorm_forward_eval_cpu<double>(xd.data(), gd.data(), bd.data(), rmd.data(), rvd.data(), n,
                                       c, hw, eps, y.data());
    for (double& v : y) v = std::max(v, 0.0);
    return weighted_sum(r, y);
  };
  const auto xd = convert<double>(xv), gd = convert<double>(gamma), bd = convert<double>(beta);
  const double step = 1e-6;
  const auto numeric = [&](std::vector<double> v, int which) {
    std::vector<double> g(v.size());
    for (size_t i = 0; i < v.size(); ++i) {
      const double keep = v[i];
      v[i] = keep + step;
      const double up = which == 0 ? loss(v, gd, bd) : which == 1 ? loss(xd, v, bd) : loss(xd, gd, v);
      v[i] = keep - step;
      const double down = which == 0 ? loss(v, gd, bd) : which == 1 ? loss(xd, v, bd) : loss(xd, gd, v);
      v[i] = keep;
      g[i] = (up - down) / (2 * step);
    }
    return g;
  };
  EXPECT_TRUE(all_close(dx, numeric(xd, 0), 1e-5, 1e-4)) << "dx";
  EXPECT_TRUE(all_close(ps.grad(ps.find("bn.weight")).to_vector(), numeric(gd, 1), 1e-5, 1e-4)) << "dgamma";
  EXPECT_TRUE(all_close(ps.grad(ps.find("bn.bias")).to_vector(), numeric(bd, 2), 1e-5, 1e-4)) << "dbeta";
}

// After a warm-up at the largest batch, training steps (any smaller batch, with or without dx)
// and evaluation passes (forward and backward) allocate nothing.
TEST(BatchNormCpu, SteadyStateAllocatesNothing) {
  const int64_t c = 4;
  ParamStore ps, buf;
  BatchNorm2d bn(ps, buf, "bn", c, Activation::ReLU);
  ps.finalize(Device::CPU);
  buf.finalize(Device::CPU);
  bn.reset();
  Context ctx(DeviceRequest::CPU);
  Tensor x = Tensor::from_vector(random_values<float>(8 * c * 36, -1, 1, 5), {8, c, 6, 6});
  Tensor dy = Tensor::from_vector(random_values<float>(8 * c * 36, -1, 1, 6), {8, c, 6, 6});
  bn.forward(ctx, x, true);
  bn.backward(ctx, dy, true);
  Tensor xs = x.rows(0, 3), dys = dy.rows(0, 3);
  const int64_t before = allocation_count();
  for (int i = 0; i < 3; ++i) {
    bn.forward(ctx, x, true);
    bn.backward(ctx, dy, true);
    bn.forward(ctx, xs, true);
    bn.backward(ctx, dys, false);
    bn.forward(ctx, xs, true);
    bn.backward(ctx, dys, true);
    bn.forward(ctx, x, false);
    bn.backward(ctx, dy, true);
  }
  EXPECT_EQ(allocation_count(), before);
}
