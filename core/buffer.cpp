#include "core/buffer.h"

#include <algorithm>
#include <utility>

#include "core/check.h"

namespace cuvae {

template <typename T>
Buffer<T>::Buffer(int64_t n, Device device) : n_(n), device_(device) {
  CUVAE_CHECK(n >= 0, "Buffer: negative size " << n);
  const size_t count = static_cast<size_t>(std::max<int64_t>(n, 1));
  if (device == Device::CUDA) {
    p_ = static_cast<T*>(device_malloc(sizeof(T) * count));
    memset_zero_any(p_, Device::CUDA, sizeof(T) * count);
  } else {
    p_ = new T[count]();
  }
}

template <typename T>
Buffer<T>::~Buffer() {
  if (p_ == nullptr) return;
  if (device_ == Device::CUDA)
    device_free(p_);
  else
    delete[] p_;
}

template <typename T>
Buffer<T>::Buffer(Buffer&& o) noexcept
    : p_(std::exchange(o.p_, nullptr)), n_(std::exchange(o.n_, 0)), device_(o.device_) {}

template <typename T>
Buffer<T>& Buffer<T>::operator=(Buffer&& o) noexcept {
  if (this != &o) {
    Buffer tmp(std::move(*this));
    p_ = std::exchange(o.p_, nullptr);
    n_ = std::exchange(o.n_, 0);
    device_ = o.device_;
  }
  return *this;
}

template <typename T>
void Buffer<T>::upload(const std::vector<T>& v) {
  CUVAE_CHECK(static_cast<int64_t>(v.size()) <= n_, "Buffer: " << v.size() << " values for a buffer of " << n_);
  memcpy_any(p_, device_, v.data(), Device::CPU, v.size() * sizeof(T));
}

template <typename T>
Buffer<T> Buffer<T>::from_vector(const std::vector<T>& v, Device device) {
  Buffer<T> b(static_cast<int64_t>(v.size()), device);
  b.upload(v);
  return b;
}

template <typename T>
std::vector<T> Buffer<T>::download(int64_t n) const {
  CUVAE_CHECK(n >= 0 && n <= n_, "Buffer: cannot read " << n << " of " << n_ << " values");
  std::vector<T> v(static_cast<size_t>(n));
  memcpy_any(v.data(), Device::CPU, p_, device_, v.size() * sizeof(T));
  return v;
}

template class Buffer<int32_t>;
template class Buffer<int64_t>;
template class Buffer<uint8_t>;
template class Buffer<float>;

}  // namespace cuvae
