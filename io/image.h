// PNG image grids for samples, reconstructions and traversals.
#pragma once

#include <cstdint>
#include <string>

#include "core/tensor.h"

namespace cuvae {

/// Size in pixels of the grid write_png_grid makes: `cols' = min(cols, n)` tiles across and
/// ceil(n / cols') down, each tile h·scale × w·scale, with `pad` pixels between tiles (none
/// around the border): width = cols'·w·scale + (cols'−1)·pad, height likewise with rows.
struct GridSize {
  int width = 0;
  int height = 0;
};

/// The grid size for `n` tiles of h×w pixels (see GridSize). Throws cuvae::Error when a
/// size is non-positive (pad negative) or the image would exceed 32768 pixels a side.
GridSize png_grid_size(int64_t n, int h, int w, int cols, int pad = 2, int scale = 1);

/// Tiles `n` images `images` [n, c, h, w] (float, c = 1 grey or 3 RGB planes, values in
/// [0, 1]; clamped, NaN as 0) row by row into a grid of `cols` columns with `pad` pixels of
/// white background between tiles, enlarges each pixel to scale×scale (nearest), and writes
/// an 8-bit PNG (grey or RGB) to `path` atomically (write_file_atomic). Throws cuvae::Error
/// naming `path` on bad sizes (see png_grid_size) or when the file cannot be written.
void write_png_grid(const std::string& path, const float* images, int64_t n, int c, int h,
                    int w, int cols, int pad = 2, int scale = 1);

/// Same from a tensor [n, c, h, w] (a CUDA tensor is copied to the host first).
void write_png_grid(const std::string& path, const Tensor& images, int cols, int pad = 2,
                    int scale = 1);

/// Encodes a packed 8-bit image (`comp` = 1 grey, 3 RGB, 4 RGBA; rows of width·comp bytes)
/// as PNG bytes. Throws cuvae::Error if encoding fails.
std::string encode_png(const uint8_t* pixels, int width, int height, int comp);

/// The Turbo colormap (Mikhailov, Google AI blog 2019: a perceptually smoothed rainbow), as the
/// published polynomial approximation: t in [0, 1] (clamped; NaN as 0) → rgb[3] in [0, 1].
void turbo_rgb(float t, float rgb[3]);

/// Grad-CAM overlay: image [c, h, w] (c = 1 or 3, values in [0, 1]) converted to grey, blended
/// with turbo(heat) [h, w] as out = (1 − alpha)·grey + alpha·turbo(heat), written as RGB planes
/// into out [3, h, w]. Throws cuvae::Error on c not 1 or 3, a non-positive size or alpha outside [0, 1].
void overlay_heatmap(const float* image, int c, int h, int w, const float* heat, float alpha, float* out);

/// Draws `text` (ASCII) into RGB planes img [3, h, w] with its top-left corner at (x, y), in the
/// stb_easy_font bitmap font (about 6 pixels per character, 7 high) enlarged `scale` times, in
/// colour rgb; pixels outside the image are skipped. Returns the text's width in pixels.
int draw_text(float* img, int h, int w, int x, int y, const std::string& text, const float rgb[3], int scale = 1);

/// Reads a PNG file as float planes [c, h, w] in [0, 1], converted to `want_c` channels (1: grey
/// by luminance, 3: RGB). Throws cuvae::Error naming `path` when it is missing, not a PNG (the
/// 8-byte signature is checked before decoding), cannot be decoded, or is not h×w pixels.
std::vector<float> read_png(const std::string& path, int want_c, int h, int w);

/// Decodes PNG bytes as float planes [c, h, w] in [0, 1], converted to `want_c` channels (1: grey
/// by luminance, 3: RGB; alpha dropped). The size is read from the header before decoding. With
/// `require_end` the bytes must end with the IEND chunk (a cut-off upload is refused even where
/// the decoder would accept it). Before decoding, the bytes must bound what the decoder allocates:
/// a chunk running past the end of the bytes, image data inflating to more than the h×w pixels
/// need plus 1 MiB (a decompression bomb) and deflate data zlib cannot decode are refused.
/// Throws cuvae::Error starting with `what` when the bytes are not a PNG, are truncated, cannot
/// be decoded, or are not h×w pixels.
std::vector<float> decode_png(const std::string& bytes, int want_c, int h, int w, const std::string& what,
                              bool require_end = true);

/// Encodes float planes [c, h, w] (c = 1 grey or 3 RGB, values in [0, 1], clamped, NaN as 0) as
/// 8-bit PNG bytes at their own resolution. Throws cuvae::Error on a bad size.
std::string png_from_planes(const float* planes, int c, int h, int w);

}  // namespace cuvae
