// ParamStore: every parameter of a model in one flat buffer (and its gradient in a
// second), so one optimizer launch updates all of them.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "core/tensor.h"

namespace cuvae {

/// One named parameter: its PyTorch state_dict name, shape, offset in the flat buffer
/// (elements) and fan-in for PyTorch's default initialisation.
struct ParamInfo {
  std::string name;
  std::vector<int64_t> shape;
  int64_t offset = 0;
  int64_t numel = 0;
  int64_t fan_in = 1;
};

/// Owns the flat parameter and gradient buffers of a model. Declare every parameter with
/// add(), then finalize() once; views are stable afterwards. Offsets are padded to 64
/// elements (256 bytes); the padding stays zero in values, gradients and optimizer state.
class ParamStore {
 public:
  /// Declares parameter `name` of `shape`; returns its index. Throws after finalize()
  /// or on a duplicate name.
  int add(const std::string& name, std::vector<int64_t> shape, int64_t fan_in);
  /// Allocates the zero-filled flat buffers on `device` and makes the per-parameter views.
  void finalize(Device device);
  bool finalized() const { return finalized_; }

  /// Value / gradient view of parameter `i`, shaped as declared.
  Tensor& value(int i) { return values_[static_cast<size_t>(i)]; }
  Tensor& grad(int i) { return grads_[static_cast<size_t>(i)]; }
  /// All values / all gradients, flat [total].
  Tensor& flat_values() { return flat_values_; }
  Tensor& flat_grads() { return flat_grads_; }
  const Tensor& flat_values() const { return flat_values_; }
  const std::vector<ParamInfo>& params() const { return info_; }
  /// Number of real (unpadded) parameter elements.
  int64_t count() const;
  /// Index of the parameter named `name`, or -1.
  int find(const std::string& name) const;

  /// PyTorch's default initialisation for Conv2d, ConvTranspose2d and Linear: weights
  /// kaiming_uniform_(a=√5) and biases U(−1/√fan_in, 1/√fan_in), which both reduce to
  /// U(−1/√fan_in, 1/√fan_in). Uniforms come from Philox under `seed` (one stream per
  /// parameter), so the same seed gives the same weights on every device.
  void init_default(uint64_t seed);
  /// Sets every element of parameter `i` to `value`.
  void fill(int i, float value);
  /// Parameter `i` ← N(0, std²) from Philox under (seed, stream): torch.nn.init.normal_, and
  /// kaiming_normal_(mode="fan_out", nonlinearity="relu") with std = √(2/fan_out).
  void init_normal(int i, double std, uint64_t seed, uint64_t stream);
  /// Parameter `i` ← U(−bound, bound) from Philox under (seed, stream).
  void init_uniform(int i, double bound, uint64_t seed, uint64_t stream);

 private:
  std::vector<ParamInfo> info_;
  std::vector<Tensor> values_, grads_;
  Tensor flat_values_, flat_grads_;
  int64_t total_ = 0;
  bool finalized_ = false;
};

}  // namespace cuvae
