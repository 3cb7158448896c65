// The VAE commands of the cuvae program: train-vae and eval-vae (thin callers of models/).
#include <iostream>
#include <memory>
#include <string>

#include "commands.h"
#include "core/check.h"
#include "core/context.h"
#include "jobs/vae_trainer.h"

namespace cuvae::app {

void add_vae_commands(CLI::App& app, std::vector<Command>& commands) {
  const DatasetValidator dataset_ok;
  const DeviceValidator device_ok;

  // ---- train-vae ---------------------------------------------------------------
  {
    struct Opt : VaeTrainOptions {
      std::string device_name = "auto", model_name = "vae", recon_name = "bce", graph = "on";
      bool no_progress = false;
    };
    auto o = std::make_shared<Opt>();
    CLI::App* train = app.add_subcommand(
        "train-vae",
        "Train a convolutional VAE; writes config.json, metrics.csv, model.safetensors, optim.safetensors, "
        "samples.png, reconstructions.png and traversal.png into the run folder");
    train->add_option("--dataset", o->dataset, "Data set: " + dataset_list())->check(dataset_ok)->capture_default_str();
    train->add_option("--data", o->data_dir, "Folder with the data set's files (default: data/<dataset>, see scripts/fetch-data)");
    train->add_option("--epochs", o->epochs, "Epochs to train (with --resume: total epochs)")->check(CLI::Range(1, 100000))->capture_default_str();
    train->add_option("--batch", o->batch, "Images per training step")->check(CLI::Range(1, 65536))->capture_default_str();
    train->add_option("--latent", o->latent, "Latent dimensions D")->check(CLI::Range(1, 4096))->capture_default_str();
    train->add_option("--model", o->model_name, "vae (the ConvVAE), ae (plain autoencoder: same layers without enc.logvar, no sampling, "
                                          "no KL) or cvae (conditional VAE: a one-hot class appended before enc.fc and dec.fc1)")
        ->check(CLI::IsMember({"vae", "ae", "cvae"}))->capture_default_str();
    train->add_option("--kl-warmup", o->kl_warmup, "KL warm-up: beta rises linearly from 0 over E epochs (Bowman et al. 2016; 0 = off)")
        ->check(CLI::NonNegativeNumber);
    train->add_option("--kl-cycles", o->kl_cycles, "Cyclical KL weight: C cycles over the run, rising over the first half of each "
                                                  "(Fu et al. 2019; 0 = off)")->check(CLI::NonNegativeNumber);
    train->add_option("--free-bits", o->free_bits, "Free bits: each latent dimension's batch-mean KL counts as at least LAMBDA nats "
                                                  "and is not pushed lower (Kingma et al. 2016; 0 = off)")->check(CLI::NonNegativeNumber);
    train->add_option("--recon-loss", o->recon_name, "Reconstruction loss: bce (nats per image, every model) or mse (sum of squared errors per image; --model ae only)")
        ->check(CLI::IsMember({"bce", "mse"}))->capture_default_str();
    train->add_option("--beta", o->beta, "Weight of the KL term (beta-VAE); 1 = standard VAE; ignored by --model ae")->check(CLI::Range(0.0, 1e6))->capture_default_str();
    train->add_option("--lr", o->lr, "Adam learning rate")->check(CLI::PositiveNumber)->capture_default_str();
    train->add_option("--seed", o->seed, "Seed for initialisation, shuffling and sampling")->capture_default_str();
    train->add_option("--device", o->device_name, "auto (GPU when one works, else CPU), cpu or cuda")->check(device_ok)->capture_default_str();
    train->add_option("--out", o->out, "Run folder")->capture_default_str();
    train->add_flag("--resume", o->resume, "Continue the run in --out from its last epoch (exactly, optimizer and RNG included)");
    train->add_flag("--binarize", o->binarize, "Dynamically binarize training targets (x ~ Bernoulli(pixel))");
    train->add_option("--train-limit", o->train_limit, "Use only the first N training images (0 = all)")->check(CLI::NonNegativeNumber);
    train->add_option("--test-limit", o->test_limit, "Evaluate on the first N test images (0 = all)")->check(CLI::NonNegativeNumber);
    train->add_option("--scale", o->scale, "Enlarge PNG images by this factor for viewing")->check(CLI::Range(1, 16))->capture_default_str();
    train->add_flag("--no-progress", o->no_progress, "No progress bar");
    train->add_option("--cuda-graph", o->graph, "on: on a GPU, capture one training step as a CUDA graph after a warm-up step "
                                               "and replay it for every step; off: launch every kernel every step")
        ->check(CLI::IsMember({"on", "off"}))->capture_default_str();

    commands.push_back({train, [=] {
                          o->device = parse_device(o->device_name);
                          o->cuda_graph = o->graph == "on";
                          o->progress = !o->no_progress;
                          o->model = parse_vae_kind(o->model_name);
                          o->recon_loss = parse_recon_loss(o->recon_name);
                          train_vae(*o, std::cout);
                        }});
  }

  // ---- eval-vae ----------------------------------------------------------------
  {
    struct Opt : EvalVaeJob {
      std::string device_name = "auto";
      bool no_progress = false;
    };
    auto o = std::make_shared<Opt>();
    CLI::App* eval = app.add_subcommand(
        "eval-vae",
        "Evaluate a VAE, AE or CVAE checkpoint on a test set (z = mu; a CVAE with the true labels); prints {\"recon\", \"kl\", \"loss\"} in nats per image "
        "as one JSON line (an AE: recon and loss only), with --nll K also the importance-sampled negative log-likelihood");
    eval->add_option("--checkpoint", o->checkpoint, "model.safetensors written by train-vae (--model vae, ae or cvae)")->required();
    eval->add_option("--nll", o->nll, "Also estimate -log p(x) in nats per image with K importance samples from q(z|x) "
                                     "(IWAE bound, Burda et al. 2016): adds nll and nll_stderr (VAE only)");
    eval->add_flag("--binarize", o->binarize, "Evaluate on test images binarized with a fixed seed (x ~ Bernoulli(pixel)), "
                                             "for models trained with --binarize, as the IWAE paper does");
    eval->add_flag("--no-progress", o->no_progress, "No progress bar (for --nll)");
    eval->add_option("--dataset", o->dataset, "Data set: " + dataset_list())->check(dataset_ok)->capture_default_str();
    eval->add_option("--data", o->data, "Folder with the data set's files (default: data/<dataset>)");
    eval->add_option("--device", o->device_name, "auto, cpu or cuda")->check(device_ok)->capture_default_str();
    eval->add_option("--batch", o->batch, "Images per evaluation batch")->check(CLI::Range(1, 65536))->capture_default_str();
    eval->add_option("--limit", o->limit, "Evaluate only the first N test images (0 = all)")->check(CLI::NonNegativeNumber);

    commands.push_back({eval, [=] {
                          if (eval->count("--nll") && o->nll < 1)
                            CUVAE_FAIL("--nll must be at least 1 importance sample, got " << o->nll);
                          o->device = parse_device(o->device_name);
                          o->progress = !o->no_progress;
                          std::cout << eval_vae_job(*o).dump() << std::endl;
                        }});
  }
}

}  // namespace cuvae::app
