// Files from elsewhere and interrupted work: PyTorch state dicts without cuvae's metadata,
// checksums of written files, exact classifier resume, training state that survives a kill
// between writes, and sizes that cannot fit in memory.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdio>
#include <fstream>
#include <functional>
#include <sstream>
#include <string>
#include <vector>

#include <unistd.h>

#include "core/check.h"
#include "core/decimal.h"
#include "core/tensor.h"
#include "io/fs.h"
#include "io/metrics.h"
#include "io/safetensors.h"
#include "io/sha256.h"
#include "jobs/classifier_trainer.h"
#include "jobs/vae_trainer.h"
#include "models/checkpoint.h"
#include "models/conv_vae.h"
#include "models/resnet18.h"
#include "tests/synthetic_data.h"
#include "tests/temp_dir.h"
#include "tests/test_util.h"

using namespace cuvae;
using cuvae::testing::ScopedTempDir;
using cuvae::test::error_of;
using cuvae::test::write_synthetic_idx;

namespace {

// Writes `ps` (and `extra`'s tensors) as PyTorch's safetensors writers do: no cuvae config and no
// checksum; `format_pt` adds the `{"format": "pt"}` metadata of save_model-style files.
void write_torch_style(const std::string& path, const ParamStore& ps, bool format_pt,
                       const ParamStore* buffers = nullptr, int64_t nbt = -1,
                       const std::vector<std::string>& bn_names = {}) {
  SafetensorsWriter w;
  w.set_checksum(false);
  if (format_pt) w.set_metadata("format", "pt");
  add_params(w, ps, "");
  if (buffers != nullptr) add_params(w, *buffers, "");
  for (const std::string& bn : bn_names) w.add_i64(bn + ".num_batches_tracked", {}, {nbt});
  w.write(path);
}

VaeConfig vae_config(VaeKind kind, int64_t latent) {
  VaeConfig c;
  c.kind = kind;
  c.latent = latent;
  c.beta = kind == VaeKind::Ae ? 0.0f : 1.0f;
  return c;
}

}  // namespace

TEST(TorchWeights, VaeAeAndCvaeStateDictsLoadWithShapesInferred) {
  ScopedTempDir dir;
  for (VaeKind kind : {VaeKind::Vae, VaeKind::Ae, VaeKind::Cvae}) {
    for (bool format_pt : {false, true}) {
      VaeConfig c = vae_config(kind, kind == VaeKind::Cvae ? 6 : 12);
      if (kind == VaeKind::Cvae) c.classes = 10;
      ConvVAE m(c, Device::CPU);
      m.init(5);
      const std::string path = dir.file("torch.safetensors");
      write_torch_style(path, m.params(), format_pt);
      EXPECT_EQ(read_safetensors(path).metadata.count("config"), 0u);
      auto loaded = load_vae(path, Device::CPU, true);
      const VaeConfig& lc = loaded->config();
      EXPECT_EQ(lc.kind, kind);
      EXPECT_EQ(lc.latent, c.latent);
      EXPECT_EQ(lc.channels, 1);
      EXPECT_EQ(lc.height, 28);
      EXPECT_EQ(lc.width, 28);
      if (kind == VaeKind::Cvae) {
        EXPECT_EQ(lc.classes, 10);
      }
      EXPECT_EQ(loaded->params().flat_values().to_vector(), m.params().flat_values().to_vector());
    }
  }
  // A 32x32 RGB VAE (CIFAR-10 shape) is read as such.
  VaeConfig rgb = vae_config(VaeKind::Vae, 4);
  rgb.channels = 3;
  rgb.height = rgb.width = 32;
  ConvVAE m(rgb, Device::CPU);
  write_torch_style(dir.file("rgb.safetensors"), m.params(), true);
  auto loaded = load_vae(dir.file("rgb.safetensors"), Device::CPU);
  EXPECT_EQ(loaded->config().channels, 3);
  EXPECT_EQ(loaded->config().height, 32);
}

