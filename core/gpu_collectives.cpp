#include "core/gpu_collectives.h"

#include <utility>

#include "core/check.h"

#ifdef CUVAE_HAS_CUDA
#include <cuda_runtime.h>

#include "core/cuda_check.h"
#endif
#ifdef CUVAE_HAS_NCCL
#include <nccl.h>
#endif

namespace cuvae {

namespace {

#ifdef CUVAE_HAS_NCCL
void check_nccl(ncclResult_t r, const char* what, ncclComm_t comm = nullptr) {
  if (r == ncclSuccess) return;
  const char* last = ncclGetLastError(comm);
  CUVAE_FAIL("NCCL: " << what << " failed: " << ncclGetErrorString(r)
                      << (last != nullptr && *last != '\0' ? std::string(" (") + last + ")" : std::string())
                      << "; NCCL_DEBUG=INFO tells more");
}

void require_gpu() {
  CUVAE_REQUIRE(cuda_available(), "NCCL needs a usable CUDA GPU on every rank: " << cuda_unavailable_reason());
}
#else
[[noreturn]] void fail_no_nccl() {
  CUVAE_FAIL("this build of cuvae has no NCCL, which data-parallel training on GPUs needs (nccl.h and libnccl, "
             "found beside the CUDA toolkit when configuring with CUDA). Train with "
             << option("device") << " cpu, or rebuild where NCCL is installed");
}
#endif

}  // namespace

bool nccl_available() {
#ifdef CUVAE_HAS_NCCL
  return true;
#else
  return false;
#endif
}

std::string nccl_version() {
#ifdef CUVAE_HAS_NCCL
  int v = 0;
  if (ncclGetVersion(&v) != ncclSuccess) return "NCCL (version unknown)";
  // Since NCCL 2.9 the code is major·10000 + minor·100 + patch.
  return "NCCL " + std::to_string(v / 10000) + "." + std::to_string(v / 100 % 100) + "." + std::to_string(v % 100);
#else
  return "no NCCL";
#endif
}

int select_cuda_device(int local_rank) {
#ifdef CUVAE_HAS_CUDA
  if (!cuda_available()) return -1;
  int n = 0;
  CUDA_CHECK(cudaGetDeviceCount(&n));
  if (n <= 0) return -1;
  const int dev = (local_rank < 0 ? 0 : local_rank) % n;
  CUDA_CHECK(cudaSetDevice(dev));
  return dev;
#else
  (void)local_rank;
  return -1;
#endif
}

NcclCommunicator::NcclCommunicator(const Communicator& comm) : NcclCommunicator(&comm) {}

NcclCommunicator NcclCommunicator::single() { return NcclCommunicator(nullptr); }

NcclCommunicator::NcclCommunicator(const Communicator* comm)
    : rank_(comm != nullptr ? comm->rank() : 0), size_(comm != nullptr ? comm->size() : 1) {
#ifdef CUVAE_HAS_NCCL
  require_gpu();
  ncclUniqueId id{};
  if (rank_ == 0) check_nccl(ncclGetUniqueId(&id), "ncclGetUniqueId");
  if (comm != nullptr) comm->broadcast_bytes(&id, sizeof id);  // MPI carries the id; NCCL connects the GPUs
  ncclComm_t c = nullptr;
  check_nccl(ncclCommInitRank(&c, size_, id, rank_), "ncclCommInitRank");
  comm_ = c;
#else
  fail_no_nccl();
#endif
}

NcclCommunicator::NcclCommunicator(NcclCommunicator&& o) noexcept
    : comm_(std::exchange(o.comm_, nullptr)), rank_(o.rank_), size_(o.size_) {}

NcclCommunicator::~NcclCommunicator() {
#ifdef CUVAE_HAS_NCCL
  if (comm_ != nullptr) ncclCommDestroy(comm_);
#endif
}

void NcclCommunicator::allreduce_mean(float* data, int64_t n, Stream stream) const {
#ifdef CUVAE_HAS_NCCL
  if (n <= 0) return;
  check_nccl(ncclAllReduce(data, data, static_cast<size_t>(n), ncclFloat, ncclAvg, comm_, stream), "ncclAllReduce", comm_);
#else
  (void)data, (void)n, (void)stream;
  fail_no_nccl();
#endif
}

void NcclCommunicator::broadcast(float* data, int64_t n, Stream stream) const {
#ifdef CUVAE_HAS_NCCL
  if (n <= 0) return;
  check_nccl(ncclBroadcast(data, data, static_cast<size_t>(n), ncclFloat, 0, comm_, stream), "ncclBroadcast", comm_);
#else
  (void)data, (void)n, (void)stream;
  fail_no_nccl();
#endif
}

}  // namespace cuvae
