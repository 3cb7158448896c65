// ConvVAE and its trainer on the CPU: parameter names and shapes as in PyTorch, checkpoint
// round trips and rejection, one training step lowering the loss, exact --resume, NaN stop.
#include <gtest/gtest.h>

#include <cmath>
#include <fstream>
#include <sstream>

#include "core/check.h"
#include "io/fs.h"
#include "io/safetensors.h"
#include "jobs/classifier_trainer.h"
#include "jobs/vae_trainer.h"
#include "kernels/adam.h"
#include "models/checkpoint.h"
#include "models/conv_vae.h"
#include "synthetic_data.h"
#include "temp_dir.h"
#include "test_util.h"

using namespace cuvae;

namespace {

using cuvae::test::write_synthetic_idx;

VaeTrainOptions small_options(const std::string& data, const std::string& out) {
  VaeTrainOptions o = cuvae::test::tiny_vae_options(data, out, 2, 8, 3);
  o.images = true;  // the trainer's default: write its images
  return o;
}

}  // namespace

TEST(ConvVAE, ParameterNamesAndShapesMatchPyTorch) {
  VaeConfig c;
  ConvVAE m(c, Device::CPU);
  std::ostringstream os;
  for (const ParamInfo& p : m.params().params()) {
    os << p.name << "[";
    for (size_t i = 0; i < p.shape.size(); ++i) os << (i ? "," : "") << p.shape[i];
    os << "] ";
  }
  EXPECT_EQ(os.str(),
            "enc.conv1.weight[32,1,4,4] enc.conv1.bias[32] enc.conv2.weight[64,32,4,4] enc.conv2.bias[64] "
            "enc.fc.weight[256,3136] enc.fc.bias[256] enc.mu.weight[32,256] enc.mu.bias[32] "
            "enc.logvar.weight[32,256] enc.logvar.bias[32] dec.fc1.weight[256,32] dec.fc1.bias[256] "
            "dec.fc2.weight[3136,256] dec.fc2.bias[3136] dec.deconv1.weight[64,32,4,4] dec.deconv1.bias[32] "
            "dec.deconv2.weight[32,1,4,4] dec.deconv2.bias[1] ");
  // PyTorch's parameter count for the same module.
  EXPECT_EQ(m.params().count(), 1700609);
  VaeConfig rgb;
  rgb.channels = 3; rgb.height = 32; rgb.width = 32;
  ConvVAE m3(rgb, Device::CPU);
  EXPECT_EQ(m3.params().params()[4].shape, (std::vector<int64_t>{256, 64 * 8 * 8}));
}

TEST(ConvVAE, StepFlopsCountEveryProductFromTheLayerShapes) {
  VaeConfig c;
  ConvVAE m(c, Device::CPU);
  m.init(1);
  EXPECT_EQ(m.step_flops().forward, 0.0);  // nothing run yet
  Context ctx(DeviceRequest::CPU);
  Tensor x({3, 1, 28, 28});
  m.forward(ctx, x, false, 1, 0);
  // Multiply-adds per image, by hand: enc.conv1 32·1·4²·14² = 100,352 (no data gradient);
  // enc.conv2 64·32·4²·7² = 1,605,632; enc.fc 3136·256 = 802,816; enc.mu, enc.logvar, dec.fc1
  // 8,192 each; dec.fc2 802,816; dec.deconv1 1,605,632 and dec.deconv2 100,352 (the
  // convolutions they are the adjoints of). 5,042,176 in all.
  const StepFlops f = m.step_flops();
  EXPECT_DOUBLE_EQ(f.forward, 3 * 2 * 5042176.0);
  EXPECT_DOUBLE_EQ(f.backward, 3 * 2 * (2 * 5042176.0 - 100352.0));
  VaeConfig ae = c;
  ae.kind = VaeKind::Ae;
  ConvVAE a(ae, Device::CPU);
  a.forward(ctx, x, false, 1, 0);
  EXPECT_DOUBLE_EQ(a.step_flops().forward, 3 * 2 * (5042176.0 - 8192.0));  // no enc.logvar
}

