// Subcommand registration shared by the files of the cuvae program. Each add_* function adds its
// commands in one style: a job options struct owned by the command (a shared_ptr its callback
// keeps), every flag bound to one of its fields (shared flag groups through flags.h), and a
// callback that calls one job and prints where its outputs went.
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

/// Prints "wrote PATH" for each path, one a line, to standard output: where a job's files went.
void print_written(const std::vector<std::string>& paths);

/// Adds train-vae and eval-vae to `app`.
void add_vae_commands(CLI::App& app, std::vector<Command>& commands);

/// Adds train-classifier, eval-classifier, anchor, validate and gradcam to `app`.
void add_classifier_commands(CLI::App& app, std::vector<Command>& commands);

/// Adds interpolate, arithmetic, traverse and embed (the latent-space tools), plot and report to `app`.
void add_latent_commands(CLI::App& app, std::vector<Command>& commands);

/// Adds compare, sample and sweep (generation and the AE/VAE, latent-size and beta studies) to `app`.
void add_study_commands(CLI::App& app, std::vector<Command>& commands);

/// Adds serve (the dashboard server) to `app`.
void add_serve_command(CLI::App& app, std::vector<Command>& commands);

}  // namespace cuvae::app
