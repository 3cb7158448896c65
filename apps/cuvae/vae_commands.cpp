// The VAE commands of the cuvae program: train-vae and eval-vae (jobs/vae_trainer.h).
#include <iostream>
#include <memory>
#include <string>

#include "commands.h"
#include "core/distributed.h"
#include "core/check.h"
#include "flags.h"
#include "jobs/vae_trainer.h"

namespace cuvae::app {

namespace {

void add_train_vae_command(CLI::App& app, std::vector<Command>& commands) {
  auto job = std::make_shared<VaeTrainOptions>();
  VaeTrainOptions& o = *job;
  CLI::App* c = app.add_subcommand(
      "train-vae",
      "Train a convolutional VAE; writes config.json, metrics.csv, model.safetensors, optim.safetensors, "
      "samples.png, reconstructions.png and traversal.png into the run folder. Under mpirun -np N it trains "
      "data-parallel on the CPU: --batch is the global batch, rank 0 writes");
  add_dataset_flag(c, o.dataset);
  add_data_flag(c, o.data_dir, "Folder with the data set's files (default: data/<dataset>, see scripts/fetch-data)");
  c->add_option("--epochs", o.epochs, "Epochs to train (with --resume: total epochs)")
      ->check(CLI::Range(1, 100000))
      ->capture_default_str();
  c->add_option("--batch", o.batch, "Images per training step")->check(CLI::Range(1, 65536))->capture_default_str();
  add_accumulate_flag(c, o.accumulate);
  c->add_option("--latent", o.latent, "Latent dimensions D")->check(CLI::Range(1, 4096))->capture_default_str();
  add_choice_option<VaeKind>(c, "--model", o.model, {"vae", "ae", "cvae"}, parse_vae_kind, "vae",
                             "vae (the ConvVAE), ae (plain autoencoder: same layers without enc.logvar, no sampling, "
                             "no KL) or cvae (conditional VAE: a one-hot class appended before enc.fc and dec.fc1)");
  add_choice_option<VaeArch>(c, "--arch", o.arch, {"conv", "resnet"}, parse_vae_arch, "conv",
                             "conv (the pinned network: two convolutions, two transposed convolutions) or resnet (a "
                             "residual encoder and decoder: one block at each of 28x28, 14x14, 7x7 with 32/64/128 "
                             "channels; 4.2 M parameters); for --model vae, ae and cvae");
  c->add_option("--kl-warmup", o.kl_warmup,
                "KL warm-up: beta rises linearly from 0 over E epochs (Bowman et al. 2016; 0 = off)")
      ->check(CLI::NonNegativeNumber);
  c->add_option("--kl-cycles", o.kl_cycles,
                "Cyclical KL weight: C cycles over the run, rising over the first half of each (Fu et al. 2019; 0 = off)")
      ->check(CLI::NonNegativeNumber);
  c->add_option("--free-bits", o.free_bits,
                "Free bits: each latent dimension's batch-mean KL counts as at least LAMBDA nats and is not pushed "
                "lower (Kingma et al. 2016; 0 = off)")
      ->check(CLI::NonNegativeNumber);
  add_choice_option<ReconLoss>(c, "--recon-loss", o.recon_loss, {"bce", "mse"}, parse_recon_loss, "bce",
                               "Reconstruction loss: bce (nats per image, every model) or mse (sum of squared errors "
                               "per image; --model ae only)");
  c->add_option("--beta", o.beta, "Weight of the KL term (beta-VAE); 1 = standard VAE; ignored by --model ae")
      ->check(CLI::Range(0.0, 1e6))
      ->capture_default_str();
  c->add_option("--lr", o.lr, "Adam learning rate")->check(CLI::PositiveNumber)->capture_default_str();
  c->add_option("--schedule", o.schedule,
                "Adam learning rate over the run: constant, cosine (lr·½(1 + cos(π·step/steps)), SGDR's one cycle, "
                "down to 0 at the last step) or onecycle (OneCycleLR, as train-classifier); --resume keeps the run's own")
      ->check(CLI::IsMember({"constant", "cosine", "onecycle"}))
      ->capture_default_str();
  add_seed_flag(c, o.seed, "Seed for initialisation, shuffling and sampling");
  add_device_flag(c, o.device, kDeviceHelpAuto);
  add_out_flag(c, o.out, "Run folder");
  c->add_flag("--resume", o.resume, "Continue the run in --out from its last epoch (exactly, optimizer and RNG included)");
  c->add_flag("--binarize", o.binarize, "Dynamically binarize training targets (x ~ Bernoulli(pixel))");
  add_train_test_limit_flags(c, o.train_limit, o.test_limit);
  add_scale_flag(c, o.scale, "Enlarge PNG images by this factor for viewing")->check(CLI::Range(1, 16));
  add_no_progress_flag(c, o.progress);
  add_cuda_graph_flag(c, o.cuda_graph);
  commands.push_back({c, [job] { train_vae(*job, std::cout); }});
}

void add_eval_vae_command(CLI::App& app, std::vector<Command>& commands) {
  auto job = std::make_shared<EvalVaeJob>();
  EvalVaeJob& o = *job;
  CLI::App* c = app.add_subcommand(
      "eval-vae",
      "Evaluate a VAE, AE or CVAE checkpoint on a test set (z = mu; a CVAE with the true labels); prints {\"recon\", "
      "\"kl\", \"loss\"} in nats per image as one JSON line (an AE: recon and loss only), with --nll K also the "
      "importance-sampled negative log-likelihood. Under mpirun -np N each rank evaluates 1/N of the images and rank 0 "
      "prints the reduced numbers");
  c->add_option("--checkpoint", o.checkpoint, "model.safetensors written by train-vae (--model vae, ae or cvae)")
      ->required();
  CLI::Option* nll = c->add_option("--nll", o.nll,
                                   "Also estimate -log p(x) in nats per image with K importance samples from q(z|x) "
                                   "(IWAE bound, Burda et al. 2016): adds nll and nll_stderr (VAE only)");
  c->add_flag("--binarize", o.binarize,
              "Evaluate on test images binarized with a fixed seed (x ~ Bernoulli(pixel)), for models trained with "
              "--binarize, as the IWAE paper does");
  add_no_progress_flag(c, o.progress, "No progress bar (for --nll)");
  add_dataset_flag(c, o.dataset, "Data set: " + dataset_list() + " (default: the one the VAE was trained on)");
  add_data_flag(c, o.data);
  add_device_flag(c, o.device);
  c->add_option("--batch", o.batch, "Images per evaluation batch")->check(CLI::Range(1, 65536))->capture_default_str();
  c->add_option("--limit", o.limit, "Evaluate only the first N test images (0 = all)")->check(CLI::NonNegativeNumber);
  commands.push_back({c, [job, nll] {
                        // The job reads nll = 0 as "no estimate"; only the command line tells a 0 given apart.
                        if (nll->count() > 0 && job->nll < 1)
                          CUVAE_FAIL("--nll must be at least 1 importance sample, got " << job->nll);
                        const nlohmann::json j = eval_vae_job(*job);
                        if (Communicator::world().writes()) std::cout << j.dump() << std::endl;  // once under mpirun
                      }});
}

}  // namespace

void add_vae_commands(CLI::App& app, std::vector<Command>& commands) {
  add_train_vae_command(app, commands);
  add_eval_vae_command(app, commands);
}

}  // namespace cuvae::app