TEST(TorchWeights, MismatchedStateDictsNameTheFirstTensorThatDoesNotFit) {
  ScopedTempDir dir;
  ConvVAE m(vae_config(VaeKind::Vae, 8), Device::CPU);
  const std::string path = dir.file("v.safetensors");
  auto error_for = [&](const std::function<void(SafetensorsWriter&)>& edit) {
    SafetensorsWriter w;
    w.set_checksum(false);
    edit(w);
    w.write(path);
    return error_of([&] { load_vae(path, Device::CPU); });
  };
  // An extra tensor is refused by name.
  std::string msg = error_for([&](SafetensorsWriter& w) {
    add_params(w, m.params(), "");
    w.add_f32("dec.extra.weight", {1}, {0.0f});
  });
  EXPECT_CONTAINS(msg, "unexpected tensor 'dec.extra.weight'");
  // A missing one too.
  msg = error_for([&](SafetensorsWriter& w) {
    for (const ParamInfo& p : m.params().params())
      if (p.name != "dec.deconv2.bias") w.add_f32(p.name, p.shape, std::vector<float>(static_cast<size_t>(p.numel)));
  });
  EXPECT_CONTAINS(msg, "no tensor 'dec.deconv2.bias'");
  // A wrong shape names the tensor and the shape expected.
  msg = error_for([&](SafetensorsWriter& w) {
    for (const ParamInfo& p : m.params().params()) {
      std::vector<int64_t> shape = p.shape;
      if (p.name == "enc.conv2.weight") shape[0] = 48;
      int64_t n = 1;
      for (int64_t d : shape) n *= d;
      w.add_f32(p.name, shape, std::vector<float>(static_cast<size_t>(n)));
    }
  });
  EXPECT_CONTAINS(msg, "tensor 'enc.conv2.weight' has shape [48, 32, 4, 4], expected [64, 32, 4, 4]");
  // Shapes that give no square image.
  msg = error_for([&](SafetensorsWriter& w) {
    for (const ParamInfo& p : m.params().params()) {
      std::vector<int64_t> shape = p.shape;
      if (p.name == "dec.fc2.weight") shape[0] = 64 * 12;
      int64_t n = 1;
      for (int64_t d : shape) n *= d;
      w.add_f32(p.name, shape, std::vector<float>(static_cast<size_t>(n)));
    }
  });
  EXPECT_CONTAINS(msg, "tensor 'dec.fc2.weight' has shape [768, 256], expected [64*s*s, 256]");
  // Tensors of no known model.
  msg = error_for([&](SafetensorsWriter& w) { w.add_f32("features.0.weight", {2}, {1, 2}); });
  EXPECT_CONTAINS(msg, "match no known model (first tensor 'features.0.weight')");
  EXPECT_EQ(msg.find("failed at"), std::string::npos) << msg;
  EXPECT_EQ(msg.find('\n'), std::string::npos);
}

TEST(TorchWeights, ResNetStateDictNeedsTheDataSetForItsInputSize) {
  ScopedTempDir dir;
  ResNetConfig c;
  c.base_width = 4;
  ResNet18 m(c, Device::CPU);
  m.init(3);
  const std::string path = dir.file("r.safetensors");
  write_torch_style(path, m.params(), true, &m.buffers(), 7, m.batchnorm_names());
  EXPECT_CONTAINS(error_of([&] { load_resnet(path, Device::CPU); }), "pass --dataset");
  EXPECT_CONTAINS(error_of([&] { load_resnet(path, Device::CPU, "cifar10"); }),
                  "tensor 'conv1.weight' has shape [4, 1, 3, 3], expected 3 input channels for cifar10");
  auto loaded = load_resnet(path, Device::CPU, "fashion-mnist");
  EXPECT_EQ(loaded->config().base_width, 4);
  EXPECT_EQ(loaded->config().classes, 10);
  EXPECT_EQ(loaded->config().height, 28);
  EXPECT_EQ(loaded->config().dataset, "fashion-mnist");
  EXPECT_EQ(loaded->num_batches_tracked(), 7);
  EXPECT_EQ(loaded->params().flat_values().to_vector(), m.params().flat_values().to_vector());
  EXPECT_EQ(loaded->buffers().flat_values().to_vector(), m.buffers().flat_values().to_vector());
  // Each model refuses the other's state dict by name.
  EXPECT_CONTAINS(error_of([&] { load_vae(path, Device::CPU); }), "holds a ResNet-18 classifier's tensors");
  ConvVAE v(vae_config(VaeKind::Vae, 8), Device::CPU);
  write_torch_style(dir.file("v.safetensors"), v.params(), true);
  EXPECT_CONTAINS(error_of([&] { load_resnet(dir.file("v.safetensors"), Device::CPU, "mnist"); }), "holds a VAE's tensors");
}

