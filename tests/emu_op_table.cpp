// The op table (tests/op_table.h) on the emulated CUDA device (kernels/emu/): every row whose CUDA
// path is a custom kernel runs the kernels' own sources on the CPU, under the forward, reverse and
// a random schedule, and must give the same bytes under all three and agree with the CPU reference
// at the GPU tolerance (NMSE ≤ 1e-7; exact ops equal). Every __global__ function of kernels/*.cu
// must have been launched by some row. A VAE training step and a ResNet-18 step built on the
// emulated kernels must agree with the reference backend.
#include <gtest/gtest.h>

#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <regex>
#include <set>
#include <sstream>

#include "jobs/batching.h"
#include "kernels/emu/runtime.h"
#include "kernels/sgd.h"
#include "models/conv_vae.h"
#include "models/resnet18.h"
#include "tests/op_table.h"
#include "tests/synthetic_data.h"

using namespace cuvae;
using namespace cuvae::test::ops;

namespace {

// Rows whose CUDA path is cuBLAS or cuDNN, which the emulation does not model (their bias and
// activation kernels are rows of their own).
const std::set<std::string> kLibraryRows = {"Linear", "Conv2d", "ConvTranspose2d", "BatchNorm2d"};

const std::vector<emu::Schedule> kSchedules = {
    {emu::Schedule::Order::Forward, 0}, {emu::Schedule::Order::Reverse, 0}, {emu::Schedule::Order::Random, 7}};

// Restores the process's schedule when a test ends.
struct ScheduleGuard {
  emu::Schedule saved = emu::schedule();
  ~ScheduleGuard() { emu::set_schedule(saved); }
};

bool same_bytes(const std::vector<double>& a, const std::vector<double>& b) {
  return a.size() == b.size() && (a.empty() || std::memcmp(a.data(), b.data(), a.size() * sizeof(double)) == 0);
}

// The first index where two outputs differ in their bytes, as "i: a vs b".
std::string first_difference(const std::vector<double>& a, const std::vector<double>& b) {
  for (size_t i = 0; i < a.size() && i < b.size(); ++i)
    if (std::memcmp(&a[i], &b[i], sizeof(double)) != 0) {
      std::ostringstream os;
      os.precision(9);
      os << "element " << i << ": " << a[i] << " vs " << b[i];
      return os.str();
    }
  return "sizes " + std::to_string(a.size()) + " vs " + std::to_string(b.size());
}

}  // namespace

// One test per row, so that ctest shows which kernel failed and runs them side by side.
class EmuOpTable : public ::testing::TestWithParam<std::string> {};

TEST_P(EmuOpTable, KernelsMatchTheCpuUnderEverySchedule) {
  const std::string name = GetParam();
  if (kLibraryRows.count(name)) GTEST_SKIP() << name << ": cuBLAS and cuDNN are not emulated (this row runs on them on a GPU; its bias and activation kernels have rows of their own)";
  ScheduleGuard guard;
  Context cpu(DeviceRequest::CPU, CpuBackend::Reference), dev(DeviceRequest::CPU, CpuBackend::Emu);
  for (const OpRow& row : op_table()) {
    if (row.op != name) continue;
    double worst = 0;
    for (const OpCase& c : row.cases) {
      SCOPED_TRACE(row.op + " [" + c.shape + "]");
      const Outs ref = c.run_float(cpu);
      std::vector<Outs> got;
      for (const emu::Schedule& s : kSchedules) {
        emu::set_schedule(s);
        got.push_back(c.run_float(dev));
      }
      const double bound = c.run_double ? 1e-7 : 0.0;
      ASSERT_EQ(got[0].size(), ref.size());
      for (size_t i = 0; i < ref.size(); ++i) {
        const double e = nmse(got[0][i].v, ref[i].v);
        worst = std::max(worst, e);
        EXPECT_LE(e, bound) << "output " << ref[i].name << ": emulated CUDA vs CPU NMSE " << e;
        for (size_t k = 1; k < kSchedules.size(); ++k)
          EXPECT_TRUE(same_bytes(got[k][i].v, got[0][i].v))
              << "output " << ref[i].name << " differs between schedules " << kSchedules[0].name() << " and "
              << kSchedules[k].name() << " (a race: an order the kernel does not enforce) at "
              << first_difference(got[k][i].v, got[0][i].v);
      }
    }
    std::printf("  %-30s %2zu shapes x %zu schedules, emulated CUDA vs CPU max NMSE %.2e\n", row.op.c_str(),
                row.cases.size(), kSchedules.size(), worst);
    return;
  }
  FAIL() << "no row named " << name;
}