namespace {
VaeConfig resnet_config(VaeKind kind = VaeKind::Vae) {
  VaeConfig c;
  c.arch = VaeArch::Resnet;
  c.kind = kind;
  return c;
}
std::string names_and_shapes(ConvVAE& m) {
  std::ostringstream os;
  for (const ParamInfo& p : m.params().params()) {
    os << p.name << "[";
    for (size_t i = 0; i < p.shape.size(); ++i) os << (i ? "," : "") << p.shape[i];
    os << "] ";
  }
  return os.str();
}
}  // namespace

TEST(ConvVAE, ResnetArchHasTheResidualLayersOfThePyTorchModule) {
  ConvVAE m(resnet_config(), Device::CPU);
  EXPECT_EQ(names_and_shapes(m),
            "enc.conv_in.weight[32,1,3,3] enc.conv_in.bias[32] enc.res1.conv1.weight[32,32,3,3] enc.res1.conv1.bias[32] "
            "enc.res1.conv2.weight[32,32,3,3] enc.res1.conv2.bias[32] enc.down1.weight[64,32,4,4] enc.down1.bias[64] "
            "enc.res2.conv1.weight[64,64,3,3] enc.res2.conv1.bias[64] enc.res2.conv2.weight[64,64,3,3] enc.res2.conv2.bias[64] "
            "enc.down2.weight[128,64,4,4] enc.down2.bias[128] enc.res3.conv1.weight[128,128,3,3] enc.res3.conv1.bias[128] "
            "enc.res3.conv2.weight[128,128,3,3] enc.res3.conv2.bias[128] enc.fc.weight[256,6272] enc.fc.bias[256] "
            "enc.mu.weight[32,256] enc.mu.bias[32] enc.logvar.weight[32,256] enc.logvar.bias[32] dec.fc1.weight[256,32] "
            "dec.fc1.bias[256] dec.fc2.weight[6272,256] dec.fc2.bias[6272] dec.res3.conv1.weight[128,128,3,3] "
            "dec.res3.conv1.bias[128] dec.res3.conv2.weight[128,128,3,3] dec.res3.conv2.bias[128] dec.up2.weight[128,64,4,4] "
            "dec.up2.bias[64] dec.res2.conv1.weight[64,64,3,3] dec.res2.conv1.bias[64] dec.res2.conv2.weight[64,64,3,3] "
            "dec.res2.conv2.bias[64] dec.up1.weight[64,32,4,4] dec.up1.bias[32] dec.res1.conv1.weight[32,32,3,3] "
            "dec.res1.conv1.bias[32] dec.res1.conv2.weight[32,32,3,3] dec.res1.conv2.bias[32] dec.conv_out.weight[1,32,3,3] "
            "dec.conv_out.bias[1] ");
  EXPECT_EQ(m.params().count(), 4346305);  // sum(p.numel()) of bench/torch_ref.py's ResVAE
  EXPECT_LE(m.params().count(), 5000000);
  // The CVAE widens enc.fc and dec.fc1 by K columns; the AE drops enc.logvar.
  ConvVAE cv(resnet_config(VaeKind::Cvae), Device::CPU);
  EXPECT_EQ(cv.params().params()[cv.params().find("enc.fc.weight")].shape, (std::vector<int64_t>{256, 6272 + 10}));
  EXPECT_EQ(cv.params().params()[cv.params().find("dec.fc1.weight")].shape, (std::vector<int64_t>{256, 32 + 10}));
  ConvVAE ae(resnet_config(VaeKind::Ae), Device::CPU);
  EXPECT_LT(ae.params().find("enc.logvar.weight"), 0);
  EXPECT_EQ(ae.params().count(), 4346305 - 8224);
  // The config records the architecture; configs without "arch" (older checkpoints) are conv.
  nlohmann::json j = resnet_config().to_json();
  EXPECT_EQ(j.at("arch"), "resnet");
  EXPECT_EQ(VaeConfig::from_json(j, "x").arch, VaeArch::Resnet);
  j.erase("arch");
  EXPECT_EQ(VaeConfig::from_json(j, "x").arch, VaeArch::Conv);
  j["arch"] = "unet";
  try {
    VaeConfig::from_json(j, "cfg.json");
    FAIL() << "expected an error naming the arch field";
  } catch (const Error& e) {
    EXPECT_CONTAINS(e.what(), "cfg.json");
    EXPECT_CONTAINS(e.what(), "\"arch\"");
  }
  EXPECT_THROW(parse_vae_arch("unet"), Error);
}

