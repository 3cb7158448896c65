// The convolutional bodies of ConvVAE on either side of its fully connected layers: the pinned
// two-layer network (--arch conv) and a deeper residual one (--arch resnet).
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "core/context.h"
#include "core/tensor.h"
#include "layers/conv2d.h"
#include "layers/flops.h"
#include "layers/param.h"
#include "layers/res_block.h"

namespace cuvae {

/// The encoder's convolutional part: images x [n, C, H, W] → feature maps [n, F, H/4, W/4]
/// (F = VaeConfig::feature_channels()), which ConvVAE flattens into enc.fc.
class VaeEncoderBody {
 public:
  virtual ~VaeEncoderBody() = default;
  /// x [n, C, H, W] (left unchanged until backward()) → features [n, F, H/4, W/4] (a buffer of the body).
  virtual Tensor& forward(Context& ctx, const Tensor& x) = 0;
  /// dfeatures = ∂L/∂features (may be overwritten) → the parameter gradients; the images get no gradient.
  virtual void backward(Context& ctx, Tensor& dfeatures) = 0;
  /// Adds the body's products at the shapes of the last forward (StepFlops).
  virtual void add_flops(StepFlops& f) const = 0;
};

/// The decoder's convolutional part: feature maps [n, F, H/4, W/4] (dec.fc2's output viewed as
/// maps) → logits [n, C, H, W].
class VaeDecoderBody {
 public:
  virtual ~VaeDecoderBody() = default;
  /// maps [n, F, H/4, W/4] (left unchanged until backward()) → logits [n, C, H, W] (a buffer of the body).
  virtual Tensor& forward(Context& ctx, const Tensor& maps) = 0;
  /// dlogits (may be overwritten) → the parameter gradients and ∂L/∂maps [n, F, H/4, W/4] (returned).
  virtual Tensor& backward(Context& ctx, Tensor& dlogits) = 0;
  /// Adds the body's products at the shapes of the last forward (StepFlops).
  virtual void add_flops(StepFlops& f) const = 0;
};

/// --arch conv, the pinned encoder: enc.conv1 Conv2d(C,32,4,2,1)+ReLU → enc.conv2 Conv2d(32,64,4,2,1)+ReLU (F = 64).
std::unique_ptr<VaeEncoderBody> make_conv_encoder(ParamStore& ps, int64_t channels);
/// --arch conv, the pinned decoder: dec.deconv1 ConvTranspose2d(64,32,4,2,1)+ReLU →
/// dec.deconv2 ConvTranspose2d(32,C,4,2,1).
std::unique_ptr<VaeDecoderBody> make_conv_decoder(ParamStore& ps, int64_t channels);
/// --arch resnet, the residual encoder (F = 128): enc.conv_in Conv2d(C,32,3,1,1)+ReLU → enc.res1
/// ResBlock(32) at H×W → enc.down1 Conv2d(32,64,4,2,1)+ReLU → enc.res2 ResBlock(64) at H/2 →
/// enc.down2 Conv2d(64,128,4,2,1)+ReLU → enc.res3 ResBlock(128) at H/4.
std::unique_ptr<VaeEncoderBody> make_resnet_encoder(ParamStore& ps, int64_t channels);
/// --arch resnet, the residual decoder, the encoder's mirror: dec.res3 ResBlock(128) at H/4 →
/// dec.up2 ConvTranspose2d(128,64,4,2,1)+ReLU → dec.res2 ResBlock(64) → dec.up1
/// ConvTranspose2d(64,32,4,2,1)+ReLU → dec.res1 ResBlock(32) → dec.conv_out Conv2d(32,C,3,1,1) → logits.
std::unique_ptr<VaeDecoderBody> make_resnet_decoder(ParamStore& ps, int64_t channels);

}  // namespace cuvae
