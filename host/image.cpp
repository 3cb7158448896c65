#include "host/image.h"

#include <algorithm>
#include <cmath>
#include <cstring>
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
#define STB_IMAGE_STATIC
#define STB_IMAGE_IMPLEMENTATION
#define STBI_ONLY_PNG
#include <stb_image.h>
#include <stb_easy_font.h>
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


void turbo_rgb(float t, float rgb[3]) {
  // Polynomial fit of the Turbo colormap published with it (Apache-2.0, Google LLC 2019).
  double x = std::isnan(t) ? 0.0 : std::clamp(static_cast<double>(t), 0.0, 1.0);
  const double x2 = x * x, x3 = x2 * x, x4 = x3 * x, x5 = x4 * x;
  const double r = 0.13572138 + 4.61539260 * x - 42.66032258 * x2 + 132.13108234 * x3 - 152.94239396 * x4 + 59.28637943 * x5;
  const double g = 0.09140261 + 2.19418839 * x + 4.84296658 * x2 - 14.18503333 * x3 + 4.27729857 * x4 + 2.82956604 * x5;
  const double b = 0.10667330 + 12.64194608 * x - 60.58204836 * x2 + 110.36276771 * x3 - 89.90310912 * x4 + 27.34824973 * x5;
  rgb[0] = static_cast<float>(std::clamp(r, 0.0, 1.0));
  rgb[1] = static_cast<float>(std::clamp(g, 0.0, 1.0));
  rgb[2] = static_cast<float>(std::clamp(b, 0.0, 1.0));
}

void overlay_heatmap(const float* image, int c, int h, int w, const float* heat, float alpha, float* out) {
  CUVAE_CHECK(c == 1 || c == 3, "overlay_heatmap: image has " << c << " channels, expected 1 or 3");
  CUVAE_CHECK(h > 0 && w > 0, "overlay_heatmap: bad size " << h << "x" << w);
  CUVAE_CHECK(alpha >= 0.0f && alpha <= 1.0f, "overlay_heatmap: alpha " << alpha << " outside [0, 1]");
  const int64_t hw = static_cast<int64_t>(h) * w;
  for (int64_t p = 0; p < hw; ++p) {
    float grey = image[p];
    if (c == 3) grey = 0.299f * image[p] + 0.587f * image[hw + p] + 0.114f * image[2 * hw + p];
    grey = std::clamp(std::isnan(grey) ? 0.0f : grey, 0.0f, 1.0f);
    float rgb[3];
    turbo_rgb(heat[p], rgb);
    for (int k = 0; k < 3; ++k) out[k * hw + p] = (1.0f - alpha) * grey + alpha * rgb[k];
  }
}

