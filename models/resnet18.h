// ResNet-18 (He et al., "Deep Residual Learning for Image Recognition", CVPR 2016, Table 1) with
// torchvision's names and layouts and the small-image stem (conv1 3×3 stride 1, no max-pool).
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/buffer.h"
#include "core/context.h"
#include "layers/batchnorm.h"
#include "layers/conv2d.h"
#include "layers/flops.h"
#include "layers/linear.h"
#include "layers/param.h"

namespace cuvae {

/// Shape of a ResNet18. base_width 64 is the standard network (64, 128, 256, 512 channels in
/// layer1..4); narrower widths scale every layer and keep CPU runs practical.
struct ResNetConfig {
  int64_t channels = 1;      ///< input channels C
  int64_t height = 28;       ///< input height H
  int64_t width = 28;        ///< input width W
  int64_t classes = 10;      ///< output classes K
  int64_t base_width = 64;   ///< channels of conv1 and layer1 (64 = torchvision's resnet18)
  std::string dataset;       ///< the data set it was trained on (informational)

  /// Channels of the penultimate (pooled) features: 8·base_width (512 for the standard net).
  int64_t feature_dim() const { return 8 * base_width; }
  /// Throws cuvae::Error naming the field when a value is out of range.
  void validate() const;
  /// {"model": "resnet18", "channels", "height", "width", "classes", "base_width", "dataset"}.
  nlohmann::json to_json() const;
  /// Reads to_json()'s fields; throws cuvae::Error naming `source` and the field when one is
  /// missing or of the wrong type, or when "model" is not "resnet18".
  static ResNetConfig from_json(const nlohmann::json& j, const std::string& source);
};

/// torchvision's BasicBlock: out = ReLU(bn2(conv2(ReLU(bn1(conv1(x))))) + shortcut(x)), with
/// shortcut = downsample (1×1 conv stride s + BatchNorm) when the stride or width changes, else x.
class BasicBlock {
 public:
  BasicBlock(ParamStore& ps, ParamStore& buffers, const std::string& name, int64_t in,
             int64_t planes, int64_t stride);
  /// x [n, in, h, w] → output [n, planes, h/stride, w/stride] (the block's own buffer).
  Tensor& forward(Context& ctx, const Tensor& x, bool training);
  /// dy = ∂L/∂output (left unchanged) → parameter gradients (written) and, if `need_dx`,
  /// ∂L/∂x (returned, a buffer of the block's first conv). After an evaluation-mode forward the
  /// batch norms back-propagate through their running statistics and parameter gradients are
  /// not meaningful.
  Tensor& backward(Context& ctx, Tensor& dy, bool need_dx);
  Tensor& output() { return out_; }
  /// Every BatchNorm2d of the block (bn1, bn2, downsample.1 if present), in name order.
  std::vector<BatchNorm2d*> batchnorms();
  /// Every Conv2d of the block (conv1, conv2, downsample.0 if present).
  std::vector<Conv2d*> convs();
  /// Adds the block's convolutions, at the shapes of its last forward, to `f` (StepFlops).
  void add_flops(StepFlops& f) const;
  /// Whether its convolutions leave their outputs in oneDNN's blocked layout (Conv2d::set_blocked_output).
  void set_blocked(bool on);

 private:
  Conv2d conv1_;
  BatchNorm2d bn1_;
  Conv2d conv2_;
  BatchNorm2d bn2_;
  std::unique_ptr<Conv2d> ds_conv_;
  std::unique_ptr<BatchNorm2d> ds_bn_;
  Tensor out_store_, out_, dsum_store_, dsum_;
  Tensor sc_store_, sc_, dsc_store_, dsc_;  // the shortcut (and its gradient) in the other branch's layout
};

/// ResNet-18 for small images: conv1 (3×3, s1, p1, no bias) → bn1 → ReLU → layer1 (2 blocks,
/// w) → layer2 (2w, s2) → layer3 (4w, s2) → layer4 (8w, s2) → global average pool → fc
/// Linear(8w, K) → logits. Parameter names as torchvision's resnet18 (`conv1.weight`,
/// `bn1.running_mean`, `layer2.0.downsample.0.weight`, `fc.bias`, …); a checkpoint loads into
/// torchvision.models.resnet18(num_classes=K) after replacing conv1 with Conv2d(C, 64, 3, 1, 1,
/// bias=False) and maxpool with Identity. Works on the CPU or a GPU, chosen at construction.
class ResNet18 {
 public:
  ResNet18(const ResNetConfig& cfg, Device device);
  ResNet18(const ResNet18&) = delete;
  ResNet18& operator=(const ResNet18&) = delete;

