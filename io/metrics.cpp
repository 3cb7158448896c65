#include "io/metrics.h"

#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <sstream>

#include "core/check.h"
#include "io/fs.h"

namespace cuvae {

namespace {

std::string join(const std::vector<std::string>& v) {
  std::string s;
  for (size_t i = 0; i < v.size(); ++i) s += (i ? "," : "") + v[i];
  return s;
}

/// `columns` after checking them as MetricsCsv's header (throws naming `path`).
const std::vector<std::string>& checked_header(const std::string& path, const std::vector<std::string>& columns) {
  CUVAE_CHECK(!columns.empty(), path << ": metrics need at least one column");
  for (const auto& c : columns)
    CUVAE_CHECK(!c.empty() && c.find_first_of(",\"\r\n") == std::string::npos,
                path << ": bad column name '" << c << "' (non-empty, no comma, quote or line break)");
  return columns;
}

}  // namespace

std::string format_metric(double v) {
  if (std::isnan(v)) return "nan";
  if (std::isinf(v)) return v > 0 ? "inf" : "-inf";
  char buf[64];
  if (v == std::trunc(v) && std::fabs(v) < 1e15) {
    std::snprintf(buf, sizeof buf, "%lld", static_cast<long long>(v));
  } else {
    std::snprintf(buf, sizeof buf, "%.9g", v);
  }
  return buf;
}

std::string format_duration(double seconds) {
  if (!std::isfinite(seconds) || seconds < 0) return "?:??";
  const long long t = static_cast<long long>(seconds);
  char buf[48];
  if (t >= 3600) {
    std::snprintf(buf, sizeof buf, "%lld:%02lld:%02lld", t / 3600, (t / 60) % 60, t % 60);
  } else {
    std::snprintf(buf, sizeof buf, "%lld:%02lld", t / 60, t % 60);
  }
  return buf;
}

// ---- MetricsCsv -------------------------------------------------------------------------

MetricsCsv::MetricsCsv(std::string path, std::vector<std::string> columns, bool resume)
    : path_(std::move(path)), columns_(std::move(columns)), table_(checked_header(path_, columns_)) {
  if (resume && file_exists(path_)) {
    const std::string old = read_file(path_);
    if (old.find_first_not_of("\r\n") == std::string::npos)
      CUVAE_FAIL(path_ << ": file is empty, expected the header '" << join(columns_) << "'");
    const CsvTable t = CsvTable::parse(old, path_);
    if (t.header() != columns_)
      CUVAE_FAIL(path_ << ": header '" << join(t.header()) << "' does not match the expected '" << join(columns_)
                       << "' (resume into a run folder written by the same command)");
    for (size_t r = 0; r < t.rows(); ++r) {
      std::vector<std::string> fields;
      for (size_t k = 0; k < columns_.size(); ++k) fields.push_back(t.text(r, k));
      table_.add_row(fields);
    }
  }
  table_.write(path_);
}

void MetricsCsv::append(const std::vector<double>& values) {
  CUVAE_CHECK(values.size() == columns_.size(),
              path_ << ": row has " << values.size() << " values, expected " << columns_.size()
                    << " (" << join(columns_) << ")");
  std::vector<std::string> fields;
  for (double v : values) fields.push_back(format_metric(v));
  CsvWriter next = table_;
  next.add_row(fields);
  next.write(path_);
  table_ = std::move(next);
}

void MetricsCsv::keep_rows(int64_t n) {
  if (n < 0 || n >= rows()) return;
  CsvWriter next = table_;
  next.keep_rows(static_cast<size_t>(n));
  next.write(path_);
  table_ = std::move(next);
}

// ---- ProgressBar ------------------------------------------------------------------------

ProgressBar::ProgressBar(std::string label, int64_t total, bool enabled, std::FILE* out)
    : label_(std::move(label)),
      total_(total),
      enabled_(enabled),
      out_(out ? out : stderr),
      start_(std::chrono::steady_clock::now()),
      last_draw_(start_) {
  tty_ = enabled_ && ::isatty(::fileno(out_)) == 1;
}

ProgressBar::~ProgressBar() {
  if (drawn_ && !finished_) {
    std::fputc('\n', out_);
    std::fflush(out_);
  }
}

double ProgressBar::elapsed() const {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
}

std::string ProgressBar::line(int64_t done, const std::string& postfix, bool final) const {
  const double secs = elapsed();
  std::ostringstream os;
  os << label_;
  if (total_ > 0) {
    constexpr int kWidth = 24;
    const int64_t d = std::min(std::max<int64_t>(done, 0), total_);
    const int fill = static_cast<int>(d * kWidth / total_);
    os << " [" << std::string(fill, '#') << std::string(kWidth - fill, '.') << "] " << done
       << "/" << total_;
    char pct[16];
    std::snprintf(pct, sizeof pct, " %3d%%", static_cast<int>(d * 100 / total_));
    os << pct;
  } else {
    os << " " << done;
  }
  if (!postfix.empty()) os << "  " << postfix;
  os << "  elapsed " << format_duration(secs);
  if (!final && total_ > 0) {
    os << "  ETA ";
    if (done > 0 && done <= total_)
      os << format_duration(secs * static_cast<double>(total_ - done) / static_cast<double>(done));
    else
      os << "?:??";
  }
  return os.str();
}

void ProgressBar::emit(const std::string& text, bool newline) {
  if (tty_) {
    std::string s = "\r" + text;
    if (text.size() < last_len_) s.append(last_len_ - text.size(), ' ');
    std::fputs(s.c_str(), out_);
    last_len_ = text.size();
    drawn_ = !newline;
  } else {
    std::fputs(text.c_str(), out_);
  }
  if (newline) {
    std::fputc('\n', out_);
    last_len_ = 0;
  }
  std::fflush(out_);
}

void ProgressBar::update(int64_t done, const std::string& postfix) {
  if (!enabled_ || finished_) return;
  last_done_ = done;
  if (tty_) {
    const auto now = std::chrono::steady_clock::now();
    if (drawn_ && now - last_draw_ < std::chrono::milliseconds(100)) return;
    last_draw_ = now;
    emit(line(done, postfix, false), false);
    return;
  }
  if (total_ <= 0) return;
  const int step = static_cast<int>(std::min<int64_t>(std::max<int64_t>(done, 0), total_) * 10 / total_);
  if (step > last_step_ && step >= 1 && step < 10) {
    last_step_ = step;
    emit(line(done, postfix, false), true);
  }
}

void ProgressBar::finish(const std::string& postfix) {
  if (!enabled_ || finished_) return;
  finished_ = true;
  emit(line(total_ > 0 ? total_ : last_done_, postfix, true), true);
  drawn_ = false;
}

}  // namespace cuvae
