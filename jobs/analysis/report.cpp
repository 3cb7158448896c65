#include "jobs/analysis/report.h"

#include <sys/stat.h>

#include <nlohmann/json.hpp>
#include <optional>
#include <sstream>

#include "core/check.h"
#include "io/base64.h"
#include "io/csv.h"
#include "io/fs.h"

namespace cuvae {

namespace {

std::string escape(const std::string& s) {
  std::string out;
  out.reserve(s.size());
  for (char c : s) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&quot;"; break;
      default: out += c;
    }
  }
  // A URL in the text stays text: "://" as "&#58;//" reads the same but is no link or reference.
  for (size_t p = out.find("://"); p != std::string::npos; p = out.find("://", p)) out.replace(p, 1, "&#58;");
  return out;
}

bool is_dir(const std::string& p) {
  struct stat st {};
  return ::stat(p.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
}

std::string number(double v) {
  char b[32];
  std::snprintf(b, sizeof b, "%.6g", v);
  return b;
}

// Pictures a folder may hold, in the order they are shown, with captions.
const std::vector<std::pair<std::string, std::string>>& known_pictures() {
  static const std::vector<std::pair<std::string, std::string>> p = {
      {"curves.png", "training curves"},
      {"samples.png", "samples from the prior"},
      {"samples_fitted.png", "an autoencoder's samples from a Gaussian fitted to its codes"},
      {"reconstructions.png", "test images (odd rows) and their reconstructions (even rows)"},
      {"traversal.png", "latent traversal: one row per dimension"},
      {"interpolation.png", "interpolation between test images"},
      {"arithmetic.png", "latent arithmetic: image, reconstruction, then a quarter, half, three quarters and all of the step"},
      {"embedding.png", "2-D map of the latent means"},
      {"anchored.png", "class-anchored samples"},
      {"confusion.png", "confusion matrix"},
      {"compare.png", "per run: reconstructions, prior samples and a PCA map of the latent means"},
      {"sweep_recon_kl.png", "test reconstruction and KL against latent size, one line per beta"},
      {"sweep_rate_distortion.png", "rate (KL) against distortion (recon) across beta, one line per latent size"},
      {"sweep_samples.png", "prior samples, one row per configuration"},
  };
  return p;
}

std::string table_from_csv(const std::string& path) {
  const CsvTable c = CsvTable::read(path);
  std::ostringstream h;
  h << "<table><tr>";
  for (const auto& n : c.header()) h << "<th>" << escape(n) << "</th>";
  h << "</tr>";
  for (size_t r = 0; r < c.rows(); ++r) {
    h << "<tr>";
    for (size_t k = 0; k < c.header().size(); ++k) {
      const std::optional<double> v = c.try_number(r, k);
      h << "<td>" << (v ? number(*v) : escape(c.text(r, k))) << "</td>";
    }
    h << "</tr>";
  }
  h << "</table>";
  return h.str();
}

std::string table_from_json_object(const nlohmann::json& j) {
  std::ostringstream h;
  h << "<table>";
  for (auto it = j.begin(); it != j.end(); ++it) {
    std::string v = it->is_string() ? it->get<std::string>() : it->dump();
    if (v.size() > 300) v = v.substr(0, 300) + "…";
    h << "<tr><th>" << escape(it.key()) << "</th><td>" << escape(v) << "</td></tr>";
  }
  h << "</table>";
  return h.str();
}

// A markdown table (| a | b |) as an HTML table; other lines as paragraphs.
std::string markdown_to_html(const std::string& md) {
  std::istringstream in(md);
  std::ostringstream h;
  std::string line;
  bool in_table = false, header = true;
  while (std::getline(in, line)) {
    if (!line.empty() && line[0] == '|') {
      if (line.find("---") != std::string::npos) continue;
      if (!in_table) {
        h << "<table>";
        in_table = true;
        header = true;
      }
      h << "<tr>";
      std::stringstream cells(line.substr(1));
      std::string cell;
      while (std::getline(cells, cell, '|')) {
        const size_t a = cell.find_first_not_of(' '), b = cell.find_last_not_of(' ');
        const std::string t = a == std::string::npos ? "" : cell.substr(a, b - a + 1);
        h << (header ? "<th>" : "<td>") << escape(t) << (header ? "</th>" : "</td>");
      }
      h << "</tr>";
      header = false;
    } else {
      if (in_table) h << "</table>";
      in_table = false;
      if (!line.empty()) {
        const bool heading = line[0] == '#';
        const std::string t = heading ? line.substr(line.find_first_not_of('#')) : line;
        h << (heading ? "<h4>" : "<p>") << escape(t) << (heading ? "</h4>" : "</p>");
      }
    }
  }
  if (in_table) h << "</table>";
  return h.str();
}

}  // namespace

