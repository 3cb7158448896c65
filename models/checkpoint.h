// Model checkpoints in the safetensors format, loadable by PyTorch's load_state_dict.
#pragma once

#include <memory>
#include <string>

#include <nlohmann/json.hpp>

#include "io/safetensors.h"
#include "layers/param.h"
#include "models/conv_vae.h"
#include "models/resnet18.h"

namespace cuvae {

/// Writes every parameter of `ps` as an F32 tensor under its PyTorch name, plus
/// `__metadata__` {"format": "pt", "config": <config as JSON text>}, atomically to `path`.
/// Throws cuvae::Error naming `path` when it cannot be written.
void save_params(const std::string& path, const ParamStore& ps, const nlohmann::json& config);

/// Prefix of the weights inside a trainer's optim.safetensors (the full training state: weights,
/// optimizer buffers, position), e.g. "model.enc.conv1.weight".
inline constexpr const char* kStateWeightsPrefix = "model.";

/// Adds every parameter of `ps` to `w` as F32 under `prefix` + its name. Host parameters are
/// borrowed, not copied: `ps` must outlive `w`'s write and not change before it.
void add_params(SafetensorsWriter& w, const ParamStore& ps, const std::string& prefix);

/// Copies every parameter of `ps` from the tensors `prefix` + name of `file` and returns true;
/// returns false, leaving `ps` unchanged, when the file has none of them. Throws cuvae::Error
/// naming the file and tensor when only some exist or one has the wrong shape or dtype.
bool load_params_prefixed(const SafetensorsFile& file, ParamStore& ps, const std::string& prefix);

/// The model config stored in a checkpoint's `__metadata__["config"]`. Throws cuvae::Error
/// naming the file when it is missing or not valid JSON.
nlohmann::json checkpoint_config(const SafetensorsFile& file);

/// Copies every parameter of `ps` from `file`, checking that each exists with the declared
/// shape and dtype F32 and that the file holds no other tensors. Throws cuvae::Error naming
/// the file and the tensor otherwise; `ps` is unchanged on error.
void load_params(const SafetensorsFile& file, ParamStore& ps);

/// The config of a ConvVAE state dict saved without cuvae's metadata (e.g. by PyTorch's
/// safetensors writers): C from enc.conv1.weight [32, C, 4, 4], D from enc.mu.weight [D, 256],
/// H = W = 4·s from dec.fc2.weight [64·s·s, 256], K = columns of enc.fc.weight − 64·s·s (K > 0: a
/// CVAE), an AE when there is no enc.logvar.weight; beta 1 (AE 0), BCE, data set unknown. A file
/// with enc.conv_in.weight [32, C, 3, 3] is the residual network (VaeArch::Resnet, F = 128 in
/// place of 64 above).
/// Throws cuvae::Error naming the file, the first tensor that does not fit and the shape expected.
VaeConfig infer_vae_config(const SafetensorsFile& file);

/// The config of a ResNet-18 state dict without cuvae's metadata: width W from conv1.weight
/// [W, C, 3, 3], classes K from fc.weight [K, 8·W], the input size from `dataset` ("mnist",
/// "fashion-mnist": 1×28×28; "cifar10": 3×32×32). Throws cuvae::Error naming the file when
/// `dataset` is empty or unknown, or a tensor does not fit.
ResNetConfig infer_resnet_config(const SafetensorsFile& file, const std::string& dataset);

/// Reads a ConvVAE checkpoint (config + weights: a VAE or an AE, and a CVAE when `allow_cvae`)
/// onto `device`; a state dict without cuvae's config is read by infer_vae_config. Throws
/// cuvae::Error naming `path` for a missing, damaged or non-VAE file (a classifier is named as such), a CVAE where it is not allowed (the commands that
/// need an unconditional model), or a parameter of the wrong shape.
std::unique_ptr<ConvVAE> load_vae(const std::string& path, Device device, bool allow_cvae = false);

/// Writes a ResNet18 as torchvision's state_dict: every parameter and BatchNorm running_mean /
/// running_var as F32, each BatchNorm's num_batches_tracked as a 0-d I64, and `__metadata__`
/// {"format": "pt", "config": ResNetConfig JSON}, atomically to `path`. Throws cuvae::Error
/// naming `path` when it cannot be written.
void save_resnet(const std::string& path, ResNet18& model);

/// Reads a ResNet18 checkpoint written by save_resnet onto `device`, or a torchvision-named state
/// dict without cuvae's config (infer_resnet_config, input size from `dataset`). Throws
/// cuvae::Error naming `path` for a missing or damaged file, a VAE checkpoint (named as such), a
/// missing, extra or mis-shaped tensor; nothing is half-loaded.
std::unique_ptr<ResNet18> load_resnet(const std::string& path, Device device, const std::string& dataset = "");

}  // namespace cuvae
