#include <gtest/gtest.h>

#include "core/check.h"
#include "core/context.h"
#include "core/philox.h"
#include "core/tensor.h"

using namespace cuvae;

TEST(Tensor, ZeroFilledAndShape) {
  Tensor t({2, 3, 4, 5});
  EXPECT_EQ(t.numel(), 120);
  EXPECT_EQ(t.dim(-1), 5);
  EXPECT_EQ(t.shape_str(), "[2, 3, 4, 5]");
  for (float v : t.to_vector()) EXPECT_EQ(v, 0.0f);
}

TEST(Tensor, MoveLeavesSourceEmpty) {
  Tensor a = Tensor::from_vector({1, 2, 3, 4}, {2, 2});
  Tensor b = std::move(a);
  EXPECT_EQ(a.numel(), 0);
  EXPECT_EQ(a.data(), nullptr);
  EXPECT_EQ(b.to_vector()[3], 4.0f);
}

TEST(Tensor, RowsAndReshapeAreViews) {
  Tensor a = Tensor::from_vector({0, 1, 2, 3, 4, 5}, {3, 2});
  Tensor r = a.rows(1, 3);
  EXPECT_FALSE(r.owns());
  EXPECT_EQ(r.to_vector(), (std::vector<float>{2, 3, 4, 5}));
  r.data()[0] = 9;
  EXPECT_EQ(a.to_vector()[2], 9.0f);
  EXPECT_THROW(a.reshaped({4, 2}), Error);
  EXPECT_THROW(a.rows(2, 4), Error);
}

TEST(Context, ParseDevice) {
  EXPECT_EQ(parse_device("auto"), DeviceRequest::Auto);
  EXPECT_EQ(parse_device("cpu"), DeviceRequest::CPU);
  EXPECT_EQ(parse_device("cuda"), DeviceRequest::CUDA);
  EXPECT_THROW(parse_device("tpu"), Error);
}

TEST(Context, CudaRequestWithoutGpuThrows) {
  if (cuda_available()) GTEST_SKIP() << "a GPU is present; this checks the no-GPU error";
  EXPECT_THROW(Context ctx(DeviceRequest::CUDA), Error);
  Context a(DeviceRequest::Auto);
  EXPECT_EQ(a.device(), Device::CPU);
  EXPECT_FALSE(a.fallback_reason().empty());
}

// Known-answer vectors from the Random123 distribution (kat_vectors, philox4x32_10).
TEST(Philox, KnownAnswers) {
  PhiloxBlock z{{0, 0, 0, 0}};
  PhiloxBlock r = philox4x32_10(z, 0, 0);
  EXPECT_EQ(r.v[0], 0x6627e8d5u);
  EXPECT_EQ(r.v[1], 0xe169c58du);
  EXPECT_EQ(r.v[2], 0xbc57ac4cu);
  EXPECT_EQ(r.v[3], 0x9b00dbd8u);
  PhiloxBlock f{{0xffffffffu, 0xffffffffu, 0xffffffffu, 0xffffffffu}};
  r = philox4x32_10(f, 0xffffffffu, 0xffffffffu);
  EXPECT_EQ(r.v[0], 0x408f276du);
  EXPECT_EQ(r.v[1], 0x41c83b0eu);
  EXPECT_EQ(r.v[2], 0xa20bc7c6u);
  EXPECT_EQ(r.v[3], 0x6d5451fdu);
}

TEST(Philox, NormalMoments) {
  double s = 0, s2 = 0;
  const int n = 200000;
  for (int i = 0; i < n; ++i) {
    double x = philox_normal(42, 7, static_cast<uint64_t>(i));
    s += x;
    s2 += x * x;
  }
  EXPECT_NEAR(s / n, 0.0, 0.01);
  EXPECT_NEAR(s2 / n, 1.0, 0.01);
  EXPECT_NE(philox_normal(42, 7, 0), philox_normal(43, 7, 0));
  EXPECT_NE(philox_normal(42, 7, 0), philox_normal(42, 8, 0));
}

// Host copies of CUDA tensors are queued on the stream of the thread's CUDA context; a CPU
// context has none and leaves it unset.
TEST(Tensor, CurrentStreamFollowsTheCudaContext) {
  EXPECT_EQ(current_stream(), nullptr);
  {
    Context cpu(DeviceRequest::CPU);
    EXPECT_EQ(current_stream(), nullptr);
  }
  if (!cuda_available()) GTEST_SKIP() << "no CUDA GPU: the CUDA context's current stream is not checked";
  {
    Context a(DeviceRequest::CUDA);
    EXPECT_EQ(current_stream(), a.stream());
    {
      Context b(DeviceRequest::CUDA);
      EXPECT_EQ(current_stream(), b.stream());
    }
    EXPECT_EQ(current_stream(), a.stream());
  }
  EXPECT_EQ(current_stream(), nullptr);
}
