// The oneDNN CPU backend against the reference (im2col + Eigen, loops): every layer it runs
// (Conv2d, ConvTranspose2d, BatchNorm2d) forward and backward on many geometries, exactly on
// small integers, by central differences, and a whole training step of the ConvVAE, the CVAE
// and the ResNet-18; run to run it is bit-identical. Skipped in a build without oneDNN.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <random>
#include <vector>

#include "core/context.h"
#include "kernels/adam.h"
#include "kernels/sgd.h"
#include "layers/batchnorm.h"
#include "layers/conv2d.h"
#include "models/conv_vae.h"
#include "models/resnet18.h"
#include "tests/test_util.h"

using namespace cuvae;
using cuvae::test::all_close;
using cuvae::test::random_values;

namespace {

#define SKIP_WITHOUT_ONEDNN() \
  if (!onednn_built()) GTEST_SKIP() << "SKIPPED: this build has no oneDNN (libdnnl-dev)"

using cuvae::test::small_ints;

double max_abs(const std::vector<float>& v) {
  double m = 0;
  for (float x : v) m = std::max(m, static_cast<double>(std::fabs(x)));
  return m;
}

// (loss(p[i] + h) − loss(p[i] − h)) / 2h for a float parameter p[i], restored afterwards.
template <typename Loss>
double central_difference(float* p, size_t i, float h, Loss&& loss) {
  const float keep = p[i];
  p[i] = keep + h;
  const double lp = loss();
  p[i] = keep - h;
  const double lm = loss();
  p[i] = keep;
  return (lp - lm) / (2 * h);
}

// Float rounding: |got − ref| ≤ 1e-5·max|ref| + 1e-5·|ref| (the sums are over up to a few
// thousand products, in another order).
::testing::AssertionResult float_close(const std::vector<float>& got, const std::vector<float>& ref) {
  return all_close(got, ref, 1e-5 * std::max(1.0, max_abs(ref)), 1e-5);
}

struct LayerRun {
  std::vector<float> y, dx, dw, db;
};

// Conv2d (transposed = false) or ConvTranspose2d forward and backward on `backend`, from the
// same parameters and inputs.
LayerRun run_conv(CpuBackend backend, bool transposed, int64_t n, int64_t in, int64_t out, int64_t hw,
                  int64_t kernel, int64_t stride, int64_t pad, Activation act, const std::vector<float>& xv,
                  const std::vector<float>& wv, const std::vector<float>& bv, const std::vector<float>& dyv) {
  Context ctx(DeviceRequest::CPU, backend);
  ParamStore ps;
  Conv2d conv(ps, "c", in, out, kernel, stride, pad, act);
  ConvTranspose2d deconv(ps, "d", in, out, kernel, stride, pad, act);
  ps.finalize(Device::CPU);
  const int wi = transposed ? ps.find("d.weight") : ps.find("c.weight");
  const int bi = transposed ? ps.find("d.bias") : ps.find("c.bias");
  std::copy(wv.begin(), wv.end(), ps.value(wi).data());
  std::copy(bv.begin(), bv.end(), ps.value(bi).data());
  Tensor x = Tensor::from_vector(xv, {n, in, hw, hw});
  LayerRun r;
  // Two passes: the second reuses the primitives and must give the same result.
  for (int pass = 0; pass < 2; ++pass) {
    Tensor& y = transposed ? deconv.forward(ctx, x) : conv.forward(ctx, x);
    EXPECT_EQ(static_cast<size_t>(y.numel()), dyv.size());
    std::vector<float> yv = y.to_vector();
    Tensor dy = Tensor::from_vector(dyv, y.shape());
    Tensor& dx = transposed ? deconv.backward(ctx, dy, true) : conv.backward(ctx, dy, true);
    LayerRun now{yv, dx.to_vector(), ps.grad(wi).to_vector(), ps.grad(bi).to_vector()};
    if (pass == 1) {
      EXPECT_EQ(now.y, r.y);
      EXPECT_EQ(now.dx, r.dx);
      EXPECT_EQ(now.dw, r.dw);
    }
    r = now;
  }
  return r;
}

struct ConvCase {
  bool transposed;
  int64_t n, in, out, hw, kernel, stride, pad;
};

// The models' geometries (VAE encoder/decoder 4×4 stride 2; ResNet 3×3 stride 1 and 2, 1×1
// stride 2 shortcut, the stem) and a few odd ones.
const ConvCase kCases[] = {
    {false, 3, 1, 32, 28, 4, 2, 1},  {false, 3, 32, 64, 14, 4, 2, 1}, {true, 3, 64, 32, 7, 4, 2, 1},
    {true, 3, 32, 1, 14, 4, 2, 1},   {false, 2, 16, 16, 7, 3, 1, 1},  {false, 2, 16, 32, 7, 3, 2, 1},
    {false, 2, 16, 32, 7, 1, 2, 0},  {false, 2, 1, 16, 28, 3, 1, 1},  {false, 1, 3, 5, 9, 5, 3, 2},
    {true, 2, 5, 3, 6, 3, 1, 1},     {false, 5, 24, 40, 4, 3, 1, 1},
};

}  // namespace

