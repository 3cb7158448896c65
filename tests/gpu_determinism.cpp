// Deterministic by default on the GPU: with the deterministic cuDNN algorithms (the default; see
// --nondeterministic), the same seed on the same device gives bit-identical weights run after run,
// and a run stopped after one epoch and continued with --resume equals the run that was never
// stopped. Both trainers, with the CUDA graph on (the default). Skipped with a reason where no GPU is.
#include <gtest/gtest.h>

#include <sstream>

#include "host/context.h"
#include "host/fs.h"
#include "models/classifier_trainer.h"
#include "models/vae_trainer.h"
#include "tests/synthetic_data.h"
#include "tests/temp_dir.h"

using namespace cuvae;
using cuvae::test::write_synthetic_idx;

namespace {

VaeTrainOptions vae_options(const std::string& data, const std::string& out) {
  VaeTrainOptions o;
  o.dataset = "mnist";
  o.data_dir = data;
  o.out = out;
  o.epochs = 2;
  o.batch = 64;
  o.seed = 11;
  o.binarize = true;
  o.kl_warmup = 1;
  o.device = DeviceRequest::CUDA;
  o.progress = false;
  o.images = false;
  return o;
}

ClassifierTrainOptions classifier_options(const std::string& data, const std::string& out) {
  ClassifierTrainOptions o;
  o.dataset = "mnist";
  o.data_dir = data;
  o.out = out;
  o.epochs = 2;
  o.batch = 64;
  o.width = 8;
  o.seed = 11;
  o.device = DeviceRequest::CUDA;
  o.progress = false;
  return o;
}

/// The run's checkpoint bytes: weights (and for the ResNet-18 running_mean, running_var and
/// num_batches_tracked), then the optimizer state (moments, step, seed).
std::string run_bytes(const std::string& out) {
  return read_file(out + "/model.safetensors") + read_file(out + "/optim.safetensors");
}

}  // namespace

TEST(GpuDeterminism, VaeSameSeedTwiceAndResumeAreBitIdentical) {
  if (!cuda_available()) GTEST_SKIP() << "no CUDA GPU: run-to-run and --resume determinism of the VAE is not checked";
  cuvae::testing::ScopedTempDir tmp;
  write_synthetic_idx(tmp.path(), "train", 320, 1);
  write_synthetic_idx(tmp.path(), "t10k", 64, 2);
  std::ostringstream log;
  train_vae(vae_options(tmp.path(), tmp.file("a")), log);
  train_vae(vae_options(tmp.path(), tmp.file("b")), log);
  VaeTrainOptions c = vae_options(tmp.path(), tmp.file("c"));
  c.epochs = 1;
  train_vae(c, log);
  c.epochs = 2;
  c.resume = true;
  train_vae(c, log);
  const std::string a = run_bytes(tmp.file("a"));
  EXPECT_TRUE(a == run_bytes(tmp.file("b"))) << "same seed, same GPU, different weights or optimizer state";
  EXPECT_TRUE(a == run_bytes(tmp.file("c"))) << "1 epoch + --resume differs from 2 epochs straight";
}

TEST(GpuDeterminism, ClassifierSameSeedTwiceAndResumeAreBitIdentical) {
  if (!cuda_available()) GTEST_SKIP() << "no CUDA GPU: run-to-run and --resume determinism of the ResNet-18 is not checked";
  cuvae::testing::ScopedTempDir tmp;
  write_synthetic_idx(tmp.path(), "train", 320, 1);
  write_synthetic_idx(tmp.path(), "t10k", 64, 2);
  std::ostringstream log;
  train_classifier(classifier_options(tmp.path(), tmp.file("a")), log);
  train_classifier(classifier_options(tmp.path(), tmp.file("b")), log);
  ClassifierTrainOptions c = classifier_options(tmp.path(), tmp.file("c"));
  c.stop_after = 1;
  train_classifier(c, log);
  c.stop_after = 0;
  c.resume = true;
  train_classifier(c, log);
  const std::string a = run_bytes(tmp.file("a"));
  EXPECT_TRUE(a == run_bytes(tmp.file("b"))) << "same seed, same GPU, different weights, statistics or momentum";
  EXPECT_TRUE(a == run_bytes(tmp.file("c"))) << "1 epoch + --resume differs from 2 epochs straight";
}
