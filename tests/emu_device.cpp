// The emulated CUDA device itself (kernels/emu/), on small kernels written for these tests and
// compiled here as the kernels/*.cu sources are (CUVAE_EMU): what it must compute, and the
// misuses it must catch (a missing barrier, storage reused without one, a shuffle with a wrong
// mask, a barrier not every thread reaches, launches a GPU refuses, shared memory read before
// it is written).
#include <gtest/gtest.h>

#include <cub/block/block_reduce.cuh>
#include <functional>
#include <numeric>
#include <string>
#include <vector>

#include "kernels/launch.cuh"

using namespace cuvae;

namespace {

constexpr int kThreads = 128;

// out[0] = Σ in over one block (cub::BlockReduce), the pattern of the real reductions.
__global__ void __launch_bounds__(kThreads) block_sum_kernel(const float* in, int n, float* out) {
  using Reduce = cub::BlockReduce<float, kThreads>;
  __shared__ typename Reduce::TempStorage tmp;
  float acc = 0.0f;
  for (int i = static_cast<int>(threadIdx.x); i < n; i += kThreads) acc += in[i];
  const float total = Reduce(tmp).Sum(acc);
  if (threadIdx.x == 0) out[0] = total;
}

// Each thread reads its right neighbour's value through shared memory: correct only with the
// barrier between the write and the read. (Kernels with __shared__ variables are not templates.)
__global__ void neighbour_kernel(const float* in, bool barrier, float* out) {
  __shared__ float tile[kThreads];
  const int t = static_cast<int>(threadIdx.x);
  tile[t] = in[t];
  if (barrier) __syncthreads();
  out[t] = tile[(t + 1) % kThreads];
}

// Two block sums through one TempStorage, with or without the barrier CUB asks for in between.
__global__ void two_sums_kernel(const float* a, const float* b, bool barrier, float* out) {
  using Reduce = cub::BlockReduce<float, kThreads>;
  __shared__ typename Reduce::TempStorage tmp;
  const float s1 = Reduce(tmp).Sum(a[threadIdx.x]);
  if (barrier) __syncthreads();
  const float s2 = Reduce(tmp).Sum(b[threadIdx.x]);
  if (threadIdx.x == 0) {
    out[0] = s1;
    out[1] = s2;
  }
}

// A warp sum by shuffles with a chosen first offset (16 is right; 8 sums only half the lanes).
__global__ void warp_sum_kernel(const float* in, int first_offset, float* out) {
  float v = in[threadIdx.x];
  for (int off = first_offset; off > 0; off /= 2) v += __shfl_down_sync(0xffffffffu, v, static_cast<unsigned>(off));
  if (threadIdx.x == 0) out[0] = v;
}

// Every lane calls a shuffle whose mask holds only the lower half-warp.
__global__ void half_mask_kernel(float* out) {
  out[threadIdx.x] = __shfl_down_sync(0x0000ffffu, static_cast<float>(threadIdx.x), 1u);
}

// Threads with an odd index leave before the barrier.
__global__ void early_exit_kernel(float* out) {
  if (threadIdx.x % 2 == 1) return;
  __syncthreads();
  out[threadIdx.x] = 1.0f;
}

// Even threads wait at one barrier, odd threads at another: two barriers in the source.
__global__ void split_barrier_kernel(float* out) {
  if (threadIdx.x % 2 == 0) {
    __syncthreads();
  } else {
    __syncthreads();
  }
  out[threadIdx.x] = 1.0f;
}

// One barrier after a loop that only some threads run (the shape of the Linear layers' bias
// gradient): an optimising host compiler may reach the call by two paths, still one barrier.
__global__ void loop_then_barrier_kernel(const float* in, int64_t n, float* out) {
  __shared__ float part[64];
  const int64_t t = threadIdx.x;
  float acc = 0.0f;
  if (t < 40) {
#pragma unroll 4
    for (int64_t i = t; i < n; i += 64) acc += in[i];
  }
  part[t] = acc;
  __syncthreads();
  if (t < 64) out[t] = part[63 - t];
}

// Reads shared memory nobody wrote.
__global__ void read_unwritten_kernel(float* out) {
  __shared__ float never_written[4];
  out[threadIdx.x] = never_written[threadIdx.x % 4];
}

// Each thread writes its own indices (grid-stride over the outputs).
__global__ void indices_kernel(int* out) {
  const int b = static_cast<int>(blockIdx.x + gridDim.x * (blockIdx.y + gridDim.y * blockIdx.z));
  const int t = static_cast<int>(threadIdx.x + blockDim.x * (threadIdx.y + blockDim.y * threadIdx.z));
  out[b * static_cast<int>(blockDim.x * blockDim.y * blockDim.z) + t] = b * 1000 + t;
}

// Ballot of "my lane is even", and xor / idx / up shuffles of the lane number.
__global__ void warp_ops_kernel(unsigned* ballot, float* xr, float* idx, float* up) {
  const int lane = static_cast<int>(threadIdx.x);
  const unsigned b = __ballot_sync(0xffffffffu, lane % 2 == 0);
  const float x = __shfl_xor_sync(0xffffffffu, static_cast<float>(lane), 1);
  const float i = __shfl_sync(0xffffffffu, static_cast<float>(lane), 5);
  const float u = __shfl_up_sync(0xffffffffu, static_cast<float>(lane), 3u);
  ballot[lane] = b;
  xr[lane] = x;
  idx[lane] = i;
  up[lane] = u;
}

// Every thread of every block adds 1, takes the maximum of its index and swaps in its index.
__global__ void atomics_kernel(int* sum, int* max_index, int* cas_hits) {
  const int t = static_cast<int>(blockIdx.x * blockDim.x + threadIdx.x);
  atomicAdd(sum, 1);
  atomicMax(max_index, t);
  if (atomicCAS(cas_hits, 0, t + 1) == 0) atomicSub(sum, 1000);  // exactly one thread wins
}

// Dynamic shared memory: thread t writes t, then reads thread (t + 1)'s after the barrier.
__global__ void dynamic_kernel(float* out) {
  float* s = detail::dynamic_shared<float>();
  s[threadIdx.x] = static_cast<float>(threadIdx.x);
  __syncthreads();
  out[threadIdx.x] = s[(threadIdx.x + 1) % blockDim.x];
}

const std::vector<emu::Schedule> kSchedules = {
    {emu::Schedule::Order::Forward, 0}, {emu::Schedule::Order::Reverse, 0}, {emu::Schedule::Order::Random, 3}};

struct ScheduleGuard {
  emu::Schedule saved = emu::schedule();
  ~ScheduleGuard() { emu::set_schedule(saved); }
};

std::vector<float> iota_floats(int n) {
  std::vector<float> v(static_cast<size_t>(n));
  std::iota(v.begin(), v.end(), 1.0f);
  return v;
}

// The bytes of `f(out)` under each schedule.
template <class F>
std::vector<std::vector<float>> under_each_schedule(size_t n_out, F f) {
  ScheduleGuard guard;
  std::vector<std::vector<float>> r;
  for (const emu::Schedule& s : kSchedules) {
    emu::set_schedule(s);
    std::vector<float> out(n_out, -1.0f);
    f(out.data());
    r.push_back(out);
  }
  return r;
}

std::string message_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

}  // namespace