TEST(Onednn, ContextChoosesTheBackend) {
  Context ref(DeviceRequest::CPU, CpuBackend::Reference);
  EXPECT_FALSE(ref.use_onednn());
  EXPECT_NE(ref.description().find("reference"), std::string::npos) << ref.description();
  EXPECT_EQ(parse_cpu_backend("reference"), CpuBackend::Reference);
  EXPECT_NE(test::error_of([] { parse_cpu_backend("mkl"); }).find("--cpu-backend: expected onednn, reference or emu"),
            std::string::npos);
  // The emulated CUDA device: the layers as the reference runs them, the kernels emulated.
  EXPECT_EQ(parse_cpu_backend("emu"), CpuBackend::Emu);
  Context emu(DeviceRequest::CPU, CpuBackend::Emu);
  EXPECT_FALSE(emu.use_onednn());
  EXPECT_FALSE(emu.is_cuda());
  EXPECT_NE(emu.description().find("emu"), std::string::npos) << emu.description();
  if (!onednn_built()) {
    EXPECT_NE(test::error_of([] { Context c(DeviceRequest::CPU, CpuBackend::OneDNN); }).find("no oneDNN"),
              std::string::npos);
    GTEST_SKIP() << "SKIPPED: this build has no oneDNN (libdnnl-dev)";
  }
  Context one(DeviceRequest::CPU, CpuBackend::OneDNN);
  EXPECT_TRUE(one.use_onednn());
  EXPECT_NE(one.description().find("onednn"), std::string::npos) << one.description();
}

// Random floats: oneDNN and the reference agree to float rounding on every geometry, in the
// output, dx, dw and db, through the bias and each kind of activation.
TEST(Onednn, ConvLayersMatchTheReference) {
  SKIP_WITHOUT_ONEDNN();
  uint64_t seed = 1;
  for (const ConvCase& k : kCases) {
    SCOPED_TRACE(::testing::Message() << (k.transposed ? "ConvTranspose2d" : "Conv2d") << " n " << k.n << " in "
                                      << k.in << " out " << k.out << " hw " << k.hw << " kernel " << k.kernel
                                      << " stride " << k.stride << " pad " << k.pad);
    const int64_t ho = k.transposed ? (k.hw - 1) * k.stride - 2 * k.pad + k.kernel
                                    : (k.hw + 2 * k.pad - k.kernel) / k.stride + 1;
    const auto x = random_values(static_cast<size_t>(k.n * k.in * k.hw * k.hw), -1, 1, seed++);
    const auto w = random_values(static_cast<size_t>(k.in * k.out * k.kernel * k.kernel), -0.5, 0.5, seed++);
    const auto b = random_values(static_cast<size_t>(k.out), -0.5, 0.5, seed++);
    const auto dy = random_values(static_cast<size_t>(k.n * k.out * ho * ho), -1, 1, seed++);
    // ReLU is fused into oneDNN's forward (post-op); sigmoid runs after it.
    for (Activation act : {Activation::None, Activation::ReLU, Activation::Sigmoid}) {
      LayerRun one = run_conv(CpuBackend::OneDNN, k.transposed, k.n, k.in, k.out, k.hw, k.kernel, k.stride, k.pad,
                              act, x, w, b, dy);
      LayerRun ref = run_conv(CpuBackend::Reference, k.transposed, k.n, k.in, k.out, k.hw, k.kernel, k.stride,
                              k.pad, act, x, w, b, dy);
      EXPECT_TRUE(float_close(one.y, ref.y)) << "y";
      EXPECT_TRUE(float_close(one.dx, ref.dx)) << "dx";
      EXPECT_TRUE(float_close(one.dw, ref.dw)) << "dw";
      EXPECT_TRUE(float_close(one.db, ref.db)) << "db";
    }
  }
}

