// The Tensor-level conditional op: checks shapes and devices, then picks the CPU reference
// (conditional_cpu.cpp), the CUDA kernels (conditional.cu) or the emulated device (detail::dispatch).
#include "kernels/conditional.h"

#include <cmath>

#include "core/check.h"
#include "kernels/dispatch_util.h"

namespace cuvae {

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
