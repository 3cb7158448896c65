// Grad-CAM (Selvaraju et al., "Grad-CAM: Visual Explanations from Deep Networks via
// Gradient-based Localization", ICCV 2017, eq. 1 and 2) in one fused pass: channel weights,
// weighted sum, ReLU, bilinear upsampling to the input size and per-image normalisation.
#pragma once

#include <cstdint>

#include "core/context.h"
#include "core/tensor.h"
#include "kernels/emu/stream.h"

namespace cuvae {

/// CPU reference. A [n, k, h, w]: a layer's activations; dA [n, k, h, w]: the gradient of the
/// target class score y^c (a logit) with respect to them. Per image i:
///   alpha[k] = (1/(h·w)) Σ_{y,x} dA[i, k, y, x]                  (eq. 1)
///   cam[y, x] = max(0, Σ_k alpha[k] · A[i, k, y, x])              (eq. 2)
///   up = bilinear resize of cam to [H, W] with half-pixel centres, edges clamped
///        (F.interpolate(mode="bilinear", align_corners=False))
///   heat[i] = (up − min up) / (max up − min up), or all zeros when max up − min up <= 1e-12·max(1, max up)
/// heat is [n, H, W] in [0, 1]. If `cam_out` is non-null the un-normalised cam [n, h, w] is
/// written there too. Sums in double. Throws cuvae::Error on a non-positive size.
template <typename T>
void gradcam_cpu(const T* A, const T* dA, int64_t n, int64_t k, int64_t h, int64_t w, int64_t H,
                 int64_t W, T* heat, T* cam_out);

/// CUDA version: one block per image does all five steps (weights and cam in shared memory,
/// CUB block reductions for the min and max), so the whole map is one launch. Device pointers,
/// float, on `s`; no allocation, no synchronisation. Throws cuvae::Error on a non-positive size,
/// h·w > 4096 or k > 4096 (shared-memory limits), or a launch error.
/// S: Stream on the GPU, EmuStream on the emulated device (kernels/emu/stream.h).
template <class S>
void gradcam_cuda(const float* A, const float* dA, int64_t n, int64_t k, int64_t h, int64_t w,
                  int64_t H, int64_t W, float* heat, float* cam_out, S s);

/// Tensor form on the context's device: A and dA [n, k, h, w], heat [n, H, W] (any shape with
/// n·H·W elements; H, W given), cam_out [n, h, w] or null. Throws cuvae::Error on a shape or
/// device mismatch, or a CUDA tensor without the CUDA backend.
void gradcam(Context& ctx, const Tensor& A, const Tensor& dA, int64_t H, int64_t W, Tensor& heat,
             Tensor* cam_out = nullptr);

}  // namespace cuvae