TEST(ConvVAE, ResnetStepFlopsCountEveryProductFromTheLayerShapes) {
  ConvVAE m(resnet_config(), Device::CPU);
  m.init(1);
  Context ctx(DeviceRequest::CPU);
  Tensor x({2, 1, 28, 28});
  m.forward(ctx, x, false, 1, 0);
  // Multiply-adds per image, by hand: enc.conv_in and dec.conv_out 32·9·28² = 225,792 each
  // (enc.conv_in computes no data gradient); six residual blocks of two convolutions with
  // c²·9·hw = 7,225,344 each (32 at 28², 64 at 14², 128 at 7²); enc.down1, enc.down2, dec.up2 and
  // dec.up1 6,422,528 each (e.g. 64·32·4²·14²); enc.fc and dec.fc2 6272·256 = 1,605,632; enc.mu,
  // enc.logvar, dec.fc1 8,192 each. 116,081,664 in all.
  const double macs = 2 * 225792.0 + 12 * 7225344.0 + 4 * 6422528.0 + 2 * 1605632.0 + 3 * 8192.0;
  EXPECT_DOUBLE_EQ(macs, 116081664.0);
  const StepFlops f = m.step_flops();
  EXPECT_DOUBLE_EQ(f.forward, 2 * 2 * macs);
  EXPECT_DOUBLE_EQ(f.backward, 2 * 2 * (2 * macs - 225792.0));
}

// The residual VAE's backward (decoder, reparameterization, KL, encoder) against central
// differences of its ELBO on a fixed ε, along each parameter tensor's own gradient direction
// (where the derivative must equal that gradient's norm) — as ResNet18's test does, with three
// step sizes so that a ReLU kink crossed by the largest step cannot fail a right gradient.
TEST(ConvVAE, ResnetGradientsMatchFiniteDifferences) {
  for (VaeKind kind : {VaeKind::Vae, VaeKind::Cvae}) {
    VaeConfig c = resnet_config(kind);
    c.height = c.width = 8;
    c.latent = 4;
    c.classes = 3;
    c.beta = 300.0f;  // a heavy KL term gives the encoder's layers gradients that float differences resolve
    ConvVAE m(c, Device::CPU);
    m.init(3);
    Context ctx(DeviceRequest::CPU);
    Tensor x = Tensor::from_vector(test::random_values(6 * 64, 0, 1, 9), {6, 1, 8, 8});
    const IntBuffer y = IntBuffer::from_vector({0, 1, 2, 2, 1, 0});
    const IntBuffer* labels = kind == VaeKind::Cvae ? &y : nullptr;
    m.forward(ctx, x, true, 4, 0, labels);
    m.loss(ctx, x, true, 4, 1);
    m.backward(ctx);
    const std::vector<float> g = m.params().flat_grads().to_vector(), base = m.params().flat_values().to_vector();
    auto loss_along = [&](const std::vector<double>& v, double t) {
      std::vector<float> p = base;
      for (size_t i = 0; i < p.size(); ++i) p[i] = static_cast<float>(base[i] + t * v[i]);
      test::set_param_values(m, p);
      m.forward(ctx, x, true, 4, 0, labels);  // the same ε
      m.loss(ctx, x, false, 4, 1);
      return static_cast<double>(m.loss_value().to_vector()[0]);
    };
    int checked = 0;
    for (const ParamInfo& p : m.params().params()) {
      double norm = 0;
      for (int64_t j = 0; j < p.numel; ++j) norm += double(g[static_cast<size_t>(p.offset + j)]) * g[static_cast<size_t>(p.offset + j)];
      norm = std::sqrt(norm);
      if (norm < 1e-2) {  // too small a signal for float differences of a ~40-nat loss
        std::printf("skipped %s (|g| %.2g)\n", p.name.c_str(), norm);
        continue;
      }
      std::vector<double> v(g.size(), 0.0);
      for (int64_t j = 0; j < p.numel; ++j) v[static_cast<size_t>(p.offset + j)] = g[static_cast<size_t>(p.offset + j)] / norm;
      double best = 1e30, best_fd = 0;
      for (double h : {1e-2, 3e-3, 1e-3}) {
        const double fd = (loss_along(v, h) - loss_along(v, -h)) / (2 * h);
        if (std::fabs(fd - norm) < best) best = std::fabs(fd - norm), best_fd = fd;
      }
      EXPECT_LE(best, 1e-2 + 0.02 * norm) << vae_arch_name(c.arch) << " " << c.model_name() << " " << p.name
                                          << ": backward " << norm << ", closest difference " << best_fd;
      ++checked;
    }
    EXPECT_GE(checked, 40) << c.model_name();
    test::set_param_values(m, base);
  }
}

