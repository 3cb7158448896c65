// The Tensor-level gradcam op: checks shapes and devices, then picks the CPU reference
// (gradcam_cpu.cpp), the CUDA kernels (gradcam.cu) or the emulated device (detail::dispatch).
#include "kernels/gradcam.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include "core/check.h"
#include "kernels/dispatch_util.h"

namespace cuvae {

void gradcam(Context& ctx, const Tensor& A, const Tensor& dA, int64_t H, int64_t W, Tensor& heat,
             Tensor* cam_out) {
  const char* op = "gradcam";
  CUVAE_CHECK(A.ndim() == 4, op << ": A must be [n, k, h, w], got " << A.shape_str());
  CUVAE_CHECK(dA.shape() == A.shape(),
              op << ": dA " << dA.shape_str() << " does not match A " << A.shape_str());
  CUVAE_CHECK(H > 0 && W > 0, op << ": non-positive output size H=" << H << " W=" << W);
  const int64_t n = A.dim(0), k = A.dim(1), h = A.dim(2), w = A.dim(3);
  detail::require_device(ctx, A, op, "A");
  detail::require_device(ctx, dA, op, "dA");
  detail::require_numel(heat, n * H * W, op, "heat");
  detail::require_device(ctx, heat, op, "heat");
  float* cam = nullptr;
  if (cam_out) {
    detail::require_numel(*cam_out, n * h * w, op, "cam_out");
    detail::require_device(ctx, *cam_out, op, "cam_out");
    cam = cam_out->data();
  }
  detail::dispatch(
      ctx, op,
      [&] {
        gradcam_cpu(A.data(), dA.data(), n, k, h, w, H, W, heat.data(), cam);
      },
      [&](auto s) {
        gradcam_cuda(A.data(), dA.data(), n, k, h, w, H, W, heat.data(), cam, s);
      });
}

}  // namespace cuvae
