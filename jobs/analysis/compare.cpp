#include "jobs/analysis/compare.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <limits>
#include <memory>
#include <sstream>

#include "core/check.h"
#include "io/csv.h"
#include "io/dataset.h"
#include "io/fs.h"
#include "io/image.h"
#include "io/plot.h"
#include "jobs/analysis/latent.h"
#include "jobs/analysis/likelihood.h"
#include "jobs/anchor.h"
#include "jobs/batching.h"
#include "jobs/vae_trainer.h"
#include "jobs/validate.h"
#include "kernels/reparameterize.h"
#include "models/checkpoint.h"
#include "numerics/embed.h"

namespace cuvae {

namespace {

std::string fmt(double v, int prec = 2) {
  if (!std::isfinite(v)) return "–";
  char b[64];
  std::snprintf(b, sizeof b, "%.*f", prec, v);
  return b;
}

std::string base_name(std::string dir) {
  while (dir.size() > 1 && dir.back() == '/') dir.pop_back();
  const size_t k = dir.find_last_of('/');
  return k == std::string::npos ? dir : dir.substr(k + 1);
}

nlohmann::json num(double v) { return std::isfinite(v) ? nlohmann::json(v) : nlohmann::json(nullptr); }

/// The evaluation of one run folder on an already loaded test split.
RunSummary evaluate_run(Context& ctx, const std::string& dir, const Dataset& test, ResNet18* clf,
                        const ClassifierOutputs* ref, const CompareOptions& opt, std::ostream& log) {
  RunSummary r;
  r.run = dir;
  r.name = base_name(dir);
  std::unique_ptr<ConvVAE> vae = load_vae(dir + "/model.safetensors", ctx.device());
  const VaeConfig& c = vae->config();
  r.model = c.is_ae() ? "ae" : "vae";
  r.dataset = test.name;
  r.latent = c.latent;
  r.beta = c.is_ae() ? std::numeric_limits<double>::quiet_NaN() : c.beta;
  r.c = static_cast<int>(c.channels);
  r.h = static_cast<int>(c.height);
  r.w = static_cast<int>(c.width);
  {
    const CsvTable m = CsvTable::read(dir + "/metrics.csv");
    if (m.find("seconds"))
      for (double v : m.numbers("seconds")) r.seconds += std::isfinite(v) ? v : 0.0;
    r.epochs = static_cast<int>(m.rows());
  }
  const int64_t n = (opt.limit > 0 && opt.limit < test.n) ? opt.limit : test.n;
  r.n = n;
  log << r.name << ": evaluating " << c.model_name() << " (latent " << c.latent << ") on " << n << " test images"
      << std::endl;
  const VaeEval e = evaluate_vae(ctx, *vae, test, 500, n);
  r.recon = e.recon;
  r.kl = c.is_ae() ? 0.0 : e.kl;
  r.neg_elbo = r.recon + r.kl;
  // Squared error per pixel of the reconstructions at z = μ, and the codes.
  const int64_t P = test.pixels(), D = c.latent;
  LatentCodes codes;
  codes.n = n;
  codes.latent = D;
  codes.mu.reserve(static_cast<size_t>(n * D));
  double se = 0;
  const DeviceDataset dd(test, ctx.device());
  for_each_batch(ctx, dd, 500, n, [&](const Batch& bt) {
    const int64_t first = bt.first, b = bt.size;
    const std::vector<float> x = bt.x.to_vector();
    const EncodedImages ei = encode_images(ctx, *vae, x, b);
    for (int64_t i = 0; i < b * P; ++i) {
      const double d = static_cast<double>(ei.reconstruction[static_cast<size_t>(i)]) - x[static_cast<size_t>(i)];
      se += d * d;
    }
    codes.mu.insert(codes.mu.end(), ei.mu.begin(), ei.mu.end());
    if (first == 0) r.recon_images.assign(ei.reconstruction.begin(), ei.reconstruction.begin() + std::min<int64_t>(8, b) * P);
  });
  r.mse = se / static_cast<double>(n * P);
  for (int64_t i = 0; i < n; ++i) {
    codes.label.push_back(test.labels[static_cast<size_t>(i)]);
    codes.index.push_back(i);
  }
  r.active_units = n >= 2 ? latent_dim_stats(codes).active_units : 0;
  const int64_t nk = std::min<int64_t>(n, 10000);
  r.knn_accuracy = nk > 5 ? knn_accuracy(codes.mu.data(), nk, D, codes.label.data(), 5)
                          : std::numeric_limits<double>::quiet_NaN();
  {
    const int64_t nm = std::min<int64_t>(n, 2000);
    const PcaResult p = pca_2d(codes.mu.data(), nm, D);
    for (int64_t i = 0; i < nm; ++i) {
      r.map_x.push_back(p.y[static_cast<size_t>(2 * i)]);
      r.map_y.push_back(p.y[static_cast<size_t>(2 * i + 1)]);
      r.map_label.push_back(codes.label[static_cast<size_t>(i)]);
    }
  }
  if (c.is_ae()) {
    r.nll = r.nll_stderr = std::numeric_limits<double>::quiet_NaN();
  } else {
    NllOptions no;
    no.k = opt.nll_k;
    no.limit = n;
    no.progress = opt.progress;
    const NllResult nr = estimate_nll(ctx, *vae, test, no);
    r.nll = nr.nll;
    r.nll_stderr = nr.nll_stderr;
    r.nll_k = nr.k;
  }
  {
    Tensor z({8, D}, ctx.device());
    sample_normal(ctx, z, opt.seed, 0x9a10c000ull);
    r.prior_images = decode_to_host(ctx, *vae, z.to_vector(), 8);
  }
  if (clf != nullptr) {
    const SampleQuality q = sample_quality(ctx, *vae, *clf, test, opt.prior, opt.recon, opt.reference, opt.seed, ref);
    r.has_classifier = true;
    r.prior_confidence = q.prior_top1_confidence;
    r.prior_entropy = q.prior_class_entropy;
    r.prior_frechet = q.prior_frechet;
    r.recon_frechet = q.recon_frechet;
  }
  return r;
}

/// Pastes image planes src [c, h, w] (c = 1 or 3) into RGB planes dst [3, H, W] at (x, y),
/// each pixel enlarged `scale` times.
void paste(std::vector<float>& dst, int H, int W, const float* src, int c, int h, int w, int x, int y, int scale) {
  for (int ch = 0; ch < 3; ++ch)
    for (int i = 0; i < h * scale; ++i)
      for (int j = 0; j < w * scale; ++j) {
        const int yy = y + i, xx = x + j;
        if (yy < 0 || yy >= H || xx < 0 || xx >= W) continue;
        const int sc = c == 1 ? 0 : ch;
        dst[static_cast<size_t>((ch * H + yy) * W + xx)] = src[(sc * h + i / scale) * w + j / scale];
      }
}

/// A PCA scatter map of one run as RGB planes [3, mh, mw]; empty when plots are unavailable.
std::vector<float> map_planes(const RunSummary& r, const std::vector<std::string>& names, int mh, int mw,
                              const std::string& tmp_path) {
  if (!plot_available() || r.map_x.empty()) return {};
  std::vector<PlotSeries> series(names.size());
  for (size_t k = 0; k < names.size(); ++k) series[k].name = names[k];
  for (size_t i = 0; i < r.map_x.size(); ++i) {
    const size_t k = static_cast<size_t>(r.map_label[i]) % names.size();
    series[k].x.push_back(r.map_x[i]);
    series[k].y.push_back(r.map_y[i]);
  }
  scatter_plot_png(tmp_path, series, {"PCA of mu, " + r.name, "PC 1", "PC 2"}, mw, mh, 0.3);
  std::vector<float> planes = read_png(tmp_path, 3, mh, mw);
  std::remove(tmp_path.c_str());
  return planes;
}

void compose_png(const std::string& path, const std::vector<RunSummary>& rows, const std::string& dataset,
                 bool with_recon, bool with_map) {
  CUVAE_CHECK(!rows.empty(), "nothing to draw into " << path);
  const int c = rows[0].c, h = rows[0].h, w = rows[0].w, scale = 2, gap = 4;
  const int tile = h * scale, strip_w = 8 * w * scale + 7 * gap, label_h = 20;
  const int mh = 300, mw = 360;
  const bool map = with_map && plot_available();
  const int block_h = (with_recon ? 2 : 1) * (tile + label_h);
  const int band_h = std::max(block_h, map ? mh : 0) + label_h + 12;
  auto title_of = [](const RunSummary& r) {
    std::ostringstream title;
    title << r.name << "  (" << r.model << ", latent " << r.latent;
    if (std::isfinite(r.beta)) title << ", beta " << fmt(r.beta, r.beta < 1 ? 2 : 1);
    title << ")  recon " << fmt(r.recon, 1) << ", KL " << fmt(r.kl, 1);
    if (std::isfinite(r.nll)) title << ", NLL " << fmt(r.nll, 1);
    return title.str();
  };
  size_t longest = 0;
  for (const RunSummary& r : rows) longest = std::max(longest, title_of(r).size());
  // Titles are drawn 2x in a ~6-pixel font: make the picture wide enough for the longest.
  const int W = std::max(16 + strip_w + (map ? 16 + mw : 0) + 16, 32 + 12 * static_cast<int>(longest));
  const int H = static_cast<int>(rows.size()) * band_h + 8;
  std::vector<float> img(static_cast<size_t>(3 * H * W), 1.0f);
  const float black[3] = {0, 0, 0}, grey[3] = {0.35f, 0.35f, 0.35f};
  const std::vector<std::string> names = class_names(dataset);
  for (size_t b = 0; b < rows.size(); ++b) {
    const RunSummary& r = rows[b];
    const int y0 = static_cast<int>(b) * band_h + 8;
    draw_text(img.data(), H, W, 16, y0, title_of(r), black, 2);
    int y = y0 + label_h;
    auto strip = [&](const std::vector<float>& images, const std::string& label) {
      draw_text(img.data(), H, W, 16, y, label, grey, 1);
      const int64_t P = static_cast<int64_t>(c) * h * w;
      const int64_t k = std::min<int64_t>(8, static_cast<int64_t>(images.size()) / P);
      for (int64_t i = 0; i < k; ++i)
        paste(img, H, W, images.data() + i * P, c, h, w, 16 + static_cast<int>(i) * (w * scale + gap), y + 10, scale);
      y += tile + label_h;
    };
    if (with_recon) strip(r.recon_images, "reconstructions (z = mu)");
    strip(r.prior_images, "prior samples, z ~ N(0, I)");
    if (map) {
      std::vector<float> m = map_planes(r, names, mh, mw, path + ".map.tmp.png");
      for (int ch = 0; ch < 3 && !m.empty(); ++ch)
        for (int i = 0; i < mh; ++i)
          for (int j = 0; j < mw; ++j) {
            const int yy = y0 + label_h + i, xx = 16 + strip_w + 16 + j;
            if (yy < H && xx < W) img[static_cast<size_t>((ch * H + yy) * W + xx)] = m[static_cast<size_t>((ch * mh + i) * mw + j)];
          }
    }
  }
  write_file_atomic(path, png_from_planes(img.data(), 3, H, W));
}

void check_runs(const std::vector<std::string>& runs, std::string& dataset) {
  if (runs.empty()) CUVAE_FAIL(option("runs") << " needs at least one run folder");
  std::string first;
  for (const std::string& r : runs) {
    const std::string d = run_dataset(r);
    if (dataset.empty()) {
      dataset = d;
      first = r;
    } else if (d != dataset) {
      CUVAE_FAIL(option("runs") << " mixes data sets: " << (first.empty() ? std::string("the first run") : first) << " is " << dataset
                                            << " but " << r << " is " << d);
    }
    if (first.empty()) first = r;
  }
}

}  // namespace

nlohmann::json RunSummary::to_json() const {
  nlohmann::json j = {{"run", run},
                      {"name", name},
                      {"model", model},
                      {"dataset", dataset},
                      {"latent", latent},
                      {"beta", num(beta)},
                      {"epochs", epochs},
                      {"seconds", seconds},
                      {"n", n},
                      {"recon", recon},
                      {"mse_per_pixel", mse},
                      {"kl", kl},
                      {"neg_elbo", neg_elbo},
                      {"nll", num(nll)},
                      {"nll_stderr", num(nll_stderr)},
                      {"nll_k", nll_k},
                      {"active_units", active_units},
                      {"knn_accuracy", num(knn_accuracy)}};
  if (has_classifier) {
    j["prior_top1_confidence"] = prior_confidence;
    j["prior_class_entropy"] = prior_entropy;
    j["prior_frechet"] = prior_frechet;
    j["recon_frechet"] = recon_frechet;
  }
  return j;
}

std::string run_dataset(const std::string& dir) {
  if (!file_exists(dir + "/metrics.csv"))
    CUVAE_FAIL(dir << " is not a train-vae run folder: it has no metrics.csv");
  if (!file_exists(dir + "/model.safetensors"))
    CUVAE_FAIL(dir << " is not a train-vae run folder: it has no model.safetensors");
  std::string text;
  try {
    text = read_file(dir + "/config.json");
  } catch (const Error&) {
    CUVAE_FAIL(dir << " is not a train-vae run folder: it has no readable config.json");
  }
  const nlohmann::json j = nlohmann::json::parse(text, nullptr, false);
  if (j.is_discarded() || !j.is_object() || !j.contains("dataset") || !j["dataset"].is_string())
    CUVAE_FAIL(dir << "/config.json has no \"dataset\" field");
  if (j.contains("command") && j["command"] != "train-vae")
    CUVAE_FAIL(dir << " is a " << j["command"].get<std::string>() << " run folder, expected one written by train-vae");
  return j["dataset"].get<std::string>();
}

std::string compare_table(const std::vector<RunSummary>& rows) {
  const bool clf = std::any_of(rows.begin(), rows.end(), [](const RunSummary& r) { return r.has_classifier; });
  std::ostringstream md;
  md << "| run | model | latent | beta | epochs | recon (nats) | MSE/pixel | KL | -ELBO | NLL (K) | active units | 5-NN acc";
  if (clf) md << " | prior top-1 conf | prior class entropy | Frechet prior | Frechet recon";
  md << " |\n|---|---|---|---|---|---|---|---|---|---|---|---";
  if (clf) md << "|---|---|---|---";
  md << "|\n";
  for (const RunSummary& r : rows) {
    md << "| " << r.name << " | " << r.model << " | " << r.latent << " | " << (std::isfinite(r.beta) ? fmt(r.beta, 2) : "–")
       << " | " << r.epochs << " | " << fmt(r.recon) << " | " << fmt(r.mse, 4) << " | " << fmt(r.kl) << " | "
       << fmt(r.neg_elbo) << " | "
       << (std::isfinite(r.nll) ? fmt(r.nll) + " ± " + fmt(r.nll_stderr) + " (" + std::to_string(r.nll_k) + ")" : "–")
       << " | " << r.active_units << " | " << fmt(100 * r.knn_accuracy, 1) << "%";
    if (clf) {
      if (r.has_classifier)
        md << " | " << fmt(r.prior_confidence, 3) << " | " << fmt(r.prior_entropy, 3) << " | " << fmt(r.prior_frechet, 2)
           << " | " << fmt(r.recon_frechet, 2);
      else
        md << " | | | |";
    }
    md << " |\n";
  }
  return md.str();
}

void write_compare_png(const std::string& path, const std::vector<RunSummary>& rows, const std::string& dataset) {
  compose_png(path, rows, dataset, true, true);
}

std::vector<RunSummary> compare_runs(const CompareOptions& opt, std::ostream& log) {
  if (opt.nll_k < 1) CUVAE_FAIL(option("nll") << " must be at least 1 importance sample, got " << opt.nll_k);
  if (opt.limit < 0) CUVAE_FAIL(option("limit") << " must be >= 0, got " << opt.limit);
  if (opt.out.empty()) CUVAE_FAIL(option("out") << " must name a folder");
  std::string dataset;
  check_runs(opt.runs, dataset);
  if (!opt.classifier.empty() && !file_exists(opt.classifier))
    CUVAE_FAIL(option("classifier") << " " << opt.classifier << " does not exist");
  Context ctx(opt.device);
  log << "device: " << ctx.description() << "\n";
  const std::string dir = opt.data_dir.empty() ? default_data_dir(dataset) : opt.data_dir;
  const Dataset test = load_dataset(dataset, dir, false);
  std::unique_ptr<ResNet18> clf;
  ClassifierOutputs ref;
  if (!opt.classifier.empty()) {
    clf = load_resnet(opt.classifier, ctx.device(), dataset);
    if (!clf->config().dataset.empty() && clf->config().dataset != dataset)
      CUVAE_FAIL(option("classifier") << " " << opt.classifier << " was trained on " << clf->config().dataset << " but the runs on " << dataset);
    const DeviceDataset dd(test, ctx.device());
    Tensor x = device_images(ctx, dd, std::min(opt.reference, test.n));
    ref = run_classifier(ctx, *clf, x);
  }
  std::vector<RunSummary> rows;
  for (const std::string& r : opt.runs) rows.push_back(evaluate_run(ctx, r, test, clf.get(), clf ? &ref : nullptr, opt, log));

  nlohmann::json j;
  j["dataset"] = dataset;
  j["classifier"] = opt.classifier;
  j["nll_k"] = opt.nll_k;
  j["device"] = ctx.description();
  j["runs"] = nlohmann::json::array();
  for (const RunSummary& r : rows) j["runs"].push_back(r.to_json());
  std::ostringstream md;
  md << "# Comparison of " << rows.size() << " runs on " << dataset << "\n\nTest split, first " << rows[0].n
     << " images; recon and KL at z = mu in nats per image; NLL by importance sampling (IWAE bound, K samples) "
        "with its standard error; active units: Cov_x(E[z_d]) > 0.01; 5-NN accuracy of the labels in mu space.";
  if (clf)
    md << " Classifier `" << opt.classifier << "`: " << opt.prior << " prior samples z ~ N(0, I) (for an AE too), "
       << "their mean top-1 confidence and the entropy (nats; log 10 = 2.303 is uniform) of their predicted-class "
          "histogram; Frechet distances of classifier features to "
       << ref.n << " test images.";
  md << "\n\n" << compare_table(rows);
  ensure_dir(opt.out);
  write_file_atomic(opt.out + "/compare.json", j.dump(2) + "\n");
  write_file_atomic(opt.out + "/compare.md", md.str());
  log << "\n" << md.str() << "\nwrote " << opt.out << "/compare.json\nwrote " << opt.out << "/compare.md\n";
  if (opt.picture) {
    try {
      write_compare_png(opt.out + "/compare.png", rows, dataset);
      log << "wrote " << opt.out << "/compare.png";
      if (!plot_available()) log << " (without latent maps: this build has no PLplot)";
      log << "\n";
    } catch (const Error& e) {
      log << "note: compare.png not written: " << e.what() << "\n";
    }
  }
  log << std::flush;
  return rows;
}

// ---- sweep -------------------------------------------------------------------------------

namespace {
// A comma-separated list of values in [lo, hi], each read whole by `read` (std::stoll, std::stod).
template <typename T, typename Read>
std::vector<T> parse_list(const std::string& s, const char* option_name, T lo, T hi, const char* what, Read read) {
  std::vector<T> out;
  std::stringstream ss(s);
  std::string item;
  while (std::getline(ss, item, ',')) {
    size_t used = 0;
    T v{};
    try {
      v = read(item, &used);
    } catch (const std::exception&) {
      used = 0;
    }
    if (item.empty() || used != item.size() || !std::isfinite(static_cast<double>(v)))
      CUVAE_FAIL(option(option_name) << " expects a comma-separated list of " << what << ", got '" << s << "'");
    if (v < lo || v > hi) CUVAE_FAIL(option(option_name) << " values must be in [" << lo << ", " << hi << "], got " << v);
    out.push_back(v);
  }
  if (out.empty()) CUVAE_FAIL(option(option_name) << " needs at least one value, got an empty list");
  return out;
}
}  // namespace

std::vector<int64_t> parse_int_list(const std::string& s, const char* option_name, int64_t lo, int64_t hi) {
  return parse_list<int64_t>(s, option_name, lo, hi, "integers",
                             [](const std::string& t, size_t* used) { return static_cast<int64_t>(std::stoll(t, used)); });
}

std::vector<double> parse_number_list(const std::string& s, const char* option_name, double lo, double hi) {
  return parse_list<double>(s, option_name, lo, hi, "numbers", [](const std::string& t, size_t* used) { return std::stod(t, used); });
}

std::string sweep_config_name(const std::string& model, int64_t latent, double beta) {
  std::ostringstream os;
  os << model << "-z" << latent;
  if (model != "ae") {
    char b[32];
    std::snprintf(b, sizeof b, "%g", beta);
    os << "-b" << b;
  }
  return os.str();
}

namespace {

// One configuration of a sweep: its latent size, beta and run folder.
struct SweepConfig {
  int64_t latent;
  double beta;
  std::string dir;
};

void check_sweep_options(const SweepOptions& opt, VaeKind kind) {
  if (opt.latents.empty()) CUVAE_FAIL(option("latent") << " needs at least one value, got an empty list");
  if (kind == VaeKind::Vae && opt.betas.empty()) CUVAE_FAIL(option("beta") << " needs at least one value, got an empty list");
  if (opt.epochs < 1) CUVAE_FAIL(option("epochs") << " must be at least 1, got " << opt.epochs);
  if (opt.nll_k < 1) CUVAE_FAIL(option("nll") << " must be at least 1 importance sample, got " << opt.nll_k);
  if (!opt.classifier.empty() && !file_exists(opt.classifier))
    CUVAE_FAIL(option("classifier") << " " << opt.classifier << " does not exist");
}

// Every (latent, beta) pair in the order the tables list them; an AE has the one beta 0.
std::vector<SweepConfig> sweep_configs(const SweepOptions& opt, const std::vector<double>& betas) {
  std::vector<SweepConfig> configs;
  for (int64_t l : opt.latents)
    for (double b : betas) configs.push_back({l, b, opt.out + "/" + sweep_config_name(opt.model, l, b)});
  return configs;
}

// Trains configuration `c` up to opt.epochs: skipped (false) when it already has them, resumed
// when it has fewer and its training state.
bool train_sweep_config(const SweepOptions& opt, VaeKind kind, const SweepConfig& c, const std::string& tag,
                        std::ostream& log) {
  int done_epochs = 0;
  if (file_exists(c.dir + "/metrics.csv") && file_exists(c.dir + "/model.safetensors")) {
    done_epochs = static_cast<int>(CsvTable::read(c.dir + "/metrics.csv").rows());
  }
  if (done_epochs >= opt.epochs) {
    log << tag << ": already trained (" << done_epochs << " epochs), skipped" << std::endl;
    return false;
  }
  VaeTrainOptions t;
  t.dataset = opt.dataset;
  t.data_dir = opt.data_dir;
  t.out = c.dir;
  t.epochs = opt.epochs;
  t.batch = opt.batch;
  t.latent = c.latent;
  t.beta = static_cast<float>(c.beta);
  t.model = kind;
  t.lr = opt.lr;
  t.seed = opt.seed;
  t.device = opt.device;
  t.train_limit = opt.train_limit;
  t.test_limit = opt.limit;
  t.progress = opt.progress;
  t.resume = file_exists(c.dir + "/model.safetensors") && file_exists(c.dir + "/optim.safetensors");
  log << tag << (t.resume ? ": resuming after epoch " + std::to_string(done_epochs) : std::string(": training"))
      << std::endl;
  std::ostringstream train_log;
  train_vae(t, train_log);
  return true;
}

// sweep.csv, sweep.md and sweep.json from the evaluated configurations; the markdown is logged.
void write_sweep_tables(const SweepOptions& opt, const std::vector<RunSummary>& rows, std::ostream& log) {
  std::vector<std::string> header = {"name", "model", "latent", "beta", "epochs", "seconds", "recon", "mse_per_pixel", "kl",
                                     "neg_elbo", "nll", "nll_stderr", "nll_k", "active_units", "knn_accuracy"};
  const bool clf = !opt.classifier.empty();
  if (clf) header.insert(header.end(), {"prior_top1_confidence", "prior_class_entropy", "prior_frechet", "recon_frechet"});
  CsvWriter csv(header);
  auto v = [](double x) { return std::isfinite(x) ? fmt(x, 6) : std::string(""); };
  for (const RunSummary& r : rows) {
    std::vector<std::string> row = {r.name, r.model, std::to_string(r.latent), v(r.beta), std::to_string(r.epochs),
                                    v(r.seconds), v(r.recon), v(r.mse), v(r.kl), v(r.neg_elbo), v(r.nll),
                                    v(r.nll_stderr), std::to_string(r.nll_k), std::to_string(r.active_units),
                                    v(r.knn_accuracy)};
    if (clf)
      row.insert(row.end(), {v(r.prior_confidence), v(r.prior_entropy), v(r.prior_frechet), v(r.recon_frechet)});
    csv.add_row(row);
  }
  std::ostringstream md;
  md << "# Sweep: " << opt.model << " on " << opt.dataset << ", " << opt.epochs << " epochs each\n\n"
     << "Test numbers on the first " << rows[0].n << " test images (recon, KL, -ELBO and NLL in nats per image; "
     << "NLL with K = " << opt.nll_k << " importance samples).\n\n"
     << "| config | seconds |\n|---|---|\n";
  for (const RunSummary& r : rows) md << "| " << r.name << " | " << fmt(r.seconds, 1) << " |\n";
  md << "\n" << compare_table(rows);
  nlohmann::json j;
  j["dataset"] = opt.dataset;
  j["model"] = opt.model;
  j["epochs"] = opt.epochs;
  j["configs"] = nlohmann::json::array();
  for (const RunSummary& r : rows) j["configs"].push_back(r.to_json());
  csv.write(opt.out + "/sweep.csv");
  write_file_atomic(opt.out + "/sweep.md", md.str());
  write_file_atomic(opt.out + "/sweep.json", j.dump(2) + "\n");
  log << "\n" << md.str() << "\nwrote " << opt.out << "/sweep.csv\nwrote " << opt.out << "/sweep.md\nwrote " << opt.out
      << "/sweep.json\n";
}

// sweep_samples.png, and with PLplot recon and KL against the latent size and the rate-distortion
// curves; a picture that cannot be drawn is a note, not an error.
void draw_sweep_plots(const SweepOptions& opt, VaeKind kind, const std::vector<double>& betas,
                      const std::vector<RunSummary>& rows, std::ostream& log) {
  try {
    compose_png(opt.out + "/sweep_samples.png", rows, opt.dataset, false, false);
    log << "wrote " << opt.out << "/sweep_samples.png\n";
    if (plot_available()) {
      std::vector<PlotSeries> rec_s, kl_s, rd_s;
      for (double b : betas) {
        PlotSeries rs, ks;
        rs.name = ks.name = kind == VaeKind::Ae ? std::string("AE") : "beta " + fmt(b, b < 1 ? 2 : 1);
        for (const RunSummary& r : rows)
          if (kind == VaeKind::Ae || r.beta == static_cast<double>(static_cast<float>(b))) {
            rs.x.push_back(static_cast<double>(r.latent));
            rs.y.push_back(r.recon);
            ks.x.push_back(static_cast<double>(r.latent));
            ks.y.push_back(r.kl);
          }
        rec_s.push_back(rs);
        kl_s.push_back(ks);
      }
      for (int64_t l : opt.latents) {
        PlotSeries s;
        s.name = "latent " + std::to_string(l);
        for (const RunSummary& r : rows)
          if (r.latent == l) {
            s.x.push_back(r.recon);
            s.y.push_back(r.kl);
          }
        rd_s.push_back(s);
      }
      line_panels_png(opt.out + "/sweep_recon_kl.png",
                      {{rec_s, {"Test reconstruction vs latent size", "latent dimensions", "recon (nats per image)"}, false},
                       {kl_s, {"Test KL vs latent size", "latent dimensions", "KL (nats per image)"}, false}},
                      1400, 520);
      line_plot_png(opt.out + "/sweep_rate_distortion.png", rd_s,
                    {"Rate-distortion across beta (one line per latent size)", "distortion: recon (nats per image)",
                     "rate: KL (nats per image)"},
                    900, 620);
      log << "wrote " << opt.out << "/sweep_recon_kl.png\nwrote " << opt.out << "/sweep_rate_distortion.png\n";
    } else {
      log << "note: sweep plots skipped: this build has no PLplot\n";
    }
  } catch (const Error& e) {
    log << "note: sweep pictures not written: " << e.what() << "\n";
  }
}

}  // namespace

std::vector<RunSummary> run_sweep(const SweepOptions& opt, std::ostream& log) {
  const VaeKind kind = parse_vae_kind(opt.model);
  check_sweep_options(opt, kind);
  const std::vector<double> betas = kind == VaeKind::Ae ? std::vector<double>{0.0} : opt.betas;
  const std::vector<SweepConfig> configs = sweep_configs(opt, betas);
  if (kind == VaeKind::Ae && opt.betas.size() > 1) log << "note: --beta is ignored for --model ae\n";
  log << "sweep: " << configs.size() << " configurations of " << opt.model << " on " << opt.dataset << ", "
      << opt.epochs << " epochs each, into " << opt.out << "\n";
  ensure_dir(opt.out);
  const auto t0 = std::chrono::steady_clock::now();
  for (size_t i = 0; i < configs.size(); ++i) {
    const SweepConfig& c = configs[i];
    const std::string tag = "[" + std::to_string(i + 1) + "/" + std::to_string(configs.size()) + "] " + base_name(c.dir);
    if (!train_sweep_config(opt, kind, c, tag, log)) continue;
    log << tag << ": done (" << fmt(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count(), 0)
        << " s into the sweep)" << std::endl;
  }
  CompareOptions co;
  co.classifier = opt.classifier;
  co.data_dir = opt.data_dir;
  co.nll_k = opt.nll_k;
  co.limit = opt.limit;
  co.seed = opt.seed;
  co.device = opt.device;
  co.progress = opt.progress;
  co.picture = false;
  co.out = opt.out;
  for (const SweepConfig& c : configs) co.runs.push_back(c.dir);
  log << "evaluating " << configs.size() << " configurations on " << (opt.limit > 0 ? std::to_string(opt.limit) : "all")
      << " test images (NLL with K = " << opt.nll_k << ")" << std::endl;
  std::ostringstream quiet;
  std::vector<RunSummary> rows = compare_runs(co, quiet);

  write_sweep_tables(opt, rows, log);
  draw_sweep_plots(opt, kind, betas, rows, log);
  return rows;
}

}  // namespace cuvae
