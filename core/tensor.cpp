#include "core/tensor.h"

#include <atomic>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <sstream>

#include <unistd.h>

#include "core/check.h"

#ifdef CUVAE_HAS_CUDA
#include "core/cuda_check.h"
#endif

namespace cuvae {

namespace {
std::atomic<int64_t> g_allocations{0};
}

int64_t allocation_count() { return g_allocations.load(); }

uint64_t available_host_memory() {
  if (std::FILE* f = std::fopen("/proc/meminfo", "r")) {
    char line[256];
    unsigned long long kb = 0;
    bool found = false;
    while (std::fgets(line, sizeof line, f) != nullptr)
      if (std::sscanf(line, "MemAvailable: %llu kB", &kb) == 1) {
        found = true;
        break;
      }
    std::fclose(f);
    if (found) return static_cast<uint64_t>(kb) * 1024u;
  }
  const long pages = ::sysconf(_SC_PHYS_PAGES), page = ::sysconf(_SC_PAGESIZE);
  return pages > 0 && page > 0 ? static_cast<uint64_t>(pages) * static_cast<uint64_t>(page) : UINT64_MAX;
}

namespace {
std::string gib(uint64_t bytes) {
  std::ostringstream os;
  os.precision(1);
  os << std::fixed << static_cast<double>(bytes) / static_cast<double>(uint64_t{1} << 30) << " GiB";
  return os.str();
}
}  // namespace

void check_host_allocation(uint64_t bytes, const std::string& what) {
  if (bytes < (uint64_t{64} << 20)) return;
  const uint64_t avail = available_host_memory();
  if (bytes > avail)
    CUVAE_FAIL("cannot allocate " << gib(bytes) << " for " << what << " in host memory: only " << gib(avail)
                                  << " are available (try a smaller " << option("batch") << " or " << option("n") << ")");
}

const char* device_name(Device d) { return d == Device::CUDA ? "cuda" : "cpu"; }

int64_t shape_numel(const std::vector<int64_t>& shape) {
  int64_t n = 1;
  for (int64_t d : shape) {
    CUVAE_CHECK(d >= 0, "negative tensor dimension " << d);
    CUVAE_REQUIRE(d == 0 || n <= INT64_MAX / d, "a tensor of " << shape.size() << " dimensions this large cannot be "
                                                "addressed (try a smaller " << option("batch") << " or " << option("n") << ")");
    n *= d;
  }
  return n;
}

namespace {
// Probes the GPU once: an empty string when one works, else why not (CUDA's own words).
const std::string& cuda_probe() {
  static const std::string why = [] {
#ifdef CUVAE_HAS_CUDA
    int n = 0;
    const cudaError_t count = cudaGetDeviceCount(&n);
    if (count != cudaSuccess) {
      cudaGetLastError();
      return std::string("cudaGetDeviceCount: ") + cudaGetErrorString(count) + " (" + cudaGetErrorName(count) + ")";
    }
    if (n == 0) return std::string("cudaGetDeviceCount reports no CUDA device");
    void* p = nullptr;
    const cudaError_t alloc = cudaMalloc(&p, 256);
    if (alloc != cudaSuccess) {
      cudaGetLastError();
      return std::string("cudaMalloc of 256 bytes: ") + cudaGetErrorString(alloc) + " (" + cudaGetErrorName(alloc) + ")";
    }
    cudaFree(p);
    return std::string();
#else
    return std::string("this build of cuvae has no CUDA backend (CUDA was not found at build time)");
#endif
  }();
  return why;
}
}  // namespace

bool cuda_available() { return cuda_probe().empty(); }

const std::string& cuda_unavailable_reason() { return cuda_probe(); }

void* device_malloc(size_t bytes) {
#ifdef CUVAE_HAS_CUDA
  void* p = nullptr;
  if (bytes == 0) return nullptr;
  const cudaError_t err = cudaMalloc(&p, bytes);
  if (err == cudaErrorMemoryAllocation) {
    cudaGetLastError();
    size_t free_b = 0, total_b = 0;
    cudaMemGetInfo(&free_b, &total_b);
    CUVAE_FAIL("out of GPU memory allocating " << gib(bytes) << " (" << gib(free_b) << " of " << gib(total_b)
                                                << " free; try a smaller " << option("batch") << " or " << option("n") << ")");
  }
  CUDA_CHECK(err);
  ++g_allocations;
  return p;
#else
  (void)bytes;
  CUVAE_FAIL("this build of cuvae has no CUDA backend (rebuild with CUDA found)");
#endif
}

void device_free(void* p) noexcept {
#ifdef CUVAE_HAS_CUDA
  if (p == nullptr) return;
  cudaError_t e = cudaFree(p);
  if (e != cudaSuccess) std::fprintf(stderr, "cuvae: cudaFree failed: %s\n", cudaGetErrorString(e));
#else
  (void)p;
#endif
}

namespace {
thread_local Stream t_current_stream = nullptr;

#ifdef CUVAE_HAS_CUDA
// The stream for a copy or memset asked for on `s`: `s`, else this thread's context stream,
// else the per-thread default stream after waiting for the whole device (nothing of ours is
// then known to be ordered before the copy, so everything must have finished).
cudaStream_t resolve_stream(Stream s) {
  if (s == nullptr) s = t_current_stream;
  if (s != nullptr) return static_cast<cudaStream_t>(s);
  CUDA_CHECK(cudaDeviceSynchronize());
  return cudaStreamPerThread;
}
#endif
}  // namespace

Stream current_stream() { return t_current_stream; }

Stream detail::exchange_current_stream(Stream s) {
  Stream prev = t_current_stream;
  t_current_stream = s;
  return prev;
}

void memcpy_any(void* dst, Device dst_dev, const void* src, Device src_dev, size_t bytes, Stream stream) {
  if (bytes == 0) return;
  if (dst_dev == Device::CPU && src_dev == Device::CPU) {
    std::memcpy(dst, src, bytes);
    return;
  }
#ifdef CUVAE_HAS_CUDA
  const cudaStream_t st = resolve_stream(stream);
  CUDA_CHECK(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDefault, st));
  CUDA_CHECK(cudaStreamSynchronize(st));
#else
  (void)stream;
  CUVAE_FAIL("this build of cuvae has no CUDA backend (rebuild with CUDA found)");
#endif
}

