#include "kernels/launch.cuh"
#include "kernels/step_state.h"

namespace cuvae {

namespace {
__global__ void step_state_advance_kernel(StepState* s, const StepScalars* table, StepAdvance a) {
  s->step += 1;
  s->num_batches_tracked += a.forwards_per_step;
  s->batch_first = ((s->step - a.epoch_origin) % a.steps_per_epoch) * a.batch;
  s->philox_offset += a.philox_per_step;
  if (a.table_rows > 0) {
    int64_t row = s->step - a.table_first;
    row = row < 0 ? 0 : (row >= a.table_rows ? a.table_rows - 1 : row);
    const StepScalars r = table[row];
    s->lr = r.lr;
    s->kl_weight = r.kl_weight;
    s->adam_step_size = r.adam_step_size;
    s->adam_bc2_sqrt = r.adam_bc2_sqrt;
  }
}

__global__ void step_state_set_row_base_kernel(StepState* s, int64_t row_base) { s->row_base = row_base; }
}  // namespace

template <>
void step_state_advance_cuda(StepState* state, const StepScalars* table, const StepAdvance& a, detail::DeviceStream s) {
  CUVAE_CHECK(a.batch >= 1 && a.steps_per_epoch >= 1 && a.table_rows >= 0 && a.forwards_per_step >= 1,
              "step state: batch " << a.batch << ", steps per epoch " << a.steps_per_epoch << " must be positive");
  detail::launch<step_state_advance_kernel>(1, 1, 0, s, state, table, a);
}

template <>
void step_state_set_row_base_cuda(StepState* state, int64_t row_base, detail::DeviceStream s) {
  CUVAE_CHECK(row_base >= 0, "step state: negative row base " << row_base);
  detail::launch<step_state_set_row_base_kernel>(1, 1, 0, s, state, row_base);
}

}  // namespace cuvae