std::string make_report(const ReportOptions& opt) {
  if (opt.runs.empty() && opt.sweeps.empty()) CUVAE_FAIL("report: give at least one folder with " << option("run") << " DIR or " << option("sweep") << " DIR");
  for (const std::string& dir : opt.sweeps)
    if (!file_exists(dir + "/sweep.md")) CUVAE_FAIL(option("sweep") << " " << dir << ": no sweep.md (not a folder written by cuvae sweep)");
  std::vector<std::string> folders = opt.runs;
  folders.insert(folders.end(), opt.sweeps.begin(), opt.sweeps.end());
  std::ostringstream body;
  for (const std::string& dir : folders) {
    if (!is_dir(dir)) CUVAE_FAIL(option("run") << " " << dir << ": no such folder");
    std::ostringstream sec;
    int items = 0;
    if (file_exists(dir + "/config.json")) {
      try {
        const nlohmann::json j = nlohmann::json::parse(read_file(dir + "/config.json"));
        if (j.is_object()) {
          sec << "<h3>configuration</h3>" << table_from_json_object(j);
          ++items;
        }
      } catch (const nlohmann::json::exception&) {
        sec << "<p class=\"note\">config.json is not valid JSON</p>";
      }
    }
    if (file_exists(dir + "/metrics.csv")) {
      sec << "<h3>metrics per epoch</h3>" << table_from_csv(dir + "/metrics.csv");
      ++items;
    }
    if (file_exists(dir + "/embed.json")) {
      try {
        nlohmann::json j = nlohmann::json::parse(read_file(dir + "/embed.json"));
        sec << "<h3>latent map</h3>" << table_from_json_object(j);
        ++items;
      } catch (const nlohmann::json::exception&) {
      }
    }
    if (file_exists(dir + "/validation.md")) {
      sec << "<h3>validation</h3>" << markdown_to_html(read_file(dir + "/validation.md"));
      ++items;
    }
    if (file_exists(dir + "/sweep.md")) {
      sec << "<h3>sweep</h3>" << markdown_to_html(read_file(dir + "/sweep.md"));
      ++items;
    } else if (file_exists(dir + "/compare.md")) {
      sec << "<h3>comparison</h3>" << markdown_to_html(read_file(dir + "/compare.md"));
      ++items;
    }
    for (const auto& [name, caption] : known_pictures()) {
      const std::string p = dir + "/" + name;
      if (!file_exists(p)) continue;
      sec << "<figure><img alt=\"" << escape(name) << "\" src=\"" << png_data_url(read_file(p)) << "\"><figcaption>"
          << escape(name) << ": " << escape(caption) << "</figcaption></figure>";
      ++items;
    }
    if (items == 0)
      CUVAE_FAIL(option("run") << " " << dir << ": nothing to report (no config.json, metrics.csv, embed.json, validation.md, "
                                     "compare.md or known PNG)");
    body << "<section><h2>" << escape(dir) << "</h2>" << sec.str() << "</section>";
  }
  std::ostringstream h;
  h << "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>" << escape(opt.title)
    << "</title><style>"
       "body{font-family:sans-serif;margin:2em auto;max-width:1200px;color:#222}"
       "h1{font-size:1.6em}h2{border-bottom:1px solid #ccc;padding-bottom:.2em;margin-top:2em}"
       "table{border-collapse:collapse;margin:.5em 0;font-size:.9em}th,td{border:1px solid #ddd;padding:.2em .5em;"
       "text-align:right}th{background:#f4f4f4}figure{margin:1em 0}img{max-width:100%;image-rendering:pixelated}"
       "figcaption{color:#555;font-size:.9em}.note{color:#a00}"
       "</style></head><body><h1>"
    << escape(opt.title) << "</h1>" << body.str() << "</body></html>\n";
  return h.str();
}

void write_report(const ReportOptions& opt, const std::string& path) {
  if (path.size() < 6 || path.substr(path.size() - 5) != ".html")
    CUVAE_FAIL(option("out") << " must name an .html file, got '" << path << "'");
  const std::string html = make_report(opt);
  const size_t slash = path.find_last_of('/');
  if (slash != std::string::npos && slash > 0) ensure_dir(path.substr(0, slash));
  write_file_atomic(path, html);
}

}  // namespace cuvae
