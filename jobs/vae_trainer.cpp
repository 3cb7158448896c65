#include "jobs/vae_trainer.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <sstream>

#include "core/check.h"
#include "core/decimal.h"
#include "core/distributed.h"
#include "core/gpu_collectives.h"
#include "io/fs.h"
#include "io/image.h"
#include "io/plot.h"
#include "jobs/analysis/latent.h"
#include "jobs/analysis/latent_io.h"
#include "jobs/analysis/likelihood.h"
#include "jobs/analysis/plots.h"
#include "jobs/batching.h"
#include "jobs/trainer.h"
#include "kernels/activation.h"
#include "kernels/adam.h"
#include "kernels/augment.h"
#include "kernels/batch.h"
#include "kernels/reparameterize.h"
#include "kernels/step_state.h"
#include "models/checkpoint.h"

namespace cuvae {

float kl_beta_at(const KlSchedule& s, float beta, int64_t step) {
  if (s.warmup_steps > 0)
    return beta * static_cast<float>(std::min(1.0, static_cast<double>(step) / static_cast<double>(s.warmup_steps)));
  if (s.cycle_steps > 0) {
    const double tau = static_cast<double>(step % s.cycle_steps) / static_cast<double>(s.cycle_steps);
    return beta * static_cast<float>(std::min(1.0, tau / s.ramp));
  }
  return beta;
}


std::vector<std::string> write_vae_images(Context& ctx, ConvVAE& model, const Dataset& test,
                                          const std::string& dir, uint64_t seed, int scale) {
  const VaeConfig& c = model.config();
  check_data_matches(test, c, "data set '" + test.name + "'");
  const int64_t D = c.latent, P = c.pixels();
  const int C = static_cast<int>(c.channels), H = static_cast<int>(c.height), W = static_cast<int>(c.width);
  std::vector<std::string> written;

  // 1. Prior samples (a CVAE: one row of 8 per class, z ~ N(0, I)).
  if (c.is_cvae()) {
    const int64_t K = c.classes, n = 8 * K;
    Tensor z({n, D}, ctx.device());
    sample_normal(ctx, z, seed, 0x5a3b1e00ull);
    std::vector<int32_t> y(static_cast<size_t>(n));
    for (int64_t i = 0; i < n; ++i) y[static_cast<size_t>(i)] = static_cast<int32_t>(i / 8);
    const std::vector<float> img = decode_to_host(ctx, model, z.to_vector(), n, &y);
    const std::string p = dir + "/samples.png";
    write_png_grid(p, img.data(), n, C, H, W, 8, 2, scale);
    written.push_back(p);
  } else {
    Tensor z({64, D}, ctx.device());
    sample_normal(ctx, z, seed, 0x5a3b1e00ull);
    std::vector<float> img = decode_to_host(ctx, model, z.to_vector(), 64);
    const std::string p = dir + "/samples.png";
    write_png_grid(p, img.data(), 64, C, H, W, 8, 2, scale);
    written.push_back(p);
  }
  if (c.is_ae()) {  // an AE has no prior: also decode from a Gaussian fitted to its codes
    const LatentCodes codes = encode_dataset(ctx, model, test, std::min<int64_t>(2000, test.n));
    const std::vector<float> z = fitted_gaussian_samples(codes, 64, seed);
    std::vector<float> img = decode_to_host(ctx, model, z, 64);
    const std::string p = dir + "/samples_fitted.png";
    write_png_grid(p, img.data(), 64, C, H, W, 8, 2, scale);
    written.push_back(p);
  }
  DeviceDataset dd(test, ctx.device());
  // 2. Reconstructions: rows of 8 originals above their 8 reconstructions.
  {
    const int64_t k = std::min<int64_t>(32, test.n);
    Tensor x({k, c.channels, c.height, c.width}, ctx.device());
    IntBuffer labels(k, ctx.device());
    dd.batch(ctx, 0, AugmentConfig{}, 0, 0, x, &labels);
    Tensor& logits = model.forward(ctx, x, false, 0, 0, &labels);
    Tensor rec(logits.shape(), ctx.device());
    activation_forward(ctx, Activation::Sigmoid, logits, rec);
    std::vector<float> xo = x.to_vector(), xr = rec.to_vector();
    const int64_t rows = (k + 7) / 8;
    std::vector<float> grid(static_cast<size_t>(rows * 16 * P), 1.0f);
    for (int64_t i = 0; i < k; ++i) {
      const int64_t r = i / 8, col = i % 8;
      std::copy_n(xo.begin() + i * P, P, grid.begin() + ((2 * r) * 8 + col) * P);
      std::copy_n(xr.begin() + i * P, P, grid.begin() + ((2 * r + 1) * 8 + col) * P);
    }
    const std::string p = dir + "/reconstructions.png";
    write_png_grid(p, grid.data(), rows * 16, C, H, W, 8, 2, scale);
    written.push_back(p);
  }
  // 3. Traversal of the 10 dimensions with the largest mean KL over (up to) 2000 test images,
  // the others at the first test image's mu (the `cuvae traverse` job; not for a CVAE, whose
  // decoder also needs a class: `cuvae sample --style-index` shows its latent space instead).
  if (!c.is_cvae()) {
    const LatentDimStats stats = latent_dim_stats(encode_dataset(ctx, model, test, std::min<int64_t>(2000, test.n)));
    TraverseOptions to;
    to.dims.top_kl = 10;
    const std::vector<float> base = traverse_base(ctx, model, test, nullptr, {TraverseBase::Index, 0});
    const TraverseResult tr = traverse(ctx, model, stats, base, to);
    const std::string p = dir + "/traversal.png";
    write_image_grid(p, tr.grid, scale);
    written.push_back(p);
  }
  return written;
}

namespace {

/// The options train_vae checks before any work. Throws cuvae::Error naming the flag.
void check_vae_options(const VaeTrainOptions& opt) {
  if (opt.epochs < 1) CUVAE_FAIL(option("epochs") << " must be at least 1, got " << opt.epochs);
  if (opt.batch < 1 || opt.batch > 65536) CUVAE_FAIL(option("batch") << " must be in [1, 65536], got " << opt.batch);
  if (!(opt.lr > 0.0f) || !std::isfinite(opt.lr)) CUVAE_FAIL(option("lr") << " must be a positive number, got " << opt.lr);
  if (opt.schedule != "constant" && opt.schedule != "cosine" && opt.schedule != "onecycle")
    CUVAE_FAIL(option("schedule") << " must be constant, cosine or onecycle, got '" << opt.schedule << "'");
  if (!(opt.beta >= 0.0f) || !std::isfinite(opt.beta)) CUVAE_FAIL(option("beta") << " must be >= 0, got " << opt.beta);
  if (opt.latent < 1 || opt.latent > 4096) CUVAE_FAIL(option("latent") << " must be in [1, 4096], got " << opt.latent);
  if (opt.scale < 1 || opt.scale > 16) CUVAE_FAIL(option("scale") << " must be in [1, 16], got " << opt.scale);
  if (opt.recon_loss == ReconLoss::Mse && opt.model != VaeKind::Ae)
    CUVAE_FAIL(option("recon_loss") << " mse is for the plain autoencoder (" << option("model") << " ae); a VAE trains on the Bernoulli ELBO");
  if (!(opt.kl_warmup >= 0) || !std::isfinite(opt.kl_warmup))
    CUVAE_FAIL(option("kl_warmup") << " must be a number of epochs >= 0, got " << opt.kl_warmup);
  if (opt.kl_cycles < 0) CUVAE_FAIL(option("kl_cycles") << " must be >= 0, got " << opt.kl_cycles);
  if (!(opt.free_bits >= 0) || !std::isfinite(opt.free_bits))
    CUVAE_FAIL(option("free_bits") << " must be a number of nats >= 0, got " << opt.free_bits);
  if (opt.kl_warmup > 0 && opt.kl_cycles > 0) CUVAE_FAIL(option("kl_warmup") << " and " << option("kl_cycles") << " exclude each other: choose one schedule");
  if (opt.model == VaeKind::Ae && (opt.kl_warmup > 0 || opt.kl_cycles > 0 || opt.free_bits > 0))
    CUVAE_FAIL(option("kl_warmup") << ", " << option("kl_cycles") << " and " << option("free_bits") << " need a model with a KL term; " << option("model") << " ae has none");
}

/// The old metrics.csv layout, from before the beta column (a resumed run keeps it).
constexpr const char* kVaeHeaderWithoutBeta = "epoch,train_loss,test_recon,test_kl,test_loss,seconds,images_per_s";

/// A ConvVAE (VAE, AE or CVAE) trained with Adam under a KL weight schedule and free bits.
class VaeTrainee final : public Trainee {
 public:
  explicit VaeTrainee(const VaeTrainOptions& opt) : opt_(opt), free_bits_(opt.free_bits) {}

