// Batch assembly: gather images of a uint8 data set into a float32 batch in [0, 1].
#pragma once

#include <cstdint>

#include "core/tensor.h"
#include "kernels/emu/stream.h"

namespace cuvae {

/// CPU reference: out[i, j] = images[indices[i], j] / 255 for i < n, j < pixels, where
/// images is [num_images, pixels] uint8 (num_images at least 1 + the largest index),
/// indices [n] int32 and out [n, pixels] float32. Every index must lie in [0, num_images):
/// this function has no count to check them against (the caller builds them from a
/// permutation of the data set). Throws cuvae::Error on a negative size or index.
void gather_batch_cpu(const uint8_t* images, const int32_t* indices, int64_t n, int64_t pixels,
                      float* out);

/// CUDA version of gather_batch_cpu: images, indices and out in device memory, enqueued on
/// `s` (no allocation, no synchronisation). Indices are not checked on the device (that
/// would need a synchronisation); an out-of-range index is undefined behaviour. Throws
/// cuvae::Error on a negative size or a launch error.
/// S: Stream on the GPU, EmuStream on the emulated device (kernels/emu/stream.h).
template <class S>
void gather_batch_cuda(const uint8_t* images, const int32_t* indices, int64_t n, int64_t pixels,
                       float* out, S s);

}  // namespace cuvae
