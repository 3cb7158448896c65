// Conv2d and ConvTranspose2d layers with optional fused activation, as PyTorch's
// nn.Conv2d / nn.ConvTranspose2d (square kernel, equal stride and padding, no dilation,
// groups or output_padding) followed by an activation module.
#pragma once

#include <string>

#include "core/context.h"
#include "kernels/activation.h"
#include "layers/conv_cpu.h"
#include "layers/cudnn_conv.h"
#include "layers/onednn_conv.h"
#include "layers/param.h"

namespace cuvae {

/// nn.Conv2d(in, out, kernel, stride, pad, bias) + activation. Parameters `<name>.weight`
/// [out, in, kernel, kernel] and, when `bias` (the default), `<name>.bias` [out]. Input x [n, in, h, w] → output
/// [n, out, (h + 2·pad − kernel)/stride + 1, …]. CPU: oneDNN primitives (Context::use_onednn())
/// or the reference im2col + Eigen GEMM; CUDA: cuDNN with measured, cached algorithms. Buffers grow to the largest batch seen and are reused; the
/// CPU im2col scratch is the context's shared one (Context::host_scratch).
class Conv2d {
 public:
  Conv2d(ParamStore& ps, const std::string& name, int64_t in, int64_t out, int64_t kernel,
         int64_t stride, int64_t pad, Activation act = Activation::None, bool bias = true);
  /// Index of the weight in the ParamStore.
  int weight_index() const { return w_; }
  /// y = act(conv(x, W) + b); x [n, in, h, w] must stay unchanged until backward().
  Tensor& forward(Context& ctx, const Tensor& x);
  /// dy = ∂L/∂y (overwritten with ∂L/∂pre-activation) → weight/bias gradients and, if
  /// `need_dx`, dx = ∂L/∂x [n, in, h, w] (the layer's own buffer). Returns dx or an empty view.
  Tensor& backward(Context& ctx, Tensor& dy, bool need_dx);
  /// The output of the last forward().
  Tensor& output() { return y_; }
  /// The geometry of the last forward call.
  const ConvGeom& geom() const { return g_; }
  /// FLOPs of the last forward's product (ConvGeom::flops; 0 before the first forward).
  double flops() const { return g_.n > 0 ? g_.flops() : 0.0; }
  /// With `on` (and the oneDNN backend, no bias) forward() leaves y in the blocked layout oneDNN's
  /// convolution writes (y.layout() says which) instead of reordering it to NCHW; backward() then
  /// takes dy in that layout. For models whose next layers read blocked tensors (ResNet18).
  void set_blocked_output(bool on) { blocked_output_ = on; }

 private:
  ParamStore& ps_;
  int w_, b_;
  int64_t in_, out_, kernel_, stride_, pad_;
  Activation act_;
  ConvGeom g_;
  const float* x_ = nullptr;
  Layout x_layout_ = Layout::Plain;
  bool blocked_output_ = false;
  Tensor y_store_, dx_store_;
  Tensor y_, dx_;
  CudnnConv cudnn_;
  OnednnConv onednn_;
};

/// nn.ConvTranspose2d(in, out, kernel, stride, pad) + activation. Parameters
/// `<name>.weight` [in, out, kernel, kernel] (PyTorch's layout) and `<name>.bias` [out].
/// Input x [n, in, h, w] → output [n, out, (h − 1)·stride − 2·pad + kernel, …]. It is the
/// adjoint of a convolution: forward = that convolution's backward-data.
class ConvTranspose2d {
 public:
  ConvTranspose2d(ParamStore& ps, const std::string& name, int64_t in, int64_t out,
                  int64_t kernel, int64_t stride, int64_t pad, Activation act = Activation::None);
  /// y = act(conv_transpose(x, W) + b); x must stay unchanged until backward().
  Tensor& forward(Context& ctx, const Tensor& x);
  /// As Conv2d::backward.
  Tensor& backward(Context& ctx, Tensor& dy, bool need_dx);
  /// The output of the last forward().
  Tensor& output() { return y_; }
  /// FLOPs of the last forward's product: that of the convolution it is the adjoint of (0 before
  /// the first forward).
  double flops() const { return g_.n > 0 ? g_.flops() : 0.0; }

 private:
  ParamStore& ps_;
  int w_, b_;
  int64_t in_, out_, kernel_, stride_, pad_;
  Activation act_;
  ConvGeom g_;  // the underlying convolution: input = our output, output = our input
  const float* x_ = nullptr;
  Tensor y_store_, dx_store_;
  Tensor y_, dx_;
  CudnnConv cudnn_;
  OnednnConv onednn_;
};

}  // namespace cuvae
