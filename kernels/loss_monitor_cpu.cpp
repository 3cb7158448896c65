#include <cmath>

#include "core/check.h"
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

}  // namespace cuvae
