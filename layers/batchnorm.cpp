#include "layers/batchnorm.h"

#include <algorithm>
#include <climits>
#include <cmath>
#include <cstdio>
#include <vector>

#include "core/check.h"
#include "kernels/bias.h"
#include "kernels/dispatch_util.h"
#include "layers/onednn_util.h"

#ifdef CUVAE_HAS_CUDA
#include "core/cuda_check.h"
#endif

namespace cuvae {

// ---- CPU reference -----------------------------------------------------------------------------

namespace {
void check_sizes(int64_t n, int64_t c, int64_t hw, const char* op) {
  CUVAE_CHECK(n > 0 && c > 0 && hw > 0,
              op << ": non-positive size n=" << n << " c=" << c << " hw=" << hw);
}

/// y[:, k] = g·(x[:, k] − mean)·invstd + b for channel k of NCHW x [n, c, hw], in double.
template <typename T>
void normalize_channel(const T* x, T* y, int64_t n, int64_t c, int64_t hw, int64_t k, double mean, double invstd,
                       double g, double b) {
  for (int64_t i = 0; i < n; ++i) {
    const T* xs = x + (i * c + k) * hw;
    T* ys = y + (i * c + k) * hw;
    for (int64_t j = 0; j < hw; ++j) ys[j] = static_cast<T>(g * (static_cast<double>(xs[j]) - mean) * invstd + b);
  }
}
}  // namespace

template <typename T>
void batchnorm_forward_train_cpu(const T* x, const T* gamma, const T* beta, int64_t n, int64_t c,
                                 int64_t hw, double eps, double momentum, T* y, T* save_mean,
                                 T* save_invstd, T* running_mean, T* running_var) {
  check_sizes(n, c, hw, "batchnorm_forward_train");
  const int64_t m = n * hw;
  CUVAE_CHECK(m >= 2, "batchnorm_forward_train: expected more than 1 value per channel when "
                      "training, got n=" << n << " hw=" << hw);
  for (int64_t k = 0; k < c; ++k) {
    double sum = 0.0;
    for (int64_t i = 0; i < n; ++i) {
      const T* xs = x + (i * c + k) * hw;
      for (int64_t j = 0; j < hw; ++j) sum += static_cast<double>(xs[j]);
    }
    const double mean = sum / static_cast<double>(m);
    double sq = 0.0;
    for (int64_t i = 0; i < n; ++i) {
      const T* xs = x + (i * c + k) * hw;
      for (int64_t j = 0; j < hw; ++j) {
        const double d = static_cast<double>(xs[j]) - mean;
        sq += d * d;
      }
    }
    const double var = sq / static_cast<double>(m);
    const double invstd = 1.0 / std::sqrt(var + eps);
    normalize_channel(x, y, n, c, hw, k, mean, invstd, static_cast<double>(gamma[k]), static_cast<double>(beta[k]));
    if (save_mean) save_mean[k] = static_cast<T>(mean);
    if (save_invstd) save_invstd[k] = static_cast<T>(invstd);
    if (running_mean)
      running_mean[k] = static_cast<T>((1.0 - momentum) * static_cast<double>(running_mean[k]) +
                                       momentum * mean);
    if (running_var) {
      const double unbiased = var * static_cast<double>(m) / static_cast<double>(m - 1);
      running_var[k] = static_cast<T>((1.0 - momentum) * static_cast<double>(running_var[k]) +
                                      momentum * unbiased);
    }
  }
}

template <typename T>
void batchnorm_forward_eval_cpu(const T* x, const T* gamma, const T* beta, const T* running_mean,
                                const T* running_var, int64_t n, int64_t c, int64_t hw, double eps,
                                T* y) {
  check_sizes(n, c, hw, "batchnorm_forward_eval");
  for (int64_t k = 0; k < c; ++k) {
    const double mean = static_cast<double>(running_mean[k]);
    const double invstd = 1.0 / std::sqrt(static_cast<double>(running_var[k]) + eps);
    normalize_channel(x, y, n, c, hw, k, mean, invstd, static_cast<double>(gamma[k]), static_cast<double>(beta[k]));
  }
}

template <typename T>
void batchnorm_backward_cpu(const T* x, const T* dy, const T* gamma, const T* save_mean,
                            const T* save_invstd, int64_t n, int64_t c, int64_t hw, T* dx,
                            T* dgamma, T* dbeta) {
  check_sizes(n, c, hw, "batchnorm_backward");
  const double m = static_cast<double>(n * hw);
  for (int64_t k = 0; k < c; ++k) {
    const double mean = static_cast<double>(save_mean[k]);
    const double invstd = static_cast<double>(save_invstd[k]);
    double sdy = 0.0, sdy_xhat = 0.0;
    for (int64_t i = 0; i < n; ++i) {
      const T* xs = x + (i * c + k) * hw;
      const T* ds = dy + (i * c + k) * hw;
      for (int64_t j = 0; j < hw; ++j) {
        const double d = static_cast<double>(ds[j]);
        sdy += d;
        sdy_xhat += d * (static_cast<double>(xs[j]) - mean) * invstd;
      }
    }
    dbeta[k] = static_cast<T>(sdy);
    dgamma[k] = static_cast<T>(sdy_xhat);
    if (!dx) continue;
    const double scale = static_cast<double>(gamma[k]) * invstd / m;
    for (int64_t i = 0; i < n; ++i) {
      const T* xs = x + (i * c + k) * hw;
      const T* ds = dy + (i * c + k) * hw;
      T* dxs = dx + (i * c + k) * hw;
      for (int64_t j = 0; j < hw; ++j) {
        const double xhat = (static_cast<double>(xs[j]) - mean) * invstd;
        dxs[j] = static_cast<T>(scale * (m * static_cast<double>(ds[j]) - sdy - xhat * sdy_xhat));
      }
    }
  }
}

template void batchnorm_forward_train_cpu<float>(const float*, const float*, const float*, int64_t,
                                                 int64_t, int64_t, double, double, float*, float*,
                                                 float*, float*, float*);
template void batchnorm_forward_train_cpu<double>(const double*, const double*, const double*,
                                                  int64_t, int64_t, int64_t, double, double,
                                                  double*, double*, double*, double*, double*);
template void batchnorm_forward_eval_cpu<float>(const float*, const float*, const float*,
                                                const float*, const float*, int64_t, int64_t,
                                                int64_t, double, float*);
template void batchnorm_forward_eval_cpu<double>(const double*, const double*, const double*,
                                                 const double*, const double*, int64_t, int64_t,
                                                 int64_t, double, double*);
template void batchnorm_backward_cpu<float>(const float*, const float*, const float*, const float*,
                                            const float*, int64_t, int64_t, int64_t, float*,
                                            float*, float*);
template void batchnorm_backward_cpu<double>(const double*, const double*, const double*,
                                             const double*, const double*, int64_t, int64_t,
                                             int64_t, double*, double*, double*);

// ---- the layer ---------------------------------------------------------------------------------

namespace {
// Backward of the evaluation-mode forward, an affine map per channel: with
// invstd = 1/sqrt(running_var + eps), dx = gamma·invstd·dy (if dx is non-null),
// dgamma = Σ dy·(x − running_mean)·invstd, dbeta = Σ dy (written; sums in double).
template <typename T>
void backward_eval_cpu(const T* x, const T* dy, const T* gamma, const T* running_mean,
                       const T* running_var, int64_t n, int64_t c, int64_t hw, double eps, T* dx,
                       T* dgamma, T* dbeta) {
  for (int64_t k = 0; k < c; ++k) {
    const double mean = static_cast<double>(running_mean[k]);
    const double invstd = 1.0 / std::sqrt(static_cast<double>(running_var[k]) + eps);
    const double scale = static_cast<double>(gamma[k]) * invstd;
    double sdy = 0.0, sdy_xhat = 0.0;
    for (int64_t i = 0; i < n; ++i) {
      const int64_t off = (i * c + k) * hw;
      for (int64_t j = 0; j < hw; ++j) {
        const double d = static_cast<double>(dy[off + j]);
        sdy += d;
        sdy_xhat += d * (static_cast<double>(x[off + j]) - mean) * invstd;
        if (dx) dx[off + j] = static_cast<T>(scale * d);
      }
    }
    dgamma[k] = static_cast<T>(sdy_xhat);
    dbeta[k] = static_cast<T>(sdy);
  }
}
// Fills every element of `t` (CPU or CUDA) with `v`.
void fill(Tensor& t, float v) {
  const std::vector<float> host(static_cast<size_t>(t.numel()), v);
  memcpy_any(t.data(), t.device(), host.data(), Device::CPU, t.bytes());
}
}  // namespace

BatchNorm2d::BatchNorm2d(ParamStore& ps, ParamStore& buffers, const std::string& name,
                         int64_t channels, Activation act, double eps, double momentum)
    : ps_(ps), buf_(buffers), c_(channels), act_(act), eps_(eps), momentum_(momentum) {
  CUVAE_CHECK(channels > 0, "BatchNorm2d '" << name << "': channels must be positive, got "
                                            << channels);
  CUVAE_CHECK(eps > 0.0, "BatchNorm2d '" << name << "': eps must be positive, got " << eps);
  CUVAE_CHECK(momentum >= 0.0 && momentum <= 1.0,
              "BatchNorm2d '" << name << "': momentum must be in [0, 1], got " << momentum);
  w_ = ps.add(name + ".weight", {channels}, 1);
  b_ = ps.add(name + ".bias", {channels}, 1);
  rm_ = buffers.add(name + ".running_mean", {channels}, 1);
  rv_ = buffers.add(name + ".running_var", {channels}, 1);
}

void BatchNorm2d::reset() {
  CUVAE_CHECK(ps_.finalized() && buf_.finalized(),
              "BatchNorm2d::reset: the parameter and buffer stores must be finalized first");
  fill(ps_.value(w_), 1.0f);
  fill(ps_.value(b_), 0.0f);
  fill(buf_.value(rm_), 0.0f);
  fill(buf_.value(rv_), 1.0f);
}

Tensor& BatchNorm2d::forward(Context& ctx, const Tensor& x, bool training) {
  CUVAE_CHECK(x.ndim() == 4 && x.dim(0) > 0 && x.dim(1) == c_ && x.dim(2) > 0 && x.dim(3) > 0,
              "BatchNorm2d: input " << x.shape_str() << ", expected [n, " << c_ << ", h, w]");
  CUVAE_CHECK(x.device() == ctx.device(), "BatchNorm2d: input on " << device_name(x.device())
                                              << ", context on " << device_name(ctx.device()));
  CUVAE_CHECK(ps_.finalized() && buf_.finalized(),
              "BatchNorm2d: the parameter and buffer stores must be finalized before forward");
  CUVAE_CHECK(ps_.value(w_).device() == ctx.device() && buf_.value(rm_).device() == ctx.device(),
              "BatchNorm2d: parameters on " << device_name(ps_.value(w_).device())
                                            << ", buffers on " << device_name(buf_.value(rm_).device())
                                            << ", context on " << device_name(ctx.device()));
  const int64_t n = x.dim(0), h = x.dim(2), w = x.dim(3), hw = h * w;
  CUVAE_CHECK(!training || n * hw >= 2,
              "BatchNorm2d: expected more than 1 value per channel when training, got input "
                  << x.shape_str());
  CUVAE_CHECK(x.layout() == Layout::Plain || ctx.use_onednn(),
              "BatchNorm2d: input in oneDNN's " << layout_name(x.layout()) << " layout on a backend without oneDNN");
  trained_fwd_ = false;
  onednn_fwd_ = false;
  synced_fwd_ = false;
  x_ = nullptr;
  x_layout_ = x.layout();
  grow_view(y_store_, y_, {n, c_, h, w}, ctx.device());
  if (training && sync_ != nullptr && sync_->distributed()) {
    CUVAE_REQUIRE(x.layout() == Layout::Plain, "synchronised batch norm needs plain NCHW input");
    CUVAE_REQUIRE(ctx.device() == Device::CPU, "synchronised batch norm runs on the CPU only in this build");
    forward_sync(x);
    if (act_ != Activation::None) activation_forward(ctx, act_, y_, y_);
    x_ = x.data();
    trained_fwd_ = true;
    synced_fwd_ = true;
    return y_;
  }
  detail::dispatch(
      ctx, "BatchNorm2d",
      [&] {
        if (training) {
          grow_to(save_mean_, c_, Device::CPU);
          grow_to(save_invstd_, c_, Device::CPU);
          batchnorm_forward_train_cpu<float>(x.data(), ps_.value(w_).data(), ps_.value(b_).data(), n, c_, hw, eps_,
                                             momentum_, y_.data(), save_mean_.data(), save_invstd_.data(),
                                             buf_.value(rm_).data(), buf_.value(rv_).data());
        } else {
          batchnorm_forward_eval_cpu<float>(x.data(), ps_.value(w_).data(), ps_.value(b_).data(),
                                            buf_.value(rm_).data(), buf_.value(rv_).data(), n, c_, hw, eps_,
                                            y_.data());
        }
      },
      [&] { forward_onednn(x, training); }, [&] { forward_cuda(ctx, x, training); });
  if (act_ != Activation::None) activation_forward(ctx, act_, y_, y_);
  x_ = x.data();
  trained_fwd_ = training;
  return y_;
}

void BatchNorm2d::forward_sync(const Tensor& x) {
  const int64_t n = x.dim(0), hw = x.dim(2) * x.dim(3);
  const float* xp = x.data();
  grow_to(save_mean_, c_, Device::CPU);
  grow_to(save_invstd_, c_, Device::CPU);
  // Per channel: Σx and Σx² over this rank's batch, then over every rank's (in double).
  std::vector<double>& sums = sync_sums_;
  sums.assign(static_cast<size_t>(2 * c_), 0.0);  // allocates on the first step only
  for (int64_t k = 0; k < c_; ++k) {
    double s = 0.0, s2 = 0.0;
    for (int64_t i = 0; i < n; ++i) {
      const float* xs = xp + (i * c_ + k) * hw;
      for (int64_t j = 0; j < hw; ++j) {
        const double v = xs[j];
        s += v;
        s2 += v * v;
      }
    }
    sums[static_cast<size_t>(k)] = s;
    sums[static_cast<size_t>(c_ + k)] = s2;
  }
  sync_->allreduce_sum(sums.data(), 2 * c_);
  const double m = static_cast<double>(n * hw * sync_->size());
  float* rm = buf_.value(rm_).data();
  float* rv = buf_.value(rv_).data();
  const float* gamma = ps_.value(w_).data();
  const float* beta = ps_.value(b_).data();
  for (int64_t k = 0; k < c_; ++k) {
    const double mean = sums[static_cast<size_t>(k)] / m;
    const double var = std::max(0.0, sums[static_cast<size_t>(c_ + k)] / m - mean * mean);
    const double invstd = 1.0 / std::sqrt(var + eps_);
    normalize_channel(xp, y_.data(), n, c_, hw, k, mean, invstd, static_cast<double>(gamma[k]),
                      static_cast<double>(beta[k]));
    save_mean_.data()[k] = static_cast<float>(mean);
    save_invstd_.data()[k] = static_cast<float>(invstd);
    rm[k] = static_cast<float>((1.0 - momentum_) * rm[k] + momentum_ * mean);
    rv[k] = static_cast<float>((1.0 - momentum_) * rv[k] + momentum_ * var * m / (m - 1.0));
  }
}

void BatchNorm2d::backward_sync(const Tensor& dy, float* dx) {
  const int64_t n = y_.dim(0), hw = y_.dim(2) * y_.dim(3);
  const float* dyp = dy.data();
  // Per channel: Σdy and Σdy·xhat over this rank (its dbeta, dgamma), then over every rank (for dx).
  std::vector<double>& sums = sync_sums_;
  sums.assign(static_cast<size_t>(2 * c_), 0.0);
  for (int64_t k = 0; k < c_; ++k) {
    const double mean = save_mean_.data()[k], invstd = save_invstd_.data()[k];
    double sdy = 0.0, sdy_xhat = 0.0;
    for (int64_t i = 0; i < n; ++i) {
      const float* xs = x_ + (i * c_ + k) * hw;
      const float* ds = dyp + (i * c_ + k) * hw;
      for (int64_t j = 0; j < hw; ++j) {
        const double d = ds[j];
        sdy += d;
        sdy_xhat += d * (static_cast<double>(xs[j]) - mean) * invstd;
      }
    }
    ps_.grad(b_).data()[k] = static_cast<float>(sdy);
    ps_.grad(w_).data()[k] = static_cast<float>(sdy_xhat);
    sums[static_cast<size_t>(k)] = sdy;
    sums[static_cast<size_t>(c_ + k)] = sdy_xhat;
  }
  sync_->allreduce_sum(sums.data(), 2 * c_);
  if (dx == nullptr) return;
  const double m = static_cast<double>(n * hw * sync_->size());
  const float* gamma = ps_.value(w_).data();
  for (int64_t k = 0; k < c_; ++k) {
    const double mean = save_mean_.data()[k], invstd = save_invstd_.data()[k];
    const double sdy = sums[static_cast<size_t>(k)], sdy_xhat = sums[static_cast<size_t>(c_ + k)];
    const double scale = static_cast<double>(gamma[k]) * invstd / m;
    for (int64_t i = 0; i < n; ++i) {
      const float* xs = x_ + (i * c_ + k) * hw;
      const float* ds = dyp + (i * c_ + k) * hw;
      float* dxs = dx + (i * c_ + k) * hw;
      for (int64_t j = 0; j < hw; ++j) {
        const double xhat = (static_cast<double>(xs[j]) - mean) * invstd;
        dxs[j] = static_cast<float>(scale * (m * static_cast<double>(ds[j]) - sdy - xhat * sdy_xhat));
      }
    }
  }
}

void BatchNorm2d::forward_onednn(const Tensor& x, bool training) {
  const int64_t n = x.dim(0), h = x.dim(2), w = x.dim(3), hw = h * w;
  onednn_.set_layout(x.layout());
  y_.set_layout(x.layout());  // y in x's layout
  float* rm = buf_.value(rm_).data();
  float* rv = buf_.value(rv_).data();
  if (training) {
    grow_to(save_mean_, c_, Device::CPU);
    grow_to(save_invstd_, c_, Device::CPU);
    grow_to(save_var_, c_, Device::CPU);
    onednn_.forward_train(n, c_, h, w, eps_, x.data(), ps_.value(w_).data(), ps_.value(b_).data(), y_.data(),
                          save_mean_.data(), save_var_.data());
    // PyTorch's running statistics: the momentum average of the mean and of the unbiased variance.
    const double m = static_cast<double>(n * hw), unbias = m / (m - 1.0);
    for (int64_t k = 0; k < c_; ++k) {
      const double mean = save_mean_.data()[k], var = save_var_.data()[k];
      rm[k] = static_cast<float>((1.0 - momentum_) * rm[k] + momentum_ * mean);
      rv[k] = static_cast<float>((1.0 - momentum_) * rv[k] + momentum_ * var * unbias);
      save_invstd_.data()[k] = static_cast<float>(1.0 / std::sqrt(var + eps_));
    }
  } else {
    onednn_.forward_eval(n, c_, h, w, eps_, x.data(), ps_.value(w_).data(), ps_.value(b_).data(), rm, rv, y_.data());
  }
  onednn_fwd_ = true;
}

void BatchNorm2d::backward_eval_blocked(const Tensor& dy, bool need_dx) {
  const int64_t n = y_.dim(0), h = y_.dim(2), w = y_.dim(3);
  Tensor xb = Tensor::view(const_cast<float*>(x_), {n, c_, h, w}, Device::CPU);
  xb.set_layout(x_layout_);
  const Tensor& xp = onednn::as_layout(xb, Layout::Plain, plain_store_[0], plain_[0]);
  const Tensor& dyp = onednn::as_layout(dy, Layout::Plain, plain_store_[1], plain_[1]);
  grow_view(plain_store_[2], plain_[2], {n, c_, h, w}, Device::CPU);
  backward_eval_cpu<float>(xp.data(), dyp.data(), ps_.value(w_).data(), buf_.value(rm_).data(), buf_.value(rv_).data(),
                           n, c_, h * w, eps_, need_dx ? plain_[2].data() : nullptr, ps_.grad(w_).data(),
                           ps_.grad(b_).data());
  if (!need_dx) return;
  grow_view(dx_store_, dx_, {n, c_, h, w}, Device::CPU);
  dx_.set_layout(x_layout_);
  onednn::reorder(plain_[2], dx_);
}

Tensor& BatchNorm2d::backward(Context& ctx, Tensor& dy, bool need_dx) {
  CUVAE_CHECK(x_ != nullptr, "BatchNorm2d::backward before forward()");
  CUVAE_CHECK(dy.numel() == y_.numel(), "BatchNorm2d::backward: dy " << dy.shape_str()
                                            << " does not match output " << y_.shape_str());
  CUVAE_CHECK(dy.device() == ctx.device(), "BatchNorm2d::backward: dy on " << device_name(dy.device())
                                               << ", context on " << device_name(ctx.device()));
  CUVAE_CHECK(dy.layout() == y_.layout(), "BatchNorm2d::backward: dy in the " << layout_name(dy.layout())
                                               << " layout, the output in " << layout_name(y_.layout()));
  if (act_ != Activation::None) activation_backward(ctx, act_, y_, dy, dy);
  const int64_t n = y_.dim(0), h = y_.dim(2), w = y_.dim(3);
  if (synced_fwd_) {
    if (need_dx) grow_view(dx_store_, dx_, {n, c_, h, w}, ctx.device());
    backward_sync(dy, need_dx ? dx_.data() : nullptr);
    if (!need_dx) dx_ = Tensor();
    return dx_;
  }
  auto reference = [&] {
    if (need_dx) grow_view(dx_store_, dx_, {n, c_, h, w}, ctx.device());
    float* dx = need_dx ? dx_.data() : nullptr;
    if (trained_fwd_)
      batchnorm_backward_cpu<float>(x_, dy.data(), ps_.value(w_).data(), save_mean_.data(), save_invstd_.data(), n, c_,
                                    h * w, dx, ps_.grad(w_).data(), ps_.grad(b_).data());
    else
      backward_eval_cpu<float>(x_, dy.data(), ps_.value(w_).data(), buf_.value(rm_).data(), buf_.value(rv_).data(), n,
                               c_, h * w, eps_, dx, ps_.grad(w_).data(), ps_.grad(b_).data());
  };
  detail::dispatch(
      ctx, "BatchNorm2d::backward", reference,
      [&] {
        // oneDNN's backward needs its own training forward; after an evaluation-mode forward the
        // reference runs (the running statistics are constants there), on plain copies of
        // blocked tensors (Grad-CAM's backward: not a training step's).
        if (!(onednn_fwd_ && trained_fwd_)) {
          if (x_layout_ == Layout::Plain) return reference();
          return backward_eval_blocked(dy, need_dx);
        }
        grow_view(dx_store_, dx_, {n, c_, h, w}, ctx.device());  // oneDNN always writes dx
        onednn_.set_layout(x_layout_);
        onednn_.backward(n, c_, h, w, eps_, x_, dy.data(), ps_.value(w_).data(), save_mean_.data(), save_var_.data(),
                         dx_.data(), ps_.grad(w_).data(), ps_.grad(b_).data());
        dx_.set_layout(x_layout_);
      },
      [&] {
        grow_view(dx_store_, dx_, {n, c_, h, w}, ctx.device());  // cuDNN always writes dx
        if (trained_fwd_)
          backward_cuda(ctx, dy);
        else
          backward_eval_cuda(ctx, dy);
      });
  if (!need_dx) dx_ = Tensor();
  return dx_;
}

// ---- cuDNN -------------------------------------------------------------------------------------

#ifdef CUVAE_HAS_CUDA

struct BatchNorm2d::Cudnn {
  cudnnTensorDescriptor_t x = nullptr;   // x, y, dy and dx: [n, c, h, w]
  cudnnTensorDescriptor_t bn = nullptr;  // gamma, beta, statistics: [1, c, 1, 1]
  cudnnOpTensorDescriptor_t mul = nullptr;  // elementwise product (evaluation-mode dgamma)
  Cudnn() {
    try {
      CUDNN_CHECK(cudnnCreateTensorDescriptor(&x));
      CUDNN_CHECK(cudnnCreateTensorDescriptor(&bn));
      CUDNN_CHECK(cudnnCreateOpTensorDescriptor(&mul));
      CUDNN_CHECK(cudnnSetOpTensorDescriptor(mul, CUDNN_OP_TENSOR_MUL, CUDNN_DATA_FLOAT,
                                             CUDNN_PROPAGATE_NAN));
    } catch (...) {
      release();
      throw;
    }
  }
  ~Cudnn() { release(); }
  Cudnn(const Cudnn&) = delete;
  Cudnn& operator=(const Cudnn&) = delete;