TEST(ConvVAE, RejectsBadConfigAndInput) {
  VaeConfig c;
  c.height = 30;
  EXPECT_THROW(ConvVAE(c, Device::CPU), Error);
  VaeConfig ok;
  ConvVAE m(ok, Device::CPU);
  Context ctx(DeviceRequest::CPU);
  Tensor x({2, 1, 32, 32});
  EXPECT_THROW(m.encode(ctx, x), Error);
}

TEST(ConvVAE, KLIsZeroAtInitialisationOnlyApproximatelyAndLossMatchesTerms) {
  Context ctx(DeviceRequest::CPU);
  VaeConfig c;
  c.beta = 2.0f;
  ConvVAE m(c, Device::CPU);
  m.init(1);
  Tensor x = Tensor::from_vector(test::random_values(4 * 784, 0, 1, 7), {4, 1, 28, 28});
  m.forward(ctx, x, true, 1, 0);
  m.loss(ctx, x, true, 1, 1);
  std::vector<float> r = m.recon().to_vector(), k = m.kl().to_vector();
  double want = 0;
  for (int i = 0; i < 4; ++i) {
    EXPECT_GT(r[i], 400.0f);  // ~784·ln2 = 543 nats for logits near 0
    EXPECT_LT(r[i], 700.0f);
    EXPECT_GE(k[i], 0.0f);
    want += (r[i] + 2.0 * k[i]) / 4.0;
  }
  EXPECT_NEAR(m.loss_value().to_vector()[0], want, 1e-3);
}

TEST(ConvVAE, GradientStepLowersTheLossOnTheSameBatch) {
  Context ctx(DeviceRequest::CPU);
  ConvVAE m(VaeConfig{}, Device::CPU);
  m.init(2);
  Tensor x = Tensor::from_vector(test::random_values(16 * 784, 0, 1, 8), {16, 1, 28, 28});
  Tensor mm({m.params().flat_values().numel()}), vv({m.params().flat_values().numel()});
  float first = 0, last = 0;
  for (int s = 0; s < 5; ++s) {
    m.forward(ctx, x, true, 5, 2 * s);
    m.loss(ctx, x, true, 5, 2 * s + 1);
    m.backward(ctx);
    AdamConfig ac;
    ac.step = s + 1;
    adam_step(ctx, m.params().flat_values(), m.params().flat_grads(), mm, vv, ac);
    if (s == 0) first = m.loss_value().to_vector()[0];
    last = m.loss_value().to_vector()[0];
  }
  EXPECT_LT(last, first - 5.0f) << "first " << first << " last " << last;
}

