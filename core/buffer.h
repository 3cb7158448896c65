// Buffer<T>: a typed 1-D array on the CPU or a GPU, beside Tensor (which holds float32 only):
// int32 labels and batch orders, int64 indices, uint8 images.
#pragma once

#include <cstdint>
#include <vector>

#include "core/tensor.h"

namespace cuvae {

/// n values of T (int32_t, int64_t, uint8_t or float) in host memory or device memory,
/// zero-filled, freed with the object. Move-only. Throws cuvae::Error on a negative size or when
/// the memory cannot be allocated.
template <typename T>
class Buffer {
 public:
  Buffer() = default;
  Buffer(int64_t n, Device device);
  ~Buffer();
  Buffer(Buffer&& o) noexcept;
  Buffer& operator=(Buffer&& o) noexcept;
  Buffer(const Buffer&) = delete;
  Buffer& operator=(const Buffer&) = delete;

  /// First element (a device pointer when device() is CUDA).
  T* data() { return p_; }
  const T* data() const { return p_; }
  /// Number of elements.
  int64_t size() const { return n_; }
  /// Where the storage lives.
  Device device() const { return device_; }
  /// A buffer of v.size() values on `device` holding `v` (returns when the copy is done).
  static Buffer from_vector(const std::vector<T>& v, Device device = Device::CPU);
  /// Copies `v` (at most size() values) to the start of the buffer (returns when done).
  void upload(const std::vector<T>& v);
  /// The first `n` values on the host (returns when done). Throws unless 0 <= n <= size().
  std::vector<T> download(int64_t n) const;

 private:
  T* p_ = nullptr;
  int64_t n_ = 0;
  Device device_ = Device::CPU;
};

extern template class Buffer<int32_t>;
extern template class Buffer<int64_t>;
extern template class Buffer<uint8_t>;
extern template class Buffer<float>;

/// Class labels, batch orders and other int32 data on a device.
using IntBuffer = Buffer<int32_t>;

}  // namespace cuvae
