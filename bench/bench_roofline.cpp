// The CPU's practical FP32 peak and how close cuvae's training steps come to it. In one run:
//   sgemm:       C = A·B for square float matrices through oneDNN's dnnl_sgemm on all the
//                threads (2·n³ FLOPs per call); the best size's median is the peak;
//   vae_step:    one ConvVAE training step (bench/step_fixtures.h) at --vae-batch;
//   resnet_step: one ResNet-18 training step at --resnet-width and --resnet-batch.
// Each step's FLOPs are counted from the layer shapes (ConvVAE::step_flops,
// ResNet18::step_flops: the products forward and backward) and reported as GFLOP/s and as a
// fraction of the peak. One JSON object per line on stdout; bench/roofline.sh runs PyTorch's
// side in the same run and writes the table.
//   build/bench/cuvae_bench_roofline --only sgemm,resnet
#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <functional>
#include <iostream>
#include <sstream>
#include <string>
#include <vector>

#include "bench/step_fixtures.h"
#include "core/check.h"

#ifdef CUVAE_HAS_ONEDNN
#include <oneapi/dnnl/dnnl.hpp>
#endif

using namespace cuvae;
using namespace cuvae::bench;
using Clock = std::chrono::steady_clock;

namespace {

struct Timing {
  double median_s = 0, min_s = 0;
  int reps = 0;
};

// Set by --mark: a line "# timed" on stdout between the warm-up and the timed calls, so that a
// profile written to stdout (ONEDNN_VERBOSE=1) can be cut to the timed steps.
bool g_mark = false;

// Untimed warm-up calls, then at least `min_reps` timed calls and as many more as fit in
// `min_s` seconds; the median and the fastest call.
Timing time_calls(const std::function<void()>& fn, int warmup, int min_reps, double min_s) {
  for (int i = 0; i < warmup; ++i) fn();
  if (g_mark) std::cout << "# timed" << std::endl;
  std::vector<double> t;
  const auto start = Clock::now();
  while (static_cast<int>(t.size()) < min_reps || std::chrono::duration<double>(Clock::now() - start).count() < min_s) {
    const auto a = Clock::now();
    fn();
    t.push_back(std::chrono::duration<double>(Clock::now() - a).count());
  }
  std::sort(t.begin(), t.end());
  return {t[t.size() / 2], t.front(), static_cast<int>(t.size())};
}

#ifdef CUVAE_HAS_ONEDNN
// FP32 GEMM C[n,n] = A[n,n]·B[n,n] through oneDNN, row-major, no transposes.
Timing time_sgemm(int64_t n, int min_reps, double min_s) {
  std::vector<float> a(static_cast<size_t>(n * n)), b(a.size()), c(a.size());
  for (size_t i = 0; i < a.size(); ++i) {
    a[i] = static_cast<float>((i * 2654435761u) % 1000) / 1000.0f - 0.5f;
    b[i] = static_cast<float>((i * 40503u) % 1000) / 1000.0f - 0.5f;
  }
  return time_calls(
      [&] {
        const dnnl::status st = dnnl::sgemm('N', 'N', n, n, n, 1.0f, a.data(), n, b.data(), n, 0.0f, c.data(), n);
        CUVAE_CHECK(st == dnnl::status::success, "dnnl_sgemm failed at n = " << n);
      },
      2, min_reps, min_s);
}
#endif

nlohmann::json step_json(const char* what, int64_t batch, const StepFlops& f, const Timing& t) {
  return {{"what", what},
          {"batch", batch},
          {"forward_flops", f.forward},
          {"flops", f.total()},
          {"median_s", t.median_s},
          {"min_s", t.min_s},
          {"reps", t.reps},
          {"images_per_s", static_cast<double>(batch) / t.median_s},
          {"gflops", f.total() / t.median_s / 1e9}};
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{
      "cuvae_bench_roofline: the CPU's practical FP32 peak (a large SGEMM through oneDNN, all threads) and "
      "the GFLOP/s of cuvae's VAE and ResNet-18 training steps, FLOPs counted from the layer shapes. "
      "Prints one JSON object per line; bench/roofline.sh adds PyTorch and writes the table."};
  std::string only = "sgemm,vae,resnet";
  std::vector<int64_t> sizes{1024, 2048, 3072};
  int64_t vae_batch = 128, resnet_batch = 64, resnet_width = 64;
  double min_s = 3.0;
  int min_reps = 5, steps = 0;
  std::string backend = "onednn";
  app.add_option("--only", only, "comma-separated: sgemm, vae, resnet")
      ->capture_default_str()
      ->check([](const std::string& v) {
        std::string item;
        for (std::istringstream in(v); std::getline(in, item, ',');)
          if (item != "sgemm" && item != "vae" && item != "resnet")
            return "'" + item + "' is not one of sgemm, vae, resnet";
        return std::string();
      });
  app.add_option("--sgemm-sizes", sizes, "square SGEMM sizes n; the fastest is the peak")->capture_default_str();
  app.add_option("--vae-batch", vae_batch, "images per VAE step")->check(CLI::PositiveNumber)->capture_default_str();
  app.add_option("--resnet-batch", resnet_batch, "images per ResNet-18 step")->check(CLI::PositiveNumber)->capture_default_str();
  app.add_option("--resnet-width", resnet_width, "ResNet-18 base width (64: the standard network)")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  app.add_option("--min-s", min_s, "seconds each measurement runs at least")->check(CLI::NonNegativeNumber)->capture_default_str();
  app.add_option("--min-reps", min_reps, "timed calls each measurement makes at least")->check(CLI::PositiveNumber)->capture_default_str();
  app.add_option("--steps", steps,
                 "run exactly this many timed steps (after 2 warm-up steps) instead of --min-s/--min-reps, e.g. under "
                 "ONEDNN_VERBOSE=1 for a profile")
      ->check(CLI::NonNegativeNumber);
  app.add_flag("--mark", g_mark, "print a line '# timed' before each measurement's timed calls (cuts a profile)");
  app.add_option("--cpu-backend", backend, "onednn or reference (the steps' CPU backend)")
      ->check(CLI::IsMember({"onednn", "reference"}))
      ->capture_default_str();
  CLI11_PARSE(app, argc, argv);
  auto wants = [&](const std::string& w) { return ("," + only + ",").find("," + w + ",") != std::string::npos; };
  const CpuBackend cpu = backend == "onednn" ? CpuBackend::OneDNN : CpuBackend::Reference;
  const int reps = steps > 0 ? steps : min_reps;
  const double secs = steps > 0 ? 0.0 : min_s;
  try {
    if (cpu == CpuBackend::OneDNN && !onednn_built()) {
      std::cerr << "cuvae_bench_roofline: this build has no oneDNN (install libdnnl-dev and rebuild)\n";
      return 1;
    }
    if (wants("sgemm")) {
#ifdef CUVAE_HAS_ONEDNN
      for (int64_t n : sizes) {
        const Timing t = time_sgemm(n, min_reps, min_s);
        const double flops = 2.0 * static_cast<double>(n) * static_cast<double>(n) * static_cast<double>(n);
        std::cout << nlohmann::json{{"what", "sgemm"}, {"n", n}, {"flops", flops}, {"median_s", t.median_s},
                                    {"min_s", t.min_s}, {"reps", t.reps}, {"gflops", flops / t.median_s / 1e9}}
                         .dump()
                  << std::endl;
      }
#else
      std::cerr << "cuvae_bench_roofline: sgemm needs oneDNN (install libdnnl-dev and rebuild)\n";
      return 1;
#endif
    }
    if (wants("vae")) {
      VaeStepFixture f(DeviceRequest::CPU, vae_batch, cpu);
      const Timing t = time_calls([&] { f.run(); }, 2, reps, secs);
      nlohmann::json j = step_json("vae_step", vae_batch, f.model.step_flops(), t);
      j["device"] = f.ctx.description();
      std::cout << j.dump() << std::endl;
    }
    if (wants("resnet")) {
      ResNetFixture f(DeviceRequest::CPU, resnet_width, resnet_batch, cpu);
      const Timing t = time_calls([&] { f.run(); }, 2, reps, secs);
      nlohmann::json j = step_json("resnet_step", resnet_batch, f.model.step_flops(), t);
      j["width"] = resnet_width;
      j["device"] = f.ctx.description();
      std::cout << j.dump() << std::endl;
    }
  } catch (const std::exception& e) {
    std::cerr << "cuvae_bench_roofline: " << e.what() << "\n";
    return 1;
  }
  return 0;
}