TEST(Checksum, CheckpointsCarryOneAndAFlippedByteIsRefused) {
  if (!sha256_available()) GTEST_SKIP() << "SKIPPED: this build has no OpenSSL libcrypto";
  ScopedTempDir dir;
  VaeConfig c = vae_config(VaeKind::Vae, 8);
  ConvVAE m(c, Device::CPU);
  m.init(1);
  const std::string path = dir.file("model.safetensors");
  save_params(path, m.params(), c.to_json());
  EXPECT_EQ(read_safetensors(path).metadata.at("sha256").size(), 64u);
  std::string bytes = read_file(path);
  bytes[bytes.size() - 1000] = static_cast<char>(bytes[bytes.size() - 1000] ^ 0x20);  // inside enc/dec weights
  write_file_atomic(path, bytes);
  const std::string msg = error_of([&] { load_vae(path, Device::CPU); });
  EXPECT_CONTAINS(msg, path + ": checksum mismatch");
  EXPECT_EQ(msg.find("failed at"), std::string::npos);
}

TEST(Metrics, KeepRowsDropsRowsOfUnsavedEpochs) {
  ScopedTempDir dir;
  const std::string path = dir.file("m.csv");
  {
    MetricsCsv m(path, {"epoch", "loss"}, false);
    for (int e = 1; e <= 3; ++e) m.append({double(e), 0.5 * e});
  }
  MetricsCsv m(path, {"epoch", "loss"}, true);
  EXPECT_EQ(m.rows(), 3);
  m.keep_rows(5);  // more than there are: unchanged
  EXPECT_EQ(read_file(path), "epoch,loss\n1,0.5\n2,1\n3,1.5\n");
  m.keep_rows(2);
  EXPECT_EQ(m.rows(), 2);
  EXPECT_EQ(read_file(path), "epoch,loss\n1,0.5\n2,1\n");
  m.append({3, 7});
  EXPECT_EQ(read_file(path), "epoch,loss\n1,0.5\n2,1\n3,7\n");
}

namespace {

ClassifierTrainOptions classifier_options(const std::string& data, const std::string& out) {
  return cuvae::test::tiny_classifier_options(data, out, 2, 2, 4);
}

}  // namespace

