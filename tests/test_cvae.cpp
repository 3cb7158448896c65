// The conditional VAE (Sohn et al. 2015) and the KL recipes: one-hot concatenation kernels, the
// label's effect on the decoder, gradients, KL warm-up and cyclical schedules (also across
// --resume), free bits, and `cuvae sample`.
#include <gtest/gtest.h>

#include <cmath>
#include <sstream>

#include "core/check.h"
#include "io/fs.h"
#include "io/safetensors.h"
#include "jobs/analysis/plots.h"
#include "jobs/batching.h"
#include "jobs/sample.h"
#include "jobs/vae_trainer.h"
#include "kernels/conditional.h"
#include "kernels/free_bits.h"
#include "models/checkpoint.h"
#include "models/conv_vae.h"
#include "synthetic_data.h"
#include "temp_dir.h"
#include "test_util.h"

using namespace cuvae;

namespace {

VaeConfig cvae_config(int64_t latent = 4) {
  VaeConfig c;
  c.kind = VaeKind::Cvae;
  c.latent = latent;
  c.classes = 10;
  return c;
}

VaeTrainOptions tiny(const std::string& data, const std::string& out) {
  return cuvae::test::tiny_vae_options(data, out, 2, 4, 9);
}

}  // namespace

TEST(ConcatOnehot, AppendsTheLabelAndTakeColumnsUndoesIt) {
  const double feat[6] = {1, 2, 3, 4, 5, 6};  // [2, 3]
  const int32_t labels[2] = {2, 0};
  double out[12];
  concat_onehot_cpu<double>(feat, labels, 2, 3, 3, out);
  const double want[12] = {1, 2, 3, 0, 0, 1, 4, 5, 6, 1, 0, 0};
  for (int i = 0; i < 12; ++i) EXPECT_EQ(out[i], want[i]) << i;
  double back[6];
  take_columns_cpu<double>(out, 2, 3, 3, back);
  for (int i = 0; i < 6; ++i) EXPECT_EQ(back[i], feat[i]);
  const int32_t bad[2] = {3, 0};
  EXPECT_THROW(concat_onehot_cpu<double>(feat, bad, 2, 3, 3, out), Error);
  const int32_t neg[2] = {0, -1};
  EXPECT_THROW(concat_onehot_cpu<double>(feat, neg, 2, 3, 3, out), Error);
}

// Free bits: dimensions whose batch-mean KL is below the floor lose their KL gradient and count
// as lambda in the loss; the others keep exactly what the ELBO kernel wrote.
TEST(FreeBits, ChangeTheGradientOnlyBelowTheFloor) {
  const int64_t n = 3, d = 3;
  // dim 0: mu = 0, logvar = 0 → KL 0 (below); dim 1: mu = 2 → KL 2 (above); dim 2: mu = 1 → KL 0.5.
  const double mu[9] = {0, 2, 1, 0, 2, 1, 0, 2, 1}, logvar[9] = {0, 0, 0, 0, 0, 0, 0, 0, 0};
  double dmu[9], dv[9], kl_dim[3];
  for (int i = 0; i < 9; ++i) {
    dmu[i] = 0.1 * (i + 1);
    dv[i] = -0.2 * (i + 1);
  }
  double loss = 10;
  free_bits_cpu<double>(mu, logvar, n, d, 1.0f, 2.0f, dmu, dv, kl_dim, &loss);
  EXPECT_DOUBLE_EQ(kl_dim[0], 0.0);
  EXPECT_DOUBLE_EQ(kl_dim[1], 2.0);
  EXPECT_DOUBLE_EQ(kl_dim[2], 0.5);
  for (int i = 0; i < 3; ++i) {
    EXPECT_EQ(dmu[i * 3 + 0], 0.0);
    EXPECT_EQ(dv[i * 3 + 0], 0.0);
    EXPECT_DOUBLE_EQ(dmu[i * 3 + 1], 0.1 * (i * 3 + 2));  // above the floor: untouched
    EXPECT_DOUBLE_EQ(dv[i * 3 + 1], -0.2 * (i * 3 + 2));
    EXPECT_EQ(dmu[i * 3 + 2], 0.0);
  }
  EXPECT_DOUBLE_EQ(loss, 10 + 2.0 * ((1 - 0) + (1 - 0.5)));
  // A zero floor changes nothing.
  double loss0 = 10, dmu0[9] = {1, 1, 1, 1, 1, 1, 1, 1, 1}, dv0[9] = {1, 1, 1, 1, 1, 1, 1, 1, 1};
  free_bits_cpu<double>(mu, logvar, n, d, 0.0f, 2.0f, dmu0, dv0, kl_dim, &loss0);
  EXPECT_EQ(loss0, 10);
  for (double v : dmu0) EXPECT_EQ(v, 1);
}

