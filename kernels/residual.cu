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

// out = (a + b) · scale, the sum rounded first (no contraction into an FMA is possible).
struct AddScaledOp {
  float scale;
  __device__ __forceinline__ float operator()(float a, float b) const {
    const float s = a + b;
    return s * scale;
  }
};

// out = dy where y > 0 (else 0) when Relu, dy otherwise: arguments (y, dy).
template <bool Relu>
struct MaskOp {
  __device__ __forceinline__ float operator()(float y, float dy) const {
    return Relu ? (y > 0.0f ? dy : 0.0f) : dy;
  }
};

// Element values: v[0] x, v[1] z, v[2] out = op(x, z). out may alias x or z.
template <class Op>
struct BinaryOp {
  Op op;
  __device__ BinaryOp resolved() const { return *this; }
  __device__ __forceinline__ void operator()(float (&e)[3]) const { e[2] = op(e[0], e[1]); }
};

// Launches out = op(x, z) over n elements on `s`, vectorised when all three are aligned.
template <class Op>
void launch_binary(const float* x, const float* z, float* out, int64_t n, Op op, detail::DeviceStream s) {
  detail::Arrays<3> arrays{{const_cast<float*>(x), const_cast<float*>(z), out}, 3u, 4u};  // x, z only read
  detail::launch_elementwise(arrays, n, BinaryOp<Op>{op}, s);
}

}  // namespace

template <>
void residual_add_cuda(const float* a, const float* b, float* y, int64_t n, bool relu, detail::DeviceStream s) {
  CUVAE_CHECK(n >= 0, "residual_add_cuda: negative size " << n);
  if (n == 0) return;
  if (relu)
    launch_binary(a, b, y, n, AddOp<true>(), s);
  else
    launch_binary(a, b, y, n, AddOp<false>(), s);
}

template <>
void residual_add_backward_cuda(const float* y, const float* dy, float* d, int64_t n, bool relu,
                                detail::DeviceStream s) {
  CUVAE_CHECK(n >= 0, "residual_add_backward_cuda: negative size " << n);
  if (n == 0) return;
  if (relu) {
    launch_binary(y, dy, d, n, MaskOp<true>(), s);
  } else if (d != dy) {  // without the ReLU the gradient passes through unchanged
    launch_binary(y, dy, d, n, MaskOp<false>(), s);
  }
}

template <>
void accumulate_cuda(float* dst, const float* src, int64_t n, detail::DeviceStream s) {
  CUVAE_CHECK(n >= 0, "accumulate_cuda: negative size " << n);
  if (n == 0) return;
  launch_binary(dst, src, dst, n, AddOp<false>(), s);
}

template <>
void add_scaled_cuda(const float* a, const float* b, float scale, float* y, int64_t n, detail::DeviceStream s) {
  CUVAE_CHECK(n >= 0, "add_scaled_cuda: negative size " << n);
  if (n == 0) return;
  launch_binary(a, b, y, n, AddScaledOp{scale}, s);
}

}  // namespace cuvae
