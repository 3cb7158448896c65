// cuvae: one command-line program, one subcommand per job.
#include <CLI/CLI.hpp>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#if defined(__GLIBC__)
#include <gnu/libc-version.h>
#include <unistd.h>
#endif
#include <new>
#include <iostream>
#include <nlohmann/json.hpp>
#include <string>

#include "host/check.h"
#include "host/context.h"
#include "host/dataset.h"
#include "models/checkpoint.h"
#include "models/vae_trainer.h"
#include "models/analysis/likelihood.h"
#include "commands.h"

namespace cuvae::app {

std::string dataset_list() {
  std::string s;
  for (const std::string& n : cuvae::dataset_names()) s += (s.empty() ? "" : "|") + n;
  return s;
}

DatasetValidator::DatasetValidator() {
  name_ = "DATASET";
  func_ = [](const std::string& s) -> std::string {
    for (const std::string& n : cuvae::dataset_names())
      if (s == n) return {};
    return "expected one of " + dataset_list() + ", got '" + s + "'";
  };
}

DeviceValidator::DeviceValidator() {
  name_ = "DEVICE";
  func_ = [](const std::string& s) -> std::string {
    if (s == "auto" || s == "cpu" || s == "cuda") return {};
    return "expected auto, cpu or cuda, got '" + s + "'";
  };
}

}  // namespace cuvae::app

using cuvae::app::dataset_list;
using cuvae::app::DatasetValidator;
using cuvae::app::DeviceValidator;

namespace {
// Transparent huge pages for every heap allocation. A training process touches hundreds of MiB of
// fresh memory (activations, oneDNN's reordered copies, checkpoints being written), and on the
// virtual machines measured each 4 KiB page fault was so slow that zeroing 512 MiB took 2.0 s
// (0.7 s with 2 MiB pages); the first ResNet-18 training step and the checkpoint writes took
// 3.3 s longer without huge pages. glibc (2.35 and later) madvises its heap for huge pages when
// started with GLIBC_TUNABLES=glibc.malloc.hugetlb=1, a setting read only at start-up, so the
// program restarts itself once with it (same PID, same arguments). Only when the kernel gives huge
// pages on request ("madvise" mode); CUVAE_HUGEPAGES=0 turns this off.
void restart_with_huge_pages(char** argv) {
#if defined(__GLIBC__) && defined(__linux__)
  const char* off = std::getenv("CUVAE_HUGEPAGES");
  if (off != nullptr && std::strcmp(off, "0") == 0) return;
  const char* tun = std::getenv("GLIBC_TUNABLES");
  if (tun != nullptr && std::strstr(tun, "glibc.malloc.hugetlb") != nullptr) return;  // already set (or restarted)
  int major = 0, minor = 0;
  if (std::sscanf(gnu_get_libc_version(), "%d.%d", &major, &minor) != 2 || major < 2 || (major == 2 && minor < 35))
    return;
  std::ifstream thp("/sys/kernel/mm/transparent_hugepage/enabled");
  std::string mode;
  std::getline(thp, mode);
  if (mode.find("[madvise]") == std::string::npos) return;  // "always" needs nothing, "never" allows nothing
  const std::string value = (tun != nullptr && *tun != '\0' ? std::string(tun) + ":" : "") + "glibc.malloc.hugetlb=1";
  if (setenv("GLIBC_TUNABLES", value.c_str(), 1) != 0) return;
  execv("/proc/self/exe", argv);  // returns only on failure: go on without huge pages
#else
  (void)argv;
#endif
}
}  // namespace

