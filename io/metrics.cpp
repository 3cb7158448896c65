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

size_t count_fields(const std::string& line) {
  size_t n = 1;
  for (char ch : line) n += ch == ',';
  return n;
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
    : path_(std::move(path)), columns_(std::move(columns)) {
  CUVAE_CHECK(!columns_.empty(), path_ << ": metrics need at least one column");
  for (const auto& c : columns_)
    CUVAE_CHECK(!c.empty() && c.find_first_of(",\"\r\n") == std::string::npos,
                path_ << ": bad column name '" << c << "' (non-empty, no comma, quote or line break)");
  const std::string header = join(columns_);
  if (resume && file_exists(path_)) {
    const std::string old = read_file(path_);
    std::istringstream in(old);
    std::string line;
    int64_t lineno = 0;
    while (std::getline(in, line)) {
      ++lineno;
      if (!line.empty() && line.back() == '\r') line.pop_back();
      if (lineno == 1) {
        if (line != header)
          CUVAE_FAIL(path_ << ": header '" << line << "' does not match the expected '" << header
                           << "' (resume into a run folder written by the same command)");
        content_ = header + "\n";
        continue;
      }
      if (line.empty()) continue;
      if (count_fields(line) != columns_.size())
        CUVAE_FAIL(path_ << ": line " << lineno << " has " << count_fields(line)
                         << " fields, expected " << columns_.size());
      content_ += line + "\n";
      ++rows_;
    }
    if (lineno == 0)
      CUVAE_FAIL(path_ << ": file is empty, expected the header '" << header << "'");
  } else {
    content_ = header + "\n";
  }
  write_file_atomic(path_, content_);
}

void MetricsCsv::append(const std::vector<double>& values) {
  CUVAE_CHECK(values.size() == columns_.size(),
              path_ << ": row has " << values.size() << " values, expected " << columns_.size()
                    << " (" << join(columns_) << ")");
  std::string row;
  for (size_t i = 0; i < values.size(); ++i) row += (i ? "," : "") + format_metric(values[i]);
  std::string next = content_ + row + "\n";
  write_file_atomic(path_, next);
  content_ = std::move(next);
  ++rows_;
}

void MetricsCsv::keep_rows(int64_t n) {
  if (n < 0 || n >= rows_) return;
  size_t pos = content_.find('\n');  // end of the header
  for (int64_t r = 0; r < n && pos != std::string::npos; ++r) pos = content_.find('\n', pos + 1);
  if (pos == std::string::npos) return;
  std::string next = content_.substr(0, pos + 1);
  write_file_atomic(path_, next);
  content_ = std::move(next);
  rows_ = n;
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
