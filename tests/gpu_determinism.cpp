// Deterministic by default on the GPU: with the deterministic cuDNN algorithms (the default; see
// --nondeterministic), the same seed on the same device gives bit-identical weights run after run,
// and a run stopped after one epoch and continued with --resume equals the run that was never
// stopped. Both trainers, with the CUDA graph on (the default). Skipped with a reason where no GPU is.
#include <gtest/gtest.h>

#include <sstream>

#include "core/context.h"
#include "io/fs.h"
#include "jobs/classifier_trainer.h"
#include "jobs/vae_trainer.h"
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

/// Trains `make(data, out)` into folders a and b, and into c stopped after epoch 1 (`stop` edits
/// the options for that, `resume` for continuing with --resume), on a synthetic MNIST; the three
/// runs' checkpoint bytes must be equal.
template <class Make, class Train, class Stop, class Resume>
void expect_identical_runs(Make make, Train train, Stop stop, Resume resume) {
  cuvae::testing::ScopedTempDir tmp;
  write_synthetic_idx(tmp.path(), "train", 320, 1);
  write_synthetic_idx(tmp.path(), "t10k", 64, 2);
  std::ostringstream log;
  train(make(tmp.path(), tmp.file("a")), log);
  train(make(tmp.path(), tmp.file("b")), log);
  auto c = make(tmp.path(), tmp.file("c"));
  stop(c);
  train(c, log);
  resume(c);
  c.resume = true;
  train(c, log);
  const std::string a = run_bytes(tmp.file("a"));
  EXPECT_TRUE(a == run_bytes(tmp.file("b"))) << "same seed, same GPU, different checkpoint bytes";
  EXPECT_TRUE(a == run_bytes(tmp.file("c"))) << "1 epoch + --resume differs from 2 epochs straight";
}

}  // namespace

TEST(GpuDeterminism, VaeSameSeedTwiceAndResumeAreBitIdentical) {
  if (!cuda_available()) GTEST_SKIP() << "no CUDA GPU (" << cuvae::cuda_unavailable_reason() << "): run-to-run and --resume determinism of the VAE is not checked";
  expect_identical_runs(
      vae_options, [](const VaeTrainOptions& o, std::ostream& log) { train_vae(o, log); },
      [](VaeTrainOptions& o) { o.epochs = 1; }, [](VaeTrainOptions& o) { o.epochs = 2; });
}

TEST(GpuDeterminism, ClassifierSameSeedTwiceAndResumeAreBitIdentical) {
  if (!cuda_available()) GTEST_SKIP() << "no CUDA GPU (" << cuvae::cuda_unavailable_reason() << "): run-to-run and --resume determinism of the ResNet-18 is not checked";
  expect_identical_runs(
      classifier_options, [](const ClassifierTrainOptions& o, std::ostream& log) { train_classifier(o, log); },
      [](ClassifierTrainOptions& o) { o.stop_after = 1; }, [](ClassifierTrainOptions& o) { o.stop_after = 0; });
}