int main(int argc, char** argv) {
  restart_with_huge_pages(argv);
  // A file-size limit (ulimit -f) must fail the write that reaches it with EFBIG, which
  // write_file_atomic reports and cleans up after, instead of killing the process mid-file.
  std::signal(SIGXFSZ, SIG_IGN);
  CLI::App app{"cuvae: convolutional VAEs and a ResNet-18 classifier on MNIST, FashionMNIST and CIFAR-10, on a GPU or the CPU"};
  app.require_subcommand(1);
  // A later repetition of a flag overrides an earlier one (scripts/demo relies on this).
  app.option_defaults()->multi_option_policy(CLI::MultiOptionPolicy::TakeLast);
  app.set_version_flag("--version", "cuvae 0.1.0");
  const DatasetValidator dataset_ok;
  const DeviceValidator device_ok;

  // ---- train-vae ---------------------------------------------------------------
  cuvae::VaeTrainOptions t;
  std::string t_device = "auto";
  bool t_no_progress = false;
  CLI::App* train = app.add_subcommand(
      "train-vae",
      "Train a convolutional VAE; writes config.json, metrics.csv, model.safetensors, optim.safetensors, "
      "samples.png, reconstructions.png and traversal.png into the run folder");
  train->add_option("--dataset", t.dataset, "Data set: " + dataset_list())->check(dataset_ok)->capture_default_str();
  train->add_option("--data", t.data_dir, "Folder with the data set's files (default: data/<dataset>, see scripts/fetch-data)");
  train->add_option("--epochs", t.epochs, "Epochs to train (with --resume: total epochs)")->check(CLI::Range(1, 100000))->capture_default_str();
  train->add_option("--batch", t.batch, "Images per training step")->check(CLI::Range(1, 65536))->capture_default_str();
  train->add_option("--latent", t.latent, "Latent dimensions D")->check(CLI::Range(1, 4096))->capture_default_str();
  std::string t_model = "vae", t_recon = "bce";
  train->add_option("--model", t_model, "vae (the ConvVAE), ae (plain autoencoder: same layers without enc.logvar, no sampling, "
                                        "no KL) or cvae (conditional VAE: a one-hot class appended before enc.fc and dec.fc1)")
      ->check(CLI::IsMember({"vae", "ae", "cvae"}))->capture_default_str();
  train->add_option("--kl-warmup", t.kl_warmup, "KL warm-up: beta rises linearly from 0 over E epochs (Bowman et al. 2016; 0 = off)")
      ->check(CLI::NonNegativeNumber);
  train->add_option("--kl-cycles", t.kl_cycles, "Cyclical KL weight: C cycles over the run, rising over the first half of each "
                                                "(Fu et al. 2019; 0 = off)")->check(CLI::NonNegativeNumber);
  train->add_option("--free-bits", t.free_bits, "Free bits: each latent dimension's batch-mean KL counts as at least LAMBDA nats "
                                                "and is not pushed lower (Kingma et al. 2016; 0 = off)")->check(CLI::NonNegativeNumber);
  train->add_option("--recon-loss", t_recon, "Reconstruction loss: bce (nats per image, every model) or mse (sum of squared errors per image; --model ae only)")
      ->check(CLI::IsMember({"bce", "mse"}))->capture_default_str();
  train->add_option("--beta", t.beta, "Weight of the KL term (beta-VAE); 1 = standard VAE; ignored by --model ae")->check(CLI::Range(0.0, 1e6))->capture_default_str();
  train->add_option("--lr", t.lr, "Adam learning rate")->check(CLI::PositiveNumber)->capture_default_str();
  train->add_option("--seed", t.seed, "Seed for initialisation, shuffling and sampling")->capture_default_str();
  train->add_option("--device", t_device, "auto (GPU when one works, else CPU), cpu or cuda")->check(device_ok)->capture_default_str();
  train->add_option("--out", t.out, "Run folder")->capture_default_str();
  train->add_flag("--resume", t.resume, "Continue the run in --out from its last epoch (exactly, optimizer and RNG included)");
  train->add_flag("--binarize", t.binarize, "Dynamically binarize training targets (x ~ Bernoulli(pixel))");
  train->add_option("--train-limit", t.train_limit, "Use only the first N training images (0 = all)")->check(CLI::NonNegativeNumber);
  train->add_option("--test-limit", t.test_limit, "Evaluate on the first N test images (0 = all)")->check(CLI::NonNegativeNumber);
  train->add_option("--scale", t.scale, "Enlarge PNG images by this factor for viewing")->check(CLI::Range(1, 16))->capture_default_str();
  train->add_flag("--no-progress", t_no_progress, "No progress bar");
  std::string t_graph = "on";
  train->add_option("--cuda-graph", t_graph, "on: on a GPU, capture one training step as a CUDA graph after a warm-up step "
                                             "and replay it for every step; off: launch every kernel every step")
      ->check(CLI::IsMember({"on", "off"}))->capture_default_str();

  // ---- eval-vae ----------------------------------------------------------------
  std::string e_ckpt, e_dataset = "mnist", e_data, e_device = "auto";
  int64_t e_batch = 500, e_limit = 0, e_nll = 0;
  bool e_binarize = false, e_no_progress = false;
  CLI::App* eval = app.add_subcommand(
      "eval-vae",
      "Evaluate a VAE, AE or CVAE checkpoint on a test set (z = mu; a CVAE with the true labels); prints {\"recon\", \"kl\", \"loss\"} in nats per image "
      "as one JSON line (an AE: recon and loss only), with --nll K also the importance-sampled negative log-likelihood");
  eval->add_option("--checkpoint", e_ckpt, "model.safetensors written by train-vae (--model vae, ae or cvae)")->required();
  eval->add_option("--nll", e_nll, "Also estimate -log p(x) in nats per image with K importance samples from q(z|x) "
                                   "(IWAE bound, Burda et al. 2016): adds nll and nll_stderr (VAE only)");
  eval->add_flag("--binarize", e_binarize, "Evaluate on test images binarized with a fixed seed (x ~ Bernoulli(pixel)), "
                                           "for models trained with --binarize, as the IWAE paper does");
  eval->add_flag("--no-progress", e_no_progress, "No progress bar (for --nll)");
  eval->add_option("--dataset", e_dataset, "Data set: " + dataset_list())->check(dataset_ok)->capture_default_str();
  eval->add_option("--data", e_data, "Folder with the data set's files (default: data/<dataset>)");
  eval->add_option("--device", e_device, "auto, cpu or cuda")->check(device_ok)->capture_default_str();
  eval->add_option("--batch", e_batch, "Images per evaluation batch")->check(CLI::Range(1, 65536))->capture_default_str();
  eval->add_option("--limit", e_limit, "Evaluate only the first N test images (0 = all)")->check(CLI::NonNegativeNumber);

  std::vector<cuvae::app::Command> commands;
  cuvae::app::add_classifier_commands(app, commands);
  cuvae::app::add_latent_commands(app, commands);
  cuvae::app::add_study_commands(app, commands);
  cuvae::app::add_serve_command(app, commands);

  // --cpu-backend and --nondeterministic on every command that runs a model (each has --device).
  std::string cpu_backend = cuvae::cpu_backend_name(cuvae::default_cpu_backend());
  bool nondeterministic = false;
  for (CLI::App* sub : app.get_subcommands([](CLI::App*) { return true; }))
    if (sub->get_option_no_throw("--device") != nullptr) {
      sub->add_flag("--nondeterministic", nondeterministic,
                    "GPU: let cuDNN use its fastest convolution algorithms even when their results vary from run "
                    "to run (default: deterministic ones only, so the same seed gives the same weights)");
      sub->add_option("--cpu-backend", cpu_backend,
                      "CPU convolutions and batch norm: onednn (oneDNN, as PyTorch's CPU path) or reference "
                      "(cuvae's own im2col + Eigen, what the tests check everything against)" +
                          std::string(cuvae::onednn_built() ? "" : "; this build has no oneDNN"))
          ->check(CLI::IsMember({"onednn", "reference"}))
          ->capture_default_str();
    }

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }

  try {
    cuvae::set_default_cpu_backend(cuvae::parse_cpu_backend(cpu_backend));
    cuvae::set_default_deterministic(!nondeterministic);
    if (train->parsed()) {
      t.device = cuvae::parse_device(t_device);
      t.cuda_graph = t_graph == "on";
      t.progress = !t_no_progress;
      t.model = cuvae::parse_vae_kind(t_model);
      t.recon_loss = cuvae::parse_recon_loss(t_recon);
      cuvae::train_vae(t, std::cout);
    } else if (eval->parsed()) {
      if (eval->count("--nll") && e_nll < 1)
        throw cuvae::Error("--nll must be at least 1 importance sample, got " + std::to_string(e_nll));
      cuvae::Context ctx(cuvae::parse_device(e_device));
      auto model = cuvae::load_vae(e_ckpt, ctx.device(), true);
      if (e_nll > 0 && model->config().is_cvae())
        throw cuvae::Error("--nll supports unconditional VAEs; " + e_ckpt + " is a CVAE");
      if (e_nll > 0 && model->config().is_ae())
        throw cuvae::Error("--nll needs a VAE checkpoint: " + e_ckpt + " is a plain autoencoder (no q(z|x) to sample from)");
      if (e_binarize && !model->config().binarize)
        throw cuvae::Error("--binarize evaluates models trained with --binarize; " + e_ckpt + " was trained on grey levels");
      const std::string dir = e_data.empty() ? cuvae::default_data_dir(e_dataset) : e_data;
      cuvae::Dataset test = cuvae::load_dataset(e_dataset, dir, false);
      if (e_binarize) test = cuvae::binarized_copy(test);
      cuvae::VaeEval r = cuvae::evaluate_vae(ctx, *model, test, e_batch, e_limit);
      nlohmann::json j;
      j["model"] = model->config().is_ae() ? "ae" : model->config().is_cvae() ? "cvae" : "vae";
      j["recon"] = r.recon;
      if (!model->config().is_ae()) j["kl"] = r.kl;
      j["loss"] = r.loss;
      if (e_nll > 0) {
        cuvae::NllOptions no;
        no.k = e_nll;
        no.limit = e_limit;
        no.progress = !e_no_progress;
        const cuvae::NllResult nr = cuvae::estimate_nll(ctx, *model, test, no);
        j["nll"] = nr.nll;
        j["nll_stderr"] = nr.nll_stderr;
        j["nll_k"] = nr.k;
        j["nll_seconds"] = nr.seconds;
      }
      j["n"] = r.n;
      j["dataset"] = e_dataset;
      j["binarized"] = e_binarize;
      j["device"] = ctx.description();
      std::cout << j.dump() << std::endl;
    }
    for (auto& c : commands)
      if (c.cli->parsed()) c.run();
  } catch (const cuvae::Error& e) {
    std::fflush(stdout);
    std::cerr << "cuvae: error: " << e.what() << std::endl;
    return 1;
  } catch (const std::bad_alloc&) {
    std::fflush(stdout);
    std::cerr << "cuvae: error: out of host memory (try a smaller --batch or --n)" << std::endl;
    return 1;
  } catch (const std::exception& e) {
    std::fflush(stdout);
    std::cerr << "cuvae: error: " << e.what() << std::endl;
    return 1;
  }
  return 0;
}
