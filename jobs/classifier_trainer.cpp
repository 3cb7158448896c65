#include "jobs/classifier_trainer.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <limits>
#include <sstream>

#include "core/check.h"
#include "core/decimal.h"
#include "io/fs.h"
#include "io/image.h"
#include "io/plot.h"
#include "jobs/analysis/plots.h"
#include "jobs/confusion.h"
#include "jobs/batching.h"
#include "jobs/trainer.h"
#include "kernels/accuracy.h"
#include "kernels/sgd.h"
#include "kernels/softmax_xent.h"
#include "kernels/step_state.h"
#include "models/checkpoint.h"

namespace cuvae {

bool flip_keeps_class(const std::string& dataset) { return dataset == "fashion-mnist" || dataset == "cifar10"; }



namespace {

/// The options train_classifier checks before any work; returns the optimizer they give.
/// Throws cuvae::Error naming the flag.
SgdConfig check_classifier_options(const ClassifierTrainOptions& opt) {
  if (opt.epochs < 1) CUVAE_FAIL(option("epochs") << " must be at least 1, got " << opt.epochs);
  if (opt.batch < 2 || opt.batch > 65536) CUVAE_FAIL(option("batch") << " must be in [2, 65536], got " << opt.batch);
  if (!(opt.lr > 0.0f) || !std::isfinite(opt.lr)) CUVAE_FAIL(option("lr") << " must be a positive number, got " << opt.lr);
  if (opt.width < 1 || opt.width > 256) CUVAE_FAIL(option("width") << " must be in [1, 256], got " << opt.width);
  if (opt.pad > 16) CUVAE_FAIL(option("pad") << " must be at most 16, got " << opt.pad);
  if (opt.sync_batchnorm && opt.accumulate > 1)
    CUVAE_FAIL(option("sync_batchnorm") << " normalises over the whole global batch, which " << option("accumulate") << " "
                                        << opt.accumulate << " splits into micro-batches: use one or the other");
  SgdConfig sc;
  sc.lr = opt.lr;
  sc.momentum = opt.momentum;
  sc.weight_decay = opt.weight_decay;
  sc.nesterov = opt.nesterov;
  check_sgd_config(sc);
  lr_at(opt.schedule, opt.lr, 0, 1);  // rejects an unknown schedule before any work
  return sc;
}

/// A ResNet18 trained with SGD (Nesterov momentum, weight decay) under a learning-rate
/// schedule, with augmentation on the device.
class ClassifierTrainee final : public Trainee {
 public:
  ClassifierTrainee(const ClassifierTrainOptions& opt, const SgdConfig& sc) : opt_(opt), sc_(sc) {}

  const std::vector<ClassifierEpochRecord>& records() const { return records_; }

  void create(Context& ctx, const Dataset& train, uint64_t seed) override {
    set_run(ctx, train);
    model_ = std::make_unique<ResNet18>(requested_config(train), ctx.device());
    model_->init(seed);
    momentum_ = Tensor({model_->params().flat_values().numel()}, ctx.device());
  }

  void restore(Context& ctx, const Dataset& train, const SafetensorsFile& of, const std::string& path,
               const RunPosition& pos, std::ostream& log) override {
    set_run(ctx, train);
    const ResNetConfig want = requested_config(train);
    // The training state holds the config and everything of the same step.
    model_ = std::make_unique<ResNet18>(ResNetConfig::from_json(checkpoint_config(of), path), ctx.device());
    const ResNetConfig& c = model_->config();
    if (c.channels != want.channels || c.height != want.height || c.width != want.width || c.classes != want.classes)
      CUVAE_FAIL(option("resume") << ": " << opt_.out << "/model.safetensors is a classifier of " << c.channels << "x" << c.height << "x"
                              << c.width << " images and " << c.classes << " classes, not of " << option("dataset") << " " << opt_.dataset);
    if (c.base_width != want.base_width) log << "note: --resume uses the checkpoint's width " << c.base_width << "\n";
    if (!load_params_prefixed(of, model_->params(), kStateWeightsPrefix) ||
        !load_params_prefixed(of, model_->buffers(), kStateWeightsPrefix))
      CUVAE_FAIL(path << ": the training state holds no weights (not written by train-classifier)");
    const int64_t total = model_->params().flat_values().numel();
    momentum_ = Tensor::from_vector(of.f32("sgd.momentum", {total}), {total}, ctx.device());
    int64_t schedule_steps = 0;
    try {
      schedule_steps = std::stoll(of.metadata.at("schedule_steps"));
      model_->set_num_batches_tracked(std::stoll(of.metadata.at("num_batches_tracked")));
    } catch (const std::exception&) {
      CUVAE_FAIL(path << ": metadata fields schedule_steps and num_batches_tracked are missing or not integers");
    }
    if (of.metadata.count("schedule") && of.metadata.at("schedule") != opt_.schedule)
      CUVAE_FAIL(option("resume") << ": the run used " << option("schedule") << " " << of.metadata.at("schedule") << ", not " << opt_.schedule);
    if (pos.epoch >= opt_.epochs) return;  // nothing left to train
    if (pos.step != static_cast<int64_t>(pos.epoch) * steps_)
      CUVAE_FAIL(option("resume") << ": " << path << " is at step " << pos.step << " after " << pos.epoch << " epochs, but " << option("batch") << " "
                              << opt_.batch << " and the data give " << steps_ << " steps per epoch (resume with the run's "
                              "own " << option("batch") << " and " << option("train_limit") << ")");
    if (schedule_steps != total_steps_)
      log << "note: --epochs " << opt_.epochs << " differs from the run's " << schedule_steps / std::max<int64_t>(1, steps_)
          << ": the " << opt_.schedule << " schedule now spans " << total_steps_ << " steps\n";
  }