Tensor::Tensor(std::vector<int64_t> shape, Device device)
    : shape_(std::move(shape)), device_(device), owns_(true) {
  numel_ = shape_numel(shape_);
  if (numel_ == 0) return;
  if (device_ == Device::CPU) {
    // Exactly the tensor's bytes, 64-byte aligned: AddressSanitizer then reports the first byte
    // read or written past the end (the emulated device's kernels run on these blocks).
    const size_t b = bytes();
    check_host_allocation(b, "a tensor " + shape_str());
    void* p = nullptr;
    data_ = posix_memalign(&p, 64, b) == 0 ? static_cast<float*>(p) : nullptr;
    ++g_allocations;
    CUVAE_REQUIRE(data_ != nullptr, "out of host memory allocating a tensor " << shape_str() << " (" << gib(b)
                                                                              << "; try a smaller " << option("batch") << " or " << option("n") << ")");
    std::memset(data_, 0, bytes());
  } else {
    data_ = static_cast<float*>(device_malloc(bytes()));
    zero();
  }
}

Tensor::Tensor(Tensor&& o) noexcept
    : data_(o.data_), shape_(std::move(o.shape_)), numel_(o.numel_), device_(o.device_), layout_(o.layout_),
      owns_(o.owns_) {
  o.layout_ = Layout::Plain;
  o.data_ = nullptr;
  o.numel_ = 0;
  o.owns_ = false;
  o.shape_.clear();
}

Tensor& Tensor::operator=(Tensor&& o) noexcept {
  if (this != &o) {
    release();
    data_ = o.data_;
    shape_ = std::move(o.shape_);
    numel_ = o.numel_;
    device_ = o.device_;
    layout_ = o.layout_;
    o.layout_ = Layout::Plain;
    owns_ = o.owns_;
    o.data_ = nullptr;
    o.numel_ = 0;
    o.owns_ = false;
    o.shape_.clear();
  }
  return *this;
}

Tensor::~Tensor() { release(); }

void Tensor::release() noexcept {
  if (owns_ && data_ != nullptr) {
    if (device_ == Device::CPU)
      std::free(data_);
    else
      device_free(data_);
  }
  data_ = nullptr;
  owns_ = false;
}

const char* layout_name(Layout l) {
  switch (l) {
    case Layout::Blocked8c: return "nChw8c";
    case Layout::Blocked16c: return "nChw16c";
    default: return "plain";
  }
}

Tensor Tensor::view(float* data, std::vector<int64_t> shape, Device device) {
  Tensor t;
  t.shape_ = std::move(shape);
  t.numel_ = shape_numel(t.shape_);
  t.data_ = data;
  t.device_ = device;
  t.owns_ = false;
  return t;
}

