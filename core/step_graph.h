// StepGraph: one training step captured as a CUDA graph and replayed for every later step.
#pragma once

#include <cstdint>
#include <functional>
#include <string>

#include "core/context.h"

namespace cuvae {

/// Runs one training step per call of run(). On the CPU, or when disabled (--cuda-graph off),
/// every call runs the step eagerly. On CUDA the first `warmup` calls run eagerly (they allocate
/// buffers, search cuDNN algorithms and grow workspaces: nothing a graph may do), the next call
/// captures the step into a CUDA graph (capturing does not execute it) and launches the graph,
/// and every later call launches it again. The step must therefore enqueue the same work on
/// ctx.stream() every time, reading whatever changes per step from device memory (a
/// StepStateBuffer), never from kernel arguments. If the capture fails the graph is abandoned,
/// the reason is kept (fallback_reason()) and the step runs eagerly from then on.
/// A graph holds the addresses of every buffer the step touched. Layers grow their buffers to the
/// largest batch they see (an evaluation between epochs may), so whenever anything was allocated
/// since the capture (allocation_count() moved) the graph is captured again before its next launch.
class StepGraph {
 public:
  explicit StepGraph(bool enabled, int warmup = 1);
  ~StepGraph();
  StepGraph(const StepGraph&) = delete;
  StepGraph& operator=(const StepGraph&) = delete;

  /// Runs (or launches) one step on ctx's stream. Throws cuvae::Error from the step or on a CUDA
  /// error of a launch.
  void run(Context& ctx, const std::function<void()>& step);
  /// True once a graph has been captured and instantiated.
  bool captured() const { return exec_ != nullptr; }
  /// Steps run by launching the graph.
  int64_t replays() const { return replays_; }
  /// Captures made (more than one when allocations in between forced a new one).
  int64_t captures() const { return captures_; }
  /// Why capture was abandoned (empty if it was not).
  const std::string& fallback_reason() const { return fallback_; }
  /// One log line: how many steps replayed the captured graph, or why the step runs eagerly
  /// (empty when no capture was attempted: the CPU, --cuda-graph off, or still warming up).
  std::string summary() const;

 private:
  bool enabled_;
  int warmup_;
  int64_t calls_ = 0, replays_ = 0, captures_ = 0;
  int64_t alloc_mark_ = 0;  // allocation_count() when the graph was captured
  void* exec_ = nullptr;  // cudaGraphExec_t
  std::string fallback_;
};

}  // namespace cuvae
