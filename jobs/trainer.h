// The run skeleton every trainer shares: data, context, resume, config.json, metrics.csv, the
// step table, the captured training step, the per-epoch checks and the atomic per-epoch writes.
// A model brings only what is its own (a Trainee): the model and optimizer, one training step,
// its evaluation and the files it adds. `cuvae train-vae` and `cuvae train-classifier` are
// run_training with the VAE's and the classifier's Trainee.
#pragma once

#include <cstdint>
#include <ostream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/buffer.h"
#include "core/context.h"
#include "core/distributed.h"
#include "core/gpu_collectives.h"
#include "io/dataset.h"
#include "io/safetensors.h"
#include "kernels/augment.h"
#include "kernels/step_state.h"

namespace cuvae {

/// Learning rate at optimizer step `step` (0-based) of `total` for schedule `name`:
///   "onecycle": torch.optim.lr_scheduler.OneCycleLR (Smith & Topin, "Super-Convergence", 2019)
///     with its defaults (pct_start 0.3, cosine annealing, div_factor 25, final_div_factor 1e4):
///     from max_lr/25 up to max_lr over the first 30% of the steps, then down to max_lr/2.5e5;
///   "cosine": max_lr·½(1 + cos(π·step/total)) (Loshchilov & Hutter, SGDR, ICLR 2017, one cycle);
///   "constant": max_lr.
/// Throws cuvae::Error naming the schedule when it is unknown, or on total < 1.
double lr_at(const std::string& name, double max_lr, int64_t step, int64_t total);

/// The options of a training run that every trainer has.
struct RunSpec {
  std::string command;       ///< "train-vae" | "train-classifier": config.json's "command" and messages
  std::string dataset;       ///< mnist | fashion-mnist | cifar10
  std::string data_dir;      ///< empty: default_data_dir(dataset)
  std::string out;           ///< the run folder
  int epochs = 1;            ///< total epochs of the run (with resume: up to this many in all)
  int batch = 1;             ///< images per training step (the last partial batch of an epoch is dropped)
  /// Gradient accumulation: each rank's share of a step runs as this many micro-batches of
  /// batch / (ranks · accumulate) images, forward and backward one after another, and the step
  /// updates once from the mean of their gradients. The training state does not depend on it.
  int accumulate = 1;
  int stop_after = 0;        ///< stop after this many epochs as an interrupted run would (0 = all)
  int64_t train_limit = 0;   ///< the first N training images (0 = all)
  int64_t test_limit = 0;    ///< the first N test images (0 = all)
  uint64_t seed = 0;         ///< initialisation, shuffling, ε and augmentation (with resume: the run's own)
  DeviceRequest device = DeviceRequest::Auto;
  bool resume = false;       ///< continue the run in `out` from its last saved epoch
  bool progress = true;      ///< progress bar on stderr
  bool cuda_graph = true;    ///< on CUDA, replay one captured training step
};

/// The RunSpec of a trainer's options `o` for `command`: its fields of the same names (dataset,
/// data_dir, out, epochs, batch, accumulate, train_limit, test_limit, seed, device, resume, progress,
/// cuda_graph); stop_after stays 0 for the caller to set.
template <class TrainOptions>
RunSpec run_spec_of(const std::string& command, const TrainOptions& o) {
  RunSpec spec;
  spec.command = command;
  spec.dataset = o.dataset;
  spec.data_dir = o.data_dir;
  spec.out = o.out;
  spec.epochs = o.epochs;
  spec.batch = o.batch;
  spec.accumulate = o.accumulate;
  spec.train_limit = o.train_limit;
  spec.test_limit = o.test_limit;
  spec.seed = o.seed;
  spec.device = o.device;
  spec.resume = o.resume;
  spec.progress = o.progress;
  spec.cuda_graph = o.cuda_graph;
  return spec;
}

/// Where a run stands; saved in the training state (metadata epoch, step and seed).
struct RunPosition {
  int epoch = 0;                ///< epochs finished
  int64_t step = 0;             ///< optimizer steps taken
  uint64_t seed = 0;            ///< the run's seed
  int64_t steps_per_epoch = 0;  ///< ⌊training images / batch⌋
};

/// What the end of one epoch reports to the skeleton.
struct EpochOutcome {
  std::vector<double> row;  ///< this epoch's metrics.csv row (the Trainee's columns)
  double test_loss = 0;     ///< the test loss, nats per image (a non-finite one stops the run)
  std::string summary;      ///< the log line after "epoch N: "
};

/// What one model brings to run_training. The skeleton calls, in order: create or restore,
/// check_test_data, config_json, metrics_columns, describe, step_table; then per epoch
/// begin_epoch, per step (possibly captured into a CUDA graph and replayed) for each
/// micro-batch the batch and forward_backward (the skeleton sums their gradients), then the
/// ranks' allreduce and update; now and then progress; at the epoch's end end_epoch, add_state
/// and save_model; at the run's end finish.
class Trainee {
 public:
  virtual ~Trainee() = default;

