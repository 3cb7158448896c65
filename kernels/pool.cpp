// The Tensor-level pool op: checks shapes and devices, then picks the CPU reference
// (pool_cpu.cpp), the CUDA kernels (pool.cu) or the emulated device (detail::dispatch).
#include "kernels/pool.h"

#include "core/check.h"
#include "kernels/dispatch_util.h"

namespace cuvae {

namespace {
// n, c and hw = H*W of an [N, C, H, W] tensor (called `name` in op `op`).
void pool_dims(const Tensor& t, const char* op, const char* name, int64_t& n, int64_t& c,
               int64_t& hw) {
  CUVAE_CHECK(t.ndim() == 4, op << ": " << name << " must be [N, C, H, W], got " << t.shape_str());
  n = t.dim(0);
  c = t.dim(1);
  hw = t.dim(2) * t.dim(3);
  CUVAE_CHECK(hw >= 1, op << ": " << name << " " << t.shape_str() << " has no pixels to pool");
}
}  // namespace

void global_avg_pool(Context& ctx, const Tensor& x, Tensor& y) {
  const char* op = "global_avg_pool";
  int64_t n = 0, c = 0, hw = 0;
  pool_dims(x, op, "x", n, c, hw);
  detail::require_numel(y, n * c, op, "y");
  detail::require_device(ctx, x, op, "x");
  detail::require_device(ctx, y, op, "y");
  detail::dispatch(
      ctx, op,
      [&] {
        global_avg_pool_cpu(x.data(), y.data(), n, c, hw);
      },
      [&](auto s) {
        global_avg_pool_cuda(x.data(), y.data(), n, c, hw, s);
      });
}

void global_avg_pool_backward(Context& ctx, const Tensor& dy, Tensor& dx) {
  const char* op = "global_avg_pool_backward";
  int64_t n = 0, c = 0, hw = 0;
  pool_dims(dx, op, "dx", n, c, hw);
  detail::require_numel(dy, n * c, op, "dy");
  detail::require_device(ctx, dy, op, "dy");
  detail::require_device(ctx, dx, op, "dx");
  detail::dispatch(
      ctx, op,
      [&] {
        global_avg_pool_backward_cpu(dy.data(), dx.data(), n, c, hw);
      },
      [&](auto s) {
        global_avg_pool_backward_cuda(dy.data(), dx.data(), n, c, hw, s);
      });
}

}  // namespace cuvae
