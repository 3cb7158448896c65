#include "kernels/gradcam.h"

#include <climits>
#include <cub/block/block_reduce.cuh>

#include "kernels/launch.cuh"

namespace cuvae {
namespace {

constexpr int kThreads = 256;
constexpr int kWarps = kThreads / 32;
// Largest k and h·w: the channel weights and the cam map share 2·4096 floats (32 KiB) of
// dynamic shared memory, under the 48 KiB a block gets without opting in.
constexpr int64_t kMaxShared = 4096;

// Floats of shared memory reserved for n values: n rounded up to whole 16-byte units. ptxas
// merges the unrolled tail of the eq. 2 loop (alpha[c], alpha[c+1], alpha[c+2]) into one wide
// load issued before the guards, so it reads up to 3 floats past alpha's end; with alpha padded
// to 16 bytes those stay inside alpha's own padding, which no thread writes, instead of reading
// cam while other threads write it (compute-sanitizer's racecheck) or past the allocation when
// h·w is small (memcheck). The values read there are never used.
__host__ __device__ constexpr int padded16(int n) { return (n + 3) & ~3; }

struct MinOp {
  __device__ double operator()(double a, double b) const { return fmin(a, b); }
};
struct MaxOp {
  __device__ double operator()(double a, double b) const { return fmax(a, b); }
};

// Source taps of output index `dst` for a resize with align_corners=False, as PyTorch's
// upsample_bilinear2d: src = max((dst + 0.5)·scale − 0.5, 0) with scale = in/out,
// i0 = floor(src), i1 = min(i0 + 1, in − 1), lambda = src − i0 (the weight of i1).
__device__ __forceinline__ void taps(int dst, int in, double scale, int& i0, int& i1,
                                     double& lambda) {
  const double src = fmax(scale * (static_cast<double>(dst) + 0.5) - 0.5, 0.0);
  i0 = min(static_cast<int>(src), in - 1);
  i1 = min(i0 + 1, in - 1);
  lambda = src - static_cast<double>(i0);
}

// The bilinear value of output pixel (oy, ox) from cam [h, w].
__device__ __forceinline__ double upsample_at(const float* cam, int h, int w, double sy,
                                              double sx, int oy, int ox) {
  int y0, y1, x0, x1;
  double ly, lx;
  taps(oy, h, sy, y0, y1, ly);
  taps(ox, w, sx, x0, x1, lx);
  const double c00 = cam[y0 * w + x0], c01 = cam[y0 * w + x1];
  const double c10 = cam[y1 * w + x0], c11 = cam[y1 * w + x1];
  return (1.0 - ly) * ((1.0 - lx) * c00 + lx * c01) + ly * ((1.0 - lx) * c10 + lx * c11);
}

// Block i handles image i: alpha (one warp per channel) → cam (one thread per pixel) →
// upsampled min/max (block reductions) → normalised heat map, recomputing the upsampled
// values in the second pass instead of storing them. alpha and cam are kept in float in
// shared memory (cam is also what cam_out receives); the arithmetic is in double, as in the
// CPU reference. The double work is O(k·h·w + H·W) per image, small beside the loads.
__global__ void __launch_bounds__(kThreads)
    gradcam_kernel(const float* __restrict__ A, const float* __restrict__ dA, int k, int h, int w,
                   int H, int W, float* __restrict__ heat, float* __restrict__ cam_out) {
  float* smem = detail::dynamic_shared<float>();
  float* alpha = smem;                // [k], padded to 16 bytes
  float* cam = smem + padded16(k);    // [h·w], padded to 16 bytes
  using Reduce = cub::BlockReduce<double, kThreads>;
  __shared__ typename Reduce::TempStorage tmp;
  __shared__ double s_lo, s_hi;

  const int64_t i = blockIdx.x;
  const int hw = h * w;
  const float* a = A + i * k * hw;
  const float* g = dA + i * k * hw;
  const int lane = static_cast<int>(threadIdx.x) & 31, warp = static_cast<int>(threadIdx.x) >> 5;

  // eq. 1: alpha[c] = mean of dA over the map. The sums of eq. 1 and 2 run in double, as
  // the CPU reference's do: with k up to 4096 terms of one sign a float sum would lose
  // digits that the normalisation (a difference of nearby values) makes visible.
  for (int c = warp; c < k; c += kWarps) {
    double s = 0.0;
    for (int p = lane; p < hw; p += 32) s += static_cast<double>(g[c * hw + p]);
    for (int o = 16; o > 0; o >>= 1) s += __shfl_xor_sync(0xffffffffu, s, o);
    if (lane == 0) alpha[c] = static_cast<float>(s / static_cast<double>(hw));
  }
  __syncthreads();

  // eq. 2: cam = ReLU(Σ_c alpha[c]·A[c]).
  for (int p = static_cast<int>(threadIdx.x); p < hw; p += kThreads) {
    double s = 0.0;
    for (int c = 0; c < k; ++c)
      s += static_cast<double>(alpha[c]) * static_cast<double>(a[c * hw + p]);
    const float v = static_cast<float>(fmax(s, 0.0));
    cam[p] = v;
    if (cam_out) cam_out[i * hw + p] = v;
  }
  __syncthreads();

  // Upsampling and normalisation also run in double: a float resize of a constant map can be
  // off by an ulp, which the normalisation would blow up into a map of zeros and ones.
  const double sy = static_cast<double>(h) / static_cast<double>(H);
  const double sx = static_cast<double>(w) / static_cast<double>(W);
  const int HW = H * W;
  double lo = INFINITY, hi = -INFINITY;
  for (int q = static_cast<int>(threadIdx.x); q < HW; q += kThreads) {
    const double v = upsample_at(cam, h, w, sy, sx, q / W, q % W);
    lo = fmin(lo, v);
    hi = fmax(hi, v);
  }
  const double block_lo = Reduce(tmp).Reduce(lo, MinOp{});
  __syncthreads();  // tmp is reused
  const double block_hi = Reduce(tmp).Reduce(hi, MaxOp{});
  if (threadIdx.x == 0) {
    s_lo = block_lo;
    s_hi = block_hi;
  }
  __syncthreads();

  const double mn = s_lo, range = s_hi - s_lo;
  const bool flat = range <= 1e-12 * fmax(1.0, s_hi);
  float* out = heat + i * HW;
  for (int q = static_cast<int>(threadIdx.x); q < HW; q += kThreads)
    out[q] = flat ? 0.0f
                  : static_cast<float>((upsample_at(cam, h, w, sy, sx, q / W, q % W) - mn) / range);
}

}  // namespace

template <>
void gradcam_cuda(const float* A, const float* dA, int64_t n, int64_t k, int64_t h, int64_t w,
                  int64_t H, int64_t W, float* heat, float* cam_out, detail::DeviceStream s) {
  CUVAE_CHECK(n > 0 && k > 0 && h > 0 && w > 0 && H > 0 && W > 0,
              "gradcam_cuda: non-positive size n=" << n << " k=" << k << " h=" << h << " w=" << w
                                                   << " H=" << H << " W=" << W);
  CUVAE_CHECK(k <= kMaxShared && h * w <= kMaxShared,
              "gradcam_cuda: k=" << k << " and h·w=" << h * w << " must be at most " << kMaxShared
                                 << " (shared memory)");
  CUVAE_CHECK(n <= INT_MAX && H * W <= INT_MAX,
              "gradcam_cuda: too large: n=" << n << " H=" << H << " W=" << W);
  const size_t shared =
      static_cast<size_t>(padded16(static_cast<int>(k)) + padded16(static_cast<int>(h * w))) * sizeof(float);
  detail::launch<gradcam_kernel>(static_cast<unsigned>(n), kThreads, shared, s, A, dA, static_cast<int>(k), static_cast<int>(h), static_cast<int>(w), static_cast<int>(H), static_cast<int>(W), heat, cam_out);
}

}  // namespace cuvae