// A residual VAE's checkpoint records its architecture, and a state dict saved without cuvae's
// config (as PyTorch users save one) is recognised as the residual network by its tensors.
TEST(Checkpoint, ResnetArchRoundTripsWithAndWithoutConfig) {
  cuvae::testing::ScopedTempDir tmp;
  VaeConfig c = resnet_config(VaeKind::Cvae);
  c.channels = 3;
  c.height = c.width = 32;
  ConvVAE m(c, Device::CPU);
  m.init(5);
  const std::string p = tmp.file("model.safetensors");
  save_params(p, m.params(), c.to_json());
  EXPECT_EQ(load_vae(p, Device::CPU, true)->config().arch, VaeArch::Resnet);
  SafetensorsWriter w;
  const SafetensorsFile f = read_safetensors(p);
  for (const auto& kv : f.tensors) w.add(kv.first, kv.second.dtype, kv.second.shape, kv.second.bytes.data(), kv.second.bytes.size());
  w.write(tmp.file("bare.safetensors"));
  auto bare = load_vae(tmp.file("bare.safetensors"), Device::CPU, true);
  const VaeConfig& b = bare->config();
  EXPECT_EQ(b.arch, VaeArch::Resnet);
  EXPECT_TRUE(b.is_cvae());
  EXPECT_EQ(b.classes, 10);
  EXPECT_EQ(b.channels, 3);
  EXPECT_EQ(b.height, 32);
  EXPECT_EQ(bare->params().flat_values().to_vector(), m.params().flat_values().to_vector());
  // The same file read as the pinned network would not fit: the config decides the layers.
  nlohmann::json conv = c.to_json();
  conv["arch"] = "conv";
  SafetensorsWriter w2;
  for (const auto& kv : f.tensors) w2.add(kv.first, kv.second.dtype, kv.second.shape, kv.second.bytes.data(), kv.second.bytes.size());
  w2.set_metadata("config", conv.dump());
  w2.write(tmp.file("mislabelled.safetensors"));
  try {
    load_vae(tmp.file("mislabelled.safetensors"), Device::CPU, true);
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_CONTAINS(e.what(), "mislabelled.safetensors");
  }
}

TEST(Checkpoint, RoundTripAndRejections) {
  cuvae::testing::ScopedTempDir tmp;
  VaeConfig c;
  c.latent = 8;
  c.dataset = "mnist";
  ConvVAE m(c, Device::CPU);
  m.init(4);
  const std::string p = tmp.file("model.safetensors");
  save_params(p, m.params(), c.to_json());
  auto back = load_vae(p, Device::CPU);
  EXPECT_EQ(back->config().latent, 8);
  EXPECT_EQ(back->params().flat_values().to_vector(), m.params().flat_values().to_vector());
  SafetensorsFile f = read_safetensors(p);
  EXPECT_EQ(f.metadata.at("format"), "pt");

  // Same tensors, but the config claims latent 16: shapes no longer match.
  {
    SafetensorsWriter w;
    for (const auto& kv : f.tensors) w.add(kv.first, kv.second.dtype, kv.second.shape, kv.second.bytes.data(), kv.second.bytes.size());
    VaeConfig c16 = c;
    c16.latent = 16;
    w.set_metadata("config", c16.to_json().dump());
    w.write(tmp.file("wrong.safetensors"));
    try {
      load_vae(tmp.file("wrong.safetensors"), Device::CPU);
      FAIL() << "expected a shape error";
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find("enc.mu.weight"), std::string::npos) << e.what();
      EXPECT_NE(std::string(e.what()).find("wrong.safetensors"), std::string::npos) << e.what();
    }
  }
  // A classifier-style config is refused by name.
  {
    SafetensorsWriter w;
    w.add_f32("fc.weight", {2, 2}, {1, 2, 3, 4});
    w.set_metadata("config", R"({"model":"ResNet18"})");
    w.write(tmp.file("resnet.safetensors"));
    try {
      load_vae(tmp.file("resnet.safetensors"), Device::CPU);
      FAIL() << "expected a model-type error";
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find("ResNet18"), std::string::npos) << e.what();
    }
  }
  // Damaged: truncated file.
  const std::string bytes = read_file(p);
  write_file_atomic(tmp.file("cut.safetensors"), bytes.substr(0, bytes.size() / 2));
  EXPECT_THROW(load_vae(tmp.file("cut.safetensors"), Device::CPU), Error);
  EXPECT_THROW(load_vae(tmp.file("missing.safetensors"), Device::CPU), Error);
}

