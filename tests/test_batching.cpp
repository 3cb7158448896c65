// for_each_batch and the helpers built on it (device_images, images_of_rows): batch boundaries
// with a partial last batch, the row limit, the order, values = bytes / 255 and the labels, on
// the CPU reference and on the emulated CUDA device.
#include <gtest/gtest.h>

#include <string>
#include <utility>
#include <vector>

#include "core/check.h"
#include "jobs/batching.h"
#include "tests/test_util.h"

using namespace cuvae;
using cuvae::test::error_of;

namespace {

// n images of c×5×3 whose byte (i, p) is (37·i + 11·p + 5) mod 256, so every image and pixel
// differs; labels (3i + 1) mod 10.
Dataset numbered_data(int64_t n, int64_t c = 1) {
  Dataset d;
  d.name = "numbered";
  d.n = n;
  d.c = c;
  d.h = 5;
  d.w = 3;
  for (int64_t i = 0; i < n; ++i) {
    for (int64_t p = 0; p < d.pixels(); ++p) d.images.push_back(static_cast<uint8_t>((37 * i + 11 * p + 5) % 256));
    d.labels.push_back(static_cast<uint8_t>((3 * i + 1) % 10));
  }
  return d;
}

// The floats image `row` of `d` should become.
std::vector<float> expected_image(const Dataset& d, int64_t row) {
  std::vector<float> v;
  for (int64_t p = 0; p < d.pixels(); ++p)
    v.push_back(static_cast<float>(d.images[static_cast<size_t>(row * d.pixels() + p)]) / 255.0f);
  return v;
}

// What one callback saw.
struct Seen {
  int64_t first, size;
  std::vector<int64_t> shape;
  std::vector<float> x;
  std::vector<int32_t> labels;
  const float* x_data;
};

std::vector<Seen> collect(Context& ctx, const DeviceDataset& dd, int64_t batch, int64_t limit) {
  std::vector<Seen> seen;
  for_each_batch(ctx, dd, batch, limit, [&](const Batch& b) {
    seen.push_back({b.first, b.size, b.x.shape(), b.x.to_vector(), b.labels.download(b.size), b.x.data()});
  });
  return seen;
}

// Checks that `seen` holds rows order[first .. first + size) of `d`, batch after batch.
void expect_rows(const Dataset& d, const std::vector<Seen>& seen, const std::vector<int64_t>& order) {
  size_t k = 0;
  for (const Seen& s : seen)
    for (int64_t i = 0; i < s.size; ++i, ++k) {
      ASSERT_LT(k, order.size());
      const int64_t row = order[k];
      const std::vector<float> want = expected_image(d, row);
      const std::vector<float> got(s.x.begin() + i * d.pixels(), s.x.begin() + (i + 1) * d.pixels());
      EXPECT_EQ(got, want) << "batch at " << s.first << ", row " << i << " (image " << row << ")";
      EXPECT_EQ(s.labels[static_cast<size_t>(i)], d.labels[static_cast<size_t>(row)]) << "image " << row;
    }
  EXPECT_EQ(k, order.size());
}

std::vector<int64_t> first_rows(int64_t n) {
  std::vector<int64_t> v;
  for (int64_t i = 0; i < n; ++i) v.push_back(i);
  return v;
}

std::vector<std::pair<int64_t, int64_t>> bounds(const std::vector<Seen>& seen) {
  std::vector<std::pair<int64_t, int64_t>> v;
  for (const Seen& s : seen) v.emplace_back(s.first, s.size);
  return v;
}

using Bounds = std::vector<std::pair<int64_t, int64_t>>;

}  // namespace

TEST(ForEachBatch, CoversEveryRowWithAPartialLastBatch) {
  Context ctx(DeviceRequest::CPU);
  const Dataset d = numbered_data(10, 2);
  const DeviceDataset dd(d, ctx.device());
  const std::vector<Seen> seen = collect(ctx, dd, 4, 0);
  EXPECT_EQ(bounds(seen), (Bounds{{0, 4}, {4, 4}, {8, 2}}));
  for (const Seen& s : seen) EXPECT_EQ(s.shape, (std::vector<int64_t>{s.size, 2, 5, 3}));
  expect_rows(d, seen, first_rows(10));
}

TEST(ForEachBatch, StopsAtTheLimit) {
  Context ctx(DeviceRequest::CPU);
  const Dataset d = numbered_data(10);
  const DeviceDataset dd(d, ctx.device());
  std::vector<Seen> seen = collect(ctx, dd, 3, 7);
  EXPECT_EQ(bounds(seen), (Bounds{{0, 3}, {3, 3}, {6, 1}}));
  expect_rows(d, seen, first_rows(7));
  // A limit past the end, or 0, means every row; a batch larger than the rows is one batch.
  EXPECT_EQ(bounds(collect(ctx, dd, 3, 25)), (Bounds{{0, 3}, {3, 3}, {6, 3}, {9, 1}}));
  EXPECT_EQ(bounds(collect(ctx, dd, 500, 0)), (Bounds{{0, 10}}));
  EXPECT_EQ(bounds(collect(ctx, dd, 5, 0)), (Bounds{{0, 5}, {5, 5}}));
  EXPECT_EQ(bounds(collect(ctx, dd, 1, 2)), (Bounds{{0, 1}, {1, 1}}));
}

