// CPU tests of Grad-CAM: a hand-computed 2×2 → 4×4 case (channel weights, ReLU, the
// align_corners=False bilinear weights, normalisation), degenerate maps, the identity resize,
// float vs double, and the Tensor dispatch.
#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <vector>

#include "core/context.h"
#include "core/tensor.h"
#include "kernels/gradcam.h"
#include "tests/test_util.h"

using namespace cuvae;
using cuvae::test::all_close;
using cuvae::test::convert;
using cuvae::test::error_of;
using cuvae::test::random_values;

// k = 2, h = w = 2 → H = W = 4. alpha = (0.5, −0.5) and the weighted sum is
// 0.5·[[8, 2], [4, 6]] − 0.5·[[8, 0], [0, 0]] = [[0, 1], [2, 3]].
// Resizing 2 → 4 with align_corners=False: src = (dst + 0.5)·0.5 − 0.5 = −0.25 (clamped to 0),
// 0.25, 0.75, 1.25 (i0 = 1 = i1), so the fractional source positions are 0, 0.25, 0.75, 1.
// The map equals x + 2y, so up[oy][ox] = p[ox] + 2·p[oy] with p = (0, 0.25, 0.75, 1):
// min 0, max 3.
TEST(GradcamCpu, HandComputedTinyCase) {
  const std::vector<double> A = {8, 2, 4, 6, 8, 0, 0, 0};
  const std::vector<double> dA = {0.5, 0.5, 0.5, 0.5, -1, 1, -1, -1};
  std::vector<double> heat(16), cam(4);
  gradcam_cpu<double>(A.data(), dA.data(), 1, 2, 2, 2, 4, 4, heat.data(), cam.data());
  EXPECT_TRUE(all_close(cam, std::vector<double>{0, 1, 2, 3}, 1e-15, 0));
  const std::vector<double> up = {0,   0.25, 0.75, 1,     //
                                  0.5, 0.75, 1.25, 1.5,   //
                                  1.5, 1.75, 2.25, 2.5,   //
                                  2,   2.25, 2.75, 3};
  std::vector<double> want(16);
  for (size_t i = 0; i < 16; ++i) want[i] = up[i] / 3.0;
  EXPECT_TRUE(all_close(heat, want, 1e-15, 1e-15));
  // First row: the 1-D weights on [0, 1] alone.
  EXPECT_TRUE(all_close(std::vector<double>(heat.begin(), heat.begin() + 4),
                        std::vector<double>{0, 0.25 / 3, 0.75 / 3, 1.0 / 3}, 1e-15, 1e-15));
}

// A 2×2 → 4×4 upsample of the map [[0, 1], [2, 3]] alone (one channel, alpha = 1): the first
// row is 0, 0.25, 0.75, 1 before the division by the maximum 3.
TEST(GradcamCpu, BilinearWeightsOfOneChannel) {
  const std::vector<double> A = {0, 1, 2, 3}, dA = {1, 1, 1, 1};
  std::vector<double> heat(16);
  gradcam_cpu<double>(A.data(), dA.data(), 1, 1, 2, 2, 4, 4, heat.data(), nullptr);
  for (double& v : heat) v *= 3.0;
  EXPECT_TRUE(all_close(std::vector<double>(heat.begin(), heat.begin() + 4),
                        std::vector<double>{0, 0.25, 0.75, 1}, 1e-14, 0));
  EXPECT_TRUE(all_close(std::vector<double>(heat.begin() + 12, heat.end()),
                        std::vector<double>{2, 2.25, 2.75, 3}, 1e-14, 0));
  // A non-separable map [[0, 0], [0, 4]]: up = 4·p[oy]·p[ox].
  const std::vector<double> B = {0, 0, 0, 4};
  gradcam_cpu<double>(B.data(), dA.data(), 1, 1, 2, 2, 4, 4, heat.data(), nullptr);
  const double p[4] = {0, 0.25, 0.75, 1};
  std::vector<double> want(16);
  for (int y = 0; y < 4; ++y)
    for (int x = 0; x < 4; ++x) want[static_cast<size_t>(y * 4 + x)] = p[y] * p[x];
  EXPECT_TRUE(all_close(heat, want, 1e-15, 1e-15));
}

