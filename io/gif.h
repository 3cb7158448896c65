// Animated GIFs (giflib) of image sequences, e.g. one latent dimension swept from −3 to +3.
#pragma once

#include <cstdint>
#include <string>

namespace cuvae {

/// True when this build was made with giflib (Debian's libgif-dev); without it write_gif
/// throws and callers say that --gif is unavailable.
bool gif_available();

/// Writes `n` frames `frames` [n, c, h, w] (c = 1 grey or 3 RGB planes, values in [0, 1],
/// clamped; NaN as 0) as a looping animated GIF89a, each pixel enlarged to scale×scale and each
/// frame shown for `delay_cs` hundredths of a second. Grey frames use a 256-level grey palette;
/// RGB frames a 6×7×6 colour cube. With `bounce` the frames play forwards then backwards.
/// Written atomically (write_file_atomic). Throws cuvae::Error naming `path` when giflib is
/// missing from this build, a size is non-positive or the file cannot be written.
void write_gif(const std::string& path, const float* frames, int64_t n, int c, int h, int w, int scale = 4,
               int delay_cs = 10, bool bounce = true);

}  // namespace cuvae
