#include "apps/serve/server.h"

#include <httplib.h>
#include <omp.h>

#include <chrono>
#include <cmath>
#include <condition_variable>
#include <cstdio>
#include <deque>
#include <functional>
#include <future>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <sstream>
#include <thread>

#include "apps/serve/web_assets.h"
#include "core/check.h"
#include "io/base64.h"
#include "io/csv.h"
#include "io/dataset.h"
#include "io/fs.h"
#include "io/image.h"
#include "jobs/analysis/latent.h"
#include "jobs/anchor.h"
#include "jobs/classifier_trainer.h"
#include "jobs/explain.h"
#include "models/checkpoint.h"

namespace cuvae::serve {

using nlohmann::json;

namespace {

[[noreturn]] void bad(const std::string& msg) { throw HttpError(400, msg); }

/// Runs tasks one at a time on its own thread: the only thread that touches the Context and models.
class Worker {
 public:
  Worker() : full_threads_(omp_get_max_threads()), thread_([this] { loop(); }) {}
  ~Worker() {
    {
      std::lock_guard<std::mutex> l(m_);
      stop_ = true;
    }
    cv_.notify_all();
    thread_.join();
  }
  /// Runs f() on the worker and returns its result (exceptions are rethrown here). `small`
  /// work (a few images) runs on one OpenMP thread: waking a team costs more than it saves.
  template <typename F>
  auto call(F f, bool small = false) -> decltype(f()) {
    using R = decltype(f());
    std::packaged_task<R()> task([this, f = std::move(f), small]() mutable {
      omp_set_num_threads(small ? 1 : full_threads_);
      return f();
    });
    std::future<R> fut = task.get_future();
    {
      std::lock_guard<std::mutex> l(m_);
      q_.emplace_back([&task] { task(); });
    }
    cv_.notify_one();
    return fut.get();
  }

