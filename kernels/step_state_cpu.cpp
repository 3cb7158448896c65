#include "kernels/step_state.h"

#include <algorithm>
#include <cstdlib>

#include "core/check.h"

namespace cuvae {

namespace detail {
void check_step_advance(const StepAdvance& a) {
  CUVAE_CHECK(a.batch >= 1 && a.steps_per_epoch >= 1 && a.table_rows >= 0 && a.epoch_origin >= 0 &&
                  a.forwards_per_step >= 1,
              "step state: batch " << a.batch << ", steps per epoch " << a.steps_per_epoch << ", forwards per step "
                                   << a.forwards_per_step << " and table rows " << a.table_rows << " must be positive");
}

void set_step_scalars(StepState* s, const StepScalars* table, const StepAdvance& a) {
  if (a.table_rows == 0) return;
  const int64_t row = std::clamp<int64_t>(s->step - a.table_first, 0, a.table_rows - 1);
  const StepScalars& r = table[row];
  s->lr = r.lr;
  s->kl_weight = r.kl_weight;
  s->adam_step_size = r.adam_step_size;
  s->adam_bc2_sqrt = r.adam_bc2_sqrt;
}
}  // namespace detail

void step_state_advance_cpu(StepState* s, const StepScalars* table, const StepAdvance& a) {
  detail::check_step_advance(a);
  s->step += 1;
  s->num_batches_tracked += a.forwards_per_step;
  s->batch_first = ((s->step - a.epoch_origin) % a.steps_per_epoch) * a.batch;
  s->philox_offset += a.philox_per_step;
  detail::set_step_scalars(s, table, a);
}

void step_state_set_row_base_cpu(StepState* s, int64_t row_base) {
  CUVAE_CHECK(row_base >= 0, "step state: negative row base " << row_base);
  s->row_base = row_base;
}

}  // namespace cuvae