TEST(Trainer, WritesRunFolderAndResumesExactly) {
  cuvae::testing::ScopedTempDir tmp;
  write_synthetic_idx(tmp.path(), "train", 256, 1);
  write_synthetic_idx(tmp.path(), "t10k", 64, 2);
  std::ostringstream log;
  // Two epochs straight through.
  VaeTrainOptions a = small_options(tmp.path(), tmp.file("a"));
  std::vector<VaeEpochRecord> ra = train_vae(a, log);
  ASSERT_EQ(ra.size(), 2u);
  EXPECT_LT(ra[1].test_loss, ra[0].test_loss);
  for (const char* f : {"config.json", "metrics.csv", "model.safetensors", "optim.safetensors", "samples.png",
                        "reconstructions.png", "traversal.png"})
    EXPECT_TRUE(file_exists(a.out + "/" + f)) << f;
  std::string csv = read_file(a.out + "/metrics.csv");
  EXPECT_EQ(csv.rfind("epoch,train_loss,test_recon,test_kl,test_loss", 0), 0u) << csv;
  EXPECT_EQ(std::count(csv.begin(), csv.end(), '\n'), 3);
  // One epoch, then --resume to two: the same weights, bit for bit.
  VaeTrainOptions b = small_options(tmp.path(), tmp.file("b"));
  b.epochs = 1;
  b.images = false;
  train_vae(b, log);
  b.epochs = 2;
  b.resume = true;
  std::vector<VaeEpochRecord> rb = train_vae(b, log);
  ASSERT_EQ(rb.size(), 1u);
  EXPECT_EQ(rb[0].epoch, 2);
  EXPECT_EQ(load_vae(a.out + "/model.safetensors", Device::CPU)->params().flat_values().to_vector(),
            load_vae(b.out + "/model.safetensors", Device::CPU)->params().flat_values().to_vector());
  EXPECT_DOUBLE_EQ(ra[1].test_loss, rb[0].test_loss);
  // The resumed table continues the same rows: equal losses, only the timing columns differ.
  auto losses_only = [](const std::string& t) {
    std::istringstream in(t);
    std::string line, out;
    while (std::getline(in, line)) {
      size_t cut = 0;
      for (int k = 0; k < 5 && cut != std::string::npos; ++k) cut = line.find(',', cut + 1);
      out += line.substr(0, cut) + "\n";
    }
    return out;
  };
  EXPECT_EQ(losses_only(read_file(b.out + "/metrics.csv")), losses_only(csv));
}

TEST(Trainer, NonFiniteLossStopsAndKeepsTheLastGoodCheckpoint) {
  cuvae::testing::ScopedTempDir tmp;
  write_synthetic_idx(tmp.path(), "train", 256, 1);
  write_synthetic_idx(tmp.path(), "t10k", 64, 2);
  std::ostringstream log;
  VaeTrainOptions o = small_options(tmp.path(), tmp.file("run"));
  o.epochs = 1;
  o.images = false;
  train_vae(o, log);
  const std::string good = read_file(o.out + "/model.safetensors");
  const std::string good_csv = read_file(o.out + "/metrics.csv");
  o.epochs = 3;
  o.resume = true;
  o.lr = 1e30f;  // diverges at once
  try {
    train_vae(o, log);
    FAIL() << "expected the run to stop on a non-finite loss";
  } catch (const Error& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find("non-finite"), std::string::npos) << msg;
    EXPECT_NE(msg.find("at step "), std::string::npos) << msg;
    EXPECT_NE(msg.find("model.safetensors"), std::string::npos) << msg;
  }
  EXPECT_EQ(read_file(o.out + "/model.safetensors"), good);
  EXPECT_EQ(read_file(o.out + "/metrics.csv"), good_csv);
}

TEST(Trainer, BadOptionsAreRejectedBeforeAnythingIsWritten) {
  cuvae::testing::ScopedTempDir tmp;
  std::ostringstream log;
  VaeTrainOptions o = small_options(tmp.path(), tmp.file("run"));
  o.epochs = 0;
  EXPECT_THROW(train_vae(o, log), Error);
  o = small_options(tmp.file("no-such-dir"), tmp.file("run"));
  try {
    train_vae(o, log);
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("no-such-dir"), std::string::npos) << e.what();
  }
  EXPECT_FALSE(file_exists(tmp.file("run")));
  write_synthetic_idx(tmp.path(), "train", 64, 1);
  write_synthetic_idx(tmp.path(), "t10k", 16, 2);
  o = small_options(tmp.path(), tmp.file("run"));
  o.resume = true;
  EXPECT_THROW(train_vae(o, log), Error);  // nothing to resume from
}

