// Context: the compute device and the handles that go with it.
#pragma once

#include <cstddef>
#include <memory>
#include <string>

#include "core/tensor.h"

struct cudnnContext;
struct cublasContext;

namespace cuvae {

/// What the user asked for with --device.
enum class DeviceRequest { Auto, CPU, CUDA };

/// Parses "auto", "cpu" or "cuda"; throws cuvae::Error naming `flag` otherwise.
DeviceRequest parse_device(const std::string& s, const std::string& flag = "--device");

/// How the CPU runs convolutions, transposed convolutions and batch norm (--cpu-backend):
/// OneDNN through oneDNN's primitives (PyTorch's CPU library), Reference through cuvae's own
/// im2col + Eigen GEMM and loops: the reference every other path is tested against. Emu runs
/// the layers as Reference does but every custom CUDA kernel's own source on the emulated
/// device (kernels/emu/): thread by thread, many times slower, for testing the CUDA path
/// without a GPU (the schedule comes from CUVAE_EMU_SCHEDULE).
enum class CpuBackend { OneDNN, Reference, Emu };

/// True when this build has oneDNN (libdnnl-dev was found at configure time).
bool onednn_built();
/// Parses "onednn", "reference" or "emu"; throws cuvae::Error naming `flag` otherwise, and for
/// "onednn" in a build without oneDNN.
CpuBackend parse_cpu_backend(const std::string& s, const std::string& flag = "--cpu-backend");
/// "onednn", "reference" or "emu".
const char* cpu_backend_name(CpuBackend b);
/// The backend new contexts get: OneDNN when built with it, else Reference, until changed by
/// set_default_cpu_backend (the CLI's --cpu-backend).
CpuBackend default_cpu_backend();
/// Changes default_cpu_backend() for the rest of the process. Throws cuvae::Error for OneDNN
/// in a build without it.
void set_default_cpu_backend(CpuBackend b);
/// Whether new contexts restrict cuDNN to deterministic algorithms (true unless changed by
/// set_default_deterministic, the CLI's --nondeterministic).
bool default_deterministic();
/// Changes default_deterministic() for the rest of the process.
void set_default_deterministic(bool deterministic);

/// The device a computation runs on, and for CUDA its stream, cuDNN and cuBLAS handles
/// and a scratch workspace. One per thread of work; not copyable. Handles are destroyed
/// with the context (destructors only log errors).
class Context {
 public:
  /// Auto picks the first working GPU, else the CPU. CUDA throws cuvae::Error when this
  /// build has no CUDA backend or no GPU can be used.
  /// `cpu_backend` applies when the device is the CPU (throws cuvae::Error for OneDNN in a
  /// build without it).
  explicit Context(DeviceRequest request = DeviceRequest::Auto, CpuBackend cpu_backend = default_cpu_backend());
  ~Context();
  Context(const Context&) = delete;
  Context& operator=(const Context&) = delete;

  /// The device chosen at construction.
  Device device() const { return device_; }
  bool is_cuda() const { return device_ == Device::CUDA; }
  /// The CPU backend (meaningful when device() is the CPU).
  CpuBackend cpu_backend() const { return cpu_backend_; }
  /// True when cuDNN may use only algorithms whose results do not depend on the run (same seed,
  /// same GPU: bit-identical weights). Set at construction from default_deterministic().
  bool deterministic() const { return deterministic_; }
  /// True when CPU convolutions and batch norm go through oneDNN.
  bool use_onednn() const { return device_ == Device::CPU && cpu_backend_ == CpuBackend::OneDNN; }
  /// e.g. "cuda:0 (NVIDIA H100 80GB HBM3)" or "cpu (2 threads, onednn)".
  const std::string& description() const { return description_; }
  /// Why Auto fell back to the CPU (empty otherwise).
  const std::string& fallback_reason() const { return fallback_reason_; }

  /// The stream all of this context's GPU work is queued on; nullptr on CPU. It is created
  /// non-blocking and made the creating thread's current_stream() for the context's lifetime,
  /// so host copies of CUDA tensors are queued on it too (see memcpy_any).
  Stream stream() const { return stream_; }
  /// cuDNN handle bound to stream() (nullptr on CPU).
  cudnnContext* cudnn() const { return cudnn_; }
  /// cuBLAS handle bound to stream(), pedantic fp32 math (nullptr on CPU).
  cublasContext* cublas() const { return cublas_; }

  /// Scratch space of at least `bytes` on the context's device (host memory on the CPU, for the
  /// emulated device's kernels). Grows (reallocating) only when asked for more than before, so
  /// callers size it during set-up, never inside a training step.
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
  CpuBackend cpu_backend_ = CpuBackend::Reference;
  bool deterministic_ = true;
  std::string description_;
  std::string fallback_reason_;
  Stream stream_ = nullptr;
  Stream previous_stream_ = nullptr;  // this thread's current_stream() before this context
  cudnnContext* cudnn_ = nullptr;
  cublasContext* cublas_ = nullptr;
  void* workspace_ = nullptr;
  size_t workspace_bytes_ = 0;
  Tensor host_workspace_;  // workspace() on the CPU
  // Destroys the CUDA handles, stream and buffers created so far and restores the thread's
  // previous current_stream() (the destructor, and a failed init_cuda()).
  void release_cuda() noexcept;
  [[maybe_unused]] void* cublas_workspace_ = nullptr;  // used by CUDA builds only
  Tensor host_scratch_;
  static constexpr size_t kCublasWorkspace = size_t(32) << 20;
  void init_cuda();
};

}  // namespace cuvae