 private:
  void release() noexcept {
    if (x && cudnnDestroyTensorDescriptor(x) != CUDNN_STATUS_SUCCESS)
      std::fprintf(stderr, "cuvae: cudnnDestroyTensorDescriptor failed\n");
    if (bn && cudnnDestroyTensorDescriptor(bn) != CUDNN_STATUS_SUCCESS)
      std::fprintf(stderr, "cuvae: cudnnDestroyTensorDescriptor failed\n");
    if (mul && cudnnDestroyOpTensorDescriptor(mul) != CUDNN_STATUS_SUCCESS)
      std::fprintf(stderr, "cuvae: cudnnDestroyOpTensorDescriptor failed\n");
    x = bn = nullptr;
    mul = nullptr;
  }
};

void BatchNorm2d::forward_cuda(Context& ctx, const Tensor& x, bool training) {
  CUVAE_CHECK(eps_ >= CUDNN_BN_MIN_EPSILON,
              "BatchNorm2d: eps " << eps_ << " is below cuDNN's minimum " << CUDNN_BN_MIN_EPSILON);
  const int64_t n = x.dim(0), h = x.dim(2), w = x.dim(3);
  CUVAE_CHECK(n <= INT_MAX && c_ <= INT_MAX && h <= INT_MAX && w <= INT_MAX,
              "BatchNorm2d: input " << x.shape_str() << " too large for cuDNN");
  if (!cudnn_) {
    cudnn_ = std::make_unique<Cudnn>();
    desc_n_ = desc_h_ = desc_w_ = 0;
  }
  if (n != desc_n_ || h != desc_h_ || w != desc_w_) {
    CUDNN_CHECK(cudnnSetTensor4dDescriptor(cudnn_->x, CUDNN_TENSOR_NCHW, CUDNN_DATA_FLOAT,
                                           static_cast<int>(n), static_cast<int>(c_),
                                           static_cast<int>(h), static_cast<int>(w)));
    CUDNN_CHECK(cudnnDeriveBNTensorDescriptor(cudnn_->bn, cudnn_->x, CUDNN_BATCHNORM_SPATIAL));
    desc_n_ = n;
    desc_h_ = h;
    desc_w_ = w;
  }
  const float one = 1.0f, zero = 0.0f;
  const float* gamma = ps_.value(w_).data();
  const float* beta = ps_.value(b_).data();
  if (training) {
    grow_to(save_mean_, c_, Device::CUDA);
    grow_to(save_invstd_, c_, Device::CUDA);
    // cuDNN's running variance uses the unbiased batch variance, as PyTorch does.
    CUDNN_CHECK(cudnnBatchNormalizationForwardTraining(
        ctx.cudnn(), CUDNN_BATCHNORM_SPATIAL, &one, &zero, cudnn_->x, x.data(), cudnn_->x,
        y_.data(), cudnn_->bn, gamma, beta, momentum_, buf_.value(rm_).data(),
        buf_.value(rv_).data(), eps_, save_mean_.data(), save_invstd_.data()));
  } else {
    CUDNN_CHECK(cudnnBatchNormalizationForwardInference(
        ctx.cudnn(), CUDNN_BATCHNORM_SPATIAL, &one, &zero, cudnn_->x, x.data(), cudnn_->x,
        y_.data(), cudnn_->bn, gamma, beta, buf_.value(rm_).data(), buf_.value(rv_).data(), eps_));
  }
}

void BatchNorm2d::backward_cuda(Context& ctx, const Tensor& dy) {
  CUVAE_CHECK(cudnn_ && desc_n_ == y_.dim(0) && desc_h_ == y_.dim(2) && desc_w_ == y_.dim(3),
              "BatchNorm2d::backward: no cuDNN descriptors for output " << y_.shape_str());
  const float one = 1.0f, zero = 0.0f;
  CUDNN_CHECK(cudnnBatchNormalizationBackward(
      ctx.cudnn(), CUDNN_BATCHNORM_SPATIAL, &one, &zero, &one, &zero, cudnn_->x, x_, cudnn_->x,
      dy.data(), cudnn_->x, dx_store_.data(), cudnn_->bn, ps_.value(w_).data(), ps_.grad(w_).data(),
      ps_.grad(b_).data(), eps_, save_mean_.data(), save_invstd_.data()));
}

// Evaluation mode: the normalisation is y = gamma·xhat + beta with xhat = (x − running_mean)·
// invstd fixed, so dgamma = Σ dy·xhat, dbeta = Σ dy and dx = gamma·invstd·dy, all from cuDNN's
// inference-mode batch norm (xhat is its output with gamma = 1, beta = 0; dx is its output on
// dy with a zero mean and beta), an elementwise product and per-channel sums.
void BatchNorm2d::backward_eval_cuda(Context& ctx, const Tensor& dy) {
  CUVAE_CHECK(cudnn_ && desc_n_ == y_.dim(0) && desc_h_ == y_.dim(2) && desc_w_ == y_.dim(3),
              "BatchNorm2d::backward: no cuDNN descriptors for output " << y_.shape_str());
  if (consts_.empty() || consts_.device() != Device::CUDA) {
    std::vector<float> host(static_cast<size_t>(2 * c_), 0.0f);
    std::fill(host.begin(), host.begin() + c_, 1.0f);
    consts_ = Tensor({2 * c_}, Device::CUDA);
    memcpy_any(consts_.data(), Device::CUDA, host.data(), Device::CPU, consts_.bytes());
  }
  const float* ones = consts_.data();
  const float* zeros = consts_.data() + c_;
  const int64_t numel = y_.numel();
  grow_to(scratch_, numel, Device::CUDA);
  const float one = 1.0f, zero = 0.0f;
  cudnnHandle_t hd = ctx.cudnn();
  const float* rm = buf_.value(rm_).data();
  const float* rv = buf_.value(rv_).data();
  float* xhat = dx_store_.data();  // dx's buffer holds xhat until dx is written last
  CUDNN_CHECK(cudnnBatchNormalizationForwardInference(hd, CUDNN_BATCHNORM_SPATIAL, &one, &zero,
                                                      cudnn_->x, x_, cudnn_->x, xhat, cudnn_->bn,
                                                      ones, zeros, rm, rv, eps_));
  CUDNN_CHECK(cudnnOpTensor(hd, cudnn_->mul, &one, cudnn_->x, xhat, &one, cudnn_->x, dy.data(),
                            &zero, cudnn_->x, scratch_.data()));
  const int64_t n = y_.dim(0), hw = y_.dim(2) * y_.dim(3);
  bias_grad_nchw_cuda(scratch_.data(), ps_.grad(w_).data(), n, c_, hw, ctx.stream());
  bias_grad_nchw_cuda(dy.data(), ps_.grad(b_).data(), n, c_, hw, ctx.stream());
  CUDNN_CHECK(cudnnBatchNormalizationForwardInference(
      hd, CUDNN_BATCHNORM_SPATIAL, &one, &zero, cudnn_->x, dy.data(), cudnn_->x, dx_store_.data(),
      cudnn_->bn, ps_.value(w_).data(), zeros, zeros, rv, eps_));
}

#else  // no CUDA backend

struct BatchNorm2d::Cudnn {};
void BatchNorm2d::forward_cuda(Context&, const Tensor&, bool) {
  CUVAE_FAIL("BatchNorm2d: a CUDA tensor was given but this build of cuvae has no CUDA backend");
}
void BatchNorm2d::backward_cuda(Context&, const Tensor&) {
  CUVAE_FAIL("BatchNorm2d: a CUDA tensor was given but this build of cuvae has no CUDA backend");
}
void BatchNorm2d::backward_eval_cuda(Context&, const Tensor&) {
  CUVAE_FAIL("BatchNorm2d: a CUDA tensor was given but this build of cuvae has no CUDA backend");
}

#endif

// Defined where Cudnn is a complete type.
BatchNorm2d::~BatchNorm2d() = default;
BatchNorm2d::BatchNorm2d(BatchNorm2d&&) noexcept = default;

}  // namespace cuvae
