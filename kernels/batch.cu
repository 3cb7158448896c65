#include "kernels/batch.h"

#include "kernels/launch.cuh"

namespace cuvae {
namespace {

__global__ void gather_batch_kernel(const uint8_t* __restrict__ images,
                                    const int32_t* __restrict__ indices, int64_t n, int64_t pixels,
                                    float* __restrict__ out) {
  const int64_t total = n * pixels;
  const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t idx = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; idx < total;
       idx += stride) {
    const int64_t i = idx / pixels, j = idx - i * pixels;
    out[idx] = static_cast<float>(images[static_cast<int64_t>(indices[i]) * pixels + j]) / 255.0f;
  }
}

}  // namespace

template <>
void gather_batch_cuda(const uint8_t* images, const int32_t* indices, int64_t n, int64_t pixels,
                       float* out, detail::DeviceStream s) {
  CUVAE_CHECK(n >= 0 && pixels >= 0,
              "gather_batch_cuda: negative size n=" << n << " pixels=" << pixels);
  const int64_t total = n * pixels;
  if (total == 0) return;
  detail::launch<gather_batch_kernel>(detail::grid_for(total), detail::kBlock, 0, s, images, indices, n, pixels, out);
}

}  // namespace cuvae
