// BatchNorm2d (Ioffe & Szegedy, "Batch Normalization: Accelerating Deep Network Training by
// Reducing Internal Covariate Shift", ICML 2015, Algorithm 1 and 2) as PyTorch's nn.BatchNorm2d:
// batch statistics and a running-statistics update in training, running statistics in
// evaluation. CPU: oneDNN's batch normalization (Context::use_onednn()) or the reference loops;
// cuDNN's spatial batch norm on the GPU.
#pragma once

#include <cstdint>
#include <memory>
#include <vector>
#include <string>

#include "core/distributed.h"
#include "core/context.h"
#include "kernels/activation.h"
#include "layers/onednn_batchnorm.h"
#include "layers/param.h"

namespace cuvae {

/// CPU reference, training mode. x [n, c, hw] → y [n, c, hw] with, per channel k over the
/// m = n·hw values (statistics in double):
///   mean_k = (1/m) Σ x,  var_k = (1/m) Σ (x − mean_k)²  (biased),
///   y = gamma_k · (x − mean_k) / sqrt(var_k + eps) + beta_k;
/// save_mean[k] = mean_k, save_invstd[k] = 1/sqrt(var_k + eps) (kept for the backward pass);
/// when running_mean/running_var are non-null they are updated in place as PyTorch does:
///   running_mean = (1 − momentum)·running_mean + momentum·mean_k,
///   running_var  = (1 − momentum)·running_var  + momentum·var_k·m/(m − 1)  (unbiased).
/// Throws cuvae::Error on a non-positive size or m < 2 (PyTorch's "Expected more than 1 value
/// per channel when training").
template <typename T>
void batchnorm_forward_train_cpu(const T* x, const T* gamma, const T* beta, int64_t n, int64_t c,
                                 int64_t hw, double eps, double momentum, T* y, T* save_mean,
                                 T* save_invstd, T* running_mean, T* running_var);

/// CPU reference, evaluation mode: y = gamma·(x − running_mean)/sqrt(running_var + eps) + beta.
/// Throws cuvae::Error on a non-positive size.
template <typename T>
void batchnorm_forward_eval_cpu(const T* x, const T* gamma, const T* beta, const T* running_mean,
                                const T* running_var, int64_t n, int64_t c, int64_t hw, double eps,
                                T* y);

/// CPU reference backward of the training-mode forward (Algorithm 1's gradients), from the
/// saved statistics: with xhat = (x − mean)·invstd,
///   dbeta_k = Σ dy,  dgamma_k = Σ dy·xhat,
///   dx = gamma_k·invstd_k/m · (m·dy − dbeta_k − xhat·dgamma_k)  (if dx is non-null).
/// dgamma and dbeta are written, not accumulated. Throws cuvae::Error on a non-positive size.
template <typename T>
void batchnorm_backward_cpu(const T* x, const T* dy, const T* gamma, const T* save_mean,
                            const T* save_invstd, int64_t n, int64_t c, int64_t hw, T* dx,
                            T* dgamma, T* dbeta);

/// nn.BatchNorm2d(channels, eps=1e-5, momentum=0.1) + activation. Trainable `<name>.weight`
/// (gamma, init 1) and `<name>.bias` (beta, init 0) [channels] live in `ps`; the buffers
/// `<name>.running_mean` (init 0) and `<name>.running_var` (init 1) [channels] live in `buffers`
/// (a second ParamStore whose gradients are unused). num_batches_tracked is counted by the model.
/// Buffers grow to the largest batch seen and are reused: a steady-state step allocates nothing.
class BatchNorm2d {
 public:
  /// Declares the four [channels] tensors. Throws cuvae::Error on channels <= 0, eps <= 0 or
  /// momentum outside [0, 1].
  BatchNorm2d(ParamStore& ps, ParamStore& buffers, const std::string& name, int64_t channels,
              Activation act = Activation::None, double eps = 1e-5, double momentum = 0.1);
  ~BatchNorm2d();
  /// Movable (the moved-from layer must not be used again), not copyable.
  BatchNorm2d(BatchNorm2d&&) noexcept;
  BatchNorm2d(const BatchNorm2d&) = delete;
  BatchNorm2d& operator=(const BatchNorm2d&) = delete;
  /// Sets weight = 1, bias = 0, running_mean = 0, running_var = 1 (PyTorch's reset_parameters).
  /// Both stores must be finalized.
  void reset();
  /// y = act(bn(x)) for x [n, channels, h, w]; `training` uses batch statistics and updates the
  /// running ones, otherwise the running statistics are used. x must stay unchanged until
  /// backward(). Returns the layer's own output buffer. Throws cuvae::Error on a bad shape or
  /// device, or n·h·w < 2 in training.
  Tensor& forward(Context& ctx, const Tensor& x, bool training);
  /// dy = ∂L/∂y (overwritten with ∂L/∂(pre-activation)) → weight/bias gradients (written) and,
  /// if `need_dx`, dx [n, channels, h, w] in the layer's own buffer (returned; else an empty
  /// view). After a training-mode forward these are batchnorm_backward_cpu's gradients (through
  /// the batch statistics). After an evaluation-mode forward (e.g. Grad-CAM through a network
  /// in eval mode) the normalisation is a fixed affine map: with invstd = 1/sqrt(running_var +
  /// eps), dx = gamma·invstd·dy, dgamma = Σ dy·(x − running_mean)·invstd, dbeta = Σ dy.
  /// Throws cuvae::Error before any forward() or on a dy of the wrong size or device.
  Tensor& backward(Context& ctx, Tensor& dy, bool need_dx);
  /// Synchronised batch norm (Ioffe & Szegedy's statistics over the global batch, as PyTorch's
  /// SyncBatchNorm): with `comm` over several ranks, a training-mode forward on the CPU normalises
  /// with the mean and variance of every rank's batch (one allreduce of the per-channel sums), and
  /// backward computes dx from the per-channel sums of dy and dy·xhat over every rank (another);
  /// dgamma and dbeta stay this rank's, for the trainer's gradient mean. Every rank must pass
  /// batches of one size. nullptr (the default) or one rank: each rank's own batch statistics.
  void set_sync(const Communicator* comm) { sync_ = comm; }
  /// The output of the last forward().
  Tensor& output() { return y_; }
  int64_t channels() const { return c_; }

