// CPU layer tests: double-precision central-difference gradient checks of the convolution
// and linear cores, exact checks against direct loops on small-integer inputs, and the
// float layer classes (bias + fused activation) against a double composition.
#include <gtest/gtest.h>

#include <cmath>
#include <functional>
#include <random>
#include <vector>

#include <omp.h>

#include "core/check.h"
#include "core/context.h"
#include "core/philox.h"
#include "layers/conv2d.h"
#include "layers/conv_cpu.h"
#include "layers/linear.h"
#include "layers/res_block.h"
#include "tests/test_util.h"

using namespace cuvae;

namespace {

std::vector<double> randn(size_t n, uint32_t seed) {
  std::mt19937 g(seed);
  std::normal_distribution<double> d(0.0, 1.0);
  std::vector<double> v(n);
  for (double& x : v) x = d(g);
  return v;
}

using cuvae::test::small_ints;

double dot(const std::vector<double>& a, const std::vector<double>& b) {
  double s = 0;
  for (size_t i = 0; i < a.size(); ++i) s += a[i] * b[i];
  return s;
}

// |num − ana| ≤ 1e-5 + 1e-3·|ana| for every element; reports the first few mismatches.
void expect_grad_close(const std::vector<double>& num, const std::vector<double>& ana, const char* what) {
  ASSERT_EQ(num.size(), ana.size());
  int bad = 0;
  for (size_t i = 0; i < num.size(); ++i) {
    if (std::abs(num[i] - ana[i]) > 1e-5 + 1e-3 * std::abs(ana[i])) {
      if (++bad <= 5) ADD_FAILURE() << what << "[" << i << "]: numeric " << num[i] << " analytic " << ana[i];
    }
  }
  EXPECT_EQ(bad, 0) << what;
}

// Central differences (h = 1e-6) of the double function L with respect to each element of p,
// against a float layer's gradient `ana`: |num − ana| ≤ 1e-4 + 1e-3·|num|; reports the first few.
void expect_layer_grad(std::vector<double>& p, const std::vector<float>& ana, const std::function<double()>& L,
                       const char* what) {
  ASSERT_EQ(p.size(), ana.size()) << what;
  int bad = 0;
  for (size_t i = 0; i < p.size(); ++i) {
    const double o = p[i];
    p[i] = o + 1e-6; const double lp = L();
    p[i] = o - 1e-6; const double lm = L();
    p[i] = o;
    const double num = (lp - lm) / 2e-6;
    if (std::abs(num - ana[i]) > 1e-4 + 1e-3 * std::abs(num) && ++bad <= 5)
      ADD_FAILURE() << what << "[" << i << "] numeric " << num << " layer " << ana[i];
  }
  EXPECT_EQ(bad, 0) << what;
}

// Direct 7-loop convolution (PyTorch Conv2d semantics) for exact comparisons.
std::vector<float> conv_direct(const ConvGeom& g, const std::vector<float>& x, const std::vector<float>& w) {
  std::vector<float> y(static_cast<size_t>(g.y_numel()), 0.0f);
  const int64_t ho = g.ho(), wo = g.wo();
  for (int64_t b = 0; b < g.n; ++b)
    for (int64_t o = 0; o < g.k_out; ++o)
      for (int64_t i = 0; i < ho; ++i)
        for (int64_t j = 0; j < wo; ++j) {
          double s = 0;
          for (int64_t c = 0; c < g.c; ++c)
            for (int64_t ki = 0; ki < g.kernel; ++ki)
              for (int64_t kj = 0; kj < g.kernel; ++kj) {
                const int64_t ih = i * g.stride - g.pad + ki, iw = j * g.stride - g.pad + kj;
                if (ih < 0 || iw < 0 || ih >= g.h || iw >= g.w) continue;
                s += double(x[((b * g.c + c) * g.h + ih) * g.w + iw]) *
                     w[((o * g.c + c) * g.kernel + ki) * g.kernel + kj];
              }
          y[((b * g.k_out + o) * ho + i) * wo + j] = static_cast<float>(s);
        }
  return y;
}

// Direct transposed convolution (PyTorch ConvTranspose2d): weight [in, out, k, k].
std::vector<float> conv_transpose_direct(int64_t n, int64_t in, int64_t h, int64_t w, int64_t out, int64_t k,
                                         int64_t s, int64_t p, const std::vector<float>& x,
                                         const std::vector<float>& wt, int64_t& ho, int64_t& wo) {
  ho = (h - 1) * s - 2 * p + k;
  wo = (w - 1) * s - 2 * p + k;
  std::vector<double> y(static_cast<size_t>(n * out * ho * wo), 0.0);
  for (int64_t b = 0; b < n; ++b)
    for (int64_t i = 0; i < in; ++i)
      for (int64_t ih = 0; ih < h; ++ih)
        for (int64_t iw = 0; iw < w; ++iw)
          for (int64_t o = 0; o < out; ++o)
            for (int64_t ki = 0; ki < k; ++ki)
              for (int64_t kj = 0; kj < k; ++kj) {
                const int64_t oh = ih * s - p + ki, ow = iw * s - p + kj;
                if (oh < 0 || ow < 0 || oh >= ho || ow >= wo) continue;
                y[((b * out + o) * ho + oh) * wo + ow] +=
                    double(x[((b * in + i) * h + ih) * w + iw]) * wt[((i * out + o) * k + ki) * k + kj];
              }
  return std::vector<float>(y.begin(), y.end());
}

}  // namespace

