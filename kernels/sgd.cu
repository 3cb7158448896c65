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

// Grid-stride over float4 groups, then the n % 4 tail elements by the first threads.
// Requires param, grad and buf 16-byte aligned. buf is not read or written when mu = 0.
__global__ void sgd_vec4_kernel(float* __restrict__ param, const float* __restrict__ grad,
                                float* __restrict__ buf, int64_t n, SgdScalars a0, const StepState* st) {
  const SgdScalars a = with_state(a0, st);
  const int64_t n4 = n / 4;
  const int64_t tid = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
  float4* p4 = reinterpret_cast<float4*>(param);
  const float4* g4 = reinterpret_cast<const float4*>(grad);
  float4* b4 = reinterpret_cast<float4*>(buf);
  const bool momentum = a.mu != 0.0f;
  for (int64_t i = tid; i < n4; i += stride) {
    float4 p = p4[i], b = momentum ? b4[i] : make_float4(0.0f, 0.0f, 0.0f, 0.0f);
    const float4 g = g4[i];
    sgd_update(p.x, g.x, b.x, a);
    sgd_update(p.y, g.y, b.y, a);
    sgd_update(p.z, g.z, b.z, a);
    sgd_update(p.w, g.w, b.w, a);
    p4[i] = p;
    if (momentum) b4[i] = b;
  }
  const int64_t k = n4 * 4 + tid;
  if (k < n) {
    float b = momentum ? buf[k] : 0.0f;
    sgd_update(param[k], grad[k], b, a);
    if (momentum) buf[k] = b;
  }
}

// Plain grid-stride loop for arrays that are not all 16-byte aligned (e.g. row views).
__global__ void sgd_scalar_kernel(float* __restrict__ param, const float* __restrict__ grad,
                                  float* __restrict__ buf, int64_t n, SgdScalars a0, const StepState* st) {
  const SgdScalars a = with_state(a0, st);
  const bool momentum = a.mu != 0.0f;
  const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < n;
       i += stride) {
    float b = momentum ? buf[i] : 0.0f;
    sgd_update(param[i], grad[i], b, a);
    if (momentum) buf[i] = b;
  }
}

bool aligned16(const void* ptr) { return reinterpret_cast<std::uintptr_t>(ptr) % 16 == 0; }

}  // namespace

void sgd_step_cuda(float* param, const float* grad, float* buf, int64_t n, const SgdConfig& cfg,
                   Stream s) {
  check_sgd_config(cfg);
  CUVAE_CHECK(n >= 0, "sgd_step_cuda: negative size " << n);
  if (n == 0) return;
  SgdScalars a;
  a.lr = cfg.lr;
  a.mu = cfg.momentum;
  a.wd = cfg.weight_decay;
  a.nesterov = cfg.nesterov;
  const cudaStream_t st = detail::to_cuda(s);
  // With momentum 0, buf is never touched, so its alignment does not matter.
  const bool buf_ok = a.mu == 0.0f || aligned16(buf);
  if (aligned16(param) && aligned16(grad) && buf_ok) {
    // grid_for launches at least one block, so threads 0..2 exist for the n % 4 tail.
    sgd_vec4_kernel<<<detail::grid_for(n / 4), detail::kBlock, 0, st>>>(param, grad, buf, n, a, cfg.state);
  } else {
    sgd_scalar_kernel<<<detail::grid_for(n), detail::kBlock, 0, st>>>(param, grad, buf, n, a, cfg.state);
  }
  CUDA_CHECK_LAUNCH();
}

}  // namespace cuvae
