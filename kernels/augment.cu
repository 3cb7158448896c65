#include "kernels/augment.h"

#include "core/philox.h"
#include "kernels/launch.cuh"

namespace cuvae {
namespace {

// One thread per output element (grid-stride over max(n*c*h*w, n) items): element idx < total
// recomputes its row's Philox block (ten rounds, cheaper than a second pass) and gathers its
// source pixel exactly as augment_batch_cpu does; item idx < n also gathers row idx's label.
__global__ void augment_batch_kernel(const uint8_t* __restrict__ images,
                                     const uint8_t* __restrict__ labels,
                                     const int32_t* __restrict__ indices, int64_t n, int64_t c,
                                     int64_t h, int64_t w, int64_t pad, uint32_t span, bool flip,
                                     uint64_t seed, uint64_t offset, float* __restrict__ out,
                                     int32_t* __restrict__ labels_out, int64_t work, const StepState* st) {
  int64_t row_base = 0;  // the batch's first row within a data-parallel global batch
  if (st != nullptr) {  // this step's batch and random stream, read when the kernel runs
    indices += st->batch_first + st->row_base;
    offset += st->philox_offset;
    row_base = st->row_base;
  }
  const int64_t total = n * c * h * w;
  const int64_t per_image = c * h * w;
  const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t idx = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; idx < work;
       idx += stride) {
    if (idx < total) {
      const int64_t i = idx / per_image;
      const int64_t rest = idx - i * per_image;
      const int64_t ch = rest / (h * w);
      const int64_t y = (rest / w) % h, x = rest % w;
      const PhiloxBlock b = philox_at(seed, offset, static_cast<uint64_t>(row_base + i));
      const int64_t dy = static_cast<int64_t>(b.v[0] % span) - pad;
      const int64_t dx = static_cast<int64_t>(b.v[1] % span) - pad;
      const bool mirror = flip && (b.v[2] & 1u) != 0;
      const int64_t sy = y + dy, sx = (mirror ? w - 1 - x : x) + dx;
      const bool inside = sy >= 0 && sy < h && sx >= 0 && sx < w;
      const int64_t src = indices[i];
      out[idx] =
          inside ? static_cast<float>(images[((src * c + ch) * h + sy) * w + sx]) / 255.0f : 0.0f;
    }
    if (idx < n && labels != nullptr && labels_out != nullptr)
      labels_out[idx] = labels[indices[idx]];
  }
}

}  // namespace

template <>
void augment_batch_cuda(const uint8_t* images, const uint8_t* labels, const int32_t* indices,
                        int64_t n, int64_t c, int64_t h, int64_t w, const AugmentConfig& cfg,
                        uint64_t seed, uint64_t offset, float* out, int32_t* labels_out, detail::DeviceStream s,
                        const StepState* step_state) {
  CUVAE_CHECK(
      n >= 0 && c >= 0 && h >= 0 && w >= 0,
      "augment_batch_cuda: negative size n=" << n << " c=" << c << " h=" << h << " w=" << w);
  CUVAE_CHECK(cfg.pad >= 0, "augment_batch_cuda: negative pad " << cfg.pad);
  const int64_t total = n * c * h * w;
  const int64_t work = total > n ? total : n;
  if (work == 0) return;
  const uint32_t span = 2u * static_cast<uint32_t>(cfg.pad) + 1u;
  detail::launch<augment_batch_kernel>(detail::grid_for(work), detail::kBlock, 0, s, images, labels, indices, n, c, h, w, cfg.pad, span, cfg.flip, seed, offset, out, labels_out, work, step_state);
}

}  // namespace cuvae
