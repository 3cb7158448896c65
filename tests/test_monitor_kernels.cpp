// The two bookkeeping ops of the training loops, on the CPU: count_correct (top-1 hits counted on
// the device) and loss_monitor (running loss sum and the first non-finite step).
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <vector>

#include "core/context.h"
#include "kernels/accuracy.h"
#include "kernels/loss_monitor.h"
#include "test_util.h"

using namespace cuvae;
using cuvae::test::error_of;

TEST(CountCorrect, CountsArgmaxHitsWithFirstIndexTiesAndNaNRowsWrong) {
  // 5 rows of 3 logits: hit, miss, tie (first index wins: 0), NaN row (wrong), hit on the last class.
  const std::vector<double> logits = {2, 1, 0,  0, 5, 1,  3, 3, 1,  NAN, 9, 0,  -1, -2, 4};
  const std::vector<int32_t> labels = {0, 2, 0, 1, 2};
  double count = 10;  // accumulates
  count_correct_cpu<double>(logits.data(), labels.data(), 5, 3, &count);
  EXPECT_EQ(count, 13);
  // The tie goes to index 0: label 1 for that row is a miss.
  const std::vector<int32_t> other = {0, 2, 1, 1, 2};
  float c = 0;
  const std::vector<float> lf(logits.begin(), logits.end());
  count_correct_cpu<float>(lf.data(), other.data(), 5, 3, &c);
  EXPECT_EQ(c, 2);
  EXPECT_NE(error_of([&] { count_correct_cpu<float>(lf.data(), other.data(), 5, 0, &c); }), "");
}

TEST(CountCorrect, TensorFormChecksShapes) {
  Context ctx(DeviceRequest::CPU);
  Tensor logits = Tensor::from_vector({0, 1, 1, 0}, {2, 2});
  const IntBuffer labels = IntBuffer::from_vector({1, 0});
  Tensor count({1});
  count_correct(ctx, logits, labels, count);
  EXPECT_EQ(count.to_vector()[0], 2.0f);
  Tensor bad({2});
  EXPECT_NE(error_of([&] { count_correct(ctx, logits, labels, bad); }), "");
}

TEST(LossMonitor, SumsFiniteLossesAndRecordsTheFirstNonFiniteStep) {
  double state[kMonitorSize] = {0, 0, 0};
  const double losses[] = {1.5, 2.5, NAN, 4.0, std::numeric_limits<double>::infinity()};
  for (int64_t step = 0; step < 5; ++step) loss_monitor_cpu<double>(&losses[step], state, step + 100);
  EXPECT_EQ(state[0], 8.0);   // 1.5 + 2.5 + 4.0
  EXPECT_EQ(state[1], 3.0);   // finite losses
  EXPECT_EQ(state[2], 103.0);  // step 102 (the NaN) + 1; the later Inf does not overwrite it
}

TEST(LossMonitor, TensorFormChecksShapes) {
  Context ctx(DeviceRequest::CPU);
  Tensor loss = Tensor::from_vector({0.25f}, {1});
  Tensor state({kMonitorSize});
  loss_monitor(ctx, loss, state, 0);
  loss_monitor(ctx, loss, state, 1);
  const std::vector<float> s = state.to_vector();
  EXPECT_EQ(s[0], 0.5f);
  EXPECT_EQ(s[1], 2.0f);
  EXPECT_EQ(s[2], 0.0f);
  Tensor wrong({2});
  EXPECT_NE(error_of([&] { loss_monitor(ctx, loss, wrong, 0); }), "");
}

// The typed-buffer forms check where the labels live and how many there are.
TEST(CountCorrect, BufferFormChecksDeviceAndSize) {
  Context ctx(DeviceRequest::CPU);
  Tensor logits = Tensor::from_vector({0, 1, 1, 0, 2, 0}, {3, 2});
  IntBuffer labels(3, Device::CPU);
  labels.upload({1, 0, 0});
  Tensor count({1});
  count_correct(ctx, logits, labels, count);
  EXPECT_EQ(count.to_vector()[0], 3.0f);
  IntBuffer short_labels(2, Device::CPU);
  EXPECT_NE(error_of([&] { count_correct(ctx, logits, short_labels, count); }).find("labels holds 2 values"), std::string::npos);
}
