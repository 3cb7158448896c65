// The emulated CUDA device: the scheduler that runs a kernel's threads on the CPU.
//
// Each CUDA thread of a block runs on a fiber of the calling OS thread. A block's
// threads run cooperatively: a thread runs until it reaches __syncthreads(), a warp
// collective (__shfl_*_sync, __syncwarp, the votes) or its end, and between two such points
// the threads run one after another in the order of the schedule (forward, reverse or a
// seeded shuffle; blocks likewise). A kernel that relies on an order it does not enforce
// gives different bytes under two schedules. Barriers, warp masks and launch configurations
// are checked as the GPU would check them (or stricter), and the violations a GPU leaves
// undefined (a barrier not reached by every thread, a shuffle whose mask leaves out a lane
// that takes part) are reported as errors naming the kernel, block and thread.
//
// Header for the emulation layer (kernels/emu/device.h) and the tests; the kernels see only
// the CUDA names device.h provides.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace cuvae::emu {

/// CUDA's dim3 and uint3 (global-namespace types on the GPU; see device.h), here as plain structs.
struct Dim3 {
  unsigned x = 1, y = 1, z = 1;
};

/// Between two synchronisation points the threads of a block run in increasing thread index
/// (Forward), decreasing (Reverse) or a permutation drawn from `seed` (Random); blocks of a grid
/// in the same order.
struct Schedule {
  enum class Order { Forward, Reverse, Random };
  Order order = Order::Forward;
  uint64_t seed = 0;
  /// "forward", "reverse" or "random:SEED".
  std::string name() const;
};

/// Parses "forward", "reverse" or "random:SEED" (SEED a decimal integer); throws cuvae::Error
/// naming CUVAE_EMU_SCHEDULE and the accepted forms otherwise.
Schedule parse_schedule(const std::string& s);

/// The schedule launches use: set_schedule's, else CUVAE_EMU_SCHEDULE's (read once), else forward.
Schedule schedule();
/// Sets the schedule of every later launch on this process.
void set_schedule(const Schedule& s);

/// Limits of the emulated device, those of sm_90 (H100/H200) without opt-in attributes.
struct Limits {
  static constexpr unsigned kMaxThreadsPerBlock = 1024;
  static constexpr unsigned kMaxBlockDim[3] = {1024, 1024, 64};
  static constexpr unsigned long long kMaxGridDim[3] = {2147483647ull, 65535ull, 65535ull};
  /// Static plus dynamic shared memory per block without cudaFuncAttributeMaxDynamicSharedMemorySize.
  static constexpr size_t kSharedPerBlock = 48 * 1024;
  static constexpr int kWarpSize = 32;
};

/// One kernel launch: what the CUDA runtime receives with <<<grid, block, shared>>>.
struct LaunchConfig {
  const void* kernel = nullptr;  ///< identity of the __global__ function (its address)
  const char* name = "";         ///< its name, for messages and coverage
  Dim3 grid, block;
  size_t shared = 0;  ///< dynamic shared memory in bytes
};

/// Body of one thread: calls the kernel with this launch's arguments.
using ThreadBody = void (*)(void* closure);

/// Runs a launch: checks the configuration as the CUDA runtime would (throws cuvae::Error with
/// CUDA's error name and the limit that was broken), then every block, each with fresh static
/// and dynamic shared memory filled with 0xFF bytes (NaN as float and double), its threads
/// interleaved as schedule() says. Throws cuvae::Error naming the kernel, block and thread when
/// a barrier or a warp collective is misused. Serialised: one launch at a time per process.
void run(const LaunchConfig& cfg, ThreadBody body, void* closure);

/// Registers the `__launch_bounds__` maximum of a kernel (by address). A launch of more threads
/// per block fails with cudaErrorLaunchOutOfResources, as on the GPU. Called from static
/// initialisers generated at build time from the kernels' sources.
bool register_launch_bounds(const void* kernel, int max_threads);

/// Names of the kernels launched so far in this process (for coverage tests).
std::vector<std::string> launched_kernels();
/// Launches and fiber switches so far (for tests and benchmarks).
struct Counters {
  uint64_t launches = 0, blocks = 0, threads = 0, switches = 0;
};
Counters counters();

// ---- what device.h calls from inside a kernel -------------------------------------------------

/// The thread being run: its indices and the launch's dimensions.
struct ThreadCtx {
  Dim3 thread_idx, block_idx, block_dim, grid_dim;
};
/// The current thread (valid only inside a kernel run by run()).
const ThreadCtx& current();
/// __syncthreads(): waits for every thread of the block at the same call site (`site`).
void syncthreads(const void* site);
/// The kinds of warp collective (all participating lanes must call the same kind with the same mask).
enum class WarpOp { Sync, ShflIdx, ShflUp, ShflDown, ShflXor, Ballot, Any, All };
/// A warp collective of the calling lane over the lanes in `mask`: `value` is this lane's
/// 64-bit payload, `arg` the source lane, delta or lane mask, `width` the shuffle width; returns
/// the shuffled payload (for a source lane outside the mask: all ones, NaN as float), or the
/// ballot bits for the votes. Checks that the caller is in `mask`, that every lane in `mask`
/// exists and reaches a collective of the same kind and mask, and that width is a power of two
/// up to 32.
uint64_t warp_collective(WarpOp op, unsigned mask, uint64_t value, int arg, int width);
/// The mask of the calling warp's lanes that have not exited (__activemask()).
unsigned active_mask();
/// The dynamic shared memory of the current block (extern __shared__).
void* dynamic_shared();
/// Bytes of static __shared__ memory of all emulated kernels together (one linker section; an
/// upper bound of any one kernel's).
size_t static_shared_bytes();

}  // namespace cuvae::emu