// CIFAR-10 binary batches written here: a 3×32×32 model trains on them end to end.
// eval-vae evaluates on the data set the checkpoint was trained on unless --dataset names another
// (a FashionMNIST model was once silently evaluated on MNIST by default).
// Gradient accumulation: micro-batches of the same rows, drawing ε as those rows, give the full
// batch's training to rounding; rows or draws taken twice (a row base that does not move) would
// move the test loss by percents. The emulated device runs the same loop (its set-row-base and
// scaled-sum kernels) as the reference backend does.
TEST(Trainer, GradientAccumulationTrainsTheFullBatch) {
  cuvae::testing::ScopedTempDir tmp;
  write_synthetic_idx(tmp.path(), "train", 128, 1);
  write_synthetic_idx(tmp.path(), "t10k", 64, 2);
  auto run = [&](const std::string& name, int accumulate, CpuBackend backend, std::string* log_text = nullptr) {
    const CpuBackend before = default_cpu_backend();
    set_default_cpu_backend(backend);
    VaeTrainOptions o = cuvae::test::tiny_vae_options(tmp.path(), tmp.file(name), 1, 8, 3);
    o.batch = 32;  // 4 steps
    o.accumulate = accumulate;
    std::ostringstream log;
    std::vector<VaeEpochRecord> r;
    try {
      r = train_vae(o, log);
    } catch (...) {
      set_default_cpu_backend(before);
      throw;
    }
    set_default_cpu_backend(before);
    if (log_text != nullptr) *log_text = log.str();
    return std::make_pair(r.back().test_loss, load_vae(o.out + "/model.safetensors", Device::CPU)->params().flat_values().to_vector());
  };
  auto max_diff = [](const std::vector<float>& a, const std::vector<float>& b) {
    double d = 0;
    for (size_t i = 0; i < a.size(); ++i) d = std::max(d, std::fabs(double(a[i]) - double(b[i])));
    return d;
  };
  std::string log4;
  const auto full = run("full", 1, CpuBackend::Reference);
  const auto two = run("two", 2, CpuBackend::Reference);
  const auto four = run("four", 4, CpuBackend::Reference, &log4);
  EXPECT_NE(log4.find("gradient accumulation: 4 micro-batches of 8 images per step"), std::string::npos) << log4;
  // Measured: test losses within 4e-9 relative, weights within 8e-6 (emulated: 2e-9, 5e-7).
  EXPECT_NEAR(two.first, full.first, 1e-6 * full.first);
  EXPECT_NEAR(four.first, full.first, 1e-6 * full.first);
  EXPECT_LT(max_diff(two.second, full.second), 1e-4);
  EXPECT_LT(max_diff(four.second, full.second), 1e-4);
  const auto emu = run("emu", 2, CpuBackend::Emu);
  EXPECT_NEAR(emu.first, two.first, 1e-7 * two.first);
  EXPECT_LT(max_diff(emu.second, two.second), 1e-5);
}

// num_batches_tracked counts every micro-batch's forward, as PyTorch's BatchNorm does under
// gradient accumulation; the accumulated classifier trains the full batch's weights to rounding.
TEST(Trainer, ClassifierAccumulationCountsEveryForward) {
  cuvae::testing::ScopedTempDir tmp;
  write_synthetic_idx(tmp.path(), "train", 128, 1);
  write_synthetic_idx(tmp.path(), "t10k", 64, 2);
  ClassifierTrainOptions o = cuvae::test::tiny_classifier_options(tmp.path(), tmp.file("acc"), 1, 2, 4);
  o.accumulate = 2;  // 4 steps of 2 micro-batches of 16
  std::ostringstream log;
  train_classifier(o, log);
  auto m = load_resnet(o.out + "/model.safetensors", Device::CPU);
  EXPECT_EQ(m->num_batches_tracked(), 8);
  o.accumulate = 3;  // 32 images do not split into 3
  o.out = tmp.file("three");
  try {
    train_classifier(o, log);
    FAIL() << "--accumulate 3 with --batch 32 must be refused";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("accumulate 3 does not split batch 32"), std::string::npos) << e.what();
  }
  EXPECT_FALSE(file_exists(tmp.file("three")));
}