TEST(ClassifierResume, InterruptedRunResumesBitForBit) {
  ScopedTempDir tmp;
  write_synthetic_idx(tmp.path(), "train", 128, 1);
  write_synthetic_idx(tmp.path(), "t10k", 32, 2);
  std::ostringstream log;
  // Two epochs straight through (one-cycle schedule, augmentation on).
  ClassifierTrainOptions a = classifier_options(tmp.path(), tmp.file("a"));
  train_classifier(a, log);
  // The same run stopped after epoch 1 as an interrupted one would be, then resumed.
  ClassifierTrainOptions b = classifier_options(tmp.path(), tmp.file("b"));
  b.stop_after = 1;
  ASSERT_EQ(train_classifier(b, log).size(), 1u);
  EXPECT_FALSE(file_exists(b.out + "/confusion.png"));
  b.stop_after = 0;
  b.resume = true;
  std::vector<ClassifierEpochRecord> rb = train_classifier(b, log);
  ASSERT_EQ(rb.size(), 1u);
  EXPECT_EQ(rb[0].epoch, 2);
  // Weights, BatchNorm statistics, num_batches_tracked, momentum: the same bytes.
  EXPECT_EQ(read_file(a.out + "/model.safetensors"), read_file(b.out + "/model.safetensors"));
  EXPECT_EQ(read_file(a.out + "/optim.safetensors"), read_file(b.out + "/optim.safetensors"));
  const std::string csv = read_file(b.out + "/metrics.csv");
  EXPECT_EQ(std::count(csv.begin(), csv.end(), '\n'), 3) << csv;
  // Resuming a finished run does nothing.
  EXPECT_TRUE(train_classifier(b, log).empty());
}

TEST(ClassifierResume, OneEpochThenResumeToTwoEqualsTwoWithAConstantSchedule) {
  ScopedTempDir tmp;
  write_synthetic_idx(tmp.path(), "train", 128, 1);
  write_synthetic_idx(tmp.path(), "t10k", 32, 2);
  std::ostringstream log;
  ClassifierTrainOptions a = classifier_options(tmp.path(), tmp.file("a"));
  a.schedule = "constant";
  a.lr = 0.02f;
  train_classifier(a, log);
  ClassifierTrainOptions b = a;
  b.out = tmp.file("b");
  b.epochs = 1;
  train_classifier(b, log);
  b.epochs = 2;
  b.resume = true;
  train_classifier(b, log);
  EXPECT_EQ(read_file(a.out + "/model.safetensors"), read_file(b.out + "/model.safetensors"));
  // A resume with another schedule or batch size is refused before any work.
  b.epochs = 3;
  b.schedule = "cosine";
  EXPECT_CONTAINS(error_of([&] { train_classifier(b, log); }), "--resume: the run used --schedule constant");
  // The job names its options by field; the command line (above) by flag.
  EXPECT_CONTAINS(cuvae::test::what_of([&] { train_classifier(b, log); }), "resume: the run used schedule constant");
  b.schedule = "constant";
  b.batch = 16;
  EXPECT_CONTAINS(error_of([&] { train_classifier(b, log); }), "resume with the run's own --batch");
}

TEST(VaeResume, StateFileWinsOverAModelFileOneWriteBehind) {
  ScopedTempDir tmp;
  write_synthetic_idx(tmp.path(), "train", 128, 1);
  write_synthetic_idx(tmp.path(), "t10k", 32, 2);
  std::ostringstream log;
  VaeTrainOptions a;
  a.data_dir = tmp.path();
  a.out = tmp.file("a");
  a.epochs = 2;
  a.batch = 32;
  a.latent = 4;
  a.seed = 2;
  a.device = DeviceRequest::CPU;
  a.progress = false;
  a.images = false;
  train_vae(a, log);
  VaeTrainOptions b = a;
  b.out = tmp.file("b");
  b.epochs = 1;
  train_vae(b, log);
  // As if killed after optim.safetensors was written but before model.safetensors: the model file
  // holds other weights (and a metrics row of an unsaved epoch exists).
  auto stale = load_vae(b.out + "/model.safetensors", Device::CPU);
  stale->init(99);
  save_params(b.out + "/model.safetensors", stale->params(), stale->config().to_json());
  write_file_atomic(b.out + "/metrics.csv", read_file(b.out + "/metrics.csv") + "2,1,1,1,1,1,1,1\n");
  b.epochs = 2;
  b.resume = true;
  train_vae(b, log);
  EXPECT_EQ(read_file(a.out + "/model.safetensors"), read_file(b.out + "/model.safetensors"));
  const std::string csv = read_file(b.out + "/metrics.csv");
  EXPECT_EQ(std::count(csv.begin(), csv.end(), '\n'), 3) << csv;
  // Killed after the first training state but before the first model.safetensors.
  VaeTrainOptions c = a;
  c.out = tmp.file("c");
  c.epochs = 1;
  train_vae(c, log);
  ASSERT_EQ(std::remove((c.out + "/model.safetensors").c_str()), 0);
  c.epochs = 2;
  c.resume = true;
  train_vae(c, log);
  EXPECT_EQ(read_file(a.out + "/model.safetensors"), read_file(c.out + "/model.safetensors"));
}