// Small integers: every sum is exact in float, so both paths give the same numbers bit for bit.
TEST(Onednn, ConvLayersAreExactOnSmallIntegers) {
  SKIP_WITHOUT_ONEDNN();
  uint32_t seed = 100;
  for (const ConvCase& k : kCases) {
    SCOPED_TRACE(::testing::Message() << (k.transposed ? "ConvTranspose2d" : "Conv2d") << " in " << k.in << " out "
                                      << k.out << " hw " << k.hw << " kernel " << k.kernel);
    const int64_t ho = k.transposed ? (k.hw - 1) * k.stride - 2 * k.pad + k.kernel
                                    : (k.hw + 2 * k.pad - k.kernel) / k.stride + 1;
    const auto x = small_ints(static_cast<size_t>(k.n * k.in * k.hw * k.hw), seed++);
    const auto w = small_ints(static_cast<size_t>(k.in * k.out * k.kernel * k.kernel), seed++);
    const auto b = small_ints(static_cast<size_t>(k.out), seed++);
    const auto dy = small_ints(static_cast<size_t>(k.n * k.out * ho * ho), seed++);
    LayerRun one = run_conv(CpuBackend::OneDNN, k.transposed, k.n, k.in, k.out, k.hw, k.kernel, k.stride, k.pad,
                            Activation::None, x, w, b, dy);
    LayerRun ref = run_conv(CpuBackend::Reference, k.transposed, k.n, k.in, k.out, k.hw, k.kernel, k.stride, k.pad,
                            Activation::None, x, w, b, dy);
    EXPECT_EQ(one.y, ref.y);
    EXPECT_EQ(one.dx, ref.dx);
    EXPECT_EQ(one.dw, ref.dw);
    EXPECT_EQ(one.db, ref.db);
  }
}

