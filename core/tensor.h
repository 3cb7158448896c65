// Tensor: a dense float32 array in NCHW order that owns CPU or GPU storage.
#pragma once

#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <string>
#include <vector>

struct CUstream_st;

namespace cuvae {

/// Where a tensor's storage lives.
enum class Device { CPU, CUDA };

/// "cpu" or "cuda".
const char* device_name(Device d);

/// Opaque CUDA stream handle (the same type as cudaStream_t); nullptr is the
/// default stream. Declared here so host headers need no CUDA headers.
using Stream = ::CUstream_st*;

/// How a 4-D tensor's values are ordered in memory. Plain is NCHW (row-major), what every
/// kernel and file reads. Blocked8c / Blocked16c are oneDNN's nChw8c / nChw16c, [N][C/b][H][W][b]
/// with C a multiple of b: the order its convolutions and batch norm run fastest in on AVX2 /
/// AVX-512. Only the oneDNN layers write blocked tensors, only where a model asks for them
/// (ResNet18 between its layers); elementwise kernels work on any layout when all their operands
/// share it.
enum class Layout { Plain, Blocked8c, Blocked16c };

/// "plain", "nChw8c" or "nChw16c".
const char* layout_name(Layout l);

/// A dense row-major float32 tensor (NCHW for images, [N, F] for features), or a 4-D tensor in
/// one of oneDNN's blocked layouts (layout()).
///
/// Owns its storage (64-byte aligned host memory, or cudaMalloc'd device memory)
/// unless created with `view()`, in which case it only borrows the pointer. Move-only:
/// a copy is always explicit (`clone()`, `to()`, `copy_from()`). New tensors are
/// zero-filled. Throws cuvae::Error on allocation failure or when CUDA storage is
/// requested from a build or machine without CUDA.
class Tensor {
 public:
  Tensor() = default;
  /// A zero-filled tensor of `shape` on `device`.
  explicit Tensor(std::vector<int64_t> shape, Device device = Device::CPU);
  Tensor(const Tensor&) = delete;
  Tensor& operator=(const Tensor&) = delete;
  Tensor(Tensor&& o) noexcept;
  Tensor& operator=(Tensor&& o) noexcept;
  ~Tensor();

  /// A non-owning tensor over `data` (which must outlive it).
  static Tensor view(float* data, std::vector<int64_t> shape, Device device);
  /// A CPU tensor holding a copy of `values`; `values.size()` must equal the shape's product.
  static Tensor from_vector(const std::vector<float>& values, std::vector<int64_t> shape,
                            Device device = Device::CPU);

  /// First element (host or device pointer, as device() says); nullptr when empty.
  float* data() { return data_; }
  const float* data() const { return data_; }
  /// Dimensions, outermost first (NCHW for images).
  const std::vector<int64_t>& shape() const { return shape_; }
  /// Size of dimension `i` (negative counts from the end).
  int64_t dim(int i) const;
  /// Number of dimensions.
  int ndim() const { return static_cast<int>(shape_.size()); }
  /// Number of elements (product of the dimensions).
  int64_t numel() const { return numel_; }
  /// Size of the data in bytes (numel · 4).
  size_t bytes() const { return static_cast<size_t>(numel_) * sizeof(float); }
  /// Where the storage lives.
  Device device() const { return device_; }
  bool is_cuda() const { return device_ == Device::CUDA; }
  /// True when the tensor holds no elements.
  bool empty() const { return numel_ == 0; }
  /// True when this tensor frees its storage (false for views).
  bool owns() const { return owns_; }
  /// "[128, 1, 28, 28]".
  std::string shape_str() const;
  /// The order of the values in memory (Plain unless a oneDNN layer wrote the tensor blocked).
  /// The shape is always the logical [N, C, H, W].
  Layout layout() const { return layout_; }
  /// Declares the order the values were written in (the writer's job; nothing is moved).
  void set_layout(Layout l) { layout_ = l; }

  /// A non-owning view of the same storage with another shape of equal numel.
  Tensor reshaped(std::vector<int64_t> shape);
  /// A non-owning view of rows [begin, end) of the first dimension.
  Tensor rows(int64_t begin, int64_t end);
  /// A deep copy on `device` (synchronous).
  Tensor to(Device device) const;
  /// A deep copy on the same device.
  Tensor clone() const { return to(device_); }
  /// Copies `src` (same numel, any device) into this tensor. Device-to-device copies are
  /// asynchronous on `stream` (nullptr: current_stream()); copies to or from the host return
  /// when the data has arrived (see memcpy_any).
  void copy_from(const Tensor& src, Stream stream = nullptr);
  /// Sets every element to zero (asynchronous on `stream` for CUDA tensors; nullptr:
  /// current_stream(), or a synchronous zeroing when this thread has no CUDA Context).
  void zero(Stream stream = nullptr);
  /// Host copy of the contents (synchronous).
  std::vector<float> to_vector() const;