TEST(EmuDevice, BlockReduceSumsUnderEverySchedule) {
  const std::vector<float> in = iota_floats(1000);
  const auto r = under_each_schedule(1, [&](float* out) {
    detail::launch<block_sum_kernel>(1, kThreads, 0, EmuStream{}, in.data(), 1000, out);
  });
  for (const auto& v : r) EXPECT_EQ(v[0], 500500.0f);
}

TEST(EmuDevice, AMissingBarrierGivesDifferentBytesUnderTwoSchedules) {
  const std::vector<float> in = iota_floats(kThreads);
  const auto good = under_each_schedule(kThreads, [&](float* out) {
    detail::launch<neighbour_kernel>(1, kThreads, 0, EmuStream{}, in.data(), true, out);
  });
  for (const auto& v : good) {
    EXPECT_EQ(v, good[0]);
    EXPECT_EQ(v[0], 2.0f);
    EXPECT_EQ(v[kThreads - 1], 1.0f);
  }
  const auto racy = under_each_schedule(kThreads, [&](float* out) {
    detail::launch<neighbour_kernel>(1, kThreads, 0, EmuStream{}, in.data(), false, out);
  });
  EXPECT_NE(racy[0], racy[1]) << "forward and reverse must disagree when the barrier is missing";
  EXPECT_TRUE(std::isnan(racy[0][0])) << "forward: thread 0 reads thread 1's slot before it is written (0xFF bytes)";
}