TEST(Cvae, ParameterShapesPutTheLabelColumnsLast) {
  ConvVAE m(cvae_config(32), Device::CPU);
  const ParamStore& ps = m.params();
  EXPECT_EQ(ps.params()[static_cast<size_t>(ps.find("enc.fc.weight"))].shape, (std::vector<int64_t>{256, 3136 + 10}));
  EXPECT_EQ(ps.params()[static_cast<size_t>(ps.find("dec.fc1.weight"))].shape, (std::vector<int64_t>{256, 32 + 10}));
  EXPECT_EQ(m.config().to_json()["model"], "ConvCVAE");
  EXPECT_EQ(m.config().to_json()["classes"], 10);
  Context ctx(DeviceRequest::CPU);
  Tensor x = Tensor::from_vector(test::random_values(2 * 784, 0, 1, 1), {2, 1, 28, 28});
  EXPECT_CONTAINS(test::error_of([&] { m.encode(ctx, x); }), "a CVAE needs the class label");  // labels are required
  // Fewer labels than images: refused at the model's boundary, before any layer runs.
  const IntBuffer one = IntBuffer::from_vector({3});
  EXPECT_CONTAINS(test::error_of([&] { m.encode(ctx, x, &one); }), "ConvVAE::encode: labels hold 1 values for a batch of 2");
  Tensor z({2, 32});
  EXPECT_CONTAINS(test::error_of([&] { m.decode(ctx, z, &one); }), "ConvVAE::decode: labels hold 1 values for a batch of 2");
  const IntBuffer two = IntBuffer::from_vector({3, 9});
  EXPECT_NO_THROW(m.encode(ctx, x, &two));
}

// The data set's batches check where their labels go and how many fit.
TEST(Cvae, DeviceDatasetBatchChecksItsLabelBuffer) {
  Dataset d;
  d.n = 4;
  d.c = 1;
  d.h = d.w = 2;
  d.images = {0, 255, 0, 255, 1, 2, 3, 4, 9, 9, 9, 9, 7, 7, 7, 7};
  d.labels = {5, 6, 7, 8};
  DeviceDataset dd(d, Device::CPU);
  Context ctx(DeviceRequest::CPU);
  Tensor x({3, 1, 2, 2});
  IntBuffer y(3, Device::CPU), short_y(2, Device::CPU);
  dd.batch(ctx, 1, AugmentConfig{}, 0, 0, x, &y);
  EXPECT_EQ(y.download(3), (std::vector<int32_t>{6, 7, 8}));
  EXPECT_EQ(x.to_vector()[0], 1.0f / 255.0f);
  EXPECT_CONTAINS(test::error_of([&] { dd.batch(ctx, 0, AugmentConfig{}, 0, 0, x, &short_y); }),
                  "DeviceDataset::batch: labels holds 2 values, expected at least 3");
  Tensor wrong({3, 1, 3, 3});
  EXPECT_CONTAINS(test::error_of([&] { dd.batch(ctx, 0, AugmentConfig{}, 0, 0, wrong, &y); }), "does not match images of 1x2x2");
}

TEST(Cvae, TheLabelChangesTheDecodedImage) {
  Context ctx(DeviceRequest::CPU);
  ConvVAE m(cvae_config(), Device::CPU);
  m.init(5);
  Tensor z = Tensor::from_vector(test::random_values(4, -1, 1, 2), {1, 4});
  IntBuffer three(1, Device::CPU), seven(1, Device::CPU);
  three.upload({3});
  seven.upload({7});
  const std::vector<float> a = m.decode(ctx, z, &three).to_vector();
  const std::vector<float> b = m.decode(ctx, z, &seven).to_vector();
  const std::vector<float> a2 = m.decode(ctx, z, &three).to_vector();
  EXPECT_EQ(a, a2);  // one z with one label, twice: identical
  double diff = 0;
  for (int j = 0; j < 784; ++j) diff += std::fabs(b[j] - a[j]);
  EXPECT_GT(diff, 1e-3);  // the same z with labels 3 and 7: different images
}

