#include "models/vae_bodies.h"

namespace cuvae {

namespace {

// ---- --arch conv --------------------------------------------------------------------------

class ConvEncoder final : public VaeEncoderBody {
 public:
  ConvEncoder(ParamStore& ps, int64_t channels)
      : conv1_(ps, "enc.conv1", channels, 32, 4, 2, 1, Activation::ReLU),
        conv2_(ps, "enc.conv2", 32, 64, 4, 2, 1, Activation::ReLU) {}
  Tensor& forward(Context& ctx, const Tensor& x) override { return conv2_.forward(ctx, conv1_.forward(ctx, x)); }
  void backward(Context& ctx, Tensor& d) override { conv1_.backward(ctx, conv2_.backward(ctx, d, true), false); }
  void add_flops(StepFlops& f) const override {
    f.add(conv1_.flops(), false);
    f.add(conv2_.flops(), true);
  }

 private:
  Conv2d conv1_, conv2_;
};

class ConvDecoder final : public VaeDecoderBody {
 public:
  ConvDecoder(ParamStore& ps, int64_t channels)
      : deconv1_(ps, "dec.deconv1", 64, 32, 4, 2, 1, Activation::ReLU),
        deconv2_(ps, "dec.deconv2", 32, channels, 4, 2, 1) {}
  Tensor& forward(Context& ctx, const Tensor& maps) override {
    return deconv2_.forward(ctx, deconv1_.forward(ctx, maps));
  }
  Tensor& backward(Context& ctx, Tensor& d) override {
    return deconv1_.backward(ctx, deconv2_.backward(ctx, d, true), true);
  }
  void add_flops(StepFlops& f) const override {
    f.add(deconv1_.flops(), true);
    f.add(deconv2_.flops(), true);
  }

 private:
  ConvTranspose2d deconv1_, deconv2_;
};

// ---- --arch resnet ------------------------------------------------------------------------

class ResnetEncoder final : public VaeEncoderBody {
 public:
  ResnetEncoder(ParamStore& ps, int64_t channels)
      : conv_in_(ps, "enc.conv_in", channels, 32, 3, 1, 1, Activation::ReLU),
        res1_(ps, "enc.res1", 32),
        down1_(ps, "enc.down1", 32, 64, 4, 2, 1, Activation::ReLU),
        res2_(ps, "enc.res2", 64),
        down2_(ps, "enc.down2", 64, 128, 4, 2, 1, Activation::ReLU),
        res3_(ps, "enc.res3", 128) {}
  Tensor& forward(Context& ctx, const Tensor& x) override {
    Tensor& h1 = res1_.forward(ctx, conv_in_.forward(ctx, x));
    Tensor& h2 = res2_.forward(ctx, down1_.forward(ctx, h1));
    return res3_.forward(ctx, down2_.forward(ctx, h2));
  }
  void backward(Context& ctx, Tensor& d) override {
    Tensor& d2 = res2_.backward(ctx, down2_.backward(ctx, res3_.backward(ctx, d, true), true), true);
    conv_in_.backward(ctx, res1_.backward(ctx, down1_.backward(ctx, d2, true), true), false);
  }
  void add_flops(StepFlops& f) const override {
    f.add(conv_in_.flops(), false);
    res1_.add_flops(f);
    f.add(down1_.flops(), true);
    res2_.add_flops(f);
    f.add(down2_.flops(), true);
    res3_.add_flops(f);
  }

 private:
  Conv2d conv_in_;
  ResBlock res1_;
  Conv2d down1_;
  ResBlock res2_;
  Conv2d down2_;
  ResBlock res3_;
};

class ResnetDecoder final : public VaeDecoderBody {
 public:
  ResnetDecoder(ParamStore& ps, int64_t channels)
      : res3_(ps, "dec.res3", 128),
        up2_(ps, "dec.up2", 128, 64, 4, 2, 1, Activation::ReLU),
        res2_(ps, "dec.res2", 64),
        up1_(ps, "dec.up1", 64, 32, 4, 2, 1, Activation::ReLU),
        res1_(ps, "dec.res1", 32),
        conv_out_(ps, "dec.conv_out", 32, channels, 3, 1, 1) {}
  Tensor& forward(Context& ctx, const Tensor& maps) override {
    Tensor& g2 = res2_.forward(ctx, up2_.forward(ctx, res3_.forward(ctx, maps)));
    return conv_out_.forward(ctx, res1_.forward(ctx, up1_.forward(ctx, g2)));
  }
  Tensor& backward(Context& ctx, Tensor& d) override {
    Tensor& d1 = up1_.backward(ctx, res1_.backward(ctx, conv_out_.backward(ctx, d, true), true), true);
    return res3_.backward(ctx, up2_.backward(ctx, res2_.backward(ctx, d1, true), true), true);
  }
  void add_flops(StepFlops& f) const override {
    res3_.add_flops(f);
    f.add(up2_.flops(), true);
    res2_.add_flops(f);
    f.add(up1_.flops(), true);
    res1_.add_flops(f);
    f.add(conv_out_.flops(), true);
  }

 private:
  ResBlock res3_;
  ConvTranspose2d up2_;
  ResBlock res2_;
  ConvTranspose2d up1_;
  ResBlock res1_;
  Conv2d conv_out_;
};

}  // namespace

std::unique_ptr<VaeEncoderBody> make_conv_encoder(ParamStore& ps, int64_t channels) {
  return std::make_unique<ConvEncoder>(ps, channels);
}
std::unique_ptr<VaeDecoderBody> make_conv_decoder(ParamStore& ps, int64_t channels) {
  return std::make_unique<ConvDecoder>(ps, channels);
}
std::unique_ptr<VaeEncoderBody> make_resnet_encoder(ParamStore& ps, int64_t channels) {
  return std::make_unique<ResnetEncoder>(ps, channels);
}
std::unique_ptr<VaeDecoderBody> make_resnet_decoder(ParamStore& ps, int64_t channels) {
  return std::make_unique<ResnetDecoder>(ps, channels);
}

}  // namespace cuvae
