// The `cuvae embed` job: encode a split, map μ to 2-D (PCA or t-SNE), measure how well the map
// keeps neighbourhoods. Returns data; write_embedding (jobs/analysis/latent_io.h) writes files.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "core/context.h"
#include "io/dataset.h"
#include "jobs/analysis/latent.h"
#include "models/conv_vae.h"
#include "numerics/embed.h"

namespace cuvae {

/// What `cuvae embed` does.
struct EmbedOptions {
  std::string method = "tsne";  ///< "pca" or "tsne"
  int64_t n = 10000;            ///< the first n images of the split (must not exceed it)
  TsneOptions tsne;             ///< perplexity, iters, seed, exact/approximate choice
  int k = 5;                    ///< neighbours for trustworthiness and kNN accuracy
  bool progress = false;        ///< progress bars on stderr
};

/// A 2-D map of latent codes and its quality numbers.
struct EmbedResult {
  LatentCodes codes;                ///< μ [n, D], labels and indices of the mapped images
  std::vector<float> y;             ///< [n, 2] map coordinates
  std::string method;               ///< "pca" or "tsne"
  std::string algorithm;            ///< "pca", "exact-cpu", "exact-cuda" or "barnes-hut"
  double seconds = 0;               ///< wall time of the map itself (PCA or t-SNE fit)
  double seconds_encode = 0;        ///< wall time of encoding the images
  double seconds_metrics = 0;       ///< wall time of the three quality numbers
  double trustworthiness = 0;       ///< scikit-learn's trustworthiness(μ, map, k), in [0, 1]
  double knn_accuracy = 0;          ///< leave-one-out k-NN accuracy in the map
  double knn_accuracy_latent = 0;   ///< leave-one-out k-NN accuracy in μ space
  std::vector<double> explained_variance_ratio;  ///< PCA only: [λ1/Σλ, λ2/Σλ]
  double kl = 0;                    ///< t-SNE only: KL(P‖Q) at the end (NaN when not computed)
};

/// "pca" or "tsne"; throws cuvae::Error naming --method otherwise.
std::string parse_embed_method(const std::string& s);

/// Encodes the first opt.n images of `data` (z = μ), maps them with PCA (van der Maaten's
/// baseline; Eigen) or t-SNE (van der Maaten & Hinton 2008; see tsne_2d) and measures the map.
/// Throws cuvae::Error naming --n (larger than the split, or < 4) and --method, and the errors of
/// tsne_2d (naming --perplexity, --iters).
EmbedResult embed_latents(Context& ctx, ConvVAE& vae, const Dataset& data, const EmbedOptions& opt);

}  // namespace cuvae
