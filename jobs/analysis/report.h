// `cuvae report`: one self-contained HTML page (images inlined as data URLs, no scripts, no
// network) gathering what run folders and analysis folders already hold: configuration, the
// metrics table, curves, samples, reconstructions, traversals, interpolations, maps and
// validation tables. It reads files only; nothing is recomputed.
#pragma once

#include <string>
#include <vector>

namespace cuvae {

/// What goes into a report.
struct ReportOptions {
  std::vector<std::string> runs;  ///< run or analysis folders (train-vae, train-classifier, validate, embed, compare, …)
  std::vector<std::string> sweeps;  ///< folders written by `cuvae sweep` (sweep.md and its plots)
  std::string title = "cuvae report";
};

/// The report as HTML text. Each folder gets a section: config.json as a table, metrics.csv as
/// a table, every known picture present (curves.png, samples.png, reconstructions.png,
/// traversal.png, interpolation.png, arithmetic.png, embedding.png, confusion.png, anchored.png)
/// inlined as a PNG data URL with a caption, validation.md, compare.md, sweep.md and embed.json's
/// numbers (with compare.png and the sweep's plots among the pictures); opt.sweeps follow opt.runs. Text is
/// HTML-escaped, and "://" in text is written as "&#58;//", so the page holds no http:// or
/// https:// reference and makes no request. Throws cuvae::Error naming the folder when one does not exist or holds none of
/// these files, or when a --sweep folder has no sweep.md.
std::string make_report(const ReportOptions& opt);

/// Writes make_report(opt) to `path` atomically. Throws cuvae::Error naming --out when `path`
/// does not end in .html, and the errors of make_report.
void write_report(const ReportOptions& opt, const std::string& path);

}  // namespace cuvae