  const ResNetConfig& config() const { return cfg_; }
  /// Trainable parameters (conv and fc weights, BatchNorm weight/bias) in one flat buffer.
  ParamStore& params() { return ps_; }
  /// BatchNorm running_mean / running_var, in a second flat buffer (not trained).
  ParamStore& buffers() { return buf_; }
  /// Training-mode forward passes so far (each BatchNorm's num_batches_tracked).
  int64_t num_batches_tracked() const { return num_batches_tracked_; }
  void set_num_batches_tracked(int64_t v) { num_batches_tracked_ = v; }
  /// On the oneDNN backend the activations stay in oneDNN's blocked layout (nChw16c on AVX-512)
  /// from conv1 to layer4: convolutions, batch norms, ReLUs and residual adds read and write it,
  /// and only pooling to the head, layer_output() and layer_grad() see plain NCHW (reordered).
  /// On by default; `false` keeps every activation NCHW (as the reference and CUDA paths do).
  void set_blocked_layouts(bool on);
  /// The layout layer L's output (1..4) was written in by the last forward (Layout::Plain on the
  /// reference and CUDA backends).
  Layout layer_layout(int L);
  /// Synchronised batch norm over `comm`'s ranks in every BatchNorm2d (BatchNorm2d::set_sync);
  /// nullptr: each rank's own batch statistics.
  void set_sync_batchnorm(const Communicator* comm);
  /// FLOPs of one training step at the batch of the last forward: every convolution and the
  /// fc layer, forward and backward (StepFlops; conv1 computes no data gradient). All zero before
  /// the first forward. For width 64 at 28×28: 0.912 GFLOP per image forward, 2.73 per step.
  StepFlops step_flops() const;
  /// Names of the BatchNorm2d layers ("bn1", "layer1.0.bn1", …): each has a num_batches_tracked.
  const std::vector<std::string>& batchnorm_names() const { return bn_names_; }
  Device device() const { return device_; }

  /// torchvision's initialisation: conv weights kaiming_normal_(fan_out, relu), BatchNorm
  /// weight 1 / bias 0 / running stats 0 and 1, fc as nn.Linear's default; Philox under `seed`.
  void init(uint64_t seed);

  /// x [N, C, H, W] in [0, 1] → logits() [N, K]. `training` uses batch statistics and updates
  /// the running ones (and num_batches_tracked). Throws cuvae::Error on a bad shape or device.
  Tensor& forward(Context& ctx, const Tensor& x, bool training);
  /// Class probabilities [N, K] (the softmax of the logits of an evaluation-mode forward) of
  /// images x [N, C, H, W] in [0, 1], on the host. Throws cuvae::Error as forward() does.
  std::vector<float> classify(Context& ctx, const Tensor& x);
  /// Runs the layers after layer `from` (1..4) in evaluation mode on A, an activation shaped as
  /// layer `from`'s output, and returns the logits (for checks of Grad-CAM's gradients).
  Tensor& forward_from(Context& ctx, int from, const Tensor& A);
  /// Fused softmax cross-entropy of the last forward against labels (N int32 class indices in a
  /// typed buffer; checked: on the model's device, at least N values): fills loss() [N] (nats per
  /// image), mean_loss() [1] and, with `grads`, dlogits(). Throws cuvae::Error before forward.
  void loss(Context& ctx, const IntBuffer& labels, bool grads);
  /// Back-propagates dlogits() (set by loss() or written by the caller, e.g. a one-hot class
  /// score for Grad-CAM) through the network: parameter gradients in params().flat_grads()
  /// (meaningful after a training-mode forward) and layer_grad(1..4).
  void backward(Context& ctx);

  Tensor& logits() { return *logits_; }
  Tensor& dlogits() { return dlogits_view_; }
  Tensor& loss_value() { return loss_view_; }
  Tensor& mean_loss() { return mean_loss_; }
  /// Penultimate features [N, 8w] (the global average pool output) of the last forward.
  Tensor& features() { return feat_view_; }
  /// Output of layer L (1..4) of the last forward [N, 2^(L−1)·w, h_L, w_L], plain NCHW.
  Tensor& layer_output(int L);
  /// ∂(Σ dlogits·logits)/∂ layer_output(L) from the last backward().
  Tensor& layer_grad(int L);

 private:
  ResNetConfig cfg_;
  Device device_;
  ParamStore ps_, buf_;
  Conv2d conv1_;
  BatchNorm2d bn1_;
  std::vector<std::unique_ptr<BasicBlock>> blocks_;  // layer1.0, layer1.1, …, layer4.1
  std::unique_ptr<Linear> fc_;
  std::vector<std::string> bn_names_;
  int64_t num_batches_tracked_ = 0;
  int64_t cap_ = 0, n_ = 0;
  Tensor feat_, dfeat_, loss_, mean_loss_, dlogits_, dpool_;
  Tensor feat_view_, dfeat_view_, loss_view_, dlogits_view_, dpool_view_;
  Tensor* logits_ = nullptr;
  Tensor* layer_grads_[5] = {nullptr, nullptr, nullptr, nullptr, nullptr};
  Tensor a4_store_, a4_plain_, dpool_store_, dpool_blocked_;  // the head's plain view of layer4, and back
  Tensor plain_store_[2][5], plain_[2][5];  // plain copies of layer outputs [0] and gradients [1]
  void ensure(int64_t n);
  Tensor& head_forward(Context& ctx, const Tensor& a4);
};

}  // namespace cuvae