 private:
  void loop() {
    for (;;) {
      std::function<void()> f;
      {
        std::unique_lock<std::mutex> l(m_);
        cv_.wait(l, [&] { return stop_ || !q_.empty(); });
        if (q_.empty()) return;
        f = std::move(q_.front());
        q_.pop_front();
      }
      f();
    }
  }
  std::mutex m_;
  std::condition_variable cv_;
  std::deque<std::function<void()>> q_;
  bool stop_ = false;
  const int full_threads_;  // OpenMP threads for large work (OMP_NUM_THREADS or the cores)
  std::thread thread_;
};

/// A run folder's CSV file (metrics.csv, embedding.csv) as {column: [values]}: integers stay JSON
/// integers (epoch, index, label), a field that is empty, not a number or not finite is null.
/// null when the file is missing or not a valid CSV table; a repeated column name keeps its first column.
json csv_columns(const std::string& path) {
  CsvTable t;
  try {
    t = CsvTable::read(path);
  } catch (const Error&) {
    return nullptr;
  }
  json cols = json::object();
  for (size_t k = 0; k < t.header().size(); ++k) {
    json values = json::array();
    for (size_t r = 0; r < t.rows(); ++r) {
      const std::optional<double> v = t.try_number(r, k);
      if (!v || !std::isfinite(*v))
        values.push_back(nullptr);
      else if (*v == std::floor(*v) && std::abs(*v) < 9.0e15)
        values.push_back(static_cast<int64_t>(*v));
      else
        values.push_back(*v);
    }
    if (!cols.contains(t.header()[k])) cols[t.header()[k]] = std::move(values);
  }
  return cols;
}

/// Gives every error status a JSON body {"error"} (unknown paths, 413 from the size limit, …) and
/// turns an exception that escapes a handler into 500 {"error": what()}.
void answer_errors_as_json(httplib::Server& http) {
  http.set_error_handler([](const httplib::Request&, httplib::Response& res) {
    if (!res.body.empty()) return;
    std::string msg = res.status == 404   ? "no such endpoint"
                      : res.status == 413 ? "request body larger than 1 MiB"
                      : res.status == 405 ? "method not allowed"
                      : res.status == 400 ? "malformed HTTP request"
                                          : "request failed";
    res.set_content(json{{"error", msg}}.dump(), "application/json");
  });
  http.set_exception_handler([](const httplib::Request&, httplib::Response& res, std::exception_ptr ep) {
    std::string msg = "internal error";
    try {
      if (ep) std::rethrow_exception(ep);
    } catch (const std::exception& e) {
      msg = e.what();
    } catch (...) {
    }
    res.status = 500;
    res.set_content(json{{"error", msg}}.dump(), "application/json");
  });
}

/// Wraps an API handler: its JSON answer with the server-side time in Server-Timing; an HttpError
/// as {"error"} with its status, any other cuvae::Error (input the models rejected: sizes,
/// ranges, the request's fault) as 400.
httplib::Server::Handler api(std::function<json(const httplib::Request&)> f) {
  return [f](const httplib::Request& req, httplib::Response& res) {
    const auto t0 = std::chrono::steady_clock::now();
    // Server-side time of the request (validation, model work, PNG encoding) for clients and benchmarks.
    auto timing = [&] {
      const double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
      char b[48];
      std::snprintf(b, sizeof b, "app;dur=%.3f", ms);
      res.set_header("Server-Timing", b);
    };
    try {
      res.set_content(f(req).dump(), "application/json");
      timing();
    } catch (const HttpError& e) {
      res.status = e.status;
      res.set_content(json{{"error", e.what()}}.dump(), "application/json");
    } catch (const Error& e) {
      res.status = 400;
      res.set_content(json{{"error", e.what()}}.dump(), "application/json");
    }
  };
}

/// A handler that answers 405 with {"error": msg}: a known API path asked with the wrong method.
httplib::Server::Handler wrong_method(const char* msg) {
  return [msg](const httplib::Request&, httplib::Response& res) {
    res.status = 405;
    res.set_content(json{{"error", msg}}.dump(), "application/json");
  };
}

std::string dirname_of(const std::string& path) {
  const size_t s = path.find_last_of('/');
  return s == std::string::npos ? "." : path.substr(0, s);
}

}  // namespace

bool is_loopback(const std::string& host) {
  return host == "localhost" || host == "::1" || host.rfind("127.", 0) == 0;
}

struct Server::Impl {
  ServeOptions opt;
  std::ostream& log;
  Worker worker;
  httplib::Server http;
  int port = 0;
  // Owned and used by the worker thread only.
  std::unique_ptr<Context> ctx;
  std::unique_ptr<ConvVAE> vae;
  std::unique_ptr<ResNet18> clf;
  std::optional<AnchorStats> stats;
  // Read-only after construction.
  VaeConfig vc;
  std::string dataset;
  std::vector<std::string> classes;
  std::optional<Dataset> test;
  json info;
  std::string embedding_json;  // empty: no --embedding
  int64_t num_classes = 10;

  RequestLimits limits;  // what requests are checked against (the shapes above)

  Impl(const ServeOptions& o, std::ostream& l) : opt(o), log(l) {}

  // ---- helpers used on the HTTP threads ----
  std::vector<float> test_image(int64_t i) { return dataset_images(*test, {i}, "index"); }
  std::string png(const float* planes, int c) const {
    return png_data_url(png_from_planes(planes, c, static_cast<int>(vc.height), static_cast<int>(vc.width)));
  }
  void need_classifier() const {
    if (!opt.classifier.size()) throw HttpError(404, "the server runs without a classifier (start it with --classifier FILE)");
  }
  json images_json(const std::vector<float>& px, int64_t n) const {
    json a = json::array();
    const int64_t P = vc.pixels();
    for (int64_t i = 0; i < n; ++i) a.push_back(png(px.data() + i * P, static_cast<int>(vc.channels)));
    return a;
  }
  // Worker-side: class probabilities of host images [n, C, H, W].
  std::vector<float> probabilities(const std::vector<float>& px, int64_t n) {
    Tensor x = Tensor::from_vector(px, {n, vc.channels, vc.height, vc.width}, Device::CPU).to(ctx->device());
    return clf->classify(*ctx, x);
  }

