// The exact gradient of 2-D t-SNE and its optimiser step (van der Maaten & Hinton, "Visualizing
// Data using t-SNE", JMLR 9, 2008: eq. 5 for the gradient; the gains / momentum update as in
// the paper's reference code and scikit-learn's TSNE). The Barnes–Hut approximation for large
// n lives in numerics/embed.cpp (a CPU tree code, not a kernel).
#pragma once

#include <cstdint>

#include "core/context.h"
#include "core/tensor.h"
#include "kernels/emu/stream.h"

namespace cuvae {

/// Exact t-SNE gradient for a 2-D map (CPU reference, OpenMP over i).
///
/// P [n, n] dense, symmetric, zero diagonal, summing to 1 (the joint probabilities p_ij);
/// Y [n, 2] row-major map coordinates. With q̃_ij = (1 + |y_i − y_j|²)⁻¹ and
/// Z = Σ_{k≠l} q̃_kl, writes grad [n, 2]:
///   dC/dy_i = 4 Σ_{j≠i} (α p_ij − q̃_ij / Z) q̃_ij (y_i − y_j),   α = `exaggeration`,
/// which for α = 1 is the gradient of KL(P‖Q), q_ij = q̃_ij / Z (eq. 5). When `kl_out` is not
/// null it receives KL(P‖Q) = Σ_{p_ij>0} p_ij log(p_ij / q_ij) of the P given (not
/// exaggerated), in nats. Sums accumulate in double for both instantiations; Z and the KL
/// are reduced over per-row partial sums in a fixed order, so the result does not depend on
/// the thread count. Throws cuvae::Error if n < 2.
template <typename T>
void tsne_grad_exact_cpu(const T* P, const T* Y, int64_t n, T exaggeration, T* grad, T* kl_out);

/// Floats of device workspace tsne_grad_exact_cuda needs for n points (5n + 1).
int64_t tsne_grad_workspace_floats(int64_t n);

/// CUDA version of tsne_grad_exact_cpu (device pointers, float, enqueued on `s`, no
/// synchronisation, no KL). `workspace` holds tsne_grad_workspace_floats(n) floats. Two
/// launches: per row i, one warp sums the unnormalised attractive and repulsive forces and
/// the partial Z over j, reading Y in tiles staged in shared memory; then one block reduces
/// Z in a fixed order and writes grad. Deterministic. Throws cuvae::Error if n < 2 or n ≥ 2³¹,
/// or on a launch error.
/// S: Stream on the GPU, EmuStream on the emulated device (kernels/emu/stream.h).
template <class S>
void tsne_grad_exact_cuda(const float* P, const float* Y, int64_t n, float exaggeration,
                          float* grad, float* workspace, S s);

/// Tensor dispatch of the exact gradient: P [n, n], Y [n, 2], grad [n, 2] (any shapes of
/// those element counts, n taken from Y) on the context's device; the CUDA path uses the
/// context's workspace. Throws cuvae::Error on a size or device mismatch or a CUDA tensor
/// without the backend.
void tsne_grad_exact(Context& ctx, const Tensor& P, const Tensor& Y, float exaggeration,
                     Tensor& grad);

/// One t-SNE gradient-descent step with per-parameter gains and momentum (Jacobs 1988, as in
/// the t-SNE paper's code and scikit-learn's _gradient_descent), over m = 2n values in place:
///   gain ← (sign(grad) ≠ sign(update)) ? gain + 0.2 : gain · 0.8,  gain ← max(gain, min_gain)
///   (exactly: "update · grad < 0" raises the gain, everything else lowers it)
///   update ← momentum · update − learning_rate · gain · grad;   y ← y + update.
/// Throws cuvae::Error if m < 0, learning_rate ≤ 0 or momentum is not in [0, 1).
template <typename T>
void tsne_update_cpu(T* y, const T* grad, T* update, T* gains, int64_t m, T momentum,
                     T learning_rate, T min_gain);

/// CUDA version of tsne_update_cpu (device pointers, float, on `s`, no synchronisation).
/// S: Stream on the GPU, EmuStream on the emulated device (kernels/emu/stream.h).
template <class S>
void tsne_update_cuda(float* y, const float* grad, float* update, float* gains, int64_t m,
                      float momentum, float learning_rate, float min_gain, S s);

/// Tensor dispatch of tsne_update_cpu / tsne_update_cuda: four tensors of equal numel on the
/// context's device. Throws cuvae::Error on a size or device mismatch or bad scalars.
void tsne_update(Context& ctx, Tensor& y, const Tensor& grad, Tensor& update, Tensor& gains,
                 float momentum, float learning_rate, float min_gain);

}  // namespace cuvae
