// The studies' building blocks: the plain autoencoder, the importance-sampled log-likelihood,
// Gaussian sampling from an AE's codes, compare and sweep.
#include <gtest/gtest.h>

#include <cmath>
#include <fstream>
#include <limits>
#include <sstream>

#include "core/check.h"
#include "core/philox.h"
#include "io/fs.h"
#include "io/safetensors.h"
#include "jobs/analysis/compare.h"
#include "jobs/analysis/latent.h"
#include "jobs/analysis/likelihood.h"
#include "jobs/vae_trainer.h"
#include "kernels/adam.h"
#include "models/checkpoint.h"
#include "models/conv_vae.h"
#include "synthetic_data.h"
#include "temp_dir.h"
#include "test_util.h"

using namespace cuvae;

namespace {

VaeConfig ae_config(int64_t latent = 4) {
  VaeConfig c;
  c.kind = VaeKind::Ae;
  c.latent = latent;
  c.beta = 0.0f;
  return c;
}

VaeTrainOptions tiny_options(const std::string& data, const std::string& out) {
  return cuvae::test::tiny_vae_options(data, out, 1, 4, 5);
}

std::vector<float> images01(const Dataset& d, int64_t n) {
  std::vector<float> x(static_cast<size_t>(n * d.pixels()));
  for (size_t i = 0; i < x.size(); ++i) x[i] = d.images[i] / 255.0f;
  return x;
}

}  // namespace

// ---- the plain autoencoder ----------------------------------------------------------------

TEST(ConvAE, HasTheVaeTensorsWithoutEncLogvar) {
  ConvVAE vae(VaeConfig{}, Device::CPU);
  ConvVAE ae(ae_config(32), Device::CPU);
  std::vector<std::string> want;
  for (const ParamInfo& p : vae.params().params())
    if (p.name.rfind("enc.logvar.", 0) != 0) want.push_back(p.name);
  std::vector<std::string> got;
  for (const ParamInfo& p : ae.params().params()) got.push_back(p.name);
  std::sort(want.begin(), want.end());
  std::sort(got.begin(), got.end());
  EXPECT_EQ(got, want);
  EXPECT_EQ(vae.params().count() - ae.params().count(), 256 * 32 + 32);
  EXPECT_EQ(ae.config().to_json()["model"], "ConvAE");
  // The VAE's initialisation is unchanged by the AE's existence (the same draws per tensor index).
  ConvVAE vae2(VaeConfig{}, Device::CPU);
  vae.init(3);
  vae2.init(3);
  EXPECT_EQ(vae.params().flat_values().to_vector(), vae2.params().flat_values().to_vector());
}

TEST(ConvAE, IsDeterministicHasNoKLAndMseOnlyForTheAE) {
  Context ctx(DeviceRequest::CPU);
  ConvVAE ae(ae_config(), Device::CPU);
  ae.init(1);
  Tensor x = Tensor::from_vector(test::random_values(3 * 784, 0, 1, 4), {3, 1, 28, 28});
  const std::vector<float> a = ae.forward(ctx, x, true, 1, 0).to_vector();
  const std::vector<float> mu = ae.mu().to_vector();
  const std::vector<float> b = ae.forward(ctx, x, true, 9, 17).to_vector();
  EXPECT_EQ(a, b);  // "sampling" is z = mu
  EXPECT_EQ(ae.z().to_vector(), mu);
  for (float v : ae.logvar().to_vector()) EXPECT_EQ(v, 0.0f);
  ae.loss(ctx, x, true, 0, 0);
  for (float v : ae.kl().to_vector()) EXPECT_EQ(v, 0.0f);
  double mean = 0;
  for (float v : ae.recon().to_vector()) mean += v / 3.0;
  EXPECT_NEAR(ae.loss_value().to_vector()[0], mean, 1e-3);
  VaeConfig bad;
  bad.recon_loss = ReconLoss::Mse;
  EXPECT_THROW(ConvVAE(bad, Device::CPU), Error);
}

