// Google Benchmark of one training step at several batch sizes on the CPU and, where a GPU
// works, on CUDA (timed with CUDA events through UseManualTime). Reports images/s as
// items_per_second.
//   vae_step:    ConvVAE forward with sampling, fused ELBO, backward, Adam;
//   resnet_step: ResNet18 (28×28×1, width w) training-mode forward, fused softmax
//                cross-entropy, backward, SGD with Nesterov momentum.
//   build/bench/cuvae_bench_step --benchmark_filter=cpu
#include <benchmark/benchmark.h>

#include <memory>

#include "core/context.h"
#include "jobs/batching.h"
#include "kernels/adam.h"
#include "kernels/sgd.h"
#include "models/conv_vae.h"
#include "models/resnet18.h"

#ifdef CUVAE_HAS_CUDA
#include "core/cuda_check.h"
#endif

using namespace cuvae;

namespace {

struct StepFixture {
  Context ctx;
  ConvVAE model;
  Tensor x, m, v;
  AdamConfig ac;
  int64_t step = 0;
  StepFixture(DeviceRequest dev, int64_t batch, CpuBackend cpu = default_cpu_backend())
      : ctx(dev, cpu), model(VaeConfig{}, ctx.device()), x({batch, 1, 28, 28}, ctx.device()),
        m({model.params().flat_values().numel()}, ctx.device()), v({model.params().flat_values().numel()}, ctx.device()) {
    model.init(0);
    std::vector<float> host(static_cast<size_t>(x.numel()));
    for (size_t i = 0; i < host.size(); ++i) host[i] = static_cast<float>((i * 2654435761u) % 256) / 255.0f;
    memcpy_any(x.data(), x.device(), host.data(), Device::CPU, x.bytes());
  }
  void run() {
    model.forward(ctx, x, true, 1, 2 * static_cast<uint64_t>(step));
    model.loss(ctx, x, true, 1, 2 * static_cast<uint64_t>(step) + 1);
    model.backward(ctx);
    ac.step = ++step;
    adam_step(ctx, model.params().flat_values(), model.params().flat_grads(), m, v, ac);
  }
};

void BM_VaeTrainStepCpu(benchmark::State& state) {
  StepFixture f(DeviceRequest::CPU, state.range(0), state.range(1) ? CpuBackend::OneDNN : CpuBackend::Reference);
  f.run();  // warm-up: buffers and scratch allocated
  for (auto _ : state) f.run();
  state.SetItemsProcessed(state.iterations() * state.range(0));
}
// onednn:1 runs the oneDNN CPU backend, onednn:0 the reference (im2col + Eigen).
static void cpu_backends(benchmark::internal::Benchmark* b, std::vector<std::vector<int64_t>> args) {
  for (int64_t onednn : {1, 0}) {
    if (onednn && !onednn_built()) continue;
    for (auto a : args) {
      a.push_back(onednn);
      b->Args(a);
    }
  }
}
BENCHMARK(BM_VaeTrainStepCpu)
    ->Name("vae_step/cpu")
    ->ArgNames({"batch", "onednn"})
    ->Apply([](benchmark::internal::Benchmark* b) { cpu_backends(b, {{64}, {128}, {256}}); })
    ->Unit(benchmark::kMillisecond);

#ifdef CUVAE_HAS_CUDA
// Times each call of f.run() on the GPU with CUDA events (warm-up first: cuDNN algorithm search,
// buffers) and reports images/s for `batch` images per step.
template <typename Fixture>
void time_cuda_steps(benchmark::State& state, Fixture& f, int64_t batch) {
  for (int i = 0; i < 5; ++i) f.run();
  f.ctx.synchronize();
  cudaEvent_t a, b;
  CUDA_CHECK(cudaEventCreate(&a));
  CUDA_CHECK(cudaEventCreate(&b));
  for (auto _ : state) {
    CUDA_CHECK(cudaEventRecord(a, f.ctx.stream()));
    f.run();
    CUDA_CHECK(cudaEventRecord(b, f.ctx.stream()));
    CUDA_CHECK(cudaEventSynchronize(b));
    float ms = 0;
    CUDA_CHECK(cudaEventElapsedTime(&ms, a, b));
    state.SetIterationTime(ms / 1e3);
  }
  cudaEventDestroy(a);
  cudaEventDestroy(b);
  state.SetItemsProcessed(state.iterations() * batch);
}

void BM_VaeTrainStepCuda(benchmark::State& state) {
  if (!cuda_available()) {
    state.SkipWithError("no CUDA GPU");
    return;
  }
  StepFixture f(DeviceRequest::CUDA, state.range(0));
  time_cuda_steps(state, f, state.range(0));
}
BENCHMARK(BM_VaeTrainStepCuda)->Name("vae_step/cuda")->Arg(64)->Arg(128)->Arg(256)->Arg(1024)->UseManualTime()->Unit(benchmark::kMillisecond);
#endif

ResNetConfig resnet_config(int64_t width) {
  ResNetConfig c;
  c.base_width = width;
  return c;
}

struct ResNetFixture {
  Context ctx;
  ResNet18 model;
  Tensor x, buf;
  IntBuffer labels;
  SgdConfig sc;
  ResNetFixture(DeviceRequest dev, int64_t width, int64_t batch, CpuBackend cpu = default_cpu_backend())
      : ctx(dev, cpu), model(resnet_config(width), ctx.device()), x({batch, 1, 28, 28}, ctx.device()),
        buf({model.params().flat_values().numel()}, ctx.device()), labels(batch, ctx.device()) {
    model.init(0);
    std::vector<float> host(static_cast<size_t>(x.numel()));
    for (size_t i = 0; i < host.size(); ++i) host[i] = static_cast<float>((i * 2654435761u) % 256) / 255.0f;
    memcpy_any(x.data(), x.device(), host.data(), Device::CPU, x.bytes());
    std::vector<int32_t> l(static_cast<size_t>(batch));
    for (size_t i = 0; i < l.size(); ++i) l[i] = static_cast<int32_t>(i % 10);
    labels.upload(l);
    sc.lr = 0.01f;
  }
  void run() {
    model.forward(ctx, x, true);
    model.loss(ctx, labels, true);
    model.backward(ctx);
    sgd_step(ctx, model.params().flat_values(), model.params().flat_grads(), buf, sc);
  }
};

void BM_ResNetTrainStepCpu(benchmark::State& state) {
  ResNetFixture f(DeviceRequest::CPU, state.range(0), state.range(1),
                  state.range(2) ? CpuBackend::OneDNN : CpuBackend::Reference);
  f.run();  // warm-up: buffers and scratch allocated
  for (auto _ : state) f.run();
  state.SetItemsProcessed(state.iterations() * state.range(1));
}
BENCHMARK(BM_ResNetTrainStepCpu)
    ->Name("resnet_step/cpu")
    ->ArgNames({"width", "batch", "onednn"})
    ->Apply([](benchmark::internal::Benchmark* b) { cpu_backends(b, {{16, 128}, {16, 256}, {64, 64}}); })
    ->Unit(benchmark::kMillisecond)
    ->MinTime(2.0);

#ifdef CUVAE_HAS_CUDA
void BM_ResNetTrainStepCuda(benchmark::State& state) {
  if (!cuda_available()) {
    state.SkipWithError("no CUDA GPU");
    return;
  }
  ResNetFixture f(DeviceRequest::CUDA, state.range(0), state.range(1));
  time_cuda_steps(state, f, state.range(1));
}
BENCHMARK(BM_ResNetTrainStepCuda)
    ->Name("resnet_step/cuda")
    ->ArgNames({"width", "batch"})
    ->Args({64, 128})
    ->Args({64, 256})
    ->Args({64, 512})
    ->UseManualTime()
    ->Unit(benchmark::kMillisecond);
#endif

}  // namespace

BENCHMARK_MAIN();
