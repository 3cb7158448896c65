// cuvae report: one self-contained HTML page from run folders (images inlined, no network
// references, text escaped), and the errors for folders with nothing to show.
#include <gtest/gtest.h>

#include "io/fs.h"
#include "io/image.h"
#include "jobs/analysis/report.h"
#include "temp_dir.h"
#include "test_util.h"

using namespace cuvae;
using cuvae::test::error_of;

TEST(Report, InlinesPicturesAndTablesWithoutNetworkReferences) {
  cuvae::testing::ScopedTempDir dir;
  const std::string run = dir.path() + "/run";
  ensure_dir(run);
  write_file_atomic(run + "/config.json", R"({"dataset": "mnist", "note": "<script>alert(1)</script> see https://example.com"})");
  write_file_atomic(run + "/metrics.csv", "epoch,test_recon,test_kl\n1,107.5,17.25\n2,84.5,20.5\n");
  std::vector<float> px(28 * 28, 0.5f);
  write_file_atomic(run + "/samples.png", png_from_planes(px.data(), 1, 28, 28));
  write_file_atomic(run + "/validation.md", "# validation\n\n| class | accuracy |\n| --- | --- |\n| 3 | 99.0% |\n");
  ReportOptions o;
  o.runs = {run};
  const std::string html = make_report(o);
  EXPECT_EQ(html.find("http://"), std::string::npos);
  EXPECT_EQ(html.find("https://"), std::string::npos) << "the config's URL must not survive as a link target either";
  EXPECT_EQ(html.find("<script"), std::string::npos);
  EXPECT_NE(html.find("&lt;script&gt;"), std::string::npos);
  EXPECT_NE(html.find("<img alt=\"samples.png\" src=\"data:image/png;base64,iVBORw0KGgo"), std::string::npos);
  EXPECT_NE(html.find("<td>107.5</td>"), std::string::npos);
  EXPECT_NE(html.find("<td>99.0%</td>"), std::string::npos);
  write_report(o, dir.path() + "/out/report.html");
  EXPECT_EQ(read_file(dir.path() + "/out/report.html"), html);
}

TEST(Report, RefusesMissingEmptyFoldersAndNonHtmlOutput) {
  cuvae::testing::ScopedTempDir dir;
  ReportOptions o;
  o.runs = {dir.path() + "/nowhere"};
  EXPECT_NE(error_of([&] { make_report(o); }).find("no such folder"), std::string::npos);
  o.runs = {dir.path()};
  EXPECT_NE(error_of([&] { make_report(o); }).find("nothing to report"), std::string::npos);
  EXPECT_NE(error_of([&] { write_report(o, dir.path() + "/r.txt"); }).find("--out"), std::string::npos);
  EXPECT_FALSE(file_exists(dir.path() + "/r.txt"));
}

TEST(Report, IncludesCompareAndSweepTablesAndPlots) {
  cuvae::testing::ScopedTempDir dir;
  const std::string cmp = dir.path() + "/compare", sw = dir.path() + "/sweep";
  ensure_dir(cmp);
  ensure_dir(sw);
  std::vector<float> px(28 * 28, 0.25f);
  write_file_atomic(cmp + "/compare.md", "# Comparison\n\n| run | NLL (K) |\n|---|---|\n| vae | 88.10 ± 0.30 (100) |\n");
  write_file_atomic(cmp + "/compare.png", png_from_planes(px.data(), 1, 28, 28));
  write_file_atomic(sw + "/sweep.md", "# Sweep\n\n| config | seconds |\n|---|---|\n| vae-z8-b1 | 61.5 |\n");
  write_file_atomic(sw + "/sweep_rate_distortion.png", png_from_planes(px.data(), 1, 28, 28));
  ReportOptions o;
  o.runs = {cmp};
  o.sweeps = {sw};
  const std::string html = make_report(o);
  EXPECT_NE(html.find("<td>88.10 ± 0.30 (100)</td>"), std::string::npos);
  EXPECT_NE(html.find("<img alt=\"compare.png\""), std::string::npos);
  EXPECT_NE(html.find("<td>vae-z8-b1</td>"), std::string::npos);
  EXPECT_NE(html.find("<img alt=\"sweep_rate_distortion.png\""), std::string::npos);
  EXPECT_LT(html.find("compare.png"), html.find("sweep_rate_distortion.png"));
  EXPECT_EQ(html.find("http://"), std::string::npos);
  EXPECT_EQ(html.find("https://"), std::string::npos);
  o.sweeps = {cmp};  // not a sweep folder
  EXPECT_NE(error_of([&] { make_report(o); }).find("no sweep.md"), std::string::npos);
}
