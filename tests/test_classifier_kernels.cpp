// CPU tests of the classifier kernels (softmax cross-entropy, SGD, residual add, global
// average pooling, batch augmentation): known values, double-precision gradient checks of
// the CPU references, PyTorch's formulas written out, and the Tensor dispatch on the CPU.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <functional>
#include <limits>
#include <random>
#include <set>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include "core/check.h"
#include "core/context.h"
#include "core/philox.h"
#include "core/tensor.h"
#include "kernels/augment.h"
#include "kernels/batch.h"
#include "kernels/pool.h"
#include "kernels/residual.h"
#include "kernels/sgd.h"
#include "kernels/softmax_xent.h"
#include "tests/test_util.h"

using namespace cuvae;
using cuvae::test::all_close;
using cuvae::test::check_gradient;
using cuvae::test::convert;
using cuvae::test::error_of;
using cuvae::test::random_values;

namespace {


// `n` labels uniform in [0, k) from a fixed seed.
std::vector<int32_t> random_labels(int64_t n, int64_t k, uint64_t seed) {
  std::mt19937_64 gen(seed);
  std::vector<int32_t> v(n);
  for (auto& e : v) e = static_cast<int32_t>(gen() % static_cast<uint64_t>(k));
  return v;
}

// ---- softmax cross-entropy --------------------------------------------------------------

template <typename T>
void uniform_logits_case(double tol) {
  const int64_t n = 3, k = 10;
  const std::vector<T> logits(n * k, T(0.7));
  const std::vector<int32_t> labels = {0, 9, 4};
  std::vector<T> loss(n), dl(n * k), probs(n * k);
  T mean = 0;
  softmax_xent_cpu<T>(logits.data(), labels.data(), n, k, loss.data(), &mean, dl.data(),
                      probs.data());
  for (int64_t i = 0; i < n; ++i) {
    EXPECT_NEAR(loss[i], std::log(10.0), tol);
    for (int64_t j = 0; j < k; ++j) {
      EXPECT_NEAR(probs[i * k + j], 0.1, tol);
      EXPECT_NEAR(dl[i * k + j], (0.1 - (j == labels[i] ? 1.0 : 0.0)) / n, tol);
    }
  }
  EXPECT_NEAR(mean, std::log(10.0), tol);
}

TEST(SoftmaxXent, UniformLogitsGiveLogK) {
  uniform_logits_case<double>(1e-15);
  uniform_logits_case<float>(1e-6);
}

// Two rows worked by hand:
//   row 0: logits (1, 2, 3), label 2: loss = log(1 + e^-1 + e^-2) = 0.40760596444438013,
//          p = (0.09003057317038046, 0.24472847105479767, 0.6652409557748219);
//   row 1: logits (0, ln 2, 0), label 0: p = (1/4, 1/2, 1/4), loss = ln 4.
//   mean = 0.8969501627821354; dlogits = (p - onehot) / 2.
template <typename T>
void two_by_three_case(double tol) {
  const T logits[6] = {T(1), T(2), T(3), T(0), static_cast<T>(std::log(2.0)), T(0)};
  const int32_t labels[2] = {2, 0};
  T loss[2], mean = 0, dl[6], probs[6];
  softmax_xent_cpu<T>(logits, labels, 2, 3, loss, &mean, dl, probs);
  EXPECT_NEAR(loss[0], 0.40760596444438013, tol);
  EXPECT_NEAR(loss[1], 1.3862943611198906, tol);
  EXPECT_NEAR(mean, 0.8969501627821354, tol);
  const double p[6] = {
      0.09003057317038046, 0.24472847105479767, 0.6652409557748219, 0.25, 0.5, 0.25};
  const double d[6] = {
      0.04501528658519023, 0.12236423552739883, -0.16737952211258905, -0.375, 0.25, 0.125};
  for (int j = 0; j < 6; ++j) {
    EXPECT_NEAR(probs[j], p[j], tol) << "probs[" << j << "]";
    EXPECT_NEAR(dl[j], d[j], tol) << "dlogits[" << j << "]";
  }
}

TEST(SoftmaxXent, HandComputedTwoByThree) {
  two_by_three_case<double>(1e-15);
  two_by_three_case<float>(1e-6);
}

void softmax_gradient_check(int64_t n, int64_t k, uint64_t seed) {
  SCOPED_TRACE(::testing::Message() << "n=" << n << " k=" << k);
  std::vector<double> logits = random_values<double>(n * k, -3, 3, seed);
  const std::vector<int32_t> labels = random_labels(n, k, seed + 1);
  std::vector<double> loss(n), dl(n * k);
  double mean = 0;
  softmax_xent_cpu<double>(logits.data(), labels.data(), n, k, loss.data(), &mean, dl.data(),
                           nullptr);
  double sum = 0;
  for (double l : loss) sum += l;
  EXPECT_NEAR(mean, sum / n, 1e-15 * std::fabs(mean) + 1e-300);
  auto f = [&] {
    std::vector<double> ls(n);
    double m = 0;
    softmax_xent_cpu<double>(logits.data(), labels.data(), n, k, ls.data(), &m, nullptr, nullptr);
    return m;
  };
  check_gradient(logits, dl, f, "dlogits", 1e-7, 1e-5);
}

TEST(SoftmaxXent, GradientCheckDouble) {
  softmax_gradient_check(1, 1, 1);
  softmax_gradient_check(1, 2, 2);
  softmax_gradient_check(4, 7, 3);
  softmax_gradient_check(5, 10, 4);
}

TEST(SoftmaxXent, ProbsRowsSumToOneAndGradientsToZero) {
  const int64_t n = 9, k = 37;
  const auto logits = random_values<double>(n * k, -10, 10, 5);
  const auto labels = random_labels(n, k, 6);
  std::vector<double> loss(n), dl(n * k), probs(n * k);
  softmax_xent_cpu<double>(logits.data(), labels.data(), n, k, loss.data(), nullptr, dl.data(),
                           probs.data());
  for (int64_t i = 0; i < n; ++i) {
    double ps = 0, ds = 0;
    for (int64_t j = 0; j < k; ++j) {
      EXPECT_GT(probs[i * k + j], 0.0);
      ps += probs[i * k + j];
      ds += dl[i * k + j];
    }
    EXPECT_NEAR(ps, 1.0, 1e-14) << "row " << i;
    EXPECT_NEAR(ds, 0.0, 1e-15) << "row " << i;
    EXPECT_NEAR(loss[i], -std::log(probs[i * k + labels[i]]), 1e-12) << "row " << i;
  }
}

TEST(SoftmaxXent, LargeLogitsStayFinite) {
  // Row 0 is certain of class 0 but labelled 1: loss = 2000. Row 1 is right: loss = 0.
  const float logits[6] = {1000.0f, -1000.0f, 0.0f, -1000.0f, 1000.0f, 1000.0f};
  const int32_t labels[2] = {1, 2};
  float loss[2], mean = 0, dl[6], probs[6];
  softmax_xent_cpu<float>(logits, labels, 2, 3, loss, &mean, dl, probs);
  EXPECT_EQ(loss[0], 2000.0f);
  EXPECT_NEAR(loss[1], std::log(2.0f), 1e-6f);  // two classes tie at 1000
  EXPECT_NEAR(mean, (2000.0 + std::log(2.0)) / 2, 1e-3);
  for (int j = 0; j < 6; ++j) {
    EXPECT_TRUE(std::isfinite(dl[j])) << j;
    EXPECT_TRUE(std::isfinite(probs[j])) << j;
  }
  EXPECT_EQ(probs[0], 1.0f);
  EXPECT_EQ(probs[1], 0.0f);
  EXPECT_NEAR(dl[0], 0.5f, 1e-7f);
  EXPECT_NEAR(dl[1], -0.5f, 1e-7f);
  EXPECT_NEAR(probs[4], 0.5f, 1e-7f);
  EXPECT_NEAR(dl[5], -0.25f, 1e-7f);
}

TEST(SoftmaxXent, GradientMayOverwriteLogits) {
  const int64_t n = 6, k = 11;
  const auto logits = random_values<float>(n * k, -4, 4, 7);
  const auto labels = random_labels(n, k, 8);
  std::vector<float> loss(n), loss2(n), dl(n * k), inplace = logits;
  float mean = 0, mean2 = 0;
  softmax_xent_cpu<float>(logits.data(), labels.data(), n, k, loss.data(), &mean, dl.data(),
                          nullptr);
  softmax_xent_cpu<float>(inplace.data(), labels.data(), n, k, loss2.data(), &mean2, inplace.data(),
                          nullptr);
  EXPECT_EQ(inplace, dl);
  EXPECT_EQ(loss2, loss);
  EXPECT_EQ(mean2, mean);
}

TEST(SoftmaxXent, RejectsBadLabelsAndSizes) {
  const float logits[6] = {0, 1, 2, 3, 4, 5};
  float loss[2] = {-7.0f, -7.0f}, mean = -7.0f;
  const int32_t high[2] = {0, 5};
  std::string msg =
      error_of([&] { softmax_xent_cpu<float>(logits, high, 2, 3, loss, &mean, nullptr, nullptr); });
  EXPECT_CONTAINS(msg, "label 5");
  EXPECT_CONTAINS(msg, "row 1");
  EXPECT_EQ(loss[0], -7.0f) << "nothing is written before the labels are checked";
  EXPECT_EQ(mean, -7.0f);
  const int32_t negative[2] = {-1, 0};
  msg = error_of(
      [&] { softmax_xent_cpu<float>(logits, negative, 2, 3, loss, nullptr, nullptr, nullptr); });
  EXPECT_CONTAINS(msg, "label -1");
  EXPECT_CONTAINS(msg, "row 0");
  const int32_t ok[2] = {0, 2};
  EXPECT_THROW(softmax_xent_cpu<float>(logits, ok, 0, 3, loss, nullptr, nullptr, nullptr), Error);
  EXPECT_THROW(softmax_xent_cpu<float>(logits, ok, 2, 0, loss, nullptr, nullptr, nullptr), Error);
  EXPECT_THROW(softmax_xent_cpu<float>(logits, ok, 2, 3, nullptr, &mean, nullptr, nullptr), Error);
  EXPECT_NO_THROW(softmax_xent_cpu<float>(logits, ok, 2, 3, loss, nullptr, nullptr, nullptr));
}

TEST(SoftmaxXent, TensorDispatch) {
  const int64_t n = 5, k = 10;
  const auto lv = random_values<float>(n * k, -5, 5, 9);
  const auto labels = random_labels(n, k, 10);
  std::vector<float> loss(n), dl(n * k), probs(n * k);
  float mean = 0;
  softmax_xent_cpu<float>(lv.data(), labels.data(), n, k, loss.data(), &mean, dl.data(),
                          probs.data());
  Context ctx(DeviceRequest::CPU);
  Tensor logits = Tensor::from_vector(lv, {n, k}), tloss({n}), tmean({1}), tdl({n, k}),
         tprobs({n, k});
  const IntBuffer tlabels = IntBuffer::from_vector(labels);
  softmax_xent(ctx, logits, tlabels, tloss, &tmean, &tdl, &tprobs);
  EXPECT_EQ(tloss.to_vector(), loss);
  EXPECT_EQ(tmean.to_vector()[0], mean);
  EXPECT_EQ(tdl.to_vector(), dl);
  EXPECT_EQ(tprobs.to_vector(), probs);
  // Evaluation: loss only.
  Tensor tloss2({n});
  softmax_xent(ctx, logits, tlabels, tloss2, nullptr, nullptr, nullptr);
  EXPECT_EQ(tloss2.to_vector(), loss);
  // Shape mismatches name the tensor.
  Tensor wrong_loss({n + 1}), wrong_mean({2}), wrong_dl({n, k + 1}), flat({n * k});
  auto run = [&](const Tensor& lg, Tensor& ls, Tensor* ml, Tensor* d, Tensor* p) {
    softmax_xent(ctx, lg, tlabels, ls, ml, d, p);
  };
  EXPECT_CONTAINS(error_of([&] { run(logits, wrong_loss, nullptr, nullptr, nullptr); }), ": loss ");
  EXPECT_CONTAINS(error_of([&] { run(logits, tloss, &wrong_mean, nullptr, nullptr); }),
                  ": mean_loss ");
  EXPECT_CONTAINS(error_of([&] { run(logits, tloss, nullptr, &wrong_dl, nullptr); }), ": dlogits ");
  EXPECT_CONTAINS(error_of([&] { run(logits, tloss, nullptr, nullptr, &wrong_dl); }), ": probs ");
  EXPECT_CONTAINS(error_of([&] { run(flat, tloss, nullptr, nullptr, nullptr); }), ": logits ");
  // Labels: fewer than n values.
  const IntBuffer short_labels(n - 1, Device::CPU);
  EXPECT_CONTAINS(error_of([&] { softmax_xent(ctx, logits, short_labels, tloss, nullptr, nullptr, nullptr); }),
                  "labels holds 4 values, expected at least 5");
}

TEST(SoftmaxXent, FloatMatchesDouble) {
  const int64_t n = 64, k = 100;
  const auto lf = random_values<float>(n * k, -8, 8, 11);
  const auto ld = convert<double>(lf);
  const auto labels = random_labels(n, k, 12);
  std::vector<float> lossf(n), dlf(n * k);
  std::vector<double> lossd(n), dld(n * k);
  float meanf = 0;
  double meand = 0;
  softmax_xent_cpu<float>(lf.data(), labels.data(), n, k, lossf.data(), &meanf, dlf.data(),
                          nullptr);
  softmax_xent_cpu<double>(ld.data(), labels.data(), n, k, lossd.data(), &meand, dld.data(),
                           nullptr);
  EXPECT_NEAR(meanf, meand, 1e-6 * std::fabs(meand));
  EXPECT_TRUE(all_close(lossf, lossd, 1e-7, 1e-6));
  EXPECT_TRUE(all_close(dlf, dld, 1e-9, 1e-6));
}

// ---- SGD --------------------------------------------------------------------------------

// torch.optim.SGD's update for one scalar (dampening 0), written out from its documentation.
struct TorchSgd {
  double lr, mu, wd;
  bool nesterov;
  double buf = 0;
  bool first = true;
  double step(double p, double g) {
    double d_p = g;
    if (wd != 0) d_p = d_p + wd * p;
    if (mu != 0) {
      if (first) {
        buf = d_p;  // torch.clone(d_p)
        first = false;
      } else {
        buf = mu * buf + d_p;
      }
      d_p = nesterov ? d_p + mu * buf : buf;
    }
    return p - lr * d_p;
  }
};

// Hyper-parameters exactly representable in float, so the double path sees the same values.
SgdConfig exact_sgd_config(float mu, float wd, bool nesterov) {
  SgdConfig cfg;
  cfg.lr = 0.125f;
  cfg.momentum = mu;
  cfg.weight_decay = wd;
  cfg.nesterov = nesterov;
  return cfg;
}

void sgd_three_steps(float mu, float wd, bool nesterov) {
  SCOPED_TRACE(::testing::Message() << "mu=" << mu << " wd=" << wd << " nesterov=" << nesterov);
  const SgdConfig cfg = exact_sgd_config(mu, wd, nesterov);
  const int64_t n = 3;
  std::vector<double> p = {1.0, -2.0, 0.25}, buf(n, 0.0);
  std::vector<double> ref = p;
  std::vector<TorchSgd> torch(n, TorchSgd{0.125, mu, wd, nesterov});
  const double grads[3][3] = {{0.5, 0.5, -1.0}, {-0.25, 0.75, 2.0}, {0.125, -1.5, 0.0}};
  for (int t = 0; t < 3; ++t) {
    sgd_step_cpu<double>(p.data(), grads[t], buf.data(), n, cfg);
    for (int64_t i = 0; i < n; ++i) ref[i] = torch[i].step(ref[i], grads[t][i]);
    for (int64_t i = 0; i < n; ++i) {
      EXPECT_NEAR(p[i], ref[i], 1e-15) << "step " << t + 1 << " param " << i;
      if (mu != 0) {
        EXPECT_NEAR(buf[i], torch[i].buf, 1e-15) << "step " << t + 1 << " buf " << i;
      }
    }
  }
}

TEST(Sgd, MatchesTorchFormulaOverThreeSteps) {
  sgd_three_steps(0.75f, 0.5f, true);
  sgd_three_steps(0.75f, 0.5f, false);
  sgd_three_steps(0.9f, 0.0f, true);
  sgd_three_steps(0.9f, 0.0f, false);
  sgd_three_steps(0.0f, 0.5f, false);
}

TEST(Sgd, HandComputedFirstSteps) {
  // p = 1, g = 0.5, wd = 0.5, lr = 0.125, mu = 0.75: g' = 1, buf = 1.
  //   Nesterov: d = 1 + 0.75 = 1.75, p = 1 - 0.21875 = 0.78125; plain: d = 1, p = 0.875.
  double p = 1.0, buf = 0.0;
  const double g = 0.5;
  sgd_step_cpu<double>(&p, &g, &buf, 1, exact_sgd_config(0.75f, 0.5f, true));
  EXPECT_EQ(p, 0.78125);
  EXPECT_EQ(buf, 1.0);
  // Second Nesterov step: g' = 0.5 + 0.390625 = 0.890625, buf = 0.75 + 0.890625 = 1.640625,
  // d = 0.890625 + 1.23046875 = 2.12109375, p = 0.78125 - 0.26513671875 = 0.51611328125.
  sgd_step_cpu<double>(&p, &g, &buf, 1, exact_sgd_config(0.75f, 0.5f, true));
  EXPECT_EQ(buf, 1.640625);
  EXPECT_EQ(p, 0.51611328125);
  p = 1.0;
  buf = 0.0;
  sgd_step_cpu<double>(&p, &g, &buf, 1, exact_sgd_config(0.75f, 0.5f, false));
  EXPECT_EQ(p, 0.875);
  EXPECT_EQ(buf, 1.0);
}

TEST(Sgd, MomentumZeroLeavesBufferUntouched) {
  const int64_t n = 4;
  std::vector<float> p = {1.0f, -1.0f, 2.0f, 0.0f}, buf(n, 7.0f);
  const std::vector<float> g = {0.5f, 0.25f, -1.0f, 4.0f};
  sgd_step_cpu<float>(p.data(), g.data(), buf.data(), n, exact_sgd_config(0.0f, 0.25f, false));
  // p -= 0.125 (g + 0.25 p)
  EXPECT_EQ(p, (std::vector<float>{0.90625f, -1.0f, 2.0625f, -0.5f}));
  EXPECT_EQ(buf, std::vector<float>(n, 7.0f));
  // buf may even be absent.
  EXPECT_NO_THROW(
      sgd_step_cpu<float>(p.data(), g.data(), nullptr, n, exact_sgd_config(0.0f, 0.25f, false)));
}

TEST(Sgd, RejectsBadConfig) {
  const float nan = std::numeric_limits<float>::quiet_NaN();
  const float inf = std::numeric_limits<float>::infinity();
  EXPECT_NO_THROW(check_sgd_config(SgdConfig{}));
  EXPECT_NO_THROW(check_sgd_config(exact_sgd_config(0.0f, 0.0f, false)));
  auto bad = [](float lr, float mu, float wd, bool nesterov) {
    SgdConfig c;
    c.lr = lr;
    c.momentum = mu;
    c.weight_decay = wd;
    c.nesterov = nesterov;
    return c;
  };
  EXPECT_CONTAINS(error_of([&] { check_sgd_config(bad(-0.1f, 0.9f, 0.0f, true)); }),
                  "learning rate");
  EXPECT_CONTAINS(error_of([&] { check_sgd_config(bad(0.1f, 1.0f, 0.0f, true)); }), "momentum");
  EXPECT_CONTAINS(error_of([&] { check_sgd_config(bad(0.1f, -0.5f, 0.0f, false)); }), "momentum");
  EXPECT_CONTAINS(error_of([&] { check_sgd_config(bad(0.1f, 0.0f, 0.0f, true)); }), "nesterov");
  EXPECT_CONTAINS(error_of([&] { check_sgd_config(bad(0.1f, 0.9f, -1e-4f, true)); }),
                  "weight_decay");
  EXPECT_THROW(check_sgd_config(bad(nan, 0.9f, 0.0f, true)), Error);
  EXPECT_THROW(check_sgd_config(bad(0.1f, nan, 0.0f, false)), Error);
  EXPECT_THROW(check_sgd_config(bad(0.1f, 0.9f, nan, true)), Error);
  EXPECT_THROW(check_sgd_config(bad(inf, 0.9f, 0.0f, true)), Error);
  EXPECT_THROW(check_sgd_config(bad(0.1f, 0.9f, inf, true)), Error);
  double p = 0, g = 0, b = 0;
  EXPECT_THROW(sgd_step_cpu<double>(&p, &g, &b, 1, bad(-1.0f, 0.9f, 0.0f, true)), Error);
  EXPECT_THROW(sgd_step_cpu<double>(&p, &g, &b, -1, SgdConfig{}), Error);
}

TEST(Sgd, TensorDispatchAndFloatMatchesDouble) {
  const int64_t n = 1001;
  auto pf = random_values<float>(n, -1, 1, 1);
  auto pd = convert<double>(pf);
  std::vector<float> bf(n, 0.0f);
  std::vector<double> bd(n, 0.0);
  Context ctx(DeviceRequest::CPU);
  Tensor tp = Tensor::from_vector(pf, {n}), tb({n});
  SgdConfig cfg;  // lr 0.1, momentum 0.9, weight decay 5e-4, Nesterov
  for (int t = 1; t <= 3; ++t) {
    const auto gf = random_values<float>(n, -1, 1, 10 + t);
    const auto gd = convert<double>(gf);
    sgd_step_cpu<float>(pf.data(), gf.data(), bf.data(), n, cfg);
    sgd_step_cpu<double>(pd.data(), gd.data(), bd.data(), n, cfg);
    Tensor tg = Tensor::from_vector(gf, {n});
    sgd_step(ctx, tp, tg, tb, cfg);
  }
  EXPECT_EQ(tp.to_vector(), pf);
  EXPECT_EQ(tb.to_vector(), bf);
  EXPECT_TRUE(all_close(pf, pd, 1e-6, 1e-5));
  EXPECT_TRUE(all_close(bf, bd, 1e-6, 1e-5));
  Tensor wrong({n + 1}), tg({n});
  EXPECT_CONTAINS(error_of([&] { sgd_step(ctx, tp, tg, wrong, cfg); }), ": buf ");
  EXPECT_CONTAINS(error_of([&] { sgd_step(ctx, tp, wrong, tb, cfg); }), ": grad ");
  SgdConfig bad = cfg;
  bad.momentum = 1.5f;
  EXPECT_THROW(sgd_step(ctx, tp, tg, tb, bad), Error);
}

// ---- residual add -----------------------------------------------------------------------

TEST(Residual, ForwardValuesWithAndWithoutRelu) {
  const std::vector<double> a = {1, -2, 3, -4, 0.5}, b = {0.5, 1, -3.5, 4, -0.25};
  std::vector<double> y(5);
  residual_add_cpu<double>(a.data(), b.data(), y.data(), 5, false);
  EXPECT_EQ(y, (std::vector<double>{1.5, -1, -0.5, 0, 0.25}));
  residual_add_cpu<double>(a.data(), b.data(), y.data(), 5, true);
  EXPECT_EQ(y, (std::vector<double>{1.5, 0, 0, 0, 0.25}));
  // In place over either input.
  std::vector<double> ya = a, yb = b;
  residual_add_cpu<double>(ya.data(), b.data(), ya.data(), 5, true);
  residual_add_cpu<double>(a.data(), yb.data(), yb.data(), 5, true);
  EXPECT_EQ(ya, y);
  EXPECT_EQ(yb, y);
  EXPECT_THROW(residual_add_cpu<double>(a.data(), b.data(), y.data(), -1, true), Error);
}

TEST(Residual, BackwardValues) {
  const std::vector<float> y = {1.5f, 0.0f, 0.0f, 2.0f, 0.25f};
  const std::vector<float> dy = {1, 2, 3, 4, 5};
  std::vector<float> d(5);
  residual_add_backward_cpu<float>(y.data(), dy.data(), d.data(), 5, true);
  EXPECT_EQ(d, (std::vector<float>{1, 0, 0, 4, 5}));
  residual_add_backward_cpu<float>(y.data(), dy.data(), d.data(), 5, false);
  EXPECT_EQ(d, dy);
  std::vector<float> inplace = dy;
  residual_add_backward_cpu<float>(y.data(), inplace.data(), inplace.data(), 5, true);
  EXPECT_EQ(inplace, (std::vector<float>{1, 0, 0, 4, 5}));
  EXPECT_THROW(residual_add_backward_cpu<float>(y.data(), dy.data(), d.data(), -2, true), Error);
}

TEST(Residual, GradientCheckDouble) {
  const int64_t n = 50;
  for (bool relu : {false, true}) {
    SCOPED_TRACE(::testing::Message() << "relu=" << relu);
    std::vector<double> a = random_values<double>(n, -2, 2, 1),
                        b = random_values<double>(n, -2, 2, 2),
                        w = random_values<double>(n, -1, 1, 3);
    std::vector<double> y(n), d(n);
    residual_add_cpu<double>(a.data(), b.data(), y.data(), n, relu);
    residual_add_backward_cpu<double>(y.data(), w.data(), d.data(), n, relu);
    auto f = [&] {  // sum w . residual_add(a, b)
      std::vector<double> out(n);
      residual_add_cpu<double>(a.data(), b.data(), out.data(), n, relu);
      double s = 0;
      for (int64_t i = 0; i < n; ++i) s += w[i] * out[i];
      return s;
    };
    const std::vector<double> a0 = a, b0 = b;
    auto near_kink = [&](size_t i) { return relu && std::fabs(a0[i] + b0[i]) < 1e-3; };
    check_gradient(a, d, f, "da", 1e-8, 1e-6, near_kink);
    check_gradient(b, d, f, "db", 1e-8, 1e-6, near_kink);
  }
}

TEST(Residual, Accumulate) {
  std::vector<double> dst = {1, 2, 3}, src = {10, -20, 0.5};
  accumulate_cpu<double>(dst.data(), src.data(), 3);
  EXPECT_EQ(dst, (std::vector<double>{11, -18, 3.5}));
  accumulate_cpu<double>(dst.data(), src.data(), 0);
  EXPECT_EQ(dst, (std::vector<double>{11, -18, 3.5}));
  EXPECT_THROW(accumulate_cpu<double>(dst.data(), src.data(), -1), Error);
}

TEST(Residual, TensorDispatch) {
  Context ctx(DeviceRequest::CPU);
  const int64_t n = 2 * 3 * 4 * 4;
  const auto av = random_values<float>(n, -1, 1, 4), bv = random_values<float>(n, -1, 1, 5),
             gv = random_values<float>(n, -1, 1, 6);
  std::vector<float> y(n), d(n), acc = gv;
  residual_add_cpu<float>(av.data(), bv.data(), y.data(), n, true);
  residual_add_backward_cpu<float>(y.data(), gv.data(), d.data(), n, true);
  accumulate_cpu<float>(acc.data(), d.data(), n);
  Tensor a = Tensor::from_vector(av, {2, 3, 4, 4}), b = Tensor::from_vector(bv, {2, 3, 4, 4});
  Tensor g = Tensor::from_vector(gv, {2, 3, 4, 4}), ty({2, 3, 4, 4}), td({2, 3, 4, 4});
  residual_add(ctx, a, b, ty, true);
  residual_add_backward(ctx, ty, g, td, true);
  EXPECT_EQ(ty.to_vector(), y);
  EXPECT_EQ(td.to_vector(), d);
  accumulate(ctx, g, td);
  EXPECT_EQ(g.to_vector(), acc);
  Tensor wrong({2, 3, 4, 5});
  EXPECT_CONTAINS(error_of([&] { residual_add(ctx, a, wrong, ty, true); }), ": b ");
  EXPECT_CONTAINS(error_of([&] { residual_add(ctx, a, b, wrong, true); }), ": y ");
  EXPECT_CONTAINS(error_of([&] { residual_add_backward(ctx, ty, wrong, td, true); }), ": dy ");
  EXPECT_CONTAINS(error_of([&] { accumulate(ctx, g, wrong); }), ": src ");
}

// ---- global average pooling -------------------------------------------------------------

TEST(Pool, ForwardAndBackwardValues) {
  // x [2, 3, 2, 2] holds its flat index: the mean of row r is 4r + 1.5.
  std::vector<double> x(24), y(6, -1.0);
  for (int i = 0; i < 24; ++i) x[i] = i;
  global_avg_pool_cpu<double>(x.data(), y.data(), 2, 3, 4);
  for (int r = 0; r < 6; ++r) EXPECT_EQ(y[r], 4 * r + 1.5) << r;
  const std::vector<double> dy = {4, 8, -2, 0, 1, 12};
  std::vector<double> dx(24, 99.0);  // written, not accumulated
  global_avg_pool_backward_cpu<double>(dy.data(), dx.data(), 2, 3, 4);
  for (int i = 0; i < 24; ++i) EXPECT_EQ(dx[i], dy[i / 4] / 4) << i;
  // hw = 1: identity.
  std::vector<float> xf = {3, -1, 2}, yf(3);
  global_avg_pool_cpu<float>(xf.data(), yf.data(), 1, 3, 1);
  EXPECT_EQ(yf, xf);
}

TEST(Pool, GradientCheckDouble) {
  const int64_t n = 3, c = 4, hw = 5;
  std::vector<double> x = random_values<double>(n * c * hw, -3, 3, 7),
                      w = random_values<double>(n * c, -1, 1, 8);
  std::vector<double> dx(n * c * hw);
  global_avg_pool_backward_cpu<double>(w.data(), dx.data(), n, c, hw);
  auto f = [&] {  // sum w . pool(x)
    std::vector<double> y(n * c);
    global_avg_pool_cpu<double>(x.data(), y.data(), n, c, hw);
    double s = 0;
    for (int64_t i = 0; i < n * c; ++i) s += w[i] * y[i];
    return s;
  };
  check_gradient(x, dx, f, "dx", 1e-8, 1e-6);
}

TEST(Pool, RejectsBadSizes) {
  double x[4] = {0, 0, 0, 0}, y[4] = {0, 0, 0, 0};
  EXPECT_THROW(global_avg_pool_cpu<double>(x, y, 1, 1, 0), Error);
  EXPECT_THROW(global_avg_pool_cpu<double>(x, y, -1, 1, 1), Error);
  EXPECT_THROW(global_avg_pool_cpu<double>(x, y, 1, -1, 1), Error);
  EXPECT_THROW(global_avg_pool_backward_cpu<double>(y, x, 1, 1, 0), Error);
  EXPECT_NO_THROW(global_avg_pool_cpu<double>(x, y, 0, 4, 1));
  Context ctx(DeviceRequest::CPU);
  Tensor tx({2, 3, 2, 2}), ty({2, 3}), flat({2, 3}), wrong({2, 4}), empty({2, 3, 0, 2});
  EXPECT_NO_THROW(global_avg_pool(ctx, tx, ty));
  EXPECT_CONTAINS(error_of([&] { global_avg_pool(ctx, tx, wrong); }), ": y ");
  EXPECT_CONTAINS(error_of([&] { global_avg_pool(ctx, flat, ty); }), ": x ");
  EXPECT_THROW(global_avg_pool(ctx, empty, ty), Error);
  EXPECT_CONTAINS(error_of([&] { global_avg_pool_backward(ctx, wrong, tx); }), ": dy ");
  EXPECT_CONTAINS(error_of([&] { global_avg_pool_backward(ctx, ty, flat); }), ": dx ");
}

TEST(Pool, TensorDispatch) {
  Context ctx(DeviceRequest::CPU);
  const int64_t n = 3, c = 5, h = 4, w = 3;
  const auto xv = random_values<float>(n * c * h * w, -2, 2, 9);
  const auto dyv = random_values<float>(n * c, -1, 1, 10);
  std::vector<float> y(n * c), dx(n * c * h * w);
  global_avg_pool_cpu<float>(xv.data(), y.data(), n, c, h * w);
  global_avg_pool_backward_cpu<float>(dyv.data(), dx.data(), n, c, h * w);
  Tensor tx = Tensor::from_vector(xv, {n, c, h, w}), ty({n, c, 1, 1});
  global_avg_pool(ctx, tx, ty);
  EXPECT_EQ(ty.to_vector(), y);
  Tensor tdy = Tensor::from_vector(dyv, {n, c}), tdx({n, c, h, w});
  global_avg_pool_backward(ctx, tdy, tdx);
  EXPECT_EQ(tdx.to_vector(), dx);
}

// ---- batch augmentation -----------------------------------------------------------------

// A data set of `num` random images [c, h, w] with pixels in [1, 255] (so that only the
// padding is zero) and labels in [0, 10).
struct AugData {
  int64_t num, c, h, w;
  std::vector<uint8_t> images, labels;
};

AugData make_aug_data(int64_t num, int64_t c, int64_t h, int64_t w, uint64_t seed) {
  AugData d{num, c, h, w, std::vector<uint8_t>(num * c * h * w), std::vector<uint8_t>(num)};
  std::mt19937_64 gen(seed);
  for (auto& p : d.images) p = static_cast<uint8_t>(1 + gen() % 255);
  for (auto& l : d.labels) l = static_cast<uint8_t>(gen() % 10);
  return d;
}

std::vector<int32_t> random_indices(int64_t n, int64_t num, uint64_t seed) {
  std::mt19937_64 gen(seed);
  std::vector<int32_t> v(n);
  for (auto& e : v) e = static_cast<int32_t>(gen() % static_cast<uint64_t>(num));
  return v;
}

// Image s of `d` cropped at offset (dy, dx) of its zero-padded version, then mirrored if
// `flip`, as floats in [0, 1]: the definition in augment.h, written out independently.
std::vector<float> shifted(const AugData& d, int64_t s, int64_t dy, int64_t dx, bool flip) {
  std::vector<float> out(d.c * d.h * d.w, 0.0f);
  for (int64_t ch = 0; ch < d.c; ++ch)
    for (int64_t y = 0; y < d.h; ++y)
      for (int64_t x = 0; x < d.w; ++x) {
        const int64_t sy = y + dy, sx = (flip ? d.w - 1 - x : x) + dx;
        if (sy < 0 || sy >= d.h || sx < 0 || sx >= d.w) continue;
        out[(ch * d.h + y) * d.w + x] =
            static_cast<float>(d.images[((s * d.c + ch) * d.h + sy) * d.w + sx]) / 255.0f;
      }
  return out;
}

// Runs augment_batch_cpu over `indices`, returning the images and the labels.
std::pair<std::vector<float>, std::vector<int32_t>> augment(const AugData& d,
                                                            const std::vector<int32_t>& indices,
                                                            int pad, bool flip, uint64_t seed,
                                                            uint64_t offset) {
  const int64_t n = static_cast<int64_t>(indices.size());
  std::vector<float> out(n * d.c * d.h * d.w, -1.0f);
  std::vector<int32_t> labels(n, -1);
  AugmentConfig cfg;
  cfg.pad = pad;
  cfg.flip = flip;
  augment_batch_cpu(d.images.data(), d.labels.data(), indices.data(), n, d.c, d.h, d.w, cfg, seed,
                    offset, out.data(), labels.data());
  return {std::move(out), std::move(labels)};
}

TEST(Augment, NoAugmentationIsAPlainGather) {
  for (auto [c, h, w] : {std::tuple<int64_t, int64_t, int64_t>{1, 28, 28}, {3, 5, 7}}) {
    SCOPED_TRACE(::testing::Message() << "c=" << c << " h=" << h << " w=" << w);
    const AugData d = make_aug_data(20, c, h, w, 1);
    const auto idx = random_indices(33, d.num, 2);
    const int64_t n = 33, pixels = c * h * w;
    std::vector<float> ref(n * pixels);
    gather_batch_cpu(d.images.data(), idx.data(), n, pixels, ref.data());
    // Guard elements after the batch must stay untouched.
    std::vector<float> out(n * pixels + 5, -1.0f);
    std::vector<int32_t> labels(n + 2, -1);
    augment_batch_cpu(d.images.data(), d.labels.data(), idx.data(), n, c, h, w, AugmentConfig{},
                      123, 4, out.data(), labels.data());
    EXPECT_EQ(std::vector<float>(out.begin(), out.begin() + n * pixels), ref);
    for (int64_t j = n * pixels; j < n * pixels + 5; ++j) EXPECT_EQ(out[j], -1.0f);
    for (int64_t i = 0; i < n; ++i) EXPECT_EQ(labels[i], d.labels[idx[i]]) << "row " << i;
    EXPECT_EQ(labels[n], -1);
    EXPECT_EQ(labels[n + 1], -1);
  }
}

TEST(Augment, LabelsAreOptional) {
  const AugData d = make_aug_data(5, 1, 4, 4, 3);
  const std::vector<int32_t> idx = {4, 0, 2};
  std::vector<float> a(3 * 16), b(3 * 16);
  std::vector<int32_t> labels(3, -1);
  AugmentConfig cfg;
  cfg.pad = 1;
  augment_batch_cpu(d.images.data(), d.labels.data(), idx.data(), 3, 1, 4, 4, cfg, 7, 8, a.data(),
                    nullptr);
  augment_batch_cpu(d.images.data(), nullptr, idx.data(), 3, 1, 4, 4, cfg, 7, 8, b.data(),
                    labels.data());
  EXPECT_EQ(a, b);
  EXPECT_EQ(labels, std::vector<int32_t>(3, -1));
}

// For each batch row, the (dy, dx, flip) among the 25 shifts x 2 mirrorings that reproduce
// it exactly; fails the test if there is not exactly one.
std::vector<std::tuple<int, int, bool>> find_shifts(const AugData& d,
                                                    const std::vector<int32_t>& idx,
                                                    const std::vector<float>& out, int pad) {
  const int64_t pixels = d.c * d.h * d.w;
  std::vector<std::tuple<int, int, bool>> found;
  for (size_t i = 0; i < idx.size(); ++i) {
    const std::vector<float> row(out.begin() + i * pixels, out.begin() + (i + 1) * pixels);
    int matches = 0;
    std::tuple<int, int, bool> m{0, 0, false};
    for (int dy = -pad; dy <= pad; ++dy)
      for (int dx = -pad; dx <= pad; ++dx)
        for (bool flip : {false, true})
          if (shifted(d, idx[i], dy, dx, flip) == row) {
            ++matches;
            m = {dy, dx, flip};
          }
    EXPECT_EQ(matches, 1) << "row " << i << " matches " << matches << " shifts";
    found.push_back(m);
  }
  return found;
}

TEST(Augment, RandomCropShiftsWithinPadAndCoverAll) {
  const int pad = 2;
  const AugData d = make_aug_data(50, 2, 8, 9, 4);  // asymmetric random content
  const auto idx = random_indices(400, d.num, 5);
  const uint64_t seed = 99, offset = 3;
  const auto [out, labels] = augment(d, idx, pad, false, seed, offset);
  const auto found = find_shifts(d, idx, out, pad);
  std::set<std::pair<int, int>> seen;
  for (size_t i = 0; i < found.size(); ++i) {
    const auto [dy, dx, flip] = found[i];
    EXPECT_FALSE(flip) << "row " << i << " was mirrored with flip off";
    seen.insert({dy, dx});
    // The shift is the documented function of the Philox block of row i.
    const PhiloxBlock b = philox_at(seed, offset, i);
    EXPECT_EQ(dy, static_cast<int>(b.v[0] % 5) - pad) << "row " << i;
    EXPECT_EQ(dx, static_cast<int>(b.v[1] % 5) - pad) << "row " << i;
    EXPECT_EQ(labels[i], d.labels[idx[i]]) << "row " << i;
  }
  EXPECT_EQ(seen.size(), 25u) << "not every shift in [-2, 2]^2 occurred in 400 rows";
}

TEST(Augment, FlipMirrorsAboutHalfTheRows) {
  const AugData d = make_aug_data(30, 1, 6, 7, 6);
  const auto idx = random_indices(400, d.num, 7);
  const auto [out, labels] = augment(d, idx, 0, true, 5, 0);
  const auto found = find_shifts(d, idx, out, 0);
  int flipped = 0;
  for (size_t i = 0; i < found.size(); ++i) {
    const bool flip = std::get<2>(found[i]);
    EXPECT_EQ(flip, (philox_at(5, 0, i).v[2] & 1u) != 0) << "row " << i;
    flipped += flip;
  }
  EXPECT_GE(flipped, 140) << "of 400";
  EXPECT_LE(flipped, 260) << "of 400";
  // With padding as well: still one exact (shift, mirror) per row.
  const auto [out2, labels2] = augment(d, idx, 1, true, 5, 0);
  find_shifts(d, idx, out2, 1);
}

TEST(Augment, DeterministicPerSeedAndOffset) {
  const AugData d = make_aug_data(40, 1, 10, 10, 8);
  const auto idx = random_indices(64, d.num, 9);
  const auto a = augment(d, idx, 3, true, 11, 1);
  const auto b = augment(d, idx, 3, true, 11, 1);
  const auto c = augment(d, idx, 3, true, 11, 2);
  const auto e = augment(d, idx, 3, true, 12, 1);
  EXPECT_EQ(a.first, b.first);
  EXPECT_EQ(a.second, b.second);
  EXPECT_NE(a.first, c.first);
  EXPECT_NE(a.first, e.first);
  EXPECT_EQ(a.second, c.second);  // labels do not depend on the draws
}

TEST(Augment, RejectsNegativePadAndSizes) {
  const AugData d = make_aug_data(2, 1, 3, 3, 10);
  const std::vector<int32_t> idx = {0, 1};
  std::vector<float> out(18);
  AugmentConfig cfg;
  cfg.pad = -1;
  EXPECT_CONTAINS(error_of([&] {
                    augment_batch_cpu(d.images.data(), nullptr, idx.data(), 2, 1, 3, 3, cfg, 0, 0,
                                      out.data(), nullptr);
                  }),
                  "pad");
  cfg.pad = 0;
  EXPECT_THROW(augment_batch_cpu(d.images.data(), nullptr, idx.data(), -1, 1, 3, 3, cfg, 0, 0,
                                 out.data(), nullptr),
               Error);
  EXPECT_THROW(augment_batch_cpu(d.images.data(), nullptr, idx.data(), 2, 1, 3, -3, cfg, 0, 0,
                                 out.data(), nullptr),
               Error);
  EXPECT_NO_THROW(augment_batch_cpu(d.images.data(), nullptr, idx.data(), 0, 1, 3, 3, cfg, 0, 0,
                                    out.data(), nullptr));
}

}  // namespace