// The oneDNN convolution's gradients by central differences of L = Σ r·y. L is linear in x and
// in w, so a large step h = 0.5 has no truncation error and float rounding stays small.
TEST(Onednn, ConvGradientsMatchCentralDifferences) {
  SKIP_WITHOUT_ONEDNN();
  for (bool transposed : {false, true}) {
    SCOPED_TRACE(transposed ? "ConvTranspose2d" : "Conv2d");
    Context ctx(DeviceRequest::CPU, CpuBackend::OneDNN);
    ParamStore ps;
    Conv2d conv(ps, "c", 3, 4, 3, 2, 1);
    ConvTranspose2d deconv(ps, "d", 3, 4, 4, 2, 1);
    ps.finalize(Device::CPU);
    ps.init_default(3);
    const int wi = ps.find(transposed ? "d.weight" : "c.weight");
    Tensor x = Tensor::from_vector(random_values(2 * 3 * 5 * 5, -1, 1, 7), {2, 3, 5, 5});
    auto fwd = [&]() -> Tensor& { return transposed ? deconv.forward(ctx, x) : conv.forward(ctx, x); };
    const std::vector<float> r = random_values(static_cast<size_t>(fwd().numel()), -1, 1, 8);
    auto loss = [&] {
      const std::vector<float> y = fwd().to_vector();
      double s = 0;
      for (size_t i = 0; i < y.size(); ++i) s += static_cast<double>(r[i]) * y[i];
      return s;
    };
    Tensor& y = fwd();
    Tensor dy = Tensor::from_vector(r, y.shape());
    const std::vector<float> dx = (transposed ? deconv.backward(ctx, dy, true) : conv.backward(ctx, dy, true)).to_vector();
    const std::vector<float> dw = ps.grad(wi).to_vector();
    const float h = 0.5f;
    auto numeric = [&](float* p, size_t i) { return central_difference(p, i, h, loss); };
    for (size_t i = 0; i < dx.size(); i += 3)
      EXPECT_NEAR(numeric(x.data(), i), dx[i], 1e-4 + 1e-4 * std::fabs(dx[i])) << "dx[" << i << "]";
    for (size_t i = 0; i < dw.size(); i += 2)
      EXPECT_NEAR(numeric(ps.value(wi).data(), i), dw[i], 1e-4 + 1e-4 * std::fabs(dw[i])) << "dw[" << i << "]";
  }
}

namespace {
struct BnRun {
  std::vector<float> y, dx, dgamma, dbeta, running_mean, running_var, y_eval;
};

BnRun run_bn(CpuBackend backend, int64_t n, int64_t c, int64_t hw, Activation act, const std::vector<float>& xv,
             const std::vector<float>& gamma, const std::vector<float>& beta, const std::vector<float>& dyv) {
  Context ctx(DeviceRequest::CPU, backend);
  ParamStore ps, buf;
  BatchNorm2d bn(ps, buf, "bn", c, act);
  ps.finalize(Device::CPU);
  buf.finalize(Device::CPU);
  bn.reset();
  std::copy(gamma.begin(), gamma.end(), ps.value(ps.find("bn.weight")).data());
  std::copy(beta.begin(), beta.end(), ps.value(ps.find("bn.bias")).data());
  Tensor x = Tensor::from_vector(xv, {n, c, hw, hw});
  BnRun r;
  for (int step = 0; step < 2; ++step) {  // two steps: the running statistics move twice
    r.y = bn.forward(ctx, x, true).to_vector();
    Tensor dy = Tensor::from_vector(dyv, {n, c, hw, hw});
    r.dx = bn.backward(ctx, dy, true).to_vector();
  }
  r.dgamma = ps.grad(ps.find("bn.weight")).to_vector();
  r.dbeta = ps.grad(ps.find("bn.bias")).to_vector();
  r.running_mean = buf.value(buf.find("bn.running_mean")).to_vector();
  r.running_var = buf.value(buf.find("bn.running_var")).to_vector();
  r.y_eval = bn.forward(ctx, x, false).to_vector();
  return r;
}
}  // namespace

