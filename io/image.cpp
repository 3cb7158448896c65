#include "io/image.h"

#include <zlib.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <vector>

#include "core/check.h"
#include "io/fs.h"

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

uint32_t be32(const unsigned char* p) {
  return (uint32_t{p[0]} << 24) | (uint32_t{p[1]} << 16) | (uint32_t{p[2]} << 8) | uint32_t{p[3]};
}

// Bytes of filtered image data (one filter byte per row) a w×h PNG of `channels` samples of
// `depth` bits needs, interlaced (Adam7, 7 passes) or not.
uint64_t png_raw_size(uint64_t w, uint64_t h, uint64_t channels, uint64_t depth, bool interlaced) {
  auto rows = [&](uint64_t pw, uint64_t ph) { return pw == 0 || ph == 0 ? 0 : ph * (1 + (pw * channels * depth + 7) / 8); };
  if (!interlaced) return rows(w, h);
  static const int kPass[7][4] = {{0, 0, 8, 8}, {4, 0, 8, 8}, {0, 4, 4, 8}, {2, 0, 4, 4}, {0, 2, 2, 4}, {1, 0, 2, 2}, {0, 1, 1, 2}};
  uint64_t total = 0;
  for (const auto& p : kPass) {
    const uint64_t pw = w > uint64_t(p[0]) ? (w - p[0] + p[2] - 1) / p[2] : 0;
    const uint64_t ph = h > uint64_t(p[1]) ? (h - p[1] + p[3] - 1) / p[3] : 0;
    total += rows(pw, ph);
  }
  return total;
}

// The PNG bytes to give stb_image, after checking what it would take on trust so that the bytes
// bound the memory it allocates: every chunk up to IEND must lie inside the bytes (stb reserves
// an IDAT chunk's declared length before reading it: 20 bytes could ask for 2 GiB), and the
// image data must inflate to no more than the pixels need plus 1 MiB (stb grows its output
// buffer to whatever the zlib stream holds, up to 4 GiB: a decompression bomb). Deflate data
// zlib rejects is refused too (stb accepts some invalid Huffman codes that would otherwise
// bypass the count). Empty IDAT chunks are dropped (stb copies an empty first one to a null
// pointer: undefined behaviour). Anything else is left to stb and its messages, including
// files without IEND.
std::string png_for_decoder(const std::string& bytes, const std::string& what) {
  const auto* p = reinterpret_cast<const unsigned char*>(bytes.data());
  const size_t size = bytes.size();
  std::string out = bytes.substr(0, 8), idat;
  bool iphone = false, have_header = false, interlaced = false;
  uint32_t iw = 0, ih = 0, depth = 0, colour = 0;
  size_t pos = 8;
  for (; pos + 8 <= size;) {
    const uint64_t len = be32(p + pos);
    const std::string type(bytes, pos + 4, 4);
    if (len > 0x7fffffffu)
      CUVAE_FAIL(what << ": corrupt PNG (chunk length " << len << " out of range)");
    if (len > size - pos - 8)
      CUVAE_FAIL(what << ": truncated PNG (a chunk of " << len << " bytes runs past the end of the "
                      << size << " bytes)");
    if (type == "IEND") break;  // it and whatever follows are copied below
    const unsigned char* data = p + pos + 8;
    if (type == "CgBI") iphone = true;  // Apple's variant: deflate without the zlib header
    if (type == "IHDR" && len == 13 && !have_header) {
      have_header = true;
      iw = be32(data);
      ih = be32(data + 4);
      depth = data[8];
      colour = data[9];
      interlaced = data[12] == 1;
    }
    if (type == "IDAT") idat.append(reinterpret_cast<const char*>(data), len);
    const size_t next = std::min<size_t>(size, pos + 12 + len);  // the CRC may be cut off
    if (!(type == "IDAT" && len == 0)) out.append(bytes, pos, next - pos);
    pos = next;
  }
  if (pos < size) out.append(bytes, pos, std::string::npos);

  static const int kChannels[7] = {1, 0, 3, 1, 2, 0, 4};  // by colour type; 0: invalid
  if (!have_header || colour > 6 || kChannels[colour] == 0 || depth == 0 || depth > 16) return out;  // stb refuses
  const uint64_t limit = png_raw_size(iw, ih, kChannels[colour], depth, interlaced) + (uint64_t{1} << 20);
  const size_t skip = iphone ? 0 : 2;  // the zlib header (stb checks it)
  if (idat.size() <= skip) return out;
  z_stream zs{};
  if (inflateInit2(&zs, -15) != Z_OK) CUVAE_FAIL(what << ": cannot check the PNG (out of memory)");
  zs.next_in = reinterpret_cast<Bytef*>(idat.data() + skip);
  zs.avail_in = static_cast<uInt>(idat.size() - skip);
  std::vector<unsigned char> buf(1 << 16);
  uint64_t inflated = 0;
  int r = Z_OK;
  while (r == Z_OK && inflated <= limit) {
    zs.next_out = buf.data();
    zs.avail_out = static_cast<uInt>(buf.size());
    r = inflate(&zs, Z_NO_FLUSH);
    inflated += buf.size() - zs.avail_out;
  }
  const std::string msg = zs.msg ? zs.msg : "";
  inflateEnd(&zs);
  if (inflated > limit)
    CUVAE_FAIL(what << ": PNG image data inflates to more than " << limit << " bytes, far more than "
                    << iw << "x" << ih << " pixels need (a decompression bomb?)");
  if (r == Z_DATA_ERROR || r == Z_NEED_DICT || r == Z_MEM_ERROR)
    CUVAE_FAIL(what << ": cannot decode the PNG (corrupt image data: " << (msg.empty() ? zError(r) : msg) << ")");
  return out;  // Z_STREAM_END: complete; Z_BUF_ERROR: the data ends early (stb says so)
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
  const std::string png = png_for_decoder(bytes, what);
  unsigned char* px = stbi_load_from_memory(reinterpret_cast<const unsigned char*>(png.data()),
                                            static_cast<int>(png.size()), &iw, &ih, &comp, want_c);
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