  /// Throws cuvae::Error, naming `what`, when `test` does not fit the model (image shape, classes).
  virtual void check_test_data(const Dataset& test, const std::string& what) const = 0;
  /// A fresh model for `train`'s images and a zero optimizer state, initialised from `seed`.
  virtual void create(Context& ctx, const Dataset& train, uint64_t seed) = 0;
  /// The model and optimizer state from the training state `state` (read from `path`), with
  /// this Trainee's own metadata; `pos` holds the run's epoch, step and seed read from it.
  /// Throws cuvae::Error naming `path` on a missing or malformed field, or when the state does
  /// not fit the data or `pos`.
  virtual void restore(Context& ctx, const Dataset& train, const SafetensorsFile& state, const std::string& path,
                       const RunPosition& pos, std::ostream& log) = 0;
  /// True when the model file at `path` holds the model as it is now (false when it is behind,
  /// damaged or missing: the skeleton rewrites it).
  virtual bool model_file_matches(const std::string& path) const = 0;
  /// Writes model.safetensors (atomically) to `path`.
  virtual void save_model(const std::string& path) const = 0;

  /// config.json's model-specific keys (merged over the skeleton's command, dataset, data,
  /// epochs, batch, seed, device, train_images and test_images).
  virtual nlohmann::json config_json() const = 0;
  /// The columns of metrics.csv (the first is "epoch"); `existing` is the header line of the
  /// run's metrics.csv when resuming (empty otherwise), for older layouts.
  virtual std::vector<std::string> metrics_columns(const std::string& existing) = 0;
  /// The "training …" line's model part: name, size, parameters (before " on N images").
  virtual std::string describe() const = 0;
  /// The "training …" line's tail after the steps per epoch (optimizer, augmentation), or "".
  virtual std::string describe_method() const { return ""; }
  /// The scalars of steps first … total − 1 (learning rate, KL weight, Adam's corrections).
  virtual std::vector<StepScalars> step_table(int64_t first, int64_t total) const = 0;
  /// num_batches_tracked as the run stands (BatchNorm's counter; a model without BatchNorm: `step`).
  virtual int64_t num_batches_tracked(int64_t step) const { return step; }
  /// Philox offsets one training step uses.
  virtual uint64_t philox_per_step() const { return 1; }
  /// The augmentation applied to training batches.
  virtual AugmentConfig augment() const { return {}; }

