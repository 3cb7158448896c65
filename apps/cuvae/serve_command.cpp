// `cuvae serve`: the dashboard (apps/serve/server.h) behind a command.
#include <atomic>
#include <chrono>
#include <csignal>
#include <cstdlib>
#include <iostream>
#include <memory>
#include <thread>

#include "commands.h"
#include "core/check.h"
#include "core/context.h"
#ifdef CUVAE_HAS_SERVE
#include "apps/serve/server.h"
#endif

namespace cuvae::app {

namespace {
std::atomic<bool> g_stop{false};
void on_signal(int) { g_stop = true; }
}  // namespace

void add_serve_command(CLI::App& app, std::vector<Command>& commands) {
  static const DatasetValidator dataset_ok;
  static const DeviceValidator device_ok;
  struct Opt {
    std::string vae, classifier, run, embedding, dataset, data, host = "127.0.0.1", device = "auto";
    int port = 8080;
  };
  auto o = std::make_shared<Opt>();
  CLI::App* c = app.add_subcommand(
      "serve",
      "The live dashboard: a web page at http://HOST:PORT/ with latent sliders, class-anchored generation, "
      "classification and Grad-CAM, interpolation, the latent map and training curves, over a JSON API (docs/api.md)");
  c->add_option("--vae", o->vae, "VAE model.safetensors written by train-vae")->required();
  c->add_option("--classifier", o->classifier, "Classifier model.safetensors (enables classify, Grad-CAM, predictions)");
  c->add_option("--run", o->run, "A train-vae run folder whose metrics.csv (and validation.json) the page plots");
  c->add_option("--embedding", o->embedding, "An `cuvae embed` output folder whose map the page shows");
  c->add_option("--dataset", o->dataset, "Data set: " + dataset_list() + " (default: the one the VAE was trained on)")->check(dataset_ok);
  c->add_option("--data", o->data, "Folder with the data set's files (default: data/<dataset>)");
  c->add_option("--host", o->host, "Address to listen on (other than loopback prints a warning: there is no authentication)")
      ->capture_default_str();
  c->add_option("--port", o->port, "Port (0: any free port)")->check(CLI::Range(0, 65535))->capture_default_str();
  c->add_option("--device", o->device, "auto, cpu or cuda")->check(device_ok)->capture_default_str();
  commands.push_back({c, [o] {
#ifndef CUVAE_HAS_SERVE
    CUVAE_FAIL("serve is unavailable: this build of cuvae has no cpp-httplib (install libcpp-httplib-dev and rebuild)");
#else
    // OpenMP threads that sleep when idle: the worker runs short tasks between waits.
    setenv("OMP_WAIT_POLICY", "PASSIVE", 0);
    serve::ServeOptions so;
    so.vae = o->vae;
    so.classifier = o->classifier;
    so.run = o->run;
    so.embedding = o->embedding;
    so.dataset = o->dataset;
    so.data = o->data;
    so.host = o->host;
    so.port = o->port;
    so.device = parse_device(o->device);
    serve::Server server(so, std::cerr);
    const int port = server.bind();
    const std::string shown = so.host.find(':') != std::string::npos ? "[" + so.host + "]" : so.host;
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
  }});
}

}  // namespace cuvae::app
