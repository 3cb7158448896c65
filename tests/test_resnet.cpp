// ResNet18 (names, shapes, gradients, checkpoints, allocation-free steps), its learning-rate
// schedules, Grad-CAM against finite differences, class-anchored sampling and the Fréchet distance.
#include <gtest/gtest.h>

#include <cmath>
#include <numeric>

#include "io/safetensors.h"
#include "jobs/anchor.h"
#include "jobs/classifier_trainer.h"
#include "jobs/explain.h"
#include "jobs/validate.h"
#include "kernels/gradcam.h"
#include "models/checkpoint.h"
#include "models/resnet18.h"
#include "temp_dir.h"
#include "test_util.h"

namespace cuvae {
namespace {

using test::all_close;
using test::error_of;

ResNetConfig tiny_config(int64_t width = 2, int64_t hw = 12) {
  ResNetConfig c;
  c.channels = 1;
  c.height = hw;
  c.width = hw;
  c.classes = 10;
  c.base_width = width;
  return c;
}

Tensor random_images(int64_t n, const ResNetConfig& c, uint64_t seed) {
  return Tensor::from_vector(test::random_values(static_cast<size_t>(n * c.channels * c.height * c.width), 0.0, 1.0, seed),
                             {n, c.channels, c.height, c.width});
}

TEST(ResNet18, StandardNetworkHasTorchvisionNamesAndSize) {
  ResNetConfig c;  // 1×28×28, width 64, 10 classes
  ResNet18 m(c, Device::CPU);
  // torchvision.models.resnet18(num_classes=10) with conv1 = Conv2d(1, 64, 3, 1, 1, bias=False):
  // 11,172,810 parameters and 122 state_dict entries.
  EXPECT_EQ(m.params().count(), 11172810);
  const size_t entries = m.params().params().size() + m.buffers().params().size() + m.batchnorm_names().size();
  EXPECT_EQ(entries, 122u);
  EXPECT_GE(m.params().find("conv1.weight"), 0);
  EXPECT_LT(m.params().find("conv1.bias"), 0);
  EXPECT_GE(m.params().find("layer2.0.downsample.0.weight"), 0);
  EXPECT_GE(m.params().find("layer4.1.bn2.bias"), 0);
  EXPECT_LT(m.params().find("layer1.0.downsample.0.weight"), 0);
  EXPECT_GE(m.buffers().find("layer3.0.downsample.1.running_var"), 0);
  EXPECT_EQ(m.params().params()[static_cast<size_t>(m.params().find("fc.weight"))].shape, (std::vector<int64_t>{10, 512}));
  EXPECT_EQ(m.params().params()[static_cast<size_t>(m.params().find("layer3.0.conv1.weight"))].shape,
            (std::vector<int64_t>{256, 128, 3, 3}));
  EXPECT_EQ(m.batchnorm_names().size(), 20u);
}

TEST(ResNet18, StepFlopsCountEveryProductFromTheLayerShapes) {
  ResNetConfig c;  // the standard network at 28×28
  ResNet18 m(c, Device::CPU);
  m.init(1);
  EXPECT_EQ(m.step_flops().total(), 0.0);  // nothing run yet
  Context ctx(DeviceRequest::CPU);
  m.forward(ctx, random_images(2, c, 5), false);
  // Per image, counted by hand from the shapes (2 FLOPs per multiply-add): conv1 1→64 at 28²
  // (451,584 MACs, no data gradient); layer1 4 × 64→64 3×3 at 28²; layer2..4 with their strided
  // first convs and 1×1 downsamples at 14², 7² and 4²; fc 512→10. 455,800,832 MACs in all.
  const StepFlops f = m.step_flops();
  EXPECT_DOUBLE_EQ(f.forward, 2 * 911601664.0);
  EXPECT_DOUBLE_EQ(f.backward, 2 * (2 * 911601664.0 - 2 * 451584.0));
  EXPECT_DOUBLE_EQ(f.total(), 2 * 2733901824.0);
}

TEST(ResNet18, ForwardShapesAndLayerOutputs) {
  ResNetConfig c = tiny_config(4, 28);
  ResNet18 m(c, Device::CPU);
  m.init(3);
  Context ctx(DeviceRequest::CPU);
  Tensor x = random_images(3, c, 1);
  Tensor& logits = m.forward(ctx, x, false);
  EXPECT_EQ(logits.shape(), (std::vector<int64_t>{3, 10}));
  EXPECT_EQ(m.layer_output(1).shape(), (std::vector<int64_t>{3, 4, 28, 28}));
  EXPECT_EQ(m.layer_output(2).shape(), (std::vector<int64_t>{3, 8, 14, 14}));
  EXPECT_EQ(m.layer_output(3).shape(), (std::vector<int64_t>{3, 16, 7, 7}));
  EXPECT_EQ(m.layer_output(4).shape(), (std::vector<int64_t>{3, 32, 4, 4}));
  EXPECT_EQ(m.features().shape(), (std::vector<int64_t>{3, 32}));
  for (float v : logits.to_vector()) EXPECT_TRUE(std::isfinite(v));
  EXPECT_CONTAINS(error_of([&] { m.forward(ctx, Tensor({2, 1, 32, 32}), false); }), "expected [n, 1, 28, 28]");
}

TEST(ResNet18, InitMatchesTorchvisionScheme) {
  ResNetConfig c;
  ResNet18 m(c, Device::CPU);
  m.init(7);
  auto values = [&](const std::string& name) {
    return m.params().value(m.params().find(name)).to_vector();
  };
  // kaiming_normal_(fan_out, relu): std = sqrt(2 / (256·9)) for layer3's 3×3 convs.
  std::vector<float> w = values("layer3.1.conv1.weight");
  double ss = 0;
  for (float v : w) ss += double(v) * v;
  EXPECT_NEAR(std::sqrt(ss / w.size()), std::sqrt(2.0 / (256 * 9)), 0.002);
  for (float v : values("layer2.0.bn1.weight")) EXPECT_EQ(v, 1.0f);
  for (float v : values("layer2.0.bn1.bias")) EXPECT_EQ(v, 0.0f);
  for (float v : m.buffers().value(m.buffers().find("bn1.running_var")).to_vector()) EXPECT_EQ(v, 1.0f);
  for (float v : values("fc.weight")) EXPECT_LE(std::fabs(v), 1.0 / std::sqrt(512.0));
}

// The backward pass against central differences of the batch-mean cross-entropy (training mode:
// batch statistics), along each parameter tensor's own gradient direction g_T/|g_T| (where the
// derivative must equal |g_T|) and along random directions. Directions, not single elements, so
// that the few ReLU kinks a step crosses average out in float; three step sizes, as a kink only
// spoils the larger ones.
TEST(ResNet18, GradientsMatchFiniteDifferences) {
  ResNetConfig c = tiny_config(4, 12);
  ResNet18 m(c, Device::CPU);
  m.init(11);
  Context ctx(DeviceRequest::CPU);
  Tensor x = random_images(16, c, 2);
  std::vector<int32_t> y(16);
  for (int i = 0; i < 16; ++i) y[static_cast<size_t>(i)] = (i * 7) % 10;
  const IntBuffer labels = IntBuffer::from_vector(y);
  m.forward(ctx, x, true);
  m.loss(ctx, labels, true);
  m.backward(ctx);
  const std::vector<float> g = m.params().flat_grads().to_vector();
  const std::vector<float> base = m.params().flat_values().to_vector();
  auto loss_along = [&](const std::vector<double>& v, double t) {
    std::vector<float> p = base;
    for (size_t i = 0; i < p.size(); ++i) p[i] = static_cast<float>(base[i] + t * v[i]);
    memcpy_any(m.params().flat_values().data(), Device::CPU, p.data(), Device::CPU, p.size() * sizeof(float));
    m.forward(ctx, x, true);
    m.loss(ctx, labels, false);
    return static_cast<double>(m.mean_loss().to_vector()[0]);
  };
  auto check = [&](const std::vector<double>& v, const std::string& what) {
    double gv = 0;
    for (size_t i = 0; i < v.size(); ++i) gv += g[i] * v[i];
    // A wrong gradient misses at every step; a ReLU kink only spoils the larger steps.
    double best = 1e30, best_fd = 0;
    for (double h : {1e-3, 3e-4, 1e-4}) {
      const double fd = (loss_along(v, h) - loss_along(v, -h)) / (2 * h);
      if (std::fabs(fd - gv) < best) best = std::fabs(fd - gv), best_fd = fd;
    }
    EXPECT_LE(best, 1e-3 + 0.03 * std::fabs(gv)) << what << ": backward " << gv << ", closest difference " << best_fd;
  };
  int tensors = 0;
  for (const ParamInfo& p : m.params().params()) {
    std::vector<double> v(g.size(), 0.0);
    double norm = 0;
    for (int64_t j = 0; j < p.numel; ++j) norm += double(g[static_cast<size_t>(p.offset + j)]) * g[static_cast<size_t>(p.offset + j)];
    norm = std::sqrt(norm);
    if (norm < 1e-3) continue;  // too small a signal for float differences
    for (int64_t j = 0; j < p.numel; ++j) v[static_cast<size_t>(p.offset + j)] = g[static_cast<size_t>(p.offset + j)] / norm;
    check(v, p.name);
    ++tensors;
  }
  EXPECT_GE(tensors, 40);
  for (uint64_t seed : {1u, 2u, 3u}) {
    std::vector<double> v = test::random_values<double>(g.size(), -1.0, 1.0, seed);
    double norm = 0;
    for (double e : v) norm += e * e;
    for (double& e : v) e /= std::sqrt(norm);
    check(v, "random direction " + std::to_string(seed));
  }
}

namespace {

// One training step's forward, loss and backward, `steps` times; returns the tensors allocated.
int64_t allocations_in_steps(ResNet18& m, Context& ctx, Tensor& x, const IntBuffer& labels, int steps) {
  const int64_t before = allocation_count();
  for (int s = 0; s < steps; ++s) {
    m.forward(ctx, x, true);
    m.loss(ctx, labels, true);
    m.backward(ctx);
  }
  return allocation_count() - before;
}

}  // namespace

// A training step from the same weights and data is deterministic, updates the running
// statistics and num_batches_tracked, and once warm allocates nothing.
TEST(ResNet18, TrainingStepIsDeterministicAndAllocationFree) {
  ResNetConfig c = tiny_config(2, 12);
  Context ctx(DeviceRequest::CPU);
  Tensor x = random_images(8, c, 5);
  const IntBuffer labels = IntBuffer::from_vector({0, 1, 2, 3, 4, 5, 6, 7});
  std::vector<float> first;
  for (int run = 0; run < 2; ++run) {
    ResNet18 m(c, Device::CPU);
    m.init(1);
    allocations_in_steps(m, ctx, x, labels, 1);
    EXPECT_EQ(allocations_in_steps(m, ctx, x, labels, 2), 0) << "a steady-state step allocated";
    EXPECT_EQ(m.num_batches_tracked(), 3);
    std::vector<float> rm = m.buffers().value(m.buffers().find("bn1.running_mean")).to_vector();
    EXPECT_NE(rm[0], 0.0f);
    if (run == 0)
      first = m.params().flat_grads().to_vector();
    else
      EXPECT_EQ(first, m.params().flat_grads().to_vector());
  }
}

// The oneDNN backend keeps the activations in its blocked layout (width 16: 16 or 32 channels per
// layer), where every layer's buffers must also be reused from step to step.
TEST(ResNet18, OnednnTrainingStepIsAllocationFree) {
  if (!onednn_built()) GTEST_SKIP() << "SKIPPED: this build has no oneDNN (libdnnl-dev)";
  ResNetConfig c = tiny_config(16, 12);
  Context ctx(DeviceRequest::CPU, CpuBackend::OneDNN);
  Tensor x = random_images(4, c, 5);
  const IntBuffer labels = IntBuffer::from_vector({0, 1, 2, 3});
  ResNet18 m(c, Device::CPU);
  m.init(1);
  allocations_in_steps(m, ctx, x, labels, 1);
  EXPECT_EQ(allocations_in_steps(m, ctx, x, labels, 2), 0) << "a steady-state step allocated";
}

TEST(ResNet18, CheckpointRoundTripAndWrongKind) {
  cuvae::testing::ScopedTempDir dir;
  ResNetConfig c = tiny_config(2, 12);
  c.dataset = "mnist";
  Context ctx(DeviceRequest::CPU);
  ResNet18 m(c, Device::CPU);
  m.init(9);
  Tensor x = random_images(4, c, 6);
  m.forward(ctx, x, true);  // moves the running statistics
  m.forward(ctx, x, true);
  const std::string path = dir.path() + "/model.safetensors";
  save_resnet(path, m);
  SafetensorsFile f = read_safetensors(path);
  EXPECT_EQ(f.at("layer1.0.bn1.num_batches_tracked").dtype, "I64");
  EXPECT_TRUE(f.at("layer1.0.bn1.num_batches_tracked").shape.empty());
  EXPECT_EQ(f.i64("bn1.num_batches_tracked", {}).at(0), 2);
  auto loaded = load_resnet(path, Device::CPU);
  EXPECT_EQ(loaded->num_batches_tracked(), 2);
  const std::vector<float> a = m.forward(ctx, x, false).to_vector();
  const std::vector<float> b = loaded->forward(ctx, x, false).to_vector();
  EXPECT_EQ(a, b);
  // A VAE checkpoint is not a classifier, and the reverse.
  VaeConfig vc;
  ConvVAE vae(vc, Device::CPU);
  const std::string vpath = dir.path() + "/vae.safetensors";
  save_params(vpath, vae.params(), vc.to_json());
  EXPECT_CONTAINS(error_of([&] { load_resnet(vpath, Device::CPU); }), "is a VAE checkpoint");
  EXPECT_CONTAINS(error_of([&] { load_vae(path, Device::CPU); }), "is a classifier checkpoint");
}

TEST(LrSchedule, OneCycleMatchesPyTorch) {
  // torch.optim.lr_scheduler.OneCycleLR(max_lr=0.1, total_steps=20), PyTorch 1.13.
  const double ref[20] = {0.004, 0.0131671843, 0.0371671843, 0.0668328157, 0.0908328157, 0.1, 0.0987464006,
                          0.0950484632, 0.0890916178, 0.0811745654, 0.0716943002, 0.0611262022, 0.0500002,
                          0.0388741978, 0.0283060998, 0.0188258346, 0.0109087822, 0.0049519368, 0.0012539994, 4e-07};
  for (int s = 0; s < 20; ++s) EXPECT_NEAR(lr_at("onecycle", 0.1, s, 20), ref[s], 1e-9) << "step " << s;
  EXPECT_DOUBLE_EQ(lr_at("cosine", 0.2, 0, 10), 0.2);
  EXPECT_NEAR(lr_at("cosine", 0.2, 5, 10), 0.1, 1e-12);
  EXPECT_DOUBLE_EQ(lr_at("constant", 0.3, 7, 10), 0.3);
  EXPECT_CONTAINS(error_of([] { lr_at("step", 0.1, 0, 10); }), "unknown learning-rate schedule 'step'");
}

// Grad-CAM's gradient (from backward) against the definition: central differences of the
// class score with respect to each activation of layer3 / layer4.
TEST(GradCam, ModelGradientsMatchFiniteDifferencesOfTheClassScore) {
  ResNetConfig c = tiny_config(2, 12);
  ResNet18 m(c, Device::CPU);
  m.init(21);
  Context ctx(DeviceRequest::CPU);
  Tensor warm = random_images(16, c, 8);
  for (int i = 0; i < 3; ++i) m.forward(ctx, warm, true);  // non-trivial running statistics
  Tensor x = random_images(2, c, 9);
  const int klass = 3;
  for (int layer : {4, 3}) {
    GradcamResult r = gradcam_explain(ctx, m, x, layer, klass);
    const std::vector<float> A = m.layer_output(layer).to_vector();
    const std::vector<float> dA = m.layer_grad(layer).to_vector();
    const std::vector<int64_t> shape = m.layer_output(layer).shape();
    // Finite differences on image 0's activations (the closest of two step sizes: a ReLU kink
    // in the layers above only spoils the larger one).
    const int64_t per = A.size() / 2;
    std::vector<float> fd(A.size(), 0.0f);
    std::vector<float> Ah = A;
    for (int64_t j = 0; j < per; ++j) {
      auto score = [&](float v) {
        Ah[static_cast<size_t>(j)] = v;
        Tensor t = Tensor::from_vector(Ah, shape);
        return static_cast<double>(m.forward_from(ctx, layer, t).to_vector()[klass]);
      };
      double best = 1e30;
      for (float h : {1e-3f, 2e-4f}) {
        const double d = (score(A[static_cast<size_t>(j)] + h) - score(A[static_cast<size_t>(j)] - h)) / (2.0 * h);
        if (std::fabs(d - dA[static_cast<size_t>(j)]) < best) {
          best = std::fabs(d - dA[static_cast<size_t>(j)]);
          fd[static_cast<size_t>(j)] = static_cast<float>(d);
        }
      }
      Ah[static_cast<size_t>(j)] = A[static_cast<size_t>(j)];
    }
    const std::vector<float> got(dA.begin(), dA.begin() + per), want(fd.begin(), fd.begin() + per);
    EXPECT_TRUE(all_close(got, want, 2e-3, 2e-2)) << "layer" << layer;
    // The heat map made from the finite-difference gradient matches the one explain() made.
    std::vector<float> heat_fd(static_cast<size_t>(c.height * c.width));
    gradcam_cpu<float>(A.data(), fd.data(), 1, shape[1], shape[2], shape[3], c.height, c.width, heat_fd.data(), nullptr);
    const std::vector<float> heat0(r.heat.begin(), r.heat.begin() + c.height * c.width);
    EXPECT_TRUE(all_close(heat0, heat_fd, 2e-2, 0.0)) << "layer" << layer;
    EXPECT_EQ(r.target[0], klass);
  }
}

TEST(Anchor, SamplesFollowTheClassGaussian) {
  AnchorStats s;
  s.classes = 2;
  s.latent = 2;
  s.count = {10, 10};
  s.mean = {1.0, -2.0, 5.0, 0.5};
  // class 1: covariance [[4, 1.2], [1.2, 1]]
  s.cov = {1, 0, 0, 1, 4.0, 1.2, 1.2, 1.0};
  const std::vector<float> z0 = sample_anchored(s, 1, 3, 0.0, 1);
  for (int i = 0; i < 3; ++i) {
    EXPECT_FLOAT_EQ(z0[static_cast<size_t>(2 * i)], 5.0f);
    EXPECT_FLOAT_EQ(z0[static_cast<size_t>(2 * i + 1)], 0.5f);
  }
  const int64_t n = 20000;
  const std::vector<float> z = sample_anchored(s, 1, n, 0.5, 2);
  double m0 = 0, m1 = 0, c00 = 0, c01 = 0, c11 = 0;
  for (int64_t i = 0; i < n; ++i) {
    m0 += z[static_cast<size_t>(2 * i)];
    m1 += z[static_cast<size_t>(2 * i + 1)];
  }
  m0 /= n;
  m1 /= n;
  for (int64_t i = 0; i < n; ++i) {
    const double a = z[static_cast<size_t>(2 * i)] - m0, b = z[static_cast<size_t>(2 * i + 1)] - m1;
    c00 += a * a;
    c01 += a * b;
    c11 += b * b;
  }
  EXPECT_NEAR(m0, 5.0, 0.03);
  EXPECT_NEAR(m1, 0.5, 0.02);
  EXPECT_NEAR(c00 / n, 0.25 * 4.0, 0.04);  // s² Σ
  EXPECT_NEAR(c01 / n, 0.25 * 1.2, 0.02);
  EXPECT_NEAR(c11 / n, 0.25 * 1.0, 0.01);
  EXPECT_CONTAINS(error_of([&] { sample_anchored(s, 2, 1, 0.5, 0); }), "class 2 is out of range");
  EXPECT_CONTAINS(error_of([&] { sample_anchored(s, -1, 1, 0.5, 0); }), "out of range");
}

/// Two classes in one latent dimension, no mixture.
AnchorStats two_class_stats() {
  AnchorStats s;
  s.classes = 2;
  s.latent = 1;
  s.count = {3, 4};
  s.mean = {0.25, -1.5};
  s.cov = {2.0, 0.125};
  return s;
}

TEST(Anchor, StatsRoundTripAndPath) {
  cuvae::testing::ScopedTempDir dir;
  AnchorStats s = two_class_stats();
  s.vae_fingerprint = "abc";
  save_anchor_stats(dir.path() + "/a.safetensors", s);
  AnchorStats r = load_anchor_stats(dir.path() + "/a.safetensors");
  EXPECT_EQ(r.mean, s.mean);
  EXPECT_EQ(r.cov, s.cov);
  EXPECT_EQ(r.count, s.count);
  EXPECT_EQ(r.vae_fingerprint, "abc");
  EXPECT_EQ(anchor_stats_path("runs/v/model.safetensors"), "runs/v/model.anchors.safetensors");
  EXPECT_EQ(anchor_stats_path("runs/v/model.bin"), "runs/v/model.bin.anchors.safetensors");
}

TEST(Anchor, MixtureSamplesFollowTheComponentsAndTheirWeights) {
  AnchorStats s;
  s.classes = 2;
  s.latent = 1;
  s.count = {100, 100};
  s.mean = {0.0, 0.0};
  s.cov = {1.0, 1.0};
  s.components = 3;
  // class 1: 1/4 at −10 (variance 4), 3/4 at +10 (variance 1), the third component unused
  s.mix_weight = {1.0, 0.0, 0.0, 0.25, 0.75, 0.0};
  s.mix_mean = {0.0, 0.0, 0.0, -10.0, 10.0, 1000.0};
  s.mix_cov = {1.0, 1.0, 1.0, 4.0, 1.0, 1.0};
  const int64_t n = 20000;
  const std::vector<float> z = sample_anchored(s, 1, n, 0.5, 3);
  int64_t low = 0;
  double sum_low = 0, sq_low = 0, sum_high = 0, sq_high = 0;
  for (float v : z) {
    ASSERT_LT(std::abs(v), 100.0f) << "the zero-weight component was drawn";
    if (v < 0) {
      ++low;
      sum_low += v;
      sq_low += double(v) * v;
    } else {
      sum_high += v;
      sq_high += double(v) * v;
    }
  }
  const double high = static_cast<double>(n - low);
  EXPECT_NEAR(double(low) / n, 0.25, 0.01);
  EXPECT_NEAR(sum_low / low, -10.0, 0.03);
  EXPECT_NEAR(sq_low / low - (sum_low / low) * (sum_low / low), 0.25 * 4.0, 0.05);  // s² Σ_m
  EXPECT_NEAR(sum_high / high, 10.0, 0.02);
  EXPECT_NEAR(sq_high / high - (sum_high / high) * (sum_high / high), 0.25 * 1.0, 0.02);
  // noise 0: the drawn components' means exactly; the same seed gives the same vectors
  for (float v : sample_anchored(s, 1, 50, 0.0, 4)) EXPECT_TRUE(v == -10.0f || v == 10.0f) << v;
  EXPECT_EQ(sample_anchored(s, 1, 64, 0.5, 9), sample_anchored(s, 1, 64, 0.5, 9));
  EXPECT_NE(sample_anchored(s, 1, 64, 0.5, 9), sample_anchored(s, 1, 64, 0.5, 10));
}

TEST(Anchor, MixtureStatsRoundTripAndBadWeightsAreRefused) {
  cuvae::testing::ScopedTempDir dir;
  AnchorStats s = two_class_stats();
  s.components = 2;
  s.mix_weight = {0.5, 0.5, 1.0, 0.0};
  s.mix_mean = {0.0, 0.5, -1.5, -1.5};
  s.mix_cov = {1.0, 1.5, 0.125, 0.125};
  s.vae_fingerprint = "abc";
  const std::string path = dir.path() + "/a.safetensors";
  save_anchor_stats(path, s);
  AnchorStats r = load_anchor_stats(path);
  EXPECT_EQ(r.components, 2);
  EXPECT_EQ(r.mix_weight, s.mix_weight);
  EXPECT_EQ(r.mix_mean, s.mix_mean);
  EXPECT_EQ(r.mix_cov, s.mix_cov);
  EXPECT_EQ(r.mean, s.mean);
  s.mix_weight = {0.5, 0.25, 1.0, 0.0};
  save_anchor_stats(path, s);
  EXPECT_CONTAINS(error_of([&] { load_anchor_stats(path); }), "'mix_weight' of class 0 sums to 0.75, not 1");
  // a file without mixture tensors (written before them, or with M = 1) reads as M = 1
  s.components = 1;
  save_anchor_stats(path, s);
  EXPECT_EQ(load_anchor_stats(path).components, 1);
}

TEST(Frechet, KnownValues) {
  // 1-D: (m1 − m2)² + (σ1 − σ2)².
  EXPECT_NEAR(frechet_distance({1.0}, {4.0}, {3.0}, {9.0}), 4.0 + 1.0, 1e-12);
  // Identical Gaussians: 0.
  std::vector<double> m = {0.5, -1.0, 2.0}, C = {2.0, 0.3, 0.1, 0.3, 1.0, -0.2, 0.1, -0.2, 0.5};
  EXPECT_NEAR(frechet_distance(m, C, m, C), 0.0, 1e-10);
  // Diagonal: Σ (√a − √b)² on the variances plus the squared mean distance.
  EXPECT_NEAR(frechet_distance({0, 0}, {1, 0, 0, 4}, {1, 1}, {4, 0, 0, 1}), 2.0 + 1.0 + 1.0, 1e-10);
  // Moments of rows.
  std::vector<double> mean, cov;
  feature_moments({1, 2, 3, 6}, 2, 2, mean, cov);
  EXPECT_EQ(mean, (std::vector<double>{2, 4}));
  EXPECT_EQ(cov, (std::vector<double>{1, 2, 2, 4}));
}

}  // namespace
}  // namespace cuvae
