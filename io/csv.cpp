#include "io/csv.h"

#include <cmath>
#include <cstdlib>

#include "core/check.h"
#include "io/fs.h"

namespace cuvae {

namespace {

/// One record of `text` from `i` on: its fields, whether any was quoted, and `i`/`line` moved
/// past its line end. Throws for a quote that is never closed or text after a closing quote.
struct Record {
  std::vector<std::string> fields;
  bool quoted = false;
};

Record next_record(const std::string& text, size_t& i, int64_t& line, const std::string& source) {
  const size_t n = text.size();
  Record r;
  for (;;) {
    std::string f;
    if (i < n && text[i] == '"') {
      r.quoted = true;
      const int64_t opened = line;
      ++i;
      for (;;) {
        CUVAE_REQUIRE(i < n, source << ": line " << opened << ": a quoted field is never closed");
        const char c = text[i];
        if (c == '"') {
          if (i + 1 < n && text[i + 1] == '"') {
            f += '"';
            i += 2;
            continue;
          }
          ++i;
          break;
        }
        if (c == '\n') ++line;
        f += c;
        ++i;
      }
      const bool at_end = i >= n || text[i] == ',' || text[i] == '\n' ||
                          (text[i] == '\r' && (i + 1 >= n || text[i + 1] == '\n'));
      CUVAE_REQUIRE(at_end, source << ": line " << line << ": text after the closing quote of a field");
    } else {
      while (i < n && text[i] != ',' && text[i] != '\n') {
        CUVAE_REQUIRE(text[i] != '"', source << ": line " << line
                                             << ": '\"' inside an unquoted field (a field with quotes must be quoted whole)");
        f += text[i++];
      }
      if (!f.empty() && f.back() == '\r' && (i >= n || text[i] == '\n')) f.pop_back();
    }
    r.fields.push_back(std::move(f));
    if (i < n && text[i] == ',') {
      ++i;
      continue;
    }
    if (i < n && text[i] == '\r') ++i;
    if (i < n && text[i] == '\n') {
      ++i;
      ++line;
    }
    return r;
  }
}

bool needs_quotes(const std::string& s) { return s.find_first_of(",\"\r\n") != std::string::npos; }

/// The fields as one CSV line ending in '\n'. A row of one empty field is written as "" so that
/// it does not read back as a blank line.
std::string csv_line(const std::vector<std::string>& fields) {
  std::string out;
  for (size_t k = 0; k < fields.size(); ++k) {
    if (k) out += ',';
    const std::string& s = fields[k];
    if (needs_quotes(s) || (fields.size() == 1 && s.empty())) {
      out += '"';
      for (char c : s) {
        if (c == '"') out += '"';
        out += c;
      }
      out += '"';
    } else {
      out += s;
    }
  }
  out += '\n';
  return out;
}

}  // namespace

// ---- CsvTable --------------------------------------------------------------------------

CsvTable CsvTable::parse(const std::string& text, const std::string& source) {
  CsvTable t;
  t.source_ = source;
  bool have_header = false;
  size_t i = 0;
  int64_t line = 1;
  while (i < text.size()) {
    const int64_t start = line;
    Record r = next_record(text, i, line, source);
    if (r.fields.size() == 1 && r.fields[0].empty() && !r.quoted) continue;  // a blank line
    if (!have_header) {
      t.header_ = std::move(r.fields);
      have_header = true;
      continue;
    }
    CUVAE_REQUIRE(r.fields.size() == t.header_.size(), source << ": line " << start << " has " << r.fields.size()
                                                              << " fields, expected " << t.header_.size());
    t.rows_.push_back(std::move(r.fields));
    t.lines_.push_back(start);
  }
  CUVAE_REQUIRE(have_header, source << ": empty file (expected a CSV header)");
  return t;
}

CsvTable CsvTable::read(const std::string& path) {
  CUVAE_REQUIRE(file_exists(path), path << ": no such file");
  return parse(read_file(path), path);
}

std::optional<size_t> CsvTable::find(const std::string& name) const {
  for (size_t k = 0; k < header_.size(); ++k)
    if (header_[k] == name) return k;
  return std::nullopt;
}

size_t CsvTable::column(const std::string& name) const {
  if (const std::optional<size_t> k = find(name)) return *k;
  std::string names;
  for (size_t k = 0; k < header_.size(); ++k) names += (k ? ", " : "") + header_[k];
  CUVAE_FAIL(source_ << ": no column '" << name << "' (columns: " << names << ")");
}

void CsvTable::check_cell(size_t row, size_t col) const {
  CUVAE_CHECK(row < rows_.size() && col < header_.size(),
              source_ << ": no field at row " << row << ", column " << col << " (" << rows_.size() << " rows, "
                      << header_.size() << " columns)");
}

const std::string& CsvTable::text(size_t row, size_t col) const {
  check_cell(row, col);
  return rows_[row][col];
}

std::optional<double> CsvTable::try_number(size_t row, size_t col) const {
  const std::string& s = text(row, col);
  const size_t b = s.find_first_not_of(" \t");
  if (b == std::string::npos) return std::nan("");
  const size_t e = s.find_last_not_of(" \t") + 1;
  const std::string t = s.substr(b, e - b);
  char* end = nullptr;
  const double v = std::strtod(t.c_str(), &end);
  if (end != t.c_str() + t.size()) return std::nullopt;
  return v;
}

double CsvTable::number(size_t row, size_t col) const {
  if (const std::optional<double> v = try_number(row, col)) return *v;
  CUVAE_FAIL(source_ << ": line " << lines_[row] << ", column '" << header_[col] << "': expected a number, got '"
                     << rows_[row][col] << "'");
}

std::vector<double> CsvTable::numbers(const std::string& name) const {
  const size_t col = column(name);
  std::vector<double> v;
  v.reserve(rows_.size());
  for (size_t r = 0; r < rows_.size(); ++r) v.push_back(number(r, col));
  return v;
}

int64_t CsvTable::line(size_t row) const {
  CUVAE_CHECK(row < lines_.size(), source_ << ": no row " << row << " (" << lines_.size() << " rows)");
  return lines_[row];
}

// ---- CsvWriter -------------------------------------------------------------------------

CsvWriter::CsvWriter(const std::vector<std::string>& header) : width_(header.size()), text_(csv_line(header)) {
  CUVAE_CHECK(width_ > 0, "CsvWriter: a table needs at least one column");
  header_end_ = text_.size();
}

void CsvWriter::add_row(const std::vector<std::string>& fields) {
  CUVAE_CHECK(fields.size() == width_, "CsvWriter: row has " << fields.size() << " fields, expected " << width_);
  text_ += csv_line(fields);
  row_ends_.push_back(text_.size());
}

void CsvWriter::keep_rows(size_t n) {
  if (n >= row_ends_.size()) return;
  text_.resize(n == 0 ? header_end_ : row_ends_[n - 1]);
  row_ends_.resize(n);
}

void CsvWriter::write(const std::string& path) const { write_file_atomic(path, text_); }

}  // namespace cuvae