// Positive activations with a negative weight: the ReLU zeroes the whole map and the heat map
// is all zeros (not NaN).
TEST(GradcamCpu, ReluZeroesNegativeMap) {
  const int64_t k = 3, h = 3, w = 4;
  const auto A = random_values<double>(k * h * w, 0.1, 1, 1);
  const auto dA = random_values<double>(k * h * w, -1, -0.1, 2);
  std::vector<double> heat(2 * 7 * 9, -1.0), cam(h * w, -1.0);
  gradcam_cpu<double>(A.data(), dA.data(), 1, k, h, w, 7, 9, heat.data(), cam.data());
  EXPECT_EQ(cam, std::vector<double>(h * w, 0.0));
  EXPECT_EQ(std::vector<double>(heat.begin(), heat.begin() + 63), std::vector<double>(63, 0.0));
  EXPECT_EQ(heat[63], -1.0) << "wrote past image 0";
}

// Random non-constant maps: every image's heat map spans exactly [0, 1].
TEST(GradcamCpu, NormalisedOutputSpansZeroToOne) {
  const int64_t n = 3, k = 5, h = 7, w = 6, H = 28, W = 20;
  const auto A = random_values<double>(n * k * h * w, 0, 1, 3);
  const auto dA = random_values<double>(n * k * h * w, -0.5, 1, 4);
  std::vector<double> heat(n * H * W);
  gradcam_cpu<double>(A.data(), dA.data(), n, k, h, w, H, W, heat.data(), nullptr);
  for (int64_t i = 0; i < n; ++i) {
    const auto b = heat.begin() + i * H * W, e = b + H * W;
    EXPECT_EQ(*std::min_element(b, e), 0.0) << "image " << i;
    EXPECT_EQ(*std::max_element(b, e), 1.0) << "image " << i;
  }
}

// A constant map stays constant (to rounding) when resized: the heat map is all zeros.
TEST(GradcamCpu, ConstantMapGivesZeros) {
  const std::vector<std::array<int64_t, 4>> sizes = {
      {3, 5, 28, 17}, {4, 4, 28, 28}, {1, 1, 5, 3}, {6, 7, 3, 2}};
  for (const auto& [h, w, H, W] : sizes) {
    const int64_t k = 2;
    std::vector<double> A(k * h * w), dA(k * h * w, 0.3);
    for (int64_t c = 0; c < k; ++c)
      std::fill(A.begin() + c * h * w, A.begin() + (c + 1) * h * w, 0.7 + c);
    std::vector<double> heat(H * W, -1.0), cam(h * w);
    gradcam_cpu<double>(A.data(), dA.data(), 1, k, h, w, H, W, heat.data(), cam.data());
    EXPECT_TRUE(all_close(cam, std::vector<double>(h * w, 0.3 * 0.7 + 0.3 * 1.7), 1e-15, 1e-15));
    EXPECT_EQ(heat, std::vector<double>(H * W, 0.0)) << h << "x" << w << " -> " << H << "x" << W;
  }
}