std::vector<std::string> row_names() {
  std::vector<std::string> names;
  for (const OpRow& row : op_table()) names.push_back(row.op);
  return names;
}

INSTANTIATE_TEST_SUITE_P(Rows, EmuOpTable, ::testing::ValuesIn(row_names()), [](const auto& info) {
  std::string s;
  for (char c : info.param) s += std::isalnum(static_cast<unsigned char>(c)) ? c : '_';
  return s;
});

// Every __global__ function declared in kernels/*.cu runs on the emulated device in some row.
// Counted from the sources, so a new kernel without a row fails here.
TEST(EmuCoverage, EveryKernelOfTheSourcesIsLaunchedByTheTable) {
  Context dev(DeviceRequest::CPU, CpuBackend::Emu);
  for (const OpRow& row : op_table()) {
    if (kLibraryRows.count(row.op)) continue;
    for (const OpCase& c : row.cases) c.run_float(dev);
  }
  const std::vector<std::string> launched = emu::launched_kernels();
  const std::set<std::string> ran(launched.begin(), launched.end());
  const std::regex global(R"(__global__\s+void\s+(?:__launch_bounds__\([^)]*\)\s+)?(\w+)\s*\()");
  int declared = 0;
  for (const auto& e : std::filesystem::directory_iterator(std::filesystem::path(CUVAE_SOURCE_DIR) / "kernels")) {
    const std::string ext = e.path().extension().string();
    if (ext != ".cu" && ext != ".cuh") continue;
    const std::string text = test::read_text(e.path().string());
    for (auto it = std::sregex_iterator(text.begin(), text.end(), global); it != std::sregex_iterator(); ++it) {
      ++declared;
      EXPECT_TRUE(ran.count((*it)[1])) << (*it)[1] << " (" << e.path().filename().string()
                                       << ") never ran on the emulated device: give its op a row in tests/op_table.h";
    }
  }
  EXPECT_GE(declared, 29);
  // A kernel template must not declare __shared__ variables: the emulation could not refill them
  // (kernels/emu/device.h).
  const std::regex templ(R"(template\s*<[^>]*>\s*__global__\s+void\s+(\w+)[^{]*\{)");
  for (const auto& e : std::filesystem::directory_iterator(std::filesystem::path(CUVAE_SOURCE_DIR) / "kernels")) {
    const std::string ext = e.path().extension().string();
    if (ext != ".cu" && ext != ".cuh") continue;
    const std::string text = test::read_text(e.path().string());
    for (auto it = std::sregex_iterator(text.begin(), text.end(), templ); it != std::sregex_iterator(); ++it) {
      size_t at = static_cast<size_t>(it->position() + it->length()), depth = 1;
      const size_t body = at;
      while (at < text.size() && depth > 0) depth += text[at] == '{' ? 1 : text[at] == '}' ? -1 : 0, ++at;
      EXPECT_EQ(text.substr(body, at - body).find("__shared__"), std::string::npos)
          << (*it)[1] << " (" << e.path().filename().string() << ") is a kernel template with __shared__ variables";
    }
  }  // 28 kernels in kernels/*.cu and launch.cuh today
  const emu::Counters n = emu::counters();
  std::printf("  %d kernels in the sources, %zu launched on the emulated device (%llu launches, %llu blocks, %llu "
              "threads, %llu fiber switches so far)\n",
              declared, ran.size(), static_cast<unsigned long long>(n.launches), static_cast<unsigned long long>(n.blocks),
              static_cast<unsigned long long>(n.threads), static_cast<unsigned long long>(n.switches));
  EXPECT_GE(n.threads, n.blocks);
  EXPECT_GE(n.switches, n.threads);  // every thread is resumed at least once
}

