// The op table on the GPU (tests/op_table.h): every op's CUDA path against the CPU's float
// path on every shape of its row, by normalised mean squared error ≤ 1e-7 (exact ops: equal).
// This is the GPU's one per-op value check; the other gpu_*.cpp files test only what the table
// does not (sizes past a block or grid pass, unaligned or in-place calls, bad inputs, graphs,
// layers with activations, whole models). Skipped with a reason where no GPU is.
#include <gtest/gtest.h>

#include <array>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "tests/op_table.h"

using namespace cuvae;
using namespace cuvae::test::ops;

// CUVAE_OP_TABLE_ROWS=a,b,... restricts the table to those rows, CUVAE_OP_TABLE_SKIP=a,b,...
// leaves those out (scripts/gpu-check runs the custom kernels' rows under compute-sanitizer by
// leaving out the cuDNN and cuBLAS layers).
TEST(GpuOpTable, CudaMatchesCpuOnEveryShape) {
  if (!cuda_available()) GTEST_SKIP() << "no CUDA GPU (" << cuvae::cuda_unavailable_reason() << "): the op table's CUDA column is not compared";
  Context cpu(DeviceRequest::CPU, CpuBackend::Reference), gpu(DeviceRequest::CUDA);
  const char* only = std::getenv("CUVAE_OP_TABLE_ROWS");
  const char* skip = std::getenv("CUVAE_OP_TABLE_SKIP");
  const std::string rows = only != nullptr ? "," + std::string(only) + "," : "";
  const std::string skipped = skip != nullptr ? "," + std::string(skip) + "," : "";
  int cases = 0;
  for (const OpRow& row : op_table()) {
    if (!rows.empty() && rows.find("," + row.op + ",") == std::string::npos) continue;
    if (skipped.find("," + row.op + ",") != std::string::npos) continue;
    double worst = 0;
    for (const OpCase& c : row.cases) {
      const Outs ref = c.run_float(cpu);
      const Outs got = c.run_float(gpu);
      const double bound = c.run_double ? 1e-7 : 0.0;
      ASSERT_EQ(got.size(), ref.size()) << row.op << " [" << c.shape << "]";
      for (size_t i = 0; i < got.size(); ++i) {
        const double e = nmse(got[i].v, ref[i].v);
        worst = std::max(worst, e);
        EXPECT_LE(e, bound) << row.op << " [" << c.shape << "] output " << got[i].name << ": CUDA vs CPU NMSE " << e;
      }
      ++cases;
    }
    std::printf("  %-30s %2zu shapes, CUDA vs CPU max NMSE %.2e\n", row.op.c_str(), row.cases.size(), worst);
  }
  if (rows.empty() && skipped.empty()) EXPECT_GT(cases, 80);
  else EXPECT_GT(cases, 0) << "CUVAE_OP_TABLE_ROWS and CUVAE_OP_TABLE_SKIP leave no row";
}

// One Conv2d and one ConvTranspose2d layer fed alternating batch sizes and image sizes: each call
// must find (or reuse) the algorithms of its own geometry, and the workspace must fit the largest.
TEST(GpuOpTable, CudnnConvolutionWithAlternatingGeometries) {
  if (!cuda_available()) GTEST_SKIP() << "no CUDA GPU (" << cuvae::cuda_unavailable_reason() << "): cuDNN with alternating geometries is not checked";
  Context cpu(DeviceRequest::CPU, CpuBackend::Reference), gpu(DeviceRequest::CUDA);
  ParamStore pc, pg;
  Conv2d cc(pc, "conv", 3, 8, 3, 2, 1), cg(pg, "conv", 3, 8, 3, 2, 1);
  ConvTranspose2d tc(pc, "deconv", 8, 3, 4, 2, 1), tg(pg, "deconv", 8, 3, 4, 2, 1);
  pc.finalize(Device::CPU);
  pg.finalize(Device::CUDA);
  cuvae::test::ops::detail::set_all(pc, 3);
  cuvae::test::ops::detail::set_all(pg, 3);
  const std::vector<std::array<int64_t, 3>> shapes = {{3, 16, 16}, {128, 32, 32}, {3, 16, 16}, {1, 9, 13}, {128, 32, 32}};
  for (const auto& [n, h, w] : shapes) {
    SCOPED_TRACE(::testing::Message() << "n=" << n << " h=" << h << " w=" << w);
    const auto x = cuvae::test::random_values<float>(static_cast<size_t>(n * 3 * h * w), -1, 1, static_cast<uint64_t>(n + h));
    Tensor xc = Tensor::from_vector(x, {n, 3, h, w}), xg = Tensor::from_vector(x, {n, 3, h, w}, Device::CUDA);
    Tensor& yc = tc.forward(cpu, cc.forward(cpu, xc));
    Tensor& yg = tg.forward(gpu, cg.forward(gpu, xg));
    const std::vector<float> a = yg.to_vector(), b = yc.to_vector();
    EXPECT_LE(nmse({a.begin(), a.end()}, {b.begin(), b.end()}), 1e-7);
  }
}