  const std::vector<VaeEpochRecord>& records() const { return records_; }

  void create(Context& ctx, const Dataset& train, uint64_t seed) override {
    create_config_for_note(train);
    cfg_.binarize = opt_.binarize;
    cfg_.dataset = opt_.dataset;
    cfg_.classes = train.num_classes;
    seed_ = seed;
    model_ = std::make_unique<ConvVAE>(cfg_, ctx.device());
    model_->init(seed);
    const int64_t total = model_->params().flat_values().numel();
    m_ = Tensor({total}, ctx.device());
    v_ = Tensor({total}, ctx.device());
    ac_.lr = opt_.lr;
  }

  void restore(Context& ctx, const Dataset& train, const SafetensorsFile& of, const std::string& path,
               const RunPosition& pos, std::ostream& log) override {
    seed_ = pos.seed;
    create_config_for_note(train);
    if (of.metadata.count("config")) {
      // The training state holds the config and the weights of the same step as the moments.
      model_ = std::make_unique<ConvVAE>(VaeConfig::from_json(checkpoint_config(of), path), ctx.device());
      if (!load_params_prefixed(of, model_->params(), kStateWeightsPrefix))
        CUVAE_FAIL(path << ": the training state holds no weights");
    } else {  // files from before the state held the weights: the model file
      model_ = load_vae(opt_.out + "/model.safetensors", ctx.device(), true);
    }
    const VaeConfig& c = model_->config();
    if (c.latent != cfg_.latent || c.beta != cfg_.beta || c.channels != cfg_.channels || c.height != cfg_.height ||
        c.kind != cfg_.kind || c.recon_loss != cfg_.recon_loss || c.arch != cfg_.arch)
      log << "note: --resume uses the checkpoint's config (" << c.model_name() << ", --arch " << vae_arch_name(c.arch)
          << ", latent " << c.latent
          << ", beta " << c.beta << ")\n";
    cfg_ = c;
    const int64_t total = model_->params().flat_values().numel();
    m_ = Tensor::from_vector(of.f32("adam.m", {total}), {total}, ctx.device());
    v_ = Tensor::from_vector(of.f32("adam.v", {total}), {total}, ctx.device());
    ac_.lr = opt_.lr;
    // The learning-rate schedule is the run's own (files from before it: constant).
    const std::string stored_schedule = of.metadata.count("schedule") ? of.metadata.at("schedule") : "constant";
    if (stored_schedule != opt_.schedule)
      CUVAE_FAIL(option("resume") << ": the run used " << option("schedule") << " " << stored_schedule << ", not "
                                  << opt_.schedule);
    // The schedules continue exactly as they began (files from before schedules: none).
    KlSchedule stored;
    float stored_fb = 0.0f;
    try {
      if (of.metadata.count("kl_warmup_steps")) stored.warmup_steps = std::stoll(of.metadata.at("kl_warmup_steps"));
      if (of.metadata.count("kl_cycle_steps")) stored.cycle_steps = std::stoll(of.metadata.at("kl_cycle_steps"));
      if (of.metadata.count("free_bits")) stored_fb = std::stof(of.metadata.at("free_bits"));
    } catch (const std::exception&) {
      CUVAE_FAIL(path << ": metadata fields kl_warmup_steps, kl_cycle_steps and free_bits must be numbers");
    }
    if (stored.warmup_steps != sched_.warmup_steps || stored.cycle_steps != sched_.cycle_steps || stored_fb != free_bits_)
      log << "note: --resume continues the run's own KL schedule and free bits\n";
    sched_ = stored;
    free_bits_ = stored_fb;
  }

