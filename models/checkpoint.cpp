#include "models/checkpoint.h"

#include <algorithm>
#include <sstream>

#include "core/check.h"

namespace cuvae {

void save_params(const std::string& path, const ParamStore& ps, const nlohmann::json& config) {
  SafetensorsWriter w;
  add_params(w, ps, "");
  w.set_metadata("format", "pt");
  w.set_metadata("config", config.dump());
  w.write(path);
}

void add_params(SafetensorsWriter& w, const ParamStore& ps, const std::string& prefix) {
  // Each parameter is a view of the flat block (host memory), or of one host copy of it (GPU):
  // the file is written from there, with no copy per tensor.
  const Tensor& flat = ps.flat_values();
  std::shared_ptr<const std::vector<float>> host;
  const float* all = flat.data();
  if (flat.device() != Device::CPU) {
    host = std::make_shared<const std::vector<float>>(flat.to_vector());
    all = host->data();
  }
  for (const ParamInfo& p : ps.params())
    w.add_view(prefix + p.name, "F32", p.shape, all + p.offset, static_cast<size_t>(p.numel) * sizeof(float), host);
}

bool load_params_prefixed(const SafetensorsFile& file, ParamStore& ps, const std::string& prefix) {
  int64_t found = 0;
  for (const ParamInfo& p : ps.params()) found += file.has(prefix + p.name) ? 1 : 0;
  if (found == 0) return false;
  std::vector<float> all(static_cast<size_t>(ps.flat_values().numel()), 0.0f);
  for (const ParamInfo& p : ps.params()) {
    std::vector<float> v = file.f32(prefix + p.name, p.shape);
    std::copy(v.begin(), v.end(), all.begin() + p.offset);
  }
  memcpy_any(ps.flat_values().data(), ps.flat_values().device(), all.data(), Device::CPU,
             ps.flat_values().bytes());
  return true;
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

namespace {

std::string dims_str(const std::vector<int64_t>& s) {
  std::ostringstream os;
  os << "[";
  for (size_t i = 0; i < s.size(); ++i) os << (i ? ", " : "") << s[i];
  os << "]";
  return os.str();
}

// Tensor `name` of `f`, which must exist with `rank` dimensions; otherwise one line naming the
// tensor and the shape expected of `model`.
const SafetensorsEntry& shaped(const SafetensorsFile& f, const std::string& name, size_t rank,
                               const char* model, const char* expected) {
  if (!f.has(name))
    CUVAE_FAIL(f.path << ": no cuvae config, and no tensor '" << name << "' " << expected << " as a " << model
                      << " has");
  const SafetensorsEntry& e = f.at(name);
  if (e.shape.size() != rank)
    CUVAE_FAIL(f.path << ": tensor '" << name << "' has shape " << dims_str(e.shape) << ", expected " << expected
                      << " for a " << model);
  return e;
}

bool has_config(const SafetensorsFile& f) { return f.metadata.count("config") != 0; }

bool looks_like_resnet(const SafetensorsFile& f) { return f.has("conv1.weight") && f.has("fc.weight"); }

bool looks_like_vae(const SafetensorsFile& f) { return f.has("enc.conv1.weight") || f.has("enc.conv_in.weight"); }

// A file without cuvae's config that is neither model: name its first tensor.
[[noreturn]] void matches_no_model(const SafetensorsFile& f, const char* wanted) {
  const std::string first = f.tensors.empty() ? std::string("(none)") : "'" + f.tensors.begin()->first + "'";
  CUVAE_FAIL(f.path << ": no cuvae config, and the tensors match no known model (first tensor " << first
                    << "); expected " << wanted);
}

}  // namespace

VaeConfig infer_vae_config(const SafetensorsFile& f) {
  const char* m = "ConvVAE";
  VaeConfig c;
  c.arch = f.has("enc.conv_in.weight") ? VaeArch::Resnet : VaeArch::Conv;
  const bool res = c.arch == VaeArch::Resnet;
  const int64_t F = c.feature_channels();
  const SafetensorsEntry& c1 = res ? shaped(f, "enc.conv_in.weight", 4, m, "[32, C, 3, 3]")
                                   : shaped(f, "enc.conv1.weight", 4, m, "[32, C, 4, 4]");
  const SafetensorsEntry& mu = shaped(f, "enc.mu.weight", 2, m, "[D, 256]");
  const SafetensorsEntry& fc2 = shaped(f, "dec.fc2.weight", 2, m, res ? "[128*(H/4)*(W/4), 256]" : "[64*(H/4)*(W/4), 256]");
  const SafetensorsEntry& fc = shaped(f, "enc.fc.weight", 2, m, res ? "[256, 128*(H/4)*(W/4) (+K for a CVAE)]"
                                                                     : "[256, 64*(H/4)*(W/4) (+K for a CVAE)]");
  c.channels = c1.shape[1];
  c.latent = mu.shape[0];
  const int64_t cells = fc2.shape[0] / F;
  int64_t side = 0;
  while ((side + 1) * (side + 1) <= cells) ++side;
  if (fc2.shape[0] % F != 0 || side * side != cells)
    CUVAE_FAIL(f.path << ": tensor 'dec.fc2.weight' has shape " << dims_str(fc2.shape) << ", expected [" << F
                      << "*s*s, 256] (square images of side 4*s) for a ConvVAE" << (res ? " with --arch resnet" : ""));
  c.height = c.width = 4 * side;
  const int64_t k = fc.shape[1] - fc2.shape[0];
  if (k < 0)
    CUVAE_FAIL(f.path << ": tensor 'enc.fc.weight' has shape " << dims_str(fc.shape) << ", expected [256, "
                      << fc2.shape[0] << " (+K for a CVAE)] to match 'dec.fc2.weight'");
  const bool has_logvar = f.has("enc.logvar.weight");
  c.kind = k > 0 ? VaeKind::Cvae : has_logvar ? VaeKind::Vae : VaeKind::Ae;
  if (k > 0) c.classes = k;
  c.beta = c.is_ae() ? 0.0f : 1.0f;
  try {
    c.validate();
  } catch (const Error& e) {
    CUVAE_FAIL(f.path << ": the tensor shapes give a " << c.model_name() << " config that is out of range: " << e.what());
  }
  return c;
}

ResNetConfig infer_resnet_config(const SafetensorsFile& f, const std::string& dataset) {
  const char* m = "ResNet-18";
  const SafetensorsEntry& c1 = shaped(f, "conv1.weight", 4, m, "[W, C, 3, 3]");
  const SafetensorsEntry& fc = shaped(f, "fc.weight", 2, m, "[K, 8*W]");
  if (dataset.empty())
    CUVAE_FAIL(f.path << " is a ResNet-18 state dict without cuvae config: pass " << option("dataset") << " so that the input size is "
                         "known (tensor shapes cannot give it)");
  ResNetConfig c;
  if (dataset == "mnist" || dataset == "fashion-mnist") {
    c.channels = 1;
    c.height = c.width = 28;
  } else if (dataset == "cifar10") {
    c.channels = 3;
    c.height = c.width = 32;
  } else {
    CUVAE_FAIL(option("dataset") << " '" << dataset << "' is not one of mnist, fashion-mnist, cifar10");
  }
  if (c1.shape[1] != c.channels)
    CUVAE_FAIL(f.path << ": tensor 'conv1.weight' has shape " << dims_str(c1.shape) << ", expected " << c.channels
                      << " input channels for " << dataset);
  c.base_width = c1.shape[0];
  c.classes = fc.shape[0];
  c.dataset = dataset;
  try {
    c.validate();
  } catch (const Error& e) {
    CUVAE_FAIL(f.path << ": the tensor shapes give a ResNet-18 config that is out of range: " << e.what());
  }
  return c;
}

std::unique_ptr<ConvVAE> load_vae(const std::string& path, Device device, bool allow_cvae) {
  SafetensorsFile f = read_safetensors(path);
  VaeConfig cfg;
  if (has_config(f)) {
    const nlohmann::json j = checkpoint_config(f);
    if (j.contains("model") && j.at("model") == "resnet18")
      CUVAE_FAIL(path << " is a classifier checkpoint (resnet18, written by train-classifier); expected a VAE "
                         "checkpoint written by train-vae");
    cfg = VaeConfig::from_json(j, path);
  } else if (looks_like_vae(f)) {
    cfg = infer_vae_config(f);
  } else if (looks_like_resnet(f)) {
    CUVAE_FAIL(path << " holds a ResNet-18 classifier's tensors; expected a VAE (tensors enc.*, dec.*)");
  } else {
    matches_no_model(f, "a ConvVAE, ConvAE or ConvCVAE state dict (enc.conv1.weight, ...)");
  }
  if (cfg.is_cvae() && !allow_cvae)
    CUVAE_FAIL(path << " is a conditional VAE (CVAE) checkpoint; this command needs an unconditional one "
                       "(train-vae --model vae or ae). A CVAE works with train-vae --resume, eval-vae, sample and validate");
  auto model = std::make_unique<ConvVAE>(cfg, device);
  load_params(f, model->params());
  return model;
}


void save_resnet(const std::string& path, ResNet18& model) {
  SafetensorsWriter w;
  add_params(w, model.params(), "");
  add_params(w, model.buffers(), "");
  for (const std::string& bn : model.batchnorm_names())
    w.add_i64(bn + ".num_batches_tracked", {}, {model.num_batches_tracked()});
  w.set_metadata("format", "pt");
  w.set_metadata("config", model.config().to_json().dump());
  w.write(path);
}

std::unique_ptr<ResNet18> load_resnet(const std::string& path, Device device, const std::string& dataset) {
  SafetensorsFile f = read_safetensors(path);
  ResNetConfig cfg;
  if (has_config(f))
    cfg = ResNetConfig::from_json(checkpoint_config(f), path);
  else if (looks_like_resnet(f))
    cfg = infer_resnet_config(f, dataset);
  else if (looks_like_vae(f))
    CUVAE_FAIL(path << " holds a VAE's tensors (enc.*, dec.*); expected a ResNet-18 classifier");
  else
    matches_no_model(f, "a ResNet-18 state dict (conv1.weight, ..., fc.weight)");
  auto model = std::make_unique<ResNet18>(cfg, device);
  int64_t nbt = -1;
  for (const std::string& bn : model->batchnorm_names()) {
    const int64_t v = f.i64(bn + ".num_batches_tracked", {}).at(0);
    CUVAE_REQUIRE(v >= 0, path << ": tensor '" << bn << ".num_batches_tracked' is negative (" << v << ")");
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