// Central differences of the AE's loss (BCE and MSE) against backward() for the parameter of
// largest gradient in each tensor. The layers are checked one by one in double (test_layers);
// this checks the AE's wiring (dz straight into enc.mu, no KL), where a wrong path is off by
// 100%, so the 10% allowance only absorbs float rounding and ReLU kinks within the step.
TEST(ConvAE, BackwardMatchesCentralDifferences) {
  for (ReconLoss rl : {ReconLoss::Bce, ReconLoss::Mse}) {
    SCOPED_TRACE(rl == ReconLoss::Mse ? "mse" : "bce");
    Context ctx(DeviceRequest::CPU);
    VaeConfig cfg = ae_config(3);
    cfg.recon_loss = rl;
    ConvVAE ae(cfg, Device::CPU);
    ae.init(7);
    Tensor x = Tensor::from_vector(test::random_values(2 * 784, 0, 1, 11), {2, 1, 28, 28});
    ae.forward(ctx, x, true, 0, 0);
    ae.loss(ctx, x, true, 0, 0);
    ae.backward(ctx);
    const std::vector<float> g = ae.params().flat_grads().to_vector();
    auto loss_at = [&] {
      ae.forward(ctx, x, true, 0, 0);
      ae.loss(ctx, x, true, 0, 0);
      return static_cast<double>(ae.loss_value().to_vector()[0]);
    };
    std::vector<float> w = ae.params().flat_values().to_vector();
    int checked = 0;
    for (const ParamInfo& p : ae.params().params()) {
      int64_t best = p.offset;
      for (int64_t j = p.offset; j < p.offset + p.numel; ++j)
        if (std::fabs(g[j]) > std::fabs(g[best])) best = j;
      if (std::fabs(g[best]) < 1e-3f) continue;
      const float h = 1e-2f * std::max(1.0f, std::fabs(w[best]));
      std::vector<float> wp = w, wm = w;
      wp[best] += h;
      wm[best] -= h;
      test::set_param_values(ae, wp);
      const double fp = loss_at();
      test::set_param_values(ae, wm);
      const double fm = loss_at();
      test::set_param_values(ae, w);
      const double num = (fp - fm) / (2.0 * (wp[best] - w[best]));
      EXPECT_NEAR(num, g[best], 0.1 * std::fabs(g[best]) + 2e-3) << p.name;
      ++checked;
    }
    EXPECT_GE(checked, 10);
  }
}

TEST(ConvAE, CheckpointRoundTripAndKindDetection) {
  cuvae::testing::ScopedTempDir tmp;
  ConvVAE ae(ae_config(), Device::CPU);
  ae.init(2);
  save_params(tmp.file("ae.safetensors"), ae.params(), ae.config().to_json());
  SafetensorsFile f = read_safetensors(tmp.file("ae.safetensors"));
  EXPECT_EQ(f.tensors.count("enc.logvar.weight"), 0u);
  EXPECT_EQ(f.tensors.count("enc.mu.weight"), 1u);
  auto back = load_vae(tmp.file("ae.safetensors"), Device::CPU);
  EXPECT_TRUE(back->config().is_ae());
  EXPECT_EQ(back->params().flat_values().to_vector(), ae.params().flat_values().to_vector());
  // A VAE config over AE tensors is refused (enc.logvar missing).
  nlohmann::json j = ae.config().to_json();
  j["model"] = "ConvVAE";
  save_params(tmp.file("wrong.safetensors"), ae.params(), j);
  EXPECT_THROW(load_vae(tmp.file("wrong.safetensors"), Device::CPU), Error);
}

TEST(ConvAE, TrainerWritesFittedGaussianSamplesAndEvalHasNoKL) {
  cuvae::testing::ScopedTempDir tmp;
  test::write_synthetic_idx(tmp.path(), "train", 128, 1);
  test::write_synthetic_idx(tmp.path(), "t10k", 64, 2);
  std::ostringstream log;
  VaeTrainOptions o = tiny_options(tmp.path(), tmp.file("ae"));
  o.model = VaeKind::Ae;
  o.recon_loss = ReconLoss::Mse;
  o.images = true;
  const auto r = train_vae(o, log);
  ASSERT_EQ(r.size(), 1u);
  EXPECT_EQ(r[0].test_kl, 0.0);
  EXPECT_TRUE(file_exists(o.out + "/samples_fitted.png"));
  EXPECT_NE(log.str().find("training ConvAE"), std::string::npos) << log.str();
  auto m = load_vae(o.out + "/model.safetensors", Device::CPU);
  EXPECT_TRUE(m->config().is_ae());
  EXPECT_EQ(m->config().recon_loss, ReconLoss::Mse);
  VaeTrainOptions bad = tiny_options(tmp.path(), tmp.file("bad"));
  bad.recon_loss = ReconLoss::Mse;  // mse with a VAE
  EXPECT_THROW(train_vae(bad, log), Error);
  EXPECT_FALSE(file_exists(bad.out));
}