TEST(EmuDevice, CubTempStorageReusedWithoutABarrierShows) {
  const std::vector<float> a = iota_floats(kThreads), b(kThreads, 2.0f);
  const auto good = under_each_schedule(2, [&](float* out) {
    detail::launch<two_sums_kernel>(1, kThreads, 0, EmuStream{}, a.data(), b.data(), true, out);
  });
  for (const auto& v : good) EXPECT_EQ(v, (std::vector<float>{8256.0f, 256.0f}));
  const auto racy = under_each_schedule(2, [&](float* out) {
    detail::launch<two_sums_kernel>(1, kThreads, 0, EmuStream{}, a.data(), b.data(), false, out);
  });
  EXPECT_TRUE(racy[0] != racy[1] || racy[0] != racy[2]) << "reusing TempStorage without __syncthreads must show";
}

TEST(EmuDevice, AWrongShuffleOffsetIsAWrongSum) {
  const std::vector<float> in = iota_floats(32);
  const auto right = under_each_schedule(1, [&](float* out) {
    detail::launch<warp_sum_kernel>(1, 32, 0, EmuStream{}, in.data(), 16, out);
  });
  EXPECT_EQ(right[0][0], 528.0f);
  const auto wrong = under_each_schedule(1, [&](float* out) {
    detail::launch<warp_sum_kernel>(1, 32, 0, EmuStream{}, in.data(), 8, out);
  });
  EXPECT_EQ(wrong[0][0], 136.0f);  // lanes 0..15 only
}

TEST(EmuDevice, WarpVotesAndShufflesFollowCuda) {
  std::vector<unsigned> ballot(32);
  std::vector<float> xr(32), idx(32), up(32);
  detail::launch<warp_ops_kernel>(1, 32, 0, EmuStream{}, ballot.data(), xr.data(), idx.data(), up.data());
  for (int l = 0; l < 32; ++l) {
    EXPECT_EQ(ballot[static_cast<size_t>(l)], 0x55555555u);
    EXPECT_EQ(xr[static_cast<size_t>(l)], static_cast<float>(l ^ 1));
    EXPECT_EQ(idx[static_cast<size_t>(l)], 5.0f);
    EXPECT_EQ(up[static_cast<size_t>(l)], static_cast<float>(l >= 3 ? l - 3 : l));
  }
}

TEST(EmuDevice, AShuffleMaskThatLeavesOutACallingLaneIsAnError) {
  std::vector<float> out(32);
  const std::string m = message_of([&] { detail::launch<half_mask_kernel>(1, 32, 0, EmuStream{}, out.data()); });
  EXPECT_NE(m.find("half_mask_kernel"), std::string::npos) << m;
  EXPECT_NE(m.find("leaves it out"), std::string::npos) << m;
}

TEST(EmuDevice, ABarrierSomeThreadsNeverReachIsAnError) {
  std::vector<float> out(64);
  const std::string m = message_of([&] { detail::launch<early_exit_kernel>(1, 64, 0, EmuStream{}, out.data()); });
  EXPECT_NE(m.find("__syncthreads"), std::string::npos) << m;
  EXPECT_NE(m.find("exited"), std::string::npos) << m;
}

TEST(EmuDevice, ThreadsAtTwoDifferentBarriersAreAnError) {
  std::vector<float> out(64);
  const std::string m = message_of([&] { detail::launch<split_barrier_kernel>(1, 64, 0, EmuStream{}, out.data()); });
  EXPECT_NE(m.find("different __syncthreads() calls"), std::string::npos) << m;
}

TEST(EmuDevice, OneBarrierAfterALoopSomeThreadsSkipIsOneBarrier) {
  std::vector<float> in(100), out(64);
  for (size_t i = 0; i < in.size(); ++i) in[i] = static_cast<float>(i);
  for (const emu::Schedule& s : kSchedules) {
    ScheduleGuard g;
    emu::set_schedule(s);
    detail::launch<loop_then_barrier_kernel>(1, 64, 0, EmuStream{}, in.data(), 100, out.data());
    // part[t] = in[t] + in[t + 64] for t < 36, in[t] for 36 ≤ t < 40, 0 from 40 on.
    for (int t = 0; t < 64; ++t) {
      const int src = 63 - t;
      const float want = src < 36 ? in[src] + in[src + 64] : src < 40 ? in[src] : 0.0f;
      EXPECT_EQ(out[static_cast<size_t>(t)], want) << "thread " << t;
    }
  }
}