// H = h, W = w: the resize is the identity and heat = (cam − min)/(max − min).
TEST(GradcamCpu, IdentityResizeIsNormalisedCam) {
  const int64_t n = 2, k = 4, h = 5, w = 7;
  const auto A = random_values<double>(n * k * h * w, 0, 1, 5);
  const auto dA = random_values<double>(n * k * h * w, -0.5, 1, 6);
  std::vector<double> heat(n * h * w), cam(n * h * w);
  gradcam_cpu<double>(A.data(), dA.data(), n, k, h, w, h, w, heat.data(), cam.data());
  for (int64_t i = 0; i < n; ++i) {
    const auto b = cam.begin() + i * h * w, e = b + h * w;
    const double lo = *std::min_element(b, e), hi = *std::max_element(b, e);
    ASSERT_GT(hi - lo, 0.1);
    std::vector<double> want(b, e);
    for (double& v : want) v = (v - lo) / (hi - lo);
    EXPECT_TRUE(all_close(std::vector<double>(heat.begin() + i * h * w, heat.begin() + (i + 1) * h * w),
                          want, 1e-15, 1e-15))
        << "image " << i;
  }
}

TEST(GradcamCpu, FloatMatchesDouble) {
  const int64_t n = 3, k = 16, h = 7, w = 7, H = 28, W = 28;
  const auto A = random_values<float>(n * k * h * w, 0, 2, 7);
  const auto dA = random_values<float>(n * k * h * w, -0.5, 1, 8);
  std::vector<float> heat(n * H * W), cam(n * h * w);
  std::vector<double> heatd(n * H * W), camd(n * h * w);
  gradcam_cpu<float>(A.data(), dA.data(), n, k, h, w, H, W, heat.data(), cam.data());
  const auto Ad = convert<double>(A), dAd = convert<double>(dA);
  gradcam_cpu<double>(Ad.data(), dAd.data(), n, k, h, w, H, W, heatd.data(), camd.data());
  EXPECT_TRUE(all_close(heat, heatd, 1e-6, 1e-6)) << "heat";
  EXPECT_TRUE(all_close(cam, camd, 1e-6, 1e-6)) << "cam";
}

TEST(GradcamCpu, TensorDispatchAndErrors) {
  const int64_t n = 2, k = 3, h = 4, w = 4, H = 9, W = 11;
  const auto A = random_values<float>(n * k * h * w, 0, 1, 9);
  const auto dA = random_values<float>(n * k * h * w, -0.5, 1, 10);
  std::vector<float> heat(n * H * W), cam(n * h * w);
  gradcam_cpu<float>(A.data(), dA.data(), n, k, h, w, H, W, heat.data(), cam.data());
  Context ctx(DeviceRequest::CPU);
  Tensor tA = Tensor::from_vector(A, {n, k, h, w}), tdA = Tensor::from_vector(dA, {n, k, h, w});
  Tensor theat({n, H, W}), tcam({n, h, w});
  gradcam(ctx, tA, tdA, H, W, theat, &tcam);
  EXPECT_EQ(theat.to_vector(), heat);
  EXPECT_EQ(tcam.to_vector(), cam);
  Tensor flat({n * H * W});
  gradcam(ctx, tA, tdA, H, W, flat);
  EXPECT_EQ(flat.to_vector(), heat);

  Tensor bad_dA({n, k, h, w + 1});
  EXPECT_CONTAINS(error_of([&] { gradcam(ctx, tA, bad_dA, H, W, theat); }), "does not match A");
  Tensor bad_heat({n, H, W + 1});
  EXPECT_CONTAINS(error_of([&] { gradcam(ctx, tA, tdA, H, W, bad_heat); }), "heat");
  Tensor bad_cam({n, h, w, 2});
  EXPECT_CONTAINS(error_of([&] { gradcam(ctx, tA, tdA, H, W, theat, &bad_cam); }), "cam_out");
  Tensor three({n, k, h * w});
  EXPECT_CONTAINS(error_of([&] { gradcam(ctx, three, three, H, W, theat); }), "[n, k, h, w]");
  EXPECT_CONTAINS(error_of([&] { gradcam(ctx, tA, tdA, 0, W, theat); }), "non-positive");
  EXPECT_CONTAINS(error_of([&] {
                    gradcam_cpu<float>(A.data(), dA.data(), n, 0, h, w, H, W, heat.data(), nullptr);
                  }),
                  "non-positive size");
}
