// NCCL through cuvae's GPU collectives, as far as one GPU can show it: a communicator of one rank
// (NcclCommunicator::single, no MPI) averages and broadcasts device buffers on the context's
// stream, eagerly and inside a captured CUDA graph (as the training step captures its allreduce),
// and a training step whose gradients go through it trains exactly as one without it.
// scripts/gpu-check runs these as their own stage. Skipped with a reason without a GPU or NCCL.
#include <gtest/gtest.h>

#include <numeric>

#include "core/context.h"
#include "core/gpu_collectives.h"
#include "kernels/adam.h"
#include "models/conv_vae.h"

#ifdef CUVAE_HAS_CUDA
#include <cuda_runtime.h>

#include "core/cuda_check.h"
#endif

using namespace cuvae;

namespace {

bool skip_reason(std::string& why) {
  if (!cuda_available()) why = "no CUDA GPU (" + cuda_unavailable_reason() + ")";
  else if (!nccl_available()) why = "this build has no NCCL";
  return !why.empty();
}

std::vector<float> ramp(size_t n) {
  std::vector<float> v(n);
  for (size_t i = 0; i < n; ++i) v[i] = 0.25f * static_cast<float>(i) - 100.0f;
  return v;
}

}  // namespace

TEST(GpuNccl, OneRankAverageAndBroadcastKeepEveryValue) {
  std::string why;
  if (skip_reason(why)) GTEST_SKIP() << why << ": NCCL collectives are not checked";
  Context ctx(DeviceRequest::CUDA);
  NcclCommunicator nccl = NcclCommunicator::single();
  EXPECT_EQ(nccl.rank(), 0);
  EXPECT_EQ(nccl.size(), 1);
  const std::vector<float> host = ramp(1 << 20);  // 4 MiB, several NCCL chunks
  Tensor t = Tensor::from_vector(host, {static_cast<int64_t>(host.size())}, Device::CUDA);
  nccl.allreduce_mean(t.data(), t.numel(), ctx.stream());
  nccl.broadcast(t.data(), t.numel(), ctx.stream());
  ctx.synchronize();
  EXPECT_EQ(t.to_vector(), host);
  std::cout << nccl_version() << std::endl;
}

TEST(GpuNccl, AllreduceReplaysInsideACapturedGraph) {
  std::string why;
  if (skip_reason(why)) GTEST_SKIP() << why << ": NCCL inside a CUDA graph is not checked";
#ifdef CUVAE_HAS_CUDA
  Context ctx(DeviceRequest::CUDA);
  NcclCommunicator nccl = NcclCommunicator::single();
  const std::vector<float> host = ramp(4096);
  Tensor t = Tensor::from_vector(host, {4096}, Device::CUDA);
  Tensor copy({4096}, Device::CUDA);
  ctx.synchronize();
  cudaGraph_t graph = nullptr;
  CUDA_CHECK(cudaStreamBeginCapture(ctx.stream(), cudaStreamCaptureModeThreadLocal));
  nccl.allreduce_mean(t.data(), t.numel(), ctx.stream());
  copy.copy_from(t, ctx.stream());
  CUDA_CHECK(cudaStreamEndCapture(ctx.stream(), &graph));
  cudaGraphExec_t exec = nullptr;
  CUDA_CHECK(cudaGraphInstantiate(&exec, graph, 0));
  for (int i = 0; i < 3; ++i) CUDA_CHECK(cudaGraphLaunch(exec, ctx.stream()));
  ctx.synchronize();
  EXPECT_EQ(copy.to_vector(), host);
  cudaGraphExecDestroy(exec);
  cudaGraphDestroy(graph);
#endif
}

TEST(GpuNccl, VaeStepsThroughTheAllreduceEqualStepsWithout) {
  std::string why;
  if (skip_reason(why)) GTEST_SKIP() << why << ": a training step through NCCL is not checked";
  NcclCommunicator nccl = NcclCommunicator::single();
  std::vector<std::vector<float>> weights;
  for (bool through_nccl : {false, true}) {
    Context ctx(DeviceRequest::CUDA);
    ConvVAE m(VaeConfig{}, Device::CUDA);
    m.init(3);
    std::vector<float> xs(16 * 784);
    for (size_t i = 0; i < xs.size(); ++i) xs[i] = static_cast<float>((i * 2654435761u) % 256) / 255.0f;
    Tensor x = Tensor::from_vector(xs, {16, 1, 28, 28}, Device::CUDA);
    const int64_t n = m.params().flat_values().numel();
    Tensor mo({n}, Device::CUDA), v({n}, Device::CUDA);
    AdamConfig ac;
    for (int64_t step = 1; step <= 3; ++step) {
      m.forward(ctx, x, true, 1, 2 * static_cast<uint64_t>(step));
      m.loss(ctx, x, true, 1, 2 * static_cast<uint64_t>(step) + 1);
      m.backward(ctx);
      if (through_nccl) nccl.allreduce_mean(m.params().flat_grads().data(), n, ctx.stream());
      ac.step = step;
      adam_step(ctx, m.params().flat_values(), m.params().flat_grads(), mo, v, ac);
    }
    ctx.synchronize();
    weights.push_back(m.params().flat_values().to_vector());
  }
  EXPECT_EQ(weights[0], weights[1]);
}
