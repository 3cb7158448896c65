#include "kernels/adam.h"

#include <cmath>
#include <cstdint>

#include "kernels/launch.cuh"

namespace cuvae {
namespace {

struct AdamScalars {
  float b1, b2, eps, wd;
  float step_size;  // lr / (1 - b1^t)
  float bc2_sqrt;   // sqrt(1 - b2^t)
};

// This step's scalars: from the step state when there is one (a captured graph replays them).
__device__ __forceinline__ AdamScalars with_state(AdamScalars a, const StepState* st) {
  if (st != nullptr) {
    a.step_size = st->adam_step_size;
    a.bc2_sqrt = st->adam_bc2_sqrt;
  }
  return a;
}

__device__ __forceinline__ void adam_update(float& p, float g, float& m, float& v,
                                            const AdamScalars& a) {
  if (a.wd != 0.0f) g += a.wd * p;
  m = a.b1 * m + (1.0f - a.b1) * g;
  v = a.b2 * v + (1.0f - a.b2) * g * g;
  const float denom = sqrtf(v) / a.bc2_sqrt + a.eps;
  p -= a.step_size * m / denom;
}

// Element values: v[0] param, v[1] grad, v[2] m, v[3] v.
struct AdamOp {
  AdamScalars a;
  const StepState* st;
  __device__ AdamOp resolved() const { return {with_state(a, st), nullptr}; }
  __device__ __forceinline__ void operator()(float (&e)[4]) const { adam_update(e[0], e[1], e[2], e[3], a); }
};

}  // namespace

template <>
void adam_step_cuda(float* param, const float* grad, float* m, float* v, int64_t n,
                    const AdamConfig& cfg, detail::DeviceStream s) {
  check_adam_config(cfg);
  CUVAE_CHECK(n >= 0, "adam_step_cuda: negative size " << n);
  if (n == 0) return;
  const AdamCorrections c = adam_corrections(cfg.lr, cfg.beta1, cfg.beta2, cfg.step);
  AdamScalars a;
  a.b1 = cfg.beta1;
  a.b2 = cfg.beta2;
  a.eps = cfg.eps;
  a.wd = cfg.weight_decay;
  a.step_size = static_cast<float>(c.step_size);
  a.bc2_sqrt = static_cast<float>(c.bc2_sqrt);
  detail::Arrays<4> arrays{{param, const_cast<float*>(grad), m, v}, 0xFu, 0xDu};  // grad is only read
  detail::launch_elementwise(arrays, n, AdamOp{a, cfg.state}, s);
}

}  // namespace cuvae