 private:
  float* data_ = nullptr;
  std::vector<int64_t> shape_;
  int64_t numel_ = 0;
  Device device_ = Device::CPU;
  Layout layout_ = Layout::Plain;
  bool owns_ = false;
  void release() noexcept;
};

/// Makes `store` (flat) hold at least `numel` elements on `device`, reallocating only when it is
/// smaller or elsewhere. Layers keep their buffers this way: they grow to the largest batch seen
/// and are reused, so a steady-state training step allocates nothing (and a captured CUDA graph's
/// addresses stay valid until something grows). Throws cuvae::Error on allocation failure.
void grow_to(Tensor& store, int64_t numel, Device device);
/// grow_to(store, product of `shape`), then `view` ← a `shape` view of store's first elements.
/// Returns `view`.
Tensor& grow_view(Tensor& store, Tensor& view, std::vector<int64_t> shape, Device device);

/// Product of a shape's dimensions; throws cuvae::Error on a negative dimension.
int64_t shape_numel(const std::vector<int64_t>& shape);

/// True when this build has the CUDA backend and at least one usable GPU (probed once: a device
/// count, then a 256-byte allocation).
bool cuda_available();
/// Why cuda_available() is false, in CUDA's words (e.g. "cudaGetDeviceCount: CUDA driver version
/// is insufficient for CUDA runtime version (cudaErrorInsufficientDriver)"); empty when it is true.
const std::string& cuda_unavailable_reason();

/// The stream this thread's CUDA work is ordered on: that of the innermost CUDA Context alive
/// on this thread, or nullptr when there is none (always nullptr in a build without CUDA).
/// Host copies of CUDA tensors (to_vector, to, from_vector, memcpy_any) and the zeroing of new
/// CUDA tensors are queued on it, so they stay ordered after the kernels of that Context even
/// though its stream is non-blocking and the legacy default stream is never used.
Stream current_stream();

namespace detail {
/// Makes `s` this thread's current_stream() and returns the previous one (Context uses it).
Stream exchange_current_stream(Stream s);
}  // namespace detail

/// Raw memory copy in either direction between host and device buffers. A copy touching the
/// device is cudaMemcpyAsync on `stream` (nullptr: current_stream()) followed by a synchronise
/// of that stream, so it returns when the data has arrived and after every kernel queued
/// before it on that stream. With no stream at all (no CUDA Context on this thread) it first
/// waits for the whole device. Throws cuvae::Error on a CUDA error.
void memcpy_any(void* dst, Device dst_dev, const void* src, Device src_dev, size_t bytes,
                Stream stream = nullptr);

/// Sets `bytes` bytes at `p` (host or device memory) to zero; on a device, queued on `stream`
/// (nullptr: current_stream(), or done before returning when this thread has no CUDA Context).
void memset_zero_any(void* p, Device device, size_t bytes, Stream stream = nullptr);

/// Number of buffers allocated so far by Tensor (host or device storage) and device_malloc,
/// process-wide. Tests use it to check that a steady-state training step allocates nothing.
int64_t allocation_count();

/// Bytes of host memory the kernel reports as available to a new allocation (MemAvailable of
/// /proc/meminfo; the physical memory size where that file is unreadable).
uint64_t available_host_memory();

/// Throws cuvae::Error "cannot allocate <GiB> for <what> in host memory: only <GiB> are
/// available (try a smaller --batch or --n)" when `bytes` exceed available_host_memory(), so that
/// an absurd size fails with a message instead of the kernel's out-of-memory killer.
/// Sizes below 64 MiB are not checked (no file read).
void check_host_allocation(uint64_t bytes, const std::string& what);

/// Allocates `bytes` of device memory (throws cuvae::Error if not possible: a failed cudaMalloc
/// is reported as "out of GPU memory" with the size, naming --batch and --n).
void* device_malloc(size_t bytes);
/// Frees memory from device_malloc (never throws; logs on failure).
void device_free(void* p) noexcept;

}  // namespace cuvae
