// Model checkpoints in the safetensors format, loadable by PyTorch's load_state_dict.
#pragma once

#include <memory>
#include <string>

#include <nlohmann/json.hpp>

#include "host/safetensors.h"
#include "layers/param.h"
#include "models/conv_vae.h"
#include "models/resnet18.h"

namespace cuvae {

/// Writes every parameter of `ps` as an F32 tensor under its PyTorch name, plus
/// `__metadata__` {"format": "pt", "config": <config as JSON text>}, atomically to `path`.
/// Throws cuvae::Error naming `path` when it cannot be written.
void save_params(const std::string& path, const ParamStore& ps, const nlohmann::json& config);

/// The model config stored in a checkpoint's `__metadata__["config"]`. Throws cuvae::Error
/// naming the file when it is missing or not valid JSON.
nlohmann::json checkpoint_config(const SafetensorsFile& file);

/// Copies every parameter of `ps` from `file`, checking that each exists with the declared
/// shape and dtype F32 and that the file holds no other tensors. Throws cuvae::Error naming
/// the file and the tensor otherwise; `ps` is unchanged on error.
void load_params(const SafetensorsFile& file, ParamStore& ps);

/// Reads a ConvVAE checkpoint (config + weights: a VAE or an AE, and a CVAE when `allow_cvae`)
/// onto `device`. Throws cuvae::Error naming `path` for a missing, damaged or non-VAE file (a
/// classifier checkpoint is named as such), a CVAE where it is not allowed (the commands that
/// need an unconditional model), or a parameter of the wrong shape.
std::unique_ptr<ConvVAE> load_vae(const std::string& path, Device device, bool allow_cvae = false);

/// Writes a ResNet18 as torchvision's state_dict: every parameter and BatchNorm running_mean /
/// running_var as F32, each BatchNorm's num_batches_tracked as a 0-d I64, and `__metadata__`
/// {"format": "pt", "config": ResNetConfig JSON}, atomically to `path`. Throws cuvae::Error
/// naming `path` when it cannot be written.
void save_resnet(const std::string& path, ResNet18& model);

/// Reads a ResNet18 checkpoint written by save_resnet onto `device`. Throws cuvae::Error naming
/// `path` for a missing or damaged file, a VAE checkpoint (named as such), a missing, extra or
/// mis-shaped tensor; nothing is half-loaded.
std::unique_ptr<ResNet18> load_resnet(const std::string& path, Device device);

}  // namespace cuvae