// Central differences of a CVAE training loss against backward() along each parameter tensor's
// gradient direction (the label columns of enc.fc and dec.fc1 included). Layers are checked in
// double one by one (test_layers, ConcatOnehot above); this checks the CVAE's wiring.
TEST(Cvae, BackwardMatchesCentralDifferences) {
  Context ctx(DeviceRequest::CPU);
  ConvVAE m(cvae_config(3), Device::CPU);
  m.init(8);
  Tensor x = Tensor::from_vector(test::random_values(2 * 784, 0, 1, 12), {2, 1, 28, 28});
  IntBuffer y(2, Device::CPU);
  y.upload({1, 6});
  auto loss_at = [&] {
    m.forward(ctx, x, true, 4, 0, &y);
    m.loss(ctx, x, true, 4, 1);
    return static_cast<double>(m.loss_value().to_vector()[0]);
  };
  loss_at();
  m.backward(ctx);
  const std::vector<float> g = m.params().flat_grads().to_vector(), w = m.params().flat_values().to_vector();
  int checked = 0;
  for (const ParamInfo& p : m.params().params()) {
    // Directional derivative along this tensor's gradient: (f(w + h·u) − f(w − h·u)) / 2h = |g_T|.
    double norm = 0;
    for (int64_t j = p.offset; j < p.offset + p.numel; ++j) norm += static_cast<double>(g[j]) * g[j];
    norm = std::sqrt(norm);
    if (norm < 1e-3) continue;
    const double h = 2e-3;
    std::vector<float> wp = w, wm = w;
    for (int64_t j = p.offset; j < p.offset + p.numel; ++j) {
      wp[j] = static_cast<float>(w[j] + h * g[j] / norm);
      wm[j] = static_cast<float>(w[j] - h * g[j] / norm);
    }
    test::set_param_values(m, wp);
    const double fp = loss_at();
    test::set_param_values(m, wm);
    const double fm = loss_at();
    test::set_param_values(m, w);
    EXPECT_NEAR((fp - fm) / (2 * h), norm, 0.05 * norm + 0.01) << p.name;
    ++checked;
  }
  EXPECT_GE(checked, 14);
  // The label columns get gradient: enc.fc.weight[:, 3136 + 1] and [:, 3136 + 6] only.
  const ParamInfo& fc = m.params().params()[static_cast<size_t>(m.params().find("enc.fc.weight"))];
  double used = 0, unused = 0;
  for (int64_t r = 0; r < 256; ++r) {
    used += std::fabs(g[fc.offset + r * 3146 + 3136 + 1]) + std::fabs(g[fc.offset + r * 3146 + 3136 + 6]);
    unused += std::fabs(g[fc.offset + r * 3146 + 3136 + 2]);
  }
  EXPECT_GT(used, 0.0);
  EXPECT_EQ(unused, 0.0);
}

TEST(KlSchedule, GivesTheDocumentedBetaPerStep) {
  KlSchedule w;
  w.warmup_steps = 10;
  EXPECT_EQ(kl_beta_at(w, 2.0f, 0), 0.0f);
  EXPECT_FLOAT_EQ(kl_beta_at(w, 2.0f, 5), 1.0f);
  EXPECT_FLOAT_EQ(kl_beta_at(w, 2.0f, 10), 2.0f);
  EXPECT_FLOAT_EQ(kl_beta_at(w, 2.0f, 1000), 2.0f);
  KlSchedule c;
  c.cycle_steps = 8;  // rises over 4 steps, holds for 4
  EXPECT_EQ(kl_beta_at(c, 1.0f, 0), 0.0f);
  EXPECT_FLOAT_EQ(kl_beta_at(c, 1.0f, 2), 0.5f);
  EXPECT_FLOAT_EQ(kl_beta_at(c, 1.0f, 4), 1.0f);
  EXPECT_FLOAT_EQ(kl_beta_at(c, 1.0f, 7), 1.0f);
  EXPECT_EQ(kl_beta_at(c, 1.0f, 8), 0.0f);
  EXPECT_FLOAT_EQ(kl_beta_at(c, 1.0f, 10), 0.5f);
  EXPECT_FLOAT_EQ(kl_beta_at(KlSchedule{}, 0.7f, 123), 0.7f);
}

