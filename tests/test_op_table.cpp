// The op table on the CPU (tests/op_table.h): every op's float path against its double
// reference on every shape of its row, and the table itself checked for completeness: every
// `*_cpu` reference and layer class declared in kernels/ and layers/ has a row, and every row
// has a test suite named after its op.
#include <gtest/gtest.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <regex>
#include <set>
#include <sstream>

#include "tests/op_table.h"

using namespace cuvae;
using namespace cuvae::test::ops;

namespace {

// Compares two runs output by output; returns the largest NMSE seen.
double compare(const OpRow& row, const OpCase& c, const Outs& got, const Outs& ref, double bound, const char* what) {
  double worst = 0;
  EXPECT_EQ(got.size(), ref.size()) << row.op << " [" << c.shape << "]: " << what << " output counts differ";
  for (size_t i = 0; i < got.size() && i < ref.size(); ++i) {
    EXPECT_EQ(got[i].name, ref[i].name);
    EXPECT_EQ(got[i].v.size(), ref[i].v.size()) << row.op << " [" << c.shape << "] " << got[i].name;
    const double e = nmse(got[i].v, ref[i].v);
    worst = std::max(worst, e);
    EXPECT_LE(e, bound) << row.op << " [" << c.shape << "] output " << got[i].name << ": " << what << " NMSE " << e;
    bool finite = true;
    for (double v : ref[i].v) finite = finite && std::isfinite(v);
    EXPECT_TRUE(finite) << row.op << " [" << c.shape << "] output " << got[i].name << " has a non-finite reference value";
  }
  return worst;
}

}  // namespace

TEST(OpTable, CpuFloatMatchesDoubleOnEveryShape) {
  Context ctx(DeviceRequest::CPU, CpuBackend::Reference);
  int cases = 0;
  for (const OpRow& row : op_table()) {
    double worst = 0;
    for (const OpCase& c : row.cases) {
      if (!c.run_double) continue;  // exact ops: compared across devices (gpu_op_table.cpp)
      worst = std::max(worst, compare(row, c, c.run_float(ctx), c.run_double(), row.float_nmse, "float vs double"));
      ++cases;
    }
    std::printf("  %-30s %2zu shapes, float vs double max NMSE %.2e (bound %.0e)\n", row.op.c_str(), row.cases.size(),
                worst, row.float_nmse);
  }
  EXPECT_GT(cases, 80);
}

// The layers again with the oneDNN backend (when built): the same double references.
TEST(OpTable, OnednnFloatMatchesDoubleForTheLayers) {
  if (!onednn_built()) GTEST_SKIP() << "this build has no oneDNN: the oneDNN layers are not compared";
  Context ctx(DeviceRequest::CPU, CpuBackend::OneDNN);
  int cases = 0;
  for (const OpRow& row : op_table()) {
    if (row.op != "Linear" && row.op != "Conv2d" && row.op != "ConvTranspose2d" && row.op != "BatchNorm2d") continue;
    for (const OpCase& c : row.cases) {
      compare(row, c, c.run_float(ctx), c.run_double(), row.float_nmse, "oneDNN float vs double");
      ++cases;
    }
  }
  EXPECT_GE(cases, 20);
}

TEST(OpTable, EveryDeclaredOpHasARow) {
  std::set<std::string> covered;
  for (const OpRow& row : op_table()) covered.insert(row.covers.begin(), row.covers.end());
  // Layer classes that are backends or storage of the layers above, not ops of their own.
  const std::set<std::string> not_ops = {"CudnnConv", "OnednnConv", "OnednnBatchNorm", "ParamStore", "Output", "ArgCache"};
  const std::regex ref(R"(\bvoid\s+(\w+_cpu)\s*\()"), cls(R"((?:^|\n)class\s+(\w+)\s*\{)");
  int declared = 0;
  for (const char* dir : {"kernels", "layers"}) {
    for (const auto& e : std::filesystem::directory_iterator(std::filesystem::path(CUVAE_SOURCE_DIR) / dir)) {
      if (e.path().extension() != ".h") continue;
      const std::string text = test::read_text(e.path().string());
      for (const std::regex* re : {&ref, &cls})
        for (auto it = std::sregex_iterator(text.begin(), text.end(), *re); it != std::sregex_iterator(); ++it) {
          const std::string name = (*it)[1];
          if (not_ops.count(name)) continue;
          ++declared;
          EXPECT_TRUE(covered.count(name)) << name << " (" << e.path().filename().string()
                                           << ") has no row in tests/op_table.h";
        }
    }
  }
  EXPECT_GE(declared, 40);  // 37 references and 4 layer classes today
}

TEST(OpTable, EveryRowHasASuiteNamedAfterItsOp) {
  std::set<std::string> suites;
  const ::testing::UnitTest& ut = *::testing::UnitTest::GetInstance();
  for (int i = 0; i < ut.total_test_suite_count(); ++i) suites.insert(ut.GetTestSuite(i)->name());
  for (const OpRow& row : op_table()) {
    EXPECT_TRUE(suites.count(row.suite)) << row.op << ": no test suite named " << row.suite;
    EXPECT_FALSE(row.cases.empty()) << row.op << " has no shapes";
  }
}
