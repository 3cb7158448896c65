// The emulated CUDA device's scheduler (see runtime.h): worker fibers that run the CUDA threads
// of the running block, switched at every barrier and warp collective.
#include "kernels/emu/runtime.h"

#include <sys/mman.h>
#include <ucontext.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <map>
#include <memory>
#include <mutex>
#include <numeric>
#include <random>
#include <set>
#include <sstream>

#include "core/check.h"

#if defined(__SANITIZE_ADDRESS__)
#define CUVAE_EMU_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define CUVAE_EMU_ASAN 1
#endif
#endif
#ifdef CUVAE_EMU_ASAN
#include <sanitizer/asan_interface.h>
#include <sanitizer/common_interface_defs.h>
#endif

// Every emulated kernel's static __shared__ variables live in this section (device.h's
// __shared__); the linker defines its bounds. The anchor makes sure the section exists.
__attribute__((section("cuvae_emu_shared"), used)) static unsigned char g_shared_anchor[16];
extern "C" unsigned char __start_cuvae_emu_shared[];  // NOLINT(bugprone-reserved-identifier)
extern "C" unsigned char __stop_cuvae_emu_shared[];   // NOLINT(bugprone-reserved-identifier)

namespace cuvae::emu {
namespace {

// ---- fiber stacks ------------------------------------------------------------------------------

constexpr size_t kStackBytes = 256 * 1024;  // per CUDA thread; only touched pages are resident

struct Stack {
  unsigned char* base = nullptr;  // lowest usable address (a guard page lies below)
  size_t size = 0;
};

class StackPool {
 public:
  ~StackPool() {
    for (const Stack& s : free_) munmap(s.base - page(), s.size + page());
  }
  Stack take() {
    if (!free_.empty()) {
      const Stack s = free_.back();
      free_.pop_back();
      return s;
    }
    const size_t total = kStackBytes + page();
    void* p = mmap(nullptr, total, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    CUVAE_CHECK(p != MAP_FAILED, "emulated device: cannot map a " << kStackBytes / 1024 << " KiB thread stack");
    mprotect(p, page(), PROT_NONE);  // a thread that overflows its stack faults here
    return {static_cast<unsigned char*>(p) + page(), kStackBytes};
  }
  // `dirty`: the stack belonged to a thread abandoned mid-kernel (its frames never returned).
  void give(Stack s, bool dirty) {
#ifdef CUVAE_EMU_ASAN
    if (dirty) __asan_unpoison_memory_region(s.base, s.size);
#else
    (void)dirty;
#endif
    free_.push_back(s);
  }

 private:
  static size_t page() {
    static const size_t p = static_cast<size_t>(sysconf(_SC_PAGESIZE));
    return p;
  }
  std::vector<Stack> free_;
};

// ---- switching between fibers -------------------------------------------------------------------
// On x86-64 a switch saves the callee-saved registers, MXCSR and the x87 control word on the
// stack it leaves and restores them from the one it enters: no system call (swapcontext asks the
// kernel for the signal mask twice per switch, which cost more than the kernels themselves).
// Elsewhere, ucontext.

#if defined(__x86_64__)
extern "C" void cuvae_emu_switch(void** save_sp, void* load_sp);
asm(R"(
  .text
  .p2align 4
  .globl cuvae_emu_switch
  .hidden cuvae_emu_switch
  .type cuvae_emu_switch, @function
cuvae_emu_switch:
  pushq %rbp
  pushq %rbx
  pushq %r12
  pushq %r13
  pushq %r14
  pushq %r15
  subq $16, %rsp
  stmxcsr 8(%rsp)
  fnstcw 12(%rsp)
  movq %rsp, (%rdi)
  movq %rsi, %rsp
  ldmxcsr 8(%rsp)
  fldcw 12(%rsp)
  addq $16, %rsp
  popq %r15
  popq %r14
  popq %r13
  popq %r12
  popq %rbx
  popq %rbp
  ret
  .size cuvae_emu_switch, .-cuvae_emu_switch
  .section .note.GNU-stack,"",@progbits
  .text
)");

struct FiberContext {
  void* sp = nullptr;
};

// Prepares `c` to start `entry` (which never returns) on `stack` at its first switch.
void fiber_init(FiberContext& c, const Stack& stack, void (*entry)()) {
  auto top = reinterpret_cast<uintptr_t>(stack.base + stack.size) & ~uintptr_t{15};
  auto** sp = reinterpret_cast<void**>(top);
  *--sp = nullptr;                          // entry's return address (never used): rsp % 16 == 8 at entry
  *--sp = reinterpret_cast<void*>(entry);   // where the switch returns to
  for (int i = 0; i < 6; ++i) *--sp = nullptr;  // rbp, rbx, r12..r15
  sp -= 2;
  auto* control = reinterpret_cast<uint32_t*>(sp);
  control[2] = 0x1F80;  // MXCSR: all exceptions masked, round to nearest
  control[3] = 0x037F;  // x87 control word: the same
  c.sp = sp;
}
inline void fiber_switch(FiberContext& from, FiberContext& to) { cuvae_emu_switch(&from.sp, to.sp); }
#else
struct FiberContext {
  ucontext_t uc{};
};
void fiber_init(FiberContext& c, const Stack& stack, void (*entry)()) {
  getcontext(&c.uc);
  c.uc.uc_stack.ss_sp = stack.base;
  c.uc.uc_stack.ss_size = stack.size;
  c.uc.uc_link = nullptr;
  makecontext(&c.uc, entry, 0);
}
inline void fiber_switch(FiberContext& from, FiberContext& to) { swapcontext(&from.uc, &to.uc); }
#endif

// ---- the threads of a block --------------------------------------------------------------------

enum class State { Ready, AtBarrier, AtWarp, Done };

struct Thread {
  ThreadCtx ctx;
  int linear = 0, lane = 0, warp = 0;
  State state = State::Ready;
  bool started = false;
  // at a barrier
  const void* site = nullptr;
  // at a warp collective
  WarpOp op = WarpOp::Sync;
  unsigned mask = 0;
  uint64_t value = 0, result = 0;
  int arg = 0, width = 32;
  const char* what = "";
  // the fiber running this thread (null before it starts and after it ends)
  struct Worker* worker = nullptr;
};

// A fiber that runs CUDA threads one after another: it runs a thread's body, reports the end to
// the scheduler and waits for the next thread. Workers persist across blocks and launches, so a
// thread costs two switches and no fiber creation (under AddressSanitizer, no fake stack either).
struct Worker {
  FiberContext ctx;
  Stack stack;
};

struct Run {
  const LaunchConfig* cfg = nullptr;
  ThreadBody body = nullptr;
  void* closure = nullptr;
  std::vector<Thread> threads;
  Thread* cur = nullptr;
  FiberContext sched;
  std::string error;        // first violation found inside a thread
  unsigned char* dyn = nullptr;
  Dim3 block_idx;
  const void* main_bottom = nullptr;  // the scheduler's stack (for AddressSanitizer's fiber API)
  size_t main_size = 0;
};

Run* g_run = nullptr;  // the launch being run (one at a time: g_launch_mutex)
std::mutex g_launch_mutex;
StackPool g_stacks;
// Workers waiting for a thread (destroyed before g_stacks, whose stacks they give back).
struct WorkerPool {
  std::vector<Worker*> idle;
  ~WorkerPool();
} g_workers;
Counters g_counters;
std::set<std::string> g_launched;
bool g_schedule_set = false;
Schedule g_schedule;

std::map<const void*, int>& bounds_registry() {
  static std::map<const void*, int> m;
  return m;
}

// AddressSanitizer must know which stack is live (fake stacks for use-after-return included).
inline void start_switch(void** fake, const void* bottom, size_t size) {
#ifdef CUVAE_EMU_ASAN
  __sanitizer_start_switch_fiber(fake, bottom, size);
#else
  (void)fake, (void)bottom, (void)size;
#endif
}
inline void finish_switch(void* fake, const void** bottom_old, size_t* size_old) {
#ifdef CUVAE_EMU_ASAN
  __sanitizer_finish_switch_fiber(fake, bottom_old, size_old);
#else
  (void)fake, (void)bottom_old, (void)size_old;
#endif
}

std::string where(const Run& r, const Thread& t) {
  std::ostringstream os;
  os << r.cfg->name << " block (" << r.block_idx.x << "," << r.block_idx.y << "," << r.block_idx.z << ") thread ("
     << t.ctx.thread_idx.x << "," << t.ctx.thread_idx.y << "," << t.ctx.thread_idx.z << ")";
  return os.str();
}

std::string hex(unsigned m) {
  char b[16];
  std::snprintf(b, sizeof b, "0x%08x", m);
  return b;
}

// Keeps the first violation found inside a thread; the scheduler throws it.
void record_violation(std::string msg) {
  if (g_run->error.empty()) g_run->error = std::move(msg);
}

// Ends the calling thread's fiber for good. Nothing that owns memory may be alive in the
// calling frames (the fiber's stack is dropped, not unwound).
[[noreturn]] void end_thread() {
  Run& r = *g_run;
  r.cur->state = State::Done;
  // This fiber never resumes: nothing may live on its stack (nor, under AddressSanitizer, its fake
  // stack, which start_switch(nullptr, ...) frees) from here on.
  static FiberContext abandoned;
  start_switch(nullptr, r.main_bottom, r.main_size);
  fiber_switch(abandoned, r.sched);
  std::abort();  // unreachable
}

// The body of every worker fiber: the threads the scheduler hands it, one after another.
void worker_main() {
  const void* bottom = nullptr;
  size_t size = 0;
  finish_switch(nullptr, &bottom, &size);
  for (;;) {
    Run& r = *g_run;
    r.main_bottom = bottom;
    r.main_size = size;
    try {
      r.body(r.closure);
    } catch (const std::exception& e) {
      record_violation(where(r, *r.cur) + ": " + e.what());
    } catch (...) {
      record_violation(where(r, *r.cur) + ": an exception that is not a std::exception");
    }
    r.cur->state = State::Done;
    Worker* w = r.cur->worker;
    void* fake = nullptr;
    start_switch(&fake, r.main_bottom, r.main_size);
    fiber_switch(w->ctx, r.sched);
    finish_switch(fake, &bottom, &size);
  }
}

void yield_to_scheduler(Thread& t) {
  Run& r = *g_run;
  void* fake = nullptr;
  start_switch(&fake, r.main_bottom, r.main_size);
  fiber_switch(t.worker->ctx, r.sched);
  finish_switch(fake, &r.main_bottom, &r.main_size);
}

WorkerPool::~WorkerPool() {
  for (Worker* w : idle) {
    g_stacks.give(w->stack, false);
    delete w;
  }
}

Worker* take_worker() {
  if (!g_workers.idle.empty()) {
    Worker* w = g_workers.idle.back();
    g_workers.idle.pop_back();
    return w;
  }
  auto* w = new Worker;
  w->stack = g_stacks.take();
  fiber_init(w->ctx, w->stack, worker_main);
  return w;
}

// A worker whose thread was abandoned mid-kernel: its stack is reused for a fresh one.
void retire_worker(Worker* w) {
  g_stacks.give(w->stack, true);
  delete w;
}

void resume(Run& r, Thread& t) {
  r.cur = &t;
  if (t.worker == nullptr) t.worker = take_worker();
  Worker* w = t.worker;
  void* fake = nullptr;
  start_switch(&fake, w->stack.base, w->stack.size);
  fiber_switch(r.sched, w->ctx);
  finish_switch(fake, nullptr, nullptr);
  ++g_counters.switches;
  r.cur = nullptr;
  if (t.state == State::Done) {
    if (r.error.empty())
      g_workers.idle.push_back(w);
    else
      retire_worker(w);  // it may have ended in end_thread()
    t.worker = nullptr;
  }
}

// Retires the workers of threads left suspended (after a violation).
void abandon(Run& r) {
  for (Thread& t : r.threads)
    if (t.worker != nullptr) {
      retire_worker(t.worker);
      t.worker = nullptr;
    }
}

const char* op_name(WarpOp op) {
  switch (op) {
    case WarpOp::Sync: return "__syncwarp";
    case WarpOp::ShflIdx: return "__shfl_sync";
    case WarpOp::ShflUp: return "__shfl_up_sync";
    case WarpOp::ShflDown: return "__shfl_down_sync";
    case WarpOp::ShflXor: return "__shfl_xor_sync";
    case WarpOp::Ballot: return "__ballot_sync";
    case WarpOp::Any: return "__any_sync";
    case WarpOp::All: return "__all_sync";
  }
  return "?";
}

// The source lane of a shuffle by lane `lane` (CUDA's rules for each variant and width).
int shuffle_source(const Thread& t) {
  const int w = t.width, base = (t.lane / w) * w, pos = t.lane - base;
  switch (t.op) {
    case WarpOp::ShflIdx: return base + (((t.arg % w) + w) % w);
    case WarpOp::ShflUp: return pos >= t.arg ? t.lane - t.arg : t.lane;
    case WarpOp::ShflDown: return pos + t.arg < w ? t.lane + t.arg : t.lane;
    case WarpOp::ShflXor: {
      const int src = t.lane ^ t.arg;
      return src >= base && src < base + w ? src : t.lane;
    }
    default: return t.lane;
  }
}

// The warp collective that thread `t` waits at, once every lane of its mask has arrived: computes
// every lane's result and makes them ready. Returns the lowest schedule position among the
// released lanes, or -1 while lanes are still to come. Throws when a lane of the mask can never
// arrive (it exited or waits at __syncthreads) or arrives at a different collective or mask.
int try_release_warp(Run& r, const Thread& t, const std::vector<int>& pos) {
  const int n = static_cast<int>(r.threads.size());
  const int w0 = t.warp * Limits::kWarpSize;
  Thread* lanes = &r.threads[static_cast<size_t>(w0)];
  const int nl = std::min(Limits::kWarpSize, n - w0);
  const unsigned mask = t.mask;
  for (int j = 0; j < nl; ++j) {
    if (!((mask >> j) & 1u)) continue;
    const Thread& o = lanes[j];
    if (o.state == State::Done)
      CUVAE_FAIL("emulated device: " << where(r, t) << " waits at " << t.what << " with mask " << hex(mask) << ", but lane "
                                     << j << " of its warp has exited (on a GPU: undefined, a hang)");
    if (o.state == State::AtBarrier)
      CUVAE_FAIL("emulated device: " << where(r, t) << " waits at " << t.what << " with mask " << hex(mask) << ", but lane "
                                     << j << " waits at __syncthreads (deadlock)");
    if (o.state == State::Ready) return -1;  // still to arrive
    if (o.mask != mask || o.op != t.op)
      CUVAE_FAIL("emulated device: lanes " << t.lane << " and " << j << " of a warp in " << where(r, t)
                                           << " meet at different warp collectives: " << t.what << " with mask " << hex(mask)
                                           << " and " << o.what << " with mask " << hex(o.mask));
  }
  uint64_t ballot = 0;
  for (int j = 0; j < nl; ++j)
    if ((mask >> j) & 1u) ballot |= (lanes[j].value != 0 ? 1ull : 0ull) << j;
  uint64_t out[Limits::kWarpSize] = {};
  for (int j = 0; j < nl; ++j) {
    if (!((mask >> j) & 1u)) continue;
    const Thread& q = lanes[j];
    switch (q.op) {
      case WarpOp::Sync: out[j] = 0; break;
      case WarpOp::Ballot: out[j] = ballot; break;
      case WarpOp::Any: out[j] = ballot != 0; break;
      case WarpOp::All: out[j] = ballot == mask; break;
      default: {
        const int src = shuffle_source(q);
        // A source lane that does not take part gives an undefined value on the GPU: all ones here.
        out[j] = (src == j || (src < nl && ((mask >> src) & 1u))) ? lanes[src].value : ~0ull;
      }
    }
  }
  int first = std::numeric_limits<int>::max();
  for (int j = 0; j < nl; ++j)
    if ((mask >> j) & 1u) {
      lanes[j].result = out[j];
      lanes[j].state = State::Ready;
      first = std::min(first, pos[static_cast<size_t>(w0 + j)]);
    }
  return first;
}

// Releases a barrier that every live thread has reached; throws when some thread exited or the
// threads wait at different __syncthreads.
bool resolve_barrier(Run& r) {
  const Thread* first = nullptr;
  int done = 0, at = 0;
  for (const Thread& t : r.threads) {
    if (t.state == State::Done) ++done;
    if (t.state != State::AtBarrier) continue;
    ++at;
    if (first == nullptr) first = &t;
    if (t.site != first->site)
      CUVAE_FAIL("emulated device: " << where(r, *first) << " and thread " << t.ctx.thread_idx.x
                                     << " wait at different __syncthreads() calls (undefined on a GPU)");
  }
  if (at == 0) return false;
  if (done > 0) {
    const Thread* gone = nullptr;
    for (const Thread& t : r.threads)
      if (t.state == State::Done) { gone = &t; break; }
    CUVAE_FAIL("emulated device: " << where(r, *first) << " waits at __syncthreads(), which " << done << " of the block's "
                                   << r.threads.size() << " threads never reach (thread " << gone->ctx.thread_idx.x
                                   << " exited): the barrier must be reached by every thread of the block");
  }
  for (Thread& t : r.threads) t.state = State::Ready;
  return true;
}

std::string describe_states(const Run& r) {
  std::ostringstream os;
  int shown = 0;
  for (const Thread& t : r.threads) {
    if (t.state == State::Done || shown >= 4) continue;
    os << (shown++ ? "; " : "") << "thread " << t.linear << " at "
       << (t.state == State::AtBarrier ? "__syncthreads" : t.what);
  }
  return os.str();
}

// The order threads (or blocks) are preferred in during `epoch` (the stretch between two barriers)
// of block `block`.
void order_for(std::vector<int>& perm, int n, const Schedule& s, uint64_t launch, uint64_t block, uint64_t epoch) {
  perm.resize(static_cast<size_t>(n));
  std::iota(perm.begin(), perm.end(), 0);
  if (s.order == Schedule::Order::Reverse) std::reverse(perm.begin(), perm.end());
  if (s.order == Schedule::Order::Random) {
    std::mt19937_64 rng(s.seed * 0x9E3779B97F4A7C15ull ^ (launch << 40) ^ (block << 20) ^ epoch);
    for (int i = n - 1; i > 0; --i) std::swap(perm[static_cast<size_t>(i)], perm[rng() % static_cast<uint64_t>(i + 1)]);
  }
}

// Runs one block. The scheduler always resumes the ready thread that comes first in the epoch's
// order, so a warp whose collective completes runs on ahead of threads later in the order: with
// the reverse order the last warp reaches its next shared-memory write before thread 0 reads
// what the barrier protected, which is what a GPU may do too.
void run_block(Run& r, const Schedule& s, uint64_t launch, uint64_t block_linear) {
  const LaunchConfig& c = *r.cfg;
  const unsigned bx = c.block.x, by = c.block.y, bz = c.block.z;
  const int n = static_cast<int>(bx * by * bz);
  r.threads.assign(static_cast<size_t>(n), Thread{});
  for (int i = 0; i < n; ++i) {
    Thread& t = r.threads[static_cast<size_t>(i)];
    const unsigned u = static_cast<unsigned>(i);
    t.ctx.thread_idx = {u % bx, (u / bx) % by, u / (bx * by)};
    t.ctx.block_idx = r.block_idx;
    t.ctx.block_dim = c.block;
    t.ctx.grid_dim = c.grid;
    t.linear = i;
    t.lane = i % Limits::kWarpSize;
    t.warp = i / Limits::kWarpSize;
  }
  // Fresh shared memory for the block, every byte 0xFF: a float or double read before it is
  // written is NaN.
  std::memset(__start_cuvae_emu_shared, 0xFF, static_cast<size_t>(__stop_cuvae_emu_shared - __start_cuvae_emu_shared));
  if (c.shared > 0) std::memset(r.dyn, 0xFF, c.shared);

  std::vector<int> order, pos(static_cast<size_t>(n));
  for (uint64_t epoch = 0;; ++epoch) {
    order_for(order, n, s, launch, block_linear, epoch);
    for (int k = 0; k < n; ++k) pos[static_cast<size_t>(order[static_cast<size_t>(k)])] = k;
    int cursor = 0;
    while (cursor < n) {
      Thread& t = r.threads[static_cast<size_t>(order[static_cast<size_t>(cursor)])];
      if (t.state != State::Ready) {
        ++cursor;
        continue;
      }
      resume(r, t);
      if (!r.error.empty()) CUVAE_FAIL(r.error);
      if (t.state == State::AtWarp) {
        const int first = try_release_warp(r, t, pos);
        if (first >= 0) cursor = std::min(cursor, first);
      }
    }
    // No thread is ready: every one has ended or waits at a barrier or an incomplete collective.
    int done = 0, at_barrier = 0;
    bool released = false;
    for (const Thread& t : r.threads) {
      done += t.state == State::Done;
      at_barrier += t.state == State::AtBarrier;
      // Throws when a lane of the collective can never arrive.
      if (t.state == State::AtWarp) released = try_release_warp(r, t, pos) >= 0 || released;
    }
    if (done == n) return;
    if (released) continue;
    if (at_barrier + done == n) {
      resolve_barrier(r);
      continue;
    }
    CUVAE_FAIL("emulated device: " << c.name << " block (" << r.block_idx.x << "," << r.block_idx.y << ","
                                   << r.block_idx.z << ") cannot go on (deadlock): " << describe_states(r));
  }
}

[[noreturn]] void launch_error(const LaunchConfig& c, const char* cuda_error, const char* cuda_name, const std::string& why) {
  CUVAE_FAIL("CUDA error " << cuda_error << " (" << cuda_name << ") on the emulated device: " << c.name << "<<<("
                           << c.grid.x << "," << c.grid.y << "," << c.grid.z << "), (" << c.block.x << "," << c.block.y
                           << "," << c.block.z << "), " << c.shared << ">>>: " << why);
}

void check_config(const LaunchConfig& c) {
  const unsigned b[3] = {c.block.x, c.block.y, c.block.z};
  const unsigned g[3] = {c.grid.x, c.grid.y, c.grid.z};
  const char* inv = "invalid configuration argument";
  const char* inv_name = "cudaErrorInvalidConfiguration";
  for (int k = 0; k < 3; ++k)
    if (b[k] == 0 || g[k] == 0) launch_error(c, inv, inv_name, "a grid or block dimension is zero");
  const unsigned long long threads = 1ull * b[0] * b[1] * b[2];
  if (threads > Limits::kMaxThreadsPerBlock)
    launch_error(c, inv, inv_name,
                 std::to_string(threads) + " threads per block, sm_90 allows at most " +
                     std::to_string(Limits::kMaxThreadsPerBlock));
  for (int k = 0; k < 3; ++k) {
    if (b[k] > Limits::kMaxBlockDim[k])
      launch_error(c, inv, inv_name,
                   "block dimension " + std::to_string(k) + " is " + std::to_string(b[k]) + ", sm_90 allows at most " +
                       std::to_string(Limits::kMaxBlockDim[k]));
    if (g[k] > Limits::kMaxGridDim[k])
      launch_error(c, inv, inv_name,
                   "grid dimension " + std::to_string(k) + " is " + std::to_string(g[k]) + ", sm_90 allows at most " +
                       std::to_string(Limits::kMaxGridDim[k]));
  }
  const size_t shared = static_shared_bytes() + c.shared;
  if (shared > Limits::kSharedPerBlock)
    launch_error(c, "invalid argument", "cudaErrorInvalidValue",
                 std::to_string(c.shared) + " bytes of dynamic shared memory on top of " +
                     std::to_string(static_shared_bytes()) + " static exceed the " +
                     std::to_string(Limits::kSharedPerBlock) + " bytes a block may use");
  const auto it = bounds_registry().find(c.kernel);
  if (it != bounds_registry().end() && threads > static_cast<unsigned long long>(it->second))
    launch_error(c, "too many resources requested for launch", "cudaErrorLaunchOutOfResources",
                 std::to_string(threads) + " threads per block, the kernel's __launch_bounds__ allows at most " +
                     std::to_string(it->second));
}

}  // namespace

std::string Schedule::name() const {
  switch (order) {
    case Order::Forward: return "forward";
    case Order::Reverse: return "reverse";
    case Order::Random: return "random:" + std::to_string(seed);
  }
  return "?";
}

Schedule parse_schedule(const std::string& s) {
  if (s == "forward") return {Schedule::Order::Forward, 0};
  if (s == "reverse") return {Schedule::Order::Reverse, 0};
  if (s.rfind("random:", 0) == 0 && s.size() > 7 && s.find_first_not_of("0123456789", 7) == std::string::npos &&
      s.size() <= 7 + 19)
    return {Schedule::Order::Random, std::stoull(s.substr(7))};
  CUVAE_FAIL("CUVAE_EMU_SCHEDULE: '" << s << "' is not a schedule; expected forward, reverse or random:SEED (SEED a "
                                        "non-negative integer)");
}

Schedule schedule() {
  if (!g_schedule_set) {
    const char* env = std::getenv("CUVAE_EMU_SCHEDULE");
    g_schedule = env != nullptr && *env != '\0' ? parse_schedule(env) : Schedule{};
    g_schedule_set = true;
  }
  return g_schedule;
}

void set_schedule(const Schedule& s) {
  g_schedule = s;
  g_schedule_set = true;
}

bool register_launch_bounds(const void* kernel, int max_threads) {
  bounds_registry()[kernel] = max_threads;
  return true;
}

std::vector<std::string> launched_kernels() {
  std::lock_guard<std::mutex> lock(g_launch_mutex);
  return {g_launched.begin(), g_launched.end()};
}

Counters counters() {
  std::lock_guard<std::mutex> lock(g_launch_mutex);
  return g_counters;
}

size_t static_shared_bytes() {
  return static_cast<size_t>(__stop_cuvae_emu_shared - __start_cuvae_emu_shared) - sizeof(g_shared_anchor);
}

void run(const LaunchConfig& cfg, ThreadBody body, void* closure) {
  std::lock_guard<std::mutex> lock(g_launch_mutex);
  CUVAE_CHECK(g_run == nullptr, "emulated device: a kernel launched from inside a kernel");
  check_config(cfg);
  const Schedule s = schedule();
  const uint64_t launch = g_counters.launches++;
  g_launched.insert(cfg.name);

  Run r;
  r.cfg = &cfg;
  r.body = body;
  r.closure = closure;
  // Dynamic shared memory: its own heap block of exactly the requested size (AddressSanitizer
  // reports an access past it).
  std::unique_ptr<unsigned char, decltype(&std::free)> dyn(
      cfg.shared > 0 ? static_cast<unsigned char*>(std::malloc(cfg.shared)) : nullptr, &std::free);
  CUVAE_CHECK(cfg.shared == 0 || dyn != nullptr, "emulated device: out of memory for shared memory");
  r.dyn = dyn.get();
  g_run = &r;
  struct Reset {
    Run& r;
    ~Reset() {
      abandon(r);
      g_run = nullptr;
    }
  } reset{r};

  const uint64_t nblocks = 1ull * cfg.grid.x * cfg.grid.y * cfg.grid.z;
  std::vector<int> order;
  // Blocks in the schedule's order too (a grid larger than 2^31 blocks is not emulated).
  CUVAE_CHECK(nblocks <= (1ull << 31), "emulated device: " << nblocks << " blocks are too many to emulate");
  order_for(order, static_cast<int>(nblocks), s, launch, ~0ull, 0);
  for (int b : order) {
    const unsigned u = static_cast<unsigned>(b);
    r.block_idx = {u % cfg.grid.x, (u / cfg.grid.x) % cfg.grid.y, u / (cfg.grid.x * cfg.grid.y)};
    run_block(r, s, launch, u);
    ++g_counters.blocks;
    g_counters.threads += r.threads.size();
  }
}

const ThreadCtx& current() { return g_run->cur->ctx; }

void syncthreads(const void* site) {
  Thread& t = *g_run->cur;
  t.state = State::AtBarrier;
  t.site = site;
  yield_to_scheduler(t);
}

uint64_t warp_collective(WarpOp op, unsigned mask, uint64_t value, int arg, int width) {
  Run& r = *g_run;
  Thread& t = *r.cur;
  const char* what = op_name(op);
  if (!((mask >> t.lane) & 1u)) {
    record_violation("emulated device: " + where(r, t) + " (lane " + std::to_string(t.lane) + ") calls " + what +
                     " with mask " + hex(mask) + ", which leaves it out (every calling lane must be in the mask)");
    end_thread();
  }
  const int warp_base = t.warp * Limits::kWarpSize;
  const int lanes_here = std::min<int>(Limits::kWarpSize, static_cast<int>(r.threads.size()) - warp_base);
  if (lanes_here < Limits::kWarpSize && (mask >> lanes_here) != 0) {
    record_violation("emulated device: " + where(r, t) + " calls " + what + " with mask " + hex(mask) +
                     ", which names lanes its warp does not have (the block's last warp has " +
                     std::to_string(lanes_here) + " lanes)");
    end_thread();
  }
  if (width <= 0 || width > Limits::kWarpSize || (width & (width - 1)) != 0) {
    record_violation("emulated device: " + where(r, t) + " calls " + what + " with width " + std::to_string(width) +
                     ": it must be a power of two up to 32");
    end_thread();
  }
  t.op = op;
  t.mask = mask;
  t.value = value;
  t.arg = arg;
  t.width = width;
  t.what = what;
  t.state = State::AtWarp;
  yield_to_scheduler(t);
  return t.result;
}

unsigned active_mask() {
  const Run& r = *g_run;
  const Thread& t = *r.cur;
  unsigned m = 0;
  const int base = t.warp * Limits::kWarpSize;
  for (int j = 0; j < Limits::kWarpSize && base + j < static_cast<int>(r.threads.size()); ++j)
    if (r.threads[static_cast<size_t>(base + j)].state != State::Done) m |= 1u << j;
  return m;
}

void* dynamic_shared() { return g_run->dyn; }

}  // namespace cuvae::emu
