// CPU reference convolution (im2col + GEMM with Eigen), the core that Conv2d and
// ConvTranspose2d are built from. Templated on float (training) and double
// (gradient checks).
#pragma once

#include <cstdint>

namespace cuvae {

/// Geometry of a 2-D cross-correlation y = conv(x, w) as in PyTorch's Conv2d:
/// x [n, c, h, w], weight [k_out, c, kh, kw], y [n, k_out, ho, wo] with
/// ho = (h + 2·pad − kh)/stride + 1 (and likewise wo). Square kernels, equal padding.
struct ConvGeom {
  int64_t n = 0, c = 0, h = 0, w = 0;  ///< input batch, channels, height, width
  int64_t k_out = 0;                   ///< output channels
  int64_t kernel = 1, stride = 1, pad = 0;
  int64_t ho() const { return (h + 2 * pad - kernel) / stride + 1; }
  int64_t wo() const { return (w + 2 * pad - kernel) / stride + 1; }
  /// Rows of the im2col matrix: c·kernel².
  int64_t col_rows() const { return c * kernel * kernel; }
  /// Columns of the batched im2col matrix: n·ho·wo.
  int64_t col_cols() const { return n * ho() * wo(); }
  int64_t x_numel() const { return n * c * h * w; }
  int64_t y_numel() const { return n * k_out * ho() * wo(); }
  int64_t w_numel() const { return k_out * c * kernel * kernel; }
  /// Floating-point operations of the forward product (2 per multiply-add):
  /// 2 · n · k_out · ho · wo · c · kernel². The data and filter gradients cost the same each.
  double flops() const { return 2.0 * static_cast<double>(y_numel()) * static_cast<double>(col_rows()); }
  /// Scratch the CPU functions need, in elements: col matrix + one [k_out, n·ho·wo] matrix.
  int64_t scratch_numel() const { return col_rows() * col_cols() + k_out * col_cols(); }
  /// Throws cuvae::Error unless all sizes are positive and the output is non-empty.
  void validate() const;
};

/// y = conv(x, w) (no bias). `scratch` holds geom.scratch_numel() elements.
template <typename T>
void conv_fwd_cpu(const ConvGeom& g, const T* x, const T* w, T* y, T* scratch);

/// dx = conv_transposeᵀ: the gradient of Σ dy·conv(x, w) with respect to x, written (not
/// accumulated) into dx [n, c, h, w]. Also the forward of ConvTranspose2d.
template <typename T>
void conv_bwd_data_cpu(const ConvGeom& g, const T* dy, const T* w, T* dx, T* scratch);

/// dw = the gradient of Σ dy·conv(x, w) with respect to w [k_out, c, kernel, kernel], written.
template <typename T>
void conv_bwd_filter_cpu(const ConvGeom& g, const T* x, const T* dy, T* dw, T* scratch);

/// Conv2d's whole backward in one pass: dw as conv_bwd_filter_cpu and, when dx is non-null,
/// dx as conv_bwd_data_cpu, sharing one im2col of x and one reordering of dy.
template <typename T>
void conv_bwd_cpu(const ConvGeom& g, const T* x, const T* dy, const T* w, T* dx, T* dw, T* scratch);

/// ConvTranspose2d's whole backward in one pass. The transposed layer's output gradient is
/// the convolution's input side `u` [n, c, h, w] and its input the convolution's output side
/// `v` [n, k_out, ho, wo]: writes dw = conv_bwd_filter(u, v) and, when `out` is non-null,
/// out = conv(u, w), sharing one im2col of u.
template <typename T>
void conv_transpose_bwd_cpu(const ConvGeom& g, const T* u, const T* v, const T* w, T* out, T* dw,
                            T* scratch);

/// y [rows, cols] = a [rows, inner] · b [inner, cols] (row-major), optionally transposing the
/// operands as stored (ta: a is stored [inner, rows]; tb: b is stored [cols, inner]);
/// y = alpha·a·b + beta·y. The one GEMM the CPU path uses (Eigen, OpenMP threads).
template <typename T>
void gemm_cpu(bool ta, bool tb, int64_t rows, int64_t cols, int64_t inner, T alpha, const T* a,
              const T* b, T beta, T* y);

}  // namespace cuvae
