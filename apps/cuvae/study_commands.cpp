// The study subcommands: compare (trained runs side by side) and sweep (a grid over latent size
// and beta). Each parses flags and calls one job of jobs/analysis/compare.h.
#include <iostream>
#include <string>
#include <vector>

#include "commands.h"
#include "core/check.h"
#include "core/context.h"
#include "jobs/analysis/compare.h"
#include "jobs/sample.h"

namespace cuvae::app {

void add_study_commands(CLI::App& app, std::vector<Command>& commands) {
  static const DatasetValidator dataset_ok;
  static const DeviceValidator device_ok;

  // ---- compare -------------------------------------------------------------------
  {
    auto o = std::make_shared<CompareOptions>();
    auto device = std::make_shared<std::string>("auto");
    auto no_progress = std::make_shared<bool>(false);
    CLI::App* c = app.add_subcommand(
        "compare",
        "Evaluate trained VAE/AE run folders side by side: test recon (nats and MSE per pixel), KL, -ELBO, "
        "importance-sampled NLL, active units, 5-NN accuracy in latent space and, with --classifier, prior samples' "
        "confidence, class entropy and Frechet distances; writes compare.md, compare.json and compare.png");
    c->add_option("--runs", o->runs, "Run folders written by train-vae (same data set)")->required()->expected(1, -1);
    c->add_option("--classifier", o->classifier, "Classifier model.safetensors (train-classifier) for the sample-quality columns");
    c->add_option("--out", o->out, "Output folder")->capture_default_str();
    c->add_option("--data", o->data_dir, "Folder with the data set's files (default: data/<dataset>)");
    c->add_option("--nll", o->nll_k, "Importance samples K for the NLL")->capture_default_str();
    c->add_option("--limit", o->limit, "Evaluate on the first N test images (0 = all)")->capture_default_str();
    c->add_option("--prior", o->prior, "Prior samples classified (with --classifier)")->check(CLI::Range(2, 100000))->capture_default_str();
    c->add_option("--seed", o->seed, "Seed of the prior samples")->capture_default_str();
    c->add_option("--device", *device, "auto, cpu or cuda")->check(device_ok)->capture_default_str();
    c->add_flag("--no-progress", *no_progress, "No progress bars");
    commands.push_back({c, [o, device, no_progress] {
                          o->device = parse_device(*device);
                          o->progress = !*no_progress;
                          compare_runs(*o, std::cout);
                        }});
  }

  // ---- sample --------------------------------------------------------------------
  {
    auto o = std::make_shared<SampleOptions>();
    auto device = std::make_shared<std::string>("auto");
    auto no_progress = std::make_shared<bool>(false);
    CLI::App* c = app.add_subcommand(
        "sample",
        "Images from a VAE or CVAE into DIR/samples.png: a CVAE decodes z ~ N(0, s^2 I) with the class asked for (or "
        "every class, a row each), or a test image's style with every class; a VAE samples its prior, or with --class "
        "the class's region of its latent space (as anchor does)");
    c->add_option("--vae", o->vae, "model.safetensors written by train-vae (--model vae, ae or cvae)")->required();
    c->add_option("--class", o->klass, "Class to generate (CVAE: the label; VAE: class-anchored sampling)");
    c->add_option("--n", o->n, "Images (a CVAE without --class: per class)")->capture_default_str();
    c->add_option("--noise", o->noise, "Noise scale s (default 1 for the prior and a CVAE, 0.5 for anchored samples)");
    c->add_option("--style-index", o->style_index, "CVAE: test images whose mu is decoded with each class (one row each)")
        ->multi_option_policy(CLI::MultiOptionPolicy::TakeAll);
    c->add_option("--seed", o->seed, "Seed of the samples")->capture_default_str();
    c->add_option("--dataset", o->dataset, "Data set (default: the one the model was trained on)")->check(dataset_ok);
    c->add_option("--data", o->data_dir, "Folder with the data set's files (default: data/<dataset>)");
    c->add_option("--device", *device, "auto, cpu or cuda")->check(device_ok)->capture_default_str();
    c->add_option("--scale", o->scale, "Enlarge the PNG by this factor")->capture_default_str();
    c->add_option("--out", o->out, "Output folder")->capture_default_str();
    c->add_flag("--no-progress", *no_progress, "No progress bars");
    commands.push_back({c, [o, device, no_progress] {
                          o->device = parse_device(*device);
                          o->progress = !*no_progress;
                          sample_images(*o, std::cout);
                        }});
  }

  // ---- sweep ---------------------------------------------------------------------
  {
    auto o = std::make_shared<SweepOptions>();
    auto latents = std::make_shared<std::string>("2,8,16,32,64");
    auto betas = std::make_shared<std::string>("0.5,1,2,4,8");
    auto device = std::make_shared<std::string>("auto");
    auto no_progress = std::make_shared<bool>(false);
    CLI::App* c = app.add_subcommand(
        "sweep",
        "Train a grid of models over latent size and beta into DIR/<config>/ (finished ones are skipped, interrupted "
        "ones resume), then write sweep.csv, sweep.md and plots: recon and KL against latent size, the rate-distortion "
        "curve and a grid of prior samples");
    c->add_option("--dataset", o->dataset, "Data set: " + dataset_list())->check(dataset_ok)->capture_default_str();
    c->add_option("--data", o->data_dir, "Folder with the data set's files (default: data/<dataset>)");
    c->add_option("--latent", *latents, "Comma-separated latent sizes")->capture_default_str();
    c->add_option("--beta", *betas, "Comma-separated KL weights (ignored for --model ae)")->capture_default_str();
    c->add_option("--model", o->model, "vae or ae")->check(CLI::IsMember({"vae", "ae"}))->capture_default_str();
    c->add_option("--epochs", o->epochs, "Epochs per configuration")->check(CLI::Range(1, 100000))->capture_default_str();
    c->add_option("--batch", o->batch, "Images per training step")->check(CLI::Range(1, 65536))->capture_default_str();
    c->add_option("--lr", o->lr, "Adam learning rate")->check(CLI::PositiveNumber)->capture_default_str();
    c->add_option("--seed", o->seed, "Seed of every configuration")->capture_default_str();
    c->add_option("--train-limit", o->train_limit, "Train on the first N images (0 = all)")->check(CLI::NonNegativeNumber);
    c->add_option("--classifier", o->classifier, "Classifier model.safetensors for the sample-quality columns");
    c->add_option("--nll", o->nll_k, "Importance samples K for the NLL")->capture_default_str();
    c->add_option("--limit", o->limit, "Test images per evaluation (0 = all)")->check(CLI::NonNegativeNumber)->capture_default_str();
    c->add_option("--out", o->out, "Sweep folder")->capture_default_str();
    c->add_option("--device", *device, "auto, cpu or cuda")->check(device_ok)->capture_default_str();
    c->add_flag("--no-progress", *no_progress, "No progress bars");
    commands.push_back({c, [o, latents, betas, device, no_progress] {
                          o->latents = parse_int_list(*latents, "--latent", 1, 4096);
                          if (o->model != "ae") o->betas = parse_number_list(*betas, "--beta", 0.0, 1e6);
                          o->device = parse_device(*device);
                          o->progress = !*no_progress;
                          run_sweep(*o, std::cout);
                        }});
  }
}

}  // namespace cuvae::app
