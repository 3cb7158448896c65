#include "models/resnet18.h"

#include <algorithm>
#include <cmath>

#include "core/check.h"
#include "kernels/pool.h"
#include "kernels/residual.h"
#include "kernels/softmax_xent.h"
#include "layers/onednn_util.h"

namespace cuvae {

namespace {
int64_t json_int(const nlohmann::json& j, const char* key, const std::string& source) {
  if (!j.contains(key)) CUVAE_FAIL(source << ": model config has no field '" << key << "'");
  if (!j.at(key).is_number_integer())
    CUVAE_FAIL(source << ": model config field '" << key << "' must be an integer, got " << j.at(key).dump());
  return j.at(key).get<int64_t>();
}
}  // namespace

// ---- ResNetConfig -----------------------------------------------------------------

void ResNetConfig::validate() const {
  CUVAE_REQUIRE(channels >= 1 && channels <= 16, "ResNet18: channels must be in [1, 16], got " << channels);
  CUVAE_REQUIRE(height >= 8 && height <= 1024 && width >= 8 && width <= 1024,
              "ResNet18: image size must be in [8, 1024], got " << height << "x" << width);
  CUVAE_REQUIRE(classes >= 2 && classes <= 1000, "ResNet18: classes must be in [2, 1000], got " << classes);
  CUVAE_REQUIRE(base_width >= 1 && base_width <= 256, "ResNet18: width must be in [1, 256], got " << base_width);
}

nlohmann::json ResNetConfig::to_json() const {
  return {{"model", "resnet18"}, {"channels", channels},     {"height", height},  {"width", width},
          {"classes", classes},  {"base_width", base_width}, {"dataset", dataset}};
}

ResNetConfig ResNetConfig::from_json(const nlohmann::json& j, const std::string& source) {
  CUVAE_REQUIRE(j.is_object(), source << ": model config is not a JSON object");
  const std::string model = j.contains("model") && j.at("model").is_string() ? j.at("model").get<std::string>() : "";
  if (model != "resnet18") {
    if (j.contains("latent"))
      CUVAE_FAIL(source << " is a VAE checkpoint (written by train-vae); expected a classifier checkpoint written by train-classifier");
    CUVAE_FAIL(source << ": model config field 'model' is '" << model << "', expected 'resnet18'");
  }
  ResNetConfig c;
  c.channels = json_int(j, "channels", source);
  c.height = json_int(j, "height", source);
  c.width = json_int(j, "width", source);
  c.classes = json_int(j, "classes", source);
  c.base_width = json_int(j, "base_width", source);
  if (j.contains("dataset") && j.at("dataset").is_string()) c.dataset = j.at("dataset").get<std::string>();
  try {
    c.validate();
  } catch (const Error& e) {
    CUVAE_FAIL(source << ": " << e.what());
  }
  return c;
}

// ---- BasicBlock -------------------------------------------------------------------

BasicBlock::BasicBlock(ParamStore& ps, ParamStore& buffers, const std::string& name, int64_t in,
                       int64_t planes, int64_t stride)
    : conv1_(ps, name + ".conv1", in, planes, 3, stride, 1, Activation::None, false),
      bn1_(ps, buffers, name + ".bn1", planes, Activation::ReLU),
      conv2_(ps, name + ".conv2", planes, planes, 3, 1, 1, Activation::None, false),
      bn2_(ps, buffers, name + ".bn2", planes, Activation::None) {
  if (stride != 1 || in != planes) {
    ds_conv_ = std::make_unique<Conv2d>(ps, name + ".downsample.0", in, planes, 1, stride, 0,
                                        Activation::None, false);
    ds_bn_ = std::make_unique<BatchNorm2d>(ps, buffers, name + ".downsample.1", planes);
  }
}

void ResNet18::set_sync_batchnorm(const Communicator* comm) {
  bn1_.set_sync(comm);
  for (auto& b : blocks_)
    for (BatchNorm2d* bn : b->batchnorms()) bn->set_sync(comm);
  if (comm != nullptr && comm->distributed()) set_blocked_layouts(false);  // its sums read NCHW
}

void ResNet18::set_blocked_layouts(bool on) {
  conv1_.set_blocked_output(on);
  for (auto& b : blocks_) b->set_blocked(on);
}

Layout ResNet18::layer_layout(int L) {
  CUVAE_CHECK(L >= 1 && L <= 4, "ResNet18: layer must be 1..4, got " << L);
  return blocks_[static_cast<size_t>(2 * L - 1)]->output().layout();
}

std::vector<BatchNorm2d*> BasicBlock::batchnorms() {
  std::vector<BatchNorm2d*> v{&bn1_, &bn2_};
  if (ds_bn_) v.push_back(ds_bn_.get());
  return v;
}

std::vector<Conv2d*> BasicBlock::convs() {
  std::vector<Conv2d*> v{&conv1_, &conv2_};
  if (ds_conv_) v.push_back(ds_conv_.get());
  return v;
}

void BasicBlock::add_flops(StepFlops& f) const {
  f.add(conv1_.flops(), true);
  f.add(conv2_.flops(), true);
  if (ds_conv_) f.add(ds_conv_->flops(), true);
}

void BasicBlock::set_blocked(bool on) {
  for (Conv2d* c : convs()) c->set_blocked_output(on);
}

Tensor& BasicBlock::forward(Context& ctx, const Tensor& x, bool training) {
  Tensor& a1 = bn1_.forward(ctx, conv1_.forward(ctx, x), training);
  Tensor& a2 = bn2_.forward(ctx, conv2_.forward(ctx, a1), training);
  const Tensor& sc0 = ds_conv_ ? ds_bn_->forward(ctx, ds_conv_->forward(ctx, x), training) : x;
  // The elementwise add needs both branches in one layout (a plain input to a blocked block: forward_from).
  const Tensor& sc = onednn::as_layout(sc0, a2.layout(), sc_store_, sc_);
  grow_view(out_store_, out_, a2.shape(), ctx.device());
  out_.set_layout(a2.layout());
  residual_add(ctx, a2, sc, out_, true);
  return out_;
}

Tensor& BasicBlock::backward(Context& ctx, Tensor& dy, bool need_dx) {
  CUVAE_CHECK(dy.layout() == out_.layout(), "BasicBlock::backward: dy in the " << layout_name(dy.layout())
                                                << " layout, the output in " << layout_name(out_.layout()));
  grow_view(dsum_store_, dsum_, out_.shape(), ctx.device());
  dsum_.set_layout(out_.layout());
  residual_add_backward(ctx, out_, dy, dsum_, true);  // both branches receive dsum
  Tensor* dsc = &dsum_;
  if (ds_conv_) dsc = &ds_conv_->backward(ctx, ds_bn_->backward(ctx, dsum_, true), need_dx);
  Tensor& d2 = bn2_.backward(ctx, dsum_, true);
  Tensor& d1 = conv2_.backward(ctx, d2, true);
  Tensor& d0 = bn1_.backward(ctx, d1, true);
  Tensor& dx = conv1_.backward(ctx, d0, need_dx);
  if (need_dx) accumulate(ctx, dx, onednn::as_layout(*dsc, dx.layout(), dsc_store_, dsc_));
  return dx;
}

// ---- ResNet18 ---------------------------------------------------------------------

ResNet18::ResNet18(const ResNetConfig& cfg, Device device)
    : cfg_((cfg.validate(), cfg)),
      device_(device),
      conv1_(ps_, "conv1", cfg.channels, cfg.base_width, 3, 1, 1, Activation::None, false),
      bn1_(ps_, buf_, "bn1", cfg.base_width, Activation::ReLU) {
  bn_names_.push_back("bn1");
  int64_t in = cfg.base_width;
  for (int L = 1; L <= 4; ++L) {
    const int64_t planes = cfg.base_width << (L - 1);
    for (int b = 0; b < 2; ++b) {
      const std::string name = "layer" + std::to_string(L) + "." + std::to_string(b);
      const int64_t stride = (L > 1 && b == 0) ? 2 : 1;
      blocks_.push_back(std::make_unique<BasicBlock>(ps_, buf_, name, in, planes, stride));
      bn_names_.push_back(name + ".bn1");
      bn_names_.push_back(name + ".bn2");
      if (stride != 1 || in != planes) bn_names_.push_back(name + ".downsample.1");
      in = planes;
    }
  }
  fc_ = std::make_unique<Linear>(ps_, "fc", cfg.feature_dim(), cfg.classes);
  ps_.finalize(device);
  buf_.finalize(device);
  init(0);
  set_blocked_layouts(true);  // takes effect on the oneDNN backend only
}

void ResNet18::init(uint64_t seed) {
  uint64_t stream = 0x7e500000u;
  auto kaiming_fan_out = [&](Conv2d& c) {
    const ParamInfo& p = ps_.params()[static_cast<size_t>(c.weight_index())];
    const double fan_out = static_cast<double>(p.shape[0] * p.shape[2] * p.shape[3]);
    ps_.init_normal(c.weight_index(), std::sqrt(2.0 / fan_out), seed, stream++);
  };
  kaiming_fan_out(conv1_);
  bn1_.reset();
  for (auto& b : blocks_) {
    for (Conv2d* c : b->convs()) kaiming_fan_out(*c);
    for (BatchNorm2d* bn : b->batchnorms()) bn->reset();
  }
  const double bound = 1.0 / std::sqrt(static_cast<double>(cfg_.feature_dim()));
  ps_.init_uniform(ps_.find("fc.weight"), bound, seed, stream++);
  ps_.init_uniform(ps_.find("fc.bias"), bound, seed, stream++);
  num_batches_tracked_ = 0;
}

void ResNet18::ensure(int64_t n) {
  const int64_t F = cfg_.feature_dim(), K = cfg_.classes;
  if (n > cap_) {
    feat_ = Tensor({n * F}, device_);
    dfeat_ = Tensor({n * F}, device_);
    loss_ = Tensor({n}, device_);
    dlogits_ = Tensor({n * K}, device_);
    if (mean_loss_.empty()) mean_loss_ = Tensor({1}, device_);
    cap_ = n;
  }
  if (n != n_) {
    feat_view_ = Tensor::view(feat_.data(), {n, F}, device_);
    loss_view_ = Tensor::view(loss_.data(), {n}, device_);
    dlogits_view_ = Tensor::view(dlogits_.data(), {n, K}, device_);
    n_ = n;
  }
}

Tensor& ResNet18::head_forward(Context& ctx, const Tensor& a4) {
  ensure(a4.dim(0));
  global_avg_pool(ctx, onednn::as_layout(a4, Layout::Plain, a4_store_, a4_plain_), feat_view_);
  logits_ = &fc_->forward(ctx, feat_view_);
  return *logits_;
}

Tensor& ResNet18::forward(Context& ctx, const Tensor& x, bool training) {
  CUVAE_CHECK(x.ndim() == 4 && x.dim(0) > 0 && x.dim(1) == cfg_.channels && x.dim(2) == cfg_.height &&
                  x.dim(3) == cfg_.width,
              "ResNet18: input " << x.shape_str() << ", expected [n, " << cfg_.channels << ", " << cfg_.height
                                 << ", " << cfg_.width << "]");
  CUVAE_CHECK(x.device() == device_ && ctx.device() == device_,
              "ResNet18: model on " << device_name(device_) << ", input on " << device_name(x.device())
                                    << ", context on " << device_name(ctx.device()));
  const Tensor* cur = &bn1_.forward(ctx, conv1_.forward(ctx, x), training);
  for (auto& b : blocks_) cur = &b->forward(ctx, *cur, training);
  if (training) ++num_batches_tracked_;
  return head_forward(ctx, *cur);
}

Tensor& ResNet18::forward_from(Context& ctx, int from, const Tensor& A) {
  CUVAE_CHECK(from >= 1 && from <= 4, "ResNet18::forward_from: layer must be 1..4, got " << from);
  const Tensor* cur = &A;
  for (size_t i = static_cast<size_t>(2 * from); i < blocks_.size(); ++i) cur = &blocks_[i]->forward(ctx, *cur, false);
  return head_forward(ctx, *cur);
}

void ResNet18::loss(Context& ctx, const IntBuffer& labels, bool grads) {
  CUVAE_CHECK(logits_ != nullptr, "ResNet18::loss before forward");
  softmax_xent(ctx, *logits_, labels, loss_view_, &mean_loss_, grads ? &dlogits_view_ : nullptr, nullptr);
}

void ResNet18::backward(Context& ctx) {
  CUVAE_CHECK(logits_ != nullptr, "ResNet18::backward before forward");
  Tensor& dfeat = fc_->backward(ctx, dlogits_view_, true);
  Tensor& a4 = blocks_.back()->output();
  grow_view(dpool_, dpool_view_, a4.shape(), device_);
  global_avg_pool_backward(ctx, dfeat, dpool_view_);
  layer_grads_[4] = &dpool_view_;
  Tensor* d = &dpool_view_;
  if (a4.layout() != Layout::Plain) {  // back into layer4's layout
    grow_view(dpool_store_, dpool_blocked_, a4.shape(), device_);
    dpool_blocked_.set_layout(a4.layout());
    onednn::reorder(dpool_view_, dpool_blocked_);
    d = &dpool_blocked_;
  }
  for (size_t i = blocks_.size(); i-- > 0;) {
    d = &blocks_[i]->backward(ctx, *d, true);
    if (i % 2 == 0 && i > 0) layer_grads_[i / 2] = d;  // gradient w.r.t. layer (i/2)'s output
  }
  Tensor& dh = bn1_.backward(ctx, *d, true);
  conv1_.backward(ctx, dh, false);
}

StepFlops ResNet18::step_flops() const {
  StepFlops f;
  f.add(conv1_.flops(), false);
  for (const auto& b : blocks_) b->add_flops(f);
  f.add(fc_->flops(), true);
  return f;
}

namespace {
// `t` itself when plain, else its plain copy in `view` (grown from `store`).
Tensor& plain_of(Tensor& t, Tensor& store, Tensor& view) {
  if (t.layout() == Layout::Plain) return t;
  return const_cast<Tensor&>(onednn::as_layout(t, Layout::Plain, store, view));
}
}  // namespace

Tensor& ResNet18::layer_output(int L) {
  CUVAE_CHECK(L >= 1 && L <= 4, "ResNet18: layer must be 1..4, got " << L);
  return plain_of(blocks_[static_cast<size_t>(2 * L - 1)]->output(), plain_store_[0][L], plain_[0][L]);
}

Tensor& ResNet18::layer_grad(int L) {
  CUVAE_CHECK(L >= 1 && L <= 4, "ResNet18: layer must be 1..4, got " << L);
  CUVAE_CHECK(layer_grads_[L] != nullptr, "ResNet18::layer_grad before backward");
  return plain_of(*layer_grads_[L], plain_store_[1][L], plain_[1][L]);
}

std::vector<float> ResNet18::classify(Context& ctx, const Tensor& x) {
  Tensor& logits = forward(ctx, x, false);
  const int64_t n = logits.dim(0), k = logits.dim(1);
  const std::vector<float> l = logits.to_vector();
  std::vector<float> p(l.size());
  for (int64_t i = 0; i < n; ++i) {
    const float* r = l.data() + i * k;
    const double m = *std::max_element(r, r + k);
    double s = 0;
    for (int64_t j = 0; j < k; ++j) s += std::exp(r[j] - m);
    for (int64_t j = 0; j < k; ++j) p[static_cast<size_t>(i * k + j)] = static_cast<float>(std::exp(r[j] - m) / s);
  }
  return p;
}

}  // namespace cuvae
