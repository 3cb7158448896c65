#include "kernels/residual.h"

#include <cstdint>

#include "kernels/launch.cuh"

namespace cuvae {
namespace {

// out = a + b, then ReLU when Relu.
template <bool Relu>
struct AddOp {
  __device__ __forceinline__ float operator()(float a, float b) const {
    const float s = a + b;
    return Relu ? (s > 0.0f ? s : 0.0f) : s;
  }
};

// out = dy where y > 0 (else 0) when Relu, dy otherwise: arguments (y, dy).
template <bool Relu>
struct MaskOp {
  __device__ __forceinline__ float operator()(float y, float dy) const {
    return Relu ? (y > 0.0f ? dy : 0.0f) : dy;
  }
};

// out[i] = op(x[i], z[i]) over float4 groups (grid-stride), then the n % 4 tail elements by
// the first threads. Requires x, z and out 16-byte aligned; out may alias x or z (each
// element is read before it is written by the same thread), so nothing is __restrict__.
template <class Op>
__global__ void binary_vec4_kernel(const float* x, const float* z, float* out, int64_t n, Op op) {
  const int64_t n4 = n / 4;
  const int64_t tid = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
  const float4* x4 = reinterpret_cast<const float4*>(x);
  const float4* z4 = reinterpret_cast<const float4*>(z);
  float4* o4 = reinterpret_cast<float4*>(out);
  for (int64_t i = tid; i < n4; i += stride) {
    const float4 a = x4[i], b = z4[i];
    o4[i] = make_float4(op(a.x, b.x), op(a.y, b.y), op(a.z, b.z), op(a.w, b.w));
  }
  const int64_t k = n4 * 4 + tid;
  if (k < n) out[k] = op(x[k], z[k]);
}

// Plain grid-stride loop for arrays that are not all 16-byte aligned (e.g. row views).
template <class Op>
__global__ void binary_scalar_kernel(const float* x, const float* z, float* out, int64_t n, Op op) {
  const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += stride)
    out[i] = op(x[i], z[i]);
}

bool aligned16(const void* ptr) { return reinterpret_cast<std::uintptr_t>(ptr) % 16 == 0; }

// Launches out = op(x, z) over n elements on `s`, vectorised when all three are aligned.
template <class Op>
void launch_binary(const float* x, const float* z, float* out, int64_t n, Op op, Stream s) {
  const cudaStream_t st = detail::to_cuda(s);
  if (aligned16(x) && aligned16(z) && aligned16(out)) {
    // grid_for launches at least one block, so threads 0..2 exist for the n % 4 tail.
    binary_vec4_kernel<<<detail::grid_for(n / 4), detail::kBlock, 0, st>>>(x, z, out, n, op);
  } else {
    binary_scalar_kernel<<<detail::grid_for(n), detail::kBlock, 0, st>>>(x, z, out, n, op);
  }
  CUDA_CHECK_LAUNCH();
}

}  // namespace

void residual_add_cuda(const float* a, const float* b, float* y, int64_t n, bool relu, Stream s) {
  CUVAE_CHECK(n >= 0, "residual_add_cuda: negative size " << n);
  if (n == 0) return;
  if (relu)
    launch_binary(a, b, y, n, AddOp<true>(), s);
  else
    launch_binary(a, b, y, n, AddOp<false>(), s);
}

void residual_add_backward_cuda(const float* y, const float* dy, float* d, int64_t n, bool relu,
                                Stream s) {
  CUVAE_CHECK(n >= 0, "residual_add_backward_cuda: negative size " << n);
  if (n == 0) return;
  if (relu) {
    launch_binary(y, dy, d, n, MaskOp<true>(), s);
  } else if (d != dy) {  // without the ReLU the gradient passes through unchanged
    launch_binary(y, dy, d, n, MaskOp<false>(), s);
  }
}

void accumulate_cuda(float* dst, const float* src, int64_t n, Stream s) {
  CUVAE_CHECK(n >= 0, "accumulate_cuda: negative size " << n);
  if (n == 0) return;
  launch_binary(dst, src, dst, n, AddOp<false>(), s);
}

}  // namespace cuvae
