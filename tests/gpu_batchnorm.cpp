// BatchNorm2d on CUDA (cuDNN spatial batch norm) against the CPU layer on the same parameters
// and inputs: training forward, running statistics, backward, evaluation forward and backward,
// several batch shapes in a row, and no allocation once warmed up. Skipped, with the reason printed, where no
// GPU is usable.
#include <gtest/gtest.h>

#include <vector>

#include "core/context.h"
#include "core/tensor.h"
#include "layers/batchnorm.h"
#include "tests/test_util.h"

using namespace cuvae;
using cuvae::test::all_close;
using cuvae::test::random_values;
using cuvae::test::to_device;
using cuvae::test::to_host;

#define REQUIRE_GPU(what) \
  if (!cuda_available()) GTEST_SKIP() << "no CUDA GPU (" << cuvae::cuda_unavailable_reason() << "): " << what << " skipped"

namespace {

// A CPU and a CUDA copy of one BatchNorm2d with the same gamma and beta and the same
// (non-default) running statistics.
struct BnPair {
  ParamStore ps_cpu, buf_cpu, ps_gpu, buf_gpu;
  BatchNorm2d cpu, gpu;
  BnPair(int64_t c, Activation act, double momentum)
      : cpu(ps_cpu, buf_cpu, "bn", c, act, 1e-5, momentum),
        gpu(ps_gpu, buf_gpu, "bn", c, act, 1e-5, momentum) {
    ps_cpu.finalize(Device::CPU);
    buf_cpu.finalize(Device::CPU);
    ps_gpu.finalize(Device::CUDA);
    buf_gpu.finalize(Device::CUDA);
    cpu.reset();
    gpu.reset();
    const auto p = random_values<float>(static_cast<size_t>(ps_cpu.flat_values().numel()), 0.5, 1.5, 21);
    const auto b = random_values<float>(static_cast<size_t>(buf_cpu.flat_values().numel()), 0.2, 1.2, 22);
    load(ps_cpu.flat_values(), p);
    load(ps_gpu.flat_values(), p);
    load(buf_cpu.flat_values(), b);
    load(buf_gpu.flat_values(), b);
  }
  static void load(Tensor& t, const std::vector<float>& v) {
    memcpy_any(t.data(), t.device(), v.data(), Device::CPU, t.bytes());
  }
};

// One training step and one evaluation pass of input shape [n, c, h, w] on both layers.
void step(BnPair& p, Context& cpu, Context& gpu, int64_t n, int64_t c, int64_t h, int64_t w,
          bool need_dx, uint64_t seed) {
  SCOPED_TRACE(::testing::Message() << "x [" << n << ", " << c << ", " << h << ", " << w
                                    << "], need_dx " << need_dx);
  const std::vector<int64_t> shape = {n, c, h, w};
  const auto xv = random_values<float>(static_cast<size_t>(n * c * h * w), -2, 3, seed);
  Tensor xc = Tensor::from_vector(xv, shape), xg = to_device(xv, shape);
  Tensor& yc = p.cpu.forward(cpu, xc, true);
  Tensor& yg = p.gpu.forward(gpu, xg, true);
  ASSERT_EQ(yc.shape(), yg.shape());
  EXPECT_TRUE(all_close(to_host(yg), yc.to_vector(), 1e-4, 1e-4)) << "training forward";
  EXPECT_TRUE(all_close(to_host(p.buf_gpu.flat_values()), p.buf_cpu.flat_values().to_vector(), 1e-5, 1e-4))
      << "running statistics";

  const auto dyv = random_values<float>(static_cast<size_t>(n * c * h * w), -1, 1, seed + 1);
  Tensor dyc = Tensor::from_vector(dyv, shape), dyg = to_device(dyv, shape);
  Tensor& dxc = p.cpu.backward(cpu, dyc, need_dx);
  Tensor& dxg = p.gpu.backward(gpu, dyg, need_dx);
  EXPECT_EQ(dxg.empty(), !need_dx);
  if (need_dx) {
    ASSERT_EQ(dxc.shape(), dxg.shape());
    EXPECT_TRUE(all_close(to_host(dxg), dxc.to_vector(), 1e-4, 1e-3)) << "dx";
  }
  EXPECT_TRUE(all_close(to_host(p.ps_gpu.flat_grads()), p.ps_cpu.flat_grads().to_vector(), 1e-3, 1e-4))
      << "dgamma, dbeta";

  Tensor& ec = p.cpu.forward(cpu, xc, false);
  Tensor& eg = p.gpu.forward(gpu, xg, false);
  EXPECT_TRUE(all_close(to_host(eg), ec.to_vector(), 1e-4, 1e-4)) << "evaluation forward";

  // Backward through the running statistics (evaluation mode).
  Tensor edyc = Tensor::from_vector(dyv, shape), edyg = to_device(dyv, shape);
  Tensor& edxc = p.cpu.backward(cpu, edyc, need_dx);
  Tensor& edxg = p.gpu.backward(gpu, edyg, need_dx);
  EXPECT_EQ(edxg.empty(), !need_dx);
  if (need_dx) {
    EXPECT_TRUE(all_close(to_host(edxg), edxc.to_vector(), 1e-5, 1e-4)) << "eval dx";
  }
  EXPECT_TRUE(all_close(to_host(p.ps_gpu.flat_grads()), p.ps_cpu.flat_grads().to_vector(), 1e-3, 1e-4))
      << "eval dgamma, dbeta";
}

}  // namespace

