#include "layers/res_block.h"

#include "kernels/residual.h"

namespace cuvae {

ResBlock::ResBlock(ParamStore& ps, const std::string& name, int64_t channels)
    : conv1_(ps, name + ".conv1", channels, channels, 3, 1, 1, Activation::ReLU),
      conv2_(ps, name + ".conv2", channels, channels, 3, 1, 1) {}

Tensor& ResBlock::forward(Context& ctx, const Tensor& x) {
  Tensor& branch = conv2_.forward(ctx, conv1_.forward(ctx, x));
  grow_view(y_store_, y_, branch.shape(), ctx.device());
  residual_add(ctx, branch, x, y_, true);
  return y_;
}

Tensor& ResBlock::backward(Context& ctx, const Tensor& dy, bool need_dx) {
  grow_view(dsum_store_, dsum_, y_.shape(), ctx.device());
  residual_add_backward(ctx, y_, dy, dsum_, true);  // the branch and the shortcut both receive dsum
  Tensor& dh = conv2_.backward(ctx, dsum_, true);    // no activation: dsum_ is left as it was
  Tensor& dx = conv1_.backward(ctx, dh, need_dx);
  if (need_dx) accumulate(ctx, dx, dsum_);
  return dx;
}

void ResBlock::add_flops(StepFlops& f) const {
  f.add(conv1_.flops(), true);
  f.add(conv2_.flops(), true);
}

}  // namespace cuvae
