// Training logs: a CSV metrics file that is never half-written, a progress bar and durations.
#pragma once

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <string>
#include <vector>

#include "io/csv.h"

namespace cuvae {

/// A CSV file of numeric rows under a fixed header (e.g. epoch,train_loss,test_recon,...).
///
/// Every change rewrites the whole file atomically (write_file_atomic), so after a crash
/// the file holds the header and every row appended before it, never a partial row.
class MetricsCsv {
 public:
  /// Opens `path` with header `columns` (non-empty names without ',', '"' or line breaks).
  /// With `resume` = false, or when `path` does not exist, (re)creates the file holding only
  /// the header. With `resume` = true and an existing file, keeps its rows; throws
  /// cuvae::Error "<path>: ..." when its header differs from `columns` or a row has the
  /// wrong number of fields. Throws when the file cannot be written.
  MetricsCsv(std::string path, std::vector<std::string> columns, bool resume);

  /// Adds one row (`values.size()` must equal the number of columns) and rewrites the
  /// file. Integral values print as integers, others with 9 significant digits ("%.9g").
  void append(const std::vector<double>& values);

  /// Keeps only the first `n` data rows (those of epochs a resumed run has state for: a row
  /// written just before an interruption whose state was not saved is dropped) and rewrites the
  /// file when that removed any. Throws when the file cannot be written.
  void keep_rows(int64_t n);

  /// The file's path.
  const std::string& path() const { return path_; }
  /// The header's column names.
  const std::vector<std::string>& columns() const { return columns_; }
  /// Number of data rows in the file (kept from a resumed file plus those appended).
  int64_t rows() const { return static_cast<int64_t>(table_.rows()); }

 private:
  std::string path_;
  std::vector<std::string> columns_;
  CsvWriter table_;  // the whole file as last written
};

/// Formats one CSV number: integers (|v| < 1e15) without a decimal point, else "%.9g";
/// "nan", "inf", "-inf" for non-finite values.
std::string format_metric(double v);

/// "m:ss" below an hour, "h:mm:ss" from an hour on (e.g. 65 → "1:05", 3723 → "1:02:03");
/// fractions of a second are dropped, negative or non-finite input gives "?:??".
std::string format_duration(double seconds);

/// A text progress bar for one pass over `total` items, written to stderr:
/// `label [#########...............] 450/1000  45%  <postfix>  elapsed 0:12  ETA 0:15`
/// (times from a steady clock; the ETA extrapolates the average rate so far). On a terminal the line is
/// redrawn in place with '\r' at most ~10 times a second; otherwise (a log file, CI) a
/// line is printed only at each new 10% step. Disabled bars print nothing.
class ProgressBar {
 public:
  /// A bar for `total` items (≤ 0: unknown, no bar or ETA). `out` defaults to stderr;
  /// output to anything but a terminal uses the line-per-10% mode.
  ProgressBar(std::string label, int64_t total, bool enabled = true, std::FILE* out = nullptr);
  /// Ends a drawn but unfinished terminal line with a newline.
  ~ProgressBar();
  ProgressBar(const ProgressBar&) = delete;
  ProgressBar& operator=(const ProgressBar&) = delete;

  /// Reports `done` items finished; `postfix` (e.g. "loss 101.2  5400 img/s") follows the
  /// percentage. Cheap when nothing is drawn.
  void update(int64_t done, const std::string& postfix = "");
  /// Prints the final line (done = total, total elapsed time) and a newline; later calls
  /// to update() or finish() print nothing.
  void finish(const std::string& postfix = "");
  /// Seconds since construction.
  double elapsed() const;

 private:
  std::string line(int64_t done, const std::string& postfix, bool final) const;
  void emit(const std::string& text, bool newline);

  std::string label_;
  int64_t total_;
  bool enabled_;
  std::FILE* out_;
  bool tty_ = false;
  bool finished_ = false;
  bool drawn_ = false;      // a terminal line is on screen without its newline
  size_t last_len_ = 0;     // length of the last terminal line, for blanking
  int last_step_ = -1;      // last 10% step printed (non-terminal mode)
  int64_t last_done_ = 0;
  std::chrono::steady_clock::time_point start_, last_draw_;
};

}  // namespace cuvae
