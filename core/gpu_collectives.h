// NCCL collectives between the GPUs of a data-parallel run: one GPU per MPI rank, each rank's
// collectives enqueued on its context's stream (so they can be captured into the training step's
// CUDA graph). MPI launches the processes and carries the NCCL unique id from rank 0 to the
// others (as llm.c does); NCCL moves the data. cuvae has no transport of its own.
#pragma once

#include <cstdint>
#include <string>

#include "core/distributed.h"
#include "core/tensor.h"

struct ncclComm;

namespace cuvae {

/// True when this build has NCCL (found beside the CUDA toolkit at configure time).
bool nccl_available();
/// "NCCL 2.27.7" for this build's library; "no NCCL" without it.
std::string nccl_version();

/// Makes GPU `local_rank` mod (number of GPUs) this thread's current device, so that the ranks
/// on one host use different GPUs. Returns the device index; -1 when no GPU is usable or the
/// build has no CUDA (then nothing changes).
int select_cuda_device(int local_rank);

/// One NCCL communicator over the ranks of a Communicator, on the current CUDA device.
class NcclCommunicator {
 public:
  /// The communicator of `comm`'s ranks: rank 0 draws the unique id (ncclGetUniqueId), MPI
  /// broadcasts it, every rank joins with ncclCommInitRank on its current device. Collective:
  /// every rank must call it. Throws cuvae::Error when this build has no NCCL, or naming the NCCL
  /// call and its error.
  explicit NcclCommunicator(const Communicator& comm);
  /// A communicator of this one process alone (rank 0 of 1), without MPI: what scripts/gpu-check
  /// and the GPU tests run the collectives through. Throws as the constructor does.
  static NcclCommunicator single();
  ~NcclCommunicator();
  NcclCommunicator(const NcclCommunicator&) = delete;
  NcclCommunicator& operator=(const NcclCommunicator&) = delete;
  NcclCommunicator(NcclCommunicator&& o) noexcept;

  int rank() const { return rank_; }
  int size() const { return size_; }

  /// In place, data[i] = (1/size) Σ over ranks of data[i] for n floats in device memory
  /// (ncclAllReduce with ncclAvg), enqueued on `stream`; capturable into a CUDA graph.
  /// Throws cuvae::Error naming the NCCL error.
  void allreduce_mean(float* data, int64_t n, Stream stream) const;
  /// In place, data = rank 0's data for n floats in device memory (ncclBroadcast), enqueued on
  /// `stream`. Throws cuvae::Error naming the NCCL error.
  void broadcast(float* data, int64_t n, Stream stream) const;

 private:
  /// The ranks of `comm`, or this process alone when null (single()).
  explicit NcclCommunicator(const Communicator* comm);
  ncclComm* comm_ = nullptr;
  int rank_ = 0, size_ = 1;
};

}  // namespace cuvae
