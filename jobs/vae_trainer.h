// Training and evaluation of a ConvVAE: the `cuvae train-vae` and `cuvae eval-vae` jobs.
#pragma once

#include <cstdint>
#include <ostream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/context.h"
#include "io/dataset.h"
#include "jobs/evaluate.h"
#include "models/conv_vae.h"

namespace cuvae {

/// Everything `cuvae train-vae` takes.
struct VaeTrainOptions {
  std::string dataset = "mnist";  ///< mnist | fashion-mnist | cifar10
  std::string data_dir;           ///< empty: default_data_dir(dataset)
  std::string out = "runs/vae";   ///< run folder
  int epochs = 10;                ///< total epochs (with --resume: up to this many in all)
  int batch = 128;
  int accumulate = 1;             ///< --accumulate A: micro-batches of batch/A images whose gradients are summed
  int64_t latent = 32;
  float beta = 1.0f;              ///< KL weight (ignored by the AE)
  VaeKind model = VaeKind::Vae;   ///< --model vae|ae
  VaeArch arch = VaeArch::Conv;   ///< --arch conv|resnet
  ReconLoss recon_loss = ReconLoss::Bce;  ///< --recon-loss bce|mse (mse: AE only)
  double kl_warmup = 0;     ///< --kl-warmup E: β rises linearly from 0 over E epochs (0 = off)
  int kl_cycles = 0;        ///< --kl-cycles C: cyclical β over the whole run (0 = off)
  float free_bits = 0;      ///< --free-bits λ: per-dimension KL floor in nats (0 = off)
  float lr = 1e-3f;
  /// --schedule: the Adam learning rate over the run's steps, lr_at(schedule, lr, step, total):
  /// constant (the default), cosine (SGDR's one cycle down to 0) or onecycle.
  std::string schedule = "constant";
  uint64_t seed = 0;
  DeviceRequest device = DeviceRequest::Auto;
  bool resume = false;
  bool binarize = false;
  int64_t train_limit = 0;  ///< use only the first N training images (0 = all)
  int64_t test_limit = 0;   ///< evaluate on the first N test images (0 = all)
  int scale = 1;            ///< PNG enlargement factor (images are drawn at model resolution × scale)
  bool progress = true;     ///< progress bar on stderr
  bool images = true;       ///< write samples/reconstructions/traversal PNGs at the end
  bool cuda_graph = true;   ///< --cuda-graph on|off: on CUDA, replay one captured training step
  /// Stop after this many epochs as an interrupted run would (the run folder stays resumable);
  /// 0 = train every epoch. For tests of --resume.
  int stop_after = 0;
};

/// One row of metrics.csv. Losses in nats per image.
struct VaeEpochRecord {
  int epoch = 0;
  double train_loss = 0;   ///< mean batch loss (recon + β·KL) over the epoch's steps
  double test_recon = 0;   ///< test-set mean reconstruction term, z = μ
  double test_kl = 0;      ///< test-set mean KL term
  double test_loss = 0;    ///< test_recon + β·test_kl
  double seconds = 0;      ///< wall time of the epoch's training steps
  double images_per_s = 0; ///< training throughput
  double beta = 0;         ///< mean KL weight over the epoch's steps (the schedule's, else β)
};

/// A KL weight schedule in training steps (0-based step t over the whole run).
struct KlSchedule {
  int64_t warmup_steps = 0;  ///< linear warm-up (Bowman et al. 2016): β_t = β·min(1, t / warmup_steps)
  int64_t cycle_steps = 0;   ///< cyclical (Fu et al. 2019): period P, τ = (t mod P)/P, β_t = β·min(1, τ/ramp)
  double ramp = 0.5;         ///< R, the part of each cycle spent rising
};

/// β_t of `s` for step t (constant β when both schedules are off).
float kl_beta_at(const KlSchedule& s, float beta, int64_t step);


/// Trains a ConvVAE as `opt` says, writing into opt.out: config.json, metrics.csv (one row
/// per epoch), model.safetensors and optim.safetensors after every epoch, and at the end
/// samples.png, reconstructions.png and traversal.png. Progress and a summary go to `log`.
/// Returns the epochs run. Throws cuvae::Error on bad options or data, and when the loss
/// becomes non-finite (naming the step; the last good checkpoint is kept).
std::vector<VaeEpochRecord> train_vae(const VaeTrainOptions& opt, std::ostream& log);

/// Writes samples.png (8×8 decoded prior samples; for an AE decoded from N(0, I), plus
/// samples_fitted.png decoded from a Gaussian N(m, Σ) fitted to its codes of up to 2000 test
/// images), reconstructions.png (test images above
/// their reconstructions, 8 per row) and traversal.png (rows: the 10 latent dimensions
/// with the largest mean KL on `test`; columns: that dimension at −3…+3 with the others
/// at the first test image's μ) into `dir`. Returns the paths written.
std::vector<std::string> write_vae_images(Context& ctx, ConvVAE& model, const Dataset& test,
                                          const std::string& dir, uint64_t seed, int scale);

/// What `cuvae eval-vae` evaluates.
struct EvalVaeJob {
  std::string checkpoint;           ///< model.safetensors of a VAE, AE or CVAE
  std::string dataset;              ///< test split of this data set (empty: the checkpoint's, else mnist)
  std::string data;                 ///< its folder (empty: default_data_dir(dataset))
  DeviceRequest device = DeviceRequest::Auto;
  int64_t batch = 500;              ///< images per evaluation batch
  int64_t limit = 0;                ///< first N test images (0 = all)
  int64_t nll = 0;                  ///< importance samples of the IWAE bound (0 = none)
  bool binarize = false;            ///< evaluate on test images binarized with a fixed seed
  bool progress = true;             ///< progress bar for the NLL estimate
};

/// The `cuvae eval-vae` job: recon, KL (not for an AE) and loss in nats per image at z = μ (a
/// CVAE with the true labels) and, with nll > 0, the importance-sampled −log p(x) and its
/// standard error; returned as the JSON object the command prints (with model, n, dataset,
/// binarized and device). Throws cuvae::Error on a bad checkpoint or option (--nll of an AE or a
/// CVAE, --binarize of a model trained on grey levels).
nlohmann::json eval_vae_job(const EvalVaeJob& job);

}  // namespace cuvae
