#include "kernels/gradcam.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include "core/check.h"

namespace cuvae {

namespace {
// Source taps of output index `dst` for a resize from `in` to `out` samples with
// align_corners=False (PyTorch's area_pixel_compute_source_index with scale in/out):
// src = max((dst + 0.5)·in/out − 0.5, 0), i0 = floor(src), i1 = min(i0 + 1, in − 1),
// lambda = src − i0 (the weight of i1).
void bilinear_taps(int64_t dst, int64_t in, int64_t out, int64_t& i0, int64_t& i1,
                   double& lambda) {
  const double scale = static_cast<double>(in) / static_cast<double>(out);
  const double src = std::max((static_cast<double>(dst) + 0.5) * scale - 0.5, 0.0);
  i0 = std::min(static_cast<int64_t>(std::floor(src)), in - 1);
  i1 = std::min(i0 + 1, in - 1);
  lambda = src - static_cast<double>(i0);
}
}  // namespace

template <typename T>
void gradcam_cpu(const T* A, const T* dA, int64_t n, int64_t k, int64_t h, int64_t w, int64_t H,
                 int64_t W, T* heat, T* cam_out) {
  CUVAE_CHECK(n > 0 && k > 0 && h > 0 && w > 0 && H > 0 && W > 0,
              "gradcam: non-positive size n=" << n << " k=" << k << " h=" << h << " w=" << w
                                              << " H=" << H << " W=" << W);
  const int64_t hw = h * w, HW = H * W;
  std::vector<double> alpha(static_cast<size_t>(k)), cam(static_cast<size_t>(hw)),
      up(static_cast<size_t>(HW));
  for (int64_t i = 0; i < n; ++i) {
    const T* a = A + i * k * hw;
    const T* g = dA + i * k * hw;
    for (int64_t c = 0; c < k; ++c) {
      double s = 0.0;
      for (int64_t p = 0; p < hw; ++p) s += static_cast<double>(g[c * hw + p]);
      alpha[static_cast<size_t>(c)] = s / static_cast<double>(hw);
    }
    for (int64_t p = 0; p < hw; ++p) {
      double s = 0.0;
      for (int64_t c = 0; c < k; ++c)
        s += alpha[static_cast<size_t>(c)] * static_cast<double>(a[c * hw + p]);
      cam[static_cast<size_t>(p)] = std::max(s, 0.0);
      if (cam_out) cam_out[i * hw + p] = static_cast<T>(cam[static_cast<size_t>(p)]);
    }
    double lo = 0.0, hi = 0.0;
    for (int64_t oy = 0; oy < H; ++oy) {
      int64_t y0 = 0, y1 = 0;
      double ly = 0.0;
      bilinear_taps(oy, h, H, y0, y1, ly);
      for (int64_t ox = 0; ox < W; ++ox) {
        int64_t x0 = 0, x1 = 0;
        double lx = 0.0;
        bilinear_taps(ox, w, W, x0, x1, lx);
        const auto at = [&](int64_t yy, int64_t xx) { return cam[static_cast<size_t>(yy * w + xx)]; };
        const double v = (1.0 - ly) * ((1.0 - lx) * at(y0, x0) + lx * at(y0, x1)) +
                         ly * ((1.0 - lx) * at(y1, x0) + lx * at(y1, x1));
        up[static_cast<size_t>(oy * W + ox)] = v;
        if (oy == 0 && ox == 0) lo = hi = v;
        lo = std::min(lo, v);
        hi = std::max(hi, v);
      }
    }
    const double range = hi - lo;
    T* out = heat + i * HW;
    if (range <= 1e-12 * std::max(1.0, hi)) {
      std::fill(out, out + HW, T(0));
    } else {
      for (int64_t p = 0; p < HW; ++p)
        out[p] = static_cast<T>((up[static_cast<size_t>(p)] - lo) / range);
    }
  }
}

template void gradcam_cpu<float>(const float*, const float*, int64_t, int64_t, int64_t, int64_t,
                                 int64_t, int64_t, float*, float*);
template void gradcam_cpu<double>(const double*, const double*, int64_t, int64_t, int64_t,
                                  int64_t, int64_t, int64_t, double*, double*);

}  // namespace cuvae
