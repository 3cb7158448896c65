#include <cmath>

#include "core/check.h"
#include "kernels/dispatch_util.h"
#include "kernels/loss_monitor.h"

namespace cuvae {

template <typename T>
void loss_monitor_cpu(const T* loss, T* state, int64_t step) {
  const T l = loss[0];
  if (std::isfinite(l)) {
    state[0] += l;
    state[1] += T(1);
  } else if (state[2] == T(0)) {
    state[2] = static_cast<T>(step + 1);
  }
}

template void loss_monitor_cpu<float>(const float*, float*, int64_t);
template void loss_monitor_cpu<double>(const double*, double*, int64_t);

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
