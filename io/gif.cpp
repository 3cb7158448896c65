#include "io/gif.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include "core/check.h"
#include "io/fs.h"

#ifdef CUVAE_HAS_GIF
#include <gif_lib.h>
#endif

namespace cuvae {

bool gif_available() {
#ifdef CUVAE_HAS_GIF
  return true;
#else
  return false;
#endif
}

#ifdef CUVAE_HAS_GIF
namespace {

int append_gif_bytes(GifFileType* g, const GifByteType* data, int len) {
  static_cast<std::string*>(g->UserData)->append(reinterpret_cast<const char*>(data), static_cast<size_t>(len));
  return len;
}

uint8_t to_byte(float v) {
  if (!(v > 0.0f)) return 0;  // NaN and negatives
  if (v >= 1.0f) return 255;
  return static_cast<uint8_t>(std::lround(v * 255.0f));
}

// One frame as palette indices [h·scale, w·scale].
std::vector<GifByteType> frame_indices(const float* f, int c, int h, int w, int scale) {
  const int W = w * scale, H = h * scale;
  std::vector<GifByteType> out(static_cast<size_t>(W) * static_cast<size_t>(H));
  for (int y = 0; y < H; ++y)
    for (int x = 0; x < W; ++x) {
      const int64_t p = static_cast<int64_t>(y / scale) * w + x / scale;
      GifByteType idx;
      if (c == 1) {
        idx = to_byte(f[p]);
      } else {
        const int64_t plane = static_cast<int64_t>(h) * w;
        const int r = (to_byte(f[p]) * 5 + 127) / 255, g = (to_byte(f[plane + p]) * 6 + 127) / 255,
                  b = (to_byte(f[2 * plane + p]) * 5 + 127) / 255;
        idx = static_cast<GifByteType>((r * 7 + g) * 6 + b);
      }
      out[static_cast<size_t>(y) * static_cast<size_t>(W) + static_cast<size_t>(x)] = idx;
    }
  return out;
}

}  // namespace
#endif

void write_gif(const std::string& path, const float* frames, int64_t n, int c, int h, int w, int scale, int delay_cs,
               bool bounce) {
#ifndef CUVAE_HAS_GIF
  (void)frames; (void)n; (void)c; (void)h; (void)w; (void)scale; (void)delay_cs; (void)bounce;
  CUVAE_FAIL(path << ": GIF output is unavailable: this build of cuvae has no giflib (install libgif-dev and rebuild)");
#else
  if (n < 1 || (c != 1 && c != 3) || h < 1 || w < 1 || scale < 1 || static_cast<int64_t>(h) * scale > 16384 ||
      static_cast<int64_t>(w) * scale > 16384 || delay_cs < 0)
    CUVAE_FAIL(path << ": cannot write a GIF of " << n << " frames of " << c << "x" << h << "x" << w << " at scale "
                    << scale);
  std::string bytes;
  int err = 0;
  GifFileType* g = EGifOpen(&bytes, append_gif_bytes, &err);
  if (!g) CUVAE_FAIL(path << ": giflib: " << GifErrorString(err));
  ColorMapObject* cmap = GifMakeMapObject(256, nullptr);
  for (int i = 0; i < 256; ++i) {
    GifColorType& col = cmap->Colors[i];
    if (c == 1) {
      col.Red = col.Green = col.Blue = static_cast<GifByteType>(i);
    } else if (i < 6 * 7 * 6) {
      col.Red = static_cast<GifByteType>((i / 42) * 255 / 5);
      col.Green = static_cast<GifByteType>(((i / 6) % 7) * 255 / 6);
      col.Blue = static_cast<GifByteType>((i % 6) * 255 / 5);
    } else {
      col.Red = col.Green = col.Blue = 255;
    }
  }
  const int W = w * scale, H = h * scale;
  bool ok = true;
  EGifSetGifVersion(g, true);
  ok = ok && EGifPutScreenDesc(g, W, H, 8, 0, cmap) == GIF_OK;
  // Loop forever (the NETSCAPE2.0 application extension).
  static const GifByteType kApp[] = {'N', 'E', 'T', 'S', 'C', 'A', 'P', 'E', '2', '.', '0'};
  static const GifByteType kLoop[] = {1, 0, 0};
  ok = ok && EGifPutExtensionLeader(g, APPLICATION_EXT_FUNC_CODE) == GIF_OK &&
       EGifPutExtensionBlock(g, sizeof kApp, kApp) == GIF_OK && EGifPutExtensionBlock(g, sizeof kLoop, kLoop) == GIF_OK &&
       EGifPutExtensionTrailer(g) == GIF_OK;
  std::vector<int64_t> order;
  for (int64_t i = 0; i < n; ++i) order.push_back(i);
  if (bounce)
    for (int64_t i = n - 2; i >= 1; --i) order.push_back(i);
  const int64_t fsize = static_cast<int64_t>(c) * h * w;
  for (int64_t fi : order) {
    if (!ok) break;
    GraphicsControlBlock gcb{};
    gcb.DisposalMode = DISPOSE_DO_NOT;
    gcb.UserInputFlag = false;
    gcb.DelayTime = delay_cs;
    gcb.TransparentColor = NO_TRANSPARENT_COLOR;
    GifByteType ext[4];
    EGifGCBToExtension(&gcb, ext);
    ok = EGifPutExtension(g, GRAPHICS_EXT_FUNC_CODE, 4, ext) == GIF_OK &&
         EGifPutImageDesc(g, 0, 0, W, H, false, nullptr) == GIF_OK;
    std::vector<GifByteType> idx = frame_indices(frames + fi * fsize, c, h, w, scale);
    for (int y = 0; ok && y < H; ++y) ok = EGifPutLine(g, idx.data() + static_cast<size_t>(y) * static_cast<size_t>(W), W) == GIF_OK;
  }
  const int gerr = g->Error;
  const int closed = EGifCloseFile(g, &err);
  GifFreeMapObject(cmap);
  if (!ok || closed != GIF_OK) CUVAE_FAIL(path << ": giflib could not encode the GIF: " << GifErrorString(ok ? err : gerr));
  write_file_atomic(path, bytes);
#endif
}

}  // namespace cuvae