TEST(ForEachBatch, AllocatesItsBuffersOnce) {
  Context ctx(DeviceRequest::CPU);
  const Dataset d = numbered_data(9);
  const DeviceDataset dd(d, ctx.device());
  const std::vector<Seen> seen = collect(ctx, dd, 4, 0);
  ASSERT_EQ(seen.size(), 3u);
  EXPECT_EQ(seen[1].x_data, seen[0].x_data);
  EXPECT_EQ(seen[2].x_data, seen[0].x_data);
}

TEST(ForEachBatch, FollowsTheDataSetsOrder) {
  Context ctx(DeviceRequest::CPU);
  const Dataset d = numbered_data(6);
  DeviceDataset dd(d, ctx.device());
  dd.set_order({5, 4, 3, 2, 1, 0});
  const std::vector<Seen> seen = collect(ctx, dd, 4, 0);
  EXPECT_EQ(bounds(seen), (Bounds{{0, 4}, {4, 2}}));
  expect_rows(d, seen, {5, 4, 3, 2, 1, 0});
}

TEST(ForEachBatch, RunsTheCudaSourceOnTheEmulatedDevice) {
  Context ctx(DeviceRequest::CPU, CpuBackend::Emu);
  const Dataset d = numbered_data(5, 3);
  const DeviceDataset dd(d, ctx.device());
  const std::vector<Seen> seen = collect(ctx, dd, 2, 0);
  EXPECT_EQ(bounds(seen), (Bounds{{0, 2}, {2, 2}, {4, 1}}));
  expect_rows(d, seen, first_rows(5));
}

TEST(ForEachBatch, RejectsBadSizesAndPassesTheCallersErrorOn) {
  Context ctx(DeviceRequest::CPU);
  const Dataset d = numbered_data(5);
  const DeviceDataset dd(d, ctx.device());
  int calls = 0;
  auto count = [&](const Batch&) { ++calls; };
  EXPECT_NE(error_of([&] { for_each_batch(ctx, dd, 0, 0, count); }).find("batch size must be at least 1, got 0"),
            std::string::npos);
  EXPECT_NE(error_of([&] { for_each_batch(ctx, dd, 2, -1, count); }).find("row limit must be >= 0, got -1"),
            std::string::npos);
  EXPECT_EQ(calls, 0);
  EXPECT_EQ(error_of([&] {
              for_each_batch(ctx, dd, 2, 0, [&](const Batch& b) {
                ++calls;
                if (b.first == 2) CUVAE_FAIL("stop here");
              });
            }),
            "stop here");
  EXPECT_EQ(calls, 2);  // the loop ends with the callback's error
}

TEST(ForEachBatch, MakesNoCallWithoutRows) {
  Context ctx(DeviceRequest::CPU);
  const Dataset d = numbered_data(0);
  const DeviceDataset dd(d, ctx.device());
  EXPECT_TRUE(collect(ctx, dd, 4, 0).empty());
}

TEST(DeviceImages, GathersTheFirstRowsAsOneTensor) {
  Context ctx(DeviceRequest::CPU);
  const Dataset d = numbered_data(7);
  const DeviceDataset dd(d, ctx.device());
  const Tensor x = device_images(ctx, dd, 3);
  EXPECT_EQ(x.shape(), (std::vector<int64_t>{3, 1, 5, 3}));
  std::vector<float> want;
  for (int64_t i = 0; i < 3; ++i) {
    const std::vector<float> v = expected_image(d, i);
    want.insert(want.end(), v.begin(), v.end());
  }
  EXPECT_EQ(x.to_vector(), want);
  EXPECT_EQ(device_images(ctx, dd).dim(0), 7);
}

TEST(ImagesOfRows, ReturnsTheRowsInTheirOrderWithRepeats) {
  Context ctx(DeviceRequest::CPU);
  const Dataset d = numbered_data(6, 3);
  const std::vector<float> got = images_of_rows(ctx, d, {4, 0, 4, 5});
  std::vector<float> want;
  for (int64_t row : {4, 0, 4, 5}) {
    const std::vector<float> v = expected_image(d, row);
    want.insert(want.end(), v.begin(), v.end());
  }
  EXPECT_EQ(got, want);
  EXPECT_TRUE(images_of_rows(ctx, d, {}).empty());
  EXPECT_NE(error_of([&] { images_of_rows(ctx, d, {2, 6}); }).find("row 6 outside the 6 images of numbered"),
            std::string::npos);
  EXPECT_NE(error_of([&] { images_of_rows(ctx, d, {-1}); }).find("row -1 outside"), std::string::npos);
}
