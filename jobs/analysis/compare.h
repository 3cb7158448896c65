// Side-by-side evaluation of trained VAE/AE run folders (`cuvae compare`) and grids of them
// over latent size and β (`cuvae sweep`): the numbers people compare generative models by,
// as JSON, Markdown tables and pictures.
#pragma once

#include <cstdint>
#include <ostream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/context.h"

namespace cuvae {

/// Everything `cuvae compare` takes.
struct CompareOptions {
  std::vector<std::string> runs;  ///< run folders written by train-vae (each with metrics.csv, model.safetensors)
  std::string classifier;         ///< optional classifier model.safetensors (train-classifier)
  std::string out = "runs/compare";
  std::string data_dir;           ///< empty: the data set's default folder
  int64_t nll_k = 100;            ///< importance samples for the NLL (≥ 1)
  int64_t limit = 0;              ///< test images for recon, KL, NLL, active units, kNN (0 = all)
  int64_t prior = 1000;           ///< prior samples classified
  int64_t recon = 1000;           ///< reconstructions classified
  int64_t reference = 2000;       ///< test images of the Fréchet reference
  uint64_t seed = 0;
  DeviceRequest device = DeviceRequest::Auto;
  bool progress = true;
  bool picture = true;            ///< write compare.png
};

/// The compare numbers of one run folder.
struct RunSummary {
  std::string run, name;     ///< the folder, and its last path component
  std::string model;         ///< "vae" or "ae"
  std::string dataset;
  int64_t latent = 0;
  double beta = 0;
  int epochs = 0;            ///< rows of metrics.csv
  double seconds = 0;        ///< training seconds, summed over metrics.csv
  int64_t n = 0;             ///< test images evaluated
  double recon = 0;          ///< test BCE at z = μ, nats per image
  double mse = 0;            ///< test squared error per pixel of sigmoid(decoder(μ)) in [0, 1]
  double kl = 0;             ///< test KL(q(z|x) ‖ N(0, I)), nats per image (0 for an AE)
  double neg_elbo = 0;       ///< −ELBO = recon + KL, nats per image (an AE: recon)
  double nll = 0, nll_stderr = 0;  ///< importance-sampled −log p(x) (NaN for an AE)
  int64_t nll_k = 0;
  int64_t active_units = 0;  ///< dimensions with Cov_x(E_q[z_d]) > 0.01 (Burda et al. 2016)
  double knn_accuracy = 0;   ///< 5-NN accuracy of the labels in μ space (leave-one-out)
  bool has_classifier = false;
  double prior_confidence = 0, prior_entropy = 0, prior_frechet = 0, recon_frechet = 0;
  std::vector<float> recon_images, prior_images;  ///< [8, C, H, W] each, for pictures
  std::vector<float> map_x, map_y;                ///< PCA of μ for the first ≤ 2000 test images
  std::vector<int64_t> map_label;
  int c = 1, h = 28, w = 28;
  /// The row as JSON (NaN as null).
  nlohmann::json to_json() const;
};

/// Reads `dir`/config.json's "dataset" (the data set a run was trained on). Throws cuvae::Error
/// naming the folder when it is not a train-vae run folder (no metrics.csv, no model.safetensors).
std::string run_dataset(const std::string& dir);

/// Evaluates every run of opt.runs (which must share one data set; mixed data sets are an error
/// naming both runs) on the test split and, when opt.classifier is set, classifies prior samples
/// and reconstructions. Writes opt.out/compare.json, compare.md and compare.png (per run:
/// reconstructions, prior samples and a PCA map of μ coloured by class; skipped with a note
/// when plots are unavailable). All options and folders are checked before any evaluation and
/// nothing is written on an error. Returns the summaries in the order given.
std::vector<RunSummary> compare_runs(const CompareOptions& opt, std::ostream& log);

/// compare.md's table for `rows` (Markdown, one row per run).
std::string compare_table(const std::vector<RunSummary>& rows);

/// Writes a picture of `rows` to `path`: one band per run with its name, 8 reconstructions,
/// 8 prior samples and (with PLplot) the PCA map. Throws cuvae::Error naming `path` on failure.
void write_compare_png(const std::string& path, const std::vector<RunSummary>& rows, const std::string& dataset);

/// Everything `cuvae sweep` takes.
struct SweepOptions {
  std::string dataset = "mnist";
  std::string data_dir;
  std::vector<int64_t> latents;  ///< --latent 2,8,16,32,64
  std::vector<double> betas;     ///< --beta 0.5,1,2,4,8 (ignored with --model ae)
  std::string model = "vae";     ///< vae | ae
  int epochs = 3;
  int batch = 128;
  float lr = 1e-3f;
  uint64_t seed = 0;
  int64_t train_limit = 0;
  std::string classifier;
  std::string out = "runs/sweep";
  int64_t nll_k = 100;
  int64_t limit = 2000;          ///< test images per evaluation (0 = all)
  DeviceRequest device = DeviceRequest::Auto;
  bool progress = true;
};

/// Parses "2,8,16" into integers in [lo, hi]; throws cuvae::Error naming the option `option_name` (a field name, option()) for an empty
/// list, a non-number or a value out of range.
std::vector<int64_t> parse_int_list(const std::string& s, const char* option_name, int64_t lo, int64_t hi);
/// Parses "0.5,1,4" into finite numbers in [lo, hi]; throws cuvae::Error naming the option `option_name` (a field name, option()) likewise.
std::vector<double> parse_number_list(const std::string& s, const char* option_name, double lo, double hi);

/// Folder name of one configuration: "vae-z8-b0.5" or "ae-z8".
std::string sweep_config_name(const std::string& model, int64_t latent, double beta);

/// Trains every (latent, β) configuration into opt.out/<sweep_config_name>/ (a configuration
/// whose metrics.csv already has opt.epochs rows is skipped; one with a checkpoint resumes),
/// evaluates them as compare does, and writes opt.out/sweep.csv, sweep.md, sweep.json,
/// sweep_recon_kl.png (recon and KL against latent size, one line per β), sweep_rate_distortion.png
/// (KL against recon across β, one line per latent size) and sweep_samples.png (a row of prior
/// samples per configuration). Returns the summaries in configuration order.
std::vector<RunSummary> run_sweep(const SweepOptions& opt, std::ostream& log);

}  // namespace cuvae
