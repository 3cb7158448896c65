#include <cmath>

#include "host/check.h"
#include "kernels/conditional.h"
#include "kernels/dispatch_util.h"

namespace cuvae {

template <typename T>
void concat_onehot_cpu(const T* feat, const int32_t* labels, int64_t n, int64_t f, int64_t k, T* out) {
  CUVAE_CHECK(n >= 0 && f >= 0 && k >= 1, "concat_onehot: bad sizes n=" << n << " f=" << f << " k=" << k);
  const int64_t w = f + k;
  for (int64_t i = 0; i < n; ++i) {
    CUVAE_CHECK(labels[i] >= 0 && labels[i] < k, "concat_onehot: label " << labels[i] << " of row " << i
                                                                           << " is outside [0, " << k << ")");
    for (int64_t j = 0; j < f; ++j) out[i * w + j] = feat[i * f + j];
    for (int64_t j = 0; j < k; ++j) out[i * w + f + j] = j == labels[i] ? T(1) : T(0);
  }
}

template <typename T>
void take_columns_cpu(const T* src, int64_t n, int64_t f, int64_t k, T* dst) {
  CUVAE_CHECK(n >= 0 && f >= 0 && k >= 0, "take_columns: bad sizes n=" << n << " f=" << f << " k=" << k);
  for (int64_t i = 0; i < n; ++i)
    for (int64_t j = 0; j < f; ++j) dst[i * f + j] = src[i * (f + k) + j];
}

template <typename T>
void free_bits_cpu(const T* mu, const T* logvar, int64_t n, int64_t d, float lambda, float beta, T* dmu,
                   T* dlogvar, T* kl_dim, T* loss) {
  CUVAE_CHECK(n >= 1 && d >= 1, "free_bits: sizes must be positive, got n=" << n << " d=" << d);
  CUVAE_CHECK(std::isfinite(lambda) && lambda >= 0.0f, "free_bits: lambda must be finite and >= 0, got " << lambda);
  double extra = 0.0;
  for (int64_t j = 0; j < d; ++j) {
    double s = 0.0;
    for (int64_t i = 0; i < n; ++i) {
      const double m = mu[i * d + j], lv = logvar[i * d + j];
      s += 0.5 * (m * m + std::exp(lv) - 1.0 - lv);
    }
    const double mean = s / static_cast<double>(n);
    kl_dim[j] = static_cast<T>(mean);
    if (mean < static_cast<double>(lambda)) {
      for (int64_t i = 0; i < n; ++i) {
        dmu[i * d + j] = T(0);
        dlogvar[i * d + j] = T(0);
      }
      extra += static_cast<double>(lambda) - mean;
    }
  }
  loss[0] = static_cast<T>(static_cast<double>(loss[0]) + static_cast<double>(beta) * extra);
}

template void concat_onehot_cpu<float>(const float*, const int32_t*, int64_t, int64_t, int64_t, float*);
template void concat_onehot_cpu<double>(const double*, const int32_t*, int64_t, int64_t, int64_t, double*);
template void take_columns_cpu<float>(const float*, int64_t, int64_t, int64_t, float*);
template void take_columns_cpu<double>(const double*, int64_t, int64_t, int64_t, double*);
template void free_bits_cpu<float>(const float*, const float*, int64_t, int64_t, float, float, float*, float*,
                                   float*, float*);
template void free_bits_cpu<double>(const double*, const double*, int64_t, int64_t, float, float, double*, double*,
                                    double*, double*);

void concat_onehot(Context& ctx, const Tensor& feat, const IntBuffer& label_buffer, int64_t k, Tensor& out) {
  const char* op = "concat_onehot";
  CUVAE_CHECK(feat.ndim() >= 1 && feat.dim(0) >= 1, op << ": feat " << feat.shape_str() << " has no rows");
  const int64_t n = feat.dim(0), f = feat.numel() / n;
  detail::require_buffer(ctx, label_buffer, n, op, "labels");
  const int32_t* labels = label_buffer.data();
  detail::require_numel(out, n * (f + k), op, "out");
  detail::require_device(ctx, feat, op, "feat");
  detail::require_device(ctx, out, op, "out");
  detail::dispatch(
      ctx, op,
      [&] {
        concat_onehot_cpu(feat.data(), labels, n, f, k, out.data());
      },
      [&](auto s) {
        concat_onehot_cuda(feat.data(), labels, n, f, k, out.data(), s);
      });
}

void take_columns(Context& ctx, const Tensor& src, int64_t k, Tensor& dst) {
  const char* op = "take_columns";
  CUVAE_CHECK(dst.ndim() >= 1 && dst.dim(0) >= 1, op << ": dst " << dst.shape_str() << " has no rows");
  const int64_t n = dst.dim(0), f = dst.numel() / n;
  detail::require_numel(src, n * (f + k), op, "src");
  detail::require_device(ctx, src, op, "src");
  detail::require_device(ctx, dst, op, "dst");
  detail::dispatch(
      ctx, op,
      [&] {
        take_columns_cpu(src.data(), n, f, k, dst.data());
      },
      [&](auto s) {
        take_columns_cuda(src.data(), n, f, k, dst.data(), s);
      });
}

void free_bits(Context& ctx, const Tensor& mu, const Tensor& logvar, float lambda, float beta, Tensor& dmu,
               Tensor& dlogvar, Tensor& kl_dim, Tensor& loss, const StepState* step_state) {
  const char* op = "free_bits";
  CUVAE_CHECK(mu.ndim() == 2, op << ": mu " << mu.shape_str() << " must be [n, d]");
  const int64_t n = mu.dim(0), d = mu.dim(1);
  detail::require_all(ctx, n * d, op, {{"mu", &mu}, {"logvar", &logvar}, {"dmu", &dmu}, {"dlogvar", &dlogvar}});
  detail::require_all(ctx, d, op, {{"kl_dim", &kl_dim}});
  detail::require_all(ctx, 1, op, {{"loss", &loss}});
  detail::dispatch(
      ctx, op,
      [&] {
        free_bits_cpu(mu.data(), logvar.data(), n, d, lambda, step_state ? step_state->kl_weight : beta, dmu.data(),
                      dlogvar.data(), kl_dim.data(), loss.data());
      },
      [&](auto s) {
        free_bits_cuda(mu.data(), logvar.data(), n, d, lambda, beta, dmu.data(), dlogvar.data(), kl_dim.data(), loss.data(),
                       s, step_state);
      });
}

}  // namespace cuvae
