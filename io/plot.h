// Plots as PNG files through PLplot (its cairo PNG driver): scatter maps and line charts with
// labelled axes and a legend. Optional at build time; callers skip plots with a one-line note
// when plot_available() is false.
#pragma once

#include <string>
#include <vector>

namespace cuvae {

/// True when this build has PLplot (Debian's libplplot-dev with plplot-driver-cairo).
bool plot_available();

/// One named set of points (a class in a scatter map, a curve in a line chart).
struct PlotSeries {
  std::string name;       ///< legend entry
  std::vector<double> x;  ///< same length as y
  std::vector<double> y;
};

/// Titles of a plot.
struct PlotLabels {
  std::string title, xlabel, ylabel;
};

/// Writes a scatter plot of `series` (one colour each, from the 10-colour Tableau palette, in
/// order) with axes, axis labels, a title and a legend of the series' names, as a PNG of
/// width×height pixels at `path` (written to a temporary file and renamed into place). Points
/// that are not finite are left out. Throws cuvae::Error naming `path` when PLplot is missing,
/// there are no finite points, or the file cannot be written.
void scatter_plot_png(const std::string& path, const std::vector<PlotSeries>& series, const PlotLabels& labels,
                      int width = 900, int height = 760, double point_size = 0.35);

/// Same as scatter_plot_png but each series is drawn as a line with point markers (a chart
/// of values per epoch, say). `logy` plots log10 of y (non-positive values left out).
void line_plot_png(const std::string& path, const std::vector<PlotSeries>& series, const PlotLabels& labels,
                   int width = 900, int height = 600, bool logy = false);

/// One chart of a multi-panel figure.
struct PlotPanel {
  std::vector<PlotSeries> series;
  PlotLabels labels;
  bool logy = false;
};

/// Writes `panels` side by side as line charts (see line_plot_png) in one PNG of width×height.
/// A panel without finite values stays blank. Throws cuvae::Error naming `path` when PLplot is
/// missing, no panel has a finite value, or the file cannot be written.
void line_panels_png(const std::string& path, const std::vector<PlotPanel>& panels, int width = 1500,
                     int height = 480);

/// Writes a heat map of `values` [rows, cols] (row-major, each in [0, 1], white to dark blue; row 0 at
/// the top) with `cell_text` (empty, or one string per cell, e.g. counts) written in the cells,
/// `row_names` down the left, `col_names` along the bottom, axis titles and a title. Throws
/// cuvae::Error naming `path` when PLplot is missing, the sizes disagree or the file cannot be
/// written.
void heatmap_png(const std::string& path, const std::vector<double>& values, const std::vector<std::string>& cell_text,
                 const std::vector<std::string>& row_names, const std::vector<std::string>& col_names,
                 const PlotLabels& labels, int width = 820, int height = 760);

}  // namespace cuvae
