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

namespace cuvae {

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
                       Trainee& trainee, RunPosition& pos, std::ostream& log) {
  if (!spec.resume) {
    trainee.create(ctx, train, pos.seed);
    return true;
  }
  const SafetensorsFile state = read_safetensors(files.state);
  read_position(state, files.state, pos);
  trainee.restore(ctx, train, state, files.state, pos, log);
  // The training state holds everything of one step, so a kill between its write and the model
  // file's is harmless: the model file is brought up to the saved state.
  if (!trainee.model_file_matches(files.model)) trainee.save_model(files.model);
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

}  // namespace

int run_training(const RunSpec& spec, Trainee& trainee, std::ostream& log) {
  CUVAE_REQUIRE(!spec.out.empty(), option("out") << " must name a run folder");
  const RunFiles files(spec.out);
  if (spec.resume && !file_exists(files.state))
    CUVAE_FAIL(option("resume") << ": " << spec.out << " has no optim.safetensors to resume from (a run folder of " << spec.command << ")");
  const TrainTestData data = load_train_test(spec.dataset, spec.data_dir, spec.train_limit, spec.test_limit, spec.batch);
  const Dataset& train = data.train;
  const Dataset& test = data.test;

  Context ctx(spec.device);
  log_device(ctx, log);
  prepare_run_folder(spec, log);
  RunPosition pos;
  pos.seed = spec.seed;
  pos.steps_per_epoch = train.n / spec.batch;  // the last partial batch is dropped
  const int64_t steps = pos.steps_per_epoch;
  if (!create_or_restore(spec, files, ctx, train, trainee, pos, log)) return 0;
  trainee.check_test_data(test, "test split of '" + spec.dataset + "'");

  ensure_dir(spec.out);
  write_config(spec, files, data, ctx, trainee, pos);
  MetricsCsv metrics(files.metrics, trainee.metrics_columns(existing_header(spec, files)), spec.resume);
  metrics.keep_rows(pos.epoch);  // a row whose epoch's state was not saved is redone

  DeviceDataset dd(train, ctx.device());
  IntBuffer labels(spec.batch, ctx.device());
  Tensor x({spec.batch, train.c, train.h, train.w}, ctx.device());
  Tensor monitor({kMonitorSize}, ctx.device());
  log << "training " << trainee.describe() << " on " << train.n << " " << spec.dataset << " images, batch "
      << spec.batch << ", " << steps << " steps/epoch" << trainee.describe_method() << std::endl;

  // Everything a step reads that changes from step to step lives in the step state: the batch's
  // rows, the Philox offsets, and the scalars of a table computed here for every step of the run.
  const int64_t table_end = std::max<int64_t>(pos.step + 1, steps * static_cast<int64_t>(spec.epochs));
  StepStateBuffer state(ctx, pos.step, trainee.num_batches_tracked(pos.step), spec.batch, steps,
                        trainee.philox_per_step(), trainee.step_table(pos.step, table_end));
  const AugmentConfig aug = trainee.augment();
  StepGraph graph(spec.cuda_graph);
  // One training step, reading its per-step values from `state` only (so it can be captured).
  const auto train_step = [&] {
    dd.batch(ctx, 0, aug, pos.seed, 0, x, &labels, state.get());
    trainee.step(ctx, x, labels, state.get());
    loss_monitor(ctx, trainee.step_loss(), monitor, 0, state.get());
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
    ProgressBar bar("epoch " + std::to_string(epoch + 1) + "/" + std::to_string(spec.epochs), steps, spec.progress);
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
        bar.update(s + 1, trainee.progress(ctx, mean_loss, s + 1, spec.batch, seconds_since(t0)));
      }
    }
    ctx.synchronize();
    const double secs = seconds_since(t0);
    bar.finish(trainee.progress(ctx, mean_loss, steps, spec.batch, secs));
    if (epoch == first_epoch) log << graph.summary();
    const StepState at = state.read_at(step);  // the device's count agrees with the loop's
    const EpochOutcome o = trainee.end_epoch(ctx, test, at, epoch + 1, mean_loss, secs);
    if (!std::isfinite(o.test_loss))
      CUVAE_FAIL("the test loss after epoch " << epoch + 1 << " is not finite; stopping. The last good checkpoint is kept in "
                                              << files.model);
    save_epoch(files, metrics, o, trainee, epoch + 1, step, pos.seed);
    log << "epoch " << epoch + 1 << ": " << o.summary << std::endl;
    if (epoch + 1 == last_epoch && last_epoch < spec.epochs)
      log << "stopped after epoch " << epoch + 1 << " of " << spec.epochs << "; continue with --resume\n";
  }
  if (last_epoch == spec.epochs) trainee.finish(ctx, test, spec.out, pos.seed, log);
  if (last_epoch > first_epoch) write_curves_or_note(spec.out, log);
  log << "run folder: " << spec.out << " (model.safetensors, optim.safetensors, metrics.csv, config.json)\n";
  return last_epoch - first_epoch;
}

}  // namespace cuvae
