// Semantic validation of generated images with a trained classifier: class-anchored samples,
// prior samples and reconstructions, with a classifier-feature Fréchet distance: the formula of
// the FID (Heusel et al., "GANs Trained by a Two Time-Scale Update Rule Converge to a Local Nash
// Equilibrium", NeurIPS 2017) on the ResNet18's penultimate features instead of Inception-v3's,
// so its values are comparable only between runs judged by the same classifier, not with FIDs.
#pragma once

#include <cstdint>
#include <ostream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/context.h"
#include "jobs/anchor.h"

namespace cuvae {

/// Everything `cuvae validate` takes.
struct ValidateOptions {
  std::string vae;                 ///< VAE or CVAE model.safetensors (train-vae)
  std::string compare_vae;         ///< with a CVAE in `vae`: an unconditional VAE whose anchored samples go beside
  std::string classifier;          ///< classifier model.safetensors (train-classifier)
  std::string out = "runs/validate";
  std::string data_dir;            ///< empty: the data set's default folder
  int64_t per_class = 100;         ///< anchored samples per class
  double noise = 0.5;              ///< s in z ~ N(mean_c, s²·Σ_c)
  int components = kDefaultAnchorComponents;  ///< mixture components per class of the anchored samples (1: the class Gaussian)
  int64_t prior = 1000;            ///< prior samples z ~ N(0, I)
  int64_t recon = 1000;            ///< test images reconstructed (z = μ)
  int64_t reference = 2000;        ///< test images whose features are the Fréchet reference
  uint64_t seed = 0;
  DeviceRequest device = DeviceRequest::Auto;
  bool progress = true;
  int scale = 2;                   ///< PNG enlargement
};

class ConvVAE;
class ResNet18;
struct Dataset;

/// Classifier outputs for a set of images (host): probabilities [n, K] and penultimate
/// features [n, F].
struct ClassifierOutputs {
  std::vector<float> probs, features;
  int64_t n = 0;
};

/// Classifies images [n, C, H, W] (a tensor on the context's device) in batches of 500.
ClassifierOutputs run_classifier(Context& ctx, ResNet18& clf, Tensor& images);

/// What a classifier says of a generative model's prior samples and reconstructions.
struct SampleQuality {
  int64_t prior_n = 0;                  ///< prior samples z ~ N(0, I)
  std::vector<int64_t> prior_histogram; ///< [K] predicted class counts of the prior samples
  double prior_top1_confidence = 0;     ///< mean max-probability over prior samples
  double prior_class_entropy = 0;       ///< entropy of the predicted-class histogram, nats (log K = uniform)
  double prior_frechet = 0;             ///< classifier-feature Fréchet distance, prior samples vs reference
  int64_t recon_n = 0;                  ///< test images reconstructed at z = μ
  double recon_accuracy = 0;            ///< classifier accuracy on the reconstructions
  double originals_accuracy = 0;        ///< the same on the originals
  std::vector<int64_t> recon_class_n;   ///< [K] reconstructed test images of each true class
  std::vector<double> recon_class_accuracy;      ///< [K] accuracy on the reconstructions of each class
  std::vector<double> originals_class_accuracy;  ///< [K] accuracy on the originals of each class
  double recon_frechet = 0;             ///< Fréchet distance, reconstructions vs reference
  int64_t reference_n = 0;              ///< test images whose features are the reference
};

/// Decodes `prior` samples z ~ N(0, I) (Philox seed, stream 0x9a10c000) and reconstructs the
/// first `recon` images of `test`, classifies both, and compares their features with those of
/// the first `reference` test images (`ref`, when given, is used instead of classifying them
/// again). Works for a VAE or an AE (whose "prior" is then simply N(0, I)). Throws
/// cuvae::Error when the image shapes of the models and the data differ.
SampleQuality sample_quality(Context& ctx, ConvVAE& vae, ResNet18& clf, const Dataset& test, int64_t prior,
                             int64_t recon, int64_t reference, uint64_t seed, const ClassifierOutputs* ref = nullptr);

/// Mean [F] and covariance [F, F] (maximum likelihood, 1/n) of n feature rows [n, F], in double.
void feature_moments(const std::vector<float>& features, int64_t n, int64_t F, std::vector<double>& mean,
                     std::vector<double>& cov);

/// Fréchet distance between N(m1, C1) and N(m2, C2):
///   ‖m1 − m2‖² + Tr(C1 + C2 − 2·(C1·C2)^½),
/// with Tr((C1·C2)^½) = Σ √λ_i(C1^½·C2·C1^½) from Eigen's symmetric eigensolver (negative
/// round-off eigenvalues clipped to 0). Throws cuvae::Error on mismatched sizes.
double frechet_distance(const std::vector<double>& m1, const std::vector<double>& c1, const std::vector<double>& m2,
                        const std::vector<double>& c2);

/// Runs the validation as `opt` says and writes validation.json, validation.md (the same as
/// readable tables) and anchored.png (one row of samples per class) into opt.out. For a CVAE the
/// per-class samples are conditioned on the class (z ~ N(0, s²I), s = opt.noise as for anchored
/// samples), and opt.compare_vae adds the
/// anchored samples of an unconditional VAE beside them ("compare_anchored"). Returns the
/// JSON. Throws cuvae::Error naming the file when a checkpoint is missing, damaged or of the
/// wrong kind, when the two models' image shapes or class counts differ, or on bad options.
nlohmann::json validate_generation(const ValidateOptions& opt, std::ostream& log);

}  // namespace cuvae