  bool model_file_matches(const std::string& path) const override {
    if (!file_exists(path)) return false;
    try {
      auto in_file = load_resnet(path, Device::CPU);
      return in_file->params().flat_values().to_vector() == model_->params().flat_values().to_vector() &&
             in_file->buffers().flat_values().to_vector() == model_->buffers().flat_values().to_vector() &&
             in_file->num_batches_tracked() == model_->num_batches_tracked();
    } catch (const Error&) {  // damaged or cut short by a kill
      return false;
    }
  }
  void save_model(const std::string& path) const override { save_resnet(path, *model_); }
  void check_test_data(const Dataset& test, const std::string& what) const override {
    check_data_matches(test, model_->config(), what);
  }

  void set_communicator(const Communicator* comm) override {
    Trainee::set_communicator(comm);
    if (opt_.sync_batchnorm && comm != nullptr && comm->distributed() && model_->device() == Device::CUDA)
      CUVAE_FAIL(option("sync_batchnorm") << " runs on the CPU only in this build (" << option("device")
                                          << " cpu); on GPUs each rank normalises with its own batch statistics");
    if (opt_.sync_batchnorm) model_->set_sync_batchnorm(comm);
  }
  nlohmann::json config_json() const override {
    nlohmann::json j = {{"width", opt_.width},
            {"lr", typed_decimal(opt_.lr)},
            {"momentum", typed_decimal(opt_.momentum)},
            {"weight_decay", typed_decimal(opt_.weight_decay)},
            {"nesterov", opt_.nesterov},
            {"schedule", opt_.schedule},
            {"augment", {{"pad", aug_.pad}, {"flip", aug_.flip}}},
            {"model", model_->config().to_json()},
            {"parameters", model_->params().count()}};
    if (opt_.sync_batchnorm) j["sync_batchnorm"] = true;
    return j;
  }
  std::vector<std::string> metrics_columns(const std::string&) override {
    return {"epoch", "lr", "train_loss", "train_acc", "test_loss", "test_acc", "seconds", "images_per_s"};
  }
  std::string describe() const override {
    return "ResNet18 (width " + std::to_string(opt_.width) + ", " + std::to_string(model_->params().count()) + " parameters)";
  }
  std::string describe_method() const override {
    std::ostringstream os;
    os << ", SGD" << (opt_.nesterov ? " (Nesterov)" : "") << " lr " << opt_.lr << " " << opt_.schedule
       << ", augmentation: crop pad " << aug_.pad << (aug_.flip ? " + flip" : "");
    return os.str();
  }
  std::vector<StepScalars> step_table(int64_t first, int64_t total) const override {
    schedule_total_ = total;
    std::vector<StepScalars> table(static_cast<size_t>(total - first));
    for (int64_t t = first; t < total; ++t)
      table[static_cast<size_t>(t - first)].lr = static_cast<float>(lr_at(opt_.schedule, opt_.lr, t, total));
    return table;
  }
  int64_t num_batches_tracked(int64_t) const override { return model_->num_batches_tracked(); }
  AugmentConfig augment() const override { return aug_; }

