// Loss monitor: accumulates the batch loss on the device and records the first step
// whose loss is not finite, so a training loop can watch for NaN without a host
// synchronisation per step.
#pragma once

#include <cstdint>

#include "core/context.h"
#include "core/tensor.h"
#include "kernels/emu/stream.h"
#include "kernels/step_state.h"

namespace cuvae {

/// Layout of the 3-float monitor state: [0] Σ finite losses, [1] their count,
/// [2] (first step with a non-finite loss) + 1, or 0 while every loss was finite.
/// Step numbers are exact below 2²⁴.
constexpr int kMonitorSize = 3;

/// state ← state updated with loss[0] of step `step` (CPU reference, one element).
template <typename T>
void loss_monitor_cpu(const T* loss, T* state, int64_t step);

/// CUDA version of loss_monitor_cpu: one thread, enqueued on `s`, no synchronisation. With
/// `step_state` (device memory) the step is read from it when the kernel runs, not `step`.
/// S: Stream on the GPU, EmuStream on the emulated device (kernels/emu/stream.h).
template <class S>
void loss_monitor_cuda(const float* loss, float* state, int64_t step, S s,
                       const StepState* step_state = nullptr);

/// Tensor dispatch: loss [1], state [kMonitorSize] on the context's device; the step is
/// step_state->step when `step_state` is given (on the context's device), else `step`.
/// Throws cuvae::Error on a shape or device mismatch.
void loss_monitor(Context& ctx, const Tensor& loss, Tensor& state, int64_t step,
                  const StepState* step_state = nullptr);

}  // namespace cuvae
