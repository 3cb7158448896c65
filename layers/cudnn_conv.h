// cuDNN convolution core shared by Conv2d (forward = conv) and ConvTranspose2d
// (forward = conv backward-data). Float32, NCHW.
#pragma once

#include <memory>

#include "core/context.h"
#include "layers/conv_cpu.h"

namespace cuvae {

/// Descriptors and cached algorithms for one convolution layer on the GPU.
///
/// `setup()` sets the descriptors for a geometry and, the first time that whole geometry is seen,
/// picks fp32 (FMA math, no TF32) forward, backward-data and backward-filter algorithms: by
/// default the first deterministic ones in cuDNN's heuristic ranking (cudnnGet*Algorithm_v7, no
/// timing, so every run on a given GPU and cuDNN picks the same ones); with
/// Context::deterministic() false (--nondeterministic) the fastest by measurement (cudnnFind*).
/// It caches them per geometry and grows the context's workspace to fit them.
/// Call it outside the timed/captured part of a step; fwd/bwd_* then make no allocation
/// and no host synchronisation. Throws cuvae::Error on any cuDNN failure, or when the
/// build has no CUDA backend.
class CudnnConv {
 public:
  CudnnConv();
  ~CudnnConv();
  CudnnConv(const CudnnConv&) = delete;
  CudnnConv& operator=(const CudnnConv&) = delete;

  /// Prepares geometry `g` (weight [k_out, c, kernel, kernel]).
  void setup(Context& ctx, const ConvGeom& g);
  /// y [n, k_out, ho, wo] = conv(x [n, c, h, w], w).
  void fwd(Context& ctx, const float* x, const float* w, float* y);
  /// dx [n, c, h, w] = ∂(Σ dy·conv(x, w))/∂x, written.
  void bwd_data(Context& ctx, const float* dy, const float* w, float* dx);
  /// dw [k_out, c, kernel, kernel] = ∂(Σ dy·conv(x, w))/∂w, written.
  void bwd_filter(Context& ctx, const float* x, const float* dy, float* dw);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace cuvae
