// Data-parallel processes: which rank this process is among how many, and the collectives the
// trainers need (sum-allreduce of one flat float buffer, broadcast from rank 0, an allgather of one
// 64-bit value to compare configurations and parameter checksums). MPI launches and connects the
// processes (`mpirun -np N cuvae train-vae …`); cuvae has no transport of its own. A process
// started without a launcher is rank 0 of 1 and never touches MPI.
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace cuvae {

/// The contiguous share [first, second) of n items that rank `rank` of `size` takes:
/// ⌊rank·n/size⌋ to ⌊(rank+1)·n/size⌋, so the shares tile [0, n) in rank order and differ in
/// length by at most one ([0, n) for one process). Needs 0 ≤ rank < size and n ≥ 0.
inline std::pair<int64_t, int64_t> shard_range(int64_t n, int rank, int size) {
  return {rank * n / size, (rank + 1) * n / size};
}

/// The processes of one data-parallel run (MPI_COMM_WORLD), or a single process.
class Communicator {
 public:
  /// The world of this process, made on first use: under an MPI launcher with more than one
  /// rank (OMPI_COMM_WORLD_SIZE, PMI_SIZE or PMIX_SIZE > 1) MPI is initialised and finalised at
  /// exit; otherwise rank 0 of 1. Throws cuvae::Error when more than one rank was launched and
  /// this build has no MPI (it would otherwise run N separate trainings into one folder).
  static Communicator& world();

  /// This process's rank in [0, size()).
  int rank() const { return rank_; }
  /// Number of processes (1 without a launcher).
  int size() const { return size_; }
  /// This process's rank among the ranks on its host (MPI_COMM_TYPE_SHARED), which picks its GPU.
  int local_rank() const { return local_rank_; }
  /// True with more than one process.
  bool distributed() const { return size_ > 1; }
  /// True on the rank that writes files and draws progress (rank 0).
  bool writes() const { return rank_ == 0; }
  /// This rank's share of n items: shard_range(n, rank(), size()).
  std::pair<int64_t, int64_t> shard(int64_t n) const { return shard_range(n, rank_, size_); }

  /// In place, data[i] = Σ over ranks of data[i], for n floats in host memory (MPI_Allreduce,
  /// MPI_SUM; the same order on every rank, so every rank gets identical bits). No-op for one
  /// process. Throws cuvae::Error on an MPI failure.
  void allreduce_sum(float* data, int64_t n) const;
  /// The same for n doubles (sums of per-image losses and counts in evaluation).
  void allreduce_sum(double* data, int64_t n) const;
  /// In place, data = rank 0's data for n floats in host memory (MPI_Bcast). No-op for one process.
  void broadcast(float* data, int64_t n) const;
  /// In place, data = rank 0's n bytes (MPI_Bcast of MPI_BYTE; the NCCL unique id). No-op for one
  /// process. Throws cuvae::Error on an MPI failure.
  void broadcast_bytes(void* data, size_t n) const;
  /// Every rank's `value`, in rank order (size() entries). Throws cuvae::Error on an MPI failure.
  std::vector<uint64_t> allgather(uint64_t value) const;
  /// Blocks until every rank has called it.
  void barrier() const;

  /// After an error on this rank: when MPI runs with more than one rank, MPI_Abort(code), which
  /// stops every rank (mpirun then exits with `code`); otherwise nothing. A rank that returned
  /// normally would wait in MPI_Finalize for ranks that wait for it.
  static void abort_all(int code);

  /// "ranks: N (rank 0 writes)" for a run's first lines; "" for one process.
  std::string describe() const;

 private:
  Communicator(int rank, int size, int local_rank) : rank_(rank), size_(size), local_rank_(local_rank) {}
  int rank_ = 0;
  int size_ = 1;
  int local_rank_ = 0;
};

/// Ranks launched by the environment's MPI launcher (OMPI_COMM_WORLD_SIZE, PMI_SIZE or
/// PMIX_SIZE; 1 when none is set or the value is not a positive integer).
int launched_ranks();

/// True when this build was compiled with MPI.
bool mpi_available();

/// FNV-1a 64-bit hash of `bytes` (configuration fingerprints, parameter checksums).
uint64_t fnv1a64(const void* bytes, size_t n, uint64_t h = 14695981039346656037ull);

}  // namespace cuvae