// Training and evaluation forward, backward and the running statistics (PyTorch's momentum
// average of the unbiased variance) agree with the reference to float rounding.
TEST(Onednn, BatchNormMatchesTheReference) {
  SKIP_WITHOUT_ONEDNN();
  struct Case {
    int64_t n, c, hw;
  };
  uint64_t seed = 40;
  for (Case k : {Case{4, 3, 5}, Case{8, 16, 7}, Case{2, 64, 4}, Case{64, 8, 1}}) {
    SCOPED_TRACE(::testing::Message() << "n " << k.n << " c " << k.c << " hw " << k.hw);
    const size_t numel = static_cast<size_t>(k.n * k.c * k.hw * k.hw);
    const auto x = random_values(numel, -2, 3, seed++);
    const auto g = random_values(static_cast<size_t>(k.c), 0.5, 1.5, seed++);
    const auto b = random_values(static_cast<size_t>(k.c), -0.5, 0.5, seed++);
    const auto dy = random_values(numel, -1, 1, seed++);
    for (Activation act : {Activation::None, Activation::ReLU}) {
      BnRun one = run_bn(CpuBackend::OneDNN, k.n, k.c, k.hw, act, x, g, b, dy);
      BnRun ref = run_bn(CpuBackend::Reference, k.n, k.c, k.hw, act, x, g, b, dy);
      EXPECT_TRUE(all_close(one.y, ref.y, 2e-5, 2e-5)) << "y";
      EXPECT_TRUE(all_close(one.dx, ref.dx, 2e-5, 2e-4)) << "dx";
      EXPECT_TRUE(all_close(one.dgamma, ref.dgamma, 1e-4, 1e-5)) << "dgamma";
      EXPECT_TRUE(all_close(one.dbeta, ref.dbeta, 1e-4, 1e-5)) << "dbeta";
      EXPECT_TRUE(all_close(one.running_mean, ref.running_mean, 1e-6, 1e-5)) << "running_mean";
      EXPECT_TRUE(all_close(one.running_var, ref.running_var, 1e-6, 1e-5)) << "running_var";
      EXPECT_TRUE(all_close(one.y_eval, ref.y_eval, 2e-5, 2e-5)) << "y (eval)";
    }
  }
}

// The oneDNN batch norm's dx by central differences of L = Σ r·y in training mode (the
// statistics depend on x), with the loss summed in double.
TEST(Onednn, BatchNormGradientMatchesCentralDifferences) {
  SKIP_WITHOUT_ONEDNN();
  Context ctx(DeviceRequest::CPU, CpuBackend::OneDNN);
  ParamStore ps, buf;
  BatchNorm2d bn(ps, buf, "bn", 3);
  ps.finalize(Device::CPU);
  buf.finalize(Device::CPU);
  bn.reset();
  const auto g = random_values(3, 0.5, 1.5, 51);
  std::copy(g.begin(), g.end(), ps.value(ps.find("bn.weight")).data());
  Tensor x = Tensor::from_vector(random_values(4 * 3 * 3 * 3, -2, 2, 52), {4, 3, 3, 3});
  const auto r = random_values(static_cast<size_t>(x.numel()), -1, 1, 53);
  auto loss = [&] {
    const std::vector<float> y = bn.forward(ctx, x, true).to_vector();
    double s = 0;
    for (size_t i = 0; i < y.size(); ++i) s += static_cast<double>(r[i]) * y[i];
    return s;
  };
  loss();
  Tensor dy = Tensor::from_vector(r, x.shape());
  const std::vector<float> dx = bn.backward(ctx, dy, true).to_vector();
  const std::vector<float> dgamma = ps.grad(ps.find("bn.weight")).to_vector();
  const float h = 1e-2f;
  for (size_t i = 0; i < dx.size(); ++i)
    EXPECT_NEAR(central_difference(x.data(), i, h, loss), dx[i], 2e-3 + 1e-2 * std::fabs(dx[i])) << "dx[" << i << "]";
  float* gp = ps.value(ps.find("bn.weight")).data();
  for (size_t k = 0; k < 3; ++k)
    EXPECT_NEAR(central_difference(gp, k, h, loss), dgamma[k], 2e-3 + 1e-3 * std::fabs(dgamma[k]))
        << "dgamma[" << k << "]";
}

