// `cuvae serve`: the dashboard's HTTP server. Serves the page (apps/serve/web/, embedded in the
// binary) and the JSON API of docs/api.md. Every request is validated on the HTTP thread that
// received it; model work runs on one worker thread that owns the Context and the models, so
// concurrent requests never share a Context. Handlers call the jobs of models/ (decode,
// encode, anchor, interpolate, classify, Grad-CAM); none of that logic lives here.
#pragma once

#include <memory>
#include <ostream>
#include <string>

#include "apps/serve/requests.h"  // kMaxBody, HttpError, the request parsers
#include "core/context.h"

namespace cuvae::serve {

/// Everything `cuvae serve` takes.
struct ServeOptions {
  std::string vae;         ///< VAE checkpoint (required)
  std::string classifier;  ///< classifier checkpoint (optional)
  std::string run;         ///< a train-vae run folder: metrics.csv, validation.json (optional)
  std::string embedding;   ///< an `embed` output folder: embedding.csv (optional)
  std::string dataset;     ///< default: the VAE's data set
  std::string data;        ///< default: default_data_dir(dataset)
  std::string host = "127.0.0.1";
  int port = 8080;         ///< 0 = any free port
  DeviceRequest device = DeviceRequest::Auto;
};

/// The dashboard server. Construction loads the models and the test data and computes the
/// per-dimension KL (on the worker); bind() opens the socket; run() serves until stop().
class Server {
 public:
  /// Throws cuvae::Error naming the file or flag when a checkpoint cannot be loaded, is of the
  /// wrong kind, or the classifier's image shape differs from the VAE's. Missing test data is
  /// not an error: endpoints that need it answer 404. Notes go to `log`.
  Server(const ServeOptions& opt, std::ostream& log);
  ~Server();
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  /// Binds to opt.host:opt.port (port 0: a free port) and returns the port. Throws cuvae::Error
  /// when the address cannot be bound.
  int bind();
  /// Serves requests until stop() (blocks). bind() must have succeeded.
  void run();
  /// Stops run() from another thread; safe to call more than once.
  void stop();
  /// The bound port (0 before bind()).
  int port() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

/// True when `host` names a loopback address (127.0.0.0/8, ::1, localhost).
bool is_loopback(const std::string& host);

}  // namespace cuvae::serve
