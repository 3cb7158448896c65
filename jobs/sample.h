// `cuvae sample`: images from a VAE or a conditional VAE as one grid. A CVAE decodes
// z ~ N(0, s²I) with the class asked for (Sohn et al. 2015), or keeps a test image's μ ("style")
// and decodes it with every class; an unconditional VAE samples its prior, or, with a class,
// around that class's region of the latent space (class-anchored sampling, as `anchor`).
#pragma once

#include <cstdint>
#include <ostream>
#include <string>
#include <vector>

#include "core/context.h"
#include "jobs/anchor.h"

namespace cuvae {

/// Everything `cuvae sample` takes.
struct SampleOptions {
  std::string vae;                  ///< model.safetensors (VAE, AE or CVAE)
  std::string dataset;              ///< empty: the one the model was trained on
  std::string data_dir;             ///< empty: default_data_dir(dataset)
  std::string out = "runs/sample";
  int klass = -1;                   ///< --class K (−1: none)
  int64_t n = 64;                   ///< images (per class when a CVAE samples every class)
  double noise = -1;                ///< s; < 0: 1 for prior/CVAE samples, 0.5 for anchored ones
  int components = kDefaultAnchorComponents;  ///< anchored samples: mixture components per class (1: the class Gaussian)
  std::vector<int64_t> style_index; ///< --style-index I…: test images whose μ is decoded with each class (CVAE)
  uint64_t seed = 0;
  DeviceRequest device = DeviceRequest::Auto;
  int scale = 2;
  bool progress = true;
};

/// What sample_images made.
struct SampleResult {
  std::string path;      ///< the PNG written (opt.out/samples.png)
  std::string mode;      ///< "conditional", "style", "anchored" or "prior"
  int64_t images = 0;    ///< images in the grid
  int64_t cols = 0;      ///< grid columns
};

/// Draws the images `opt` asks for and writes opt.out/samples.png. CVAE: with --class K, n
/// images z ~ N(0, s²I) (s = 1 by default) decoded with label K; without, n images for each
/// class, one row per class; with --style-index I…, one row per index: the test image, then its
/// μ (encoded with its own label) decoded with each class in turn. VAE or AE: with --class K,
/// n class-anchored samples (s = 0.5 by default, see jobs/anchor.h); without, n prior samples
/// z ~ N(0, s²I). Every option is checked before anything is written: throws cuvae::Error naming
/// --class or --style-index when out of range for the data set, --style-index with an
/// unconditional model, --n outside [1, 10000] or a negative --noise.
SampleResult sample_images(const SampleOptions& opt, std::ostream& log);

}  // namespace cuvae
