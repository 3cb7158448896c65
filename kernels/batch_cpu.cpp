#include "kernels/batch.h"

#include "core/check.h"

namespace cuvae {

void gather_batch_cpu(const uint8_t* images, const int32_t* indices, int64_t n, int64_t pixels,
                      float* out) {
  CUVAE_CHECK(n >= 0 && pixels >= 0, "gather_batch: negative size n=" << n << " pixels=" << pixels);
  for (int64_t i = 0; i < n; ++i) {
    CUVAE_CHECK(indices[i] >= 0,
                "gather_batch: negative image index " << indices[i] << " at batch row " << i);
    const uint8_t* src = images + static_cast<int64_t>(indices[i]) * pixels;
    for (int64_t j = 0; j < pixels; ++j) out[i * pixels + j] = static_cast<float>(src[j]) / 255.0f;
  }
}

}  // namespace cuvae
