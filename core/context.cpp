#include "core/context.h"

#ifdef _OPENMP
#include <omp.h>
#endif

#include <cstdio>
#if defined(__GLIBC__)
#include <malloc.h>
#endif
#include <thread>

#include "core/check.h"

#ifdef CUVAE_HAS_CUDA
#include "core/cuda_check.h"
#endif

namespace cuvae {

DeviceRequest parse_device(const std::string& s, const std::string& flag) {
  if (s == "auto") return DeviceRequest::Auto;
  if (s == "cpu") return DeviceRequest::CPU;
  if (s == "cuda" || s == "gpu") return DeviceRequest::CUDA;
  CUVAE_FAIL(flag << ": expected auto, cpu or cuda, got '" << s << "'");
}

bool onednn_built() {
#ifdef CUVAE_HAS_ONEDNN
  return true;
#else
  return false;
#endif
}

CpuBackend parse_cpu_backend(const std::string& s, const std::string& flag) {
  if (s == "reference") return CpuBackend::Reference;
  if (s == "emu") return CpuBackend::Emu;
  if (s == "onednn") {
    CUVAE_REQUIRE(onednn_built(), flag << " onednn: this build has no oneDNN (install libdnnl-dev, e.g. with "
                                          "scripts/setup, and rebuild); use " << option("cpu_backend") << " reference");
    return CpuBackend::OneDNN;
  }
  CUVAE_FAIL(flag << ": expected onednn, reference or emu, got '" << s << "'");
}

const char* cpu_backend_name(CpuBackend b) {
  switch (b) {
    case CpuBackend::OneDNN: return "onednn";
    case CpuBackend::Reference: return "reference";
    case CpuBackend::Emu: return "emu";
  }
  return "?";
}

static CpuBackend& default_backend_slot() {
  static CpuBackend b = onednn_built() ? CpuBackend::OneDNN : CpuBackend::Reference;
  return b;
}
CpuBackend default_cpu_backend() { return default_backend_slot(); }
void set_default_cpu_backend(CpuBackend b) {
  if (b == CpuBackend::OneDNN) parse_cpu_backend("onednn");
  default_backend_slot() = b;
}

static bool& deterministic_slot() {
  static bool d = true;
  return d;
}
bool default_deterministic() { return deterministic_slot(); }
void set_default_deterministic(bool deterministic) { deterministic_slot() = deterministic; }

#ifdef CUVAE_HAS_CUDA
namespace detail {
const char* cublas_status_name(cublasStatus_t s) {
  switch (s) {
    case CUBLAS_STATUS_SUCCESS: return "CUBLAS_STATUS_SUCCESS";
    case CUBLAS_STATUS_NOT_INITIALIZED: return "CUBLAS_STATUS_NOT_INITIALIZED";
    case CUBLAS_STATUS_ALLOC_FAILED: return "CUBLAS_STATUS_ALLOC_FAILED";
    case CUBLAS_STATUS_INVALID_VALUE: return "CUBLAS_STATUS_INVALID_VALUE";
    case CUBLAS_STATUS_ARCH_MISMATCH: return "CUBLAS_STATUS_ARCH_MISMATCH";
    case CUBLAS_STATUS_MAPPING_ERROR: return "CUBLAS_STATUS_MAPPING_ERROR";
    case CUBLAS_STATUS_EXECUTION_FAILED: return "CUBLAS_STATUS_EXECUTION_FAILED";
    case CUBLAS_STATUS_INTERNAL_ERROR: return "CUBLAS_STATUS_INTERNAL_ERROR";
    case CUBLAS_STATUS_NOT_SUPPORTED: return "CUBLAS_STATUS_NOT_SUPPORTED";
    default: return "CUBLAS_STATUS_UNKNOWN";
  }
}
}  // namespace detail
#endif

// The CPU GEMM (Eigen) allocates its packing buffers on every call. glibc serves blocks above
// 128 KiB with a fresh mmap each time, so every GEMM paid for page faults and for the kernel
// zeroing new pages (a quarter of a ResNet step's time). Keeping such blocks in the heap makes
// them reused from call to call. Done once, for the whole process.
static void keep_large_blocks_in_heap() {
#if defined(__GLIBC__)
  static const bool done = [] {
    mallopt(M_MMAP_THRESHOLD, 32 << 20);  // glibc's largest allowed value on 64-bit
    mallopt(M_TRIM_THRESHOLD, 1024 << 20);
    return true;
  }();
  (void)done;
#endif
}

float* Context::host_scratch(int64_t numel) {
  if (host_scratch_.numel() < numel) {
    host_scratch_ = Tensor();  // free the old block before taking the larger one
    host_scratch_ = Tensor({numel}, Device::CPU);
  }
  return host_scratch_.data();
}

static std::string cpu_description(CpuBackend b) {
  keep_large_blocks_in_heap();
#ifdef _OPENMP
  const int n = omp_get_max_threads();  // what the CPU kernels use (OMP_NUM_THREADS, else all cores)
#else
  const unsigned n = 1;
#endif
  return "cpu (" + std::to_string(n > 0 ? n : 1) + (n == 1 ? " thread, " : " threads, ") + cpu_backend_name(b) + ")";
}

Context::Context(DeviceRequest request, CpuBackend cpu_backend) {
  if (cpu_backend == CpuBackend::OneDNN) parse_cpu_backend("onednn");
  cpu_backend_ = cpu_backend;
  deterministic_ = default_deterministic();
  if (request == DeviceRequest::CPU) {
    device_ = Device::CPU;
    description_ = cpu_description(cpu_backend_);
    return;
  }
#ifndef CUVAE_HAS_CUDA
  if (request == DeviceRequest::CUDA)
    CUVAE_FAIL(option("device") << " cuda: this build of cuvae has no CUDA backend (CUDA was not found at build time)");
  fallback_reason_ = "this build has no CUDA backend";
  device_ = Device::CPU;
  description_ = cpu_description(cpu_backend_);
#else
  if (!cuda_available()) {
    if (request == DeviceRequest::CUDA)
      CUVAE_FAIL(option("device") << " cuda: no usable CUDA GPU: " << cuda_unavailable_reason());
    fallback_reason_ = "no usable CUDA GPU: " + cuda_unavailable_reason();
    device_ = Device::CPU;
    description_ = cpu_description(cpu_backend_);
    return;
  }
  try {
    init_cuda();
  } catch (const Error& e) {
    // Give back what was created before the failure, so that the CPU can take over.
    release_cuda();
    if (request == DeviceRequest::CUDA) throw;
    fallback_reason_ = std::string("the GPU could not be set up: ") + e.what();
    device_ = Device::CPU;
    description_ = cpu_description(cpu_backend_);
  }
#endif
}

void Context::init_cuda() {
#ifdef CUVAE_HAS_CUDA
  device_ = Device::CUDA;
  int dev = 0;
  CUDA_CHECK(cudaGetDevice(&dev));
  cudaDeviceProp prop{};
  CUDA_CHECK(cudaGetDeviceProperties(&prop, dev));
  description_ = "cuda:" + std::to_string(dev) + " (" + prop.name + ")";
  cudaStream_t s = nullptr;
  // A non-blocking stream: nothing is ordered with it implicitly. Host copies and the zeroing
  // of new tensors are queued on it explicitly (it becomes this thread's current_stream()), and
  // every CUDA file is compiled with --default-stream per-thread, so no code can lean on the
  // legacy default stream's implicit synchronisation.
  CUDA_CHECK(cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking));
  stream_ = s;
  previous_stream_ = detail::exchange_current_stream(stream_);
  cudnnHandle_t h = nullptr;
  CUDNN_CHECK(cudnnCreate(&h));
  cudnn_ = h;
  CUDNN_CHECK(cudnnSetStream(h, s));
  cublasHandle_t b = nullptr;
  CUBLAS_CHECK(cublasCreate(&b));
  cublas_ = b;
  CUBLAS_CHECK(cublasSetStream(b, s));
  // Pure fp32 by default; tensor-core math is an explicit opt-in elsewhere.
  CUBLAS_CHECK(cublasSetMathMode(b, CUBLAS_PEDANTIC_MATH));
  // cuBLAS gets its workspace from us, so a GEMM never allocates (and can be graph-captured).
  cublas_workspace_ = device_malloc(kCublasWorkspace);
  CUBLAS_CHECK(cublasSetWorkspace(b, cublas_workspace_, kCublasWorkspace));
#endif
}

