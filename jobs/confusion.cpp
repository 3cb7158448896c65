#include "jobs/confusion.h"

#include <sstream>

#include "core/check.h"
#include "io/fs.h"
#include "io/image.h"
#include "io/metrics.h"
#include "io/plot.h"
#include "jobs/analysis/plots.h"

namespace cuvae {

std::vector<std::string> write_confusion(const ClassifierEval& e, const std::vector<std::string>& names,
                                         const std::string& dir, int cell) {
  const int64_t K = static_cast<int64_t>(e.per_class.size());
  CUVAE_CHECK(K > 0 && static_cast<int64_t>(e.confusion.size()) == K * K, "write_confusion: bad matrix");
  std::vector<std::string> written;
  std::ostringstream cm;
  cm << "true\\predicted";
  for (int64_t p = 0; p < K; ++p) cm << "," << (p < static_cast<int64_t>(names.size()) ? names[p] : std::to_string(p));
  cm << "\n";
  for (int64_t t = 0; t < K; ++t) {
    cm << (t < static_cast<int64_t>(names.size()) ? names[t] : std::to_string(t));
    for (int64_t p = 0; p < K; ++p) cm << "," << e.confusion[static_cast<size_t>(t * K + p)];
    cm << "\n";
  }
  write_file_atomic(dir + "/confusion.csv", cm.str());
  written.push_back(dir + "/confusion.csv");

  std::ostringstream pc;
  pc << "class,name,images,accuracy\n";
  for (int64_t t = 0; t < K; ++t) {
    int64_t row = 0;
    for (int64_t p = 0; p < K; ++p) row += e.confusion[static_cast<size_t>(t * K + p)];
    pc << t << ",\"" << (t < static_cast<int64_t>(names.size()) ? names[t] : std::to_string(t)) << "\"," << row << ","
       << format_metric(e.per_class[static_cast<size_t>(t)]) << "\n";
  }
  write_file_atomic(dir + "/per_class.csv", pc.str());
  written.push_back(dir + "/per_class.csv");

  // The labelled heat map (PLplot); without PLplot, a plain grid of K×K coloured cells.
  std::vector<std::string> labels;
  for (int64_t t = 0; t < K; ++t) labels.push_back(t < static_cast<int64_t>(names.size()) ? names[t] : std::to_string(t));
  if (plot_available()) {
    try {
      plot_confusion(dir + "/confusion.png", e.confusion, labels, "confusion matrix (test set; colour: fraction of the true class)");
      written.push_back(dir + "/confusion.png");
      return written;
    } catch (const Error&) {  // e.g. PLplot without its cairo driver: the plain grid below
    }
  }
  const int side = static_cast<int>(K) * cell;
  std::vector<float> img(static_cast<size_t>(3) * side * side);
  for (int64_t t = 0; t < K; ++t) {
    int64_t row = 0;
    for (int64_t p = 0; p < K; ++p) row += e.confusion[static_cast<size_t>(t * K + p)];
    for (int64_t p = 0; p < K; ++p) {
      float rgb[3];
      turbo_rgb(row > 0 ? static_cast<float>(e.confusion[static_cast<size_t>(t * K + p)]) / row : 0.0f, rgb);
      for (int y = 0; y < cell; ++y)
        for (int x = 0; x < cell; ++x) {
          const bool border = y == 0 || x == 0;
          for (int k = 0; k < 3; ++k)
            img[static_cast<size_t>(k) * side * side + static_cast<size_t>(t * cell + y) * side + (p * cell + x)] =
                border ? 1.0f : rgb[k];
        }
    }
  }
  write_png_grid(dir + "/confusion.png", img.data(), 1, 3, side, side, 1, 0, 1);
  written.push_back(dir + "/confusion.png");
  return written;
}

}  // namespace cuvae
