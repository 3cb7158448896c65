#include "jobs/trainer.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <memory>
#include <sstream>

#include "core/check.h"
#include "core/step_graph.h"
#include "io/fs.h"
#include "io/metrics.h"
#include "jobs/analysis/plots.h"
#include "jobs/batching.h"
#include "kernels/loss_monitor.h"
#include "kernels/residual.h"

namespace cuvae {

namespace {
constexpr double kLrPi = 3.14159265358979323846;
}  // namespace

double lr_at(const std::string& name, double max_lr, int64_t step, int64_t total) {
  CUVAE_CHECK(total >= 1, "lr schedule: total steps must be at least 1, got " << total);
  step = std::clamp<int64_t>(step, 0, total - 1);
  if (name == "constant") return max_lr;
  if (name == "cosine") return max_lr * 0.5 * (1.0 + std::cos(kLrPi * static_cast<double>(step) / static_cast<double>(total)));
  if (name == "onecycle") {
    // OneCycleLR's two phases end at steps 0.3·total − 1 and total − 1 (anneal = cosine).
    const double initial = max_lr / 25.0, final_lr = initial / 1e4;
    const double end1 = 0.3 * static_cast<double>(total) - 1.0, end2 = static_cast<double>(total) - 1.0;
    auto cos_anneal = [](double start, double end, double pct) { return end + (start - end) / 2.0 * (1.0 + std::cos(kLrPi * pct)); };
    const double s = static_cast<double>(step);
    if (s <= end1 || end2 <= end1) return cos_anneal(initial, max_lr, end1 > 0 ? s / end1 : 1.0);
    return cos_anneal(max_lr, final_lr, (s - end1) / (end2 - end1));
  }
  CUVAE_FAIL("unknown learning-rate schedule '" << name << "': expected onecycle, cosine or constant");
}

std::string fixed(double v, int digits) {
  char b[64];
  std::snprintf(b, sizeof b, "%.*f", digits, v);
  return b;
}

namespace {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

/// The paths of a run folder's files.
struct RunFiles {
  std::string model, state, metrics, config;
  explicit RunFiles(const std::string& out)
      : model(out + "/model.safetensors"), state(out + "/optim.safetensors"), metrics(out + "/metrics.csv"),
        config(out + "/config.json") {}
};

/// The run's epoch, step and seed from the training state's metadata.
void read_position(const SafetensorsFile& state, const std::string& path, RunPosition& pos) {
  try {
    pos.epoch = std::stoi(state.metadata.at("epoch"));
    pos.step = std::stoll(state.metadata.at("step"));
    pos.seed = std::stoull(state.metadata.at("seed"));
  } catch (const std::exception&) {
    CUVAE_FAIL(path << ": metadata fields epoch, step and seed are missing or not integers");
  }
}

/// Step 1: the folder can be written, and what an interrupted write left there is gone.
void prepare_run_folder(const RunSpec& spec, std::ostream& log) {
  ensure_writable_dir(spec.out, "out");  // an out folder that cannot be written fails before any training
  if (spec.resume) {
    const int stale = remove_stale_temp_files(spec.out);
    if (stale > 0) log << "removed " << stale << " partial file(s) an interrupted write left in " << spec.out << "\n";
  }
}

/// Step 2: the model and optimizer, fresh or from the training state. False when a resumed
/// run already has all its epochs.
bool create_or_restore(const RunSpec& spec, const RunFiles& files, Context& ctx, const Dataset& train,
                       Trainee& trainee, RunPosition& pos, std::ostream& log, bool writes) {
  if (!spec.resume) {
    trainee.create(ctx, train, pos.seed);
    return true;
  }
  const SafetensorsFile state = read_safetensors(files.state);
  read_position(state, files.state, pos);
  trainee.restore(ctx, train, state, files.state, pos, log);
  // The training state holds everything of one step, so a kill between its write and the model
  // file's is harmless: the model file is brought up to the saved state.
  if (writes && !trainee.model_file_matches(files.model)) trainee.save_model(files.model);
  if (pos.epoch >= spec.epochs) {
    log << spec.out << " already has " << pos.epoch << " epochs (--epochs " << spec.epochs << "): nothing to do\n";
    return false;
  }
  log << "resuming " << spec.out << " after epoch " << pos.epoch << " (step " << pos.step << ")\n";
  return true;
}

/// Step 3: config.json, the skeleton's keys with the Trainee's over them.
void write_config(const RunSpec& spec, const RunFiles& files, const TrainTestData& data, const Context& ctx,
                  const Trainee& trainee, const RunPosition& pos) {
  nlohmann::json jc = {{"command", spec.command},        {"dataset", spec.dataset},    {"data", data.dir},
                       {"epochs", spec.epochs},          {"batch", spec.batch},        {"seed", pos.seed},
                       {"device", ctx.description()},    {"train_images", data.train.n}, {"test_images", data.test.n}};
  if (spec.accumulate > 1) jc["accumulate"] = spec.accumulate;
  jc.update(trainee.config_json());
  write_file_atomic(files.config, jc.dump(2) + "\n");
}

/// The header line of the run's metrics.csv when resuming, else "".
std::string existing_header(const RunSpec& spec, const RunFiles& files) {
  if (!spec.resume || !file_exists(files.metrics)) return "";
  const std::string text = read_file(files.metrics);
  return text.substr(0, text.find('\n'));
}

/// Throws the error of a non-finite training loss at step `bad`, saying which checkpoint is kept.
[[noreturn]] void fail_non_finite(const RunSpec& spec, const RunFiles& files, int64_t bad, int epoch, int first_epoch) {
  std::ostringstream os;
  os << "the training loss became non-finite (NaN or Inf) at step " << bad << " (epoch " << epoch + 1 << "); stopping. ";
  if (epoch > first_epoch || spec.resume || file_exists(files.model))
    os << "The last good checkpoint is kept in " << files.model;
  else
    os << "No checkpoint was written; try a smaller --lr";
  CUVAE_FAIL(os.str());
}

/// Step 5, once an epoch: the metrics row, then the whole training state (one atomic file), then
/// the model. Whenever the process is killed, resume finds a consistent state and redoes at
/// most this epoch.
void save_epoch(const RunFiles& files, MetricsCsv& metrics, const EpochOutcome& o, const Trainee& trainee,
                int epoch, int64_t step, uint64_t seed) {
  metrics.append(o.row);
  SafetensorsWriter w;
  trainee.add_state(w);
  w.set_metadata("format", "cuvae-optim");
  w.set_metadata("epoch", std::to_string(epoch));
  w.set_metadata("step", std::to_string(step));
  w.set_metadata("seed", std::to_string(seed));
  w.write(files.state);
  trainee.save_model(files.model);
}

/// A stream that drops everything: the log of the ranks that do not write.
class NullStream : public std::ostream {
 public:
  NullStream() : std::ostream(nullptr) {}
};

/// Data-parallel: the replicated tensors' FNV-1a checksum (host copies).
uint64_t replicated_checksum(Trainee& trainee) {
  uint64_t h = fnv1a64(nullptr, 0);
  for (Tensor* t : trainee.replicated()) {
    const std::vector<float> v = t->to_vector();
    h = fnv1a64(v.data(), v.size() * sizeof(float), h);
  }
  return h;
}

/// Data-parallel: throws naming the first rank whose `values` differs from rank 0's.
void require_same_on_ranks(const Communicator& comm, uint64_t value, const std::string& what) {
  const std::vector<uint64_t> all = comm.allgather(value);
  for (size_t r = 1; r < all.size(); ++r)
    if (all[r] != all[0]) CUVAE_FAIL("rank " << r << " has another " << what << " than rank 0; stopping");
}

/// Data-parallel: `tensors` become rank 0's, through NCCL for GPU tensors (on the context's
/// stream, then synchronised) and MPI for host ones.
void broadcast_from_rank0(const Communicator& comm, const NcclCommunicator* nccl, const std::vector<Tensor*>& tensors,
                          const Context& ctx) {
  for (Tensor* t : tensors) {
    if (t->device() == Device::CUDA) {
      CUVAE_REQUIRE(nccl != nullptr, "data-parallel training on GPUs needs NCCL (" << nccl_version() << ")");
      nccl->broadcast(t->data(), t->numel(), ctx.stream());
    } else {
      comm.broadcast(t->data(), t->numel());
    }
  }
  ctx.synchronize();
}

}  // namespace

void Trainee::reduce_gradients(Context& ctx, Tensor& grads) {
  if (grads.device() == Device::CUDA) {
    if (nccl_ != nullptr) {
      nccl_->allreduce_mean(grads.data(), grads.numel(), ctx.stream());  // enqueued: timed as part of the step
      return;
    }
    CUVAE_REQUIRE(comm_ == nullptr || !comm_->distributed(),
                  "data-parallel training on GPUs needs an NCCL communicator (" << nccl_version() << ")");
    return;
  }
  if (comm_ == nullptr || !comm_->distributed()) return;
  const auto t0 = Clock::now();
  comm_->allreduce_sum(grads.data(), grads.numel());
  const float inv = 1.0f / static_cast<float>(comm_->size());
  float* g = grads.data();
  for (int64_t i = 0, n = grads.numel(); i < n; ++i) g[i] *= inv;
  reduce_seconds_ += seconds_since(t0);
}

int run_training(const RunSpec& spec, Trainee& trainee, std::ostream& log_all) {
  const Communicator& comm = Communicator::world();  // throws when launched as many ranks without MPI
  NullStream quiet;
  std::ostream& log = comm.writes() ? log_all : quiet;  // only rank 0 speaks and writes
  if (comm.distributed()) {
    log << comm.describe() << std::endl;
    if (spec.batch % comm.size() != 0)
      CUVAE_FAIL(option("batch") << " " << spec.batch << " does not split over " << comm.size()
                                 << " ranks: the global batch must be a multiple of the number of ranks");
  }
  CUVAE_REQUIRE(spec.accumulate >= 1, option("accumulate") << " must be at least 1, got " << spec.accumulate);
  const int64_t local_batch = spec.batch / comm.size();  // this rank's share of every global batch
  if (local_batch % spec.accumulate != 0 || local_batch / spec.accumulate < 1)
    CUVAE_FAIL(option("accumulate") << " " << spec.accumulate << " does not split " << option("batch") << " " << spec.batch
                                    << (comm.distributed() ? " over " + std::to_string(comm.size()) + " ranks" : std::string())
                                    << ": the " << (comm.distributed() ? "rank's share " : "batch ") << local_batch
                                    << " must be a multiple of the micro-batches");
  const int64_t micro_batch = local_batch / spec.accumulate;  // images per forward and backward pass
  const bool progress = spec.progress && comm.writes();
  CUVAE_REQUIRE(!spec.out.empty(), option("out") << " must name a run folder");
  const RunFiles files(spec.out);
  if (spec.resume && !file_exists(files.state))
    CUVAE_FAIL(option("resume") << ": " << spec.out << " has no optim.safetensors to resume from (a run folder of " << spec.command << ")");
  const TrainTestData data = load_train_test(spec.dataset, spec.data_dir, spec.train_limit, spec.test_limit, spec.batch);
  const Dataset& train = data.train;
  const Dataset& test = data.test;

  // Several ranks on one host take one GPU each, in the order of their host-local ranks.
  if (comm.distributed() && spec.device != DeviceRequest::CPU) select_cuda_device(comm.local_rank());
  Context ctx(spec.device);
  if (comm.distributed() && ctx.is_cuda() && !nccl_available())
    CUVAE_FAIL("data-parallel training on GPUs needs NCCL, and this build has none (" << nccl_version() << "): train with "
               << option("device") << " cpu, or rebuild where the CUDA toolkit's NCCL is found");
  log_device(ctx, log);
  if (comm.writes()) prepare_run_folder(spec, log);
  comm.barrier();  // the folder is ready before any rank reads from it
  RunPosition pos;
  pos.seed = spec.seed;
  pos.steps_per_epoch = train.n / spec.batch;  // the last partial batch is dropped
  const int64_t steps = pos.steps_per_epoch;
  if (!create_or_restore(spec, files, ctx, train, trainee, pos, log, comm.writes())) return 0;
  trainee.check_test_data(test, "test split of '" + spec.dataset + "'");
  std::unique_ptr<NcclCommunicator> nccl;  // GPU ranks: the gradients' allreduce
  if (comm.distributed()) {
    // Ranks started with other flags are caught before the first step; then all start from
    // rank 0's parameters and optimizer state, and every rank sums the others' gradients.
    std::ostringstream fingerprint;
    fingerprint << spec.command << '|' << spec.dataset << '|' << spec.epochs << '|' << spec.batch << '|'
                << spec.accumulate << '|' << spec.train_limit << '|' << spec.test_limit << '|' << pos.seed << '|' << pos.epoch << '|' << pos.step
                << '|' << trainee.config_json().dump();
    const std::string fp = fingerprint.str();
    require_same_on_ranks(comm, fnv1a64(fp.data(), fp.size()), "configuration (flags, seed or resumed state)");
    if (ctx.is_cuda()) {
      nccl = std::make_unique<NcclCommunicator>(comm);
      log << "gradients: ncclAllReduce over " << comm.size() << " GPUs on the step's stream (" << nccl_version() << ")"
          << std::endl;
    }
    broadcast_from_rank0(comm, nccl.get(), trainee.replicated(), ctx);
    trainee.set_communicator(&comm);
    trainee.set_gpu_communicator(nccl.get());
  }

  std::unique_ptr<MetricsCsv> metrics;
  if (comm.writes()) {
    ensure_dir(spec.out);
    write_config(spec, files, data, ctx, trainee, pos);
    metrics = std::make_unique<MetricsCsv>(files.metrics, trainee.metrics_columns(existing_header(spec, files)), spec.resume);
    metrics->keep_rows(pos.epoch);  // a row whose epoch's state was not saved is redone
  } else {
    (void)trainee.metrics_columns(existing_header(spec, files));  // the Trainee learns the run's columns as rank 0 does
  }

  DeviceDataset dd(train, ctx.device());
  IntBuffer labels(micro_batch, ctx.device());
  Tensor x({micro_batch, train.c, train.h, train.w}, ctx.device());
  Tensor monitor({kMonitorSize}, ctx.device());
  log << "training " << trainee.describe() << " on " << train.n << " " << spec.dataset << " images, batch "
      << spec.batch << ", " << steps << " steps/epoch" << trainee.describe_method() << std::endl;
  if (spec.accumulate > 1)
    log << "gradient accumulation: " << spec.accumulate << " micro-batches of " << micro_batch
        << " images per step" << (comm.distributed() ? " on each rank" : "") << std::endl;
  Tensor grad_sum;  // gradient accumulation: the micro-batches' gradients summed so far
  if (spec.accumulate > 1) grad_sum = Tensor(trainee.gradients().shape(), ctx.device());
  const float inv_accumulate = 1.0f / static_cast<float>(spec.accumulate);

  // Everything a step reads that changes from step to step lives in the step state: the batch's
  // rows, the Philox offsets, and the scalars of a table computed here for every step of the run.
  const int64_t rank_row0 = static_cast<int64_t>(comm.rank()) * local_batch;  // this rank's first row of a global batch
  const int64_t table_end = std::max<int64_t>(pos.step + 1, steps * static_cast<int64_t>(spec.epochs));
  StepStateBuffer state(ctx, pos.step, trainee.num_batches_tracked(pos.step), spec.batch, steps,
                        trainee.philox_per_step(), trainee.step_table(pos.step, table_end), rank_row0,
                        spec.accumulate);
  const AugmentConfig aug = trainee.augment();
  StepGraph graph(spec.cuda_graph);
  // One training step, reading its per-step values from `state` only (so it can be captured).
  // Micro-batch k of A takes the rows rank_row0 + k·micro_batch … of the global batch (and
  // draws as those rows); the gradients are summed in order, g₀ + g₁ + …, and the last sum is
  // scaled by 1/A, so one process with A = N rounds as N ranks' sum-allreduce and · 1/N do.
  const auto train_step = [&] {
    Tensor& g = trainee.gradients();
    for (int k = 0; k < spec.accumulate; ++k) {
      if (spec.accumulate > 1) state.set_row_base(ctx, rank_row0 + k * micro_batch);
      dd.batch(ctx, 0, aug, pos.seed, 0, x, &labels, state.get());
      trainee.forward_backward(ctx, x, labels, state.get());
      loss_monitor(ctx, trainee.step_loss(), monitor, 0, state.get());
      if (spec.accumulate == 1) break;
      if (k == 0)
        grad_sum.copy_from(g, ctx.stream());
      else if (k + 1 < spec.accumulate)
        accumulate(ctx, grad_sum, g);
      else
        add_scaled(ctx, grad_sum, g, inv_accumulate, g);
    }
    trainee.reduce_gradients(ctx, g);  // data-parallel: the global batch's gradient
    trainee.update(ctx, state.get());
    state.advance(ctx);
  };

  const int sync_every = ctx.is_cuda() ? 50 : 5;
  const int last_epoch = spec.stop_after > 0 ? std::min(spec.epochs, spec.stop_after) : spec.epochs;
  const int first_epoch = pos.epoch;
  int64_t step = pos.step;
  for (int epoch = first_epoch; epoch < last_epoch; ++epoch) {
    dd.set_order(shuffled_order(train.n, pos.seed, epoch));
    monitor.zero(ctx.stream());
    trainee.begin_epoch(ctx);
    ProgressBar bar("epoch " + std::to_string(epoch + 1) + "/" + std::to_string(spec.epochs), steps, progress);
    const auto t0 = Clock::now();
    double mean_loss = 0;
    for (int64_t s = 0; s < steps; ++s, ++step) {
      graph.run(ctx, train_step);
      if ((s + 1) % sync_every == 0 || s + 1 == steps) {
        const std::vector<float> mon = monitor.to_vector();
        if (mon[2] != 0.0f) {
          bar.finish("stopped");
          fail_non_finite(spec, files, static_cast<int64_t>(mon[2]) - 1, epoch, first_epoch);
        }
        mean_loss = mon[1] > 0 ? mon[0] / mon[1] : 0.0;
        bar.update(s + 1, trainee.progress(ctx, mean_loss, s + 1, local_batch, seconds_since(t0)));
      }
    }
    ctx.synchronize();
    const double secs = seconds_since(t0);
    bar.finish(trainee.progress(ctx, mean_loss, steps, local_batch, secs));
    if (epoch == first_epoch) log << graph.summary();
    const StepState at = state.read_at(step);  // the device's count agrees with the loop's
    if (comm.distributed())  // the ranks evaluate one shard each of one model: rank 0's running statistics
      broadcast_from_rank0(comm, nccl.get(), trainee.rank0_buffers(), ctx);
    const EpochOutcome o = trainee.end_epoch(ctx, test, at, epoch + 1, mean_loss, secs);
    if (!std::isfinite(o.test_loss))
      CUVAE_FAIL("the test loss after epoch " << epoch + 1 << " is not finite; stopping. The last good checkpoint is kept in "
                                              << files.model);
    if (comm.distributed())
      require_same_on_ranks(comm, replicated_checksum(trainee),
                            "checksum of the parameters and optimizer state after epoch " + std::to_string(epoch + 1));
    if (comm.writes()) save_epoch(files, *metrics, o, trainee, epoch + 1, step, pos.seed);
    log << "epoch " << epoch + 1 << ": " << o.summary << std::endl;
    if (comm.distributed() && !ctx.is_cuda()) {  // on GPUs the allreduce runs inside the step
      const double r = trainee.take_reduce_seconds();
      log << "  allreduce of the gradients: " << fixed(r, 2) << " s, " << fixed(100.0 * r / std::max(secs, 1e-9), 1)
          << "% of the epoch's steps on rank 0" << std::endl;
    }
    if (epoch + 1 == last_epoch && last_epoch < spec.epochs)
      log << "stopped after epoch " << epoch + 1 << " of " << spec.epochs << "; continue with --resume\n";
  }
  if (last_epoch == spec.epochs && comm.writes()) trainee.finish(ctx, test, spec.out, pos.seed, log);
  if (last_epoch > first_epoch && comm.writes()) write_curves_or_note(spec.out, log);
  comm.barrier();  // no rank leaves (and finalizes MPI) while rank 0 still writes
  log << "run folder: " << spec.out << " (model.safetensors, optim.safetensors, metrics.csv, config.json)\n";
  return last_epoch - first_epoch;
}

}  // namespace cuvae
