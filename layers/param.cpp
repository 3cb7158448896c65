#include "layers/param.h"

#include <cmath>

#include "core/check.h"
#include "core/philox.h"

namespace cuvae {

int ParamStore::add(const std::string& name, std::vector<int64_t> shape, int64_t fan_in) {
  CUVAE_CHECK(!finalized_, "ParamStore::add('" << name << "') after finalize()");
  CUVAE_CHECK(find(name) < 0, "duplicate parameter name '" << name << "'");
  ParamInfo p;
  p.name = name;
  p.numel = shape_numel(shape);
  p.shape = std::move(shape);
  p.offset = total_;
  p.fan_in = fan_in;
  total_ += (p.numel + 63) / 64 * 64;
  info_.push_back(std::move(p));
  return static_cast<int>(info_.size() - 1);
}

void ParamStore::finalize(Device device) {
  CUVAE_CHECK(!finalized_, "ParamStore::finalize() called twice");
  flat_values_ = Tensor({total_}, device);
  flat_grads_ = Tensor({total_}, device);
  for (const ParamInfo& p : info_) {
    values_.push_back(Tensor::view(flat_values_.data() + p.offset, p.shape, device));
    grads_.push_back(Tensor::view(flat_grads_.data() + p.offset, p.shape, device));
  }
  finalized_ = true;
}

int64_t ParamStore::count() const {
  int64_t n = 0;
  for (const ParamInfo& p : info_) n += p.numel;
  return n;
}

int ParamStore::find(const std::string& name) const {
  for (size_t i = 0; i < info_.size(); ++i)
    if (info_[i].name == name) return static_cast<int>(i);
  return -1;
}

void ParamStore::init_default(uint64_t seed) {
  CUVAE_CHECK(finalized_, "ParamStore::init_default() before finalize()");
  std::vector<float> host(static_cast<size_t>(total_), 0.0f);
  for (size_t i = 0; i < info_.size(); ++i) {
    const ParamInfo& p = info_[i];
    const double bound = 1.0 / std::sqrt(static_cast<double>(p.fan_in));
    for (int64_t j = 0; j < p.numel; ++j) {
      const float u = philox_uniform_at(seed, 0x9a7a0000u + i, static_cast<uint64_t>(j));
      host[static_cast<size_t>(p.offset + j)] = static_cast<float>((2.0 * u - 1.0) * bound);
    }
  }
  memcpy_any(flat_values_.data(), flat_values_.device(), host.data(), Device::CPU,
             flat_values_.bytes());
}


namespace {
// Writes `host` (numel of parameter p) into the parameter's view, on either device.
void upload(Tensor& view, const std::vector<float>& host) {
  memcpy_any(view.data(), view.device(), host.data(), Device::CPU, view.bytes());
}
}  // namespace

void ParamStore::fill(int i, float value) {
  CUVAE_CHECK(finalized_, "ParamStore::fill() before finalize()");
  upload(values_.at(static_cast<size_t>(i)), std::vector<float>(static_cast<size_t>(info_.at(static_cast<size_t>(i)).numel), value));
}

void ParamStore::init_normal(int i, double std, uint64_t seed, uint64_t stream) {
  CUVAE_CHECK(finalized_, "ParamStore::init_normal() before finalize()");
  const ParamInfo& p = info_.at(static_cast<size_t>(i));
  std::vector<float> host(static_cast<size_t>(p.numel));
  // Element j depends on (seed, stream, j) alone, so the threads give the same values as one.
#pragma omp parallel for schedule(static) if (p.numel >= (1 << 16))
  for (int64_t j = 0; j < p.numel; ++j)
    host[static_cast<size_t>(j)] = static_cast<float>(std * philox_normal(seed, stream, static_cast<uint64_t>(j)));
  upload(values_.at(static_cast<size_t>(i)), host);
}

void ParamStore::init_uniform(int i, double bound, uint64_t seed, uint64_t stream) {
  CUVAE_CHECK(finalized_, "ParamStore::init_uniform() before finalize()");
  const ParamInfo& p = info_.at(static_cast<size_t>(i));
  std::vector<float> host(static_cast<size_t>(p.numel));
#pragma omp parallel for schedule(static) if (p.numel >= (1 << 16))
  for (int64_t j = 0; j < p.numel; ++j) {
    const float u = philox_uniform_at(seed, stream, static_cast<uint64_t>(j));
    host[static_cast<size_t>(j)] = static_cast<float>((2.0 * u - 1.0) * bound);
  }
  upload(values_.at(static_cast<size_t>(i)), host);
}

}  // namespace cuvae
