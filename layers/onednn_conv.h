// oneDNN convolution core for the CPU backend, shared by Conv2d (forward = conv) and
// ConvTranspose2d (forward = conv backward-data), as CudnnConv is on the GPU. Float32, NCHW.
#pragma once

#include <memory>

#include "core/tensor.h"
#include "layers/conv_cpu.h"

namespace cuvae {

/// oneDNN primitives for one convolution layer on the CPU (the same library and version PyTorch's
/// CPU convolutions use). Weights stay OIHW; activations are NCHW or, where the layer asks, one of
/// oneDNN's blocked layouts (Layout). oneDNN chooses its own layouts and the arguments in other
/// layouts are reordered into them.
///
/// `setup()` creates the forward, backward-data and backward-weights primitives the first time a
/// geometry is seen and keeps them (a few geometries per layer: the training batch, a last partial
/// batch, the evaluation batch). Reordered inputs are kept for the pass: the backward calls reuse
/// the layouts the forward made of x and w (and bwd_filter/bwd_data share one reorder of dy), so
/// a pass must be forward first, with x and w unchanged until its backward, as the layers require.
/// `setup()` starts a new pass (forgets them): a layer calls it in forward, never in backward. Throws cuvae::Error when a primitive
/// cannot be created or the build has no oneDNN (see available()).
class OnednnConv {
 public:
  OnednnConv();
  ~OnednnConv();
  OnednnConv(OnednnConv&&) noexcept;
  OnednnConv& operator=(OnednnConv&&) noexcept;
  OnednnConv(const OnednnConv&) = delete;
  OnednnConv& operator=(const OnednnConv&) = delete;

  /// True when this build has oneDNN.
  static bool available();
  /// Prepares geometry `g` (weight [k_out, c, kernel, kernel]) and starts a new pass. With
  /// `bias` the forward adds a bias [k_out], with `relu` it applies ReLU after it, both fused
  /// into the convolution (oneDNN's bias argument and eltwise post-op). x (and dx) are in
  /// `x_layout`. With `blocked_y`, y (and dy) stay in the blocked layout the forward primitive
  /// chooses when it is one of Tensor's (y_layout() says which), instead of being reordered to NCHW.
  void setup(const ConvGeom& g, bool bias = false, bool relu = false, Layout x_layout = Layout::Plain,
             bool blocked_y = false);
  /// The layout fwd() writes y in (and bwd_* read dy in) for the geometry set up last.
  Layout y_layout() const;
  /// y [n, k_out, ho, wo] = conv(x [n, c, h, w], w) (+ b, then ReLU, as set up; `b` [k_out] is
  /// needed only with bias).
  void fwd(const float* x, const float* w, float* y, const float* b = nullptr);
  /// dx [n, c, h, w] = ∂(Σ dy·conv(x, w))/∂x, written.
  void bwd_data(const float* dy, const float* w, float* dx);
  /// dw [k_out, c, kernel, kernel] = ∂(Σ dy·conv(x, w))/∂w, written.
  void bwd_filter(const float* x, const float* dy, float* dw);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace cuvae