class ConvGradCheck : public ::testing::TestWithParam<ConvGeom> {};

// L = Σ dy · conv(x, w) is linear in x and in w, so central differences are exact up to
// rounding: every element of dx and dw is checked.
TEST_P(ConvGradCheck, DataAndFilterGradientsMatchCentralDifferences) {
  const ConvGeom g = GetParam();
  std::vector<double> x = randn(g.x_numel(), 1), w = randn(g.w_numel(), 2), dy = randn(g.y_numel(), 3);
  std::vector<double> scratch(g.scratch_numel()), y(g.y_numel()), dx(g.x_numel()), dw(g.w_numel());
  conv_bwd_data_cpu<double>(g, dy.data(), w.data(), dx.data(), scratch.data());
  conv_bwd_filter_cpu<double>(g, x.data(), dy.data(), dw.data(), scratch.data());
  auto L = [&]() {
    conv_fwd_cpu<double>(g, x.data(), w.data(), y.data(), scratch.data());
    return dot(y, dy);
  };
  const double eps = 1e-6;
  std::vector<double> ndx(x.size()), ndw(w.size());
  for (size_t i = 0; i < x.size(); ++i) {
    const double o = x[i];
    x[i] = o + eps; const double lp = L();
    x[i] = o - eps; const double lm = L();
    x[i] = o;
    ndx[i] = (lp - lm) / (2 * eps);
  }
  for (size_t i = 0; i < w.size(); ++i) {
    const double o = w[i];
    w[i] = o + eps; const double lp = L();
    w[i] = o - eps; const double lm = L();
    w[i] = o;
    ndw[i] = (lp - lm) / (2 * eps);
  }
  expect_grad_close(ndx, dx, "dx");
  expect_grad_close(ndw, dw, "dw");
}

INSTANTIATE_TEST_SUITE_P(Geometries, ConvGradCheck,
                         ::testing::Values(ConvGeom{2, 3, 7, 7, 5, 4, 2, 1},   // the VAE's 4/2/1 kind
                                           ConvGeom{1, 2, 5, 6, 3, 3, 1, 1},   // 3x3 same padding
                                           ConvGeom{3, 1, 8, 8, 2, 4, 2, 1},   // one input channel
                                           ConvGeom{2, 2, 6, 5, 4, 1, 1, 0}),  // 1x1
                         [](const ::testing::TestParamInfo<ConvGeom>& i) {
                           const ConvGeom& g = i.param;
                           return "n" + std::to_string(g.n) + "c" + std::to_string(g.c) + "h" + std::to_string(g.h) +
                                  "w" + std::to_string(g.w) + "k" + std::to_string(g.k_out) + "_kernel" +
                                  std::to_string(g.kernel) + "s" + std::to_string(g.stride) + "p" + std::to_string(g.pad);
                         });

