#include "models/checkpoint.h"

#include <algorithm>

#include "host/check.h"

namespace cuvae {

void save_params(const std::string& path, const ParamStore& ps, const nlohmann::json& config) {
  const std::vector<float> all = ps.flat_values().to_vector();
  SafetensorsWriter w;
  for (const ParamInfo& p : ps.params()) {
    std::vector<float> v(all.begin() + p.offset, all.begin() + p.offset + p.numel);
    w.add_f32(p.name, p.shape, v);
  }
  w.set_metadata("format", "pt");
  w.set_metadata("config", config.dump());
  w.write(path);
}

nlohmann::json checkpoint_config(const SafetensorsFile& file) {
  auto it = file.metadata.find("config");
  if (it == file.metadata.end())
    CUVAE_FAIL(file.path << ": no model config in the safetensors metadata (not a cuvae checkpoint?)");
  nlohmann::json j = nlohmann::json::parse(it->second, nullptr, false);
  if (j.is_discarded() || !j.is_object())
    CUVAE_FAIL(file.path << ": the model config in the metadata is not a JSON object");
  return j;
}

namespace {
// Copies every parameter of `ps` from `file` (checked: present, F32, declared shape); other
// tensors in the file are ignored. `ps` is unchanged on error.
void load_params_subset(const SafetensorsFile& file, ParamStore& ps) {
  std::vector<float> all(static_cast<size_t>(ps.flat_values().numel()), 0.0f);
  for (const ParamInfo& p : ps.params()) {
    std::vector<float> v = file.f32(p.name, p.shape);
    std::copy(v.begin(), v.end(), all.begin() + p.offset);
  }
  memcpy_any(ps.flat_values().data(), ps.flat_values().device(), all.data(), Device::CPU,
             ps.flat_values().bytes());
}
}  // namespace

void load_params(const SafetensorsFile& file, ParamStore& ps) {
  for (const auto& kv : file.tensors)
    if (ps.find(kv.first) < 0) CUVAE_FAIL(file.path << ": unexpected tensor '" << kv.first << "' for this model");
  load_params_subset(file, ps);
}

std::unique_ptr<ConvVAE> load_vae(const std::string& path, Device device, bool allow_cvae) {
  SafetensorsFile f = read_safetensors(path);
  const nlohmann::json j = checkpoint_config(f);
  if (j.contains("model") && j.at("model") == "resnet18")
    CUVAE_FAIL(path << " is a classifier checkpoint (resnet18, written by train-classifier); expected a VAE "
                       "checkpoint written by train-vae");
  VaeConfig cfg = VaeConfig::from_json(j, path);
  if (cfg.is_cvae() && !allow_cvae)
    CUVAE_FAIL(path << " is a conditional VAE (CVAE) checkpoint; this command needs an unconditional one "
                       "(train-vae --model vae or ae). A CVAE works with train-vae --resume, eval-vae, sample and validate");
  auto model = std::make_unique<ConvVAE>(cfg, device);
  load_params(f, model->params());
  return model;
}


void save_resnet(const std::string& path, ResNet18& model) {
  const std::vector<float> all = model.params().flat_values().to_vector();
  const std::vector<float> buf = model.buffers().flat_values().to_vector();
  SafetensorsWriter w;
  for (const ParamInfo& p : model.params().params())
    w.add_f32(p.name, p.shape, std::vector<float>(all.begin() + p.offset, all.begin() + p.offset + p.numel));
  for (const ParamInfo& p : model.buffers().params())
    w.add_f32(p.name, p.shape, std::vector<float>(buf.begin() + p.offset, buf.begin() + p.offset + p.numel));
  for (const std::string& bn : model.batchnorm_names())
    w.add_i64(bn + ".num_batches_tracked", {}, {model.num_batches_tracked()});
  w.set_metadata("format", "pt");
  w.set_metadata("config", model.config().to_json().dump());
  w.write(path);
}

std::unique_ptr<ResNet18> load_resnet(const std::string& path, Device device) {
  SafetensorsFile f = read_safetensors(path);
  ResNetConfig cfg = ResNetConfig::from_json(checkpoint_config(f), path);
  auto model = std::make_unique<ResNet18>(cfg, device);
  int64_t nbt = -1;
  for (const std::string& bn : model->batchnorm_names()) {
    const int64_t v = f.i64(bn + ".num_batches_tracked", {}).at(0);
    CUVAE_CHECK(v >= 0, path << ": tensor '" << bn << ".num_batches_tracked' is negative (" << v << ")");
    nbt = std::max(nbt, v);
  }
  for (const auto& kv : f.tensors) {
    const std::string& name = kv.first;
    const std::string suffix = ".num_batches_tracked";
    const bool is_nbt = name.size() > suffix.size() && name.compare(name.size() - suffix.size(), suffix.size(), suffix) == 0;
    if (model->params().find(name) < 0 && model->buffers().find(name) < 0 && !is_nbt)
      CUVAE_FAIL(path << ": unexpected tensor '" << name << "' for a ResNet18 of width " << cfg.base_width);
  }
  // Both loads validate every tensor before writing anything.
  load_params_subset(f, model->params());
  load_params_subset(f, model->buffers());
  model->set_num_batches_tracked(nbt);
  return model;
}

}  // namespace cuvae
