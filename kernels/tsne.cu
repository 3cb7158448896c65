#include <cmath>
#include <cstdint>
#include <cub/block/block_reduce.cuh>

#include "kernels/launch.cuh"
#include "kernels/tsne.h"

namespace cuvae {
namespace {

constexpr int kWarps = 8;                 // rows i per block of the force kernel
constexpr int kForceThreads = kWarps * 32;
constexpr int kTile = 1024;               // points j staged in shared memory per tile
constexpr int kCombineThreads = 1024;     // threads of the one-block combine kernel

// Per row i (one warp each, kWarps rows per block): z_i = Σ_{j≠i} q̃_ij, attractive
// a_i = Σ_j p_ij q̃_ij (y_i − y_j) and repulsive r_i = Σ_j q̃_ij² (y_i − y_j), with Y staged in
// shared memory a tile at a time and P read along row i (coalesced across the warp's lanes).
// Writes ws[4i .. 4i + 3] = (a_x, a_y, r_x, r_y) and ws[4n + i] = z_i. Each lane sums a
// fixed strided subset and the warp reduces with a fixed shuffle tree: deterministic.
__global__ void __launch_bounds__(kForceThreads)
    tsne_force_kernel(const float* __restrict__ P, const float2* __restrict__ Y, int n,
                      float* __restrict__ ws) {
  __shared__ float2 tile[kTile];
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  const int i = blockIdx.x * kWarps + warp;
  const bool active = i < n;
  const float2 yi = active ? Y[i] : make_float2(0.0f, 0.0f);
  const float* Pi = P + static_cast<int64_t>(active ? i : 0) * n;
  float z = 0.0f, ax = 0.0f, ay = 0.0f, rx = 0.0f, ry = 0.0f;
  for (int j0 = 0; j0 < n; j0 += kTile) {
    const int len = min(kTile, n - j0);
    for (int t = threadIdx.x; t < len; t += kForceThreads) tile[t] = Y[j0 + t];
    __syncthreads();
    if (active) {
      for (int t = lane; t < len; t += 32) {
        const int j = j0 + t;
        if (j == i) continue;
        const float dx = yi.x - tile[t].x, dy = yi.y - tile[t].y;
        const float q = 1.0f / (1.0f + dx * dx + dy * dy);
        const float pq = Pi[j] * q, qq = q * q;
        z += q;
        ax += pq * dx;
        ay += pq * dy;
        rx += qq * dx;
        ry += qq * dy;
      }
    }
    __syncthreads();  // the tile is overwritten next
  }
  for (int off = 16; off > 0; off /= 2) {
    z += __shfl_down_sync(0xffffffffu, z, off);
    ax += __shfl_down_sync(0xffffffffu, ax, off);
    ay += __shfl_down_sync(0xffffffffu, ay, off);
    rx += __shfl_down_sync(0xffffffffu, rx, off);
    ry += __shfl_down_sync(0xffffffffu, ry, off);
  }
  if (active && lane == 0) {
    reinterpret_cast<float4*>(ws)[i] = make_float4(ax, ay, rx, ry);
    ws[4 * static_cast<int64_t>(n) + i] = z;
  }
}

// One block: Z = Σ_i z_i (per-thread strided sums in double, then a fixed-shape block
// reduction), then grad_i = 4 (α a_i − r_i / Z). Stores Z at ws[5n].
__global__ void __launch_bounds__(kCombineThreads)
    tsne_combine_kernel(float* __restrict__ ws, int n, float exaggeration,
                        float2* __restrict__ grad) {
  using Reduce = cub::BlockReduce<double, kCombineThreads>;
  __shared__ typename Reduce::TempStorage tmp;
  __shared__ float inv_z;
  double acc = 0.0;
  const float* z = ws + 4 * static_cast<int64_t>(n);
  for (int i = threadIdx.x; i < n; i += kCombineThreads) acc += static_cast<double>(z[i]);
  const double total = Reduce(tmp).Sum(acc);
  if (threadIdx.x == 0) {
    ws[5 * static_cast<int64_t>(n)] = static_cast<float>(total);
    inv_z = static_cast<float>(1.0 / total);
  }
  __syncthreads();
  const float4* f = reinterpret_cast<const float4*>(ws);
  for (int i = threadIdx.x; i < n; i += kCombineThreads) {
    const float4 v = f[i];
    grad[i] = make_float2(4.0f * (exaggeration * v.x - v.z * inv_z),
                          4.0f * (exaggeration * v.y - v.w * inv_z));
  }
}

// The gains / momentum step of tsne_update_cpu, one element per thread (grid-stride).
__global__ void tsne_update_kernel(float* __restrict__ y, const float* __restrict__ grad,
                                   float* __restrict__ update, float* __restrict__ gains,
                                   int64_t m, float momentum, float lr, float min_gain) {
  const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t k = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; k < m;
       k += stride) {
    const float g = grad[k], u = update[k];
    float gain = u * g < 0.0f ? gains[k] + 0.2f : gains[k] * 0.8f;
    gain = fmaxf(gain, min_gain);
    gains[k] = gain;
    const float nu = momentum * u - lr * (gain * g);
    update[k] = nu;
    y[k] += nu;
  }
}

}  // namespace

template <>
void tsne_grad_exact_cuda(const float* P, const float* Y, int64_t n, float exaggeration,
                          float* grad, float* workspace, detail::DeviceStream s) {
  CUVAE_CHECK(n >= 2 && n < (int64_t(1) << 31),
              "tsne_grad_exact_cuda: need 2 <= n < 2^31 points, got " << n);
  CUVAE_CHECK(P != nullptr && Y != nullptr && grad != nullptr && workspace != nullptr,
              "tsne_grad_exact_cuda: null pointer argument");
  // float2 / float4 accesses need 8- and 16-byte alignment (cudaMalloc gives 256).
  CUVAE_CHECK(reinterpret_cast<uintptr_t>(Y) % 8 == 0 &&
                  reinterpret_cast<uintptr_t>(grad) % 8 == 0 &&
                  reinterpret_cast<uintptr_t>(workspace) % 16 == 0,
              "tsne_grad_exact_cuda: Y and grad must be 8-byte, workspace 16-byte aligned");
  const int nn = static_cast<int>(n);
  const unsigned blocks = static_cast<unsigned>((n + kWarps - 1) / kWarps);
  detail::launch<tsne_force_kernel>(blocks, kForceThreads, 0, s, P, reinterpret_cast<const float2*>(Y), nn, workspace);
  detail::launch<tsne_combine_kernel>(1, kCombineThreads, 0, s, workspace, nn, exaggeration, reinterpret_cast<float2*>(grad));
}

template <>
void tsne_update_cuda(float* y, const float* grad, float* update, float* gains, int64_t m,
                      float momentum, float learning_rate, float min_gain, detail::DeviceStream s) {
  CUVAE_CHECK(m >= 0, "tsne_update: negative size " << m);
  CUVAE_CHECK(std::isfinite(learning_rate) && learning_rate > 0.0f,
              "tsne_update: learning rate must be > 0, got " << learning_rate);
  CUVAE_CHECK(momentum >= 0.0f && momentum < 1.0f,
              "tsne_update: momentum must be in [0, 1), got " << momentum);
  CUVAE_CHECK(std::isfinite(min_gain) && min_gain >= 0.0f,
              "tsne_update: min_gain must be >= 0, got " << min_gain);
  if (m == 0) return;
  detail::launch<tsne_update_kernel>(detail::grid_for(m), detail::kBlock, 0, s, y, grad, update, gains, m, momentum, learning_rate, min_gain);
}

}  // namespace cuvae
