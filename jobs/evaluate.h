// Test-set evaluation of the two models (nats per image, accuracy, confusion matrices), shared by
// the trainers, `cuvae eval-vae`, `cuvae eval-classifier`, validation and the studies.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "core/context.h"
#include "core/distributed.h"
#include "io/dataset.h"
#include "models/conv_vae.h"
#include "models/resnet18.h"

namespace cuvae {

/// Throws cuvae::Error, naming `what`, when the images of `d` are not the shape the VAE takes or
/// (for a CVAE) its class count differs from the model's.
void check_data_matches(const Dataset& d, const VaeConfig& c, const std::string& what);
/// Throws cuvae::Error, naming `what`, when the images of `d` are not the shape the classifier
/// takes or its class count differs from the model's.
void check_data_matches(const Dataset& d, const ResNetConfig& c, const std::string& what);

/// Test-set means, in nats per image, with z = μ (no sampling); loss = recon + β·KL (a CVAE:
/// recon + KL, with the true labels).
struct VaeEval {
  double recon = 0, kl = 0, loss = 0;
  int64_t n = 0;
};

/// Evaluates `model` on the first `limit` images of `data` (0 = all) in batches of `batch`.
/// With `comm` over several ranks each rank evaluates its 1/N of those images and the sums are
/// reduced, so every rank returns the whole set's numbers (the ranks must hold one model).
/// Throws cuvae::Error if the data's image shape differs from the model's.
VaeEval evaluate_vae(Context& ctx, ConvVAE& model, const Dataset& data, int64_t batch = 500,
                     int64_t limit = 0, const Communicator* comm = nullptr);

/// Test-set results of a classifier.
struct ClassifierEval {
  int64_t n = 0;
  double loss = 0;        ///< mean cross-entropy, nats per image
  double accuracy = 0;    ///< fraction right
  std::vector<int64_t> confusion;  ///< [K, K] counts, row = true class, column = predicted
  std::vector<double> per_class;   ///< [K] accuracy of each true class (NaN when it has no images)
};


/// Evaluates `model` on the first `limit` images of `data` (0 = all), batches of `batch`; with
/// `comm` over several ranks sharded and reduced as evaluate_vae.
/// Throws cuvae::Error when the data's image shape or class count differs from the model's.
ClassifierEval evaluate_classifier(Context& ctx, ResNet18& model, const Dataset& data,
                                   int64_t batch = 500, int64_t limit = 0, const Communicator* comm = nullptr);


}  // namespace cuvae