TEST(EmuDevice, SharedMemoryReadBeforeItIsWrittenIsNaN) {
  std::vector<float> out(8, 0.0f);
  detail::launch<read_unwritten_kernel>(1, 8, 0, EmuStream{}, out.data());
  for (float v : out) EXPECT_TRUE(std::isnan(v));
}

TEST(EmuDevice, DynamicSharedMemoryIsPerBlockAndSized) {
  std::vector<float> out(64);
  detail::launch<dynamic_kernel>(1, 64, 64 * sizeof(float), EmuStream{}, out.data());
  for (int t = 0; t < 64; ++t) EXPECT_EQ(out[static_cast<size_t>(t)], static_cast<float>((t + 1) % 64));
}

TEST(EmuDevice, IndicesCoverThreeDimensionalGridsAndBlocks) {
  std::vector<int> out(2 * 3 * 2 * 4 * 2 * 3, -1);
  detail::launch<indices_kernel>(dim3(2, 3, 2), dim3(4, 2, 3), 0, EmuStream{}, out.data());
  for (int b = 0; b < 12; ++b)
    for (int t = 0; t < 24; ++t) EXPECT_EQ(out[static_cast<size_t>(b * 24 + t)], b * 1000 + t);
}

TEST(EmuDevice, LaunchesTheGpuRefusesFailAsTheCudaRuntimeWould) {
  std::vector<int> out(4096);
  std::string m = message_of([&] { detail::launch<indices_kernel>(1, 2048, 0, EmuStream{}, out.data()); });
  EXPECT_NE(m.find("cudaErrorInvalidConfiguration"), std::string::npos) << m;
  EXPECT_NE(m.find("2048 threads per block"), std::string::npos) << m;
  m = message_of([&] { detail::launch<indices_kernel>(0, 32, 0, EmuStream{}, out.data()); });
  EXPECT_NE(m.find("zero"), std::string::npos) << m;
  m = message_of([&] { detail::launch<indices_kernel>(dim3(1, 70000), 32, 0, EmuStream{}, out.data()); });
  EXPECT_NE(m.find("grid dimension 1"), std::string::npos) << m;
  m = message_of([&] { detail::launch<indices_kernel>(1, dim3(1, 1, 65), 0, EmuStream{}, out.data()); });
  EXPECT_NE(m.find("block dimension 2"), std::string::npos) << m;
  m = message_of([&] { detail::launch<dynamic_kernel>(1, 32, 64 * 1024, EmuStream{}, reinterpret_cast<float*>(out.data())); });
  EXPECT_NE(m.find("cudaErrorInvalidValue"), std::string::npos) << m;
}

TEST(EmuDevice, LaunchBoundsAreEnforced) {
  // block_sum_kernel is bounded to kThreads; this file is not a generated wrapper, so register it here.
  emu::register_launch_bounds(reinterpret_cast<const void*>(&block_sum_kernel), kThreads);
  std::vector<float> in(512, 1.0f), out(1);
  const std::string m = message_of([&] { detail::launch<block_sum_kernel>(1, 256, 0, EmuStream{}, in.data(), 512, out.data()); });
  EXPECT_NE(m.find("cudaErrorLaunchOutOfResources"), std::string::npos) << m;
  EXPECT_NE(m.find("__launch_bounds__ allows at most 128"), std::string::npos) << m;
}

TEST(EmuDevice, AtomicsUpdateOnceEach) {
  ScheduleGuard guard;
  for (const emu::Schedule& s : kSchedules) {
    emu::set_schedule(s);
    int sum = 0, max_index = -1, cas = 0;
    detail::launch<atomics_kernel>(3, 64, 0, EmuStream{}, &sum, &max_index, &cas);
    EXPECT_EQ(sum, 192 - 1000) << s.name();
    EXPECT_EQ(max_index, 191) << s.name();
    EXPECT_GT(cas, 0) << s.name();
  }
}

TEST(EmuDevice, ScheduleNamesParse) {
  EXPECT_EQ(emu::parse_schedule("forward").name(), "forward");
  EXPECT_EQ(emu::parse_schedule("reverse").name(), "reverse");
  EXPECT_EQ(emu::parse_schedule("random:42").name(), "random:42");
  EXPECT_NE(message_of([] { emu::parse_schedule("random"); }).find("CUVAE_EMU_SCHEDULE"), std::string::npos);
  EXPECT_NE(message_of([] { emu::parse_schedule("backwards"); }).find("forward, reverse or random:SEED"), std::string::npos);
}
