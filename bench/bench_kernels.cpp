// Google Benchmark of each custom kernel in GB/s, beside the copy bandwidth measured in the same
// run. Every kernel runs at a training batch and at a size that moves at least 64 MB; the bytes
// counted are the fewest the op must move (each input read once, each output written once), so
// bytes_per_second over the copy's says how close the kernel is to the memory's ceiling.
//   CPU:  the references (OpenMP threads as the trainers run them) against memcpy.
//   CUDA: the kernels, timed with CUDA events after a warm-up, with the L2 cache flushed between
//         repeats (manual time), against a device-to-device cudaMemcpyAsync.
//   build/bench/cuvae_bench_kernels --benchmark_filter=cpu
#include <benchmark/benchmark.h>

#include <cstring>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "core/context.h"
#include "jobs/batching.h"
#include "kernels/activation.h"
#include "kernels/adam.h"
#include "kernels/bias.h"
#include "kernels/elbo.h"
#include "kernels/reparameterize.h"
#include "kernels/residual.h"
#include "kernels/sgd.h"
#include "kernels/softmax_xent.h"

#ifdef CUVAE_HAS_CUDA
#include "core/cuda_check.h"
#endif

using namespace cuvae;

namespace {

// Non-zero inputs (zeros can run faster than real data).
Tensor filled(std::vector<int64_t> shape, Device dev, float lo, float hi, uint32_t seed) {
  Tensor t(std::move(shape), Device::CPU);
  uint32_t s = seed * 2654435761u + 1;
  for (int64_t i = 0; i < t.numel(); ++i) {
    s = s * 1664525u + 1013904223u;
    t.data()[i] = lo + (hi - lo) * static_cast<float>(s >> 8) / 16777216.0f;
  }
  return dev == Device::CPU ? std::move(t) : t.to(dev);
}

// One kernel at one size: its launch, and the bytes it must move.
struct Op {
  std::function<void()> run;
  double bytes = 0;
  std::vector<std::shared_ptr<void>> keep;  // tensors the launch uses
};

template <typename T>
std::shared_ptr<T> hold(Op& op, T&& v) {
  auto p = std::make_shared<T>(std::move(v));
  op.keep.push_back(p);
  return p;
}

// The kernels by name, at `n` elements (rows·columns for the per-row ones).
Op make_op(Context& ctx, const std::string& name, int64_t n) {
  const Device d = ctx.device();
  Op op;
  if (name == "adam") {
    auto p = hold(op, filled({n}, d, -1, 1, 1)), g = hold(op, filled({n}, d, -1, 1, 2)),
         m = hold(op, filled({n}, d, -0.1f, 0.1f, 3)), v = hold(op, filled({n}, d, 0, 0.1f, 4));
    auto cfg = std::make_shared<AdamConfig>();
    op.run = [&ctx, p, g, m, v, cfg] {
      ++cfg->step;
      adam_step(ctx, *p, *g, *m, *v, *cfg);
    };
    op.bytes = 7.0 * 4 * n;  // param, m, v read and written; grad read
  } else if (name == "sgd") {
    auto p = hold(op, filled({n}, d, -1, 1, 1)), g = hold(op, filled({n}, d, -1, 1, 2)), b = hold(op, filled({n}, d, -1, 1, 3));
    op.run = [&ctx, p, g, b] { sgd_step(ctx, *p, *g, *b, SgdConfig{}); };
    op.bytes = 5.0 * 4 * n;
  } else if (name == "relu") {
    auto x = hold(op, filled({n}, d, -1, 1, 1)), y = hold(op, Tensor({n}, d));
    op.run = [&ctx, x, y] { activation_forward(ctx, Activation::ReLU, *x, *y); };
    op.bytes = 2.0 * 4 * n;
  } else if (name == "residual_add") {
    auto a = hold(op, filled({n}, d, -1, 1, 1)), b = hold(op, filled({n}, d, -1, 1, 2)), y = hold(op, Tensor({n}, d));
    op.run = [&ctx, a, b, y] { residual_add(ctx, *a, *b, *y, true); };
    op.bytes = 3.0 * 4 * n;
  } else if (name == "bias_add") {
    const int64_t c = 64, hw = 64;  // [n / (c·hw), 64, 8, 8]
    const int64_t rows = std::max<int64_t>(1, n / (c * hw));
    auto y = hold(op, filled({rows, c, 8, 8}, d, -1, 1, 1)), b = hold(op, filled({c}, d, -1, 1, 2));
    op.run = [&ctx, y, b] { add_bias_nchw(ctx, *y, *b); };
    op.bytes = 2.0 * 4 * rows * c * hw;
  } else if (name == "reparameterize") {  // forward and backward
    auto mu = hold(op, filled({n}, d, -1, 1, 1)), lv = hold(op, filled({n}, d, -2, 1, 2)), eps = hold(op, Tensor({n}, d)),
         z = hold(op, Tensor({n}, d)), dz = hold(op, filled({n}, d, -1, 1, 3)), dm = hold(op, Tensor({n}, d)),
         dv = hold(op, Tensor({n}, d));
    op.run = [&ctx, mu, lv, eps, z, dz, dm, dv] {
      reparameterize_forward(ctx, *mu, *lv, *eps, *z, 1, 2);
      reparameterize_backward(ctx, *dz, *eps, *lv, *dm, *dv, false);
    };
    op.bytes = (4.0 + 5.0) * 4 * n;  // fwd: mu, logvar in; eps, z out. bwd: dz, eps, logvar in; dmu, dlogvar out
  } else if (name == "elbo") {  // n = images·784, latent 32
    const int64_t p = 784, D = 32, rows = std::max<int64_t>(1, n / p);
    auto l = hold(op, filled({rows, p}, d, -4, 4, 1)), x = hold(op, filled({rows, p}, d, 0, 1, 2)),
         mu = hold(op, filled({rows, D}, d, -1, 1, 3)), lv = hold(op, filled({rows, D}, d, -2, 1, 4)),
         rec = hold(op, Tensor({rows}, d)), kl = hold(op, Tensor({rows}, d)), loss = hold(op, Tensor({1}, d)),
         dl = hold(op, Tensor({rows, p}, d)), dm = hold(op, Tensor({rows, D}, d)), dv = hold(op, Tensor({rows, D}, d));
    ElboConfig cfg;
    cfg.n = rows;
    cfg.p = p;
    cfg.d = D;
    op.run = [&ctx, l, x, mu, lv, rec, kl, loss, dl, dm, dv, cfg] {
      elbo(ctx, *l, *x, *mu, *lv, rec.get(), kl.get(), *loss, dl.get(), dm.get(), dv.get(), cfg);
    };
    op.bytes = 4.0 * (3.0 * rows * p + 4.0 * rows * D + 2.0 * rows + 1);
  } else if (name == "softmax_xent") {  // n = rows·10
    const int64_t k = 10, rows = std::max<int64_t>(1, n / k);
    auto l = hold(op, filled({rows, k}, d, -4, 4, 1)), loss = hold(op, Tensor({rows}, d)), mean = hold(op, Tensor({1}, d)),
         dl = hold(op, Tensor({rows, k}, d));
    auto y = hold(op, IntBuffer(rows, d));
    std::vector<int32_t> yh(static_cast<size_t>(rows));
    for (int64_t i = 0; i < rows; ++i) yh[static_cast<size_t>(i)] = static_cast<int32_t>(i % k);
    y->upload(yh);
    op.run = [&ctx, l, y, loss, mean, dl] { softmax_xent(ctx, *l, *y, *loss, mean.get(), dl.get(), nullptr); };
    op.bytes = 4.0 * (2.0 * rows * k + 2.0 * rows);  // logits in, dlogits out, labels in, loss out
  }
  return op;
}

const std::vector<std::string> kOps = {"adam", "sgd", "relu", "residual_add", "bias_add", "reparameterize", "elbo",
                                       "softmax_xent"};

// Element counts: a training batch of each op, and one that moves at least 64 MB.
int64_t batch_elements(const std::string& name) {
  if (name == "adam") return 855393;             // the ConvVAE's parameters
  if (name == "sgd") return 11173962;            // ResNet-18 (width 64)'s parameters
  if (name == "elbo") return 128 * 784;          // a batch of 128 MNIST images
  if (name == "softmax_xent") return 256 * 10;   // a classifier batch of 256
  if (name == "reparameterize") return 128 * 32;
  return 128 * 64 * 14 * 14;                     // a width-64 activation of batch 128
}
int64_t large_elements(const std::string& name) {
  if (name == "elbo") return 8192 * 784;         // 77 MB
  if (name == "softmax_xent") return 2000000 * 10;
  return int64_t{1} << 24;                       // 16M floats: at least 128 MB moved
}

// Runs fn once per benchmark iteration. On CUDA each call is timed with events on the context's
// stream (manual time) after the L2 cache is flushed by zeroing 256 MB, so inputs come from memory
// and not from the last repeat's cache; on the CPU by Google Benchmark's clock.
void time_calls(benchmark::State& state, Context& ctx, const std::function<void()>& fn) {
#ifdef CUVAE_HAS_CUDA
  if (ctx.is_cuda()) {
    Tensor flush({int64_t{64} << 20}, Device::CUDA);  // larger than any L2
    const cudaStream_t s = static_cast<cudaStream_t>(ctx.stream());
    cudaEvent_t e0, e1;
    CUDA_CHECK(cudaEventCreate(&e0));
    CUDA_CHECK(cudaEventCreate(&e1));
    for (auto _ : state) {
      flush.zero(ctx.stream());
      CUDA_CHECK(cudaEventRecord(e0, s));
      fn();
      CUDA_CHECK(cudaEventRecord(e1, s));
      CUDA_CHECK(cudaEventSynchronize(e1));
      float ms = 0;
      CUDA_CHECK(cudaEventElapsedTime(&ms, e0, e1));
      state.SetIterationTime(ms / 1e3);
    }
    cudaEventDestroy(e0);
    cudaEventDestroy(e1);
    return;
  }
#endif
  for (auto _ : state) fn();
}

void BM_Copy(benchmark::State& state, bool cuda, int64_t bytes) {
  Context ctx(cuda ? DeviceRequest::CUDA : DeviceRequest::CPU);
  const int64_t n = bytes / 4;
  Tensor a = filled({n}, ctx.device(), -1, 1, 1), b({n}, ctx.device());
  time_calls(state, ctx, [&] {
    if (cuda) {
      b.copy_from(a, ctx.stream());
    } else {
      std::memcpy(b.data(), a.data(), static_cast<size_t>(bytes));
      benchmark::ClobberMemory();
    }
  });
  state.SetBytesProcessed(state.iterations() * 2 * bytes);  // read + written
}

void BM_Kernel(benchmark::State& state, bool cuda, const std::string& name, int64_t n) {
  if (cuda && !cuda_available()) {
    state.SkipWithError("no CUDA GPU");
    return;
  }
  Context ctx(cuda ? DeviceRequest::CUDA : DeviceRequest::CPU);
  Op op = make_op(ctx, name, n);
  for (int i = 0; i < 3; ++i) op.run();  // warm-up
  ctx.synchronize();
  time_calls(state, ctx, op.run);
  state.SetBytesProcessed(static_cast<int64_t>(static_cast<double>(state.iterations()) * op.bytes));
  state.counters["MB"] = op.bytes / 1e6;
}

void register_all(const char* device, bool cuda) {
  for (int64_t mb : {int64_t{4}, int64_t{128}}) {
    auto* b = benchmark::RegisterBenchmark((std::string("copy/") + device + "/" + std::to_string(mb) + "MB").c_str(),
                                          [cuda, mb](benchmark::State& s) { BM_Copy(s, cuda, mb << 20); });
    if (cuda) b->UseManualTime();
  }
  for (const std::string& name : kOps)
    for (auto [label, n] : {std::pair<const char*, int64_t>{"batch", batch_elements(name)}, {"large", large_elements(name)}}) {
      auto* b = benchmark::RegisterBenchmark((name + "/" + device + "/" + label).c_str(),
                                            [cuda, name, n = n](benchmark::State& s) { BM_Kernel(s, cuda, name, n); });
      if (cuda) b->UseManualTime();
      b->Unit(benchmark::kMicrosecond);
    }
}

}  // namespace

int main(int argc, char** argv) {
  register_all("cpu", false);
#ifdef CUVAE_HAS_CUDA
  if (cuda_available()) register_all("cuda", true);
#endif
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
