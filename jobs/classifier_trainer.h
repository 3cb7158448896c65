// Training and evaluation of the ResNet18 classifier: the `cuvae train-classifier` and
// `cuvae eval-classifier` jobs.
#pragma once

#include <cstdint>
#include <ostream>
#include <string>
#include <vector>

#include "core/context.h"
#include "io/dataset.h"
#include "jobs/evaluate.h"
#include "jobs/trainer.h"
#include "models/resnet18.h"

namespace cuvae {

/// Everything `cuvae train-classifier` takes.
struct ClassifierTrainOptions {
  std::string dataset = "mnist";      ///< mnist | fashion-mnist | cifar10
  std::string data_dir;               ///< empty: default_data_dir(dataset)
  std::string out = "runs/classifier";
  int epochs = 10;
  int batch = 256;
  int accumulate = 1;                 ///< --accumulate A: micro-batches of batch/A images whose gradients are summed
  int64_t width = 64;                 ///< ResNet18 base width (64 = standard)
  float lr = 0.1f;                    ///< peak learning rate
  float momentum = 0.9f;
  float weight_decay = 5e-4f;
  bool nesterov = true;
  std::string schedule = "onecycle";  ///< onecycle | cosine | constant
  bool augment = true;                ///< random crop (and flip where the data set allows)
  int pad = -1;                       ///< crop padding; −1: 2 for 28×28, 4 for 32×32
  uint64_t seed = 0;
  DeviceRequest device = DeviceRequest::Auto;
  int64_t train_limit = 0;            ///< use the first N training images (0 = all)
  int64_t test_limit = 0;             ///< evaluate on the first N test images (0 = all)
  bool progress = true;
  bool cuda_graph = true;             ///< --cuda-graph on|off: on CUDA, replay one captured training step
  /// Continue the run in `out` from its last saved epoch (optim.safetensors: weights, BatchNorm
  /// statistics, momentum buffers, step, seed, schedule length): bit for bit the run that was not
  /// interrupted, when `epochs` is the run's own. A larger `epochs` extends the run; the schedule
  /// is then laid over the new length from the current step.
  bool resume = false;
  /// Stop after this many epochs as an interrupted run would (the run folder stays resumable);
  /// 0 = train every epoch. For tests of --resume.
  int stop_after = 0;
  /// Under mpirun with several ranks: batch norm with the statistics of the global batch
  /// (BatchNorm2d::set_sync), so N ranks train what one process trains. No effect in one process.
  bool sync_batchnorm = false;
};

/// True when horizontal flips keep the class (FashionMNIST, CIFAR-10); false for digits.
bool flip_keeps_class(const std::string& dataset);

/// One row of the classifier's metrics.csv.
struct ClassifierEpochRecord {
  int epoch = 0;
  double lr = 0;            ///< learning rate of the epoch's last step
  double train_loss = 0;    ///< mean cross-entropy over the epoch's steps (nats per image)
  double train_acc = 0;     ///< fraction of training images (augmented) classified right
  double test_loss = 0;     ///< test-set mean cross-entropy (nats per image)
  double test_acc = 0;      ///< test-set accuracy
  double seconds = 0;       ///< wall time of the training steps
  double images_per_s = 0;  ///< training throughput
};


/// Trains a ResNet18 as `opt` says (SGD with Nesterov momentum and weight decay under the
/// schedule, augmentation on the device), writing into opt.out: config.json, metrics.csv (one
/// row per epoch), optim.safetensors (the training state) and model.safetensors after every
/// epoch, and at the end per_class.csv,
/// confusion.csv and confusion.png. Progress and a summary go to `log`. Throws cuvae::Error on
/// bad options or data and when the loss becomes non-finite (the last good checkpoint is kept).
std::vector<ClassifierEpochRecord> train_classifier(const ClassifierTrainOptions& opt, std::ostream& log);


}  // namespace cuvae
