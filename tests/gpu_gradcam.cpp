// The fused Grad-CAM kernel beyond the op table's gradcam row (square maps resized up): against
// its CPU reference at the shapes of its limits and resizes (heat maps and the un-normalised cam,
// |gpu − ref| ≤ 1e-5 plus a relative term for the cam, and the heat map again without the cam),
// degenerate maps, and the size checks. Skipped, with the reason printed, where no GPU is usable.
#include <gtest/gtest.h>

#include <algorithm>
#include <vector>

#include "core/context.h"
#include "core/tensor.h"
#include "kernels/gradcam.h"
#include "tests/test_util.h"

using namespace cuvae;
using cuvae::test::all_close;
using cuvae::test::random_values;
using cuvae::test::to_device;
using cuvae::test::to_host;

namespace {

void gradcam_gpu_vs_cpu(int64_t n, int64_t k, int64_t h, int64_t w, int64_t H, int64_t W) {
  SCOPED_TRACE(::testing::Message() << "n=" << n << " k=" << k << " " << h << "x" << w << " -> "
                                    << H << "x" << W);
  const uint64_t seed = static_cast<uint64_t>(n * 1009 + k * 101 + h * 11 + w + H * 7 + W);
  const auto A = random_values<float>(static_cast<size_t>(n * k * h * w), 0, 2, seed);
  const auto dA = random_values<float>(static_cast<size_t>(n * k * h * w), -0.5, 1, seed + 1);
  std::vector<float> heat(static_cast<size_t>(n * H * W)), cam(static_cast<size_t>(n * h * w));
  gradcam_cpu<float>(A.data(), dA.data(), n, k, h, w, H, W, heat.data(), cam.data());

  Context ctx(DeviceRequest::CUDA);
  Tensor tA = to_device(A, {n, k, h, w}), tdA = to_device(dA, {n, k, h, w});
  Tensor theat({n, H, W}, Device::CUDA), tcam({n, h, w}, Device::CUDA);
  gradcam(ctx, tA, tdA, H, W, theat, &tcam);
  EXPECT_TRUE(all_close(to_host(theat), heat, 1e-5, 0)) << "heat";
  EXPECT_TRUE(all_close(to_host(tcam), cam, 1e-5, 1e-5)) << "cam";
  // Without cam_out: the same heat map.
  Tensor theat2({n * H * W}, Device::CUDA);
  gradcam(ctx, tA, tdA, H, W, theat2);
  EXPECT_EQ(to_host(theat2), to_host(theat));
}

}  // namespace

TEST(GpuGradcam, LimitsAndResizesMatchCpuReference) {
  if (!cuda_available()) GTEST_SKIP() << "no CUDA GPU (" << cuvae::cuda_unavailable_reason() << "): Grad-CAM kernel vs CPU reference skipped";
  gradcam_gpu_vs_cpu(2, 5, 3, 5, 17, 9);      // odd, non-square
  gradcam_gpu_vs_cpu(2, 16, 8, 8, 8, 8);      // identity resize
  gradcam_gpu_vs_cpu(1, 4, 9, 9, 4, 4);       // downsampling
  gradcam_gpu_vs_cpu(2, 3, 1, 1, 5, 5);       // one-pixel map: constant, all zeros
  gradcam_gpu_vs_cpu(1, 33, 64, 64, 32, 96);  // h·w = 4096, the shared-memory limit
  gradcam_gpu_vs_cpu(1, 4096, 2, 3, 7, 7);    // k = 4096
}

// Maps the normalisation cannot stretch: a cam zeroed by the ReLU, and a constant cam whose
// resize must stay constant (an ulp of noise would normalise to zeros and ones).
TEST(GpuGradcam, DegenerateMapsGiveZeros) {
  if (!cuda_available()) GTEST_SKIP() << "no CUDA GPU (" << cuvae::cuda_unavailable_reason() << "): Grad-CAM degenerate maps skipped";
  const int64_t n = 2, k = 8, h = 7, w = 7, H = 28, W = 28;
  Context ctx(DeviceRequest::CUDA);
  Tensor tA = to_device(random_values<float>(n * k * h * w, 0.1, 1, 1), {n, k, h, w});
  Tensor tdA = to_device(random_values<float>(n * k * h * w, -1, -0.1, 2), {n, k, h, w});
  Tensor theat({n, H, W}, Device::CUDA), tcam({n, h, w}, Device::CUDA);
  gradcam(ctx, tA, tdA, H, W, theat, &tcam);
  EXPECT_EQ(to_host(theat), std::vector<float>(n * H * W, 0.0f)) << "negative weights";
  EXPECT_EQ(to_host(tcam), std::vector<float>(n * h * w, 0.0f)) << "negative weights";

  for (const std::vector<int64_t>& s : {std::vector<int64_t>{3, 5, 28, 17}, {4, 4, 28, 28}, {6, 7, 3, 2}}) {
    const int64_t ch = s[0], cw = s[1], cH = s[2], cW = s[3];
    std::vector<float> A(static_cast<size_t>(k * ch * cw)), dA(A.size(), 0.3f);
    for (int64_t c = 0; c < k; ++c)
      std::fill(A.begin() + c * ch * cw, A.begin() + (c + 1) * ch * cw, 0.7f + 0.1f * c);
    Tensor cA = to_device(A, {1, k, ch, cw}), cdA = to_device(dA, {1, k, ch, cw});
    Tensor cheat({1, cH, cW}, Device::CUDA);
    gradcam(ctx, cA, cdA, cH, cW, cheat);
    EXPECT_EQ(to_host(cheat), std::vector<float>(cH * cW, 0.0f)) << "constant " << ch << "x" << cw;
  }
}

#ifdef CUVAE_HAS_CUDA
// The size limits are checked before anything is launched.
TEST(GpuGradcam, RejectsMapsBeyondSharedMemory) {
  EXPECT_CONTAINS(test::error_of([] {
                    gradcam_cuda(nullptr, nullptr, 1, 4097, 2, 2, 4, 4, nullptr, nullptr, Stream{});
                  }),
                  "at most 4096");
  EXPECT_CONTAINS(test::error_of([] {
                    gradcam_cuda(nullptr, nullptr, 1, 2, 65, 64, 4, 4, nullptr, nullptr, Stream{});
                  }),
                  "at most 4096");
  EXPECT_CONTAINS(test::error_of([] {
                    gradcam_cuda(nullptr, nullptr, 0, 2, 2, 2, 4, 4, nullptr, nullptr, Stream{});
                  }),
                  "non-positive size");
}
#endif
