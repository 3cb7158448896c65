#include "layers/conv_cpu.h"

#include <Eigen/Core>
#include <cstring>

#include "core/check.h"

namespace cuvae {

void ConvGeom::validate() const {
  CUVAE_CHECK(n > 0 && c > 0 && h > 0 && w > 0 && k_out > 0 && kernel > 0 && stride > 0 && pad >= 0,
              "invalid convolution geometry n=" << n << " c=" << c << " h=" << h << " w=" << w
                                                << " k_out=" << k_out << " kernel=" << kernel);
  CUVAE_CHECK(ho() > 0 && wo() > 0, "convolution output would be empty for input " << h << "x" << w);
}

template <typename T>
using RowMat = Eigen::Matrix<T, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;

template <typename T>
void gemm_cpu(bool ta, bool tb, int64_t rows, int64_t cols, int64_t inner, T alpha, const T* a,
              const T* b, T beta, T* y) {
  using Map = Eigen::Map<const RowMat<T>>;
  Eigen::Map<RowMat<T>> Y(y, rows, cols);
  if (beta == T(0)) Y.setZero();
  else if (beta != T(1)) Y *= beta;
  if (!ta && !tb) Y.noalias() += alpha * Map(a, rows, inner) * Map(b, inner, cols);
  else if (ta && !tb) Y.noalias() += alpha * Map(a, inner, rows).transpose() * Map(b, inner, cols);
  else if (!ta && tb) Y.noalias() += alpha * Map(a, rows, inner) * Map(b, cols, inner).transpose();
  else Y.noalias() += alpha * Map(a, inner, rows).transpose() * Map(b, cols, inner).transpose();
}

namespace {

// Loops over fewer elements than this run on one thread: waking a team costs more than
// the work, and under a loaded machine spinning threads make small problems much slower.
constexpr int64_t kParallelMin = 1 << 15;

// col [c·k·k, n·ho·wo]: col[(ci,ki,kj), (b,oh,ow)] = x[b, ci, oh·s − p + ki, ow·s − p + kj] or 0.
template <typename T>
void im2col(const ConvGeom& g, const T* x, T* col) {
  const int64_t ho = g.ho(), wo = g.wo(), L = ho * wo, NL = g.n * L, K = g.kernel;
#pragma omp parallel for collapse(2) schedule(static) if (g.col_rows() * NL >= kParallelMin)
  for (int64_t ci = 0; ci < g.c; ++ci)
    for (int64_t kk = 0; kk < K * K; ++kk) {
      const int64_t ki = kk / K, kj = kk % K;
      T* row = col + ((ci * K * K) + kk) * NL;
      for (int64_t b = 0; b < g.n; ++b) {
        const T* xp = x + (b * g.c + ci) * g.h * g.w;
        T* out = row + b * L;
        for (int64_t oh = 0; oh < ho; ++oh) {
          const int64_t ih = oh * g.stride - g.pad + ki;
          T* o = out + oh * wo;
          if (ih < 0 || ih >= g.h) {
            for (int64_t ow = 0; ow < wo; ++ow) o[ow] = T(0);
            continue;
          }
          const T* xr = xp + ih * g.w;
          for (int64_t ow = 0; ow < wo; ++ow) {
            const int64_t iw = ow * g.stride - g.pad + kj;
            o[ow] = (iw >= 0 && iw < g.w) ? xr[iw] : T(0);
          }
        }
      }
    }
}

// The adjoint of im2col: dx[b, ci, ih, iw] = Σ over (ki,kj,oh,ow) that read it of col.
template <typename T>
void col2im(const ConvGeom& g, const T* col, T* dx) {
  const int64_t ho = g.ho(), wo = g.wo(), L = ho * wo, NL = g.n * L, K = g.kernel;
#pragma omp parallel for collapse(2) schedule(static) if (g.col_rows() * NL >= kParallelMin)
  for (int64_t b = 0; b < g.n; ++b)
    for (int64_t ci = 0; ci < g.c; ++ci) {
      T* xp = dx + (b * g.c + ci) * g.h * g.w;
      std::memset(xp, 0, sizeof(T) * static_cast<size_t>(g.h * g.w));
      for (int64_t kk = 0; kk < K * K; ++kk) {
        const int64_t ki = kk / K, kj = kk % K;
        const T* in = col + ((ci * K * K) + kk) * NL + b * L;
        for (int64_t oh = 0; oh < ho; ++oh) {
          const int64_t ih = oh * g.stride - g.pad + ki;
          if (ih < 0 || ih >= g.h) continue;
          T* xr = xp + ih * g.w;
          const T* irow = in + oh * wo;
          for (int64_t ow = 0; ow < wo; ++ow) {
            const int64_t iw = ow * g.stride - g.pad + kj;
            if (iw >= 0 && iw < g.w) xr[iw] += irow[ow];
          }
        }
      }
    }
}

// [n, k, L] -> [k, n·L]
template <typename T>
void nkl_to_knl(const T* src, T* dst, int64_t n, int64_t k, int64_t L) {
#pragma omp parallel for collapse(2) schedule(static) if (n * k * L >= kParallelMin)
  for (int64_t b = 0; b < n; ++b)
    for (int64_t c = 0; c < k; ++c)
      std::memcpy(dst + c * n * L + b * L, src + (b * k + c) * L, sizeof(T) * static_cast<size_t>(L));
}

// [k, n·L] -> [n, k, L]
template <typename T>
void knl_to_nkl(const T* src, T* dst, int64_t n, int64_t k, int64_t L) {
#pragma omp parallel for collapse(2) schedule(static) if (n * k * L >= kParallelMin)
  for (int64_t b = 0; b < n; ++b)
    for (int64_t c = 0; c < k; ++c)
      std::memcpy(dst + (b * k + c) * L, src + c * n * L + b * L, sizeof(T) * static_cast<size_t>(L));
}

}  // namespace

template <typename T>
void conv_fwd_cpu(const ConvGeom& g, const T* x, const T* w, T* y, T* scratch) {
  g.validate();
  const int64_t KR = g.col_rows(), NL = g.col_cols(), L = g.ho() * g.wo();
  T* col = scratch;
  T* y2 = scratch + KR * NL;
  im2col(g, x, col);
  gemm_cpu<T>(false, false, g.k_out, NL, KR, T(1), w, col, T(0), y2);
  knl_to_nkl(y2, y, g.n, g.k_out, L);
}

template <typename T>
void conv_bwd_data_cpu(const ConvGeom& g, const T* dy, const T* w, T* dx, T* scratch) {
  g.validate();
  const int64_t KR = g.col_rows(), NL = g.col_cols(), L = g.ho() * g.wo();
  T* col = scratch;
  T* dy2 = scratch + KR * NL;
  nkl_to_knl(dy, dy2, g.n, g.k_out, L);
  gemm_cpu<T>(true, false, KR, NL, g.k_out, T(1), w, dy2, T(0), col);
  col2im(g, col, dx);
}

template <typename T>
void conv_bwd_filter_cpu(const ConvGeom& g, const T* x, const T* dy, T* dw, T* scratch) {
  g.validate();
  const int64_t KR = g.col_rows(), NL = g.col_cols(), L = g.ho() * g.wo();
  T* col = scratch;
  T* dy2 = scratch + KR * NL;
  im2col(g, x, col);
  nkl_to_knl(dy, dy2, g.n, g.k_out, L);
  gemm_cpu<T>(false, true, g.k_out, KR, NL, T(1), dy2, col, T(0), dw);
}

template <typename T>
void conv_bwd_cpu(const ConvGeom& g, const T* x, const T* dy, const T* w, T* dx, T* dw, T* scratch) {
  conv_bwd_filter_cpu(g, x, dy, dw, scratch);  // leaves col(x) and dy as [K, N·L] in scratch
  if (!dx) return;
  const int64_t KR = g.col_rows(), NL = g.col_cols();
  T* col = scratch;
  const T* dy2 = scratch + KR * NL;
  gemm_cpu<T>(true, false, KR, NL, g.k_out, T(1), w, dy2, T(0), col);  // col is free again
  col2im(g, col, dx);
}

template <typename T>
void conv_transpose_bwd_cpu(const ConvGeom& g, const T* u, const T* v, const T* w, T* out, T* dw,
                            T* scratch) {
  conv_bwd_filter_cpu(g, u, v, dw, scratch);  // leaves col(u) and v as [K, N·L] in scratch
  if (!out) return;
  const int64_t KR = g.col_rows(), NL = g.col_cols(), L = g.ho() * g.wo();
  const T* col = scratch;
  T* v2 = scratch + KR * NL;
  gemm_cpu<T>(false, false, g.k_out, NL, KR, T(1), w, col, T(0), v2);  // v2 is free again
  knl_to_nkl(v2, out, g.n, g.k_out, L);
}

#define CUVAE_INSTANTIATE(T)                                                                   \
  template void gemm_cpu<T>(bool, bool, int64_t, int64_t, int64_t, T, const T*, const T*, T, T*); \
  template void conv_fwd_cpu<T>(const ConvGeom&, const T*, const T*, T*, T*);                \
  template void conv_bwd_data_cpu<T>(const ConvGeom&, const T*, const T*, T*, T*);           \
  template void conv_bwd_filter_cpu<T>(const ConvGeom&, const T*, const T*, T*, T*);          \
  template void conv_bwd_cpu<T>(const ConvGeom&, const T*, const T*, const T*, T*, T*, T*);   \
  template void conv_transpose_bwd_cpu<T>(const ConvGeom&, const T*, const T*, const T*, T*, T*, T*);
CUVAE_INSTANTIATE(float)
CUVAE_INSTANTIATE(double)
#undef CUVAE_INSTANTIATE

}  // namespace cuvae
