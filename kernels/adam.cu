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

// Grid-stride over float4 groups, then the n % 4 tail elements by the first threads.
// Requires param, grad, m and v 16-byte aligned.
__global__ void adam_vec4_kernel(float* __restrict__ param, const float* __restrict__ grad,
                                 float* __restrict__ m, float* __restrict__ v, int64_t n,
                                 AdamScalars a0, const StepState* st) {
  const AdamScalars a = with_state(a0, st);
  const int64_t n4 = n / 4;
  const int64_t tid = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
  float4* p4 = reinterpret_cast<float4*>(param);
  const float4* g4 = reinterpret_cast<const float4*>(grad);
  float4* m4 = reinterpret_cast<float4*>(m);
  float4* v4 = reinterpret_cast<float4*>(v);
  for (int64_t i = tid; i < n4; i += stride) {
    float4 p = p4[i], mm = m4[i], vv = v4[i];
    const float4 g = g4[i];
    adam_update(p.x, g.x, mm.x, vv.x, a);
    adam_update(p.y, g.y, mm.y, vv.y, a);
    adam_update(p.z, g.z, mm.z, vv.z, a);
    adam_update(p.w, g.w, mm.w, vv.w, a);
    p4[i] = p;
    m4[i] = mm;
    v4[i] = vv;
  }
  const int64_t k = n4 * 4 + tid;
  if (k < n) adam_update(param[k], grad[k], m[k], v[k], a);
}

// Plain grid-stride loop for arrays that are not all 16-byte aligned (e.g. row views).
__global__ void adam_scalar_kernel(float* __restrict__ param, const float* __restrict__ grad,
                                   float* __restrict__ m, float* __restrict__ v, int64_t n,
                                   AdamScalars a0, const StepState* st) {
  const AdamScalars a = with_state(a0, st);
  const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += stride)
    adam_update(param[i], grad[i], m[i], v[i], a);
}

bool aligned16(const void* ptr) { return reinterpret_cast<std::uintptr_t>(ptr) % 16 == 0; }

}  // namespace

void adam_step_cuda(float* param, const float* grad, float* m, float* v, int64_t n,
                    const AdamConfig& cfg, Stream s) {
  check_adam_config(cfg);
  CUVAE_CHECK(n >= 0, "adam_step_cuda: negative size " << n);
  if (n == 0) return;
  const double t = static_cast<double>(cfg.step);
  const double bc1 = 1.0 - std::pow(static_cast<double>(cfg.beta1), t);
  const double bc2 = 1.0 - std::pow(static_cast<double>(cfg.beta2), t);
  AdamScalars a;
  a.b1 = cfg.beta1;
  a.b2 = cfg.beta2;
  a.eps = cfg.eps;
  a.wd = cfg.weight_decay;
  a.step_size = static_cast<float>(static_cast<double>(cfg.lr) / bc1);
  a.bc2_sqrt = static_cast<float>(std::sqrt(bc2));
  const cudaStream_t st = detail::to_cuda(s);
  if (aligned16(param) && aligned16(grad) && aligned16(m) && aligned16(v)) {
    // grid_for launches at least one block, so threads 0..2 exist for the n % 4 tail.
    adam_vec4_kernel<<<detail::grid_for(n / 4), detail::kBlock, 0, st>>>(param, grad, m, v, n, a, cfg.state);
  } else {
    adam_scalar_kernel<<<detail::grid_for(n), detail::kBlock, 0, st>>>(param, grad, m, v, n, a, cfg.state);
  }
  CUDA_CHECK_LAUNCH();
}

}  // namespace cuvae
