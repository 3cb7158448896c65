// PNG image grids for samples, reconstructions and traversals.
#pragma once

#include <cstdint>
#include <string>

#include "host/tensor.h"

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

}  // namespace cuvae