Context::~Context() { release_cuda(); }

void Context::release_cuda() noexcept {
#ifdef CUVAE_HAS_CUDA
  if (device_ != Device::CUDA) return;
  if (stream_) cudaStreamSynchronize(stream_);
  if (stream_ && current_stream() == stream_) detail::exchange_current_stream(previous_stream_);
  if (workspace_) device_free(workspace_);
  if (cublas_ && cublasDestroy(cublas_) != CUBLAS_STATUS_SUCCESS) std::fprintf(stderr, "cuvae: cublasDestroy failed\n");
  if (cublas_workspace_) device_free(cublas_workspace_);
  if (cudnn_ && cudnnDestroy(cudnn_) != CUDNN_STATUS_SUCCESS) std::fprintf(stderr, "cuvae: cudnnDestroy failed\n");
  if (stream_ && cudaStreamDestroy(stream_) != cudaSuccess) std::fprintf(stderr, "cuvae: cudaStreamDestroy failed\n");
  workspace_ = nullptr;
  workspace_bytes_ = 0;
  cublas_ = nullptr;
  cublas_workspace_ = nullptr;
  cudnn_ = nullptr;
  stream_ = nullptr;
  device_ = Device::CPU;
#endif
}

void* Context::workspace(size_t bytes) {
  if (bytes <= workspace_bytes_) return workspace_;
  if (device_ == Device::CPU) {
    host_workspace_ = Tensor();  // free the old block before taking the larger one
    host_workspace_ = Tensor({static_cast<int64_t>((bytes + sizeof(float) - 1) / sizeof(float))}, Device::CPU);
    workspace_ = host_workspace_.data();
    workspace_bytes_ = bytes;
    return workspace_;
  }
#ifdef CUVAE_HAS_CUDA
  CUDA_CHECK(cudaStreamSynchronize(stream_));
  device_free(workspace_);
  workspace_ = nullptr;
  workspace_bytes_ = 0;
  workspace_ = device_malloc(bytes);
  workspace_bytes_ = bytes;
#endif
  return workspace_;
}

void Context::synchronize() const {
#ifdef CUDA_CHECK
  if (device_ == Device::CUDA) CUDA_CHECK(cudaStreamSynchronize(stream_));
#endif
}

}  // namespace cuvae