  // ---- routes (registered once, by the constructor) ----
  /// Registers everything below, in this order.
  void routes();
  /// Body size limit, socket options for small answers, JSON bodies for every error status.
  void serve_json_quickly();
  /// GET / (and /index.html) and the page's other files, from the embedded web assets.
  void page_routes();
  /// The JSON API of docs/api.md: api_table() through api(), and GET /api/embedding.
  void api_routes();
  /// 405 for every API path asked with a method it does not take.
  void wrong_method_routes();

  /// One API route: GET or POST `path`, answered by `handler` through api().
  struct ApiRoute {
    bool post;
    const char* path;
    json (Impl::*handler)(const httplib::Request&);
  };
  /// Every route answered through api(), in registration order.
  static const std::vector<ApiRoute>& api_table();

  // One handler per API route (docs/api.md). They run on the HTTP threads: the request is
  // validated there, and model work goes to the worker.
  /// GET /api/info: the models, classes, test-set size and device (computed at start).
  json api_info(const httplib::Request&);
  /// POST /api/decode: one PNG per latent row.
  json api_decode(const httplib::Request& req);
  /// POST /api/encode: μ, log σ² and the reconstruction of a test image or an uploaded one.
  json api_encode(const httplib::Request& req);
  /// POST /api/anchor: class-anchored samples (and the classifier's predictions of them).
  json api_anchor(const httplib::Request& req);
  /// POST /api/interpolate: the decoded path between two test images.
  json api_interpolate(const httplib::Request& req);
  /// POST /api/classify: the classifier's probabilities for an uploaded image.
  json api_classify(const httplib::Request& req);
  /// POST /api/gradcam: the Grad-CAM map of an uploaded image, raw and as pictures.
  json api_gradcam(const httplib::Request& req);
  /// GET /api/metrics: the run folders' metrics.csv as columns, and validation.json.
  json api_metrics(const httplib::Request&);
  /// GET /api/embedding: the --embedding folder's points (JSON made once at start), or 404.
  void api_embedding(httplib::Response& res) const;
};

Server::Server(const ServeOptions& opt, std::ostream& log) : impl_(std::make_unique<Impl>(opt, log)) {
  Impl& s = *impl_;
  if (opt.vae.empty()) CUVAE_FAIL("--vae is required");
  // Models live on the worker thread.
  s.worker.call([&] {
    s.ctx = std::make_unique<Context>(opt.device);
    s.vae = load_vae(opt.vae, s.ctx->device());
    // A classifier saved by PyTorch (no cuvae config) takes its input size from the data set.
    if (!opt.classifier.empty())
      s.clf = load_resnet(opt.classifier, s.ctx->device(),
                          !opt.dataset.empty() ? opt.dataset : (s.vae->config().dataset.empty() ? "mnist" : s.vae->config().dataset));
    return 0;
  });
  s.vc = s.vae->config();
  s.dataset = !opt.dataset.empty() ? opt.dataset : (s.vc.dataset.empty() ? "mnist" : s.vc.dataset);
  if (s.clf) {
    const ResNetConfig& rc = s.clf->config();
    if (rc.channels != s.vc.channels || rc.height != s.vc.height || rc.width != s.vc.width)
      CUVAE_FAIL(opt.classifier << " classifies " << rc.channels << "x" << rc.height << "x" << rc.width << " images; "
                                << opt.vae << " makes " << s.vc.channels << "x" << s.vc.height << "x" << s.vc.width);
    s.num_classes = rc.classes;
  }
  s.classes = class_names(s.dataset);
  try {
    s.test = load_dataset(s.dataset, opt.data.empty() ? default_data_dir(s.dataset) : opt.data, false);
    if (s.test->c != s.vc.channels || s.test->h != s.vc.height || s.test->w != s.vc.width) {
      log << "note: the " << s.dataset << " test images do not fit the VAE; serving without test images\n";
      s.test.reset();
    }
  } catch (const Error& e) {
    log << "note: no test data (" << e.what() << "); endpoints that take a test index answer 404\n";
  }
  json kl = nullptr;
  if (s.test) {
    const LatentDimStats st = s.worker.call([&] {
      return latent_dim_stats(encode_dataset(*s.ctx, *s.vae, *s.test, std::min<int64_t>(2000, s.test->n)));
    });
    kl = st.kl;
  }
  if (!opt.embedding.empty()) {
    const std::string path = opt.embedding + "/embedding.csv";
    json cols = csv_columns(path);
    if (cols.is_null() || !cols.contains("x") || !cols.contains("y") || !cols.contains("label") || !cols.contains("index"))
      CUVAE_FAIL("--embedding " << opt.embedding << ": no readable embedding.csv with columns index,label,x,y");
    std::string method = "unknown";
    try {
      const json ej = json::parse(read_file(opt.embedding + "/embed.json"));
      method = ej.value("method", method);
    } catch (const std::exception&) {
    }
    cols["method"] = method;
    s.embedding_json = cols.dump();
  }
  const bool have_metrics = (!opt.run.empty() && file_exists(opt.run + "/metrics.csv")) ||
                            (!opt.classifier.empty() && file_exists(dirname_of(opt.classifier) + "/metrics.csv"));
  s.limits.latent = s.vc.latent;
  s.limits.num_classes = s.num_classes;
  s.limits.test_images = s.test ? s.test->n : 0;
  s.limits.channels = static_cast<int>(s.vc.channels);
  s.limits.height = static_cast<int>(s.vc.height);
  s.limits.width = static_cast<int>(s.vc.width);
  s.info = {{"vae",
             {{"latent", s.vc.latent}, {"channels", s.vc.channels}, {"height", s.vc.height}, {"width", s.vc.width},
              {"dataset", s.dataset}, {"kind", "vae"}, {"arch", vae_arch_name(s.vc.arch)}, {"kl_per_dim", kl},
              {"checkpoint", opt.vae}}},
            {"classifier", s.clf ? json{{"classes", s.clf->config().classes},
                                        {"width", s.clf->config().base_width},
                                        {"dataset", s.clf->config().dataset}}
                                 : json(nullptr)},
            {"classes", s.classes},
            {"test_images", s.test ? s.test->n : 0},
            {"device", s.ctx->description()},
            {"embedding", !s.embedding_json.empty()},
            {"metrics", have_metrics}};
  s.routes();
}

Server::~Server() { stop(); }

void Server::Impl::routes() {
  serve_json_quickly();
  page_routes();
  api_routes();
  wrong_method_routes();
}

void Server::Impl::serve_json_quickly() {
  http.set_payload_max_length(kMaxBody);
  // Small JSON answers: without TCP_NODELAY, Nagle's algorithm and the client's delayed ACK hold
  // the body back ~40 ms. Browsers reuse connections for many slider moves.
  http.set_tcp_nodelay(true);
  http.set_keep_alive_max_count(10000);
  answer_errors_as_json(http);
}

void Server::Impl::page_routes() {
  for (const WebAsset& a : web_assets()) {
    const WebAsset* ap = &a;
    auto file = [ap](const httplib::Request&, httplib::Response& res) {
      res.set_content(reinterpret_cast<const char*>(ap->data), ap->size, ap->content_type);
    };
    http.Get(a.name == "index.html" ? "/" : "/" + a.name, file);
    if (a.name == "index.html") http.Get("/index.html", file);
  }
}

const std::vector<Server::Impl::ApiRoute>& Server::Impl::api_table() {
  static const std::vector<ApiRoute> table = {
      {false, "/api/info", &Impl::api_info},
      {true, "/api/decode", &Impl::api_decode},
      {true, "/api/encode", &Impl::api_encode},
      {true, "/api/anchor", &Impl::api_anchor},
      {true, "/api/interpolate", &Impl::api_interpolate},
      {true, "/api/classify", &Impl::api_classify},
      {true, "/api/gradcam", &Impl::api_gradcam},
      {false, "/api/metrics", &Impl::api_metrics},
  };
  return table;
}

void Server::Impl::api_routes() {
  for (const ApiRoute& r : api_table()) {
    auto handler = api([this, f = r.handler](const httplib::Request& req) { return (this->*f)(req); });
    if (r.post)
      http.Post(r.path, handler);
    else
      http.Get(r.path, handler);
  }
  http.Get("/api/embedding", [this](const httplib::Request&, httplib::Response& res) { api_embedding(res); });
}

void Server::Impl::wrong_method_routes() {
  std::vector<std::string> posts, gets = {"/api/embedding"};
  for (const ApiRoute& r : api_table()) (r.post ? posts : gets).push_back(r.path);
  for (const std::string& p : posts) {
    http.Get(p, wrong_method("use POST with a JSON body"));
    http.Put(p, wrong_method("use POST with a JSON body"));
    http.Patch(p, wrong_method("use POST with a JSON body"));
    http.Delete(p, wrong_method("use POST with a JSON body"));
  }
  for (const std::string& p : gets) {
    http.Post(p, wrong_method("use GET"));
    http.Put(p, wrong_method("use GET"));
    http.Patch(p, wrong_method("use GET"));
    http.Delete(p, wrong_method("use GET"));
  }
}

json Server::Impl::api_info(const httplib::Request&) { return info; }

json Server::Impl::api_decode(const httplib::Request& req) {
  const DecodeRequest q = parse_decode_request(req.body, limits);
  const int64_t n = q.n;
  const std::vector<float> px = worker.call([&] { return decode_to_host(*ctx, *vae, q.z, n); }, n <= 16);
  return json{{"images", images_json(px, n)}};
}

json Server::Impl::api_encode(const httplib::Request& req) {
  EncodeRequest q = parse_encode_request(req.body, limits);
  const int64_t index = q.index;
  const std::vector<float> x = index >= 0 ? test_image(index) : std::move(q.image);
  const EncodedImages e = worker.call([&] { return encode_images(*ctx, *vae, x, 1); }, true);
  json r = {{"mu", e.mu},
            {"logvar", e.logvar},
            {"reconstruction", png(e.reconstruction.data(), static_cast<int>(vc.channels))},
            {"image", png(x.data(), static_cast<int>(vc.channels))}};
  if (index >= 0) r["label"] = test->labels[static_cast<size_t>(index)];
  return r;
}

json Server::Impl::api_anchor(const httplib::Request& req) {
  const AnchorRequest q = parse_anchor_request(req.body, limits);
  const int64_t k = q.cls, n = q.n;
  struct Out {
    std::vector<float> z, px, prob;
  };
  const Out o = worker.call([&] {
    if (!stats) {
      std::ostringstream quiet;
      try {
        stats = anchor_stats_for(*ctx, *vae, opt.vae, opt.data, quiet, false);
      } catch (const Error& e) {
        throw HttpError(404, std::string("class statistics unavailable: ") + e.what());
      }
    }
    if (k >= stats->classes) bad("'class' is " + std::to_string(k) + ", expected a class in [0, " + std::to_string(stats->classes - 1) + "]");
    Out r;
    r.z = sample_anchored(*stats, static_cast<int>(k), n, q.noise, q.seed);
    r.px = decode_to_host(*ctx, *vae, r.z, n);
    if (clf) r.prob = probabilities(r.px, n);
    return r;
  });
  json zs = json::array();
  const int64_t D = vc.latent;
  for (int64_t i = 0; i < n; ++i) zs.push_back(std::vector<float>(o.z.begin() + i * D, o.z.begin() + (i + 1) * D));
  json r = {{"images", images_json(o.px, n)}, {"z", zs}};
  if (clf) {
    const int64_t K = clf->config().classes;
    json preds = json::array();
    for (int64_t i = 0; i < n; ++i) {
      const float* p = o.prob.data() + i * K;
      const int64_t best = std::max_element(p, p + K) - p;
      preds.push_back({{"class", best}, {"confidence", p[best]}});
    }
    r["predictions"] = preds;
  }
  return r;
}

json Server::Impl::api_interpolate(const httplib::Request& req) {
  const InterpolateRequest q = parse_interpolate_request(req.body, limits);
  InterpolateOptions io;
  io.pairs = {{q.from, q.to}};
  io.steps = q.steps;
  io.mode = parse_interp_mode(q.mode);
  const InterpolateResult r = worker.call([&] { return interpolate(*ctx, *vae, *test, io); });
  const int64_t P = vc.pixels();
  std::vector<float> path(r.grid.pixels.begin() + P, r.grid.pixels.begin() + (1 + io.steps) * P);
  return json{{"images", images_json(path, io.steps)}, {"t", r.t}};
}

json Server::Impl::api_classify(const httplib::Request& req) {
  need_classifier();
  const std::vector<float> x = parse_classify_request(req.body, limits).image;
  const std::vector<float> p = worker.call([&] { return probabilities(x, 1); }, true);
  const int64_t best = std::max_element(p.begin(), p.end()) - p.begin();
  return json{{"probabilities", p}, {"class", best}, {"confidence", p[static_cast<size_t>(best)]}};
}

json Server::Impl::api_gradcam(const httplib::Request& req) {
  need_classifier();
  const GradcamRequest q = parse_gradcam_request(req.body, limits);
  const std::vector<float>& x = q.image;
  const std::string layer = q.layer == 3 ? "layer3" : "layer4";
  const int64_t k = q.cls;
  const GradcamResult g = worker.call([&] {
    Tensor xt = Tensor::from_vector(x, {1, vc.channels, vc.height, vc.width}, Device::CPU).to(ctx->device());
    return gradcam_explain(*ctx, *clf, xt, q.layer, static_cast<int>(k));
  });
  const int H = static_cast<int>(vc.height), W = static_cast<int>(vc.width);
  std::vector<float> heat_rgb(static_cast<size_t>(3 * H * W)), overlay(static_cast<size_t>(3 * H * W));
  for (int p = 0; p < H * W; ++p) {
    float rgb[3];
    turbo_rgb(g.heat[static_cast<size_t>(p)], rgb);
    for (int c = 0; c < 3; ++c) heat_rgb[static_cast<size_t>(c * H * W + p)] = rgb[c];
  }
  overlay_heatmap(x.data(), static_cast<int>(vc.channels), H, W, g.heat.data(), 0.5f, overlay.data());
  return json{{"heatmap", png(heat_rgb.data(), 3)},
              {"overlay", png(overlay.data(), 3)},
              {"cam", g.heat},
              {"class", g.predicted[0]},
              {"confidence", g.predicted_prob[0]},
              {"explained_class", g.target[0]},
              {"layer", layer}};
}

json Server::Impl::api_metrics(const httplib::Request&) {
  json vae_cols = opt.run.empty() ? json(nullptr) : csv_columns(opt.run + "/metrics.csv");
  json clf_cols = opt.classifier.empty() ? json(nullptr) : csv_columns(dirname_of(opt.classifier) + "/metrics.csv");
  json validation = nullptr;
  if (!opt.run.empty() && file_exists(opt.run + "/validation.json")) {
    try {
      validation = json::parse(read_file(opt.run + "/validation.json"));
    } catch (const std::exception&) {
    }
  }
  if (vae_cols.is_null() && clf_cols.is_null())
    throw HttpError(404, "no metrics: start the server with --run DIR (a train-vae run folder)");
  return json{{"vae", vae_cols}, {"classifier", clf_cols}, {"validation", validation}};
}

void Server::Impl::api_embedding(httplib::Response& res) const {
  if (embedding_json.empty()) {
    res.status = 404;
    res.set_content(json{{"error", "no embedding: start the server with --embedding DIR (an embed output folder)"}}.dump(),
                    "application/json");
    return;
  }
  res.set_content(embedding_json, "application/json");
}

int Server::bind() {
  Impl& s = *impl_;
  if (!is_loopback(s.opt.host))
    s.log << "warning: serving on " << s.opt.host << ", reachable from other machines; the API has no authentication\n";
  if (s.opt.port == 0) {
    s.port = s.http.bind_to_any_port(s.opt.host.c_str());
  } else {
    s.port = s.http.bind_to_port(s.opt.host.c_str(), s.opt.port) ? s.opt.port : -1;
  }
  if (s.port <= 0) CUVAE_FAIL("--host " << s.opt.host << " --port " << s.opt.port << ": cannot bind (address in use or not available)");
  return s.port;
}

void Server::run() { impl_->http.listen_after_bind(); }

void Server::stop() {
  if (impl_) impl_->http.stop();
}

int Server::port() const { return impl_->port; }

}  // namespace cuvae::serve
