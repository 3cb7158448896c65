#include "jobs/vae_trainer.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <numeric>
#include <random>
#include <sstream>

#include "core/check.h"
#include "core/decimal.h"
#include "core/step_graph.h"
#include "io/fs.h"
#include "io/image.h"
#include "io/metrics.h"
#include "io/plot.h"
#include "jobs/analysis/latent.h"
#include "jobs/analysis/latent_io.h"
#include "jobs/analysis/likelihood.h"
#include "jobs/analysis/plots.h"
#include "jobs/batching.h"
#include "kernels/activation.h"
#include "kernels/adam.h"
#include "kernels/augment.h"
#include "kernels/batch.h"
#include "kernels/loss_monitor.h"
#include "kernels/reparameterize.h"
#include "kernels/step_state.h"
#include "models/checkpoint.h"

namespace cuvae {

namespace {


std::string fmt(double v, int prec = 2) {
  char b[64];
  std::snprintf(b, sizeof b, "%.*f", prec, v);
  return b;
}

}  // namespace

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

std::vector<VaeEpochRecord> train_vae(const VaeTrainOptions& opt, std::ostream& log) {
  if (opt.epochs < 1) CUVAE_FAIL("--epochs must be at least 1, got " << opt.epochs);
  if (opt.batch < 1 || opt.batch > 65536) CUVAE_FAIL("--batch must be in [1, 65536], got " << opt.batch);
  if (!(opt.lr > 0.0f) || !std::isfinite(opt.lr)) CUVAE_FAIL("--lr must be a positive number, got " << opt.lr);
  if (!(opt.beta >= 0.0f) || !std::isfinite(opt.beta)) CUVAE_FAIL("--beta must be >= 0, got " << opt.beta);
  if (opt.latent < 1 || opt.latent > 4096) CUVAE_FAIL("--latent must be in [1, 4096], got " << opt.latent);
  if (opt.scale < 1 || opt.scale > 16) CUVAE_FAIL("--scale must be in [1, 16], got " << opt.scale);
  CUVAE_REQUIRE(!opt.out.empty(), "--out must name a run folder");
  if (opt.recon_loss == ReconLoss::Mse && opt.model != VaeKind::Ae)
    CUVAE_FAIL("--recon-loss mse is for the plain autoencoder (--model ae); a VAE trains on the Bernoulli ELBO");
  if (!(opt.kl_warmup >= 0) || !std::isfinite(opt.kl_warmup))
    CUVAE_FAIL("--kl-warmup must be a number of epochs >= 0, got " << opt.kl_warmup);
  if (opt.kl_cycles < 0) CUVAE_FAIL("--kl-cycles must be >= 0, got " << opt.kl_cycles);
  if (!(opt.free_bits >= 0) || !std::isfinite(opt.free_bits))
    CUVAE_FAIL("--free-bits must be a number of nats >= 0, got " << opt.free_bits);
  if (opt.kl_warmup > 0 && opt.kl_cycles > 0) CUVAE_FAIL("--kl-warmup and --kl-cycles exclude each other: choose one schedule");
  if (opt.model == VaeKind::Ae && (opt.kl_warmup > 0 || opt.kl_cycles > 0 || opt.free_bits > 0))
    CUVAE_FAIL("--kl-warmup, --kl-cycles and --free-bits need a model with a KL term; --model ae has none");

  if (opt.resume && !file_exists(opt.out + "/optim.safetensors"))
    CUVAE_FAIL("--resume: " << opt.out << " has no optim.safetensors to resume from (a run folder of train-vae)");
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

  const std::string model_path = opt.out + "/model.safetensors";
  const std::string optim_path = opt.out + "/optim.safetensors";
  VaeConfig cfg;
  cfg.channels = train.c;
  cfg.height = train.h;
  cfg.width = train.w;
  cfg.latent = opt.latent;
  cfg.kind = opt.model;
  cfg.recon_loss = opt.recon_loss;
  cfg.beta = opt.model == VaeKind::Ae ? 0.0f : opt.beta;
  cfg.binarize = opt.binarize;
  cfg.dataset = opt.dataset;
  cfg.classes = train.num_classes;
  const int64_t steps = train.n / opt.batch;  // the last partial batch is dropped
  KlSchedule sched;
  sched.warmup_steps = static_cast<int64_t>(std::llround(opt.kl_warmup * static_cast<double>(steps)));
  sched.cycle_steps = opt.kl_cycles > 0 ? std::max<int64_t>(1, (steps * opt.epochs + opt.kl_cycles - 1) / opt.kl_cycles) : 0;
  float free_bits = opt.free_bits;

  std::unique_ptr<ConvVAE> model;
  Tensor m, v;
  int start_epoch = 0;
  int64_t step = 0;
  uint64_t seed = opt.seed;
  if (opt.resume) {
    if (!file_exists(optim_path))
      CUVAE_FAIL("--resume: " << opt.out << " has no optim.safetensors to resume from (a run folder of train-vae)");
    SafetensorsFile of = read_safetensors(optim_path);
    // The training state holds the config and the weights of the same step as the moments, so a
    // kill between its write and model.safetensors' is harmless (files from before it: the model file).
    bool model_file_behind = true;
    if (of.metadata.count("config")) {
      model = std::make_unique<ConvVAE>(VaeConfig::from_json(checkpoint_config(of), optim_path), ctx.device());
      if (!load_params_prefixed(of, model->params(), kStateWeightsPrefix))
        CUVAE_FAIL(optim_path << ": the training state holds no weights");
      if (file_exists(model_path)) {
        try {
          model_file_behind = load_vae(model_path, Device::CPU, true)->params().flat_values().to_vector() !=
                              model->params().flat_values().to_vector();
        } catch (const Error&) {  // damaged or cut short by the kill: rewritten below
        }
      }
    } else {
      model = load_vae(model_path, ctx.device(), true);
      model_file_behind = false;
    }
    const VaeConfig& c = model->config();
    if (c.latent != cfg.latent || c.beta != cfg.beta || c.channels != cfg.channels || c.height != cfg.height ||
        c.kind != cfg.kind || c.recon_loss != cfg.recon_loss)
      log << "note: --resume uses the checkpoint's config (" << c.model_name() << ", latent " << c.latent
          << ", beta " << c.beta << ")\n";
    cfg = c;
    const int64_t total = model->params().flat_values().numel();
    m = Tensor::from_vector(of.f32("adam.m", {total}), {total}, ctx.device());
    v = Tensor::from_vector(of.f32("adam.v", {total}), {total}, ctx.device());
    try {
      start_epoch = std::stoi(of.metadata.at("epoch"));
      step = std::stoll(of.metadata.at("step"));
      seed = std::stoull(of.metadata.at("seed"));
      // The schedules continue exactly as they began (files from before schedules: none).
      KlSchedule stored;
      if (of.metadata.count("kl_warmup_steps")) stored.warmup_steps = std::stoll(of.metadata.at("kl_warmup_steps"));
      if (of.metadata.count("kl_cycle_steps")) stored.cycle_steps = std::stoll(of.metadata.at("kl_cycle_steps"));
      const float stored_fb = of.metadata.count("free_bits") ? std::stof(of.metadata.at("free_bits")) : 0.0f;
      if (stored.warmup_steps != sched.warmup_steps || stored.cycle_steps != sched.cycle_steps || stored_fb != free_bits)
        log << "note: --resume continues the run's own KL schedule and free bits\n";
      sched.warmup_steps = stored.warmup_steps;
      sched.cycle_steps = stored.cycle_steps;
      free_bits = stored_fb;
    } catch (const std::exception&) {
      CUVAE_FAIL(optim_path << ": metadata fields epoch, step and seed are missing or not integers");
    }
    // model.safetensors as of the saved state when a kill left it one write behind.
    if (model_file_behind) save_params(model_path, model->params(), cfg.to_json());
    if (start_epoch >= opt.epochs) {
      log << opt.out << " already has " << start_epoch << " epochs (--epochs " << opt.epochs << "): nothing to do\n";
      return {};
    }
    log << "resuming " << opt.out << " after epoch " << start_epoch << " (step " << step << ")\n";
  } else {
    model = std::make_unique<ConvVAE>(cfg, ctx.device());
    model->init(seed);
    const int64_t total = model->params().flat_values().numel();
    m = Tensor({total}, ctx.device());
    v = Tensor({total}, ctx.device());
  }
  check_data_matches(test, cfg, "test split of '" + opt.dataset + "'");

  ensure_dir(opt.out);
  {
    nlohmann::json jc = {{"command", "train-vae"},      {"dataset", opt.dataset}, {"data", dir},
                         {"epochs", opt.epochs},        {"batch", opt.batch},     {"latent", cfg.latent},
                         {"beta", typed_decimal(cfg.beta)}, {"lr", typed_decimal(opt.lr)},           {"seed", seed},
                         {"binarize", cfg.binarize},    {"device", ctx.description()},
                         {"train_images", train.n},     {"test_images", test.n},  {"model", cfg.to_json()},
                         {"parameters", model->params().count()},
                         {"kl_warmup_steps", sched.warmup_steps}, {"kl_cycle_steps", sched.cycle_steps},
                         {"free_bits", typed_decimal(free_bits)}};
    write_file_atomic(opt.out + "/config.json", jc.dump(2) + "\n");
  }
  std::vector<std::string> columns = {"epoch", "train_loss", "test_recon", "test_kl", "test_loss", "seconds",
                                      "images_per_s", "beta"};
  // A run folder from before the beta column keeps its own header when resumed.
  const bool old_header = opt.resume && file_exists(opt.out + "/metrics.csv") &&
                          read_file(opt.out + "/metrics.csv").rfind("epoch,train_loss,test_recon,test_kl,test_loss,seconds,images_per_s\n", 0) == 0;
  if (old_header) columns.pop_back();
  MetricsCsv metrics(opt.out + "/metrics.csv", columns, opt.resume);
  metrics.keep_rows(start_epoch);  // a row whose epoch's state was not saved is redone

  DeviceDataset dd(train, ctx.device());
  IntBuffer labels(opt.batch, ctx.device());
  Tensor x({opt.batch, cfg.channels, cfg.height, cfg.width}, ctx.device());
  Tensor monitor({kMonitorSize}, ctx.device());
  AdamConfig ac;
  ac.lr = opt.lr;
  log << "training " << cfg.model_name() << " (latent " << cfg.latent;
  if (cfg.is_ae())
    log << ", recon loss " << (cfg.recon_loss == ReconLoss::Mse ? "mse" : "bce");
  else
    log << ", beta " << cfg.beta;
  if (sched.warmup_steps > 0) log << ", KL warm-up over " << sched.warmup_steps << " steps";
  if (sched.cycle_steps > 0) log << ", cyclical KL weight with a period of " << sched.cycle_steps << " steps";
  if (free_bits > 0) log << ", free bits " << free_bits << " nats per dimension";
  log << ", "
      << model->params().count() << " parameters) on " << train.n << " " << opt.dataset
      << " images, batch " << opt.batch << ", " << steps << " steps/epoch" << std::endl;

  std::vector<VaeEpochRecord> records;
  const int sync_every = ctx.is_cuda() ? 50 : 5;
  model->set_free_bits(free_bits);
  // Everything a step reads that changes from step to step lives in the step state: the batch's
  // rows, the Philox offsets (2·step for ε, 2·step + 1 for binarization), β_t and Adam's bias
  // corrections, from a table computed here for every step of the run.
  const int64_t total_steps = std::max<int64_t>(step + 1, steps * static_cast<int64_t>(opt.epochs));
  std::vector<StepScalars> table(static_cast<size_t>(total_steps - step));
  for (int64_t t = step; t < total_steps; ++t) {
    StepScalars& r = table[static_cast<size_t>(t - step)];
    r.lr = opt.lr;
    r.kl_weight = kl_beta_at(sched, cfg.beta, t);
    const AdamCorrections c = adam_corrections(opt.lr, ac.beta1, ac.beta2, t + 1);
    r.adam_step_size = static_cast<float>(c.step_size);
    r.adam_bc2_sqrt = static_cast<float>(c.bc2_sqrt);
  }
  const int64_t first_step = step;
  StepStateBuffer state(ctx, step, step, opt.batch, steps, 2, table);
  model->set_step_state(state.get());
  ac.state = state.get();
  StepGraph graph(opt.cuda_graph);
  // One training step, reading its per-step values from `state` only (so it can be captured).
  const auto train_step = [&] {
    dd.batch(ctx, 0, AugmentConfig{}, 0, 0, x, &labels, state.get());
    model->forward(ctx, x, true, seed, 0, &labels);
    model->loss(ctx, x, true, seed, 1);
    model->backward(ctx);
    adam_step(ctx, model->params().flat_values(), model->params().flat_grads(), m, v, ac);
    loss_monitor(ctx, model->loss_value(), monitor, 0, state.get());
    state.advance(ctx);
  };
  for (int epoch = start_epoch; epoch < opt.epochs; ++epoch) {
    dd.set_order(shuffled_order(train.n, seed, epoch));
    monitor.zero(ctx.stream());
    ProgressBar bar("epoch " + std::to_string(epoch + 1) + "/" + std::to_string(opt.epochs), steps, opt.progress);
    const auto t0 = std::chrono::steady_clock::now();
    double mean_loss = 0, beta_sum = 0;
    for (int64_t s = 0; s < steps; ++s, ++step) {
      beta_sum += table[static_cast<size_t>(step - first_step)].kl_weight;  // this step's β_t
      graph.run(ctx, train_step);
      if ((s + 1) % sync_every == 0 || s + 1 == steps) {
        const std::vector<float> mon = monitor.to_vector();
        if (mon[2] != 0.0f) {
          const int64_t bad = static_cast<int64_t>(mon[2]) - 1;
          bar.finish("stopped");
          std::ostringstream os;
          os << "the training loss became non-finite (NaN or Inf) at step " << bad << " (epoch " << epoch + 1
             << "); stopping. ";
          if (epoch > start_epoch || opt.resume || file_exists(model_path))
            os << "The last good checkpoint is kept in " << model_path;
          else
            os << "No checkpoint was written; try a smaller --lr";
          CUVAE_FAIL(os.str());
        }
        mean_loss = mon[1] > 0 ? mon[0] / mon[1] : 0.0;
        const double el = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
        bar.update(s + 1, "loss " + fmt(mean_loss) + "  " + fmt((s + 1) * opt.batch / std::max(el, 1e-9), 0) + " img/s");
      }
    }
    ctx.synchronize();
    const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    bar.finish("loss " + fmt(mean_loss) + "  " + fmt(steps * opt.batch / secs, 0) + " img/s");
    if (epoch == start_epoch) log << graph.summary();
    state.read_at(step);  // the device's count agrees with the loop's
    VaeEval e = evaluate_vae(ctx, *model, test);
    VaeEpochRecord r{epoch + 1, mean_loss, e.recon, e.kl, e.loss, secs, steps * opt.batch / secs,
                     beta_sum / static_cast<double>(std::max<int64_t>(1, steps))};
    records.push_back(r);
    if (!std::isfinite(e.loss))
      CUVAE_FAIL("the test loss after epoch " << epoch + 1 << " is not finite; stopping. The last good checkpoint is kept in " << model_path);
    std::vector<double> row = {double(r.epoch), r.train_loss, r.test_recon, r.test_kl, r.test_loss, r.seconds,
                               r.images_per_s, r.beta};
    if (old_header) row.pop_back();
    // Metrics row, then the whole training state (one atomic file), then the model: whenever the
    // process is killed, --resume finds a consistent state and redoes at most this epoch.
    metrics.append(row);
    {
      SafetensorsWriter w;
      add_params(w, model->params(), kStateWeightsPrefix);
      w.add_f32("adam.m", m);
      w.add_f32("adam.v", v);
      w.set_metadata("format", "cuvae-optim");
      w.set_metadata("config", cfg.to_json().dump());
      w.set_metadata("optimizer", "Adam");
      w.set_metadata("epoch", std::to_string(epoch + 1));
      w.set_metadata("step", std::to_string(step));
      w.set_metadata("seed", std::to_string(seed));
      w.set_metadata("lr", fmt(opt.lr, 8));
      w.set_metadata("kl_warmup_steps", std::to_string(sched.warmup_steps));
      w.set_metadata("kl_cycle_steps", std::to_string(sched.cycle_steps));
      w.set_metadata("free_bits", fmt(free_bits, 9));
      w.write(optim_path);
    }
    save_params(model_path, model->params(), cfg.to_json());
    log << "epoch " << epoch + 1 << ": train loss " << fmt(mean_loss) << ", test recon " << fmt(e.recon)
        << " + KL " << fmt(e.kl) << " = " << fmt(e.loss) << " nats/image (" << fmt(secs, 1) << " s, "
        << fmt(r.images_per_s, 0) << " img/s)" << std::endl;
  }
  if (opt.images) {
    for (const std::string& p : write_vae_images(ctx, *model, test, opt.out, seed, opt.scale))
      log << "wrote " << p << "\n";
  }
  write_curves_or_note(opt.out, log);
  log << "run folder: " << opt.out << " (model.safetensors, optim.safetensors, metrics.csv, config.json)\n";
  return records;
}

nlohmann::json eval_vae_job(const EvalVaeJob& job) {
  Context ctx(job.device);
  auto model = load_vae(job.checkpoint, ctx.device(), true);
  if (job.nll > 0 && model->config().is_cvae())
    CUVAE_FAIL("--nll supports unconditional VAEs; " << job.checkpoint << " is a CVAE");
  if (job.nll > 0 && model->config().is_ae())
    CUVAE_FAIL("--nll needs a VAE checkpoint: " << job.checkpoint << " is a plain autoencoder (no q(z|x) to sample from)");
  if (job.binarize && !model->config().binarize)
    CUVAE_FAIL("--binarize evaluates models trained with --binarize; " << job.checkpoint << " was trained on grey levels");
  const std::string dir = job.data.empty() ? default_data_dir(job.dataset) : job.data;
  Dataset test = load_dataset(job.dataset, dir, false);
  if (job.binarize) test = binarized_copy(test);
  const VaeEval r = evaluate_vae(ctx, *model, test, job.batch, job.limit);
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
    const NllResult nr = estimate_nll(ctx, *model, test, no);
    j["nll"] = nr.nll;
    j["nll_stderr"] = nr.nll_stderr;
    j["nll_k"] = nr.k;
    j["nll_seconds"] = nr.seconds;
  }
  j["n"] = r.n;
  j["dataset"] = job.dataset;
  j["binarized"] = job.binarize;
  j["device"] = ctx.description();
  return j;
}

}  // namespace cuvae
