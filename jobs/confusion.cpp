#include "jobs/confusion.h"

#include "core/check.h"
#include "io/csv.h"
#include "io/image.h"
#include "io/metrics.h"
#include "io/plot.h"
#include "jobs/analysis/plots.h"

namespace cuvae {

std::vector<std::string> write_confusion(const ClassifierEval& e, const std::vector<std::string>& names,
                                         const std::string& dir, int cell) {
  const int64_t K = static_cast<int64_t>(e.per_class.size());
  CUVAE_CHECK(K > 0 && static_cast<int64_t>(e.confusion.size()) == K * K, "write_confusion: bad matrix");
  std::vector<std::string> labels;
  for (int64_t t = 0; t < K; ++t) labels.push_back(t < static_cast<int64_t>(names.size()) ? names[t] : std::to_string(t));
  std::vector<std::string> written;

  std::vector<std::string> header = {"true\\predicted"};
  header.insert(header.end(), labels.begin(), labels.end());
  CsvWriter cm(header);
  for (int64_t t = 0; t < K; ++t) {
    std::vector<std::string> row = {labels[static_cast<size_t>(t)]};
    for (int64_t p = 0; p < K; ++p) row.push_back(std::to_string(e.confusion[static_cast<size_t>(t * K + p)]));
    cm.add_row(row);
  }
  cm.write(dir + "/confusion.csv");
  written.push_back(dir + "/confusion.csv");

  CsvWriter pc({"class", "name", "images", "accuracy"});
  for (int64_t t = 0; t < K; ++t) {
    int64_t row = 0;
    for (int64_t p = 0; p < K; ++p) row += e.confusion[static_cast<size_t>(t * K + p)];
    pc.add_row({std::to_string(t), labels[static_cast<size_t>(t)], std::to_string(row),
                format_metric(e.per_class[static_cast<size_t>(t)])});
  }
  pc.write(dir + "/per_class.csv");
  written.push_back(dir + "/per_class.csv");

  // The labelled heat map (PLplot); without PLplot, a plain grid of K×K coloured cells.
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
