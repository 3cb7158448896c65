#include "kernels/reparameterize.h"

#include "core/philox.h"
#include "kernels/launch.cuh"

namespace cuvae {
namespace {

__global__ void reparameterize_forward_kernel(const float* mu, const float* __restrict__ logvar,
                                              float* __restrict__ eps, float* z, int64_t n,
                                              uint64_t seed, uint64_t offset, const StepState* st,
                                              int64_t row_elems) {
  uint64_t base = 0;  // the first value's index within a data-parallel global batch
  if (st != nullptr) {
    offset += st->philox_offset;
    base = static_cast<uint64_t>(st->row_base * row_elems);
  }
  const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < n;
       i += stride) {
    const float e = philox_normal(seed, offset, base + static_cast<uint64_t>(i));
    eps[i] = e;
    z[i] = mu[i] + expf(0.5f * logvar[i]) * e;
  }
}

__global__ void reparameterize_backward_kernel(const float* dz, const float* __restrict__ eps,
                                               const float* __restrict__ logvar, float* dmu,
                                               float* dlogvar, int64_t n, bool accumulate) {
  const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < n;
       i += stride) {
    const float g = dz[i];
    const float gl = g * eps[i] * 0.5f * expf(0.5f * logvar[i]);
    if (accumulate) {
      dmu[i] += g;
      dlogvar[i] += gl;
    } else {
      dmu[i] = g;
      dlogvar[i] = gl;
    }
  }
}

__global__ void sample_normal_kernel(float* __restrict__ out, int64_t n, uint64_t seed,
                                     uint64_t offset) {
  const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += stride)
    out[i] = philox_normal(seed, offset, static_cast<uint64_t>(i));
}

}  // namespace

template <>
void reparameterize_forward_cuda(const float* mu, const float* logvar, float* eps, float* z,
                                 int64_t n, uint64_t seed, uint64_t offset, detail::DeviceStream s,
                                 const StepState* step_state, int64_t row_elems) {
  CUVAE_CHECK(n >= 0, "reparameterize_forward_cuda: negative size " << n);
  if (n == 0) return;
  detail::launch<reparameterize_forward_kernel>(detail::grid_for(n), detail::kBlock, 0, s, mu, logvar, eps, z, n, seed, offset, step_state, row_elems);
}

template <>
void reparameterize_backward_cuda(const float* dz, const float* eps, const float* logvar,
                                  float* dmu, float* dlogvar, int64_t n, bool accumulate,
                                  detail::DeviceStream s) {
  CUVAE_CHECK(n >= 0, "reparameterize_backward_cuda: negative size " << n);
  if (n == 0) return;
  detail::launch<reparameterize_backward_kernel>(detail::grid_for(n), detail::kBlock, 0, s, dz, eps, logvar, dmu, dlogvar, n, accumulate);
}

template <>
void sample_normal_cuda(float* out, int64_t n, uint64_t seed, uint64_t offset, detail::DeviceStream s) {
  CUVAE_CHECK(n >= 0, "sample_normal_cuda: negative size " << n);
  if (n == 0) return;
  detail::launch<sample_normal_kernel>(detail::grid_for(n), detail::kBlock, 0, s, out, n, seed, offset);
}

}  // namespace cuvae
