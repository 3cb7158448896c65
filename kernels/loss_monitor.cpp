// The Tensor-level loss_monitor op: checks shapes and devices, then picks the CPU reference
// (loss_monitor_cpu.cpp), the CUDA kernels (loss_monitor.cu) or the emulated device (detail::dispatch).
#include "kernels/loss_monitor.h"

#include <cmath>

#include "core/check.h"
#include "kernels/dispatch_util.h"

namespace cuvae {

void loss_monitor(Context& ctx, const Tensor& loss, Tensor& state, int64_t step, const StepState* step_state) {
  CUVAE_CHECK(loss.numel() == 1 && state.numel() == kMonitorSize,
              "loss_monitor: loss " << loss.shape_str() << ", state " << state.shape_str());
  CUVAE_CHECK(loss.device() == ctx.device() && state.device() == ctx.device(),
              "loss_monitor: tensors not on the context's device");
  detail::dispatch(
      ctx, "loss_monitor",
      [&] {
        loss_monitor_cpu<float>(loss.data(), state.data(), step_state ? step_state->step : step);
      },
      [&](auto s) {
        loss_monitor_cuda(loss.data(), state.data(), step, s, step_state);
      });
}

}  // namespace cuvae
