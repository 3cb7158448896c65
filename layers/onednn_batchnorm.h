// oneDNN batch normalization for the CPU backend (BatchNorm2d's onednn path). Float32, NCHW or
// oneDNN's blocked layouts.
#pragma once

#include <cstdint>
#include <memory>

#include "core/tensor.h"

namespace cuvae {

/// oneDNN's spatial batch normalization (Ioffe & Szegedy 2015) on NCHW or blocked tensors, with
/// scale (gamma) and shift (beta). Primitives are made the first time a shape [n, c, h, w] is
/// seen and kept. The statistics are oneDNN's: the batch mean and the biased variance.
/// Throws cuvae::Error when a primitive cannot be created or the build has no oneDNN.
class OnednnBatchNorm {
 public:
  OnednnBatchNorm();
  ~OnednnBatchNorm();
  OnednnBatchNorm(OnednnBatchNorm&&) noexcept;
  OnednnBatchNorm& operator=(OnednnBatchNorm&&) noexcept;
  OnednnBatchNorm(const OnednnBatchNorm&) = delete;
  OnednnBatchNorm& operator=(const OnednnBatchNorm&) = delete;

  /// The layout of x, y, dy and dx in the calls that follow (Plain until set).
  void set_layout(Layout l);
  /// Training: y = gamma·(x − mean)/sqrt(var + eps) + beta with the batch's mean [c] and biased
  /// variance [c] (written to `mean`, `var`); x, y [n, c, h, w].
  void forward_train(int64_t n, int64_t c, int64_t h, int64_t w, double eps, const float* x,
                     const float* gamma, const float* beta, float* y, float* mean, float* var);
  /// Evaluation: the same with the given (running) mean and variance.
  void forward_eval(int64_t n, int64_t c, int64_t h, int64_t w, double eps, const float* x,
                    const float* gamma, const float* beta, const float* mean, const float* var, float* y);
  /// Backward of forward_train through the batch statistics `mean`, `var` it wrote: dx (always
  /// written, [n, c, h, w]), dgamma and dbeta [c] written.
  void backward(int64_t n, int64_t c, int64_t h, int64_t w, double eps, const float* x, const float* dy,
                const float* gamma, const float* mean, const float* var, float* dx, float* dgamma,
                float* dbeta);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace cuvae