  /// Sets the epoch's counters to zero (enqueued on the context's stream).
  virtual void begin_epoch(Context& ctx) { (void)ctx; }
  /// Forward, loss and backward of one batch (x [n, C, H, W] in [0, 1], labels [n]) under the
  /// step state `state`: gradients() becomes the gradient of the batch's mean loss (overwritten,
  /// not accumulated). Everything that changes from step to step must come from `state` (the
  /// step is captured into a CUDA graph and replayed). Under gradient accumulation it runs once
  /// per micro-batch of a step.
  virtual void forward_backward(Context& ctx, Tensor& x, IntBuffer& labels, const StepState* state) = 0;
  /// The flat gradients of every parameter: written by forward_backward, reduced by the
  /// skeleton (micro-batches, ranks), read by update.
  virtual Tensor& gradients() = 0;
  /// The optimizer step from gradients() under `state` (the step's learning rate and corrections).
  virtual void update(Context& ctx, const StepState* state) = 0;
  /// The loss forward_backward leaves behind, for the loss monitor: [1] mean, nats per image.
  virtual const Tensor& step_loss() const = 0;
  /// The progress bar's text after `steps` of this epoch's steps of `batch` images
  /// (mean_loss: the monitor's mean training loss so far, nats per image).
  virtual std::string progress(Context& ctx, double mean_loss, int64_t steps, int64_t batch, double seconds) = 0;
  /// The epoch's end: evaluation on `test` and the metrics row. `at` is the step state after
  /// the epoch's last step, `epoch` the 1-based epoch, `seconds` the wall time of its steps.
  virtual EpochOutcome end_epoch(Context& ctx, const Dataset& test, const StepState& at, int epoch,
                                 double mean_loss, double seconds) = 0;
  /// The training state's tensors and metadata beyond the skeleton's (format, epoch, step,
  /// seed): weights, buffers, optimizer moments, config, schedule. The tensors may be borrowed
  /// (SafetensorsWriter::add_view): `w` is written before this trainee changes.
  virtual void add_state(SafetensorsWriter& w) const = 0;
  /// The tensors every data-parallel rank must hold equal: the flat parameters and the optimizer
  /// state (not BatchNorm's running statistics, which each rank keeps from its own batches, as
  /// PyTorch DDP does without SyncBatchNorm). Broadcast from rank 0 before the first step and
  /// compared by checksum after every epoch.
  virtual std::vector<Tensor*> replicated() = 0;
  /// Data-parallel: buffers each rank updates from its own batches (BatchNorm's running
  /// statistics) that are set to rank 0's before every evaluation, so that the ranks, which
  /// evaluate one shard of the test set each, hold one model. Default: none.
  virtual std::vector<Tensor*> rank0_buffers() { return {}; }
  /// Set by run_training: the ranks whose gradients step() sums (null or one rank: none).
  virtual void set_communicator(const Communicator* comm) { comm_ = comm; }
  /// Set by run_training on CUDA with more than one rank (and by the GPU tests with one): the
  /// NCCL communicator that averages the gradients on the GPUs; null: none.
  void set_gpu_communicator(const NcclCommunicator* nccl) { nccl_ = nccl; }
  /// The run's last files (images, confusion matrix) after the last epoch; paths go to `log`.
  virtual void finish(Context& ctx, const Dataset& test, const std::string& out, uint64_t seed, std::ostream& log) = 0;

 protected:
  const Communicator* comm_ = nullptr;
  const NcclCommunicator* nccl_ = nullptr;

 public:
  /// Between the backward passes and update: `grads` (the flat gradients) becomes their mean
  /// over the ranks. Each rank's gradient is the mean over its share of the global batch, so the
  /// mean over ranks is the global batch's gradient. On the GPU: one ncclAllReduce (ncclAvg)
  /// enqueued on the context's stream, inside the captured step; on the CPU: one MPI
  /// sum-allreduce of host memory, then · 1/N. Nothing for one process without a GPU
  /// communicator. Throws cuvae::Error for GPU gradients of several ranks without an NCCL
  /// communicator.
  void reduce_gradients(Context& ctx, Tensor& grads);
  /// Wall seconds reduce_gradients spent since the last call (run_training reports the share of
  /// each epoch's steps), then 0.
  double take_reduce_seconds() {
    const double s = reduce_seconds_;
    reduce_seconds_ = 0;
    return s;
  }

 private:
  double reduce_seconds_ = 0;
};

/// Runs the training `spec` describes with `trainee`, writing into spec.out: config.json,
/// metrics.csv (one row per epoch), optim.safetensors (the whole training state) and
/// model.safetensors after every epoch, the Trainee's last files and curves.png at the end.
/// With spec.resume it continues from the last saved epoch, bit for bit the run that was not
/// interrupted. Progress goes to stderr, a summary to `log`. Returns the epochs run (0 when
/// the run already had spec.epochs). Throws cuvae::Error on bad data, an unwritable run folder,
/// a missing or damaged training state, and when a loss becomes non-finite (naming the step;
/// the last good checkpoint is kept).
int run_training(const RunSpec& spec, Trainee& trainee, std::ostream& log);

/// `v` with `digits` digits after the point ("%.*f").
std::string fixed(double v, int digits = 2);

}  // namespace cuvae