Tensor Tensor::from_vector(const std::vector<float>& values, std::vector<int64_t> shape,
                           Device device) {
  Tensor t(std::move(shape), device);
  CUVAE_CHECK(static_cast<int64_t>(values.size()) == t.numel(),
              "from_vector: " << values.size() << " values for shape " << t.shape_str());
  memcpy_any(t.data(), device, values.data(), Device::CPU, t.bytes());
  return t;
}

int64_t Tensor::dim(int i) const {
  const int n = ndim();
  if (i < 0) i += n;
  CUVAE_CHECK(i >= 0 && i < n, "dimension " << i << " out of range for " << shape_str());
  return shape_[static_cast<size_t>(i)];
}

std::string Tensor::shape_str() const {
  std::ostringstream os;
  os << "[";
  for (size_t i = 0; i < shape_.size(); ++i) os << (i ? ", " : "") << shape_[i];
  os << "]";
  return os.str();
}

Tensor Tensor::reshaped(std::vector<int64_t> shape) {
  CUVAE_CHECK(shape_numel(shape) == numel_, "cannot reshape " << shape_str() << " to a shape of "
                                                               << shape_numel(shape) << " elements");
  CUVAE_CHECK(layout_ == Layout::Plain, "cannot reshape " << shape_str() << " held in oneDNN's " << layout_name(layout_)
                                                          << " layout (reorder it to plain NCHW first)");
  return view(data_, std::move(shape), device_);
}

Tensor Tensor::rows(int64_t begin, int64_t end) {
  CUVAE_CHECK(ndim() >= 1 && begin >= 0 && begin <= end && end <= shape_[0],
              "rows [" << begin << ", " << end << ") out of range for " << shape_str());
  std::vector<int64_t> s = shape_;
  s[0] = end - begin;
  const int64_t row = shape_[0] ? numel_ / shape_[0] : 0;
  Tensor v = view(data_ + begin * row, std::move(s), device_);
  v.layout_ = layout_;  // N is the outermost dimension of every layout
  return v;
}

Tensor Tensor::to(Device device) const {
  Tensor t(shape_, device);
  memcpy_any(t.data(), device, data_, device_, bytes());
  t.layout_ = layout_;
  return t;
}

void Tensor::copy_from(const Tensor& src, Stream stream) {
  CUVAE_CHECK(src.numel() == numel_, "copy_from: " << src.shape_str() << " into " << shape_str());
#ifdef CUVAE_HAS_CUDA
  if (device_ == Device::CUDA && src.device() == Device::CUDA) {
    const Stream s = stream != nullptr ? stream : t_current_stream;
    if (s != nullptr) {
      CUDA_CHECK(cudaMemcpyAsync(data_, src.data(), bytes(), cudaMemcpyDeviceToDevice, static_cast<cudaStream_t>(s)));
      return;
    }
  }
#endif
  memcpy_any(data_, device_, src.data(), src.device(), bytes(), stream);
}

void Tensor::zero(Stream stream) {
  if (numel_ == 0) return;
  memset_zero_any(data_, device_, bytes(), stream);
}

void memset_zero_any(void* p, Device device, size_t bytes, Stream stream) {
  if (bytes == 0) return;
  if (device == Device::CPU) {
    std::memset(p, 0, bytes);
    return;
  }
#ifdef CUVAE_HAS_CUDA
  const bool own_stream = stream == nullptr && t_current_stream == nullptr;
  const cudaStream_t st = resolve_stream(stream);
  CUDA_CHECK(cudaMemsetAsync(p, 0, bytes, st));
  if (own_stream) CUDA_CHECK(cudaStreamSynchronize(st));
#else
  (void)stream;
  CUVAE_FAIL("this build of cuvae has no CUDA backend (rebuild with CUDA found)");
#endif
}

void grow_to(Tensor& store, int64_t numel, Device device) {
  if (store.empty() || store.numel() < numel || store.device() != device) {
    // Take the larger block before freeing the old one: if the allocation fails (out of memory,
    // or cudaMalloc refused inside a CUDA graph capture) the old block is still owned, not leaked
    // by a cudaFree that a capture would refuse too.
    Tensor bigger({numel}, device);
    store = std::move(bigger);
  }
}

Tensor& grow_view(Tensor& store, Tensor& view, std::vector<int64_t> shape, Device device) {
  grow_to(store, shape_numel(shape), device);
  view = Tensor::view(store.data(), std::move(shape), device);
  return view;
}

std::vector<float> Tensor::to_vector() const {
  std::vector<float> v(static_cast<size_t>(numel_));
  memcpy_any(v.data(), Device::CPU, data_, device_, bytes());
  return v;
}

}  // namespace cuvae
