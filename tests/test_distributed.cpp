// core/distributed.h without a launcher: one process, the launcher detection and the hash.
#include <gtest/gtest.h>

#include <cstdlib>
#include <vector>

#include "core/distributed.h"
#include "core/gpu_collectives.h"
#include "core/tensor.h"
#include "test_util.h"

namespace cuvae {
namespace {

// Sets (or with nullptr unsets) one variable for the test's scope.
struct EnvVar {
  const char* name;
  EnvVar(const char* n, const char* v) : name(n) {
    if (v) setenv(n, v, 1); else unsetenv(n);
  }
  ~EnvVar() { unsetenv(name); }
};

TEST(Distributed, LaunchedRanksReadsTheLaunchersVariables) {
  EnvVar a("OMPI_COMM_WORLD_SIZE", nullptr), b("PMI_SIZE", nullptr), c("PMIX_SIZE", nullptr);
  EXPECT_EQ(launched_ranks(), 1);
  { EnvVar v("OMPI_COMM_WORLD_SIZE", "4"); EXPECT_EQ(launched_ranks(), 4); }
  { EnvVar v("PMI_SIZE", "16"); EXPECT_EQ(launched_ranks(), 16); }
  { EnvVar v("PMIX_SIZE", "2"); EXPECT_EQ(launched_ranks(), 2); }
  { EnvVar v("OMPI_COMM_WORLD_SIZE", "two"); EXPECT_EQ(launched_ranks(), 1); }
  { EnvVar v("OMPI_COMM_WORLD_SIZE", "-3"); EXPECT_EQ(launched_ranks(), 1); }
}

TEST(Distributed, OneProcessIsRankZeroOfOneAndItsCollectivesChangeNothing) {
  const Communicator& w = Communicator::world();
  EXPECT_EQ(w.rank(), 0);
  EXPECT_EQ(w.size(), 1);
  EXPECT_FALSE(w.distributed());
  EXPECT_TRUE(w.writes());
  EXPECT_EQ(w.describe(), "");
  EXPECT_EQ(w.local_rank(), 0);
  std::vector<float> v = {1.5f, -2.0f, 3.25f};
  w.allreduce_sum(v.data(), 3);
  w.broadcast(v.data(), 3);
  char id[4] = {'n', 'c', 'c', 'l'};
  w.broadcast_bytes(id, sizeof id);
  EXPECT_EQ(std::string(id, 4), "nccl");
  EXPECT_EQ(v, (std::vector<float>{1.5f, -2.0f, 3.25f}));
  EXPECT_EQ(w.allgather(42), (std::vector<uint64_t>{42}));
  Communicator::abort_all(1);  // one process: returns
}

TEST(Distributed, ShardsTileTheItemsInRankOrder) {
  EXPECT_EQ(shard_range(10000, 0, 1), (std::pair<int64_t, int64_t>{0, 10000}));
  EXPECT_EQ(shard_range(701, 0, 2), (std::pair<int64_t, int64_t>{0, 350}));
  EXPECT_EQ(shard_range(701, 1, 2), (std::pair<int64_t, int64_t>{350, 701}));
  for (int size : {1, 2, 3, 7, 16})
    for (int64_t n : {0, 1, 5, 701, 10000}) {
      int64_t next = 0;
      for (int r = 0; r < size; ++r) {
        const auto [first, last] = shard_range(n, r, size);
        EXPECT_EQ(first, next) << "n " << n << ", rank " << r << " of " << size;
        EXPECT_LE(last - first, n / size + 1);
        EXPECT_GE(last - first, n / size);
        next = last;
      }
      EXPECT_EQ(next, n) << "n " << n << " over " << size << " ranks";
    }
  EXPECT_EQ(Communicator::world().shard(123), (std::pair<int64_t, int64_t>{0, 123}));
}

TEST(Distributed, Fnv1aMatchesTheReferenceValues) {
  EXPECT_EQ(fnv1a64("", 0), 0xcbf29ce484222325ull);
  EXPECT_EQ(fnv1a64("a", 1), 0xaf63dc4c8601ec8cull);
  EXPECT_EQ(fnv1a64("foobar", 6), 0x85944171f73967e8ull);
  // Chained: the hash of two pieces equals the hash of their concatenation.
  EXPECT_EQ(fnv1a64("bar", 3, fnv1a64("foo", 3)), fnv1a64("foobar", 6));
}

// What a machine without a GPU (or a build without NCCL) says when asked for NCCL: an error that
// names what is missing, never a crash inside NCCL.
TEST(Distributed, NcclWithoutAGpuOrWithoutNcclIsAClearError) {
  if (cuda_available() && nccl_available()) GTEST_SKIP() << "a GPU and NCCL are here: gpu_nccl.cpp checks the collectives";
  const std::string e = test::what_of([] { NcclCommunicator::single(); });
  if (nccl_available()) {
    EXPECT_CONTAINS(e, "NCCL needs a usable CUDA GPU on every rank");
    EXPECT_EQ(nccl_version().rfind("NCCL 2.", 0), 0u) << nccl_version();
  } else {
    EXPECT_CONTAINS(e, "this build of cuvae has no NCCL");
    EXPECT_EQ(nccl_version(), "no NCCL");
  }
  EXPECT_EQ(select_cuda_device(3), -1);  // no GPU: nothing to select
}

}  // namespace
}  // namespace cuvae
