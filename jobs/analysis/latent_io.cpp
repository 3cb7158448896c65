#include "jobs/analysis/latent_io.h"

#include <cmath>
#include <cstdio>
#include <nlohmann/json.hpp>

#include "core/check.h"
#include "io/csv.h"
#include "io/fs.h"
#include "io/gif.h"
#include "io/image.h"
#include "io/metrics.h"
#include "io/plot.h"
#include "io/safetensors.h"

namespace cuvae {

namespace {
std::string g9(double v) {
  char b[40];
  std::snprintf(b, sizeof b, "%.9g", v);
  return b;
}
}  // namespace

void write_image_grid(const std::string& path, const ImageGrid& g, int scale) {
  write_png_grid(path, g.pixels.data(), g.rows * g.cols, g.c, g.h, g.w, static_cast<int>(g.cols), 2, scale);
}

std::vector<std::string> write_interpolation(const std::string& dir, const InterpolateResult& r, const Dataset& test,
                                             int scale) {
  ensure_dir(dir);
  const std::string png = dir + "/interpolation.png", js = dir + "/interpolation.json";
  write_image_grid(png, r.grid, scale);
  nlohmann::json pairs = nlohmann::json::array();
  for (const auto& [i, j] : r.pairs)
    pairs.push_back({{"from", i}, {"to", j}, {"from_label", test.labels[static_cast<size_t>(i)]},
                     {"to_label", test.labels[static_cast<size_t>(j)]}});
  nlohmann::json j = {{"dataset", test.name}, {"mode", interp_mode_name(r.mode)}, {"steps", r.t.size()},
                      {"t", r.t},           {"pairs", pairs},                    {"png", "interpolation.png"},
                      {"layout", "one row per pair: test image I, the decoded path at each t, test image J"}};
  write_file_atomic(js, j.dump(2) + "\n");
  return {png, js};
}

std::vector<std::string> write_arithmetic(const std::string& dir, const ArithmeticResult& r,
                                          const ArithmeticOptions& opt, const Dataset& test, int scale) {
  ensure_dir(dir);
  const std::string png = dir + "/arithmetic.png", js = dir + "/arithmetic.json";
  write_image_grid(png, r.grid, scale);
  nlohmann::json j = {{"dataset", test.name},
                      {"indices", opt.indices},
                      {"from_class", opt.from_class},
                      {"to_class", opt.to_class},
                      {"alpha", opt.alpha},
                      {"alphas", r.alphas},
                      {"direction", r.direction},
                      {"png", "arithmetic.png"},
                      {"layout", "one row per index: image, reconstruction, then z = mu + a*(m_to - m_from) for each a in alphas"}};
  write_file_atomic(js, j.dump(2) + "\n");
  return {png, js};
}

std::vector<std::string> write_traversal(const std::string& dir, const TraverseResult& r, const LatentDimStats& stats,
                                         int scale, bool gif, const std::string& png_name) {
  if (gif && !gif_available())
    CUVAE_FAIL(option("gif") << " is unavailable: this build of cuvae has no giflib (install libgif-dev and rebuild)");
  ensure_dir(dir);
  std::vector<std::string> out;
  const std::string png = dir + "/" + png_name;
  write_image_grid(png, r.grid, scale);
  out.push_back(png);
  CsvWriter csv({"dim", "kl", "activity", "active", "row"});
  for (size_t d = 0; d < stats.kl.size(); ++d) {
    int64_t row = -1;
    for (size_t k = 0; k < r.dims.size(); ++k)
      if (r.dims[k] == static_cast<int64_t>(d)) row = static_cast<int64_t>(k);
    csv.add_row({std::to_string(d), g9(stats.kl[d]), g9(stats.activity[d]), stats.active[d] ? "1" : "0",
                 std::to_string(row)});
  }
  const std::string csv_path = dir + "/traversal.csv";
  csv.write(csv_path);
  out.push_back(csv_path);
  if (gif) {
    const int64_t frame = static_cast<int64_t>(r.grid.c) * r.grid.h * r.grid.w;
    for (size_t k = 0; k < r.dims.size(); ++k) {
      const std::string g = dir + "/traversal_dim" + std::to_string(r.dims[k]) + ".gif";
      write_gif(g, r.grid.pixels.data() + static_cast<int64_t>(k) * r.grid.cols * frame, r.grid.cols, r.grid.c, r.grid.h,
                r.grid.w, std::max(scale, 4), 12, true);
      out.push_back(g);
    }
  }
  return out;
}

std::vector<std::string> write_embedding(const std::string& dir, const EmbedResult& r,
                                         const std::vector<std::string>& class_names, const nlohmann::json& meta) {
  ensure_dir(dir);
  std::vector<std::string> out;
  const int64_t n = r.codes.n, D = r.codes.latent;
  SafetensorsWriter w;
  w.add_f32("mu", {n, D}, r.codes.mu);
  w.add_i64("label", {n}, r.codes.label);
  w.add_i64("index", {n}, r.codes.index);
  w.set_metadata("method", r.method);
  const std::string lat = dir + "/latents.safetensors";
  w.write(lat);
  out.push_back(lat);

  CsvWriter csv({"index", "label", "x", "y"});
  for (int64_t i = 0; i < n; ++i)
    csv.add_row({std::to_string(r.codes.index[static_cast<size_t>(i)]), std::to_string(r.codes.label[static_cast<size_t>(i)]),
                 g9(r.y[static_cast<size_t>(2 * i)]), g9(r.y[static_cast<size_t>(2 * i + 1)])});
  const std::string csv_path = dir + "/embedding.csv";
  csv.write(csv_path);
  out.push_back(csv_path);

  nlohmann::json j = meta;
  j["method"] = r.method;
  j["algorithm"] = r.algorithm;
  j["n"] = n;
  j["latent"] = D;
  j["seconds"] = r.seconds;
  j["seconds_encode"] = r.seconds_encode;
  j["seconds_metrics"] = r.seconds_metrics;
  j["trustworthiness"] = r.trustworthiness;
  j["knn_accuracy"] = r.knn_accuracy;
  j["knn_accuracy_latent"] = r.knn_accuracy_latent;
  j["k"] = 5;
  if (r.method == "pca") j["explained_variance_ratio"] = r.explained_variance_ratio;
  if (r.method == "tsne" && std::isfinite(r.kl)) j["kl_divergence"] = r.kl;

  if (plot_available()) {
    int64_t classes = 0;
    for (int64_t l : r.codes.label) classes = std::max(classes, l + 1);
    std::vector<PlotSeries> series(static_cast<size_t>(classes));
    for (int64_t c = 0; c < classes; ++c)
      series[static_cast<size_t>(c)].name =
          c < static_cast<int64_t>(class_names.size()) ? class_names[static_cast<size_t>(c)] : std::to_string(c);
    for (int64_t i = 0; i < n; ++i) {
      PlotSeries& s = series[static_cast<size_t>(r.codes.label[static_cast<size_t>(i)])];
      s.x.push_back(r.y[static_cast<size_t>(2 * i)]);
      s.y.push_back(r.y[static_cast<size_t>(2 * i + 1)]);
    }
    PlotLabels labels;
    char title[256];
    const std::string what = meta.contains("dataset") ? meta["dataset"].get<std::string>() + " " +
                                                            meta.value("split", std::string("test"))
                                                      : std::string("images");
    if (r.method == "pca") {
      std::snprintf(title, sizeof title, "PCA of mu: %s, n = %lld (trustworthiness %.3f, 5-NN %.3f)", what.c_str(),
                    static_cast<long long>(n), r.trustworthiness, r.knn_accuracy);
      char xl[64], yl[64];
      std::snprintf(xl, sizeof xl, "PC 1 (%.1f%% of variance)", 100.0 * r.explained_variance_ratio.at(0));
      std::snprintf(yl, sizeof yl, "PC 2 (%.1f%% of variance)", 100.0 * r.explained_variance_ratio.at(1));
      labels = {title, xl, yl};
    } else {
      std::snprintf(title, sizeof title, "t-SNE of mu: %s, n = %lld (trustworthiness %.3f, 5-NN %.3f)", what.c_str(),
                    static_cast<long long>(n), r.trustworthiness, r.knn_accuracy);
      labels = {title, "t-SNE 1", "t-SNE 2"};
    }
    const double size = n > 20000 ? 0.2 : (n > 5000 ? 0.3 : 0.45);
    const std::string png = dir + "/embedding.png";
    try {
      scatter_plot_png(png, series, labels, 1000, 820, size);
      out.push_back(png);
      j["png"] = "embedding.png";
    } catch (const Error& e) {  // the map and its numbers stand without the picture
      j["png"] = nullptr;
      j["png_error"] = e.what();
    }
  } else {
    j["png"] = nullptr;
  }
  const std::string js = dir + "/embed.json";
  write_file_atomic(js, j.dump(2) + "\n");
  out.push_back(js);
  return out;
}

LatentCodes read_latents(const std::string& path) {
  SafetensorsFile f = read_safetensors(path);
  const SafetensorsEntry& mu = f.at("mu");
  if (mu.shape.size() != 2) CUVAE_FAIL(path << ": tensor 'mu' must be [n, D], got " << mu.shape.size() << " dims");
  LatentCodes c;
  c.n = mu.shape[0];
  c.latent = mu.shape[1];
  c.mu = f.f32("mu", {c.n, c.latent});
  c.label = f.i64("label", {c.n});
  c.index = f.i64("index", {c.n});
  return c;
}

}  // namespace cuvae