TEST(FittedGaussian, SamplesHaveTheCodesMeanAndCovariance) {
  LatentCodes c;
  c.n = 4000;
  c.latent = 2;
  for (int64_t i = 0; i < c.n; ++i) {  // z1 = 3 + 2u, z2 = -1 + u + 0.5v: cov [[4, 2], [2, 1.25]]
    const double u = philox_normal(1, 0, i), v = philox_normal(1, 1, i);
    c.mu.push_back(static_cast<float>(3 + 2 * u));
    c.mu.push_back(static_cast<float>(-1 + u + 0.5 * v));
  }
  const std::vector<float> z = fitted_gaussian_samples(c, 20000, 3);
  ASSERT_EQ(z.size(), 40000u);
  double m0 = 0, m1 = 0, c00 = 0, c01 = 0, c11 = 0;
  for (int i = 0; i < 20000; ++i) {
    m0 += z[2 * i] / 20000.0;
    m1 += z[2 * i + 1] / 20000.0;
  }
  for (int i = 0; i < 20000; ++i) {
    const double a = z[2 * i] - m0, b = z[2 * i + 1] - m1;
    c00 += a * a / 20000;
    c01 += a * b / 20000;
    c11 += b * b / 20000;
  }
  EXPECT_NEAR(m0, 3, 0.1);
  EXPECT_NEAR(m1, -1, 0.05);
  EXPECT_NEAR(c00, 4, 0.3);
  EXPECT_NEAR(c01, 2, 0.2);
  EXPECT_NEAR(c11, 1.25, 0.1);
}

// ---- log-likelihood -----------------------------------------------------------------------

TEST(LogMeanExp, StaysFiniteForLogWeightsNearMinus1e4) {
  const double v[3] = {-1e4, -1e4 - 1, -1e4 + 0.5};
  const double want = -1e4 + std::log((1 + std::exp(-1.0) + std::exp(0.5)) / 3);
  EXPECT_NEAR(log_mean_exp(v, 3), want, 1e-9);
  const double w[2] = {-2e4, -1e4};
  EXPECT_NEAR(log_mean_exp(w, 2), -1e4 + std::log(0.5), 1e-9);
  LogMeanExp s;
  for (double x : v) s.add(x);
  EXPECT_NEAR(s.value(), want, 1e-9);
  const double ninf = -std::numeric_limits<double>::infinity();
  const double u[2] = {ninf, ninf};
  EXPECT_EQ(log_mean_exp(u, 2), ninf);
  EXPECT_EQ(log_mean_exp(v, 1), -1e4);
}

