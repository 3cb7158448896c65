// The study subcommands: compare (trained runs side by side), sample (generation) and sweep (a
// grid over latent size and beta). Each binds its flags to its job's options and calls the job of
// jobs/analysis/compare.h, jobs/sample.h or jobs/analysis/folder_jobs.h.
#include <iostream>
#include <memory>
#include <string>
#include <vector>

#include "commands.h"
#include "flags.h"
#include "jobs/analysis/compare.h"
#include "jobs/analysis/folder_jobs.h"
#include "jobs/sample.h"

namespace cuvae::app {

namespace {

void add_compare_command(CLI::App& app, std::vector<Command>& commands) {
  auto job = std::make_shared<CompareOptions>();
  CompareOptions& o = *job;
  CLI::App* c = app.add_subcommand(
      "compare",
      "Evaluate trained VAE/AE run folders side by side: test recon (nats and MSE per pixel), KL, -ELBO, "
      "importance-sampled NLL, active units, 5-NN accuracy in latent space and, with --classifier, prior samples' "
      "confidence, class entropy and Frechet distances; writes compare.md, compare.json and compare.png");
  c->add_option("--runs", o.runs, "Run folders written by train-vae (same data set)")->required()->expected(1, -1);
  c->add_option("--classifier", o.classifier,
                "Classifier model.safetensors (train-classifier) for the sample-quality columns");
  add_out_flag(c, o.out);
  add_data_flag(c, o.data_dir);
  c->add_option("--nll", o.nll_k, "Importance samples K for the NLL")->capture_default_str();
  c->add_option("--limit", o.limit, "Evaluate on the first N test images (0 = all)")->capture_default_str();
  c->add_option("--prior", o.prior, "Prior samples classified (with --classifier)")
      ->check(CLI::Range(2, 100000))
      ->capture_default_str();
  add_seed_flag(c, o.seed, "Seed of the prior samples");
  add_device_flag(c, o.device);
  add_no_progress_flag(c, o.progress, "No progress bars");
  commands.push_back({c, [job] { compare_runs(*job, std::cout); }});
}

void add_sample_command(CLI::App& app, std::vector<Command>& commands) {
  auto job = std::make_shared<SampleOptions>();
  SampleOptions& o = *job;
  CLI::App* c = app.add_subcommand(
      "sample",
      "Images from a VAE or CVAE into DIR/samples.png: a CVAE decodes z ~ N(0, s^2 I) with the class asked for (or "
      "every class, a row each), or a test image's style with every class; a VAE samples its prior, or with --class "
      "the class's region of its latent space (as anchor does)");
  c->add_option("--vae", o.vae, "model.safetensors written by train-vae (--model vae, ae or cvae)")->required();
  c->add_option("--class", o.klass, "Class to generate (CVAE: the label; VAE: class-anchored sampling)");
  c->add_option("--n", o.n, "Images (a CVAE without --class: per class)")->capture_default_str();
  c->add_option("--noise", o.noise, "Noise scale s (default 1 for the prior and a CVAE, 0.5 for anchored samples)");
  add_components_flag(c, o.components);
  c->add_option("--style-index", o.style_index, "CVAE: test images whose mu is decoded with each class (one row each)")
      ->multi_option_policy(CLI::MultiOptionPolicy::TakeAll);
  add_seed_flag(c, o.seed, "Seed of the samples");
  add_dataset_flag(c, o.dataset, "Data set (default: the one the model was trained on)");
  add_data_flag(c, o.data_dir);
  add_device_flag(c, o.device);
  add_scale_flag(c, o.scale, "Enlarge the PNG by this factor");  // the job checks [1, 16]
  add_out_flag(c, o.out);
  add_no_progress_flag(c, o.progress, "No progress bars");
  commands.push_back({c, [job] { sample_images(*job, std::cout); }});
}

void add_sweep_command(CLI::App& app, std::vector<Command>& commands) {
  auto job = std::make_shared<SweepJob>();
  SweepOptions& o = job->sweep;
  CLI::App* c = app.add_subcommand(
      "sweep",
      "Train a grid of models over latent size and beta into DIR/<config>/ (finished ones are skipped, interrupted "
      "ones resume), then write sweep.csv, sweep.md and plots: recon and KL against latent size, the rate-distortion "
      "curve and a grid of prior samples");
  add_dataset_flag(c, o.dataset);
  add_data_flag(c, o.data_dir);
  c->add_option("--latent", job->latents, "Comma-separated latent sizes")->capture_default_str();
  c->add_option("--beta", job->betas, "Comma-separated KL weights (ignored for --model ae)")->capture_default_str();
  c->add_option("--model", o.model, "vae or ae")->check(CLI::IsMember({"vae", "ae"}))->capture_default_str();
  c->add_option("--epochs", o.epochs, "Epochs per configuration")->check(CLI::Range(1, 100000))->capture_default_str();
  c->add_option("--batch", o.batch, "Images per training step")->check(CLI::Range(1, 65536))->capture_default_str();
  c->add_option("--lr", o.lr, "Adam learning rate")->check(CLI::PositiveNumber)->capture_default_str();
  add_seed_flag(c, o.seed, "Seed of every configuration");
  c->add_option("--train-limit", o.train_limit, "Train on the first N images (0 = all)")->check(CLI::NonNegativeNumber);
  c->add_option("--classifier", o.classifier, "Classifier model.safetensors for the sample-quality columns");
  c->add_option("--nll", o.nll_k, "Importance samples K for the NLL")->capture_default_str();
  c->add_option("--limit", o.limit, "Test images per evaluation (0 = all)")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  add_out_flag(c, o.out, "Sweep folder");
  add_device_flag(c, o.device);
  add_no_progress_flag(c, o.progress, "No progress bars");
  commands.push_back({c, [job] { sweep_job(*job, std::cout); }});
}

}  // namespace

void add_study_commands(CLI::App& app, std::vector<Command>& commands) {
  add_compare_command(app, commands);
  add_sample_command(app, commands);
  add_sweep_command(app, commands);
}

}  // namespace cuvae::app
