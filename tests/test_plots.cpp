// Run-folder pictures: curves.png for VAE and classifier runs, the labelled confusion matrix, and
// the errors for folders that are not runs.
#include <gtest/gtest.h>

#include <cmath>

#include "io/fs.h"
#include "io/image.h"
#include "io/plot.h"
#include "jobs/analysis/plots.h"
#include "temp_dir.h"
#include "test_util.h"

using namespace cuvae;
using cuvae::test::error_of;

namespace {
// Pixels whose channels differ by more than 0.2 (not grey, white or black) in RGB planes [3, h, w].
int coloured_pixels(const std::vector<float>& rgb, int h, int w) {
  int n = 0;
  const size_t hw = static_cast<size_t>(h) * w;
  for (size_t p = 0; p < hw; ++p)
    if (std::abs(rgb[p] - rgb[hw + p]) > 0.2f || std::abs(rgb[hw + p] - rgb[2 * hw + p]) > 0.2f) ++n;
  return n;
}
}  // namespace

TEST(PlotRun, VaeRunGetsTwoPanelCurves) {
  cuvae::testing::ScopedTempDir dir;
  write_file_atomic(dir.path() + "/metrics.csv",
                    "epoch,train_loss,test_recon,test_kl,test_loss,seconds,images_per_s\n"
                    "1,178.2,107.5,17.3,124.8,25,2400\n2,119.4,84.6,20.2,104.8,25,2400\n3,108.9,78.3,20.6,98.9,25,2400\n");
  if (!plot_available()) {
    EXPECT_NE(error_of([&] { plot_run(dir.path()); }).find("PLplot"), std::string::npos);
    GTEST_SKIP() << "this build has no PLplot";
  }
  const std::vector<std::string> w = plot_run(dir.path());
  ASSERT_EQ(w, (std::vector<std::string>{dir.path() + "/curves.png"}));
  const std::vector<float> rgb = read_png(w[0], 3, 460, 1200);  // two 600-pixel panels
  EXPECT_GT(coloured_pixels(rgb, 460, 1200), 300);
}

TEST(PlotRun, ClassifierRunGetsCurvesAndALabelledConfusionMatrix) {
  cuvae::testing::ScopedTempDir dir;
  write_file_atomic(dir.path() + "/metrics.csv",
                    "epoch,lr,train_loss,train_acc,test_loss,test_acc,seconds,images_per_s\n"
                    "1,0.05,0.9,0.7,0.4,0.88,10,300\n2,0.001,0.3,0.9,0.2,0.94,10,300\n");
  write_file_atomic(dir.path() + "/confusion.csv", "true\\predicted,cat,dog,bird\ncat,50,3,1\ndog,4,40,6\nbird,0,2,48\n");
  if (!plot_available()) GTEST_SKIP() << "this build has no PLplot";
  const std::vector<std::string> w = plot_run(dir.path());
  ASSERT_EQ(w.size(), 2u);
  EXPECT_GT(coloured_pixels(read_png(w[0], 3, 460, 1800), 460, 1800), 300);  // three panels
  const std::vector<float> cm = read_png(dir.path() + "/confusion.png", 3, 760, 820);
  EXPECT_GT(coloured_pixels(cm, 760, 820), 20000);  // the coloured cells
}

TEST(PlotRun, FoldersThatAreNotRunsAreRefusedByName) {
  cuvae::testing::ScopedTempDir dir;
  EXPECT_NE(error_of([&] { plot_curves(dir.path()); }).find("no metrics.csv"), std::string::npos);
  write_file_atomic(dir.path() + "/metrics.csv", "a,b\n1,2\n");
  EXPECT_NE(error_of([&] { plot_curves(dir.path()); }).find("'epoch'"), std::string::npos);
  write_file_atomic(dir.path() + "/metrics.csv", "epoch,b\n1,2\n");
  EXPECT_NE(error_of([&] { plot_curves(dir.path()); }).find("neither"), std::string::npos);
  EXPECT_FALSE(file_exists(dir.path() + "/curves.png"));
}