// With K = 1 the IWAE bound is the single-sample ELBO, log p(x|z) + log p(z) − log q(z|x), for
// the ε that the model's own forward pass draws: computed here from the Gaussian densities.
TEST(Nll, KOneEqualsTheSingleSampleElboForTheSameEps) {
  Context ctx(DeviceRequest::CPU);
  ConvVAE m(VaeConfig{}, Device::CPU);
  m.init(4);
  cuvae::testing::ScopedTempDir tmp;
  test::write_synthetic_idx(tmp.path(), "t10k", 6, 3);
  const Dataset d = load_dataset("mnist", tmp.path(), false);
  NllOptions o;
  o.k = 1;
  o.seed = 77;
  o.offset = 5;
  const NllResult r = estimate_nll(ctx, m, d, o);
  ASSERT_EQ(r.n, 6);
  Tensor x = Tensor::from_vector(images01(d, 6), {6, 1, 28, 28});
  m.forward(ctx, x, true, 77, 5);
  const std::vector<float> mu = m.mu().to_vector(), lv = m.logvar().to_vector(), z = m.z().to_vector();
  m.loss(ctx, x, false, 0, 0);
  const std::vector<float> rec = m.recon().to_vector();
  const double l2pi = std::log(2 * M_PI);
  for (int i = 0; i < 6; ++i) {
    double logp = 0, logq = 0;
    for (int k = 0; k < 32; ++k) {
      const double zz = z[i * 32 + k], m_ = mu[i * 32 + k], v = std::exp(lv[i * 32 + k]);
      logp += -0.5 * (zz * zz + l2pi);
      logq += -0.5 * ((zz - m_) * (zz - m_) / v + std::log(v) + l2pi);
    }
    const double elbo = -rec[i] + logp - logq;
    EXPECT_NEAR(-r.per_image[i], elbo, 1e-3 * std::fabs(elbo)) << i;
  }
}

TEST(Nll, BoundDoesNotDecreaseFromKOneToKHundredOnATrainedModel) {
  cuvae::testing::ScopedTempDir tmp;
  test::write_synthetic_idx(tmp.path(), "train", 512, 1);
  test::write_synthetic_idx(tmp.path(), "t10k", 40, 2);
  std::ostringstream log;
  VaeTrainOptions o = tiny_options(tmp.path(), tmp.file("vae"));
  o.epochs = 2;
  train_vae(o, log);
  Context ctx(DeviceRequest::CPU);
  auto m = load_vae(o.out + "/model.safetensors", Device::CPU);
  const Dataset d = load_dataset("mnist", tmp.path(), false);
  NllOptions a;
  a.k = 1;
  NllOptions b;
  b.k = 100;
  b.chunk_rows = 64;  // several chunks per image
  const NllResult r1 = estimate_nll(ctx, *m, d, a), r100 = estimate_nll(ctx, *m, d, b);
  // −log p̂ with more samples is a tighter (smaller) bound; its first sample is the K = 1 one.
  EXPECT_LE(r100.nll, r1.nll);
  EXPECT_NEAR(r100.neg_elbo_k1, r1.nll, 1e-6 * r1.nll);
  EXPECT_GT(r100.nll, 0.0);
  EXPECT_GT(r100.nll_stderr, 0.0);
  const VaeEval e = evaluate_vae(ctx, *m, d);
  EXPECT_LT(r100.nll, e.recon + e.kl + 20.0);  // the same scale as the ELBO at z = mu
  // The AE refuses, naming the option: by field in what(), as a flag on the command line.
  ConvVAE ae(ae_config(), Device::CPU);
  try {
    estimate_nll(ctx, ae, d, a);
    FAIL() << "no error";
  } catch (const Error& err) {
    EXPECT_EQ(std::string(err.what()).rfind("nll needs a VAE checkpoint", 0), 0u) << err.what();
    EXPECT_EQ(err.message(FieldStyle::Flag).rfind("--nll needs a VAE checkpoint", 0), 0u) << err.message(FieldStyle::Flag);
  }
  NllOptions zero;
  zero.k = 0;
  EXPECT_THROW(estimate_nll(ctx, *m, d, zero), Error);
}

TEST(Nll, BinarizedCopyIsBinaryWithTheGreyLevelAsProbability) {
  Dataset d;
  d.name = "x";
  d.n = 1;
  d.c = 1;
  d.h = 100;
  d.w = 100;
  d.images.assign(10000, 64);
  d.labels = {0};
  const Dataset b = binarized_copy(d, 3);
  int64_t ones = 0;
  for (uint8_t v : b.images) {
    ASSERT_TRUE(v == 0 || v == 255);
    ones += v == 255;
  }
  EXPECT_NEAR(ones / 10000.0, 64 / 255.0, 0.015);
  EXPECT_EQ(binarized_copy(d, 3).images, b.images);  // a fixed seed gives the same draws
}

// ---- compare and sweep --------------------------------------------------------------------

