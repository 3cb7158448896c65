#include <cmath>

#include "core/check.h"
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

template void concat_onehot_cpu<float>(const float*, const int32_t*, int64_t, int64_t, int64_t, float*);
template void concat_onehot_cpu<double>(const double*, const int32_t*, int64_t, int64_t, int64_t, double*);
template void take_columns_cpu<float>(const float*, int64_t, int64_t, int64_t, float*);
template void take_columns_cpu<double>(const double*, int64_t, int64_t, int64_t, double*);
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

}  // namespace cuvae
