// core/distributed.h without a launcher: one process, the launcher detection and the hash.
#include <gtest/gtest.h>

#include <cstdlib>
#include <vector>

#include "core/distributed.h"

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
  std::vector<float> v = {1.5f, -2.0f, 3.25f};
  w.allreduce_sum(v.data(), 3);
  w.broadcast(v.data(), 3);
  EXPECT_EQ(v, (std::vector<float>{1.5f, -2.0f, 3.25f}));
  EXPECT_EQ(w.allgather(42), (std::vector<uint64_t>{42}));
  Communicator::abort_all(1);  // one process: returns
}

TEST(Distributed, Fnv1aMatchesTheReferenceValues) {
  EXPECT_EQ(fnv1a64("", 0), 0xcbf29ce484222325ull);
  EXPECT_EQ(fnv1a64("a", 1), 0xaf63dc4c8601ec8cull);
  EXPECT_EQ(fnv1a64("foobar", 6), 0x85944171f73967e8ull);
  // Chained: the hash of two pieces equals the hash of their concatenation.
  EXPECT_EQ(fnv1a64("bar", 3, fnv1a64("foo", 3)), fnv1a64("foobar", 6));
}

}  // namespace
}  // namespace cuvae
