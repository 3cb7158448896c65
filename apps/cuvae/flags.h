// How the cuvae program registers its flags: every command owns one job options struct and binds
// each flag straight to one of its fields. The flags several commands share (device, data set,
// output, progress, seed, training limits) are registered by the helpers below, which take the
// fields they fill; a flag that names a choice (--device, --model, --cuda-graph) stores the parsed
// value, so no command keeps a string to translate later.
#pragma once

#include <CLI/CLI.hpp>
#include <cstdint>
#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "core/context.h"

namespace cuvae::app {

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

/// Adds the TEXT option `name` that accepts one of `choices` (listed in the help) and stores
/// `parse(text)` in `field` when given; the help shows `default_text` as the default, which must
/// be the text of the field's initial value.
template <class T>
CLI::Option* add_choice_option(CLI::App* c, const std::string& name, T& field, const std::vector<std::string>& choices,
                               std::function<T(const std::string&)> parse, const std::string& default_text,
                               const std::string& help) {
  return c
      ->add_option_function<std::string>(
          name, [&field, parse = std::move(parse)](const std::string& s) { field = parse(s); }, help)
      ->check(CLI::IsMember(choices))
      ->default_str(default_text);
}

/// A flag `name` that, when given, sets `field` to `value` (--no-augment: false; --exact:
/// TsneMethod::Exact).
template <class T>
CLI::Option* add_value_flag(CLI::App* c, const std::string& name, T& field, T value, const std::string& help) {
  return c->add_flag_callback(name, [&field, value] { field = value; }, help);
}

/// The --device help of the commands that train or look inside a model.
inline const std::string kDeviceHelpAuto = "auto (GPU when one works, else CPU), cpu or cuda";

/// --device auto|cpu|cuda into `device`.
CLI::Option* add_device_flag(CLI::App* c, DeviceRequest& device, const std::string& help = "auto, cpu or cuda");

/// --dataset (one of dataset_list()) into `dataset`; the help shows the field's value as the
/// default when it has one. `help` defaults to "Data set: mnist|fashion-mnist|cifar10".
CLI::Option* add_dataset_flag(CLI::App* c, std::string& dataset, const std::string& help = "");

/// --data FOLDER into `data` (empty: the data set's default folder).
CLI::Option* add_data_flag(CLI::App* c, std::string& data,
                           const std::string& help = "Folder with the data set's files (default: data/<dataset>)");

/// --out into `out`, its initial value shown as the default.
CLI::Option* add_out_flag(CLI::App* c, std::string& out, const std::string& help = "Output folder");

/// --seed into `seed`, its initial value shown as the default.
CLI::Option* add_seed_flag(CLI::App* c, uint64_t& seed, const std::string& help);

/// --components into `components`: mixture components per class that class-anchored sampling
/// fits to the codes of each class (1..64; 1: the class's own Gaussian), default shown.
CLI::Option* add_components_flag(CLI::App* c, int& components);

/// --scale into `scale` (PNG enlargement), its initial value shown as the default. Callers add
/// the range check their job allows.
CLI::Option* add_scale_flag(CLI::App* c, int& scale, const std::string& help = "Enlarge PNG images by this factor");

/// --no-progress: sets `progress` to false.
CLI::Option* add_no_progress_flag(CLI::App* c, bool& progress, const std::string& help = "No progress bar");

/// --cuda-graph on|off into `cuda_graph`.
CLI::Option* add_cuda_graph_flag(CLI::App* c, bool& cuda_graph);

/// --accumulate A (gradient accumulation) into `accumulate`, for train-vae and train-classifier.
void add_accumulate_flag(CLI::App* c, int& accumulate);

/// --train-limit and --test-limit of the trainers (0 = all images).
void add_train_test_limit_flags(CLI::App* c, int64_t& train_limit, int64_t& test_limit);

/// Settings of the whole process that every command running a model takes: --cpu-backend and
/// --nondeterministic.
struct BackendFlags {
  /// --cpu-backend onednn|reference|emu, parsed by apply_backend_flags (after the command line,
  /// since onednn is an error only a build without oneDNN reports).
  std::string cpu_backend = cpu_backend_name(default_cpu_backend());
  bool nondeterministic = false;  ///< time cuDNN's algorithms instead of the deterministic choice
};

/// Adds --nondeterministic and --cpu-backend, bound to `flags`, to every subcommand of `app` that
/// has --device (every command that runs a model). Call after all commands are added.
void add_backend_flags(CLI::App& app, BackendFlags& flags);

/// Applies `flags` as the process-wide defaults of new contexts. Throws cuvae::Error naming
/// --cpu-backend for onednn in a build without oneDNN.
void apply_backend_flags(const BackendFlags& flags);

}  // namespace cuvae::app