  bool model_file_matches(const std::string& path) const override {
    if (!file_exists(path)) return false;
    try {
      return load_vae(path, Device::CPU, true)->params().flat_values().to_vector() ==
             model_->params().flat_values().to_vector();
    } catch (const Error&) {  // damaged or cut short by a kill
      return false;
    }
  }
  void save_model(const std::string& path) const override { save_params(path, model_->params(), cfg_.to_json()); }
  void check_test_data(const Dataset& test, const std::string& what) const override { check_data_matches(test, cfg_, what); }

  nlohmann::json config_json() const override {
    return {{"latent", cfg_.latent},
            {"beta", typed_decimal(cfg_.beta)},
            {"lr", typed_decimal(opt_.lr)},
            {"schedule", opt_.schedule},
            {"binarize", cfg_.binarize},
            {"model", cfg_.to_json()},
            {"parameters", model_->params().count()},
            {"kl_warmup_steps", sched_.warmup_steps},
            {"kl_cycle_steps", sched_.cycle_steps},
            {"free_bits", typed_decimal(free_bits_)}};
  }
  std::vector<std::string> metrics_columns(const std::string& existing) override {
    without_beta_ = existing == kVaeHeaderWithoutBeta;
    std::vector<std::string> c = {"epoch", "train_loss", "test_recon", "test_kl", "test_loss", "seconds", "images_per_s", "beta"};
    if (without_beta_) c.pop_back();
    return c;
  }
  std::string describe() const override {
    std::ostringstream os;
    os << cfg_.model_name() << " (" << (cfg_.arch == VaeArch::Resnet ? "residual, " : "") << "latent " << cfg_.latent;
    if (cfg_.is_ae())
      os << ", recon loss " << (cfg_.recon_loss == ReconLoss::Mse ? "mse" : "bce");
    else
      os << ", beta " << cfg_.beta;
    if (sched_.warmup_steps > 0) os << ", KL warm-up over " << sched_.warmup_steps << " steps";
    if (sched_.cycle_steps > 0) os << ", cyclical KL weight with a period of " << sched_.cycle_steps << " steps";
    if (free_bits_ > 0) os << ", free bits " << free_bits_ << " nats per dimension";
    if (opt_.schedule != "constant") os << ", Adam lr " << opt_.lr << " on a " << opt_.schedule << " schedule";
    os << ", " << model_->params().count() << " parameters)";
    return os.str();
  }
  std::vector<StepScalars> step_table(int64_t first, int64_t total) const override {
    std::vector<StepScalars> table(static_cast<size_t>(total - first));
    for (int64_t t = first; t < total; ++t) {
      StepScalars& r = table[static_cast<size_t>(t - first)];
      const double lr = lr_at(opt_.schedule, opt_.lr, t, total);
      r.lr = static_cast<float>(lr);
      r.kl_weight = kl_beta_at(sched_, cfg_.beta, t);
      const AdamCorrections c = adam_corrections(lr, ac_.beta1, ac_.beta2, t + 1);
      r.adam_step_size = static_cast<float>(c.step_size);
      r.adam_bc2_sqrt = static_cast<float>(c.bc2_sqrt);
    }
    return table;
  }
  uint64_t philox_per_step() const override { return 2; }  // ε, then binarization

