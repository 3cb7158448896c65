#include "core/distributed.h"

#include <algorithm>
#include <cstdlib>
#include <limits>

#include "core/check.h"

#ifdef CUVAE_HAS_MPI
#include <mpi.h>
#endif

namespace cuvae {

namespace {

int positive_env(const char* name) {
  const char* v = std::getenv(name);
  if (v == nullptr || *v == '\0') return 0;
  char* end = nullptr;
  const long n = std::strtol(v, &end, 10);
  return (*end == '\0' && n > 0 && n < std::numeric_limits<int>::max()) ? static_cast<int>(n) : 0;
}

#ifdef CUVAE_HAS_MPI
void check_mpi(int rc, const char* what) {
  if (rc == MPI_SUCCESS) return;
  char msg[MPI_MAX_ERROR_STRING];
  int len = 0;
  MPI_Error_string(rc, msg, &len);
  CUVAE_FAIL("MPI: " << what << " failed: " << std::string(msg, static_cast<size_t>(len)));
}

void finalize_mpi() {
  int done = 0;
  MPI_Finalized(&done);
  if (!done) MPI_Finalize();
}
#endif

}  // namespace

int launched_ranks() {
  for (const char* name : {"OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "PMIX_SIZE"})
    if (const int n = positive_env(name); n > 0) return n;
  return 1;
}

bool mpi_available() {
#ifdef CUVAE_HAS_MPI
  return true;
#else
  return false;
#endif
}

uint64_t fnv1a64(const void* bytes, size_t n, uint64_t h) {
  const auto* p = static_cast<const unsigned char*>(bytes);
  for (size_t i = 0; i < n; ++i) {
    h ^= p[i];
    h *= 1099511628211ull;
  }
  return h;
}

Communicator& Communicator::world() {
  static Communicator* w = [] {
    const int launched = launched_ranks();
    if (launched <= 1) return new Communicator(0, 1, 0);
#ifdef CUVAE_HAS_MPI
    int ready = 0;
    MPI_Initialized(&ready);
    if (!ready) {
      check_mpi(MPI_Init(nullptr, nullptr), "MPI_Init");
      std::atexit(finalize_mpi);
    }
    // Errors come back as codes (and become cuvae::Error) instead of aborting inside MPI.
    MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
    int rank = 0, size = 1;
    check_mpi(MPI_Comm_rank(MPI_COMM_WORLD, &rank), "MPI_Comm_rank");
    check_mpi(MPI_Comm_size(MPI_COMM_WORLD, &size), "MPI_Comm_size");
    MPI_Comm host;  // the ranks sharing this host's memory: their order picks the GPUs
    check_mpi(MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, rank, MPI_INFO_NULL, &host), "MPI_Comm_split_type");
    int local = 0;
    check_mpi(MPI_Comm_rank(host, &local), "MPI_Comm_rank");
    MPI_Comm_free(&host);
    return new Communicator(rank, size, local);
#else
    CUVAE_FAIL("this process was started as one of " << launched
               << " MPI ranks, but this build of cuvae has no MPI: each rank would train alone into the same "
                  "folder. Install libopenmpi-dev (scripts/setup) and rebuild, or run one process without mpirun");
#endif
  }();
  return *w;
}

#ifdef CUVAE_HAS_MPI
namespace {
/// Runs one MPI call per chunk of at most INT_MAX values (MPI counts are int): f(first, count).
template <class F>
void in_chunks(int64_t n, F f) {
  for (int64_t first = 0; first < n;) {
    const int count = static_cast<int>(std::min<int64_t>(n - first, std::numeric_limits<int>::max()));
    f(first, count);
    first += count;
  }
}
}  // namespace
#endif

void Communicator::allreduce_sum(float* data, int64_t n) const {
  if (size_ <= 1 || n == 0) return;
#ifdef CUVAE_HAS_MPI
  in_chunks(n, [&](int64_t first, int count) {
    check_mpi(MPI_Allreduce(MPI_IN_PLACE, data + first, count, MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD), "MPI_Allreduce");
  });
#else
  (void)data;
#endif
}

void Communicator::allreduce_sum(double* data, int64_t n) const {
  if (size_ <= 1 || n == 0) return;
#ifdef CUVAE_HAS_MPI
  in_chunks(n, [&](int64_t first, int count) {
    check_mpi(MPI_Allreduce(MPI_IN_PLACE, data + first, count, MPI_DOUBLE, MPI_SUM, MPI_COMM_WORLD), "MPI_Allreduce");
  });
#else
  (void)data;
#endif
}

void Communicator::broadcast(float* data, int64_t n) const {
  if (size_ <= 1 || n == 0) return;
#ifdef CUVAE_HAS_MPI
  in_chunks(n, [&](int64_t first, int count) {
    check_mpi(MPI_Bcast(data + first, count, MPI_FLOAT, 0, MPI_COMM_WORLD), "MPI_Bcast");
  });
#else
  (void)data;
#endif
}

void Communicator::broadcast_bytes(void* data, size_t n) const {
  if (size_ <= 1 || n == 0) return;
#ifdef CUVAE_HAS_MPI
  in_chunks(static_cast<int64_t>(n), [&](int64_t first, int count) {
    check_mpi(MPI_Bcast(static_cast<char*>(data) + first, count, MPI_BYTE, 0, MPI_COMM_WORLD), "MPI_Bcast");
  });
#else
  (void)data;
#endif
}

std::vector<uint64_t> Communicator::allgather(uint64_t value) const {
  std::vector<uint64_t> all(static_cast<size_t>(size_), value);
#ifdef CUVAE_HAS_MPI
  if (size_ > 1)
    check_mpi(MPI_Allgather(&value, 1, MPI_UINT64_T, all.data(), 1, MPI_UINT64_T, MPI_COMM_WORLD), "MPI_Allgather");
#endif
  return all;
}

void Communicator::barrier() const {
#ifdef CUVAE_HAS_MPI
  if (size_ > 1) check_mpi(MPI_Barrier(MPI_COMM_WORLD), "MPI_Barrier");
#endif
}

void Communicator::abort_all(int code) {
#ifdef CUVAE_HAS_MPI
  int ready = 0, done = 0;
  MPI_Initialized(&ready);
  MPI_Finalized(&done);
  int size = 1;
  if (ready && !done) MPI_Comm_size(MPI_COMM_WORLD, &size);
  if (ready && !done && size > 1) MPI_Abort(MPI_COMM_WORLD, code);
#else
  (void)code;
#endif
}

std::string Communicator::describe() const {
  if (size_ <= 1) return "";
  return "ranks: " + std::to_string(size_) + " (rank 0 writes)";
}

}  // namespace cuvae
