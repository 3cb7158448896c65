#include "kernels/sgd.h"

#include <cstdint>

#include "kernels/launch.cuh"

namespace cuvae {
namespace {

struct SgdScalars {
  float lr, mu, wd;
  bool nesterov;
};

// This step's learning rate from the step state when there is one (a captured graph replays it).
__device__ __forceinline__ SgdScalars with_state(SgdScalars a, const StepState* st) {
  if (st != nullptr) a.lr = st->lr;
  return a;
}

// One parameter's update, the same operations in the same order as sgd_step_cpu.
__device__ __forceinline__ void sgd_update(float& p, float g, float& b, const SgdScalars& a) {
  if (a.wd != 0.0f) g += a.wd * p;
  float d = g;
  if (a.mu != 0.0f) {
    b = a.mu * b + g;
    d = a.nesterov ? g + a.mu * b : b;
  }
  p -= a.lr * d;
}

// Element values: v[0] param, v[1] grad, v[2] momentum buffer (neither read nor written when
// momentum is 0: sgd_update then leaves it alone).
struct SgdOp {
  SgdScalars a;
  const StepState* st;
  __device__ SgdOp resolved() const { return {with_state(a, st), nullptr}; }
  __device__ __forceinline__ void operator()(float (&e)[3]) const { sgd_update(e[0], e[1], e[2], a); }
};

}  // namespace

template <>
void sgd_step_cuda(float* param, const float* grad, float* buf, int64_t n, const SgdConfig& cfg,
                   detail::DeviceStream s) {
  check_sgd_config(cfg);
  CUVAE_CHECK(n >= 0, "sgd_step_cuda: negative size " << n);
  if (n == 0) return;
  SgdScalars a;
  a.lr = cfg.lr;
  a.mu = cfg.momentum;
  a.wd = cfg.weight_decay;
  a.nesterov = cfg.nesterov;
  // With momentum 0 the buffer is never touched, so its alignment does not matter.
  const unsigned buf_bit = a.mu == 0.0f ? 0u : 4u;
  detail::Arrays<3> arrays{{param, const_cast<float*>(grad), buf}, 3u | buf_bit, 1u | buf_bit};  // grad is only read
  detail::launch_elementwise(arrays, n, SgdOp{a, cfg.state}, s);
}

}  // namespace cuvae
