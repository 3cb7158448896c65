// Step state: the per-step scalars of a training loop in one struct that lives on the training
// device, so that a CUDA graph captured from one training step replays correctly for every later
// step. Kernels read this step's values from the struct instead of taking them as arguments
// (which a graph would bake in at capture); step_state_advance, the last op of each step, moves
// the struct to the next step on the device. The CPU path keeps the same struct in host memory
// and advances it with the same op, so its logic is tested where no GPU is.
#pragma once

#include <cstdint>
#include <vector>

#include "core/context.h"
#include "core/tensor.h"
#include "kernels/emu/stream.h"

namespace cuvae {

/// The values one training step reads. Plain data with the same layout on host and device.
struct StepState {
  int64_t step = 0;                 ///< optimizer steps completed before this one (Adam's t − 1)
  int64_t batch_first = 0;          ///< first row of this step's batch in the epoch's order
  int64_t num_batches_tracked = 0;  ///< training-mode forwards so far (BatchNorm's counter)
  uint64_t philox_offset = 0;       ///< Philox offset base of this step: step · philox_per_step
  float lr = 0.0f;                  ///< this step's learning rate
  float kl_weight = 1.0f;           ///< this step's β_t (KL warm-up or cycles)
  float adam_step_size = 0.0f;      ///< lr / (1 − β1^t), computed in double then rounded
  float adam_bc2_sqrt = 1.0f;       ///< sqrt(1 − β2^t), likewise
  /// Data-parallel training: this process's first row within the global batch (rank · local
  /// batch; 0 in one process). The batch gather reads rows batch_first + row_base …, and the ops
  /// that draw per row (augmentation, ε, binarization) draw as row row_base + i of the global
  /// batch, so N processes together draw exactly what one process draws. Constant over a run,
  /// except with gradient accumulation, where it moves to each micro-batch's first row
  /// (step_state_set_row_base) before that micro-batch's forward pass.
  int64_t row_base = 0;
};

/// One row of a run's schedule table: the scalars of one step, computed on the host before the
/// run (so the CPU and the GPU read the very same floats).
struct StepScalars {
  float lr = 0.0f;
  float kl_weight = 1.0f;
  float adam_step_size = 0.0f;
  float adam_bc2_sqrt = 1.0f;
};

/// How the state moves from one step to the next (constant over a run).
struct StepAdvance {
  int64_t batch = 1;            ///< rows per step: batch_first advances by this
  int64_t steps_per_epoch = 1;  ///< batch_first returns to 0 after this many steps
  int64_t epoch_origin = 0;     ///< a step at which an epoch begins (the run's first step)
  uint64_t philox_per_step = 1; ///< Philox offsets one step uses
  int64_t table_first = 0;      ///< the step whose scalars are row 0 of the table
  int64_t table_rows = 0;       ///< rows in the table (a later step keeps the last row's values)
  int64_t forwards_per_step = 1;  ///< training-mode forwards per step (micro-batches): num_batches_tracked's advance
};

/// CPU reference of the advance at the end of a step: step += 1, num_batches_tracked +=
/// forwards_per_step,
/// batch_first = ((step − epoch_origin) mod steps_per_epoch) · batch, philox_offset +=
/// philox_per_step, and the
/// scalars from table row clamp(step − table_first, 0, table_rows − 1) (unchanged when the table
/// is empty). Throws cuvae::Error on batch or steps_per_epoch < 1.
void step_state_advance_cpu(StepState* state, const StepScalars* table, const StepAdvance& a);

/// CPU reference of moving the state to a micro-batch (gradient accumulation): row_base =
/// `row_base`. Throws cuvae::Error on row_base < 0.
void step_state_set_row_base_cpu(StepState* state, int64_t row_base);

namespace detail {
/// Throws cuvae::Error unless a.batch, a.steps_per_epoch, a.forwards_per_step ≥ 1 and a.table_rows, a.epoch_origin ≥ 0.
void check_step_advance(const StepAdvance& a);
/// Copies lr, kl_weight and the Adam scalars of s->step's table row (clamped to the table) into *s;
/// nothing when the table is empty.
void set_step_scalars(StepState* s, const StepScalars* table, const StepAdvance& a);
}  // namespace detail

/// CUDA version: one thread, enqueued on `s` (state and table in device memory). Throws
/// cuvae::Error as the CPU version or on a launch error.
/// S: Stream on the GPU, EmuStream on the emulated device (kernels/emu/stream.h).
template <class S>
void step_state_advance_cuda(StepState* state, const StepScalars* table, const StepAdvance& a, S s);
/// CUDA version of step_state_set_row_base_cpu: one thread, enqueued on `s` (`row_base` is a
/// kernel argument, so a captured graph replays it for the same micro-batch of every step).
/// S: Stream on the GPU, EmuStream on the emulated device (kernels/emu/stream.h).
template <class S>
void step_state_set_row_base_cuda(StepState* state, int64_t row_base, S s);

/// The step state of one training run and its schedule table, in the context's device memory.
class StepStateBuffer {
 public:
  /// Allocates the state and the table on `ctx`'s device and sets both: the state at
  /// `initial` (its scalars from `table` row initial.step − a.table_first, clamped), the table to
  /// `table`. Throws cuvae::Error on a bad StepAdvance or a table of another length than
  /// a.table_rows.
  StepStateBuffer(Context& ctx, StepState initial, const std::vector<StepScalars>& table, const StepAdvance& a);
  /// The state of a training run that starts (or resumes) at optimizer step `step`, where an
  /// epoch of `steps_per_epoch` steps of `batch` rows begins: batch_first 0, Philox offset
  /// step · philox_per_step, and `table` holding the scalars of steps step, step + 1, ….
  /// `batch` is the global batch (all processes'), `row_base` this process's first row in it,
  /// `forwards_per_step` the training-mode forwards of one step (its micro-batches).
  StepStateBuffer(Context& ctx, int64_t step, int64_t num_batches_tracked, int64_t batch, int64_t steps_per_epoch,
                  uint64_t philox_per_step, const std::vector<StepScalars>& table, int64_t row_base = 0,
                  int64_t forwards_per_step = 1);
  ~StepStateBuffer();
  StepStateBuffer(const StepStateBuffer&) = delete;
  StepStateBuffer& operator=(const StepStateBuffer&) = delete;

  /// The struct kernels read (a device pointer on CUDA, a host pointer on the CPU).
  const StepState* get() const { return state_; }
  /// Enqueues the advance to the next step on the context's stream (CPU: runs it).
  void advance(Context& ctx);
  /// Enqueues row_base = `row_base` on the context's stream (CPU: sets it): the next micro-batch
  /// of a step under gradient accumulation. Throws cuvae::Error on row_base < 0.
  void set_row_base(Context& ctx, int64_t row_base);
  /// A host copy of the state (synchronous: waits for the work queued before it).
  StepState read() const;
  /// read(), checking that the state is at `step` (the training loop's own count); throws
  /// cuvae::Error (an internal error) otherwise.
  StepState read_at(int64_t step) const;

 private:
  Device device_;
  StepState* state_ = nullptr;
  StepScalars* table_ = nullptr;
  StepAdvance advance_;
};

}  // namespace cuvae
