#include "core/step_graph.h"

#include <cstdio>

#include "core/check.h"

#ifdef CUVAE_HAS_CUDA
#include "core/cuda_check.h"
#endif

namespace cuvae {

StepGraph::StepGraph(bool enabled, int warmup) : enabled_(enabled), warmup_(warmup < 1 ? 1 : warmup) {}

StepGraph::~StepGraph() {
#ifdef CUVAE_HAS_CUDA
  if (exec_ != nullptr && cudaGraphExecDestroy(static_cast<cudaGraphExec_t>(exec_)) != cudaSuccess)
    std::fprintf(stderr, "cuvae: cudaGraphExecDestroy failed\n");
#endif
}

std::string StepGraph::summary() const {
  if (!fallback_.empty()) return "note: the training step could not be captured as a CUDA graph (" + fallback_ + "); it runs eagerly\n";
  if (captures_ > 0)
    return "cuda graph: one captured training step replayed " + std::to_string(replays_) + " times this epoch\n";
  return "";
}

void StepGraph::run(Context& ctx, const std::function<void()>& step) {
  ++calls_;
  if (!ctx.is_cuda() || !enabled_ || calls_ <= warmup_) {
    step();
    return;
  }
#ifdef CUVAE_HAS_CUDA
  const cudaStream_t s = static_cast<cudaStream_t>(ctx.stream());
  if (exec_ != nullptr && allocation_count() != alloc_mark_) {
    // Something was allocated since the capture: a buffer the graph uses may have moved.
    CUDA_CHECK(cudaGraphExecDestroy(static_cast<cudaGraphExec_t>(exec_)));
    exec_ = nullptr;
  }
  if (exec_ == nullptr) {
    // Capture this thread's work on the stream; calls that would synchronise or allocate fail
    // instead of running, which abandons the capture.
    const int64_t allocations_before = allocation_count();
    // A fault in the eager steps before shows here as itself, not as a failed capture.
    CUDA_CHECK(cudaStreamSynchronize(s));
    CUDA_CHECK(cudaStreamBeginCapture(s, cudaStreamCaptureModeThreadLocal));
    cudaGraph_t graph = nullptr;
    std::string why;
    try {
      step();
    } catch (const Error& e) {
      why = e.what();
    } catch (...) {
      // Not a capture problem: end the capture so the stream works again, then let it through.
      if (cudaStreamEndCapture(s, &graph) == cudaSuccess && graph != nullptr) cudaGraphDestroy(graph);
      cudaGetLastError();
      throw;
    }
    const cudaError_t end = cudaStreamEndCapture(s, &graph);
    cudaGraphExec_t exec = nullptr;
    if (why.empty() && end != cudaSuccess) why = std::string("cudaStreamEndCapture: ") + cudaGetErrorString(end);
    if (why.empty() && allocation_count() != allocations_before)
      why = "the step allocated memory while it was being captured";
    if (why.empty()) {
      const cudaError_t inst = cudaGraphInstantiate(&exec, graph, 0);
      if (inst != cudaSuccess) why = std::string("cudaGraphInstantiate: ") + cudaGetErrorString(inst);
    }
    if (graph != nullptr) cudaGraphDestroy(graph);
    if (!why.empty()) {
      cudaGetLastError();  // clear the capture's error state
      fallback_ = why;
      enabled_ = false;
      step();  // nothing of the abandoned capture ran
      return;
    }
    exec_ = exec;
    alloc_mark_ = allocation_count();
    ++captures_;
  }
  CUDA_CHECK(cudaGraphLaunch(static_cast<cudaGraphExec_t>(exec_), s));
  ++replays_;
#else
  step();
#endif
}

}  // namespace cuvae