TEST(ConvCpu, ForwardIsExactOnSmallIntegers) {
  const ConvGeom g{3, 4, 9, 9, 6, 4, 2, 1};
  std::vector<float> x = small_ints(g.x_numel(), 11), w = small_ints(g.w_numel(), 12);
  std::vector<float> y(g.y_numel()), scratch(g.scratch_numel());
  conv_fwd_cpu<float>(g, x.data(), w.data(), y.data(), scratch.data());
  EXPECT_EQ(y, conv_direct(g, x, w));
}

// The one-pass backward functions the layers use equal the separate core functions
// exactly on small-integer inputs.
TEST(ConvCpu, FusedBackwardsEqualTheSeparateFunctions) {
  const ConvGeom g{3, 4, 9, 9, 6, 4, 2, 1};
  std::vector<float> x = small_ints(g.x_numel(), 13), w = small_ints(g.w_numel(), 14),
                     dy = small_ints(g.y_numel(), 15), s(g.scratch_numel());
  std::vector<float> dx(g.x_numel()), dw(g.w_numel()), dx2(g.x_numel()), dw2(g.w_numel());
  conv_bwd_filter_cpu<float>(g, x.data(), dy.data(), dw.data(), s.data());
  conv_bwd_data_cpu<float>(g, dy.data(), w.data(), dx.data(), s.data());
  conv_bwd_cpu<float>(g, x.data(), dy.data(), w.data(), dx2.data(), dw2.data(), s.data());
  EXPECT_EQ(dx2, dx);
  EXPECT_EQ(dw2, dw);
  std::vector<float> y(g.y_numel()), y2(g.y_numel());
  conv_fwd_cpu<float>(g, x.data(), w.data(), y.data(), s.data());
  conv_transpose_bwd_cpu<float>(g, x.data(), dy.data(), w.data(), y2.data(), dw2.data(), s.data());
  EXPECT_EQ(y2, y);
  EXPECT_EQ(dw2, dw);
}

TEST(ConvCpu, RejectsEmptyOutput) {
  const ConvGeom g{1, 1, 2, 2, 1, 4, 2, 0};
  std::vector<float> x(4), w(16), y(1), s(64);
  EXPECT_THROW(conv_fwd_cpu<float>(g, x.data(), w.data(), y.data(), s.data()), Error);
}

TEST(LinearCpu, GradientsMatchCentralDifferences) {
  const int64_t n = 3, in = 7, out = 5;
  std::vector<double> x = randn(n * in, 4), W = randn(out * in, 5), b = randn(out, 6), dy = randn(n * out, 7);
  std::vector<double> y(n * out), dx(n * in), dW(out * in), db(out);
  linear_bwd_cpu<double>(x.data(), W.data(), dy.data(), dx.data(), dW.data(), db.data(), n, in, out, false);
  auto L = [&]() {
    linear_fwd_cpu<double>(x.data(), W.data(), b.data(), y.data(), n, in, out);
    return dot(y, dy);
  };
  auto numeric = [&](std::vector<double>& p) {
    std::vector<double> g(p.size());
    for (size_t i = 0; i < p.size(); ++i) {
      const double o = p[i];
      p[i] = o + 1e-6; const double lp = L();
      p[i] = o - 1e-6; const double lm = L();
      p[i] = o;
      g[i] = (lp - lm) / 2e-6;
    }
    return g;
  };
  expect_grad_close(numeric(x), dx, "dx");
  expect_grad_close(numeric(W), dW, "dW");
  expect_grad_close(numeric(b), db, "db");
  // accumulate_dx adds to what is there
  std::vector<double> acc(n * in, 1.0);
  linear_bwd_cpu<double>(x.data(), W.data(), dy.data(), acc.data(), dW.data(), db.data(), n, in, out, true);
  for (size_t i = 0; i < acc.size(); ++i) EXPECT_NEAR(acc[i], dx[i] + 1.0, 1e-12);
}

