#include "kernels/augment.h"

#include "core/check.h"
#include "core/philox.h"

namespace cuvae {

void augment_batch_cpu(const uint8_t* images, const uint8_t* labels, const int32_t* indices,
                       int64_t n, int64_t c, int64_t h, int64_t w, const AugmentConfig& cfg,
                       uint64_t seed, uint64_t offset, float* out, int32_t* labels_out, int64_t row_base) {
  CUVAE_CHECK(n >= 0 && c >= 0 && h >= 0 && w >= 0,
              "augment_batch: negative size n=" << n << " c=" << c << " h=" << h << " w=" << w);
  CUVAE_CHECK(cfg.pad >= 0, "augment_batch: negative pad " << cfg.pad);
  const int64_t p = cfg.pad;
  const uint32_t span = 2u * static_cast<uint32_t>(cfg.pad) + 1u;  // no overflow for any int pad
  for (int64_t i = 0; i < n; ++i) {
    const int64_t src = indices[i];
    const PhiloxBlock b = philox_at(seed, offset, static_cast<uint64_t>(row_base + i));
    const int64_t dy = static_cast<int64_t>(b.v[0] % span) - p;
    const int64_t dx = static_cast<int64_t>(b.v[1] % span) - p;
    const bool flip = cfg.flip && (b.v[2] & 1u) != 0;
    for (int64_t ch = 0; ch < c; ++ch) {
      const uint8_t* plane = images + (src * c + ch) * h * w;
      float* dst = out + ((i * c + ch) * h) * w;
      for (int64_t y = 0; y < h; ++y) {
        for (int64_t x = 0; x < w; ++x) {
          const int64_t sy = y + dy, sx = (flip ? w - 1 - x : x) + dx;
          const bool inside = sy >= 0 && sy < h && sx >= 0 && sx < w;
          dst[y * w + x] = inside ? static_cast<float>(plane[sy * w + sx]) / 255.0f : 0.0f;
        }
      }
    }
    if (labels != nullptr && labels_out != nullptr) labels_out[i] = labels[src];
  }
}

}  // namespace cuvae