  void begin_epoch(Context& ctx) override { correct_.zero(ctx.stream()); }
  void forward_backward(Context& ctx, Tensor& x, IntBuffer& labels, const StepState*) override {
    model_->forward(ctx, x, true);
    model_->loss(ctx, labels, true);
    count_correct(ctx, model_->logits(), labels, correct_);
    model_->backward(ctx);
  }
  Tensor& gradients() override { return model_->params().flat_grads(); }
  void update(Context& ctx, const StepState* state) override {
    sc_.state = state;
    sgd_step(ctx, model_->params().flat_values(), model_->params().flat_grads(), momentum_, sc_);
  }
  std::vector<Tensor*> replicated() override { return {&model_->params().flat_values(), &momentum_}; }
  std::vector<Tensor*> rank0_buffers() override { return {&model_->buffers().flat_values()}; }
  const Tensor& step_loss() const override { return model_->mean_loss(); }
  std::string progress(Context&, double mean_loss, int64_t steps, int64_t batch, double seconds) override {
    train_acc_ = correct_.to_vector()[0] / static_cast<double>(steps * batch);
    return "loss " + fixed(mean_loss, 4) + "  acc " + fixed(100 * train_acc_) + "%  " +
           fixed(static_cast<double>(steps * batch) / std::max(seconds, 1e-9), 0) + " img/s";
  }
  EpochOutcome end_epoch(Context& ctx, const Dataset& test, const StepState& at, int epoch, double mean_loss,
                         double seconds) override {
    model_->set_num_batches_tracked(at.num_batches_tracked);  // the forwards a replayed graph made too
    const double lr = static_cast<float>(lr_at(opt_.schedule, opt_.lr, at.step - 1, schedule_total_));  // the epoch's last
    last_eval_ = evaluate_classifier(ctx, *model_, test, 500, 0, comm_);  // sharded over the ranks
    const ClassifierEval& e = last_eval_;
    const double images_per_s = static_cast<double>(steps_ * opt_.batch) / seconds;
    const ClassifierEpochRecord r{epoch, lr, mean_loss, train_acc_, e.loss, e.accuracy, seconds, images_per_s};
    records_.push_back(r);
    EpochOutcome o;
    o.row = {double(r.epoch), r.lr, r.train_loss, r.train_acc, r.test_loss, r.test_acc, r.seconds, r.images_per_s};
    o.test_loss = e.loss;
    o.summary = "train loss " + fixed(mean_loss, 4) + " acc " + fixed(100 * train_acc_) + "%, test loss " + fixed(e.loss, 4) +
                " acc " + fixed(100 * e.accuracy) + "% (" + fixed(seconds, 1) + " s, " + fixed(images_per_s, 0) + " img/s)";
    return o;
  }
  void add_state(SafetensorsWriter& w) const override {
    add_params(w, model_->params(), kStateWeightsPrefix);
    add_params(w, model_->buffers(), kStateWeightsPrefix);
    w.add_f32_view("sgd.momentum", momentum_);
    w.set_metadata("config", model_->config().to_json().dump());
    w.set_metadata("optimizer", "SGD");
    w.set_metadata("schedule", opt_.schedule);
    w.set_metadata("schedule_steps", std::to_string(total_steps_));
    w.set_metadata("num_batches_tracked", std::to_string(model_->num_batches_tracked()));
  }
  void finish(Context&, const Dataset&, const std::string& out, uint64_t, std::ostream& log) override {
    if (last_eval_.n == 0) return;  // no epoch ran in this process
    for (const std::string& p : write_confusion(last_eval_, class_names(opt_.dataset), out)) log << "wrote " << p << "\n";
  }

 private:
  /// The run's steps, augmentation and per-step counter for `train`.
  void set_run(Context& ctx, const Dataset& train) {
    steps_ = train.n / opt_.batch;
    total_steps_ = steps_ * opt_.epochs;
    if (opt_.augment) {
      aug_.pad = opt_.pad >= 0 ? opt_.pad : (train.h >= 32 ? 4 : 2);
      aug_.flip = flip_keeps_class(opt_.dataset);
    }
    correct_ = Tensor({1}, ctx.device());
  }
  /// The network the options ask for on `train`'s images.
  ResNetConfig requested_config(const Dataset& train) const {
    ResNetConfig c;
    c.channels = train.c;
    c.height = train.h;
    c.width = train.w;
    c.classes = train.num_classes;
    c.base_width = opt_.width;
    c.dataset = opt_.dataset;
    return c;
  }

  const ClassifierTrainOptions& opt_;
  SgdConfig sc_;
  AugmentConfig aug_;
  int64_t steps_ = 0, total_steps_ = 0;
  mutable int64_t schedule_total_ = 1;  // the steps the schedule is laid over (step_table's total)
  double train_acc_ = 0;
  std::unique_ptr<ResNet18> model_;
  Tensor momentum_, correct_;
  ClassifierEval last_eval_;
  std::vector<ClassifierEpochRecord> records_;
};

}  // namespace

std::vector<ClassifierEpochRecord> train_classifier(const ClassifierTrainOptions& opt, std::ostream& log) {
  const SgdConfig sc = check_classifier_options(opt);
  RunSpec spec = run_spec_of("train-classifier", opt);
  spec.stop_after = opt.stop_after;
  ClassifierTrainee trainee(opt, sc);
  run_training(spec, trainee, log);
  return trainee.records();
}

}  // namespace cuvae