namespace {
struct Steps {
  std::vector<float> first_grads, weights;  // gradients of the first step, weights after the last
};

// Three Adam steps of the ConvVAE (or CVAE) from the same weights and batch.
Steps vae_steps(CpuBackend backend, VaeKind kind) {
  Context ctx(DeviceRequest::CPU, backend);
  VaeConfig cfg;
  cfg.latent = 8;
  cfg.kind = kind;
  if (kind == VaeKind::Cvae) cfg.classes = 10;
  ConvVAE m(cfg, Device::CPU);
  m.init(4);
  Tensor x = Tensor::from_vector(random_values(6 * 784, 0, 1, 9), {6, 1, 28, 28});
  const IntBuffer labels = IntBuffer::from_vector({0, 3, 9, 1, 4, 4});
  Tensor mm({m.params().flat_values().numel()}), vv({m.params().flat_values().numel()});
  Steps out;
  for (int s = 0; s < 3; ++s) {
    m.forward(ctx, x, true, 5, 2 * s, kind == VaeKind::Cvae ? &labels : nullptr);
    m.loss(ctx, x, true, 5, 2 * s + 1);
    m.backward(ctx);
    if (s == 0) out.first_grads = m.params().flat_grads().to_vector();
    AdamConfig ac;
    ac.step = s + 1;
    adam_step(ctx, m.params().flat_values(), m.params().flat_grads(), mm, vv, ac);
  }
  out.weights = m.params().flat_values().to_vector();
  return out;
}

// Three SGD steps of a width-8 ResNet-18; the weights and running statistics after the last.
// `blocked`: the oneDNN backend keeps the activations in its blocked layouts (the default).
Steps resnet_steps(CpuBackend backend, bool blocked = true) {
  Context ctx(DeviceRequest::CPU, backend);
  ResNetConfig c;
  c.channels = 1;
  c.height = c.width = 16;
  c.base_width = 8;
  ResNet18 m(c, Device::CPU);
  m.init(2);
  m.set_blocked_layouts(blocked);
  Tensor x = Tensor::from_vector(random_values(8 * 256, 0, 1, 12), {8, 1, 16, 16});
  const IntBuffer labels = IntBuffer::from_vector({0, 1, 2, 3, 4, 5, 6, 7});
  Tensor buf({m.params().flat_values().numel()});
  SgdConfig sc;
  sc.lr = 0.05f;
  Steps out;
  for (int s = 0; s < 3; ++s) {
    m.forward(ctx, x, true);
    m.loss(ctx, labels, true);
    m.backward(ctx);
    if (s == 0) out.first_grads = m.params().flat_grads().to_vector();
    sgd_step(ctx, m.params().flat_values(), m.params().flat_grads(), buf, sc);
  }
  out.weights = m.params().flat_values().to_vector();
  const std::vector<float> bufs = m.buffers().flat_values().to_vector();
  out.weights.insert(out.weights.end(), bufs.begin(), bufs.end());
  return out;
}

// The first step's gradients agree to float rounding (relative to the largest gradient), and
// the weights after three steps within `weight_atol`: Adam divides by √v, so a gradient near 0
// whose rounding differs can move its weight by up to the learning rate per step.
void expect_steps_close(const Steps& one, const Steps& ref, double weight_atol) {
  EXPECT_TRUE(all_close(one.first_grads, ref.first_grads, 1e-4 * max_abs(ref.first_grads), 1e-3)) << "gradients";
  EXPECT_TRUE(all_close(one.weights, ref.weights, weight_atol, 1e-4)) << "weights after three steps";
}
}  // namespace

TEST(Onednn, VaeTrainingStepsMatchTheReference) {
  SKIP_WITHOUT_ONEDNN();
  for (VaeKind kind : {VaeKind::Vae, VaeKind::Cvae}) {
    SCOPED_TRACE(kind == VaeKind::Vae ? "vae" : "cvae");
    const Steps one = vae_steps(CpuBackend::OneDNN, kind);
    const Steps ref = vae_steps(CpuBackend::Reference, kind);
    expect_steps_close(one, ref, 3e-3);  // 3 Adam steps of lr 1e-3
    EXPECT_EQ(one.weights, vae_steps(CpuBackend::OneDNN, kind).weights) << "oneDNN is not bit-identical run to run";
  }
}

