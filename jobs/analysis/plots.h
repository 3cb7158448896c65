// Pictures of a run folder: training curves (curves.png) from metrics.csv and the classifier's
// labelled confusion matrix (confusion.png) from confusion.csv. The trainers call these at the
// end of a run and `cuvae plot --run DIR` redraws any run folder.
#pragma once

#include <cstdint>
#include <ostream>
#include <string>
#include <vector>

namespace cuvae {

/// A CSV file's columns as numbers (CsvTable::try_number; text that is not a number is NaN).
/// Code that needs names, text or errors on bad values reads a CsvTable (io/csv.h) instead.
struct CsvColumns {
  std::vector<std::string> names;
  std::vector<std::vector<double>> columns;  ///< [names.size()][rows]
  /// The column called `name`, or nullptr.
  const std::vector<double>* find(const std::string& name) const;
};

/// Reads `path` (CsvTable::read) as CsvColumns. Throws cuvae::Error naming the path when it is
/// missing, empty or not valid CSV.
CsvColumns read_csv_columns(const std::string& path);

/// Writes `dir`/curves.png from `dir`/metrics.csv: for a VAE run (columns test_recon, test_kl)
/// two panels, nats per image per epoch (train loss, test recon, test −ELBO = recon + KL) and the
/// test KL; for a classifier run (train_acc, test_acc) three panels: train and test loss, train
/// and test accuracy, learning rate. Returns the path written. Throws cuvae::Error naming the
/// folder when it has no metrics.csv or the columns are neither kind, and when plots are
/// unavailable (see plot_available()).
std::string plot_curves(const std::string& dir);

/// plot_curves(dir) for the end of a training run: logs "wrote …", or one note line when plots are
/// unavailable or fail (the run itself has succeeded, so this never throws).
void write_curves_or_note(const std::string& dir, std::ostream& log);

/// Writes `path` (confusion.png): the row-normalised confusion matrix `confusion` [K, K] (counts,
/// row = true class) as a white-to-blue heat map with the counts in the cells, class names on both axes
/// and axis titles. Throws cuvae::Error as heatmap_png does.
void plot_confusion(const std::string& path, const std::vector<int64_t>& confusion, const std::vector<std::string>& names,
                    const std::string& title);

/// Redraws every picture a run folder's files allow: curves.png (metrics.csv) and, where
/// confusion.csv exists, confusion.png. Returns the paths written. Throws cuvae::Error naming the
/// folder when it has no metrics.csv.
std::vector<std::string> plot_run(const std::string& dir);

}  // namespace cuvae