TEST(Compare, RejectsBadRunsAndWritesNothing) {
  cuvae::testing::ScopedTempDir tmp;
  std::ostringstream log;
  CompareOptions o;
  o.out = tmp.file("out");
  o.device = DeviceRequest::CPU;
  ensure_dir(tmp.file("empty"));
  o.runs = {tmp.file("empty")};
  try {
    compare_runs(o, log);
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("metrics.csv"), std::string::npos) << e.what();
  }
  // Two folders of different data sets.
  for (const char* name : {"a", "b"}) {
    ensure_dir(tmp.file(name));
    write_file_atomic(tmp.file(name) + "/metrics.csv", "epoch\n1\n");
    write_file_atomic(tmp.file(name) + "/model.safetensors", "x");
  }
  write_file_atomic(tmp.file("a") + "/config.json", R"({"command":"train-vae","dataset":"mnist"})");
  write_file_atomic(tmp.file("b") + "/config.json", R"({"command":"train-vae","dataset":"fashion-mnist"})");
  o.runs = {tmp.file("a"), tmp.file("b")};
  try {
    compare_runs(o, log);
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("mixes data sets"), std::string::npos) << e.what();
  }
  o.runs = {tmp.file("a")};
  o.nll_k = 0;
  EXPECT_THROW(compare_runs(o, log), Error);
  EXPECT_FALSE(file_exists(o.out));
  EXPECT_THROW(parse_int_list("", "latent", 1, 10), Error);
  EXPECT_THROW(parse_int_list("2,x", "latent", 1, 10), Error);
  EXPECT_THROW(parse_number_list("1,,2", "beta", 0, 10), Error);
  EXPECT_EQ(parse_int_list("2,8,32", "latent", 1, 4096), (std::vector<int64_t>{2, 8, 32}));
  EXPECT_EQ(parse_number_list("0.5,1,4", "beta", 0, 1e6), (std::vector<double>{0.5, 1, 4}));
}

// A sweep stopped after its first configuration is run again with more configurations: the
// finished one is skipped (its checkpoint untouched), and a larger --epochs resumes each run.
TEST(Sweep, InterruptedSweepSkipsFinishedConfigsAndResumes) {
  cuvae::testing::ScopedTempDir tmp;
  test::write_synthetic_idx(tmp.path(), "train", 128, 1);
  test::write_synthetic_idx(tmp.path(), "t10k", 40, 2);
  SweepOptions o;
  o.data_dir = tmp.path();
  o.out = tmp.file("sweep");
  o.latents = {2};
  o.betas = {1.0};
  o.epochs = 1;
  o.batch = 32;
  o.nll_k = 3;
  o.limit = 0;
  o.device = DeviceRequest::CPU;
  o.progress = false;
  std::ostringstream log1;
  run_sweep(o, log1);
  const std::string first = o.out + "/" + sweep_config_name("vae", 2, 1.0);
  const std::string bytes = read_file(first + "/model.safetensors");
  o.latents = {2, 3};
  std::ostringstream log2;
  const std::vector<RunSummary> rows = run_sweep(o, log2);
  EXPECT_NE(log2.str().find("vae-z2-b1: already trained (1 epochs), skipped"), std::string::npos) << log2.str();
  EXPECT_EQ(read_file(first + "/model.safetensors"), bytes);
  ASSERT_EQ(rows.size(), 2u);
  EXPECT_EQ(rows[1].latent, 3);
  EXPECT_TRUE(std::isfinite(rows[1].nll));
  const std::string csv = read_file(o.out + "/sweep.csv");
  EXPECT_EQ(std::count(csv.begin(), csv.end(), '\n'), 3) << csv;
  EXPECT_TRUE(file_exists(o.out + "/sweep.md"));
  EXPECT_TRUE(file_exists(o.out + "/sweep_samples.png"));
  o.epochs = 2;
  std::ostringstream log3;
  const std::vector<RunSummary> rows2 = run_sweep(o, log3);
  EXPECT_NE(log3.str().find("resuming after epoch 1"), std::string::npos) << log3.str();
  EXPECT_EQ(rows2[0].epochs, 2);
  EXPECT_EQ(rows2[1].epochs, 2);
}
