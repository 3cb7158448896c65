// SGD with (Nesterov) momentum and L2 weight decay, exactly as torch.optim.SGD computes it
// (dampening 0), over a model's flat parameter buffer in one launch. Nesterov momentum as in
// Sutskever et al., "On the importance of initialization and momentum in deep learning",
// ICML 2013, in PyTorch's formulation.
#pragma once

#include <cstdint>

#include "core/context.h"
#include "core/tensor.h"
#include "kernels/emu/stream.h"
#include "kernels/step_state.h"

namespace cuvae {

/// Hyper-parameters of one SGD step (the learning rate of this step; schedules live in models/).
struct SgdConfig {
  float lr = 0.1f;             ///< learning rate of this step (>= 0)
  float momentum = 0.9f;       ///< momentum mu, in [0, 1)
  float weight_decay = 5e-4f;  ///< L2 penalty: g += weight_decay * param (>= 0)
  bool nesterov = true;        ///< Nesterov momentum (needs momentum > 0)
  /// When set, the learning rate is read from this step state when the step runs
  /// (StepState::lr; a device pointer for the CUDA version) and `lr` is not used.
  const StepState* state = nullptr;
};

/// Throws cuvae::Error unless lr >= 0, weight_decay >= 0, momentum in [0, 1), all finite, and
/// momentum > 0 when nesterov (the checks torch.optim.SGD makes).
void check_sgd_config(const SgdConfig& cfg);

/// CPU reference of one step over n parameters (flat arrays of equal length), in place:
///   g = grad + wd·param;  buf = mu·buf + g;  d = nesterov ? g + mu·buf : buf;
///   param −= lr·d.
/// buf starts at zero, so the first step gives buf = g as torch.optim.SGD's does. With
/// momentum 0, buf is left untouched and d = g. Throws cuvae::Error on a bad config or n < 0.
template <typename T>
void sgd_step_cpu(T* param, const T* grad, T* buf, int64_t n, const SgdConfig& cfg);

/// CUDA version of sgd_step_cpu (device pointers, float, on `s`; no allocation, no
/// synchronisation). Throws cuvae::Error on a bad config, n < 0 or a launch error.
/// S: Stream on the GPU, EmuStream on the emulated device (kernels/emu/stream.h).
template <class S>
void sgd_step_cuda(float* param, const float* grad, float* buf, int64_t n, const SgdConfig& cfg,
                   S s);

/// One SGD step on tensors of equal numel on the context's device. Throws cuvae::Error on a
/// size, device or config mismatch, or a CUDA tensor without the backend.
void sgd_step(Context& ctx, Tensor& param, const Tensor& grad, Tensor& buf, const SgdConfig& cfg);

}  // namespace cuvae
