// StepStateBuffer: the step state on the context's device and its per-step advance, dispatched
// to step_state_advance_cpu (step_state_cpu.cpp) or the CUDA kernel (step_state.cu).
#include "kernels/step_state.h"

#include <cstdlib>

#include "core/check.h"
#include "kernels/dispatch_util.h"

namespace cuvae {

StepStateBuffer::StepStateBuffer(Context& ctx, StepState initial, const std::vector<StepScalars>& table,
                                 const StepAdvance& a)
    : device_(ctx.device()), advance_(a) {
  detail::check_step_advance(a);
  CUVAE_CHECK(static_cast<int64_t>(table.size()) == a.table_rows,
              "step state: a table of " << table.size() << " rows, expected " << a.table_rows);
  detail::set_step_scalars(&initial, table.data(), a);
  const size_t tb = sizeof(StepScalars) * std::max<size_t>(1, table.size());
  if (device_ == Device::CUDA) {
    state_ = static_cast<StepState*>(device_malloc(sizeof(StepState)));
    table_ = static_cast<StepScalars*>(device_malloc(tb));
  } else {
    state_ = new StepState();
    table_ = static_cast<StepScalars*>(std::malloc(tb));
    CUVAE_REQUIRE(table_ != nullptr, "out of host memory for a step table of " << table.size() << " rows");
  }
  memcpy_any(state_, device_, &initial, Device::CPU, sizeof(StepState));
  memcpy_any(table_, device_, table.data(), Device::CPU, sizeof(StepScalars) * table.size());
}

namespace {
StepState run_start(int64_t step, int64_t num_batches_tracked, uint64_t philox_per_step, int64_t row_base) {
  StepState s;
  s.row_base = row_base;
  s.step = step;
  s.num_batches_tracked = num_batches_tracked;
  s.philox_offset = static_cast<uint64_t>(step) * philox_per_step;
  return s;
}
StepAdvance run_advance(int64_t step, int64_t batch, int64_t steps_per_epoch, uint64_t philox_per_step, size_t rows,
                        int64_t forwards_per_step) {
  StepAdvance a;
  a.forwards_per_step = forwards_per_step;
  a.batch = batch;
  a.steps_per_epoch = steps_per_epoch;
  a.epoch_origin = step;
  a.philox_per_step = philox_per_step;
  a.table_first = step;
  a.table_rows = static_cast<int64_t>(rows);
  return a;
}
}  // namespace

StepStateBuffer::StepStateBuffer(Context& ctx, int64_t step, int64_t num_batches_tracked, int64_t batch,
                                 int64_t steps_per_epoch, uint64_t philox_per_step, const std::vector<StepScalars>& table,
                                 int64_t row_base, int64_t forwards_per_step)
    : StepStateBuffer(ctx, run_start(step, num_batches_tracked, philox_per_step, row_base), table,
                      run_advance(step, batch, steps_per_epoch, philox_per_step, table.size(), forwards_per_step)) {}

StepStateBuffer::~StepStateBuffer() {
  if (device_ == Device::CUDA) {
    device_free(state_);
    device_free(table_);
  } else {
    delete state_;
    std::free(table_);
  }
}

void StepStateBuffer::advance(Context& ctx) {
  CUVAE_CHECK(ctx.device() == device_, "step state: advanced on " << device_name(ctx.device()) << " but it lives on "
                                                                  << device_name(device_));
  detail::dispatch(
      ctx, "step state", [&] { step_state_advance_cpu(state_, table_, advance_); },
      [&](auto s) { step_state_advance_cuda(state_, table_, advance_, s); });
}

void StepStateBuffer::set_row_base(Context& ctx, int64_t row_base) {
  CUVAE_CHECK(ctx.device() == device_, "step state: moved on " << device_name(ctx.device()) << " but it lives on "
                                                               << device_name(device_));
  detail::dispatch(
      ctx, "step state", [&] { step_state_set_row_base_cpu(state_, row_base); },
      [&](auto s) { step_state_set_row_base_cuda(state_, row_base, s); });
}

StepState StepStateBuffer::read_at(int64_t step) const {
  const StepState s = read();
  CUVAE_CHECK(s.step == step, "internal: the device step state is at step " << s.step << ", the training loop at " << step);
  return s;
}

StepState StepStateBuffer::read() const {
  StepState s;
  memcpy_any(&s, Device::CPU, state_, device_, sizeof(StepState));
  return s;
}

}  // namespace cuvae