TEST(Conv2dLayer, ForwardMatchesDirectConvolutionPlusBiasAndReLU) {
  Context ctx(DeviceRequest::CPU);
  ParamStore ps;
  Conv2d conv(ps, "c", 2, 3, 4, 2, 1, Activation::ReLU);
  ps.finalize(Device::CPU);
  std::vector<float> w = small_ints(3 * 2 * 16, 21), b = {1, -2, 0};
  std::copy(w.begin(), w.end(), ps.value(0).data());
  std::copy(b.begin(), b.end(), ps.value(1).data());
  std::vector<float> xv = small_ints(2 * 2 * 8 * 8, 22);
  Tensor x = Tensor::from_vector(xv, {2, 2, 8, 8});
  Tensor& y = conv.forward(ctx, x);
  ASSERT_EQ(y.shape(), (std::vector<int64_t>{2, 3, 4, 4}));
  std::vector<float> ref = conv_direct(ConvGeom{2, 2, 8, 8, 3, 4, 2, 1}, xv, w);
  for (size_t i = 0; i < ref.size(); ++i) ref[i] = std::max(0.0f, ref[i] + b[(i / 16) % 3]);
  EXPECT_EQ(y.to_vector(), ref);
}

TEST(ConvTranspose2dLayer, ForwardMatchesDirectTransposedConvolution) {
  Context ctx(DeviceRequest::CPU);
  ParamStore ps;
  ConvTranspose2d deconv(ps, "d", 3, 2, 4, 2, 1);
  ps.finalize(Device::CPU);
  EXPECT_EQ(ps.value(0).shape(), (std::vector<int64_t>{3, 2, 4, 4}));  // PyTorch layout [in, out, k, k]
  std::vector<float> w = small_ints(3 * 2 * 16, 31), b = {2, -1};
  std::copy(w.begin(), w.end(), ps.value(0).data());
  std::copy(b.begin(), b.end(), ps.value(1).data());
  std::vector<float> xv = small_ints(2 * 3 * 7 * 7, 32);
  Tensor x = Tensor::from_vector(xv, {2, 3, 7, 7});
  Tensor& y = deconv.forward(ctx, x);
  int64_t ho = 0, wo = 0;
  std::vector<float> ref = conv_transpose_direct(2, 3, 7, 7, 2, 4, 2, 1, xv, w, ho, wo);
  ASSERT_EQ(y.shape(), (std::vector<int64_t>{2, 2, 14, 14}));
  EXPECT_EQ(ho, 14);
  for (size_t i = 0; i < ref.size(); ++i) ref[i] += b[(i / (ho * wo)) % 2];
  EXPECT_EQ(y.to_vector(), ref);
}

// The transposed convolution's gradients, through the layer class, by central differences
// of L = Σ dy·y in double on the same core functions.
TEST(ConvTranspose2dLayer, BackwardMatchesFiniteDifferences) {
  Context ctx(DeviceRequest::CPU);
  ParamStore ps;
  ConvTranspose2d deconv(ps, "d", 3, 2, 4, 2, 1, Activation::Sigmoid);
  ps.finalize(Device::CPU);
  ps.init_default(5);
  std::vector<double> xd = randn(2 * 3 * 4 * 4, 41), dyd = randn(2 * 2 * 8 * 8, 42);
  Tensor x = Tensor::from_vector(std::vector<float>(xd.begin(), xd.end()), {2, 3, 4, 4});
  deconv.forward(ctx, x);
  Tensor dy = Tensor::from_vector(std::vector<float>(dyd.begin(), dyd.end()), {2, 2, 8, 8});
  Tensor& dx = deconv.backward(ctx, dy, true);
  std::vector<float> dxv = dx.to_vector(), dwv = ps.grad(0).to_vector(), dbv = ps.grad(1).to_vector();
  // numeric in double: y = sigmoid(conv_bwd_data(x, w) + b)
  std::vector<double> w(ps.value(0).numel()), b(2);
  for (size_t i = 0; i < w.size(); ++i) w[i] = ps.value(0).data()[i];
  for (size_t i = 0; i < 2; ++i) b[i] = ps.value(1).data()[i];
  const ConvGeom g{2, 2, 8, 8, 3, 4, 2, 1};
  std::vector<double> y(g.x_numel()), scratch(g.scratch_numel());
  auto L = [&]() {
    conv_bwd_data_cpu<double>(g, xd.data(), w.data(), y.data(), scratch.data());
    double s = 0;
    for (size_t i = 0; i < y.size(); ++i) s += dyd[i] / (1.0 + std::exp(-(y[i] + b[(i / 64) % 2])));
    return s;
  };
  expect_layer_grad(xd, dxv, L, "dx");
  expect_layer_grad(w, dwv, L, "dW");
  expect_layer_grad(b, dbv, L, "db");
}

