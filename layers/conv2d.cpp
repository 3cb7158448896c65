#include "layers/conv2d.h"

#include "core/check.h"
#include "kernels/bias.h"
#include "kernels/dispatch_util.h"

namespace cuvae {

namespace {
void add_bias(Context& ctx, Tensor& y, const float* b) {
  const int64_t n = y.dim(0), c = y.dim(1), hw = y.dim(2) * y.dim(3);
  detail::dispatch(
      ctx, "convolution bias", [&] { add_bias_nchw_cpu<float>(y.data(), b, n, c, hw); },
      [&](auto s) { add_bias_nchw_cuda(y.data(), b, n, c, hw, s); });
}
void bias_grad(Context& ctx, const Tensor& dy, float* db) {
  const int64_t n = dy.dim(0), c = dy.dim(1), hw = dy.numel() / (n * c);
  detail::dispatch(
      ctx, "convolution bias gradient", [&] { bias_grad_nchw_cpu<float>(dy.data(), db, n, c, hw); },
      [&](auto s) { bias_grad_nchw_cuda(dy.data(), db, n, c, hw, s); });
}
void check_input(const Tensor& x, int64_t in, const Context& ctx, const char* what) {
  CUVAE_CHECK(x.ndim() == 4 && x.dim(0) > 0 && x.dim(1) == in,
              what << ": input " << x.shape_str() << ", expected [n, " << in << ", h, w]");
  CUVAE_CHECK(x.device() == ctx.device(), what << ": input on " << device_name(x.device())
                                                 << ", context on " << device_name(ctx.device()));
}
}  // namespace

Conv2d::Conv2d(ParamStore& ps, const std::string& name, int64_t in, int64_t out, int64_t kernel,
               int64_t stride, int64_t pad, Activation act, bool bias)
    : ps_(ps), in_(in), out_(out), kernel_(kernel), stride_(stride), pad_(pad), act_(act) {
  w_ = ps.add(name + ".weight", {out, in, kernel, kernel}, in * kernel * kernel);
  b_ = bias ? ps.add(name + ".bias", {out}, in * kernel * kernel) : -1;
}

Tensor& Conv2d::forward(Context& ctx, const Tensor& x) {
  check_input(x, in_, ctx, "Conv2d");
  CUVAE_CHECK(x.layout() == Layout::Plain || ctx.use_onednn(),
              "Conv2d: input in oneDNN's " << layout_name(x.layout()) << " layout on a backend without oneDNN");
  g_ = ConvGeom{x.dim(0), in_, x.dim(2), x.dim(3), out_, kernel_, stride_, pad_};
  g_.validate();
  x_ = x.data();
  x_layout_ = x.layout();
  grow_view(y_store_, y_, {g_.n, out_, g_.ho(), g_.wo()}, ctx.device());
  const float* W = ps_.value(w_).data();
  // oneDNN fuses the bias and a ReLU into its convolution; the other paths add them after it.
  const bool fuse_relu = act_ == Activation::ReLU;
  bool fused = false;
  detail::dispatch(
      ctx, "Conv2d", [&] { conv_fwd_cpu<float>(g_, x_, W, y_.data(), ctx.host_scratch(g_.scratch_numel())); },
      [&] {
        // A blocked y only without a bias: bias_grad reads dy as NCHW.
        onednn_.setup(g_, b_ >= 0, fuse_relu, x_layout_, blocked_output_ && b_ < 0);
        onednn_.fwd(x_, W, y_.data(), b_ >= 0 ? ps_.value(b_).data() : nullptr);
        y_.set_layout(onednn_.y_layout());
        fused = true;
      },
      [&] {
        cudnn_.setup(ctx, g_);
        cudnn_.fwd(ctx, x_, W, y_.data());
      });
  if (b_ >= 0 && !fused) add_bias(ctx, y_, ps_.value(b_).data());
  if (act_ != Activation::None && !(fused && fuse_relu)) activation_forward(ctx, act_, y_, y_);
  return y_;
}

Tensor& Conv2d::backward(Context& ctx, Tensor& dy, bool need_dx) {
  CUVAE_CHECK(x_ != nullptr, "Conv2d::backward before forward");
  CUVAE_CHECK(dy.numel() == g_.y_numel(), "Conv2d::backward: dy " << dy.shape_str() << " does not match output "
                                                                  << y_.shape_str());
  CUVAE_CHECK(dy.layout() == y_.layout(), "Conv2d::backward: dy in the " << layout_name(dy.layout())
                                              << " layout, the output in " << layout_name(y_.layout()));
  if (act_ != Activation::None) activation_backward(ctx, act_, y_, dy, dy);
  if (b_ >= 0) {
    Tensor dyv = Tensor::view(dy.data(), y_.shape(), ctx.device());
    bias_grad(ctx, dyv, ps_.grad(b_).data());
  }
  const float* W = ps_.value(w_).data();
  float* dW = ps_.grad(w_).data();
  if (need_dx) grow_view(dx_store_, dx_, {g_.n, g_.c, g_.h, g_.w}, ctx.device());
  detail::dispatch(
      ctx, "Conv2d::backward",
      [&] {
        conv_bwd_cpu<float>(g_, x_, dy.data(), W, need_dx ? dx_.data() : nullptr, dW,
                            ctx.host_scratch(g_.scratch_numel()));
      },
      [&] {
        onednn_.bwd_filter(x_, dy.data(), dW);
        if (need_dx) onednn_.bwd_data(dy.data(), W, dx_.data());
        if (need_dx) dx_.set_layout(x_layout_);  // dx in x's layout
      },
      [&] {
        cudnn_.setup(ctx, g_);
        cudnn_.bwd_filter(ctx, x_, dy.data(), dW);
        if (need_dx) cudnn_.bwd_data(ctx, dy.data(), W, dx_.data());
      });
  if (!need_dx) dx_ = Tensor();
  return dx_;
}

ConvTranspose2d::ConvTranspose2d(ParamStore& ps, const std::string& name, int64_t in, int64_t out,
                                 int64_t kernel, int64_t stride, int64_t pad, Activation act)
    : ps_(ps), in_(in), out_(out), kernel_(kernel), stride_(stride), pad_(pad), act_(act) {
  // PyTorch computes ConvTranspose2d's fan-in from weight dim 1 (= out) × kernel².
  w_ = ps.add(name + ".weight", {in, out, kernel, kernel}, out * kernel * kernel);
  b_ = ps.add(name + ".bias", {out}, out * kernel * kernel);
}

Tensor& ConvTranspose2d::forward(Context& ctx, const Tensor& x) {
  check_input(x, in_, ctx, "ConvTranspose2d");
  const int64_t ho = (x.dim(2) - 1) * stride_ - 2 * pad_ + kernel_;
  const int64_t wo = (x.dim(3) - 1) * stride_ - 2 * pad_ + kernel_;
  g_ = ConvGeom{x.dim(0), out_, ho, wo, in_, kernel_, stride_, pad_};
  g_.validate();
  CUVAE_CHECK(g_.ho() == x.dim(2) && g_.wo() == x.dim(3),
              "ConvTranspose2d: input " << x.shape_str() << " needs output_padding, which is not supported");
  x_ = x.data();
  grow_view(y_store_, y_, {g_.n, out_, ho, wo}, ctx.device());
  const float* W = ps_.value(w_).data();
  detail::dispatch(
      ctx, "ConvTranspose2d", [&] { conv_bwd_data_cpu<float>(g_, x_, W, y_.data(), ctx.host_scratch(g_.scratch_numel())); },
      [&] {
        onednn_.setup(g_);
        onednn_.bwd_data(x_, W, y_.data());
      },
      [&] {
        cudnn_.setup(ctx, g_);
        cudnn_.bwd_data(ctx, x_, W, y_.data());
      });
  add_bias(ctx, y_, ps_.value(b_).data());
  if (act_ != Activation::None) activation_forward(ctx, act_, y_, y_);
  return y_;
}

Tensor& ConvTranspose2d::backward(Context& ctx, Tensor& dy, bool need_dx) {
  CUVAE_CHECK(x_ != nullptr, "ConvTranspose2d::backward before forward");
  CUVAE_CHECK(dy.numel() == g_.x_numel(), "ConvTranspose2d::backward: dy " << dy.shape_str()
                                                                           << " does not match output " << y_.shape_str());
  if (act_ != Activation::None) activation_backward(ctx, act_, y_, dy, dy);
  Tensor dyv = Tensor::view(dy.data(), y_.shape(), ctx.device());
  bias_grad(ctx, dyv, ps_.grad(b_).data());
  const float* W = ps_.value(w_).data();
  float* dW = ps_.grad(w_).data();
  if (need_dx) grow_view(dx_store_, dx_, {g_.n, in_, g_.ho(), g_.wo()}, ctx.device());
  detail::dispatch(
      ctx, "ConvTranspose2d::backward",
      [&] {
        conv_transpose_bwd_cpu<float>(g_, dy.data(), x_, W, need_dx ? dx_.data() : nullptr, dW,
                                      ctx.host_scratch(g_.scratch_numel()));
      },
      [&] {
        onednn_.bwd_filter(dy.data(), x_, dW);
        if (need_dx) onednn_.fwd(dy.data(), W, dx_.data());
      },
      [&] {
        cudnn_.setup(ctx, g_);
        cudnn_.bwd_filter(ctx, dy.data(), x_, dW);
        if (need_dx) cudnn_.fwd(ctx, dy.data(), W, dx_.data());
      });
  if (!need_dx) dx_ = Tensor();
  return dx_;
}

}  // namespace cuvae