// A ConvVAE training step (forward, fused ELBO, backward, Adam) with every custom kernel on the
// emulated device and the convolutions and GEMMs on the reference, against the reference backend;
// the pinned network and the residual one (--arch resnet: its residual adds and their backward).
TEST(EmuModelStep, ConvVaeStepMatchesTheReference) {
  for (VaeArch arch : {VaeArch::Conv, VaeArch::Resnet}) {
    SCOPED_TRACE(std::string("--arch ") + vae_arch_name(arch));
    auto run = [arch](CpuBackend backend) {
      Context ctx(DeviceRequest::CPU, backend);
      VaeConfig cfg;
      cfg.latent = 8;
      cfg.arch = arch;
      ConvVAE model(cfg, ctx.device());
      model.init(3);
      const int64_t n = 3;
      const std::vector<float> x = test::random_values<float>(static_cast<size_t>(n * 28 * 28), 0, 1, 11);
      Tensor tx = Tensor::from_vector(x, {n, 1, 28, 28}, ctx.device());
      model.forward(ctx, tx, true, 5, 0);
      model.loss(ctx, tx, true, 5, 1);
      model.backward(ctx);
      Tensor& p = model.params().flat_values();
      Tensor m(p.shape(), ctx.device()), v(p.shape(), ctx.device());
      AdamConfig adam;
      adam_step(ctx, p, model.params().flat_grads(), m, v, adam);
      std::vector<float> out = p.to_vector();
      out.push_back(model.loss_value().to_vector()[0]);
      return out;
    };
    const std::vector<float> ref = run(CpuBackend::Reference), emu_out = run(CpuBackend::Emu);
    ASSERT_EQ(ref.size(), emu_out.size());
    const double e = nmse({emu_out.begin(), emu_out.end()}, {ref.begin(), ref.end()});
    EXPECT_LE(e, 1e-10) << "parameters after one step";
    EXPECT_NEAR(emu_out.back(), ref.back(), 1e-3 * std::abs(ref.back())) << "loss";
  }
}

// A ResNet-18 training step (augmented batch, forward, cross-entropy, backward through the residual
// adds and the pooling, SGD) with every custom kernel on the emulated device and the convolutions,
// batch norm and GEMMs on the reference, against the reference backend.
TEST(EmuModelStep, ResNet18StepMatchesTheReference) {
  const Dataset data = test::random_image_data(16, 5);
  auto run = [&](CpuBackend backend, std::vector<float>& batch) {
    Context ctx(DeviceRequest::CPU, backend);
    ResNetConfig c;
    c.base_width = 4;
    ResNet18 model(c, ctx.device());
    model.init(3);
    DeviceDataset dd(data, ctx.device());
    const int64_t n = 8;
    Tensor x({n, 1, 28, 28}, ctx.device()), buf({model.params().flat_values().numel()}, ctx.device());
    IntBuffer labels(n, ctx.device());
    AugmentConfig aug;
    aug.pad = 2;
    dd.batch(ctx, 4, aug, 9, 1, x, &labels);
    batch = x.to_vector();
    model.forward(ctx, x, true);
    model.loss(ctx, labels, true);
    model.backward(ctx);
    SgdConfig sc;
    sc.lr = 0.05f;
    sc.momentum = 0.9f;
    sgd_step(ctx, model.params().flat_values(), model.params().flat_grads(), buf, sc);
    std::vector<float> out = model.params().flat_values().to_vector();
    out.push_back(model.mean_loss().to_vector()[0]);
    return out;
  };
  std::vector<float> batch_ref, batch_emu;
  const std::vector<float> ref = run(CpuBackend::Reference, batch_ref), emu_out = run(CpuBackend::Emu, batch_emu);
  EXPECT_EQ(batch_emu, batch_ref) << "augmented batch";
  ASSERT_EQ(ref.size(), emu_out.size());
  EXPECT_LE(nmse({emu_out.begin(), emu_out.end()}, {ref.begin(), ref.end()}), 1e-10) << "parameters after one step";
  EXPECT_NEAR(emu_out.back(), ref.back(), 1e-5 * std::abs(ref.back())) << "loss";
}
