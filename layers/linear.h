// Linear (fully connected) layer with an optional fused activation, as PyTorch's
// nn.Linear followed by an activation module.
#pragma once

#include <string>

#include "core/context.h"
#include "kernels/activation.h"
#include "layers/param.h"

namespace cuvae {

/// CPU reference: y [n, out] = x [n, in] · Wᵀ + b, W [out, in], b [out] (b may be null).
template <typename T>
void linear_fwd_cpu(const T* x, const T* W, const T* b, T* y, int64_t n, int64_t in, int64_t out);

/// CPU reference backward of linear_fwd_cpu for upstream dy [n, out]: writes dW = dyᵀ·x,
/// db = Σ_rows dy (if db non-null) and dx = dy·W (if dx non-null; added to dx when
/// `accumulate_dx`).
template <typename T>
void linear_bwd_cpu(const T* x, const T* W, const T* dy, T* dx, T* dW, T* db, int64_t n,
                    int64_t in, int64_t out, bool accumulate_dx);

/// nn.Linear(in, out) + activation. Parameters `<name>.weight` [out, in] and `<name>.bias`
/// [out] live in the model's ParamStore. CPU: oneDNN's SGEMM (the oneDNN backend) or Eigen's
/// GEMM (the reference); CUDA: cuBLAS SGEMM (fp32,
/// pedantic math) and the bias/activation kernels. Buffers grow to the largest batch seen
/// and are reused, so a steady-state step allocates nothing.
class Linear {
 public:
  Linear(ParamStore& ps, const std::string& name, int64_t in, int64_t out,
         Activation act = Activation::None);

  /// y [n, out] = act(x · Wᵀ + b) for x [n, in] (any shape whose numel is n·in and whose
  /// first dimension is n). x must stay unchanged until backward(). Returns a view of the
  /// layer's own output buffer.
  Tensor& forward(Context& ctx, const Tensor& x);
  /// Given dy = ∂L/∂y [n, out] (overwritten with ∂L/∂(pre-activation)), writes the weight
  /// and bias gradients and, if `need_dx`, dx = ∂L/∂x [n, in]: into `accumulate_into`
  /// (added) when given, else into the layer's own buffer. Returns dx (or an empty view).
  Tensor& backward(Context& ctx, Tensor& dy, bool need_dx, Tensor* accumulate_into = nullptr);

  /// The output of the last forward().
  Tensor& output() { return y_; }
  /// Input / output feature counts.
  int64_t in_features() const { return in_; }
  int64_t out_features() const { return out_; }
  /// FLOPs of the last forward's product x · Wᵀ: 2 · n · in · out (0 before the first forward).
  /// The data and weight gradients cost the same each.
  double flops() const { return 2.0 * static_cast<double>(n_) * static_cast<double>(in_) * static_cast<double>(out_); }

 private:
  ParamStore& ps_;
  int w_, b_;
  int64_t in_, out_;
  Activation act_;
  const float* x_ = nullptr;
  int64_t n_ = 0;
  Tensor y_store_, dx_store_;
  Tensor y_, dx_;
};

}  // namespace cuvae
