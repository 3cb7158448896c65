#include "jobs/analysis/plots.h"

#include <cmath>
#include <optional>

#include "core/check.h"
#include "io/csv.h"
#include "io/fs.h"
#include "io/plot.h"

namespace cuvae {

const std::vector<double>* CsvColumns::find(const std::string& name) const {
  for (size_t i = 0; i < names.size(); ++i)
    if (names[i] == name) return &columns[i];
  return nullptr;
}

CsvColumns read_csv_columns(const std::string& path) {
  const CsvTable t = CsvTable::read(path);
  CsvColumns c;
  c.names = t.header();
  c.columns.resize(c.names.size());
  for (size_t k = 0; k < c.names.size(); ++k)
    for (size_t r = 0; r < t.rows(); ++r) c.columns[k].push_back(t.try_number(r, k).value_or(std::nan("")));
  return c;
}

std::string plot_curves(const std::string& dir) {
  const std::string metrics = dir + "/metrics.csv";
  if (!file_exists(metrics)) CUVAE_FAIL(option("run") << " " << dir << ": no metrics.csv (not a train-vae or train-classifier run folder)");
  const CsvTable c = CsvTable::read(metrics);
  if (!c.find("epoch")) CUVAE_FAIL(metrics << ": no 'epoch' column");
  const std::vector<double> epoch = c.numbers("epoch");
  auto has = [&](const char* col) { return c.find(col).has_value(); };
  auto series = [&](const char* col, const std::string& name) {
    PlotSeries s;
    s.name = name;
    if (has(col)) {
      s.x = epoch;
      s.y = c.numbers(col);
    }
    return s;
  };
  std::vector<PlotPanel> panels;
  if (has("test_recon") && has("test_kl")) {
    PlotSeries elbo = series("test_recon", "test -ELBO");
    const std::vector<double> kl = c.numbers("test_kl");
    for (size_t i = 0; i < elbo.y.size(); ++i) elbo.y[i] += kl[i];
    panels.push_back({{series("train_loss", "train loss"), elbo, series("test_recon", "test recon")},
                      {"VAE: loss per epoch", "epoch", "nats per image"}});
    panels.push_back({{series("test_kl", "test KL")}, {"KL(q(z|x) || p(z)) on the test set", "epoch", "nats per image"}});
  } else if (has("train_acc") && has("test_acc")) {
    panels.push_back({{series("train_loss", "train"), series("test_loss", "test")},
                      {"classifier: cross-entropy", "epoch", "nats per image"}});
    PlotSeries tr = series("train_acc", "train"), te = series("test_acc", "test");
    for (double& v : tr.y) v *= 100.0;
    for (double& v : te.y) v *= 100.0;
    panels.push_back({{tr, te}, {"classifier: accuracy", "epoch", "% correct"}});
    if (has("lr")) panels.push_back({{series("lr", "lr")}, {"learning rate (end of epoch)", "epoch", "lr"}, true});
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
    const CsvTable c = CsvTable::read(cm);
    // confusion.csv: "true\predicted,<names…>" header, then one row per true class: name, counts.
    const size_t K = c.header().size() - 1;
    const std::vector<std::string> names(c.header().begin() + 1, c.header().end());
    std::vector<int64_t> counts;
    bool ok = K > 0 && c.rows() == K;
    for (size_t t = 0; ok && t < K; ++t)
      for (size_t p = 0; ok && p < K; ++p) {
        const std::optional<double> v = c.try_number(t, p + 1);
        ok = v && std::isfinite(*v) && *v >= 0;
        if (ok) counts.push_back(static_cast<int64_t>(*v));
      }
    if (!ok) CUVAE_FAIL(cm << ": expected a square table of counts under a header of class names");
    const std::string path = dir + "/confusion.png";
    plot_confusion(path, counts, names, "confusion matrix (test set; colour: fraction of the true class)");
    written.push_back(path);
  }
  return written;
}

}  // namespace cuvae
