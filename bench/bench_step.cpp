// Google Benchmark of one training step at several batch sizes on the CPU and, where a GPU
// works, on CUDA (timed with CUDA events through UseManualTime). Reports images/s as
// items_per_second, per second of wall time (UseRealTime on the CPU: Google Benchmark's default,
// the main thread's CPU time, leaves out the time it waits for the other threads, and overstated
// the CPU rows by up to 10%).
//   vae_step:    ConvVAE forward with sampling, fused ELBO, backward, Adam;
//   resnet_step: ResNet18 (28×28×1, width w) training-mode forward, fused softmax
//                cross-entropy, backward, SGD with Nesterov momentum.
//   build/bench/cuvae_bench_step --benchmark_filter=cpu
#include <benchmark/benchmark.h>

#include <memory>

#include "bench/step_fixtures.h"

#ifdef CUVAE_HAS_CUDA
#include "core/cuda_check.h"
#endif

using namespace cuvae;
using namespace cuvae::bench;

namespace {

void BM_VaeTrainStepCpu(benchmark::State& state) {
  VaeStepFixture f(DeviceRequest::CPU, state.range(0), state.range(1) ? CpuBackend::OneDNN : CpuBackend::Reference);
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
    ->UseRealTime()
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
  // deterministic 0: cuDNN's fastest algorithms by measurement (the CLI's --nondeterministic).
  const bool deterministic = default_deterministic();
  set_default_deterministic(state.range(1) != 0);
  VaeStepFixture f(DeviceRequest::CUDA, state.range(0));
  set_default_deterministic(deterministic);
  time_cuda_steps(state, f, state.range(0));
}
BENCHMARK(BM_VaeTrainStepCuda)
    ->Name("vae_step/cuda")
    ->ArgNames({"batch", "deterministic"})
    ->Args({64, 1})
    ->Args({128, 1})
    ->Args({256, 1})
    ->Args({1024, 1})
    ->Args({128, 0})
    ->Args({1024, 0})
    ->UseManualTime()
    ->Unit(benchmark::kMillisecond);
#endif

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
    ->UseRealTime()
    ->Unit(benchmark::kMillisecond)
    ->MinTime(2.0);

#ifdef CUVAE_HAS_CUDA
void BM_ResNetTrainStepCuda(benchmark::State& state) {
  if (!cuda_available()) {
    state.SkipWithError("no CUDA GPU");
    return;
  }
  // deterministic 0: cuDNN's fastest algorithms by measurement (the CLI's --nondeterministic).
  const bool deterministic = default_deterministic();
  set_default_deterministic(state.range(2) != 0);
  ResNetFixture f(DeviceRequest::CUDA, state.range(0), state.range(1));
  set_default_deterministic(deterministic);
  time_cuda_steps(state, f, state.range(1));
}
BENCHMARK(BM_ResNetTrainStepCuda)
    ->Name("resnet_step/cuda")
    ->ArgNames({"width", "batch", "deterministic"})
    ->Args({64, 128, 1})
    ->Args({64, 128, 0})
    ->Args({64, 256, 1})
    ->Args({64, 256, 0})
    ->Args({64, 512, 1})
    ->UseManualTime()
    ->Unit(benchmark::kMillisecond);
#endif

}  // namespace

BENCHMARK_MAIN();
