// CSV files (RFC 4180): the one reader and the one writer for every table cuvae writes or reads
// back (metrics.csv, confusion.csv, per_class.csv, sweep.csv, embedding.csv, ...).
//
// Fields are separated by ','; a field holding ',', '"', CR or LF is enclosed in '"' with each
// inner '"' doubled. The reader accepts LF and CRLF line ends and skips blank lines; the writer
// writes LF and quotes only the fields that need it, so a table of plain names and numbers is the
// same bytes as the fields joined with ','.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace cuvae {

/// A CSV table: a header of column names, then rows of text fields, each row exactly as wide as
/// the header. Columns are found by name; fields are read as text or as numbers.
class CsvTable {
 public:
  /// An empty table (no header, no rows) named "".
  CsvTable() = default;

  /// Parses `text`; `source` (a path) names the table in errors. Throws cuvae::Error
  /// "<source>: empty file (expected a CSV header)" when there is no header line,
  /// "<source>: line L has N fields, expected M" for a row of the wrong width,
  /// "<source>: line L: ..." for a quote that is never closed or text after a closing quote.
  static CsvTable parse(const std::string& text, const std::string& source);

  /// parse(read_file(path), path). Throws cuvae::Error "<path>: no such file" when it is missing,
  /// and as parse() does.
  static CsvTable read(const std::string& path);

  /// The name given to parse() or read().
  const std::string& source() const { return source_; }
  /// The header's column names, in file order.
  const std::vector<std::string>& header() const { return header_; }
  /// Number of data rows (blank lines are not rows).
  size_t rows() const { return rows_.size(); }

  /// Index of the first column called `name`, or std::nullopt.
  std::optional<size_t> find(const std::string& name) const;
  /// Index of the first column called `name`. Throws cuvae::Error
  /// "<source>: no column 'name' (columns: a, b, ...)" when there is none.
  size_t column(const std::string& name) const;

  /// The text of row `row` (0-based data row), column `col`, without quotes. Throws cuvae::Error
  /// when either is out of range.
  const std::string& text(size_t row, size_t col) const;

  /// The field as a number: a decimal or "nan"/"inf"/"-inf" (what format_metric writes; spaces
  /// around it are ignored), NaN for an empty field (a missing value), std::nullopt for any
  /// other text. Throws cuvae::Error when `row` or `col` is out of range.
  std::optional<double> try_number(size_t row, size_t col) const;
  /// try_number(row, col), or cuvae::Error "<source>: line L, column 'name': expected a number,
  /// got 'text'" when the field is not a number.
  double number(size_t row, size_t col) const;
  /// Every row's number(row, column(name)), in row order. Throws as column() and number() do.
  std::vector<double> numbers(const std::string& name) const;

  /// The 1-based line of the file on which data row `row` starts.
  int64_t line(size_t row) const;

 private:
  void check_cell(size_t row, size_t col) const;

  std::string source_;
  std::vector<std::string> header_;
  std::vector<std::vector<std::string>> rows_;
  std::vector<int64_t> lines_;  // lines_[r]: the line on which rows_[r] starts
};

/// Builds a CSV file in memory, one row at a time, under a fixed header, and writes it with
/// write_file_atomic: readers never see a half-written table.
class CsvWriter {
 public:
  /// A table with the column names `header` (at least one).
  explicit CsvWriter(const std::vector<std::string>& header);

  /// Appends one row; `fields` must have as many entries as the header (else cuvae::Error).
  void add_row(const std::vector<std::string>& fields);
  /// Number of data rows added (and kept).
  size_t rows() const { return row_ends_.size(); }
  /// Drops every data row after the first `n` (nothing when n ≥ rows()).
  void keep_rows(size_t n);

  /// The whole file: the header line, then one line per row, each ending in '\n'.
  const std::string& text() const { return text_; }
  /// write_file_atomic(path, text()). Throws cuvae::Error naming `path` when it cannot be written.
  void write(const std::string& path) const;

 private:
  size_t width_;
  std::string text_;
  size_t header_end_ = 0;         // text_.size() after the header line
  std::vector<size_t> row_ends_;  // text_.size() after each row
};

}  // namespace cuvae
