#include "host/plot.h"

#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <limits>
#include <mutex>

#include "host/check.h"
#include "host/fs.h"

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
  void pad(double frac) {
    double span = hi - lo;
    if (!(span > 0)) span = std::max(1.0, std::abs(lo));
    lo -= frac * span;
    hi += frac * span;
  }
};

void plot_png(const std::string& path, const std::vector<PlotSeries>& series, const PlotLabels& labels, int width,
              int height, bool lines, bool logy, double point_size) {
  if (width < 100 || height < 100 || width > 8000 || height > 8000)
    CUVAE_FAIL(path << ": plot size " << width << "x" << height << " out of range");
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
  if (points == 0) CUVAE_FAIL(path << ": nothing to plot (no finite values)");
  rx.pad(lines ? 0.02 : 0.04);
  ry.pad(0.05);
  // Leave room on the right for the legend.
  const double legend_frac = 0.0;
  (void)legend_frac;

  std::lock_guard<std::mutex> lock(plot_mutex());
  const std::string tmp = path + ".tmp." + std::to_string(::getpid()) + ".png";
  plsdev("pngcairo");
  plsfnam(tmp.c_str());
  const std::string geometry = std::to_string(width) + "x" + std::to_string(height);
  plsetopt("geometry", geometry.c_str());
  plscolbg(255, 255, 255);
  plscol0(1, 0, 0, 0);  // axes and text in black
  plinit();
  plfontld(1);
  pladv(0);
  plvpor(0.1, 0.74, 0.1, 0.9);
  plwind(rx.lo, rx.hi, ry.lo, ry.hi);
  plcol0(1);
  plschr(0, 0.9);
  plbox("bcnst", 0, 0, logy ? "bcnstvl" : "bcnstv", 0, 0);
  pllab(labels.xlabel.c_str(), labels.ylabel.c_str(), labels.title.c_str());
  const int ns = static_cast<int>(series.size());
  std::vector<PLINT> opt(static_cast<size_t>(ns)), colors(static_cast<size_t>(ns)), line_styles(static_cast<size_t>(ns), 1),
      symbol_numbers(static_cast<size_t>(ns), 1), box_c(static_cast<size_t>(ns), 0), box_p(static_cast<size_t>(ns), 0);
  std::vector<PLFLT> symbol_scales(static_cast<size_t>(ns), lines ? 0.8 : 1.2), line_widths(static_cast<size_t>(ns), 2.0),
      box_s(static_cast<size_t>(ns), 1.0), box_w(static_cast<size_t>(ns), 1.0);
  std::vector<const char*> text(static_cast<size_t>(ns)), symbols(static_cast<size_t>(ns), "\u2022");
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
    if (lines) {
      plline(static_cast<PLINT>(xs.size()), xs.data(), ys.data());
      plssym(0, 0.7);
      plstring(static_cast<PLINT>(xs.size()), xs.data(), ys.data(), "\u2022");
    } else {
      plssym(0, point_size);
      plstring(static_cast<PLINT>(xs.size()), xs.data(), ys.data(), "\u2022");
    }
  }
  plwidth(1.0);
  plcol0(1);
  // The legend to the right of the plot area.
  plvpor(0.1, 0.74, 0.1, 0.9);
  plwind(0, 1, 0, 1);
  PLFLT lw = 0, lh = 0;
  plssym(0, 1.0);
  pllegend(&lw, &lh, PL_LEGEND_BACKGROUND | PL_LEGEND_BOUNDING_BOX, PL_POSITION_OUTSIDE | PL_POSITION_RIGHT,
           0.02, 0.0, 0.08, 0, 1, 1, 0, 0, ns, opt.data(), 1.0, 0.85, 2.0, 0.0, colors.data(), text.data(), box_c.data(),
           box_p.data(), box_s.data(), box_w.data(), colors.data(), line_styles.data(), line_widths.data(), colors.data(),
           symbol_scales.data(), symbol_numbers.data(), symbols.data());
  plend();
  if (!file_exists(tmp)) CUVAE_FAIL(path << ": PLplot wrote no file (is plplot-driver-cairo installed?)");
  if (std::rename(tmp.c_str(), path.c_str()) != 0) {
    std::remove(tmp.c_str());
    CUVAE_FAIL("cannot write " << path << ": rename failed");
  }
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

}  // namespace cuvae
