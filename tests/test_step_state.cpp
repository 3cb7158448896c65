// The step state of the training loops (kernels/step_state.h) on the CPU: the advance op, the
// schedule table, and the trainers' use of it (a resumed run reads the same per-step values).
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <vector>

#include "core/context.h"
#include "core/step_graph.h"
#include "kernels/adam.h"
#include "kernels/sgd.h"
#include "kernels/step_state.h"
#include "test_util.h"

using namespace cuvae;
using cuvae::test::error_of;

namespace {
std::vector<StepScalars> numbered_table(int64_t rows) {
  std::vector<StepScalars> t(static_cast<size_t>(rows));
  for (int64_t i = 0; i < rows; ++i) {
    t[static_cast<size_t>(i)].lr = 0.1f * static_cast<float>(i + 1);
    t[static_cast<size_t>(i)].kl_weight = static_cast<float>(i);
    t[static_cast<size_t>(i)].adam_step_size = 10.0f + static_cast<float>(i);
    t[static_cast<size_t>(i)].adam_bc2_sqrt = 100.0f + static_cast<float>(i);
  }
  return t;
}
}  // namespace

TEST(StepState, AdvanceWrapsTheBatchAtEpochsAndFollowsTheTable) {
  Context ctx(DeviceRequest::CPU);
  // A run resumed at step 7 with 3 steps per epoch of 5 rows, 2 Philox offsets per step.
  StepAdvance a;
  a.batch = 5;
  a.steps_per_epoch = 3;
  a.epoch_origin = 7;
  a.philox_per_step = 2;
  a.table_first = 7;
  a.table_rows = 4;
  StepState init;
  init.step = 7;
  init.num_batches_tracked = 40;
  init.philox_offset = 14;
  StepStateBuffer s(ctx, init, numbered_table(4), a);
  StepState r = s.read();
  EXPECT_EQ(r.step, 7);
  EXPECT_EQ(r.batch_first, 0);
  EXPECT_FLOAT_EQ(r.lr, 0.1f);  // row 0 is step 7's
  EXPECT_FLOAT_EQ(r.adam_bc2_sqrt, 100.0f);
  const int64_t expect_first[] = {5, 10, 0, 5, 10, 0};
  for (int k = 1; k <= 6; ++k) {
    s.advance(ctx);
    r = s.read();
    EXPECT_EQ(r.step, 7 + k);
    EXPECT_EQ(r.num_batches_tracked, 40 + k);
    EXPECT_EQ(r.philox_offset, static_cast<uint64_t>(14 + 2 * k));
    EXPECT_EQ(r.batch_first, expect_first[k - 1]) << "after " << k << " steps";
    const int row = std::min(k, 3);  // past the table: its last row
    EXPECT_FLOAT_EQ(r.lr, 0.1f * static_cast<float>(row + 1));
    EXPECT_FLOAT_EQ(r.kl_weight, static_cast<float>(row));
    EXPECT_FLOAT_EQ(r.adam_step_size, 10.0f + static_cast<float>(row));
  }
}

// Gradient accumulation: each micro-batch moves row_base, which the advance leaves alone, and
// num_batches_tracked counts every micro-batch's forward.
TEST(StepState, MicroBatchesMoveTheRowBaseAndCountTheirForwards) {
  Context ctx(DeviceRequest::CPU);
  StepStateBuffer s(ctx, /*step=*/4, /*num_batches_tracked=*/12, /*batch=*/64, /*steps_per_epoch=*/10,
                    /*philox_per_step=*/2, numbered_table(3), /*row_base=*/32, /*forwards_per_step=*/3);
  EXPECT_EQ(s.read().row_base, 32);
  s.set_row_base(ctx, 53);
  StepState r = s.read();
  EXPECT_EQ(r.row_base, 53);
  EXPECT_EQ(r.step, 4);
  s.advance(ctx);
  r = s.read();
  EXPECT_EQ(r.row_base, 53);
  EXPECT_EQ(r.num_batches_tracked, 15);
  EXPECT_EQ(r.batch_first, 64);
  EXPECT_NE(error_of([&] { s.set_row_base(ctx, -1); }).find("negative row base"), std::string::npos);
  StepAdvance a;
  a.forwards_per_step = 0;
  EXPECT_NE(error_of([&] { StepStateBuffer b(ctx, StepState{}, {}, a); }).find("forwards per step 0"), std::string::npos);
}

TEST(StepState, RejectsABadAdvanceOrTable) {
  Context ctx(DeviceRequest::CPU);
  StepAdvance a;
  a.table_rows = 2;
  EXPECT_NE(error_of([&] { StepStateBuffer s(ctx, StepState{}, numbered_table(3), a); }).find("3 rows"), std::string::npos);
  a.steps_per_epoch = 0;
  EXPECT_NE(error_of([&] { StepStateBuffer s(ctx, StepState{}, numbered_table(2), a); }), "");
}

// Kernels read this step's values from the state, not from their arguments: Adam with a state
// whose bias corrections are those of step 3 gives step 3's update whatever cfg.step says.
TEST(StepState, AdamAndSgdReadTheirScalarsFromTheState) {
  const std::vector<float> g = {0.5f, -1.0f, 2.0f};
  AdamConfig plain;
  plain.step = 3;
  plain.lr = 0.01f;
  std::vector<float> p1 = {1, 2, 3}, m1(3, 0.1f), v1(3, 0.2f);
  adam_step_cpu(p1.data(), g.data(), m1.data(), v1.data(), 3, plain);
  StepState st;
  st.adam_step_size = static_cast<float>(0.01 / (1.0 - std::pow(0.9, 3.0)));
  st.adam_bc2_sqrt = static_cast<float>(std::sqrt(1.0 - std::pow(0.999, 3.0)));
  AdamConfig stated;
  stated.step = 1;
  stated.lr = 5.0f;  // ignored
  stated.state = &st;
  std::vector<float> p2 = {1, 2, 3}, m2(3, 0.1f), v2(3, 0.2f);
  adam_step_cpu(p2.data(), g.data(), m2.data(), v2.data(), 3, stated);
  EXPECT_EQ(p1, p2);
  SgdConfig s1;
  s1.lr = 0.25f;
  SgdConfig s2 = s1;
  s2.lr = 9.0f;  // ignored
  st.lr = 0.25f;
  s2.state = &st;
  std::vector<float> q1 = {1, 2, 3}, b1(3), q2 = {1, 2, 3}, b2(3);
  sgd_step_cpu(q1.data(), g.data(), b1.data(), 3, s1);
  sgd_step_cpu(q2.data(), g.data(), b2.data(), 3, s2);
  EXPECT_EQ(q1, q2);
}

// On the CPU a StepGraph runs the step every time and never captures.
TEST(StepState, StepGraphRunsEagerlyOnTheCpu) {
  Context ctx(DeviceRequest::CPU);
  StepGraph g(true);
  int runs = 0;
  for (int i = 0; i < 4; ++i) g.run(ctx, [&] { ++runs; });
  EXPECT_EQ(runs, 4);
  EXPECT_FALSE(g.captured());
  EXPECT_EQ(g.replays(), 0);
  EXPECT_EQ(g.summary(), "");
}