TEST(Onednn, ResNetTrainingStepsMatchTheReference) {
  SKIP_WITHOUT_ONEDNN();
  const Steps one = resnet_steps(CpuBackend::OneDNN);
  const Steps ref = resnet_steps(CpuBackend::Reference);
  expect_steps_close(one, ref, 1e-4);
  expect_steps_close(resnet_steps(CpuBackend::OneDNN, false), ref, 1e-4);  // every activation NCHW
  EXPECT_EQ(one.weights, resnet_steps(CpuBackend::OneDNN).weights) << "oneDNN is not bit-identical run to run";
}

// The blocked layouts between the ResNet's layers: in use on the oneDNN backend (nChw16c on
// AVX-512, nChw8c on AVX2 for 16 channels and more), plain on the reference; what leaves the model
// (logits, layer outputs and Grad-CAM's layer gradients, through an evaluation-mode backward) is
// plain NCHW and equals the reference's.
TEST(Onednn, ResNetKeepsBlockedLayoutsInsideAndPlainOutside) {
  SKIP_WITHOUT_ONEDNN();
  ResNetConfig c;
  c.channels = 1;
  c.height = c.width = 12;
  c.base_width = 16;
  struct Out {
    std::vector<float> logits, grad_logits_wrt_x;
    std::vector<std::vector<float>> outputs, grads;
    std::vector<Layout> layouts;
  };
  auto run = [&](CpuBackend backend) {
    Context ctx(DeviceRequest::CPU, backend);
    ResNet18 m(c, Device::CPU);
    m.init(4);
    Tensor x = Tensor::from_vector(random_values(3 * 144, 0, 1, 31), {3, 1, 12, 12});
    m.forward(ctx, x, true);  // running statistics that differ from the initial ones
    Out o;
    o.logits = m.forward(ctx, x, false).to_vector();
    std::vector<float> onehot(3 * 10, 0.0f);
    for (int i = 0; i < 3; ++i) onehot[static_cast<size_t>(i * 10 + i + 2)] = 1.0f;  // class i+2's score
    memcpy_any(m.dlogits().data(), Device::CPU, onehot.data(), Device::CPU, onehot.size() * sizeof(float));
    m.backward(ctx);
    for (int L = 1; L <= 4; ++L) {
      o.layouts.push_back(m.layer_layout(L));
      EXPECT_EQ(m.layer_output(L).layout(), Layout::Plain);
      EXPECT_EQ(m.layer_grad(L).layout(), Layout::Plain);
      o.outputs.push_back(m.layer_output(L).to_vector());
      o.grads.push_back(m.layer_grad(L).to_vector());
    }
    // forward_from on a plain activation (Grad-CAM's checks) gives the same logits.
    Tensor a2 = m.layer_output(2).clone();
    o.grad_logits_wrt_x = m.forward_from(ctx, 2, a2).to_vector();
    return o;
  };
  const Out one = run(CpuBackend::OneDNN), ref = run(CpuBackend::Reference);
  for (int L = 1; L <= 4; ++L) {
    SCOPED_TRACE(::testing::Message() << "layer " << L);
    EXPECT_EQ(ref.layouts[static_cast<size_t>(L - 1)], Layout::Plain);
    EXPECT_NE(one.layouts[static_cast<size_t>(L - 1)], Layout::Plain) << "oneDNN left layer " << L << " in NCHW";
    EXPECT_TRUE(all_close(one.outputs[static_cast<size_t>(L - 1)], ref.outputs[static_cast<size_t>(L - 1)], 1e-4, 1e-3));
    EXPECT_TRUE(all_close(one.grads[static_cast<size_t>(L - 1)], ref.grads[static_cast<size_t>(L - 1)],
                          1e-4 * max_abs(ref.grads[static_cast<size_t>(L - 1)]), 1e-3));
  }
  EXPECT_TRUE(all_close(one.logits, ref.logits, 1e-4, 1e-3));
  EXPECT_TRUE(all_close(one.grad_logits_wrt_x, one.logits, 1e-5, 1e-5));
  EXPECT_TRUE(all_close(ref.grad_logits_wrt_x, ref.logits, 1e-5, 1e-5));
}