  void forward_backward(Context& ctx, Tensor& x, IntBuffer& labels, const StepState* state) override {
    model_->set_free_bits(free_bits_);
    model_->set_step_state(state);
    model_->forward(ctx, x, true, seed_, 0, &labels);
    model_->loss(ctx, x, true, seed_, 1);
    model_->backward(ctx);
  }
  Tensor& gradients() override { return model_->params().flat_grads(); }
  void update(Context& ctx, const StepState* state) override {
    ac_.state = state;
    adam_step(ctx, model_->params().flat_values(), model_->params().flat_grads(), m_, v_, ac_);
  }
  std::vector<Tensor*> replicated() override { return {&model_->params().flat_values(), &m_, &v_}; }
  const Tensor& step_loss() const override { return model_->loss_value(); }
  std::string progress(Context&, double mean_loss, int64_t steps, int64_t batch, double seconds) override {
    return "loss " + fixed(mean_loss) + "  " + fixed(static_cast<double>(steps * batch) / std::max(seconds, 1e-9), 0) + " img/s";
  }
  EpochOutcome end_epoch(Context& ctx, const Dataset& test, const StepState& at, int epoch, double mean_loss,
                         double seconds) override {
    const int64_t steps = std::max<int64_t>(1, steps_per_epoch_);
    double beta_sum = 0;  // the mean β_t of the epoch's steps
    for (int64_t t = at.step - steps_per_epoch_; t < at.step; ++t) beta_sum += kl_beta_at(sched_, cfg_.beta, t);
    const VaeEval e = evaluate_vae(ctx, *model_, test, 500, 0, comm_);  // sharded over the ranks
    const double images_per_s = static_cast<double>(steps_per_epoch_ * opt_.batch) / seconds;
    const VaeEpochRecord r{epoch, mean_loss, e.recon, e.kl, e.loss, seconds, images_per_s,
                           beta_sum / static_cast<double>(steps)};
    records_.push_back(r);
    EpochOutcome o;
    o.row = {double(r.epoch), r.train_loss, r.test_recon, r.test_kl, r.test_loss, r.seconds, r.images_per_s, r.beta};
    if (without_beta_) o.row.pop_back();
    o.test_loss = e.loss;
    o.summary = "train loss " + fixed(mean_loss) + ", test recon " + fixed(e.recon) + " + KL " + fixed(e.kl) + " = " +
                fixed(e.loss) + " nats/image (" + fixed(seconds, 1) + " s, " + fixed(images_per_s, 0) + " img/s)";
    return o;
  }
  void add_state(SafetensorsWriter& w) const override {
    add_params(w, model_->params(), kStateWeightsPrefix);
    w.add_f32_view("adam.m", m_);
    w.add_f32_view("adam.v", v_);
    w.set_metadata("config", cfg_.to_json().dump());
    w.set_metadata("optimizer", "Adam");
    w.set_metadata("lr", fixed(opt_.lr, 8));
    w.set_metadata("schedule", opt_.schedule);
    w.set_metadata("kl_warmup_steps", std::to_string(sched_.warmup_steps));
    w.set_metadata("kl_cycle_steps", std::to_string(sched_.cycle_steps));
    w.set_metadata("free_bits", fixed(free_bits_, 9));
  }
  void finish(Context& ctx, const Dataset& test, const std::string& out, uint64_t seed, std::ostream& log) override {
    if (!opt_.images) return;
    for (const std::string& p : write_vae_images(ctx, *model_, test, out, seed, opt_.scale)) log << "wrote " << p << "\n";
  }

