// Context: the compute device and the handles that go with it.
#pragma once

#include <cstddef>
#include <memory>
#include <string>

#include "host/tensor.h"

struct cudnnContext;
struct cublasContext;

namespace cuvae {

/// What the user asked for with --device.
enum class DeviceRequest { Auto, CPU, CUDA };

/// Parses "auto", "cpu" or "cuda"; throws cuvae::Error naming `flag` otherwise.
DeviceRequest parse_device(const std::string& s, const std::string& flag = "--device");

/// The device a computation runs on, and for CUDA its stream, cuDNN and cuBLAS handles
/// and a scratch workspace. One per thread of work; not copyable. Handles are destroyed
/// with the context (destructors only log errors).
class Context {
 public:
  /// Auto picks the first working GPU, else the CPU. CUDA throws cuvae::Error when this
  /// build has no CUDA backend or no GPU can be used.
  explicit Context(DeviceRequest request = DeviceRequest::Auto);
  ~Context();
  Context(const Context&) = delete;
  Context& operator=(const Context&) = delete;

  /// The device chosen at construction.
  Device device() const { return device_; }
  bool is_cuda() const { return device_ == Device::CUDA; }
  /// e.g. "cuda:0 (NVIDIA H100 80GB HBM3)" or "cpu (2 threads)".
  const std::string& description() const { return description_; }
  /// Why Auto fell back to the CPU (empty otherwise).
  const std::string& fallback_reason() const { return fallback_reason_; }

  /// The stream all of this context's GPU work is queued on (a blocking stream, so
  /// synchronous copies on the legacy default stream are ordered after it); nullptr on CPU.
  Stream stream() const { return stream_; }
  /// cuDNN handle bound to stream() (nullptr on CPU).
  cudnnContext* cudnn() const { return cudnn_; }
  /// cuBLAS handle bound to stream(), pedantic fp32 math (nullptr on CPU).
  cublasContext* cublas() const { return cublas_; }

  /// Device scratch space of at least `bytes`. Grows (reallocating) only when asked for
  /// more than before, so callers size it during set-up, never inside a training step.
  void* workspace(size_t bytes);
  /// Current workspace size in bytes.
  size_t workspace_size() const { return workspace_bytes_; }
  /// Host scratch space of at least `numel` floats, shared by every CPU layer of this context
  /// (each uses it only within one call). Grows only when asked for more than before.
  float* host_scratch(int64_t numel);
  /// Waits for all work on the stream; throws cuvae::Error if a kernel failed.
  void synchronize() const;

 private:
  Device device_ = Device::CPU;
  std::string description_;
  std::string fallback_reason_;
  Stream stream_ = nullptr;
  cudnnContext* cudnn_ = nullptr;
  cublasContext* cublas_ = nullptr;
  void* workspace_ = nullptr;
  size_t workspace_bytes_ = 0;
  void* cublas_workspace_ = nullptr;
  Tensor host_scratch_;
  static constexpr size_t kCublasWorkspace = size_t(32) << 20;
  void init_cuda();
};

}  // namespace cuvae
