// `cuvae serve`: the dashboard (apps/serve/server.h) behind a command.
#include <atomic>
#include <chrono>
#include <csignal>
#include <cstdlib>
#include <iostream>
#include <memory>
#include <thread>

#include "apps/serve/server.h"
#include "commands.h"
#include "core/check.h"
#include "flags.h"

namespace cuvae::app {

namespace {

#ifdef CUVAE_HAS_SERVE
std::atomic<bool> g_stop{false};
void on_signal(int) { g_stop = true; }
#endif

/// Runs the dashboard as `opt` says until SIGINT or SIGTERM, printing its address and, at the
/// end, "stopped". Throws cuvae::Error when this build has no server, and as serve::Server.
void serve_until_stopped(const serve::ServeOptions& opt) {
#ifndef CUVAE_HAS_SERVE
  (void)opt;
  CUVAE_FAIL("serve is unavailable: this build of cuvae has no cpp-httplib (install libcpp-httplib-dev and rebuild)");
#else
  // OpenMP threads that sleep when idle: the worker runs short tasks between waits.
  setenv("OMP_WAIT_POLICY", "PASSIVE", 0);
  serve::Server server(opt, std::cerr);
  const int port = server.bind();
  const std::string shown = opt.host.find(':') != std::string::npos ? "[" + opt.host + "]" : opt.host;
  std::cout << "serving the dashboard at http://" << shown << ":" << port << "/  (API: /api/info; Ctrl-C stops)"
            << std::endl;
  std::signal(SIGINT, on_signal);
  std::signal(SIGTERM, on_signal);
  std::thread watcher([&] {
    while (!g_stop) std::this_thread::sleep_for(std::chrono::milliseconds(100));
    server.stop();
  });
  server.run();
  g_stop = true;
  watcher.join();
  std::cout << "stopped" << std::endl;
#endif
}

}  // namespace

void add_serve_command(CLI::App& app, std::vector<Command>& commands) {
  auto job = std::make_shared<serve::ServeOptions>();
  serve::ServeOptions& o = *job;
  CLI::App* c = app.add_subcommand(
      "serve",
      "The live dashboard: a web page at http://HOST:PORT/ with latent sliders, class-anchored generation, "
      "classification and Grad-CAM, interpolation, the latent map and training curves, over a JSON API (docs/api.md)");
  c->add_option("--vae", o.vae, "VAE model.safetensors written by train-vae")->required();
  c->add_option("--classifier", o.classifier, "Classifier model.safetensors (enables classify, Grad-CAM, predictions)");
  c->add_option("--run", o.run, "A train-vae run folder whose metrics.csv (and validation.json) the page plots");
  c->add_option("--embedding", o.embedding, "An `cuvae embed` output folder whose map the page shows");
  add_dataset_flag(c, o.dataset, "Data set: " + dataset_list() + " (default: the one the VAE was trained on)");
  add_data_flag(c, o.data);
  c->add_option("--host", o.host, "Address to listen on (other than loopback prints a warning: there is no authentication)")
      ->capture_default_str();
  c->add_option("--port", o.port, "Port (0: any free port)")->check(CLI::Range(0, 65535))->capture_default_str();
  add_device_flag(c, o.device);
  commands.push_back({c, [job] { serve_until_stopped(*job); }});
}

}  // namespace cuvae::app