 private:
  /// The KL schedule in steps of this run's epochs of train.n / batch steps.
  KlSchedule schedule_for(const Dataset& train) {
    steps_per_epoch_ = train.n / opt_.batch;
    KlSchedule s;
    s.warmup_steps = static_cast<int64_t>(std::llround(opt_.kl_warmup * static_cast<double>(steps_per_epoch_)));
    s.cycle_steps = opt_.kl_cycles > 0
                        ? std::max<int64_t>(1, (steps_per_epoch_ * opt_.epochs + opt_.kl_cycles - 1) / opt_.kl_cycles)
                        : 0;
    return s;
  }
  /// The config and schedule the options ask for, to compare a resumed run's with.
  void create_config_for_note(const Dataset& train) {
    cfg_.channels = train.c;
    cfg_.height = train.h;
    cfg_.width = train.w;
    cfg_.latent = opt_.latent;
    cfg_.kind = opt_.model;
    cfg_.arch = opt_.arch;
    cfg_.recon_loss = opt_.recon_loss;
    cfg_.beta = opt_.model == VaeKind::Ae ? 0.0f : opt_.beta;
    sched_ = schedule_for(train);
  }

  const VaeTrainOptions& opt_;
  VaeConfig cfg_;
  KlSchedule sched_;
  float free_bits_ = 0;
  int64_t steps_per_epoch_ = 0;
  uint64_t seed_ = 0;  // the run's: ε and binarization draw from it
  bool without_beta_ = false;
  std::unique_ptr<ConvVAE> model_;
  Tensor m_, v_;
  AdamConfig ac_;
  std::vector<VaeEpochRecord> records_;
};

}  // namespace

std::vector<VaeEpochRecord> train_vae(const VaeTrainOptions& opt, std::ostream& log) {
  check_vae_options(opt);
  if (opt.free_bits > 0 && Communicator::world().distributed())
    CUVAE_FAIL(option("free_bits") << " is not supported with data-parallel ranks yet: its per-dimension KL is a "
                                      "statistic of the whole batch, which the ranks split");
  RunSpec spec = run_spec_of("train-vae", opt);
  spec.stop_after = opt.stop_after;
  VaeTrainee trainee(opt);
  run_training(spec, trainee, log);
  return trainee.records();
}

nlohmann::json eval_vae_job(const EvalVaeJob& job) {
  // Under mpirun each rank evaluates its share of the test images and the sums are reduced.
  const Communicator& comm = Communicator::world();
  if (comm.distributed() && job.device != DeviceRequest::CPU) select_cuda_device(comm.local_rank());
  Context ctx(job.device);
  auto model = load_vae(job.checkpoint, ctx.device(), true);
  if (job.nll > 0 && model->config().is_cvae())
    CUVAE_FAIL(option("nll") << " supports unconditional VAEs; " << job.checkpoint << " is a CVAE");
  if (job.nll > 0 && model->config().is_ae())
    CUVAE_FAIL(option("nll") << " needs a VAE checkpoint: " << job.checkpoint << " is a plain autoencoder (no q(z|x) to sample from)");
  if (job.binarize && !model->config().binarize)
    CUVAE_FAIL(option("binarize") << " evaluates models trained with " << option("binarize") << "; " << job.checkpoint << " was trained on grey levels");
  // The data set the model was trained on unless one is named (files without cuvae's config: MNIST).
  std::string dataset = job.dataset.empty() ? model->config().dataset : job.dataset;
  if (dataset.empty()) dataset = "mnist";
  const std::string dir = job.data.empty() ? default_data_dir(dataset) : job.data;
  Dataset test = load_dataset(dataset, dir, false);
  if (job.binarize) test = binarized_copy(test);
  const VaeEval r = evaluate_vae(ctx, *model, test, job.batch, job.limit, &comm);
  nlohmann::json j;
  j["model"] = model->config().is_ae() ? "ae" : model->config().is_cvae() ? "cvae" : "vae";
  j["recon"] = r.recon;
  if (!model->config().is_ae()) j["kl"] = r.kl;
  j["loss"] = r.loss;
  if (job.nll > 0) {
    NllOptions no;
    no.k = job.nll;
    no.limit = job.limit;
    no.progress = job.progress;
    no.comm = &comm;
    const NllResult nr = estimate_nll(ctx, *model, test, no);
    j["nll"] = nr.nll;
    j["nll_stderr"] = nr.nll_stderr;
    j["nll_k"] = nr.k;
    j["nll_seconds"] = nr.seconds;
  }
  j["n"] = r.n;
  j["dataset"] = dataset;
  j["binarized"] = job.binarize;
  j["device"] = ctx.description();
  j["ranks"] = comm.size();
  return j;
}

}  // namespace cuvae