// Warm-up over 1.5 epochs and free bits, trained 2 epochs straight and 1 + --resume 1: the same
// weights bit for bit and the same per-epoch mean beta (0.33… then 0.97…: steps 0..3 and 4..7 of 6).
TEST(KlSchedule, ResumeContinuesTheScheduleExactly) {
  cuvae::testing::ScopedTempDir tmp;
  test::write_synthetic_idx(tmp.path(), "train", 128, 1);
  test::write_synthetic_idx(tmp.path(), "t10k", 40, 2);
  std::ostringstream log;
  VaeTrainOptions a = tiny(tmp.path(), tmp.file("a"));
  a.model = VaeKind::Cvae;
  a.kl_warmup = 1.5;
  a.free_bits = 0.25f;
  const std::vector<VaeEpochRecord> ra = train_vae(a, log);
  VaeTrainOptions b = a;
  b.out = tmp.file("b");
  b.epochs = 1;
  train_vae(b, log);
  b.epochs = 2;
  b.resume = true;
  b.kl_warmup = 0;  // the run's own schedule continues
  b.free_bits = 0;
  const std::vector<VaeEpochRecord> rb = train_vae(b, log);
  ASSERT_EQ(ra.size(), 2u);
  ASSERT_EQ(rb.size(), 1u);
  EXPECT_NE(log.str().find("continues the run's own KL schedule"), std::string::npos);
  // 4 steps per epoch, warm-up over 6 steps: epoch 1 mean of 0,1/6,2/6,3/6; epoch 2 of 4/6,5/6,1,1.
  EXPECT_NEAR(ra[0].beta, (0 + 1 + 2 + 3) / 6.0 / 4, 1e-6);
  EXPECT_NEAR(ra[1].beta, (4 / 6.0 + 5 / 6.0 + 2) / 4, 1e-6);
  EXPECT_DOUBLE_EQ(rb[0].beta, ra[1].beta);
  EXPECT_EQ(load_vae(a.out + "/model.safetensors", Device::CPU, true)->params().flat_values().to_vector(),
            load_vae(b.out + "/model.safetensors", Device::CPU, true)->params().flat_values().to_vector());
  const CsvColumns m = read_csv_columns(a.out + "/metrics.csv");
  ASSERT_NE(m.find("beta"), nullptr);
  EXPECT_NEAR((*m.find("beta"))[0], ra[0].beta, 1e-6);
  // The same recipe flags are refused for the AE, and both schedules at once.
  VaeTrainOptions bad = tiny(tmp.path(), tmp.file("bad"));
  bad.model = VaeKind::Ae;
  bad.free_bits = 1;
  EXPECT_THROW(train_vae(bad, log), Error);
  bad.model = VaeKind::Vae;
  bad.kl_warmup = 1;
  bad.kl_cycles = 2;
  EXPECT_THROW(train_vae(bad, log), Error);
  EXPECT_FALSE(file_exists(bad.out));
}

