// The flag helpers shared by the cuvae program's commands (see flags.h).
#include "flags.h"

#include "io/dataset.h"

namespace cuvae::app {

std::string dataset_list() {
  std::string s;
  for (const std::string& n : cuvae::dataset_names()) s += (s.empty() ? "" : "|") + n;
  return s;
}

DatasetValidator::DatasetValidator() {
  name_ = "DATASET";
  func_ = [](const std::string& s) -> std::string {
    for (const std::string& n : cuvae::dataset_names())
      if (s == n) return {};
    return "expected one of " + dataset_list() + ", got '" + s + "'";
  };
}

DeviceValidator::DeviceValidator() {
  name_ = "DEVICE";
  func_ = [](const std::string& s) -> std::string {
    if (s == "auto" || s == "cpu" || s == "cuda") return {};
    return "expected auto, cpu or cuda, got '" + s + "'";
  };
}

namespace {
const char* device_text(DeviceRequest d) {
  switch (d) {
    case DeviceRequest::CPU: return "cpu";
    case DeviceRequest::CUDA: return "cuda";
    case DeviceRequest::Auto: break;
  }
  return "auto";
}
}  // namespace

CLI::Option* add_device_flag(CLI::App* c, DeviceRequest& device, const std::string& help) {
  static const DeviceValidator device_ok;
  return c
      ->add_option_function<std::string>(
          "--device", [&device](const std::string& s) { device = parse_device(s); }, help)
      ->check(device_ok)
      ->default_str(device_text(device));
}

CLI::Option* add_dataset_flag(CLI::App* c, std::string& dataset, const std::string& help) {
  static const DatasetValidator dataset_ok;
  return c->add_option("--dataset", dataset, help.empty() ? "Data set: " + dataset_list() : help)
      ->check(dataset_ok)
      ->capture_default_str();
}

CLI::Option* add_data_flag(CLI::App* c, std::string& data, const std::string& help) {
  return c->add_option("--data", data, help);
}

CLI::Option* add_out_flag(CLI::App* c, std::string& out, const std::string& help) {
  return c->add_option("--out", out, help)->capture_default_str();
}

CLI::Option* add_seed_flag(CLI::App* c, uint64_t& seed, const std::string& help) {
  return c->add_option("--seed", seed, help)->capture_default_str();
}

CLI::Option* add_components_flag(CLI::App* c, int& components) {
  return c
      ->add_option("--components", components,
                   "Anchored samples: Gaussian-mixture components fitted to each class's codes (1: the class's own "
                   "mean and covariance); kept beside the checkpoint with the class statistics")
      ->check(CLI::Range(1, 64))
      ->capture_default_str();
}

CLI::Option* add_scale_flag(CLI::App* c, int& scale, const std::string& help) {
  return c->add_option("--scale", scale, help)->capture_default_str();
}

CLI::Option* add_no_progress_flag(CLI::App* c, bool& progress, const std::string& help) {
  return add_value_flag(c, "--no-progress", progress, false, help);
}

CLI::Option* add_cuda_graph_flag(CLI::App* c, bool& cuda_graph) {
  return add_choice_option<bool>(
      c, "--cuda-graph", cuda_graph, {"on", "off"}, [](const std::string& s) { return s == "on"; },
      cuda_graph ? "on" : "off",
      "on: on a GPU, capture one training step as a CUDA graph after a warm-up step and replay it for every step; "
      "off: launch every kernel every step");
}

void add_accumulate_flag(CLI::App* c, int& accumulate) {
  c->add_option("--accumulate", accumulate,
                "Gradient accumulation: run each step (each rank's share of it under mpirun) as A micro-batches "
                "of batch/A images and update once from their mean gradient; the same training in less memory "
                "(one process with A = N rounds as N ranks do)")
      ->check(CLI::Range(1, 4096))
      ->capture_default_str();
}

void add_train_test_limit_flags(CLI::App* c, int64_t& train_limit, int64_t& test_limit) {
  c->add_option("--train-limit", train_limit, "Use only the first N training images (0 = all)")
      ->check(CLI::NonNegativeNumber);
  c->add_option("--test-limit", test_limit, "Evaluate on the first N test images (0 = all)")
      ->check(CLI::NonNegativeNumber);
}

void add_backend_flags(CLI::App& app, BackendFlags& flags) {
  const std::string backend_help =
      "CPU convolutions and batch norm: onednn (oneDNN, as PyTorch's CPU path) or reference (cuvae's own im2col + "
      "Eigen, what the tests check everything against); emu: the layers as reference, and every custom CUDA kernel's "
      "own source on the emulated CUDA device (many times slower, for checking the CUDA path without a GPU; "
      "CUVAE_EMU_SCHEDULE=forward|reverse|random:SEED orders its threads)" +
      std::string(onednn_built() ? "" : "; this build has no oneDNN");
  for (CLI::App* sub : app.get_subcommands([](CLI::App*) { return true; })) {
    if (sub->get_option_no_throw("--device") == nullptr) continue;
    sub->add_flag("--nondeterministic", flags.nondeterministic,
                  "GPU: time cuDNN's convolution algorithms and use the fastest, even when their results vary from run "
                  "to run (default: deterministic ones from cuDNN's heuristics, no timing, so the same seed gives the "
                  "same weights)");
    sub->add_option("--cpu-backend", flags.cpu_backend, backend_help)
        ->check(CLI::IsMember({"onednn", "reference", "emu"}))
        ->capture_default_str();
  }
}

void apply_backend_flags(const BackendFlags& flags) {
  set_default_cpu_backend(parse_cpu_backend(flags.cpu_backend));
  set_default_deterministic(!flags.nondeterministic);
}

}  // namespace cuvae::app
