#include "host/image.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include "host/check.h"
#include "host/fs.h"

#if defined(__GNUC__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"
#pragma GCC diagnostic ignored "-Wsign-compare"
#pragma GCC diagnostic ignored "-Wunused-parameter"
#pragma GCC diagnostic ignored "-Wunused-function"
#pragma GCC diagnostic ignored "-Wpedantic"
#endif
#define STB_IMAGE_WRITE_STATIC
#define STB_IMAGE_WRITE_IMPLEMENTATION
#include <stb_image_write.h>
#if defined(__GNUC__)
#pragma GCC diagnostic pop
#endif

namespace cuvae {

namespace {

constexpr int64_t kMaxSide = 32768;

void append_bytes(void* ctx, void* data, int size) {
  static_cast<std::string*>(ctx)->append(static_cast<const char*>(data),
                                         static_cast<size_t>(size));
}

uint8_t to_byte(float v) {
  if (!(v > 0.0f)) return 0;  // also NaN
  if (v >= 1.0f) return 255;
  return static_cast<uint8_t>(std::lround(v * 255.0f));
}

}  // namespace

GridSize png_grid_size(int64_t n, int h, int w, int cols, int pad, int scale) {
  CUVAE_CHECK(n > 0 && h > 0 && w > 0, "image grid: need n, h, w > 0, got n=" << n << " h=" << h
                                                                             << " w=" << w);
  CUVAE_CHECK(cols > 0, "image grid: cols must be > 0, got " << cols);
  CUVAE_CHECK(pad >= 0, "image grid: pad must be >= 0, got " << pad);
  CUVAE_CHECK(scale > 0, "image grid: scale must be > 0, got " << scale);
  const int64_t gc = std::min<int64_t>(cols, n);
  const int64_t gr = (n + gc - 1) / gc;
  const int64_t width = gc * w * static_cast<int64_t>(scale) + (gc - 1) * pad;
  const int64_t height = gr * h * static_cast<int64_t>(scale) + (gr - 1) * pad;
  CUVAE_CHECK(width <= kMaxSide && height <= kMaxSide,
              "image grid: " << width << "x" << height << " pixels exceeds " << kMaxSide
                             << " a side (fewer images, smaller --scale)");
  return {static_cast<int>(width), static_cast<int>(height)};
}

std::string encode_png(const uint8_t* pixels, int width, int height, int comp) {
  CUVAE_CHECK(width > 0 && height > 0 && (comp == 1 || comp == 3 || comp == 4),
              "encode_png: bad image " << width << "x" << height << "x" << comp);
  std::string out;
  const int ok = stbi_write_png_to_func(append_bytes, &out, width, height, comp, pixels,
                                        width * comp);
  CUVAE_CHECK(ok != 0, "encode_png: PNG encoding of a " << width << "x" << height
                                                        << " image failed");
  return out;
}

void write_png_grid(const std::string& path, const float* images, int64_t n, int c, int h,
                    int w, int cols, int pad, int scale) {
  if (c != 1 && c != 3)
    CUVAE_FAIL(path << ": image grid needs 1 (grey) or 3 (RGB) channels, got " << c);
  GridSize g;
  try {
    g = png_grid_size(n, h, w, cols, pad, scale);
  } catch (const Error& e) {
    CUVAE_FAIL(path << ": " << e.what());
  }
  CUVAE_CHECK(images != nullptr, path << ": image grid: null image data");
  const int gc = static_cast<int>(std::min<int64_t>(cols, n));
  std::vector<uint8_t> px(static_cast<size_t>(g.width) * g.height * c, 255);
  const int64_t plane = static_cast<int64_t>(h) * w;
  for (int64_t i = 0; i < n; ++i) {
    const int64_t x0 = (i % gc) * (static_cast<int64_t>(w) * scale + pad);
    const int64_t y0 = (i / gc) * (static_cast<int64_t>(h) * scale + pad);
    const float* img = images + i * c * plane;
    for (int y = 0; y < h; ++y) {
      for (int x = 0; x < w; ++x) {
        for (int ch = 0; ch < c; ++ch) {
          const uint8_t v = to_byte(img[ch * plane + static_cast<int64_t>(y) * w + x]);
          for (int sy = 0; sy < scale; ++sy) {
            const int64_t row = y0 + static_cast<int64_t>(y) * scale + sy;
            uint8_t* dst = px.data() + (row * g.width + x0 + static_cast<int64_t>(x) * scale) * c + ch;
            for (int sx = 0; sx < scale; ++sx) dst[sx * c] = v;
          }
        }
      }
    }
  }
  write_file_atomic(path, encode_png(px.data(), g.width, g.height, c));
}

void write_png_grid(const std::string& path, const Tensor& images, int cols, int pad,
                    int scale) {
  if (images.ndim() != 4)
    CUVAE_FAIL(path << ": image grid needs a tensor [n, c, h, w], got " << images.shape_str());
  const std::vector<float> v = images.to_vector();
  write_png_grid(path, v.data(), images.dim(0), static_cast<int>(images.dim(1)),
                 static_cast<int>(images.dim(2)), static_cast<int>(images.dim(3)), cols, pad,
                 scale);
}

}  // namespace cuvae
