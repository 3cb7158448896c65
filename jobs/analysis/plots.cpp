#include "jobs/analysis/plots.h"

#include <cmath>
#include <cstdlib>
#include <fstream>
#include <sstream>

#include "core/check.h"
#include "io/fs.h"
#include "io/plot.h"

namespace cuvae {

const std::vector<double>* CsvColumns::find(const std::string& name) const {
  for (size_t i = 0; i < names.size(); ++i)
    if (names[i] == name) return &columns[i];
  return nullptr;
}

namespace {
std::vector<std::string> split_csv_line(const std::string& line) {
  std::vector<std::string> out;
  std::string cur;
  bool quoted = false;
  for (char ch : line) {
    if (ch == '"') quoted = !quoted;
    else if (ch == ',' && !quoted) {
      out.push_back(cur);
      cur.clear();
    } else if (ch != '\r') cur += ch;
  }
  out.push_back(cur);
  return out;
}
}  // namespace

CsvColumns read_csv_columns(const std::string& path) {
  if (!file_exists(path)) CUVAE_FAIL(path << ": no such file");
  std::istringstream in(read_file(path));
  std::string line;
  if (!std::getline(in, line) || line.empty()) CUVAE_FAIL(path << ": empty file (expected a CSV header)");
  CsvColumns c;
  c.names = split_csv_line(line);
  c.columns.resize(c.names.size());
  while (std::getline(in, line)) {
    if (line.empty()) continue;
    const std::vector<std::string> cells = split_csv_line(line);
    for (size_t k = 0; k < c.names.size(); ++k) {
      double v = std::nan("");
      if (k < cells.size() && !cells[k].empty()) {
        char* end = nullptr;
        v = std::strtod(cells[k].c_str(), &end);
        if (end == cells[k].c_str()) v = std::nan("");
      }
      c.columns[k].push_back(v);
    }
  }
  return c;
}

std::string plot_curves(const std::string& dir) {
  const std::string metrics = dir + "/metrics.csv";
  if (!file_exists(metrics)) CUVAE_FAIL("--run " << dir << ": no metrics.csv (not a train-vae or train-classifier run folder)");
  const CsvColumns c = read_csv_columns(metrics);
  const std::vector<double>* epoch = c.find("epoch");
  if (!epoch) CUVAE_FAIL(metrics << ": no 'epoch' column");
  auto series = [&](const std::string& col, const std::string& name) {
    PlotSeries s;
    s.name = name;
    if (const std::vector<double>* v = c.find(col)) {
      s.x = *epoch;
      s.y = *v;
    }
    return s;
  };
  std::vector<PlotPanel> panels;
  if (c.find("test_recon") && c.find("test_kl")) {
    PlotSeries elbo = series("test_recon", "test -ELBO");
    const std::vector<double>& kl = *c.find("test_kl");
    for (size_t i = 0; i < elbo.y.size(); ++i) elbo.y[i] += kl[i];
    panels.push_back({{series("train_loss", "train loss"), elbo, series("test_recon", "test recon")},
                      {"VAE: loss per epoch", "epoch", "nats per image"}});
    panels.push_back({{series("test_kl", "test KL")}, {"KL(q(z|x) || p(z)) on the test set", "epoch", "nats per image"}});
  } else if (c.find("train_acc") && c.find("test_acc")) {
    panels.push_back({{series("train_loss", "train"), series("test_loss", "test")},
                      {"classifier: cross-entropy", "epoch", "nats per image"}});
    PlotSeries tr = series("train_acc", "train"), te = series("test_acc", "test");
    for (double& v : tr.y) v *= 100.0;
    for (double& v : te.y) v *= 100.0;
    panels.push_back({{tr, te}, {"classifier: accuracy", "epoch", "% correct"}});
    if (c.find("lr")) panels.push_back({{series("lr", "lr")}, {"learning rate (end of epoch)", "epoch", "lr"}, true});
  } else {
    CUVAE_FAIL(metrics << ": columns are neither a VAE run's (test_recon, test_kl) nor a classifier run's (train_acc, test_acc)");
  }
  const std::string path = dir + "/curves.png";
  line_panels_png(path, panels, 600 * static_cast<int>(panels.size()), 460);
  return path;
}

void write_curves_or_note(const std::string& dir, std::ostream& log) {
  if (!plot_available()) {
    log << "note: curves.png skipped: this build of cuvae has no PLplot\n";
    return;
  }
  try {
    log << "wrote " << plot_curves(dir) << "\n";
  } catch (const Error& e) {
    log << "note: curves.png not written (" << e.what() << ")\n";
  }
}

void plot_confusion(const std::string& path, const std::vector<int64_t>& confusion, const std::vector<std::string>& names,
                    const std::string& title) {
  const int64_t K = static_cast<int64_t>(names.size());
  CUVAE_CHECK(K > 0 && static_cast<int64_t>(confusion.size()) == K * K,
              "plot_confusion: " << confusion.size() << " counts for " << K << " classes");
  std::vector<double> values(static_cast<size_t>(K * K));
  std::vector<std::string> text(static_cast<size_t>(K * K));
  for (int64_t t = 0; t < K; ++t) {
    int64_t row = 0;
    for (int64_t p = 0; p < K; ++p) row += confusion[static_cast<size_t>(t * K + p)];
    for (int64_t p = 0; p < K; ++p) {
      const int64_t n = confusion[static_cast<size_t>(t * K + p)];
      values[static_cast<size_t>(t * K + p)] = row > 0 ? static_cast<double>(n) / static_cast<double>(row) : 0.0;
      text[static_cast<size_t>(t * K + p)] = std::to_string(n);
    }
  }
  heatmap_png(path, values, text, names, names, {title, "predicted class", "true class"});
}

std::vector<std::string> plot_run(const std::string& dir) {
  std::vector<std::string> written = {plot_curves(dir)};
  const std::string cm = dir + "/confusion.csv";
  if (file_exists(cm)) {
    const CsvColumns c = read_csv_columns(cm);
    // confusion.csv: "true\predicted,<names…>" header, then one row per true class: name, counts.
    const int64_t K = static_cast<int64_t>(c.names.size()) - 1;
    std::vector<std::string> names(c.names.begin() + 1, c.names.end());
    std::vector<int64_t> counts;
    bool ok = K > 0;
    for (int64_t t = 0; ok && t < K; ++t)
      for (int64_t p = 0; p < K; ++p) {
        if (c.columns[static_cast<size_t>(p + 1)].size() != static_cast<size_t>(K)) {
          ok = false;
          break;
        }
        const double v = c.columns[static_cast<size_t>(p + 1)][static_cast<size_t>(t)];
        if (!std::isfinite(v) || v < 0) {
          ok = false;
          break;
        }
        counts.push_back(static_cast<int64_t>(v));
      }
    if (!ok) CUVAE_FAIL(cm << ": expected a square table of counts under a header of class names");
    const std::string path = dir + "/confusion.png";
    plot_confusion(path, counts, names, "confusion matrix (test set; colour: fraction of the true class)");
    written.push_back(path);
  }
  return written;
}

}  // namespace cuvae
