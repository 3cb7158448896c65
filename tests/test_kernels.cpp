// CPU tests of kernels/: double-precision gradient checks of the CPU references, known
// values, exact integer cases, and float-vs-double agreement.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <functional>
#include <vector>

#include "core/check.h"
#include "core/context.h"
#include "core/philox.h"
#include "core/tensor.h"
#include "kernels/activation.h"
#include "kernels/adam.h"
#include "kernels/batch.h"
#include "kernels/bias.h"
#include "kernels/elbo.h"
#include "kernels/reparameterize.h"
#include "tests/test_util.h"

using namespace cuvae;
using cuvae::test::all_close;
using cuvae::test::convert;
using cuvae::test::random_values;

namespace {

// Central-difference gradient check (Caffe's GradientChecker, PyTorch's gradcheck settings):
// for each i, (f(x + h e_i) - f(x - h e_i)) / 2h against analytic[i], with
// |num - ana| <= 1e-5 + 1e-3 |ana|. `skip(i)` excludes points near a kink.
constexpr double kH = 1e-6, kGradAtol = 1e-5, kGradRtol = 1e-3;

// The default-tolerance form used throughout this file.
void check_gradient(std::vector<double>& x, const std::vector<double>& analytic,
                    const std::function<double()>& f, const char* what,
                    const std::function<bool(size_t)>& skip = nullptr) {
  test::check_gradient(x, analytic, f, what, kGradAtol, kGradRtol, skip, kH);
}

// ---- ELBO -------------------------------------------------------------------------------

struct ElboCase {
  std::vector<double> logits, x, mu, logvar;
  ElboConfig cfg;
};

ElboCase make_elbo_case(int64_t n, int64_t p, int64_t d, float beta, bool binarize, uint64_t seed) {
  ElboCase c;
  c.cfg.n = n;
  c.cfg.p = p;
  c.cfg.d = d;
  c.cfg.beta = beta;
  c.cfg.binarize = binarize;
  c.cfg.seed = 1234 + seed;
  c.cfg.offset = 7;
  c.logits = random_values<double>(n * p, -4, 4, seed);
  c.x = random_values<double>(n * p, 0, 1, seed + 1);
  c.mu = random_values<double>(n * d, -2, 2, seed + 2);
  c.logvar = random_values<double>(n * d, -2, 1, seed + 3);
  return c;
}

double elbo_loss(const ElboCase& c) {
  double loss = 0;
  elbo_cpu<double>(c.logits.data(), c.x.data(), c.mu.data(), c.logvar.data(), nullptr, nullptr,
                   &loss, nullptr, nullptr, nullptr, c.cfg);
  return loss;
}

void elbo_gradient_check(int64_t n, int64_t p, int64_t d, float beta, bool binarize, bool mse = false) {
  SCOPED_TRACE(::testing::Message() << "n=" << n << " p=" << p << " d=" << d << " beta=" << beta
                                    << " binarize=" << binarize << " mse=" << mse);
  ElboCase c = make_elbo_case(n, p, d, beta, binarize, static_cast<uint64_t>(n * 100 + p));
  c.cfg.mse = mse;
  std::vector<double> dl(n * p), dm(n * d), dv(n * d), recon(n), kl(n);
  double loss = 0;
  elbo_cpu<double>(c.logits.data(), c.x.data(), c.mu.data(), c.logvar.data(), recon.data(),
                   kl.data(), &loss, dl.data(), dm.data(), dv.data(), c.cfg);
  double mean = 0;
  for (int64_t i = 0; i < n; ++i) mean += (recon[i] + beta * kl[i]) / n;
  EXPECT_NEAR(loss, mean, 1e-12 * std::fabs(mean));
  auto f = [&] { return elbo_loss(c); };
  check_gradient(c.logits, dl, f, "dlogits");
  check_gradient(c.mu, dm, f, "dmu");
  check_gradient(c.logvar, dv, f, "dlogvar");
}

TEST(Elbo, GradientCheckDouble) {
  elbo_gradient_check(1, 1, 1, 0.5f, false);
  elbo_gradient_check(3, 5, 2, 2.5f, false);
  elbo_gradient_check(4, 17, 3, 0.7f, false);
}

// The plain autoencoder's losses: BCE with beta = 0 and the squared-error alternative.
TEST(Elbo, GradientCheckDoubleAutoencoderLosses) {
  elbo_gradient_check(3, 5, 2, 0.0f, false, false);
  elbo_gradient_check(3, 5, 2, 0.0f, false, true);
  elbo_gradient_check(4, 17, 3, 0.0f, true, true);
  elbo_gradient_check(2, 9, 2, 1.5f, false, true);
}

// A 1x2 image: logits (0, 2), x (1, 0.25), squared error of sigmoid(logits):
//   s = (0.5, 0.8807970779778823); recon = 0.25 + 0.6307970779778823^2 = 0.6478948097769735
//   dlogits = 2 (s - x) s (1 - s) = (-0.25, 2*0.6307970779778823*0.8807970779778823*0.1192029220221177)
TEST(Elbo, MseHandComputedOneByTwo) {
  const double logits[2] = {0, 2}, x[2] = {1, 0.25}, mu[1] = {0.5}, logvar[1] = {0};
  double recon = 0, kl = 0, loss = 0, dl[2] = {0, 0}, dm = 0, dv = 0;
  ElboConfig cfg;
  cfg.n = 1;
  cfg.p = 2;
  cfg.d = 1;
  cfg.beta = 0.0f;
  cfg.mse = true;
  elbo_cpu<double>(logits, x, mu, logvar, &recon, &kl, &loss, dl, &dm, &dv, cfg);
  const double s = 0.8807970779778823;
  EXPECT_NEAR(recon, 0.25 + (s - 0.25) * (s - 0.25), 1e-14);
  EXPECT_NEAR(loss, recon, 1e-14);
  EXPECT_NEAR(dl[0], -0.25, 1e-14);
  EXPECT_NEAR(dl[1], 2 * (s - 0.25) * s * (1 - s), 1e-14);
  EXPECT_EQ(dm, 0.0);
}

TEST(Elbo, GradientCheckDoubleBinarized) {
  elbo_gradient_check(3, 5, 2, 2.5f, true);
  elbo_gradient_check(4, 17, 3, 0.7f, true);
}

// A 1x2 image worked by hand: logits (0, 2), x (1, 0.25), mu 0.5, logvar ln 2, beta 2:
//   recon = BCE(0,1) + BCE(2,0.25) = ln 2 + (2 - 0.5 + log1p(e^-2)) = 2.3200751916029176
//   kl    = 0.5 (0.25 + 2 - 1 - ln 2)                              = 0.27842640972002736
//   loss  = recon + 2 kl                                            = 2.8769280110429722
//   dlogits = (sigmoid(0) - 1, sigmoid(2) - 0.25) = (-0.5, 0.6307970779778823)
//   dmu = 2 * 0.5 = 1,  dlogvar = 2 * 0.5 * (2 - 1) = 1.
template <typename T>
void elbo_hand_case(double tol) {
  const T logits[2] = {T(0), T(2)}, x[2] = {T(1), T(0.25)};
  const T mu[1] = {T(0.5)}, logvar[1] = {static_cast<T>(std::log(2.0))};
  T recon = 0, kl = 0, loss = 0, dl[2] = {0, 0}, dm = 0, dv = 0;
  ElboConfig cfg;
  cfg.n = 1;
  cfg.p = 2;
  cfg.d = 1;
  cfg.beta = 2.0f;
  elbo_cpu<T>(logits, x, mu, logvar, &recon, &kl, &loss, dl, &dm, &dv, cfg);
  EXPECT_NEAR(recon, 2.3200751916029176, tol);
  EXPECT_NEAR(kl, 0.27842640972002736, tol);
  EXPECT_NEAR(loss, 2.8769280110429722, tol);
  EXPECT_NEAR(dl[0], -0.5, tol);
  EXPECT_NEAR(dl[1], 0.6307970779778823, tol);
  EXPECT_NEAR(dm, 1.0, tol);
  EXPECT_NEAR(dv, 1.0, tol);
}

TEST(Elbo, HandComputedOneByTwo) {
  elbo_hand_case<double>(1e-14);
  elbo_hand_case<float>(2e-6);
}

TEST(Elbo, BatchMeanDividesGradientsByN) {
  // Two copies of the hand case: per-image terms unchanged, loss the same, gradients halved.
  const double logits[4] = {0, 2, 0, 2}, x[4] = {1, 0.25, 1, 0.25};
  const double mu[2] = {0.5, 0.5}, logvar[2] = {std::log(2.0), std::log(2.0)};
  double recon[2], kl[2], loss = 0, dl[4], dm[2], dv[2];
  ElboConfig cfg;
  cfg.n = 2;
  cfg.p = 2;
  cfg.d = 1;
  cfg.beta = 2.0f;
  elbo_cpu<double>(logits, x, mu, logvar, recon, kl, &loss, dl, dm, dv, cfg);
  EXPECT_NEAR(recon[1], 2.3200751916029176, 1e-14);
  EXPECT_NEAR(kl[1], 0.27842640972002736, 1e-14);
  EXPECT_NEAR(loss, 2.8769280110429722, 1e-14);
  EXPECT_NEAR(dl[3], 0.6307970779778823 / 2, 1e-14);
  EXPECT_NEAR(dm[0], 0.5, 1e-14);
  EXPECT_NEAR(dv[1], 0.5, 1e-14);
}

TEST(Elbo, KlIsZeroAtThePrior) {
  const int64_t n = 3, p = 4, d = 5;
  std::vector<double> logits(n * p, 0.0), x(n * p, 0.5), mu(n * d, 0.0), logvar(n * d, 0.0);
  std::vector<double> recon(n), kl(n, -1.0), dm(n * d, -1.0), dv(n * d, -1.0);
  double loss = 0;
  ElboConfig cfg;
  cfg.n = n;
  cfg.p = p;
  cfg.d = d;
  cfg.beta = 3.0f;
  elbo_cpu<double>(logits.data(), x.data(), mu.data(), logvar.data(), recon.data(), kl.data(),
                   &loss, nullptr, dm.data(), dv.data(), cfg);
  for (int64_t i = 0; i < n; ++i) {
    EXPECT_EQ(kl[i], 0.0);
    EXPECT_NEAR(recon[i], p * std::log(2.0), 1e-13);  // BCE(0, t) = ln 2 for any t
  }
  for (int64_t k = 0; k < n * d; ++k) {
    EXPECT_EQ(dm[k], 0.0);
    EXPECT_EQ(dv[k], 0.0);
  }
  EXPECT_NEAR(loss, p * std::log(2.0), 1e-13);
}

// recon of one image with the given logits and targets (mu = logvar = 0, so kl = 0).
template <typename T>
T recon_of(const std::vector<T>& logits, const std::vector<T>& x, std::vector<T>* dlogits) {
  ElboConfig cfg;
  cfg.n = 1;
  cfg.p = static_cast<int64_t>(logits.size());
  cfg.d = 1;
  const T zero[1] = {T(0)};
  T recon = 0, kl = 0, loss = 0;
  if (dlogits) dlogits->assign(logits.size(), T(0));
  elbo_cpu<T>(logits.data(), x.data(), zero, zero, &recon, &kl, &loss,
              dlogits ? dlogits->data() : nullptr, nullptr, nullptr, cfg);
  EXPECT_EQ(kl, T(0));
  EXPECT_EQ(loss, recon);
  return recon;
}

TEST(Elbo, BceSymmetryAndExtremes) {
  for (double l : {-3.0, -0.5, 0.0, 0.7, 5.0}) {
    for (double t : {0.0, 0.3, 1.0}) {
      const double a = recon_of<double>({l}, {t}, nullptr);
      const double b = recon_of<double>({-l}, {1 - t}, nullptr);
      EXPECT_NEAR(a, b, 1e-14) << "BCE(" << l << ", " << t << ") != BCE(-l, 1-t)";
      const double direct = t * std::log1p(std::exp(-l)) + (1 - t) * std::log1p(std::exp(l));
      EXPECT_NEAR(a, direct, 1e-12) << "BCE(" << l << ", " << t << ")";
    }
  }
  for (double t : {0.0, 0.25, 1.0})
    EXPECT_NEAR(recon_of<double>({0.0}, {t}, nullptr), std::log(2.0), 1e-15);
  // Saturated logits stay finite in float (no exp overflow) and give the right limits.
  std::vector<float> dl;
  EXPECT_NEAR(recon_of<float>({100.0f}, {0.0f}, &dl), 100.0f, 1e-4f);
  EXPECT_NEAR(dl[0], 1.0f, 1e-6f);
  EXPECT_NEAR(recon_of<float>({-100.0f}, {1.0f}, &dl), 100.0f, 1e-4f);
  EXPECT_NEAR(dl[0], -1.0f, 1e-6f);
  const float tiny = recon_of<float>({100.0f}, {1.0f}, &dl);
  EXPECT_GE(tiny, 0.0f);
  EXPECT_LT(tiny, 1e-30f);
  EXPECT_LE(std::fabs(dl[0]), 1e-30f);
  EXPECT_LT(recon_of<float>({-100.0f}, {0.0f}, nullptr), 1e-30f);
}

TEST(Elbo, BinarizedTargetsFollowPhilox) {
  const int64_t n = 2, p = 5000;
  ElboConfig cfg;
  cfg.n = n;
  cfg.p = p;
  cfg.d = 1;
  cfg.binarize = true;
  cfg.seed = 99;
  cfg.offset = 3;
  std::vector<double> logits(n * p, 0.0), x = random_values<double>(n * p, 0, 1, 5);
  std::vector<double> dl(n * p), recon(n), kl(n);
  const double zero[2] = {0, 0};
  double loss = 0;
  elbo_cpu<double>(logits.data(), x.data(), zero, zero, recon.data(), kl.data(), &loss, dl.data(),
                   nullptr, nullptr, cfg);
  // With logit 0, dlogits = (0.5 - t)/n, so t can be read back.
  int64_t ones = 0;
  double expected_ones = 0;
  for (int64_t k = 0; k < n * p; ++k) {
    const double t = 0.5 - n * dl[k];
    ASSERT_TRUE(t == 0.0 || t == 1.0) << "target " << t << " at " << k;
    const bool want = static_cast<double>(philox_uniform_at(cfg.seed, cfg.offset, k)) < x[k];
    ASSERT_EQ(t == 1.0, want) << "binarized target at " << k;
    ones += t == 1.0;
    expected_ones += x[k];
  }
  // E[#ones] = sum x (about 5000); the binomial standard deviation is below 50.
  EXPECT_NEAR(static_cast<double>(ones), expected_ones, 250.0);
  // Targets of exactly 0 or 1 are left unchanged by binarization.
  std::vector<double> hard(n * p);
  for (int64_t k = 0; k < n * p; ++k) hard[k] = x[k] < 0.5 ? 0.0 : 1.0;
  std::vector<double> logits2 = random_values<double>(n * p, -3, 3, 6);
  double la = 0, lb = 0;
  elbo_cpu<double>(logits2.data(), hard.data(), zero, zero, nullptr, nullptr, &la, nullptr, nullptr,
                   nullptr, cfg);
  ElboConfig plain = cfg;
  plain.binarize = false;
  elbo_cpu<double>(logits2.data(), hard.data(), zero, zero, nullptr, nullptr, &lb, nullptr, nullptr,
                   nullptr, plain);
  EXPECT_EQ(la, lb);
  // Another offset draws other targets.
  ElboConfig other = cfg;
  other.offset = 4;
  double l1 = 0, l2 = 0;
  elbo_cpu<double>(logits2.data(), x.data(), zero, zero, nullptr, nullptr, &l1, nullptr, nullptr,
                   nullptr, cfg);
  elbo_cpu<double>(logits2.data(), x.data(), zero, zero, nullptr, nullptr, &l2, nullptr, nullptr,
                   nullptr, other);
  EXPECT_NE(l1, l2);
}

TEST(Elbo, RejectsBadArguments) {
  double v[4] = {0, 0, 0, 0}, loss = 0;
  ElboConfig cfg;
  cfg.n = 0;
  cfg.p = 2;
  cfg.d = 1;
  EXPECT_THROW(
      elbo_cpu<double>(v, v, v, v, nullptr, nullptr, &loss, nullptr, nullptr, nullptr, cfg), Error);
  cfg.n = 1;
  EXPECT_THROW(
      elbo_cpu<double>(v, v, v, v, nullptr, nullptr, nullptr, nullptr, nullptr, nullptr, cfg),
      Error);
  cfg.beta = -1.0f;
  EXPECT_THROW(
      elbo_cpu<double>(v, v, v, v, nullptr, nullptr, &loss, nullptr, nullptr, nullptr, cfg), Error);

  Context ctx(DeviceRequest::CPU);
  Tensor logits({2, 1, 2, 2}), x({2, 1, 2, 2}), mu({2, 3}), lv({2, 3});
  Tensor recon({2}), kl({2}), ls({1}), dl({2, 4}), dm({2, 3}), dv({2, 3});
  ElboConfig c;
  EXPECT_NO_THROW(elbo(ctx, logits, x, mu, lv, &recon, &kl, ls, &dl, &dm, &dv, c));
  EXPECT_THROW(elbo(ctx, logits, x, mu, lv, nullptr, &kl, ls, &dl, &dm, &dv, c), Error);
  EXPECT_THROW(elbo(ctx, logits, x, mu, lv, &recon, nullptr, ls, &dl, &dm, &dv, c), Error);
  Tensor x_bad({2, 3});
  EXPECT_THROW(elbo(ctx, logits, x_bad, mu, lv, &recon, &kl, ls, &dl, &dm, &dv, c), Error);
  Tensor dm_bad({2, 2});
  EXPECT_THROW(elbo(ctx, logits, x, mu, lv, &recon, &kl, ls, &dl, &dm_bad, &dv, c), Error);
  Tensor ls_bad({2});
  EXPECT_THROW(elbo(ctx, logits, x, mu, lv, &recon, &kl, ls_bad, &dl, &dm, &dv, c), Error);
  ElboConfig wrong;
  wrong.p = 5;
  EXPECT_THROW(elbo(ctx, logits, x, mu, lv, &recon, &kl, ls, &dl, &dm, &dv, wrong), Error);
}

TEST(Elbo, TensorDispatchMatchesReference) {
  const int64_t n = 3, p = 6, d = 2;
  ElboCase c = make_elbo_case(n, p, d, 0.5f, true, 42);
  const auto lf = convert<float>(c.logits), xf = convert<float>(c.x), mf = convert<float>(c.mu),
             vf = convert<float>(c.logvar);
  std::vector<float> recon(n), kl(n), dl(n * p), dm(n * d), dv(n * d);
  float loss = 0;
  elbo_cpu<float>(lf.data(), xf.data(), mf.data(), vf.data(), recon.data(), kl.data(), &loss,
                  dl.data(), dm.data(), dv.data(), c.cfg);
  Context ctx(DeviceRequest::CPU);
  Tensor tl = Tensor::from_vector(lf, {n, 1, 2, 3}), tx = Tensor::from_vector(xf, {n, 1, 2, 3});
  Tensor tm = Tensor::from_vector(mf, {n, d}), tv = Tensor::from_vector(vf, {n, d});
  Tensor trec({n}), tkl({n}), tloss({1}), tdl({n, 1, 2, 3}), tdm({n, d}), tdv({n, d});
  ElboConfig cfg = c.cfg;
  cfg.n = cfg.p = cfg.d = 0;  // taken from the tensors
  elbo(ctx, tl, tx, tm, tv, &trec, &tkl, tloss, &tdl, &tdm, &tdv, cfg);
  EXPECT_EQ(tloss.to_vector()[0], loss);
  EXPECT_EQ(trec.to_vector(), recon);
  EXPECT_EQ(tkl.to_vector(), kl);
  EXPECT_EQ(tdl.to_vector(), dl);
  EXPECT_EQ(tdm.to_vector(), dm);
  EXPECT_EQ(tdv.to_vector(), dv);
  // Eval mode: no gradients requested, same loss.
  Tensor tloss2({1});
  elbo(ctx, tl, tx, tm, tv, &trec, &tkl, tloss2, nullptr, nullptr, nullptr, cfg);
  EXPECT_EQ(tloss2.to_vector()[0], loss);
}

TEST(Elbo, FloatMatchesDouble) {
  const int64_t n = 5, p = 784, d = 32;
  ElboCase c = make_elbo_case(n, p, d, 1.5f, true, 77);
  // Round the inputs to float first so both precisions see identical values.
  const auto lf = convert<float>(c.logits), xf = convert<float>(c.x), mf = convert<float>(c.mu),
             vf = convert<float>(c.logvar);
  const auto ld = convert<double>(lf), xd = convert<double>(xf), md = convert<double>(mf),
             vd = convert<double>(vf);
  std::vector<float> rf(n), kf(n), dlf(n * p), dmf(n * d), dvf(n * d);
  std::vector<double> rd(n), kd(n), dld(n * p), dmd(n * d), dvd(n * d);
  float lossf = 0;
  double lossd = 0;
  elbo_cpu<float>(lf.data(), xf.data(), mf.data(), vf.data(), rf.data(), kf.data(), &lossf,
                  dlf.data(), dmf.data(), dvf.data(), c.cfg);
  elbo_cpu<double>(ld.data(), xd.data(), md.data(), vd.data(), rd.data(), kd.data(), &lossd,
                   dld.data(), dmd.data(), dvd.data(), c.cfg);
  EXPECT_NEAR(lossf, lossd, 1e-5 * std::fabs(lossd));
  EXPECT_TRUE(all_close(rf, rd, 0, 1e-5));
  EXPECT_TRUE(all_close(kf, kd, 0, 1e-5));
  EXPECT_TRUE(all_close(dlf, dld, 1e-6 / n, 1e-5));
  EXPECT_TRUE(all_close(dmf, dmd, 1e-7, 1e-5));
  EXPECT_TRUE(all_close(dvf, dvd, 1e-7, 1e-5));
}

// ---- reparameterize ---------------------------------------------------------------------

TEST(Reparameterize, GradientCheckDouble) {
  for (int64_t n : {1, 7, 40}) {
    SCOPED_TRACE(::testing::Message() << "n=" << n);
    std::vector<double> mu = random_values<double>(n, -2, 2, n),
                        lv = random_values<double>(n, -3, 2, n + 1),
                        dz = random_values<double>(n, -1, 1, n + 2);
    std::vector<double> eps(n), z(n), dm(n), dv(n);
    const uint64_t seed = 11, offset = 5;
    reparameterize_forward_cpu<double>(mu.data(), lv.data(), eps.data(), z.data(), n, seed, offset);
    reparameterize_backward_cpu<double>(dz.data(), eps.data(), lv.data(), dm.data(), dv.data(), n,
                                        false);
    auto f = [&] {  // sum dz . z with the same eps (same seed and offset)
      std::vector<double> e(n), zz(n);
      reparameterize_forward_cpu<double>(mu.data(), lv.data(), e.data(), zz.data(), n, seed,
                                         offset);
      double s = 0;
      for (int64_t i = 0; i < n; ++i) s += dz[i] * zz[i];
      return s;
    };
    check_gradient(mu, dm, f, "dmu");
    check_gradient(lv, dv, f, "dlogvar");
  }
}

TEST(Reparameterize, ForwardValuesAndAccumulate) {
  const int64_t n = 6;
  std::vector<double> mu(n, 1.0), lv(n, std::log(4.0)), eps(n), z(n);
  reparameterize_forward_cpu<double>(mu.data(), lv.data(), eps.data(), z.data(), n, 3, 9);
  for (int64_t i = 0; i < n; ++i) {
    EXPECT_EQ(eps[i], static_cast<double>(philox_normal(3, 9, i)));
    EXPECT_NEAR(z[i], 1.0 + 2.0 * eps[i], 1e-15);  // sigma = exp(0.5 ln 4) = 2
  }
  std::vector<double> dz(n, 0.5), dm(n), dv(n), dm_acc(n, 10.0), dv_acc(n, -3.0);
  reparameterize_backward_cpu<double>(dz.data(), eps.data(), lv.data(), dm.data(), dv.data(), n,
                                      false);
  reparameterize_backward_cpu<double>(dz.data(), eps.data(), lv.data(), dm_acc.data(),
                                      dv_acc.data(), n, true);
  for (int64_t i = 0; i < n; ++i) {
    EXPECT_EQ(dm[i], 0.5);
    EXPECT_NEAR(dv[i], 0.5 * eps[i] * 0.5 * 2.0, 1e-15);
    EXPECT_EQ(dm_acc[i], 10.5);
    EXPECT_NEAR(dv_acc[i], -3.0 + dv[i], 1e-15);
  }
}

TEST(Reparameterize, StandardNormalStatisticsAndReproducibility) {
  const int64_t n = 200000;
  std::vector<float> mu(n, 0.0f), lv(n, 0.0f), eps(n), z(n);
  reparameterize_forward_cpu<float>(mu.data(), lv.data(), eps.data(), z.data(), n, 2024, 1);
  double sum = 0, sq = 0;
  int64_t within1 = 0;
  for (int64_t i = 0; i < n; ++i) {
    ASSERT_EQ(z[i], eps[i]);  // mu = 0, sigma = 1
    ASSERT_TRUE(std::isfinite(z[i]));
    sum += z[i];
    sq += static_cast<double>(z[i]) * z[i];
    within1 += std::fabs(z[i]) < 1.0f;
  }
  const double mean = sum / n, var = sq / n - mean * mean;
  EXPECT_NEAR(mean, 0.0, 0.01);  // standard error 0.0022
  EXPECT_NEAR(var, 1.0, 0.015);  // standard error 0.0032
  EXPECT_NEAR(static_cast<double>(within1) / n, 0.682689, 0.005);
  // Same seed and offset: bit-identical; sample_normal draws the same numbers.
  std::vector<float> eps2(n), z2(n), s(n);
  reparameterize_forward_cpu<float>(mu.data(), lv.data(), eps2.data(), z2.data(), n, 2024, 1);
  EXPECT_EQ(eps2, eps);
  EXPECT_EQ(z2, z);
  sample_normal_cpu<float>(s.data(), n, 2024, 1);
  EXPECT_EQ(s, eps);
  // Another offset or seed: different draws almost everywhere.
  for (auto [seed, offset] : {std::pair<uint64_t, uint64_t>{2024, 2}, {2025, 1}}) {
    reparameterize_forward_cpu<float>(mu.data(), lv.data(), eps2.data(), z2.data(), n, seed,
                                      offset);
    int64_t same = 0;
    for (int64_t i = 0; i < n; ++i) same += eps2[i] == eps[i];
    EXPECT_LT(same, 10) << "seed " << seed << " offset " << offset;
  }
}

TEST(Reparameterize, TensorDispatch) {
  Context ctx(DeviceRequest::CPU);
  const auto muv = random_values<float>(12, -1, 1, 1), lvv = random_values<float>(12, -1, 1, 2);
  Tensor mu = Tensor::from_vector(muv, {3, 4}), lv = Tensor::from_vector(lvv, {3, 4});
  Tensor eps({3, 4}), z({3, 4});
  reparameterize_forward(ctx, mu, lv, eps, z, 8, 0);
  std::vector<float> e(12), zz(12);
  reparameterize_forward_cpu<float>(muv.data(), lvv.data(), e.data(), zz.data(), 12, 8, 0);
  EXPECT_EQ(eps.to_vector(), e);
  EXPECT_EQ(z.to_vector(), zz);
  Tensor dz = Tensor::from_vector(random_values<float>(12, -1, 1, 3), {3, 4});
  Tensor dm = Tensor::from_vector(std::vector<float>(12, 1.0f), {3, 4}), dv({3, 4});
  reparameterize_backward(ctx, dz, eps, lv, dm, dv, true);
  const auto dzv = dz.to_vector(), dmv = dm.to_vector();
  for (int i = 0; i < 12; ++i) EXPECT_EQ(dmv[i], 1.0f + dzv[i]);
  Tensor samples({5});
  sample_normal(ctx, samples, 8, 0);
  EXPECT_EQ(samples.to_vector(), std::vector<float>(e.begin(), e.begin() + 5));
  Tensor wrong({3, 5});
  EXPECT_THROW(reparameterize_forward(ctx, mu, lv, eps, wrong, 8, 0), Error);
  EXPECT_THROW(reparameterize_backward(ctx, dz, eps, lv, wrong, dv, false), Error);
}

TEST(Reparameterize, FloatMatchesDouble) {
  const int64_t n = 1000;
  const auto muf = random_values<float>(n, -2, 2, 1), lvf = random_values<float>(n, -4, 2, 2),
             dzf = random_values<float>(n, -1, 1, 3);
  const auto mud = convert<double>(muf), lvd = convert<double>(lvf), dzd = convert<double>(dzf);
  std::vector<float> ef(n), zf(n), dmf(n), dvf(n);
  std::vector<double> ed(n), zd(n), dmd(n), dvd(n);
  reparameterize_forward_cpu<float>(muf.data(), lvf.data(), ef.data(), zf.data(), n, 5, 6);
  reparameterize_forward_cpu<double>(mud.data(), lvd.data(), ed.data(), zd.data(), n, 5, 6);
  reparameterize_backward_cpu<float>(dzf.data(), ef.data(), lvf.data(), dmf.data(), dvf.data(), n,
                                     false);
  reparameterize_backward_cpu<double>(dzd.data(), ed.data(), lvd.data(), dmd.data(), dvd.data(), n,
                                      false);
  EXPECT_TRUE(all_close(ef, ed, 0, 0));  // eps is a float draw in both
  EXPECT_TRUE(all_close(zf, zd, 1e-6, 1e-5));
  EXPECT_TRUE(all_close(dmf, dmd, 0, 0));
  EXPECT_TRUE(all_close(dvf, dvd, 1e-7, 1e-5));
}

// ---- Adam -------------------------------------------------------------------------------

// torch.optim.Adam's update for one scalar, written out from its documentation.
struct TorchAdam {
  double lr, b1, b2, eps, wd;
  double m = 0, v = 0;
  int t = 0;
  double step(double p, double g) {
    ++t;
    if (wd != 0) g = g + wd * p;
    m = b1 * m + (1 - b1) * g;
    v = b2 * v + (1 - b2) * g * g;
    const double bias_correction1 = 1 - std::pow(b1, t);
    const double bias_correction2 = 1 - std::pow(b2, t);
    const double step_size = lr / bias_correction1;
    const double denom = std::sqrt(v) / std::sqrt(bias_correction2) + eps;
    return p - step_size * m / denom;
  }
};

// Hyper-parameters exactly representable in float, so the double path sees the same values.
AdamConfig exact_adam_config(float wd) {
  AdamConfig cfg;
  cfg.lr = 0.125f;
  cfg.beta1 = 0.75f;
  cfg.beta2 = 0.875f;
  cfg.eps = 1.0f / 1024;
  cfg.weight_decay = wd;
  return cfg;
}

TEST(Adam, TwoStepTrajectory) {
  AdamConfig cfg = exact_adam_config(0.0f);
  double p[2] = {1.0, -2.0}, m[2] = {0, 0}, v[2] = {0, 0};
  const double g1[2] = {0.5, 0.5}, g2[2] = {-0.25, -0.25};
  TorchAdam ref0{0.125, 0.75, 0.875, 1.0 / 1024, 0.0}, ref1 = ref0;
  double r0 = 1.0, r1 = -2.0;
  cfg.step = 1;
  adam_step_cpu<double>(p, g1, m, v, 2, cfg);
  r0 = ref0.step(r0, 0.5);
  r1 = ref1.step(r1, 0.5);
  EXPECT_NEAR(p[0], r0, 1e-15);
  EXPECT_NEAR(p[1], r1, 1e-15);
  EXPECT_NEAR(p[0], 0.8752436647173489, 1e-15);  // the first step moves by about lr
  EXPECT_NEAR(m[0], 0.125, 1e-15);
  EXPECT_NEAR(v[0], 0.03125, 1e-15);
  cfg.step = 2;
  adam_step_cpu<double>(p, g2, m, v, 2, cfg);
  r0 = ref0.step(r0, -0.25);
  r1 = ref1.step(r1, -0.25);
  EXPECT_NEAR(p[0], r0, 1e-15);
  EXPECT_NEAR(p[1], r1, 1e-15);
  EXPECT_NEAR(p[0], 0.8522481749373467, 1e-15);
  EXPECT_NEAR(m[0], 0.03125, 1e-15);
  EXPECT_NEAR(v[0], 0.03515625, 1e-15);
  EXPECT_NEAR(m[0], ref0.m, 1e-15);
  EXPECT_NEAR(v[1], ref1.v, 1e-15);
}

TEST(Adam, TwoStepTrajectoryWithWeightDecay) {
  AdamConfig cfg = exact_adam_config(0.5f);
  double p[2] = {1.0, -2.0}, m[2] = {0, 0}, v[2] = {0, 0};
  const double g1[2] = {0.5, 0.5}, g2[2] = {-0.25, -0.25};
  TorchAdam ref0{0.125, 0.75, 0.875, 1.0 / 1024, 0.5}, ref1 = ref0;
  cfg.step = 1;
  adam_step_cpu<double>(p, g1, m, v, 2, cfg);
  EXPECT_NEAR(p[0], 0.8751219512195122, 1e-15);
  EXPECT_NEAR(p[0], ref0.step(1.0, 0.5), 1e-15);
  EXPECT_NEAR(p[1], -1.875243664717349, 1e-15);
  EXPECT_NEAR(p[1], ref1.step(-2.0, 0.5), 1e-15);
  cfg.step = 2;
  adam_step_cpu<double>(p, g2, m, v, 2, cfg);
  EXPECT_NEAR(p[0], 0.7791376098459005, 1e-15);
  EXPECT_NEAR(m[0], 0.234390243902439, 1e-15);
  EXPECT_NEAR(v[0], 0.11377238994646044, 1e-15);
  EXPECT_NEAR(p[1], -1.7556288082438063, 1e-15);
  EXPECT_NEAR(m[1], -0.3906554580896686, 1e-15);
  EXPECT_NEAR(v[1], 0.20364945208687193, 1e-15);
  EXPECT_NEAR(p[0], ref0.step(0.8751219512195122, -0.25), 1e-15);
}

TEST(Adam, RejectsBadConfig) {
  double p = 0, g = 0, m = 0, v = 0;
  AdamConfig cfg;
  cfg.step = 0;
  EXPECT_THROW(adam_step_cpu<double>(&p, &g, &m, &v, 1, cfg), Error);
  cfg.step = 1;
  cfg.beta1 = 1.0f;
  EXPECT_THROW(adam_step_cpu<double>(&p, &g, &m, &v, 1, cfg), Error);
  cfg.beta1 = 0.9f;
  cfg.lr = -1.0f;
  EXPECT_THROW(adam_step_cpu<double>(&p, &g, &m, &v, 1, cfg), Error);
  cfg.lr = 1e-3f;
  EXPECT_NO_THROW(adam_step_cpu<double>(&p, &g, &m, &v, 1, cfg));
  Context ctx(DeviceRequest::CPU);
  Tensor tp({4}), tg({4}), tm({4}), tv({5});
  EXPECT_THROW(adam_step(ctx, tp, tg, tm, tv, cfg), Error);
}

TEST(Adam, TensorDispatchAndFloatMatchesDouble) {
  const int64_t n = 1001;
  auto pf = random_values<float>(n, -1, 1, 1);
  auto pd = convert<double>(pf);
  std::vector<float> mf(n, 0.0f), vf(n, 0.0f);
  std::vector<double> md(n, 0.0), vd(n, 0.0);
  Context ctx(DeviceRequest::CPU);
  Tensor tp = Tensor::from_vector(pf, {n}), tm({n}), tv({n});
  AdamConfig cfg;
  cfg.lr = 1e-2f;
  cfg.weight_decay = 1e-2f;
  for (int64_t t = 1; t <= 3; ++t) {
    const auto gf = random_values<float>(n, -1, 1, 10 + t);
    const auto gd = convert<double>(gf);
    cfg.step = t;
    adam_step_cpu<float>(pf.data(), gf.data(), mf.data(), vf.data(), n, cfg);
    adam_step_cpu<double>(pd.data(), gd.data(), md.data(), vd.data(), n, cfg);
    Tensor tg = Tensor::from_vector(gf, {n});
    adam_step(ctx, tp, tg, tm, tv, cfg);
  }
  EXPECT_EQ(tp.to_vector(), pf);
  EXPECT_EQ(tm.to_vector(), mf);
  EXPECT_EQ(tv.to_vector(), vf);
  EXPECT_TRUE(all_close(pf, pd, 1e-6, 1e-5));
  EXPECT_TRUE(all_close(mf, md, 1e-7, 1e-5));
  EXPECT_TRUE(all_close(vf, vd, 1e-9, 1e-5));
}

// ---- activations ------------------------------------------------------------------------

TEST(Activation, NamesRoundTrip) {
  for (Activation a :
       {Activation::None, Activation::ReLU, Activation::Sigmoid, Activation::LeakyReLU})
    EXPECT_EQ(parse_activation(activation_name(a)), a);
  EXPECT_STREQ(activation_name(Activation::LeakyReLU), "leaky_relu");
  EXPECT_THROW(parse_activation("tanh"), Error);
}

TEST(Activation, KnownValuesInPlace) {
  std::vector<double> x = {-2.0, 0.0, 3.0, -1000.0, 1000.0};
  std::vector<double> y = x;
  activation_forward_cpu<double>(Activation::ReLU, y.data(), y.data(), 5, 0.0f);
  EXPECT_EQ(y, (std::vector<double>{0.0, 0.0, 3.0, 0.0, 1000.0}));
  y = x;
  activation_forward_cpu<double>(Activation::LeakyReLU, y.data(), y.data(), 5, 0.125f);
  EXPECT_EQ(y, (std::vector<double>{-0.25, 0.0, 3.0, -125.0, 1000.0}));
  y = x;
  activation_forward_cpu<double>(Activation::Sigmoid, y.data(), y.data(), 5, 0.0f);
  EXPECT_NEAR(y[0], 1.0 / (1.0 + std::exp(2.0)), 1e-16);
  EXPECT_EQ(y[1], 0.5);
  EXPECT_NEAR(y[2], 1.0 / (1.0 + std::exp(-3.0)), 1e-16);
  EXPECT_EQ(y[3], 0.0);  // no NaN from exp overflow
  EXPECT_EQ(y[4], 1.0);
  y = x;
  activation_forward_cpu<double>(Activation::None, x.data(), y.data(), 5, 0.0f);
  EXPECT_EQ(y, x);
  // Backward at the kink takes the left derivative (PyTorch's choice), in place over dy.
  std::vector<double> yk = {0.0, 2.0}, g = {3.0, 3.0};
  activation_backward_cpu<double>(Activation::ReLU, yk.data(), g.data(), g.data(), 2, 0.0f);
  EXPECT_EQ(g, (std::vector<double>{0.0, 3.0}));
  g = {3.0, 3.0};
  activation_backward_cpu<double>(Activation::LeakyReLU, yk.data(), g.data(), g.data(), 2, 0.5f);
  EXPECT_EQ(g, (std::vector<double>{1.5, 3.0}));
  EXPECT_THROW(activation_forward_cpu<double>(Activation::LeakyReLU, x.data(), y.data(), 5, -0.1f),
               Error);
}

TEST(Activation, GradientCheckDouble) {
  const int64_t n = 64;
  for (Activation a :
       {Activation::None, Activation::ReLU, Activation::Sigmoid, Activation::LeakyReLU}) {
    SCOPED_TRACE(activation_name(a));
    const float slope = 0.2f;
    std::vector<double> x = random_values<double>(n, -4, 4, 3),
                        dy = random_values<double>(n, -1, 1, 4);
    x[0] = 0.0;  // a kink point, skipped below
    std::vector<double> y(n), dx(n);
    activation_forward_cpu<double>(a, x.data(), y.data(), n, slope);
    activation_backward_cpu<double>(a, y.data(), dy.data(), dx.data(), n, slope);
    auto f = [&] {
      std::vector<double> out(n);
      activation_forward_cpu<double>(a, x.data(), out.data(), n, slope);
      double s = 0;
      for (int64_t i = 0; i < n; ++i) s += dy[i] * out[i];
      return s;
    };
    const bool kinked = a == Activation::ReLU || a == Activation::LeakyReLU;
    const std::vector<double> x0 = x;
    check_gradient(x, dx, f, "dx", [&](size_t i) { return kinked && std::fabs(x0[i]) < 1e-4; });
  }
}

TEST(Activation, FloatMatchesDoubleAndTensorDispatch) {
  const int64_t n = 500;
  const auto xf = random_values<float>(n, -6, 6, 8), dyf = random_values<float>(n, -1, 1, 9);
  const auto xd = convert<double>(xf), dyd = convert<double>(dyf);
  Context ctx(DeviceRequest::CPU);
  for (Activation a :
       {Activation::None, Activation::ReLU, Activation::Sigmoid, Activation::LeakyReLU}) {
    SCOPED_TRACE(activation_name(a));
    std::vector<float> yf(n), dxf(n);
    std::vector<double> yd(n), dxd(n);
    activation_forward_cpu<float>(a, xf.data(), yf.data(), n, 0.01f);
    activation_forward_cpu<double>(a, xd.data(), yd.data(), n, 0.01f);
    activation_backward_cpu<float>(a, yf.data(), dyf.data(), dxf.data(), n, 0.01f);
    activation_backward_cpu<double>(a, yd.data(), dyd.data(), dxd.data(), n, 0.01f);
    EXPECT_TRUE(all_close(yf, yd, 1e-7, 1e-5));
    EXPECT_TRUE(all_close(dxf, dxd, 1e-7, 1e-5));
    Tensor tx = Tensor::from_vector(xf, {5, 100}), tdy = Tensor::from_vector(dyf, {5, 100});
    activation_forward(ctx, a, tx, tx);  // in place, default slope 0.01
    EXPECT_EQ(tx.to_vector(), yf);
    activation_backward(ctx, a, tx, tdy, tdy);
    EXPECT_EQ(tdy.to_vector(), dxf);
  }
  Tensor a({3}), b({4});
  EXPECT_THROW(activation_forward(ctx, Activation::ReLU, a, b), Error);
}

// ---- bias -------------------------------------------------------------------------------

TEST(Bias, AddAndGradExactOnIntegers) {
  // y[i, k, j] for n = 2, c = 3, hw = 2 holds its flat index; bias = (10, 20, 30).
  std::vector<double> y(12);
  for (int i = 0; i < 12; ++i) y[i] = i;
  const double bias[3] = {10, 20, 30};
  add_bias_nchw_cpu<double>(y.data(), bias, 2, 3, 2);
  EXPECT_EQ(y, (std::vector<double>{10, 11, 22, 23, 34, 35, 16, 17, 28, 29, 40, 41}));
  std::vector<double> dy(12);
  for (int i = 0; i < 12; ++i) dy[i] = i;
  double db[3] = {99, 99, 99};  // overwritten, not accumulated
  bias_grad_nchw_cpu<double>(dy.data(), db, 2, 3, 2);
  EXPECT_EQ(db[0], 0 + 1 + 6 + 7);
  EXPECT_EQ(db[1], 2 + 3 + 8 + 9);
  EXPECT_EQ(db[2], 4 + 5 + 10 + 11);
  // Linear layer: hw = 1, [n = 3, c = 2].
  std::vector<float> yl = {1, 2, 3, 4, 5, 6};
  const float bl[2] = {-1, 1};
  add_bias_nchw_cpu<float>(yl.data(), bl, 3, 2, 1);
  EXPECT_EQ(yl, (std::vector<float>{0, 3, 2, 5, 4, 7}));
  float dbl[2];
  bias_grad_nchw_cpu<float>(yl.data(), dbl, 3, 2, 1);
  EXPECT_EQ(dbl[0], 6.0f);
  EXPECT_EQ(dbl[1], 15.0f);
}

TEST(Bias, TensorDispatch) {
  Context ctx(DeviceRequest::CPU);
  std::vector<float> yv(12);
  for (int i = 0; i < 12; ++i) yv[i] = static_cast<float>(i);
  Tensor y = Tensor::from_vector(yv, {2, 3, 1, 2}), b = Tensor::from_vector({10, 20, 30}, {3});
  add_bias_nchw(ctx, y, b);
  EXPECT_EQ(y.to_vector(), (std::vector<float>{10, 11, 22, 23, 34, 35, 16, 17, 28, 29, 40, 41}));
  Tensor db({3});
  bias_grad_nchw(ctx, y, db);
  EXPECT_EQ(db.to_vector(), (std::vector<float>{14 + 40, 22 + 80, 30 + 80 + 40}));
  Tensor wrong({4});
  EXPECT_THROW(add_bias_nchw(ctx, y, wrong), Error);
  EXPECT_THROW(bias_grad_nchw(ctx, y, wrong), Error);
  Tensor flat({12});
  EXPECT_THROW(add_bias_nchw(ctx, flat, b), Error);
}

// ---- batch gather -----------------------------------------------------------------------

TEST(Batch, GatherExact) {
  // Three 4-pixel images; multiples of 51 divide by 255 to 0, 0.2, 0.4, 0.6, 0.8, 1 exactly
  // (up to the float rounding of the quotient, which is what 0.2f etc. are).
  const uint8_t images[12] = {0, 51, 102, 153, 204, 255, 0, 51, 255, 204, 153, 102};
  const int32_t idx[3] = {2, 0, 2};
  std::vector<float> out(12, -1.0f);
  gather_batch_cpu(images, idx, 3, 4, out.data());
  EXPECT_EQ(out, (std::vector<float>{1.0f, 0.8f, 0.6f, 0.4f, 0.0f, 0.2f, 0.4f, 0.6f, 1.0f, 0.8f,
                                     0.6f, 0.4f}));
  const int32_t bad[1] = {-1};
  EXPECT_THROW(gather_batch_cpu(images, bad, 1, 4, out.data()), Error);
}

}  // namespace