// --schedule cosine on train-vae: 2 epochs straight, and the same run interrupted after epoch 1 and
// resumed, give the same weights bit for bit; a 1-epoch run extended to 2 lays the schedule over
// the new length (other weights); a constant learning rate gives other weights; the schedule is
// recorded; resuming with another schedule is refused naming both; an unknown one is refused
// before any work.
TEST(VaeLrSchedule, CosineResumesExactlyAndIsTheRunsOwn) {
  cuvae::testing::ScopedTempDir tmp;
  test::write_synthetic_idx(tmp.path(), "train", 128, 1);
  test::write_synthetic_idx(tmp.path(), "t10k", 40, 2);
  std::ostringstream log;
  VaeTrainOptions a = tiny(tmp.path(), tmp.file("a"));
  a.schedule = "cosine";
  a.lr = 3e-3f;
  train_vae(a, log);
  VaeTrainOptions b = a;
  b.out = tmp.file("b");
  b.stop_after = 1;
  ASSERT_EQ(train_vae(b, log).size(), 1u);
  b.stop_after = 0;
  b.resume = true;
  ASSERT_EQ(train_vae(b, log).size(), 1u);
  const auto weights = [](const std::string& run) {
    return load_vae(run + "/model.safetensors", Device::CPU, true)->params().flat_values().to_vector();
  };
  const std::vector<float> wa = weights(a.out);
  EXPECT_EQ(wa, weights(b.out));
  EXPECT_EQ(read_file(a.out + "/optim.safetensors"), read_file(b.out + "/optim.safetensors"));
  VaeTrainOptions x = a;
  x.out = tmp.file("x");
  x.epochs = 1;
  train_vae(x, log);
  x.epochs = 2;
  x.resume = true;
  train_vae(x, log);
  EXPECT_NE(wa, weights(x.out));
  VaeTrainOptions c = a;
  c.out = tmp.file("c");
  c.schedule = "constant";
  train_vae(c, log);
  EXPECT_NE(wa, weights(c.out));
  EXPECT_EQ(read_safetensors(a.out + "/optim.safetensors").metadata.at("schedule"), "cosine");
  EXPECT_NE(read_file(a.out + "/config.json").find("\"schedule\": \"cosine\""), std::string::npos);
  // Resuming the cosine run with a constant rate is refused, naming both.
  VaeTrainOptions d = a;
  d.epochs = 3;
  d.resume = true;
  d.schedule = "constant";
  const std::string msg = test::error_of([&] { train_vae(d, log); });
  EXPECT_NE(msg.find("--schedule cosine, not constant"), std::string::npos) << msg;
  VaeTrainOptions e = tiny(tmp.path(), tmp.file("e"));
  e.schedule = "linear";
  EXPECT_NE(test::error_of([&] { train_vae(e, log); }).find("--schedule must be constant, cosine or onecycle"),
            std::string::npos);
  EXPECT_FALSE(file_exists(e.out));
}

TEST(Sample, CvaeModesAndErrorsWriteNothingOnBadInput) {
  cuvae::testing::ScopedTempDir tmp;
  test::write_synthetic_idx(tmp.path(), "train", 64, 1);
  test::write_synthetic_idx(tmp.path(), "t10k", 20, 2);
  std::ostringstream log;
  VaeTrainOptions o = tiny(tmp.path(), tmp.file("cvae"));
  o.model = VaeKind::Cvae;
  o.epochs = 1;
  train_vae(o, log);
  SampleOptions s;
  s.vae = o.out + "/model.safetensors";
  s.data_dir = tmp.path();
  s.device = DeviceRequest::CPU;
  s.progress = false;
  s.out = tmp.file("s1");
  s.klass = 4;
  s.n = 6;
  SampleResult r = sample_images(s, log);
  EXPECT_EQ(r.mode, "conditional");
  EXPECT_EQ(r.images, 6);
  EXPECT_TRUE(file_exists(r.path));
  s.klass = -1;
  s.n = 3;
  s.out = tmp.file("s2");
  r = sample_images(s, log);
  EXPECT_EQ(r.images, 30);
  EXPECT_EQ(r.cols, 3);
  s.style_index = {0, 19};
  s.out = tmp.file("s3");
  r = sample_images(s, log);
  EXPECT_EQ(r.mode, "style");
  EXPECT_EQ(r.images, 22);
  EXPECT_EQ(r.cols, 11);
  s.style_index = {20};
  s.out = tmp.file("bad");
  EXPECT_NE(test::error_of([&] { sample_images(s, log); }).find("--style-index 20 is out of range"), std::string::npos);
  s.style_index.clear();
  s.klass = 10;
  EXPECT_NE(test::error_of([&] { sample_images(s, log); }).find("--class 10 is out of range"), std::string::npos);
  EXPECT_FALSE(file_exists(s.out));
  // A CVAE where an unconditional VAE is required.
  EXPECT_NE(test::error_of([&] { load_vae(o.out + "/model.safetensors", Device::CPU); }).find("conditional VAE (CVAE)"),
            std::string::npos);
}
