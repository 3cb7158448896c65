#include "models/checkpoint.h"

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

void load_params(const SafetensorsFile& file, ParamStore& ps) {
  std::vector<float> all(static_cast<size_t>(ps.flat_values().numel()), 0.0f);
  for (const ParamInfo& p : ps.params()) {
    std::vector<float> v = file.f32(p.name, p.shape);
    std::copy(v.begin(), v.end(), all.begin() + p.offset);
  }
  for (const auto& kv : file.tensors)
    if (ps.find(kv.first) < 0) CUVAE_FAIL(file.path << ": unexpected tensor '" << kv.first << "' for this model");
  memcpy_any(ps.flat_values().data(), ps.flat_values().device(), all.data(), Device::CPU,
             ps.flat_values().bytes());
}

std::unique_ptr<ConvVAE> load_vae(const std::string& path, Device device) {
  SafetensorsFile f = read_safetensors(path);
  VaeConfig cfg = VaeConfig::from_json(checkpoint_config(f), path);
  auto model = std::make_unique<ConvVAE>(cfg, device);
  load_params(f, model->params());
  return model;
}

}  // namespace cuvae