// The residual VAE's block, y = ReLU(x + conv2(ReLU(conv1(x)))), through the layer class: every
// gradient (input, both weights and biases) against central differences of L = Σ dy·y computed in
// double on the same core functions.
TEST(ResBlockLayer, BackwardMatchesFiniteDifferences) {
  Context ctx(DeviceRequest::CPU);
  ParamStore ps;
  ResBlock block(ps, "res", 3);
  ps.finalize(Device::CPU);
  ps.init_default(6);
  ASSERT_EQ(ps.params().size(), 4u);
  EXPECT_EQ(ps.params()[0].name, "res.conv1.weight");
  EXPECT_EQ(ps.params()[3].name, "res.conv2.bias");
  const ConvGeom g{2, 3, 5, 4, 3, 3, 1, 1};
  std::vector<double> xd = randn(g.x_numel(), 61), dyd = randn(g.x_numel(), 62);
  Tensor x = Tensor::from_vector(std::vector<float>(xd.begin(), xd.end()), {2, 3, 5, 4});
  block.forward(ctx, x);
  Tensor dy = Tensor::from_vector(std::vector<float>(dyd.begin(), dyd.end()), {2, 3, 5, 4});
  const std::vector<float> dxv = block.backward(ctx, dy, true).to_vector();
  EXPECT_EQ(dy.to_vector(), std::vector<float>(dyd.begin(), dyd.end())) << "backward must leave dy unchanged";
  std::vector<std::vector<double>> p(4);
  for (size_t k = 0; k < 4; ++k) {
    const float* v = ps.value(static_cast<int>(k)).data();
    p[k].assign(v, v + ps.value(static_cast<int>(k)).numel());
  }
  std::vector<double> a1(g.x_numel()), y(g.x_numel()), scratch(g.scratch_numel());
  auto L = [&]() {
    conv_fwd_cpu<double>(g, xd.data(), p[0].data(), a1.data(), scratch.data());
    for (size_t i = 0; i < a1.size(); ++i) a1[i] = std::max(a1[i] + p[1][(i / 20) % 3], 0.0);
    conv_fwd_cpu<double>(g, a1.data(), p[2].data(), y.data(), scratch.data());
    double s = 0;
    for (size_t i = 0; i < y.size(); ++i) s += dyd[i] * std::max(y[i] + p[3][(i / 20) % 3] + xd[i], 0.0);
    return s;
  };
  expect_layer_grad(xd, dxv, L, "dx");
  const char* names[4] = {"dW1", "db1", "dW2", "db2"};
  for (size_t k = 0; k < 4; ++k) expect_layer_grad(p[k], ps.grad(static_cast<int>(k)).to_vector(), L, names[k]);
}

