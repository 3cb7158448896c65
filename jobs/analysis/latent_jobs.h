// The latent-space commands as jobs: `cuvae interpolate`, `arithmetic`, `traverse` and `embed`.
// Each loads a VAE and its data set, runs the matching job of latent.h or embed_job.h and writes
// its files through latent_io.h. The cheap checks of each job's options run before anything long
// (encoding a split, the class statistics), so a bad option costs no time and writes nothing.
#pragma once

#include <cstdint>
#include <ostream>
#include <string>
#include <vector>

#include "core/context.h"
#include "jobs/analysis/embed_job.h"
#include "jobs/analysis/latent.h"

namespace cuvae {

/// What every latent-space job reads, and how it writes.
struct LatentJobCommon {
  std::string vae;                            ///< VAE model.safetensors written by train-vae
  std::string dataset;                        ///< data set (empty: the one the VAE was trained on)
  std::string data;                           ///< its folder (empty: default_data_dir(dataset))
  DeviceRequest device = DeviceRequest::Auto;
  uint64_t seed = 0;                          ///< t-SNE initialisation noise (embed); recorded elsewhere
  int scale = 2;                              ///< PNG enlargement factor
  bool progress = true;                       ///< progress bars on stderr
};

/// What a latent-space job wrote, and a line summing up what it found.
struct LatentJobResult {
  std::vector<std::string> written;  ///< paths of the files written, in order
  std::string summary;               ///< one line for the user after the paths (empty: none)
};

/// Everything `cuvae interpolate` takes.
struct InterpolateJob {
  LatentJobCommon common;
  std::string out = "runs/interpolate";  ///< output folder
  std::vector<std::string> pairs;        ///< test-image index pairs "I:J", one row each
  std::vector<std::string> classes;      ///< class pairs "A:B": the first test image of each class
  int steps = 11;                        ///< points on each path, t = 0 … 1, in [2, 256]
  std::string mode = "lerp";             ///< lerp or slerp
};

/// Decodes the lerp or slerp path between the μ of each pair of test images and writes
/// interpolation.png and interpolation.json into job.out. Throws cuvae::Error when neither pairs
/// nor classes are given (before anything is loaded), naming --mode, --pairs, --classes or --steps
/// for a bad value, and on a checkpoint that is not an unconditional VAE.
LatentJobResult interpolate_job(const InterpolateJob& job);

/// Everything `cuvae arithmetic` takes.
struct ArithmeticJob {
  LatentJobCommon common;
  std::string out = "runs/arithmetic";  ///< output folder
  ArithmeticOptions arithmetic;         ///< test images to move, classes A and B, α
};

/// z = μ(x_I) + α·(m_B − m_A) with the class means of μ over the training set (computed once and
/// kept beside the checkpoint, see anchor_stats_for; what happens goes to `log`); writes
/// arithmetic.png and arithmetic.json into job.out. The options are checked against the test set
/// before the class statistics are computed: throws cuvae::Error as ArithmeticOptions::validate.
LatentJobResult arithmetic_job(const ArithmeticJob& job, std::ostream& log);

/// Everything `cuvae traverse` takes.
struct TraverseJob {
  LatentJobCommon common;
  std::string out = "runs/traverse";  ///< output folder
  std::string dims = "top-kl:10";     ///< "top-kl:K" or a list such as "3,7,12" (see parse_dims)
  std::string base = "zero";          ///< zero, index:I or class:K (see parse_base)
  double range = 3.0;                 ///< each dimension goes from −range to +range
  int steps = 11;                     ///< values per dimension, in [2, 256]
  bool gif = false;                   ///< also one animated GIF per dimension (needs giflib)
};

/// Sweeps each chosen dimension from −range to +range with the others at the base code and writes
/// traversal.png, traversal.csv and, with gif, traversal_dim<d>.gif into job.out; the summary
/// counts the active units over the test set. Throws cuvae::Error, before any encoding, when gif
/// is asked for in a build without giflib and naming --base, --dims, --steps or --range for a bad
/// value.
LatentJobResult traverse_job(const TraverseJob& job, std::ostream& log);

/// Everything `cuvae embed` takes.
struct EmbedJob {
  LatentJobCommon common;
  std::string out = "runs/embed";  ///< output folder
  std::string split = "test";      ///< test, train or all (the training images, then the test images)
  /// Method, number of images (at least 4), t-SNE settings; its seed and progress fields are
  /// taken from `common`.
  EmbedOptions embed;
};

/// Maps the μ of the first embed.n images of the split to 2-D (PCA or t-SNE) and writes
/// latents.safetensors, embedding.csv, embedding.png (with PLplot; else a note goes to `log`) and
/// embed.json into job.out; the summary gives the method, the time, trustworthiness and the 5-NN
/// accuracies. Throws cuvae::Error naming --method or --n (fewer than 4 images, or more than the
/// split holds) and as embed_latents.
LatentJobResult embed_job(const EmbedJob& job, std::ostream& log);

}  // namespace cuvae
