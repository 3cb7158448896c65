#include "jobs/classifier_trainer.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <limits>
#include <sstream>

#include "core/check.h"
#include "core/decimal.h"
#include "core/step_graph.h"
#include "io/fs.h"
#include "io/image.h"
#include "io/metrics.h"
#include "io/plot.h"
#include "jobs/analysis/plots.h"
#include "jobs/confusion.h"
#include "jobs/batching.h"
#include "kernels/accuracy.h"
#include "kernels/loss_monitor.h"
#include "kernels/sgd.h"
#include "kernels/softmax_xent.h"
#include "kernels/step_state.h"
#include "models/checkpoint.h"

namespace cuvae {

namespace {

constexpr double kPi = 3.14159265358979323846;

std::string fmt(double v, int prec = 2) {
  char b[64];
  std::snprintf(b, sizeof b, "%.*f", prec, v);
  return b;
}


}  // namespace

double lr_at(const std::string& name, double max_lr, int64_t step, int64_t total) {
  CUVAE_CHECK(total >= 1, "lr schedule: total steps must be at least 1, got " << total);
  step = std::clamp<int64_t>(step, 0, total - 1);
  if (name == "constant") return max_lr;
  if (name == "cosine") return max_lr * 0.5 * (1.0 + std::cos(kPi * static_cast<double>(step) / static_cast<double>(total)));
  if (name == "onecycle") {
    // OneCycleLR's two phases end at steps 0.3·total − 1 and total − 1 (anneal = cosine).
    const double initial = max_lr / 25.0, final_lr = initial / 1e4;
    const double end1 = 0.3 * static_cast<double>(total) - 1.0, end2 = static_cast<double>(total) - 1.0;
    auto cos_anneal = [](double start, double end, double pct) { return end + (start - end) / 2.0 * (1.0 + std::cos(kPi * pct)); };
    const double s = static_cast<double>(step);
    if (s <= end1 || end2 <= end1) return cos_anneal(initial, max_lr, end1 > 0 ? s / end1 : 1.0);
    return cos_anneal(max_lr, final_lr, (s - end1) / (end2 - end1));
  }
  CUVAE_FAIL("unknown learning-rate schedule '" << name << "': expected onecycle, cosine or constant");
}

bool flip_keeps_class(const std::string& dataset) { return dataset == "fashion-mnist" || dataset == "cifar10"; }



std::vector<ClassifierEpochRecord> train_classifier(const ClassifierTrainOptions& opt, std::ostream& log) {
  if (opt.epochs < 1) CUVAE_FAIL("--epochs must be at least 1, got " << opt.epochs);
  if (opt.batch < 2 || opt.batch > 65536) CUVAE_FAIL("--batch must be in [2, 65536], got " << opt.batch);
  if (!(opt.lr > 0.0f) || !std::isfinite(opt.lr)) CUVAE_FAIL("--lr must be a positive number, got " << opt.lr);
  if (opt.width < 1 || opt.width > 256) CUVAE_FAIL("--width must be in [1, 256], got " << opt.width);
  if (opt.pad > 16) CUVAE_FAIL("--pad must be at most 16, got " << opt.pad);
  SgdConfig sc;
  sc.lr = opt.lr;
  sc.momentum = opt.momentum;
  sc.weight_decay = opt.weight_decay;
  sc.nesterov = opt.nesterov;
  check_sgd_config(sc);
  lr_at(opt.schedule, opt.lr, 0, 1);  // rejects an unknown schedule before any work
  CUVAE_REQUIRE(!opt.out.empty(), "--out must name a run folder");

  if (opt.resume && !file_exists(opt.out + "/optim.safetensors"))
    CUVAE_FAIL("--resume: " << opt.out << " has no optim.safetensors to resume from (a run folder of train-classifier)");
  TrainTestData data = load_train_test(opt.dataset, opt.data_dir, opt.train_limit, opt.test_limit, opt.batch);
  const std::string& dir = data.dir;
  Dataset& train = data.train;
  Dataset& test = data.test;

  Context ctx(opt.device);
  log_device(ctx, log);
  ensure_writable_dir(opt.out, "--out");  // an --out that cannot be written fails before any training
  if (opt.resume) {
    const int stale = remove_stale_temp_files(opt.out);
    if (stale > 0) log << "removed " << stale << " partial file(s) an interrupted write left in " << opt.out << "\n";
  }

  ResNetConfig cfg;
  cfg.channels = train.c;
  cfg.height = train.h;
  cfg.width = train.w;
  cfg.classes = train.num_classes;
  cfg.base_width = opt.width;
  cfg.dataset = opt.dataset;
  const std::string model_path = opt.out + "/model.safetensors";
  const std::string optim_path = opt.out + "/optim.safetensors";
  std::unique_ptr<ResNet18> model_ptr;
  Tensor momentum_buf;
  int start_epoch = 0;
  int64_t step = 0;
  uint64_t seed = opt.seed;
  int64_t schedule_steps = 0;  // the run's total steps, over which the schedule is laid
  if (opt.resume) {
    const SafetensorsFile of = read_safetensors(optim_path);
    // The training state holds the config and everything of the same step, so a kill between its
    // write and model.safetensors' is harmless.
    model_ptr = std::make_unique<ResNet18>(ResNetConfig::from_json(checkpoint_config(of), optim_path), ctx.device());
    const ResNetConfig& c = model_ptr->config();
    if (c.channels != cfg.channels || c.height != cfg.height || c.width != cfg.width || c.classes != cfg.classes)
      CUVAE_FAIL("--resume: " << model_path << " is a classifier of " << c.channels << "x" << c.height << "x" << c.width
                              << " images and " << c.classes << " classes, not of --dataset " << opt.dataset);
    if (c.base_width != cfg.base_width)
      log << "note: --resume uses the checkpoint's width " << c.base_width << "\n";
    cfg = c;
    if (!load_params_prefixed(of, model_ptr->params(), kStateWeightsPrefix) ||
        !load_params_prefixed(of, model_ptr->buffers(), kStateWeightsPrefix))
      CUVAE_FAIL(optim_path << ": the training state holds no weights (not written by train-classifier)");
    const int64_t total = model_ptr->params().flat_values().numel();
    momentum_buf = Tensor::from_vector(of.f32("sgd.momentum", {total}), {total}, ctx.device());
    try {
      start_epoch = std::stoi(of.metadata.at("epoch"));
      step = std::stoll(of.metadata.at("step"));
      seed = std::stoull(of.metadata.at("seed"));
      schedule_steps = std::stoll(of.metadata.at("schedule_steps"));
      model_ptr->set_num_batches_tracked(std::stoll(of.metadata.at("num_batches_tracked")));
    } catch (const std::exception&) {
      CUVAE_FAIL(optim_path << ": metadata fields epoch, step, seed, schedule_steps and num_batches_tracked are "
                               "missing or not integers");
    }
    if (of.metadata.count("schedule") && of.metadata.at("schedule") != opt.schedule)
      CUVAE_FAIL("--resume: the run used --schedule " << of.metadata.at("schedule") << ", not " << opt.schedule);
    // model.safetensors as of the saved state when a kill left it one write behind (or none).
    bool model_file_behind = true;
    if (file_exists(model_path)) {
      try {
        auto in_file = load_resnet(model_path, Device::CPU);
        model_file_behind = in_file->params().flat_values().to_vector() != model_ptr->params().flat_values().to_vector() ||
                            in_file->buffers().flat_values().to_vector() != model_ptr->buffers().flat_values().to_vector() ||
                            in_file->num_batches_tracked() != model_ptr->num_batches_tracked();
      } catch (const Error&) {  // damaged or cut short by the kill: rewritten
      }
    }
    if (model_file_behind) save_resnet(model_path, *model_ptr);
  } else {
    model_ptr = std::make_unique<ResNet18>(cfg, ctx.device());
    model_ptr->init(seed);
    momentum_buf = Tensor({model_ptr->params().flat_values().numel()}, ctx.device());
  }
  ResNet18& model = *model_ptr;
  check_data_matches(test, cfg, "test split of '" + opt.dataset + "'");

  AugmentConfig aug;
  if (opt.augment) {
    aug.pad = opt.pad >= 0 ? opt.pad : (train.h >= 32 ? 4 : 2);
    aug.flip = flip_keeps_class(opt.dataset);
  }
  const int64_t steps = train.n / opt.batch;  // the last partial batch is dropped
  int64_t total_steps = steps * opt.epochs;
  if (opt.resume) {
    if (start_epoch >= opt.epochs) {
      log << opt.out << " already has " << start_epoch << " epochs (--epochs " << opt.epochs << "): nothing to do\n";
      return {};
    }
    if (step != static_cast<int64_t>(start_epoch) * steps)
      CUVAE_FAIL("--resume: " << optim_path << " is at step " << step << " after " << start_epoch << " epochs, but --batch "
                              << opt.batch << " and the data give " << steps << " steps per epoch (resume with the run's "
                              "own --batch and --train-limit)");
    if (schedule_steps != total_steps)
      log << "note: --epochs " << opt.epochs << " differs from the run's " << schedule_steps / std::max<int64_t>(1, steps)
          << ": the " << opt.schedule << " schedule now spans " << total_steps << " steps\n";
    log << "resuming " << opt.out << " after epoch " << start_epoch << " (step " << step << ")\n";
  }

  ensure_dir(opt.out);
  {
    nlohmann::json jc = {{"command", "train-classifier"}, {"dataset", opt.dataset}, {"data", dir},
                         {"epochs", opt.epochs}, {"batch", opt.batch}, {"width", opt.width},
                         {"lr", typed_decimal(opt.lr)}, {"momentum", typed_decimal(opt.momentum)}, {"weight_decay", typed_decimal(opt.weight_decay)},
                         {"nesterov", opt.nesterov}, {"schedule", opt.schedule},
                         {"augment", {{"pad", aug.pad}, {"flip", aug.flip}}}, {"seed", seed},
                         {"device", ctx.description()}, {"train_images", train.n}, {"test_images", test.n},
                         {"model", cfg.to_json()}, {"parameters", model.params().count()}};
    write_file_atomic(opt.out + "/config.json", jc.dump(2) + "\n");
  }
  MetricsCsv metrics(opt.out + "/metrics.csv",
                     {"epoch", "lr", "train_loss", "train_acc", "test_loss", "test_acc", "seconds", "images_per_s"},
                     opt.resume);
  metrics.keep_rows(start_epoch);  // a row whose epoch's state was not saved is redone

  DeviceDataset dd(train, ctx.device());
  Tensor x({opt.batch, cfg.channels, cfg.height, cfg.width}, ctx.device());
  IntBuffer labels(opt.batch, ctx.device());
  Tensor monitor({kMonitorSize}, ctx.device());
  Tensor correct({1}, ctx.device());
  log << "training ResNet18 (width " << opt.width << ", " << model.params().count() << " parameters) on " << train.n
      << " " << opt.dataset << " images, batch " << opt.batch << ", " << steps << " steps/epoch, SGD"
      << (opt.nesterov ? " (Nesterov)" : "") << " lr " << opt.lr << " " << opt.schedule << ", augmentation: crop pad "
      << aug.pad << (aug.flip ? " + flip" : "") << std::endl;

  std::vector<ClassifierEpochRecord> records;
  const int sync_every = ctx.is_cuda() ? 50 : 5;
  const int last_epoch = opt.stop_after > 0 ? std::min(opt.epochs, opt.stop_after) : opt.epochs;
  // Everything a step reads that changes from step to step lives in the step state: the batch's
  // rows, the augmentation's Philox offset (the step), the learning rate (a table of the
  // schedule's values for every step of the run) and BatchNorm's num_batches_tracked.
  const int64_t schedule_total = std::max(total_steps, step + 1);
  std::vector<StepScalars> table(static_cast<size_t>(schedule_total - step));
  for (int64_t t = step; t < schedule_total; ++t)
    table[static_cast<size_t>(t - step)].lr = static_cast<float>(lr_at(opt.schedule, opt.lr, t, schedule_total));
  StepStateBuffer state(ctx, step, model.num_batches_tracked(), opt.batch, steps, 1, table);
  sc.state = state.get();
  StepGraph graph(opt.cuda_graph);
  // One training step, reading its per-step values from `state` only (so it can be captured).
  const auto train_step = [&] {
    dd.batch(ctx, 0, aug, seed, 0, x, &labels, state.get());
    model.forward(ctx, x, true);
    model.loss(ctx, labels, true);
    count_correct(ctx, model.logits(), labels, correct);
    model.backward(ctx);
    sgd_step(ctx, model.params().flat_values(), model.params().flat_grads(), momentum_buf, sc);
    loss_monitor(ctx, model.mean_loss(), monitor, 0, state.get());
    state.advance(ctx);
  };
  for (int epoch = start_epoch; epoch < last_epoch; ++epoch) {
    dd.set_order(shuffled_order(train.n, seed, epoch));
    monitor.zero(ctx.stream());
    correct.zero(ctx.stream());
    ProgressBar bar("epoch " + std::to_string(epoch + 1) + "/" + std::to_string(opt.epochs), steps, opt.progress);
    const auto t0 = std::chrono::steady_clock::now();
    double mean_loss = 0, acc = 0;
    for (int64_t s = 0; s < steps; ++s, ++step) {
      graph.run(ctx, train_step);
      if ((s + 1) % sync_every == 0 || s + 1 == steps) {
        const std::vector<float> mon = monitor.to_vector();
        if (mon[2] != 0.0f) {
          bar.finish("stopped");
          const int64_t bad = static_cast<int64_t>(mon[2]) - 1;
          std::ostringstream os;
          os << "the training loss became non-finite (NaN or Inf) at step " << bad << " (epoch " << epoch + 1 << "); stopping. ";
          if (epoch > 0 || opt.resume)
            os << "The last good checkpoint is kept in " << model_path;
          else
            os << "No checkpoint was written; try a smaller --lr";
          CUVAE_FAIL(os.str());
        }
        mean_loss = mon[1] > 0 ? mon[0] / mon[1] : 0.0;
        acc = correct.to_vector()[0] / static_cast<double>((s + 1) * opt.batch);
        const double el = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
        bar.update(s + 1, "loss " + fmt(mean_loss, 4) + "  acc " + fmt(100 * acc) + "%  " +
                              fmt((s + 1) * opt.batch / std::max(el, 1e-9), 0) + " img/s");
      }
    }
    ctx.synchronize();
    const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    bar.finish("loss " + fmt(mean_loss, 4) + "  acc " + fmt(100 * acc) + "%  " + fmt(steps * opt.batch / secs, 0) + " img/s");
    if (epoch == start_epoch) log << graph.summary();
    const StepState at = state.read_at(step);
    model.set_num_batches_tracked(at.num_batches_tracked);  // the forwards a replayed graph made too
    sc.lr = static_cast<float>(lr_at(opt.schedule, opt.lr, step - 1, schedule_total));  // the epoch's last lr
    ClassifierEval e = evaluate_classifier(ctx, model, test);
    ClassifierEpochRecord r{epoch + 1, sc.lr, mean_loss, acc, e.loss, e.accuracy, secs, steps * opt.batch / secs};
    records.push_back(r);
    if (!std::isfinite(e.loss))
      CUVAE_FAIL("the test loss after epoch " << epoch + 1 << " is not finite; stopping. The last good checkpoint is kept in " << model_path);
    // Metrics row, then the whole training state (one atomic file), then the model: whenever the
    // process is killed, --resume finds a consistent state and redoes at most this epoch.
    metrics.append({double(r.epoch), r.lr, r.train_loss, r.train_acc, r.test_loss, r.test_acc, r.seconds, r.images_per_s});
    {
      SafetensorsWriter w;
      add_params(w, model.params(), kStateWeightsPrefix);
      add_params(w, model.buffers(), kStateWeightsPrefix);
      w.add_f32("sgd.momentum", momentum_buf);
      w.set_metadata("format", "cuvae-optim");
      w.set_metadata("config", cfg.to_json().dump());
      w.set_metadata("optimizer", "SGD");
      w.set_metadata("epoch", std::to_string(epoch + 1));
      w.set_metadata("step", std::to_string(step));
      w.set_metadata("seed", std::to_string(seed));
      w.set_metadata("schedule", opt.schedule);
      w.set_metadata("schedule_steps", std::to_string(total_steps));
      w.set_metadata("num_batches_tracked", std::to_string(model.num_batches_tracked()));
      w.write(optim_path);
    }
    save_resnet(model_path, model);
    log << "epoch " << epoch + 1 << ": train loss " << fmt(mean_loss, 4) << " acc " << fmt(100 * acc) << "%, test loss "
        << fmt(e.loss, 4) << " acc " << fmt(100 * e.accuracy) << "% (" << fmt(secs, 1) << " s, " << fmt(r.images_per_s, 0)
        << " img/s)" << std::endl;
    if (epoch + 1 == opt.epochs) {
      for (const std::string& p : write_confusion(e, class_names(opt.dataset), opt.out)) log << "wrote " << p << "\n";
    } else if (epoch + 1 == last_epoch) {
      log << "stopped after epoch " << epoch + 1 << " of " << opt.epochs << "; continue with --resume\n";
    }
  }
  if (!records.empty()) {
    write_curves_or_note(opt.out, log);
  }
  log << "run folder: " << opt.out << " (model.safetensors, optim.safetensors, metrics.csv, config.json)\n";
  return records;
}

}  // namespace cuvae