TEST(Memory, SizesThatCannotFitFailWithAMessage) {
  const uint64_t avail = available_host_memory();
  EXPECT_GT(avail, uint64_t{1} << 20);
  const std::string msg = error_of([&] { check_host_allocation(avail + (uint64_t{1} << 32), "a test tensor"); });
  EXPECT_CONTAINS(msg, "cannot allocate");
  EXPECT_CONTAINS(msg, "try a smaller --batch or --n");
  EXPECT_NO_THROW(check_host_allocation(1 << 20, "small"));
  // A tensor far beyond the machine's memory throws instead of aborting.
  EXPECT_CONTAINS(error_of([] { Tensor t({int64_t{1} << 20, int64_t{1} << 20}, Device::CPU); }), "cannot allocate");
  EXPECT_CONTAINS(error_of([] { Tensor t({int64_t{1} << 40, int64_t{1} << 40}, Device::CPU); }), "cannot be addressed");
}

// A killed write leaves "<name>.tmp.<pid>" (write_file_atomic) or "<name>.tmp.<pid>.png" (plots);
// both are removed once their process is gone, files of live processes and other files are kept.
TEST(Interruptions, StaleTemporaryFilesOfDeadProcessesAreRemoved) {
  cuvae::testing::ScopedTempDir dir;
  // A pid far above any real one on Linux (pid_max is at most 2^22): no such process.
  const std::string dead = "999999999", live = std::to_string(static_cast<long>(::getpid()));
  for (const std::string& name : {"model.safetensors.tmp." + dead, "curves.png.tmp." + dead + ".png",
                                  "metrics.csv.tmp." + live, "samples.png.tmp." + live + ".png", std::string("notes.tmp.txt")})
    std::ofstream(dir.path() + "/" + name) << "x";
  EXPECT_EQ(remove_stale_temp_files(dir.path()), 2);
  EXPECT_FALSE(file_exists(dir.path() + "/model.safetensors.tmp." + dead));
  EXPECT_FALSE(file_exists(dir.path() + "/curves.png.tmp." + dead + ".png"));
  EXPECT_TRUE(file_exists(dir.path() + "/metrics.csv.tmp." + live));
  EXPECT_TRUE(file_exists(dir.path() + "/samples.png.tmp." + live + ".png"));
  EXPECT_TRUE(file_exists(dir.path() + "/notes.tmp.txt"));
}

// Float options land in config.json and checkpoint metadata as the decimals that were typed.
TEST(Config, FloatOptionsReadBackAsTyped) {
  EXPECT_EQ(nlohmann::json(typed_decimal(1e-3f)).dump(), "0.001");
  EXPECT_EQ(nlohmann::json(typed_decimal(0.1f)).dump(), "0.1");
  EXPECT_EQ(nlohmann::json(typed_decimal(5e-4f)).dump(), "0.0005");
  EXPECT_EQ(nlohmann::json(typed_decimal(1.0f)).dump(), "1.0");
  EXPECT_NE(nlohmann::json(static_cast<double>(1e-3f)).dump(), "0.001");  // what a plain widening gives
  VaeConfig c;
  c.beta = 0.1f;
  EXPECT_EQ(c.to_json()["beta"].dump(), "0.1");
  EXPECT_EQ(VaeConfig::from_json(c.to_json(), "test").beta, 0.1f);
}