 private:
  ParamStore& ps_;
  ParamStore& buf_;
  int w_, b_, rm_, rv_;
  int64_t c_;
  Activation act_;
  double eps_, momentum_;
  const float* x_ = nullptr;
  bool trained_fwd_ = false;
  bool onednn_fwd_ = false;  // the last forward ran through oneDNN (its backward does too)
  const Communicator* sync_ = nullptr;
  bool synced_fwd_ = false;  // the last forward used the global batch statistics
  std::vector<double> sync_sums_;  // [2·channels] per-channel sums reduced over the ranks (reused)
  void forward_sync(const Tensor& x);
  /// Backward after an evaluation-mode forward on blocked tensors: the reference on plain copies.
  void backward_eval_blocked(const Tensor& dy, bool need_dx);
  void backward_sync(const Tensor& dy, float* dx);
  Tensor y_store_, dx_store_, save_mean_, save_invstd_, save_var_;
  Layout x_layout_ = Layout::Plain;  // of the last forward's x (and y, dy, dx)
  Tensor plain_store_[3], plain_[3];  // plain copies for backward_eval_blocked
  OnednnBatchNorm onednn_;
  Tensor y_, dx_;
  Tensor consts_, scratch_;  // CUDA evaluation-mode backward: [ones(c), zeros(c)], dy·xhat
  struct Cudnn;  // cuDNN descriptors (x/y, the derived per-channel one, a product), CUDA builds
  std::unique_ptr<Cudnn> cudnn_;  // created by the first CUDA forward
  [[maybe_unused]] int64_t desc_n_ = 0, desc_h_ = 0, desc_w_ = 0;  // the shape cuDNN's descriptors were set for
  void forward_cuda(Context& ctx, const Tensor& x, bool training);
  void forward_onednn(const Tensor& x, bool training);  // also sets onednn_fwd_
  void backward_cuda(Context& ctx, const Tensor& dy);
  void backward_eval_cuda(Context& ctx, const Tensor& dy);
};

}  // namespace cuvae
