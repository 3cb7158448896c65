// An unnormalised residual block of 3×3 convolutions, the unit of the residual VAE (--arch resnet).
#pragma once

#include <cstdint>
#include <string>

#include "core/context.h"
#include "core/tensor.h"
#include "layers/conv2d.h"
#include "layers/flops.h"
#include "layers/param.h"

namespace cuvae {

/// A residual block without normalisation (He et al., "Deep Residual Learning for Image
/// Recognition", CVPR 2016, Fig. 2, with the batch norms left out so that a VAE keeps no running
/// statistics): y = ReLU(x + conv2(ReLU(conv1(x)))), both 3×3, stride 1, padding 1, c → c channels,
/// with bias. Parameters `<name>.conv1.{weight,bias}` and `<name>.conv2.{weight,bias}`, as PyTorch's
/// bench/torch_ref.py ResBlock.
class ResBlock {
 public:
  ResBlock(ParamStore& ps, const std::string& name, int64_t channels);
  /// x [n, c, h, w] (left unchanged until backward()) → y [n, c, h, w] (the block's own buffer).
  Tensor& forward(Context& ctx, const Tensor& x);
  /// dy = ∂L/∂y (left unchanged) → the parameter gradients and, if `need_dx`, ∂L/∂x [n, c, h, w]
  /// (returned, a buffer of conv1; otherwise an empty view).
  Tensor& backward(Context& ctx, const Tensor& dy, bool need_dx);
  /// Adds the block's two convolutions at the shapes of the last forward (both compute a data gradient).
  void add_flops(StepFlops& f) const;

 private:
  Conv2d conv1_, conv2_;
  Tensor y_store_, y_, dsum_store_, dsum_;
};

}  // namespace cuvae
