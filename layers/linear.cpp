#include "layers/linear.h"

#include "core/check.h"
#include "kernels/bias.h"
#include "kernels/dispatch_util.h"
#include "layers/conv_cpu.h"
#include "layers/onednn_util.h"

#ifdef CUVAE_HAS_CUDA
#include "core/cuda_check.h"
#endif

namespace cuvae {

namespace {
// The fully connected layer's arithmetic with a given GEMM (gemm_cpu's contract): Eigen's for the
// reference, oneDNN's for the oneDNN backend.
template <typename T, class Gemm>
void linear_fwd_with(Gemm gemm, const T* x, const T* W, const T* b, T* y, int64_t n, int64_t in, int64_t out) {
  gemm(false, true, n, out, in, T(1), x, W, T(0), y);
  if (b) add_bias_nchw_cpu<T>(y, b, n, out, 1);
}

template <typename T, class Gemm>
void linear_bwd_with(Gemm gemm, const T* x, const T* W, const T* dy, T* dx, T* dW, T* db, int64_t n, int64_t in,
                     int64_t out, bool accumulate_dx) {
  gemm(true, false, out, in, n, T(1), dy, x, T(0), dW);
  if (db) bias_grad_nchw_cpu<T>(dy, db, n, out, 1);
  if (dx) gemm(false, false, n, in, out, T(1), dy, W, accumulate_dx ? T(1) : T(0), dx);
}
}  // namespace

template <typename T>
void linear_fwd_cpu(const T* x, const T* W, const T* b, T* y, int64_t n, int64_t in, int64_t out) {
  linear_fwd_with<T>(gemm_cpu<T>, x, W, b, y, n, in, out);
}

template <typename T>
void linear_bwd_cpu(const T* x, const T* W, const T* dy, T* dx, T* dW, T* db, int64_t n,
                    int64_t in, int64_t out, bool accumulate_dx) {
  linear_bwd_with<T>(gemm_cpu<T>, x, W, dy, dx, dW, db, n, in, out, accumulate_dx);
}

template void linear_fwd_cpu<float>(const float*, const float*, const float*, float*, int64_t, int64_t, int64_t);
template void linear_fwd_cpu<double>(const double*, const double*, const double*, double*, int64_t, int64_t, int64_t);
template void linear_bwd_cpu<float>(const float*, const float*, const float*, float*, float*, float*, int64_t, int64_t, int64_t, bool);
template void linear_bwd_cpu<double>(const double*, const double*, const double*, double*, double*, double*, int64_t, int64_t, int64_t, bool);

namespace {

// Products smaller than this many multiply-adds stay on Eigen, which starts no thread team: for
// the dashboard's one-image decode (1×42×256) Eigen takes 3.3 µs and oneDNN 3.6 µs, while for
// the VAE's training shapes oneDNN is 1.4× faster (128×3136×256: 1.32 ms against 1.80 ms;
// `cuvae_bench_ops --backend reference,onednn --filter Linear`).
constexpr int64_t kOnednnGemmMinMacs = 1 << 14;

// The oneDNN backend's GEMM for the fully connected layer: oneDNN's SGEMM in place of Eigen's
// for all but the smallest products.
void onednn_gemm(bool ta, bool tb, int64_t rows, int64_t cols, int64_t inner, float alpha, const float* a,
                 const float* b, float beta, float* y) {
#ifdef CUVAE_HAS_ONEDNN
  if (rows * cols * inner < kOnednnGemmMinMacs) {
    gemm_cpu<float>(ta, tb, rows, cols, inner, alpha, a, b, beta, y);
    return;
  }
  onednn::sgemm(ta, tb, rows, cols, inner, alpha, a, b, beta, y);
#else
  (void)ta, (void)tb, (void)rows, (void)cols, (void)inner, (void)alpha, (void)a, (void)b, (void)beta, (void)y;
  onednn::fail_unavailable();
#endif
}

}  // namespace

Linear::Linear(ParamStore& ps, const std::string& name, int64_t in, int64_t out, Activation act)
    : ps_(ps), in_(in), out_(out), act_(act) {
  w_ = ps.add(name + ".weight", {out, in}, in);
  b_ = ps.add(name + ".bias", {out}, in);
}


Tensor& Linear::forward(Context& ctx, const Tensor& x) {
  CUVAE_CHECK(x.ndim() >= 1 && x.dim(0) > 0 && x.numel() == x.dim(0) * in_,
              "Linear(" << in_ << ", " << out_ << "): input " << x.shape_str() << " does not have "
                        << in_ << " features per row");
  CUVAE_CHECK(x.device() == ctx.device(), "Linear: input on " << device_name(x.device())
                                                              << ", context on " << device_name(ctx.device()));
  n_ = x.dim(0);
  x_ = x.data();
  grow_view(y_store_, y_, {n_, out_}, ctx.device());
  const float* W = ps_.value(w_).data();
  const float* b = ps_.value(b_).data();
  detail::dispatch(
      ctx, "Linear",
      [&] { linear_fwd_cpu<float>(x_, W, b, y_.data(), n_, in_, out_); },
      [&] { linear_fwd_with<float>(onednn_gemm, x_, W, b, y_.data(), n_, in_, out_); },
      CUVAE_CUDA_ONLY([&] {
        const float one = 1.0f, zero = 0.0f;
        CUBLAS_CHECK(cublasSgemm(ctx.cublas(), CUBLAS_OP_T, CUBLAS_OP_N, static_cast<int>(out_),
                                 static_cast<int>(n_), static_cast<int>(in_), &one, W,
                                 static_cast<int>(in_), x_, static_cast<int>(in_), &zero, y_.data(),
                                 static_cast<int>(out_)));
        add_bias_nchw_cuda(y_.data(), b, n_, out_, 1, ctx.stream());
      }));
  if (act_ != Activation::None) activation_forward(ctx, act_, y_, y_);
  return y_;
}

Tensor& Linear::backward(Context& ctx, Tensor& dy, bool need_dx, Tensor* accumulate_into) {
  CUVAE_CHECK(x_ != nullptr, "Linear::backward before forward");
  CUVAE_CHECK(dy.numel() == n_ * out_, "Linear::backward: dy " << dy.shape_str() << ", expected ["
                                                                << n_ << ", " << out_ << "]");
  if (act_ != Activation::None) activation_backward(ctx, act_, y_, dy, dy);
  float* dxp = nullptr;
  if (need_dx) {
    if (accumulate_into) {
      CUVAE_CHECK(accumulate_into->numel() == n_ * in_, "Linear::backward: accumulate target "
                                                            << accumulate_into->shape_str());
      dxp = accumulate_into->data();
    } else {
      grow_view(dx_store_, dx_, {n_, in_}, ctx.device());
      dxp = dx_.data();
    }
  }
  const float* W = ps_.value(w_).data();
  float* dW = ps_.grad(w_).data();
  float* db = ps_.grad(b_).data();
  detail::dispatch(
      ctx, "Linear::backward",
      [&] { linear_bwd_cpu<float>(x_, W, dy.data(), dxp, dW, db, n_, in_, out_, accumulate_into != nullptr); },
      [&] { linear_bwd_with<float>(onednn_gemm, x_, W, dy.data(), dxp, dW, db, n_, in_, out_, accumulate_into != nullptr); },
      CUVAE_CUDA_ONLY([&] {
        const float one = 1.0f, zero = 0.0f;
        const int n = static_cast<int>(n_), in = static_cast<int>(in_), out = static_cast<int>(out_);
        // dWᵀ (col-major [in, out]) = xᵀ · dy
        CUBLAS_CHECK(cublasSgemm(ctx.cublas(), CUBLAS_OP_N, CUBLAS_OP_T, in, out, n, &one, x_, in,
                                 dy.data(), out, &zero, dW, in));
        bias_grad_nchw_cuda(dy.data(), db, n_, out_, 1, ctx.stream());
        if (dxp) {
          const float beta = accumulate_into ? 1.0f : 0.0f;
          // dxᵀ (col-major [in, n]) = Wᵀ · dyᵀ
          CUBLAS_CHECK(cublasSgemm(ctx.cublas(), CUBLAS_OP_N, CUBLAS_OP_N, in, n, out, &one, W, in,
                                   dy.data(), out, &beta, dxp, in));
        }
      }));
  if (!need_dx) {
    dx_ = Tensor();
    return dx_;
  }
  return accumulate_into ? *accumulate_into : dx_;
}

}  // namespace cuvae
