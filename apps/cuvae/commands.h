// Subcommand registration shared by the files of the cuvae program.
#pragma once

#include <CLI/CLI.hpp>
#include <functional>
#include <string>
#include <vector>

namespace cuvae::app {

/// A registered subcommand and what to run when it was the one parsed.
struct Command {
  CLI::App* cli = nullptr;
  std::function<void()> run;
};

/// "mnist|fashion-mnist|cifar10".
std::string dataset_list();

/// Accepts one of dataset_names().
struct DatasetValidator : CLI::Validator {
  DatasetValidator();
};

/// Accepts auto, cpu or cuda.
struct DeviceValidator : CLI::Validator {
  DeviceValidator();
};

/// Adds train-vae and eval-vae to `app`.
void add_vae_commands(CLI::App& app, std::vector<Command>& commands);

/// Adds train-classifier, eval-classifier, anchor, validate and gradcam to `app`.
void add_classifier_commands(CLI::App& app, std::vector<Command>& commands);

/// Adds interpolate, arithmetic, traverse, embed (the latent-space tools) and plot to `app`.
void add_latent_commands(CLI::App& app, std::vector<Command>& commands);

/// Adds compare, sample and sweep (generation and the AE/VAE, latent-size and beta studies) to `app`.
void add_study_commands(CLI::App& app, std::vector<Command>& commands);

/// Adds serve (the dashboard server) to `app`.
void add_serve_command(CLI::App& app, std::vector<Command>& commands);

}  // namespace cuvae::app