std::vector<float> decode_png(const std::string& bytes, int want_c, int h, int w, const std::string& what,
                              bool require_end) {
  CUVAE_CHECK(want_c == 1 || want_c == 3, "decode_png: channels must be 1 or 3, got " << want_c);
  static const unsigned char kSig[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
  if (bytes.size() < 8 || std::memcmp(bytes.data(), kSig, 8) != 0) CUVAE_FAIL(what << ": not a PNG file");
  if (bytes.size() > (size_t(1) << 30)) CUVAE_FAIL(what << ": PNG too large");
  // A whole PNG ends with its IEND chunk; anything shorter was cut off.
  static const unsigned char kIend[12] = {0, 0, 0, 0, 'I', 'E', 'N', 'D', 0xae, 0x42, 0x60, 0x82};
  if (require_end && (bytes.size() < 8 + 12 || std::memcmp(bytes.data() + bytes.size() - 12, kIend, 12) != 0))
    CUVAE_FAIL(what << ": truncated PNG (no IEND chunk at the end)");
  int iw = 0, ih = 0, comp = 0;
  // Check the size in the header before decoding, so a huge image is never expanded.
  if (!stbi_info_from_memory(reinterpret_cast<const unsigned char*>(bytes.data()), static_cast<int>(bytes.size()), &iw,
                             &ih, &comp))
    CUVAE_FAIL(what << ": cannot decode the PNG (" << stbi_failure_reason() << ")");
  if (iw != w || ih != h) CUVAE_FAIL(what << ": image is " << iw << "x" << ih << " pixels, the model expects " << w << "x" << h);
  unsigned char* px = stbi_load_from_memory(reinterpret_cast<const unsigned char*>(bytes.data()),
                                            static_cast<int>(bytes.size()), &iw, &ih, &comp, want_c);
  if (px == nullptr) CUVAE_FAIL(what << ": cannot decode the PNG (" << stbi_failure_reason() << ")");
  if (iw != w || ih != h) {
    stbi_image_free(px);
    CUVAE_FAIL(what << ": image is " << iw << "x" << ih << " pixels, the model expects " << w << "x" << h);
  }
  std::vector<float> out(static_cast<size_t>(want_c) * h * w);
  const int64_t hw = static_cast<int64_t>(h) * w;
  for (int64_t p = 0; p < hw; ++p)
    for (int k = 0; k < want_c; ++k) out[static_cast<size_t>(k * hw + p)] = px[p * want_c + k] / 255.0f;
  stbi_image_free(px);
  return out;
}

std::vector<float> read_png(const std::string& path, int want_c, int h, int w) {
  CUVAE_CHECK(want_c == 1 || want_c == 3, "read_png: channels must be 1 or 3, got " << want_c);
  if (!file_exists(path)) CUVAE_FAIL(path << ": no such file");
  return decode_png(read_file(path), want_c, h, w, path, /*require_end=*/false);
}

std::string png_from_planes(const float* planes, int c, int h, int w) {
  CUVAE_CHECK(c == 1 || c == 3, "png_from_planes: channels must be 1 or 3, got " << c);
  CUVAE_CHECK(h > 0 && w > 0, "png_from_planes: bad size " << h << "x" << w);
  const int64_t hw = static_cast<int64_t>(h) * w;
  std::vector<uint8_t> px(static_cast<size_t>(hw * c));
  for (int64_t p = 0; p < hw; ++p)
    for (int k = 0; k < c; ++k) {
      const float v = planes[k * hw + p];
      px[static_cast<size_t>(p * c + k)] = !(v > 0.0f) ? 0 : (v >= 1.0f ? 255 : static_cast<uint8_t>(std::lround(v * 255.0f)));
    }
  return encode_png(px.data(), w, h, c);
}

int draw_text(float* img, int h, int w, int x, int y, const std::string& text, const float rgb[3], int scale) {
  CUVAE_CHECK(scale >= 1, "draw_text: scale must be at least 1, got " << scale);
  // stb_easy_font emits axis-aligned quads of 4 vertices, 16 bytes each (x, y, z floats + colour).
  std::vector<char> buf(text.size() * 300 + 64);
  std::string t = text;
  const int quads = stb_easy_font_print(0, 0, t.data(), nullptr, buf.data(), static_cast<int>(buf.size()));
  for (int q = 0; q < quads; ++q) {
    const float* v0 = reinterpret_cast<const float*>(buf.data() + (q * 4 + 0) * 16);
    const float* v2 = reinterpret_cast<const float*>(buf.data() + (q * 4 + 2) * 16);
    const int x0 = x + static_cast<int>(v0[0]) * scale, y0 = y + static_cast<int>(v0[1]) * scale;
    const int x1 = x + static_cast<int>(v2[0]) * scale, y1 = y + static_cast<int>(v2[1]) * scale;
    for (int yy = std::max(y0, 0); yy < std::min(y1, h); ++yy)
      for (int xx = std::max(x0, 0); xx < std::min(x1, w); ++xx)
        for (int k = 0; k < 3; ++k) img[static_cast<size_t>(k) * h * w + static_cast<size_t>(yy) * w + xx] = rgb[k];
  }
  return stb_easy_font_width(t.data()) * scale;
}

}  // namespace cuvae
