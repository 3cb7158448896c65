// Small synthetic data sets for the test suites: MNIST-like IDX files and t-SNE joint
// probabilities.
#pragma once

#include <algorithm>
#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include "io/dataset.h"
#include "io/fs.h"
#include "jobs/classifier_trainer.h"
#include "jobs/vae_trainer.h"
#include "test_util.h"

namespace cuvae::test {

/// An in-memory data set of n 1×28×28 images of uniform random bytes from `seed`, labels
/// (3i) mod 10: batches for model steps compared across devices or backends.
inline Dataset random_image_data(int64_t n, uint64_t seed) {
  Dataset d;
  d.name = "synthetic";
  d.n = n;
  d.c = 1;
  d.h = 28;
  d.w = 28;
  const std::vector<float> v = random_values(static_cast<size_t>(n * 784), 0, 256, seed);
  for (float e : v) d.images.push_back(static_cast<uint8_t>(e));
  for (int64_t i = 0; i < n; ++i) d.labels.push_back(static_cast<uint8_t>((i * 3) % 10));
  return d;
}

/// Writes `<dir>/<prefix>-images-idx3-ubyte` and `-labels-idx1-ubyte`: n MNIST-like 28×28 images
/// where class k is a bright horizontal bar at rows 2k+4..2k+6 plus noise from `seed`. Labels are
/// random from the seed, or i % 10 with `cyclic` (so test image i has class i % 10).
inline void write_synthetic_idx(const std::string& dir, const std::string& prefix, int n, uint32_t seed,
                                bool cyclic = false) {
  auto put_be32 = [](std::string& s, uint32_t v) {
    for (int i = 3; i >= 0; --i) s.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
  };
  std::string img, lab;
  put_be32(img, 0x803); put_be32(img, static_cast<uint32_t>(n)); put_be32(img, 28); put_be32(img, 28);
  put_be32(lab, 0x801); put_be32(lab, static_cast<uint32_t>(n));
  std::mt19937 g(seed);
  for (int i = 0; i < n; ++i) {
    const int k = cyclic ? i % 10 : static_cast<int>(g() % 10);
    lab.push_back(static_cast<char>(k));
    for (int r = 0; r < 28; ++r)
      for (int c = 0; c < 28; ++c) {
        int v = (r >= 2 * k + 4 && r < 2 * k + 7 && c > 3 && c < 24) ? 220 : 0;
        v += static_cast<int>(g() % 20);
        img.push_back(static_cast<char>(std::min(v, 255)));
      }
  }
  write_file_atomic(dir + "/" + prefix + "-images-idx3-ubyte", img);
  write_file_atomic(dir + "/" + prefix + "-labels-idx1-ubyte", lab);
}

/// A random symmetric t-SNE joint probability matrix P [n, n] with zero diagonal summing to 1.
template <typename T>
std::vector<T> random_joint_p(int64_t n, uint64_t seed) {
  std::vector<double> P = random_values<double>(static_cast<size_t>(n * n), 0.0, 1.0, seed);
  double s = 0;
  for (int64_t i = 0; i < n; ++i)
    for (int64_t j = 0; j < n; ++j) {
      if (j < i) P[static_cast<size_t>(i * n + j)] = P[static_cast<size_t>(j * n + i)];
      if (j == i) P[static_cast<size_t>(i * n + j)] = 0;
      s += P[static_cast<size_t>(i * n + j)];
    }
  std::vector<T> out(P.size());
  for (size_t k = 0; k < P.size(); ++k) out[k] = static_cast<T>(P[k] / s);
  return out;
}

/// train-vae options for a short CPU run on the MNIST-like files in `data` (write_synthetic_idx),
/// written to `out`: batch 32, no progress bar, no images; `epochs`, `latent` and `seed` as given.
inline VaeTrainOptions tiny_vae_options(const std::string& data, const std::string& out, int epochs, int64_t latent,
                                        uint64_t seed) {
  VaeTrainOptions o;
  o.dataset = "mnist";
  o.data_dir = data;
  o.out = out;
  o.epochs = epochs;
  o.batch = 32;
  o.latent = latent;
  o.seed = seed;
  o.device = DeviceRequest::CPU;
  o.progress = false;
  o.images = false;
  return o;
}

/// train-classifier options for a short CPU run on the MNIST-like files in `data`, written to
/// `out`: batch 32, no progress bar; `epochs`, ResNet `width` and `seed` as given.
inline ClassifierTrainOptions tiny_classifier_options(const std::string& data, const std::string& out, int epochs,
                                                      int64_t width, uint64_t seed) {
  ClassifierTrainOptions o;
  o.dataset = "mnist";
  o.data_dir = data;
  o.out = out;
  o.epochs = epochs;
  o.batch = 32;
  o.width = width;
  o.seed = seed;
  o.device = DeviceRequest::CPU;
  o.progress = false;
  return o;
}

}  // namespace cuvae::test
