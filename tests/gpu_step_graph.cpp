// CUDA graph replay of the training steps: a run whose step is captured once and replayed must
// equal, bit for bit, the same run launching every kernel eagerly (same seed, same GPU, the
// deterministic cuDNN algorithms). Both trainers, two epochs of a few steps each (so the graph is
// replayed across an epoch boundary, with a new batch order), with and without gradient
// accumulation (--accumulate 2 captures two micro-batches per step). Skipped with a reason where
// no GPU is.
#include <gtest/gtest.h>

#include <sstream>

#include "core/context.h"
#include "jobs/classifier_trainer.h"
#include "jobs/vae_trainer.h"
#include "models/checkpoint.h"
#include "tests/synthetic_data.h"
#include "tests/temp_dir.h"

using namespace cuvae;
using cuvae::test::write_synthetic_idx;

TEST(GpuStepGraph, VaeReplayEqualsEagerBitForBit) {
  if (!cuda_available()) GTEST_SKIP() << "no CUDA GPU (" << cuvae::cuda_unavailable_reason() << "): CUDA graph replay of the VAE step is not checked";
  cuvae::testing::ScopedTempDir tmp;
  write_synthetic_idx(tmp.path(), "train", 320, 1);
  write_synthetic_idx(tmp.path(), "t10k", 64, 2);
  for (int accumulate : {1, 2}) {  // 2: two micro-batches per captured step (row base, summed gradients)
    std::vector<std::vector<float>> weights;
    for (bool graph : {false, true}) {
      VaeTrainOptions o;
      o.dataset = "mnist";
      o.data_dir = tmp.path();
      o.out = tmp.file(graph ? "graph" : "eager");
      o.epochs = 2;
      o.batch = 64;  // 5 steps per epoch: 1 eager warm-up, then 9 replays
      o.seed = 5;
      o.binarize = true;  // the binarization offset must follow the step too
      o.kl_warmup = 1;    // and β_t
      o.device = DeviceRequest::CUDA;
      o.progress = false;
      o.images = false;
      o.cuda_graph = graph;
      o.accumulate = accumulate;
      o.out += "-" + std::to_string(accumulate);
      std::ostringstream log;
      train_vae(o, log);
      if (graph) {
        EXPECT_NE(log.str().find("cuda graph: one captured training step replayed 4 times"), std::string::npos) << log.str();
      }
      weights.push_back(load_vae(o.out + "/model.safetensors", Device::CPU)->params().flat_values().to_vector());
    }
    EXPECT_EQ(weights[0], weights[1]) << "--accumulate " << accumulate;
  }
}

TEST(GpuStepGraph, ClassifierReplayEqualsEagerBitForBit) {
  if (!cuda_available()) GTEST_SKIP() << "no CUDA GPU (" << cuvae::cuda_unavailable_reason() << "): CUDA graph replay of the ResNet-18 step is not checked";
  cuvae::testing::ScopedTempDir tmp;
  write_synthetic_idx(tmp.path(), "train", 320, 1);
  write_synthetic_idx(tmp.path(), "t10k", 64, 2);
  for (int accumulate : {1, 2}) {
    std::vector<std::vector<float>> weights, stats;
    std::vector<int64_t> tracked;
    for (bool graph : {false, true}) {
      ClassifierTrainOptions o;
      o.dataset = "mnist";
      o.data_dir = tmp.path();
      o.out = tmp.file(graph ? "graph" : "eager");
      o.epochs = 2;
      o.batch = 64;
      o.width = 8;
      o.seed = 5;
      o.device = DeviceRequest::CUDA;
      o.progress = false;
      o.cuda_graph = graph;
      o.accumulate = accumulate;
      o.out += "-" + std::to_string(accumulate);
      std::ostringstream log;
      train_classifier(o, log);
      if (graph) {
        EXPECT_NE(log.str().find("cuda graph: one captured training step replayed 4 times"), std::string::npos) << log.str();
      }
      auto m = load_resnet(o.out + "/model.safetensors", Device::CPU);
      weights.push_back(m->params().flat_values().to_vector());
      stats.push_back(m->buffers().flat_values().to_vector());
      tracked.push_back(m->num_batches_tracked());
    }
    EXPECT_EQ(weights[0], weights[1]) << "--accumulate " << accumulate;
    EXPECT_EQ(stats[0], stats[1]);  // running_mean / running_var
    EXPECT_EQ(tracked[0], 10 * accumulate);  // every micro-batch's forward
    EXPECT_EQ(tracked[1], 10 * accumulate);
  }
}
