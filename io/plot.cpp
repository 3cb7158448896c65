#include "io/plot.h"

#include <unistd.h>

#include <algorithm>
#include <cstdint>
#include <cmath>
#include <cstdio>
#include <limits>
#include <mutex>

#include "core/check.h"
#include "io/fs.h"
#include "io/image.h"

#ifdef CUVAE_HAS_PLPLOT
#include <plplot.h>
#endif

namespace cuvae {

bool plot_available() {
#ifdef CUVAE_HAS_PLPLOT
  return true;
#else
  return false;
#endif
}

#ifdef CUVAE_HAS_PLPLOT
namespace {

// PLplot keeps global state: one plot at a time in the process.
std::mutex& plot_mutex() {
  static std::mutex m;
  return m;
}

// Tableau 10 (matplotlib's default cycle).
constexpr int kPalette[10][3] = {{31, 119, 180}, {255, 127, 14}, {44, 160, 44},  {214, 39, 40},   {148, 103, 189},
                                 {140, 86, 75},  {227, 119, 194}, {127, 127, 127}, {188, 189, 34}, {23, 190, 207}};

struct Range {
  double lo = std::numeric_limits<double>::infinity(), hi = -std::numeric_limits<double>::infinity();
  void add(double v) {
    lo = std::min(lo, v);
    hi = std::max(hi, v);
  }
  /// Widens the range by `frac` of its span on each side; a single value gets ±`flat`.
  void pad(double frac, double flat) {
    const double span = hi - lo;
    if (!(span > 0)) {
      lo -= flat;
      hi += flat;
      return;
    }
    lo -= frac * span;
    hi += frac * span;
  }
};

// Opens a PNG page of width×height on `tmp` (PLplot's pngcairo driver) with nx×ny subpages.
void begin_page(const std::string& tmp, int width, int height, int nx, int ny) {
  plsdev("pngcairo");
  plsfnam(tmp.c_str());
  const std::string geometry = std::to_string(width) + "x" + std::to_string(height);
  plsetopt("geometry", geometry.c_str());
  plscolbg(255, 255, 255);
  plscol0(1, 0, 0, 0);  // axes and text in black
  plssub(nx, ny);
  plinit();
  plfontld(1);
}

// Closes the page and writes what PLplot drew into `tmp` to `path` through write_file_atomic
// (as every file cuvae writes), removing `tmp`.
void end_page(const std::string& tmp, const std::string& path) {
  plend();
  if (!file_exists(tmp)) CUVAE_FAIL(path << ": PLplot wrote no file (is plplot-driver-cairo installed?)");
  std::string bytes;
  try {
    bytes = read_file(tmp);
  } catch (const Error&) {
    std::remove(tmp.c_str());
    throw;
  }
  std::remove(tmp.c_str());
  write_file_atomic(path, bytes);
}

std::string temp_name(const std::string& path) { return path + ".tmp." + std::to_string(::getpid()) + ".png"; }

void check_size(const std::string& path, int width, int height) {
  if (width < 100 || height < 100 || width > 8000 || height > 8000)
    CUVAE_FAIL(path << ": plot size " << width << "x" << height << " out of range");
}

// Draws one chart on the current subpage: axes, labels, the series and a legend on the right.
// Returns false when there was nothing finite to draw.
bool draw_panel(const std::vector<PlotSeries>& series, const PlotLabels& labels, bool lines, bool logy, double point_size) {
  auto ty = [&](double y) { return logy ? (y > 0 ? std::log10(y) : std::nan("")) : y; };
  Range rx, ry;
  int64_t points = 0;
  for (const PlotSeries& s : series) {
    CUVAE_CHECK(s.x.size() == s.y.size(), "plot: series '" << s.name << "' has " << s.x.size() << " x and " << s.y.size() << " y values");
    for (size_t i = 0; i < s.x.size(); ++i) {
      const double y = ty(s.y[i]);
      if (!std::isfinite(s.x[i]) || !std::isfinite(y)) continue;
      rx.add(s.x[i]);
      ry.add(y);
      ++points;
    }
  }
  if (points == 0) return false;
  rx.pad(lines ? 0.02 : 0.04, 0.5);
  ry.pad(0.05, logy ? 1.0 : std::max(1e-3, 0.1 * std::abs(ry.lo)));
  pladv(0);
  plvpor(0.22, 0.68, 0.2, 0.88);  // room on the left for the y label beside the tick labels
  plwind(rx.lo, rx.hi, ry.lo, ry.hi);
  plcol0(1);
  plschr(0, 0.9);
  plbox("bcnst", 0, 0, logy ? "bcnstvl" : "bcnstv", 0, 0);
  pllab(labels.xlabel.c_str(), labels.ylabel.c_str(), labels.title.c_str());
  const int ns = static_cast<int>(series.size());
  const size_t nz = static_cast<size_t>(ns);
  std::vector<PLINT> opt(nz), colors(nz), line_styles(nz, 1), symbol_numbers(nz, 1), box_c(nz, 0), box_p(nz, 0);
  std::vector<PLFLT> symbol_scales(nz, lines ? 0.8 : 1.2), line_widths(nz, 2.0), box_s(nz, 1.0), box_w(nz, 1.0);
  std::vector<const char*> text(nz), symbols(nz, "\u2022");
  for (int i = 0; i < ns; ++i) {
    const int ci = 2 + (i % 10);
    plscol0(ci, kPalette[i % 10][0], kPalette[i % 10][1], kPalette[i % 10][2]);
    colors[static_cast<size_t>(i)] = ci;
    opt[static_cast<size_t>(i)] = lines ? (PL_LEGEND_LINE | PL_LEGEND_SYMBOL) : PL_LEGEND_SYMBOL;
    text[static_cast<size_t>(i)] = series[static_cast<size_t>(i)].name.c_str();
    const PlotSeries& s = series[static_cast<size_t>(i)];
    std::vector<PLFLT> xs, ys;
    for (size_t k = 0; k < s.x.size(); ++k) {
      const double y = ty(s.y[k]);
      if (std::isfinite(s.x[k]) && std::isfinite(y)) {
        xs.push_back(s.x[k]);
        ys.push_back(y);
      }
    }
    if (xs.empty()) continue;
    plcol0(ci);
    plwidth(2.0);
    if (lines) plline(static_cast<PLINT>(xs.size()), xs.data(), ys.data());
    plssym(0, lines ? 0.7 : point_size);
    plstring(static_cast<PLINT>(xs.size()), xs.data(), ys.data(), "\u2022");
  }
  plwidth(1.0);
  plcol0(1);
  // The legend to the right of the plot area.
  plwind(0, 1, 0, 1);
  PLFLT lw = 0, lh = 0;
  plssym(0, 1.0);
  pllegend(&lw, &lh, PL_LEGEND_BACKGROUND | PL_LEGEND_BOUNDING_BOX, PL_POSITION_OUTSIDE | PL_POSITION_RIGHT, 0.02, 0.0,
           0.08, 0, 1, 1, 0, 0, ns, opt.data(), 1.0, 0.85, 2.0, 0.0, colors.data(), text.data(), box_c.data(),
           box_p.data(), box_s.data(), box_w.data(), colors.data(), line_styles.data(), line_widths.data(), colors.data(),
           symbol_scales.data(), symbol_numbers.data(), symbols.data());
  return true;
}

void plot_png(const std::string& path, const std::vector<PlotSeries>& series, const PlotLabels& labels, int width,
              int height, bool lines, bool logy, double point_size) {
  check_size(path, width, height);
  bool any = false;
  for (const PlotSeries& s : series)
    for (size_t i = 0; i < s.x.size() && i < s.y.size(); ++i)
      any = any || (std::isfinite(s.x[i]) && std::isfinite(s.y[i]) && (!logy || s.y[i] > 0));
  if (!any) CUVAE_FAIL(path << ": nothing to plot (no finite values)");
  std::lock_guard<std::mutex> lock(plot_mutex());
  const std::string tmp = temp_name(path);
  begin_page(tmp, width, height, 1, 1);
  draw_panel(series, labels, lines, logy, point_size);
  end_page(tmp, path);
}

}  // namespace
#endif

void scatter_plot_png(const std::string& path, const std::vector<PlotSeries>& series, const PlotLabels& labels, int width,
                      int height, double point_size) {
#ifdef CUVAE_HAS_PLPLOT
  plot_png(path, series, labels, width, height, false, false, point_size);
#else
  (void)series; (void)labels; (void)width; (void)height; (void)point_size;
  CUVAE_FAIL(path << ": plots are unavailable: this build of cuvae has no PLplot (install libplplot-dev and plplot-driver-cairo)");
#endif
}

void line_plot_png(const std::string& path, const std::vector<PlotSeries>& series, const PlotLabels& labels, int width,
                   int height, bool logy) {
#ifdef CUVAE_HAS_PLPLOT
  plot_png(path, series, labels, width, height, true, logy, 0.7);
#else
  (void)series; (void)labels; (void)width; (void)height; (void)logy;
  CUVAE_FAIL(path << ": plots are unavailable: this build of cuvae has no PLplot (install libplplot-dev and plplot-driver-cairo)");
#endif
}

void line_panels_png(const std::string& path, const std::vector<PlotPanel>& panels, int width, int height) {
#ifdef CUVAE_HAS_PLPLOT
  check_size(path, width, height);
  if (panels.empty()) CUVAE_FAIL(path << ": nothing to plot (no panels)");
  bool any = false;
  for (const PlotPanel& p : panels)
    for (const PlotSeries& s : p.series)
      for (size_t i = 0; i < s.x.size() && i < s.y.size(); ++i) any = any || (std::isfinite(s.x[i]) && std::isfinite(s.y[i]));
  if (!any) CUVAE_FAIL(path << ": nothing to plot (no finite values)");
  std::lock_guard<std::mutex> lock(plot_mutex());
  const std::string tmp = temp_name(path);
  begin_page(tmp, width, height, static_cast<int>(panels.size()), 1);
  for (const PlotPanel& p : panels)
    if (!draw_panel(p.series, p.labels, true, p.logy, 0.7)) pladv(0);  // an empty panel stays blank
  end_page(tmp, path);
#else
  (void)panels; (void)width; (void)height;
  CUVAE_FAIL(path << ": plots are unavailable: this build of cuvae has no PLplot (install libplplot-dev and plplot-driver-cairo)");
#endif
}

void heatmap_png(const std::string& path, const std::vector<double>& values, const std::vector<std::string>& cell_text,
                 const std::vector<std::string>& row_names, const std::vector<std::string>& col_names,
                 const PlotLabels& labels, int width, int height) {
#ifdef CUVAE_HAS_PLPLOT
  check_size(path, width, height);
  const int rows = static_cast<int>(row_names.size()), cols = static_cast<int>(col_names.size());
  if (rows < 1 || cols < 1 || values.size() != static_cast<size_t>(rows) * cols ||
      (!cell_text.empty() && cell_text.size() != values.size()))
    CUVAE_FAIL(path << ": heat map needs rows x cols values (got " << values.size() << " for " << rows << "x" << cols << ")");
  std::lock_guard<std::mutex> lock(plot_mutex());
  const std::string tmp = temp_name(path);
  begin_page(tmp, width, height, 1, 1);
  // Colour map 1: white to dark blue (as matplotlib's "Blues"), so small fractions stay light.
  auto blues = [](double t, double rgb[3]) {
    static const double lo[3] = {247, 251, 255}, mid[3] = {107, 174, 214}, hi[3] = {8, 48, 107};
    for (int k = 0; k < 3; ++k)
      rgb[k] = t < 0.5 ? lo[k] + (mid[k] - lo[k]) * (t / 0.5) : mid[k] + (hi[k] - mid[k]) * ((t - 0.5) / 0.5);
  };
  std::vector<PLINT> r(256), g(256), b(256);
  for (int i = 0; i < 256; ++i) {
    double rgb[3];
    blues(i / 255.0, rgb);
    r[static_cast<size_t>(i)] = static_cast<PLINT>(std::lround(rgb[0]));
    g[static_cast<size_t>(i)] = static_cast<PLINT>(std::lround(rgb[1]));
    b[static_cast<size_t>(i)] = static_cast<PLINT>(std::lround(rgb[2]));
  }
  plscmap1(r.data(), g.data(), b.data(), 256);
  pladv(0);
  plvpor(0.2, 0.92, 0.16, 0.88);
  plwind(0, cols, 0, rows);
  for (int t = 0; t < rows; ++t)
    for (int p = 0; p < cols; ++p) {
      const double v = values[static_cast<size_t>(t) * cols + p];
      const double c = std::isfinite(v) ? std::clamp(v, 0.0, 1.0) : 0.0;
      PLFLT xs[4] = {static_cast<PLFLT>(p), static_cast<PLFLT>(p + 1), static_cast<PLFLT>(p + 1), static_cast<PLFLT>(p)};
      const PLFLT y0 = rows - t - 1, y1 = rows - t;
      PLFLT ys[4] = {y0, y0, y1, y1};
      plcol1(c);
      plfill(4, xs, ys);
      if (!cell_text.empty()) {
        double rgb[3];
        blues(c, rgb);
        const bool light = 0.299 * rgb[0] + 0.587 * rgb[1] + 0.114 * rgb[2] > 140;
        plscol0(14, light ? 0 : 255, light ? 0 : 255, light ? 0 : 255);
        plcol0(14);
        plschr(0, rows > 12 ? 0.5 : 0.75);
        plptex(p + 0.5, rows - t - 0.5 - 0.15, 1, 0, 0.5, cell_text[static_cast<size_t>(t) * cols + p].c_str());
      }
    }
  plcol0(1);
  plschr(0, 0.8);
  plbox("bc", 0, 0, "bc", 0, 0);
  // Long column names alternate between two rows so that neighbours do not overlap.
  size_t longest = 0;
  for (const std::string& n : col_names) longest = std::max(longest, n.size());
  const bool stagger = cols > 1 && static_cast<double>(longest) * cols > 60.0;
  for (int p = 0; p < cols; ++p)
    plmtex("b", stagger && p % 2 ? 2.4 : 1.2, (p + 0.5) / cols, 0.5, col_names[static_cast<size_t>(p)].c_str());
  for (int t = 0; t < rows; ++t) plmtex("lv", 0.6, 1.0 - (t + 0.5) / rows, 1.0, row_names[static_cast<size_t>(t)].c_str());
  plschr(0, 1.0);
  plmtex("b", stagger ? 4.2 : 3.2, 0.5, 0.5, labels.xlabel.c_str());
  plmtex("l", 7.5, 0.5, 0.5, labels.ylabel.c_str());
  plmtex("t", 1.5, 0.5, 0.5, labels.title.c_str());
  end_page(tmp, path);
#else
  (void)values; (void)cell_text; (void)row_names; (void)col_names; (void)labels; (void)width; (void)height;
  CUVAE_FAIL(path << ": plots are unavailable: this build of cuvae has no PLplot (install libplplot-dev and plplot-driver-cairo)");
#endif
}

}  // namespace cuvae