TEST(LinearLayer, BackwardThroughReLUMatchesDoubleReference) {
  Context ctx(DeviceRequest::CPU);
  ParamStore ps;
  Linear fc(ps, "fc", 6, 4, Activation::ReLU);
  ps.finalize(Device::CPU);
  ps.init_default(9);
  std::vector<double> xd = randn(5 * 6, 51), dyd = randn(5 * 4, 52);
  Tensor x = Tensor::from_vector(std::vector<float>(xd.begin(), xd.end()), {5, 6});
  Tensor& y = fc.forward(ctx, x);
  std::vector<float> yv = y.to_vector();
  Tensor dy = Tensor::from_vector(std::vector<float>(dyd.begin(), dyd.end()), {5, 4});
  std::vector<float> dxv = fc.backward(ctx, dy, true).to_vector();
  std::vector<double> W(24), b(4), pre(20), dpre(20), dx(30), dW(24), db(4);
  for (int i = 0; i < 24; ++i) W[i] = ps.value(0).data()[i];
  for (int i = 0; i < 4; ++i) b[i] = ps.value(1).data()[i];
  linear_fwd_cpu<double>(xd.data(), W.data(), b.data(), pre.data(), 5, 6, 4);
  for (int i = 0; i < 20; ++i) {
    EXPECT_NEAR(yv[i], std::max(0.0, pre[i]), 1e-5);
    dpre[i] = pre[i] > 0 ? dyd[i] : 0.0;
  }
  linear_bwd_cpu<double>(xd.data(), W.data(), dpre.data(), dx.data(), dW.data(), db.data(), 5, 6, 4, false);
  for (int i = 0; i < 30; ++i) EXPECT_NEAR(dxv[i], dx[i], 1e-5);
  for (int i = 0; i < 24; ++i) EXPECT_NEAR(ps.grad(0).data()[i], dW[i], 1e-5);
  for (int i = 0; i < 4; ++i) EXPECT_NEAR(ps.grad(1).data()[i], db[i], 1e-5);
}

TEST(ParamStore, DefaultInitIsUniformWithinFanInBound) {
  ParamStore ps;
  ps.add("a.weight", {64, 32, 4, 4}, 32 * 16);
  ps.add("a.bias", {64}, 32 * 16);
  ps.finalize(Device::CPU);
  ps.init_default(1);
  const double bound = 1.0 / std::sqrt(512.0);
  double mx = 0, s2 = 0;
  const Tensor& w = ps.value(0);
  for (int64_t i = 0; i < w.numel(); ++i) {
    mx = std::max(mx, std::abs(double(w.data()[i])));
    s2 += double(w.data()[i]) * w.data()[i];
  }
  EXPECT_LE(mx, bound);
  EXPECT_GT(mx, 0.98 * bound);
  EXPECT_NEAR(s2 / w.numel(), bound * bound / 3.0, 0.05 * bound * bound / 3.0);  // Var U(-a,a) = a²/3
  EXPECT_EQ(ps.count(), 64 * 32 * 16 + 64);
  EXPECT_EQ(ps.params()[1].offset % 64, 0);
  EXPECT_THROW(ps.add("late", {1}, 1), Error);
}

// The initialisers fill large tensors on all threads; every element must still be the Philox
// draw at its own index, whatever the thread count (runs stay bit-identical across machines).
TEST(ParamStore, InitIsTheSameOnOneThreadAndOnMany) {
  auto make = [](int threads) {
    omp_set_num_threads(threads);
    ParamStore ps;
    ps.add("w", {300, 400}, 400);  // above the parallel threshold
    ps.add("v", {200, 500}, 500);
    ps.finalize(Device::CPU);
    ps.init_normal(0, 0.02, 7, 3);
    ps.init_uniform(1, 0.5, 7, 4);
    return std::make_pair(ps.value(0).to_vector(), ps.value(1).to_vector());
  };
  const int before = omp_get_max_threads();
  const auto one = make(1), many = make(4);
  omp_set_num_threads(before);
  EXPECT_EQ(one.first, many.first);
  EXPECT_EQ(one.second, many.second);
  for (uint64_t j : {0ull, 1ull, 59999ull, 99999ull}) {
    EXPECT_EQ(many.first[j], static_cast<float>(0.02 * philox_normal(7, 3, j)));
    EXPECT_EQ(many.second[j], static_cast<float>((2.0 * philox_uniform_at(7, 4, j) - 1.0) * 0.5));
  }
}