TEST(EvalVae, DefaultsToTheCheckpointsDataSet) {
  cuvae::testing::ScopedTempDir tmp;
  write_synthetic_idx(tmp.path(), "t10k", 32, 2);
  VaeConfig c;
  c.latent = 4;
  c.dataset = "fashion-mnist";
  ConvVAE m(c, Device::CPU);
  m.init(1);
  save_params(tmp.file("model.safetensors"), m.params(), c.to_json());
  EvalVaeJob job;
  job.checkpoint = tmp.file("model.safetensors");
  job.data = tmp.path();
  job.device = DeviceRequest::CPU;
  EXPECT_EQ(eval_vae_job(job).at("dataset"), "fashion-mnist");
  job.dataset = "mnist";
  EXPECT_EQ(eval_vae_job(job).at("dataset"), "mnist");
}

TEST(Trainer, TrainsARgbModelOnCifarBinaryFiles) {
  cuvae::testing::ScopedTempDir tmp;
  std::mt19937 g(5);
  auto write_batch = [&](const std::string& name, int records) {
    std::string b;
    for (int r = 0; r < records; ++r) {
      const int label = static_cast<int>(g() % 10);
      b.push_back(static_cast<char>(label));
      for (int ch = 0; ch < 3; ++ch)
        for (int i = 0; i < 1024; ++i) b.push_back(static_cast<char>((label * 25 + ch * 40 + (i % 32) * 2 + g() % 8) & 0xff));
    }
    write_file_atomic(tmp.file(name), b);
  };
  for (int k = 1; k <= 5; ++k) write_batch("data_batch_" + std::to_string(k) + ".bin", 20);
  write_batch("test_batch.bin", 20);
  VaeTrainOptions o;
  o.dataset = "cifar10";
  o.data_dir = tmp.path();
  o.out = tmp.file("run");
  o.epochs = 3;
  o.batch = 10;
  o.lr = 3e-3f;
  o.latent = 4;
  o.device = DeviceRequest::CPU;
  o.progress = false;
  std::ostringstream log;
  std::vector<VaeEpochRecord> r = train_vae(o, log);
  ASSERT_EQ(r.size(), 3u);
  EXPECT_LT(r[2].test_loss, r[0].test_loss - 20.0);
  auto m = load_vae(o.out + "/model.safetensors", Device::CPU);
  EXPECT_EQ(m->config().channels, 3);
  EXPECT_EQ(m->config().height, 32);
  EXPECT_EQ(m->params().params()[4].shape, (std::vector<int64_t>{256, 64 * 8 * 8}));
  EXPECT_TRUE(file_exists(o.out + "/samples.png"));
}

// After the first step has sized every buffer, further steps (forward, ELBO, backward, Adam)
// allocate nothing.
TEST(ConvVAE, SteadyStateTrainingStepsAllocateNothing) {
  Context ctx(DeviceRequest::CPU);
  ConvVAE m(VaeConfig{}, Device::CPU);
  m.init(3);
  Tensor x = Tensor::from_vector(test::random_values(8 * 784, 0, 1, 9), {8, 1, 28, 28});
  Tensor mm({m.params().flat_values().numel()}), vv({m.params().flat_values().numel()});
  auto step = [&](int s) {
    m.forward(ctx, x, true, 1, 2 * s);
    m.loss(ctx, x, true, 1, 2 * s + 1);
    m.backward(ctx);
    AdamConfig ac;
    ac.step = s + 1;
    adam_step(ctx, m.params().flat_values(), m.params().flat_grads(), mm, vv, ac);
  };
  step(0);
  const int64_t before = allocation_count();
  for (int s = 1; s < 4; ++s) step(s);
  EXPECT_EQ(allocation_count(), before);
  // A larger batch grows the buffers once; going back to the smaller one reuses them.
  Tensor big = Tensor::from_vector(test::random_values(16 * 784, 0, 1, 10), {16, 1, 28, 28});
  m.forward(ctx, big, false, 0, 0);
  const int64_t grown = allocation_count();
  EXPECT_GT(grown, before);
  for (int s = 4; s < 6; ++s) step(s);
  EXPECT_EQ(allocation_count(), grown);
}
