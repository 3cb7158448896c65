// One step of Adam (Kingma & Ba, "Adam: A Method for Stochastic Optimization", ICLR 2015,
// Algorithm 1) exactly as torch.optim.Adam computes it (eps added to the bias-corrected
// sqrt(v), L2 weight decay folded into the gradient, amsgrad off).
#pragma once

#include <cstdint>

#include "core/context.h"
#include "core/tensor.h"
#include "kernels/emu/stream.h"
#include "kernels/step_state.h"

namespace cuvae {

/// Hyper-parameters of one Adam step. `step` is t in Algorithm 1: 1 for the first step.
struct AdamConfig {
  float lr = 1e-3f;           ///< learning rate alpha (>= 0)
  float beta1 = 0.9f;         ///< decay of the first moment, in [0, 1)
  float beta2 = 0.999f;       ///< decay of the second moment, in [0, 1)
  float eps = 1e-8f;          ///< added to sqrt(v_hat) (>= 0)
  float weight_decay = 0.0f;  ///< L2 penalty: g += weight_decay * param (>= 0)
  int64_t step = 1;           ///< step count t (>= 1)
  /// When set, lr/(1 − β1^t) and sqrt(1 − β2^t) are read from this step state when the step runs
  /// (StepState::adam_step_size, adam_bc2_sqrt; a device pointer for the CUDA version) and `lr`
  /// and `step` are not used: a captured step then replays as the next one.
  const StepState* state = nullptr;
};

/// Adam's bias-corrected scalars of step t (Algorithm 1), in double: step_size = lr / (1 − β1^t)
/// and bc2_sqrt = sqrt(1 − β2^t). Every Adam path (the CPU reference, the CUDA launch and the
/// trainers' step tables) takes them from here.
struct AdamCorrections {
  double step_size;
  double bc2_sqrt;
};
AdamCorrections adam_corrections(float lr, float beta1, float beta2, int64_t t);

/// Throws cuvae::Error unless step >= 1, lr, eps, weight_decay >= 0 and both betas lie in
/// [0, 1) (the checks torch.optim.Adam makes), all finite.
/// (step and lr are not checked when cfg.state is set.)
void check_adam_config(const AdamConfig& cfg);

/// CPU reference of one step over n parameters (flat arrays of equal length), in place:
///   g = grad + wd*param;  m = b1*m + (1-b1)*g;  v = b2*v + (1-b2)*g^2;
///   bc1 = 1 - b1^t;  bc2 = 1 - b2^t;
///   param -= (lr/bc1) * m / (sqrt(v)/sqrt(bc2) + eps).
/// lr/bc1 and sqrt(bc2) are computed in double, then rounded to T. m and v start at zero
/// before step 1. Throws cuvae::Error on a bad config (see check_adam_config) or n < 0.
template <typename T>
void adam_step_cpu(T* param, const T* grad, T* m, T* v, int64_t n, const AdamConfig& cfg);

/// CUDA version of adam_step_cpu (device pointers, float, enqueued on `s`; no allocation, no
/// synchronisation; float4 loads/stores when all four arrays are 16-byte aligned). Throws
/// cuvae::Error on a bad config, n < 0, or a launch error.
/// S: Stream on the GPU, EmuStream on the emulated device (kernels/emu/stream.h).
template <class S>
void adam_step_cuda(float* param, const float* grad, float* m, float* v, int64_t n,
                    const AdamConfig& cfg, S s);

/// One Adam step on tensors of equal numel (any shapes) on the context's device. Throws
/// cuvae::Error on a size, device or config mismatch, or a CUDA tensor without the backend.
void adam_step(Context& ctx, Tensor& param, const Tensor& grad, Tensor& m, Tensor& v,
               const AdamConfig& cfg);

}  // namespace cuvae