TEST(GpuBatchNorm, MatchesCpu) {
  REQUIRE_GPU("BatchNorm2d CUDA vs CPU");
  Context cpu(DeviceRequest::CPU), gpu(DeviceRequest::CUDA);
  BnPair relu(16, Activation::ReLU, 0.1);
  step(relu, cpu, gpu, 8, 16, 14, 14, true, 100);
  step(relu, cpu, gpu, 3, 16, 7, 5, true, 200);  // new shape: descriptors re-set
  step(relu, cpu, gpu, 8, 16, 14, 14, false, 300);
  BnPair none(3, Activation::None, 0.3);
  step(none, cpu, gpu, 2, 3, 1, 1, true, 400);  // m = 2, the smallest training batch
  step(none, cpu, gpu, 64, 3, 4, 4, true, 500);
}

TEST(GpuBatchNorm, SteadyStateAllocatesNothing) {
  REQUIRE_GPU("BatchNorm2d CUDA allocation check");
  Context gpu(DeviceRequest::CUDA);
  BnPair p(8, Activation::ReLU, 0.1);
  const std::vector<int64_t> shape = {16, 8, 7, 7};
  Tensor x = to_device(random_values<float>(16 * 8 * 49, -1, 1, 7), shape);
  Tensor dy = to_device(random_values<float>(16 * 8 * 49, -1, 1, 8), shape);
  p.gpu.forward(gpu, x, true);
  p.gpu.backward(gpu, dy, true);
  p.gpu.forward(gpu, x, false);
  p.gpu.backward(gpu, dy, true);
  gpu.synchronize();
  const int64_t before = allocation_count();
  for (int i = 0; i < 3; ++i) {
    p.gpu.forward(gpu, x, true);
    p.gpu.backward(gpu, dy, i % 2 == 0);
    p.gpu.forward(gpu, x, false);
    p.gpu.backward(gpu, dy, i % 2 == 1);
  }
  gpu.synchronize();
  EXPECT_EQ(allocation_count(), before);
}

TEST(GpuBatchNorm, TrainingNeedsMoreThanOneValuePerChannel) {
  REQUIRE_GPU("BatchNorm2d CUDA argument check");
  Context gpu(DeviceRequest::CUDA);
  BnPair p(4, Activation::None, 0.1);
  Tensor one({1, 4, 1, 1}, Device::CUDA);
  EXPECT_CONTAINS(test::error_of([&] { p.gpu.forward(gpu, one, true); }),
                  "more than 1 value per channel");
  Tensor on_cpu({2, 4, 1, 1});
  EXPECT_CONTAINS(test::error_of([&] { p.gpu.forward(gpu, on_cpu, true); }), "context on");
}
