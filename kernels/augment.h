// Training-batch assembly with data augmentation on the device: gather images of a uint8 data
// set by index, random crop with zero padding and random horizontal flip, scale to [0, 1], and
// gather their labels. Randomness is Philox(seed, offset, image), identical on CPU and GPU.
#pragma once

#include <cstdint>

#include "core/tensor.h"
#include "kernels/emu/stream.h"
#include "kernels/step_state.h"

namespace cuvae {

/// What augmentation to apply. pad = 0 and flip = false is a plain gather.
struct AugmentConfig {
  int pad = 0;        ///< random-crop padding p: shifts dy, dx uniform in [−p, p], zeros outside
  bool flip = false;  ///< mirror left-right with probability ½ (never for MNIST: digits are not symmetric)
};

/// CPU reference. images [num_images, c, h, w] uint8, labels [num_images] uint8, indices [n]
/// int32 (each in [0, num_images), not checked: the caller builds them from a permutation).
/// For batch row i with source image s = indices[i], Philox block b = philox_at(seed, offset,
/// row_base + i) (row_base: the batch's first row within a data-parallel global batch, else 0):
///   dy = b.v[0] % (2p+1) − p,  dx = b.v[1] % (2p+1) − p,  flip = cfg.flip && (b.v[2] & 1),
///   out[i, ch, y, x] = src(ch, y + dy, xx + dx) / 255 with xx = flip ? w−1−x : x, and 0 where
///   y + dy or xx + dx falls outside the image (the crop of a zero-padded image);
///   labels_out[i] = labels[s] (if labels and labels_out are non-null).
/// out is [n, c, h, w] float32. Throws cuvae::Error on a negative size or pad.
void augment_batch_cpu(const uint8_t* images, const uint8_t* labels, const int32_t* indices,
                       int64_t n, int64_t c, int64_t h, int64_t w, const AugmentConfig& cfg,
                       uint64_t seed, uint64_t offset, float* out, int32_t* labels_out, int64_t row_base = 0);

/// CUDA version of augment_batch_cpu: every pointer in device memory, enqueued on `s` (no
/// allocation, no synchronisation); bit-identical to the CPU reference. Throws cuvae::Error on
/// a negative size or pad, or a launch error. With `step_state` (device memory) the batch is
/// rows indices[batch_first …] and the Philox offset is offset + philox_offset, both read when
/// the kernel runs (a captured step then gathers the next batch when replayed).
/// S: Stream on the GPU, EmuStream on the emulated device (kernels/emu/stream.h).
template <class S>
void augment_batch_cuda(const uint8_t* images, const uint8_t* labels, const int32_t* indices,
                        int64_t n, int64_t c, int64_t h, int64_t w, const AugmentConfig& cfg,
                        uint64_t seed, uint64_t offset, float* out, int32_t* labels_out, S s,
                        const StepState* step_state = nullptr);

}  // namespace cuvae
