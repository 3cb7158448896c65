// `cuvae anchor`: class-anchored samples of a VAE (jobs/anchor.h) decoded into one PNG grid.
#pragma once

#include <cstdint>
#include <ostream>
#include <string>

#include "core/context.h"
#include "jobs/anchor.h"

namespace cuvae {

/// Everything `cuvae anchor` takes.
struct AnchorJob {
  std::string vae;                  ///< VAE model.safetensors written by train-vae
  int klass = -1;                   ///< class K to sample, one of the VAE's data set's classes
  int64_t n = 64;                   ///< images to generate
  double noise = 0.5;               ///< s in z ~ N(mean_K, s²·Σ_K): 0 the class mean only, 1 its full spread
  int components = kDefaultAnchorComponents;  ///< mixture components per class (1: the class Gaussian)
  std::string out = "runs/anchor";  ///< output folder
  uint64_t seed = 0;                ///< seed of the samples
  std::string data;                 ///< folder of the VAE's training data (empty: its default folder)
  DeviceRequest device = DeviceRequest::Auto;
  int scale = 2;                    ///< PNG enlargement factor
  int cols = 8;                     ///< images per grid row
  bool progress = true;             ///< progress bar while the class statistics are computed
};

/// What anchor_job wrote.
struct AnchorJobResult {
  std::string path;        ///< the grid, out/anchor_class<K>.png
  std::string class_name;  ///< the name of class K in the VAE's data set
};

/// Samples job.n codes around class K's region of the latent space (the per-class statistics of
/// μ over the training set, computed once and kept beside the checkpoint; what happens goes to
/// `log`), decodes them and writes the grid. Throws cuvae::Error naming --class when K is not a
/// class of the VAE's data set (before the statistics are computed), and on a checkpoint that is
/// not an unconditional VAE.
AnchorJobResult anchor_job(const AnchorJob& job, std::ostream& log);

}  // namespace cuvae
