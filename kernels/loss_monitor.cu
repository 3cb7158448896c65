#include "kernels/launch.cuh"
#include "kernels/loss_monitor.h"

namespace cuvae {

namespace {
__global__ void loss_monitor_kernel(const float* loss, float* state, long long step, const StepState* st) {
  if (st != nullptr) step = static_cast<long long>(st->step);
  const float l = loss[0];
  if (isfinite(l)) {
    state[0] += l;
    state[1] += 1.0f;
  } else if (state[2] == 0.0f) {
    state[2] = static_cast<float>(step + 1);
  }
}
}  // namespace

template <>
void loss_monitor_cuda(const float* loss, float* state, int64_t step, detail::DeviceStream s, const StepState* step_state) {
  detail::launch<loss_monitor_kernel>(1, 1, 0, s, loss, state, static_cast<long long>(step), step_state);
}

}  // namespace cuvae
