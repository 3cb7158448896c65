// Fuzz target: the PNG input path (uploaded images, `cuvae classify/gradcam --png`), decode_png.
// Input: byte 0 holds flags, the rest is the PNG file. Bit 0: 3 channels (else grey); bit 1:
// require the IEND chunk at the end (as uploads do); bits 2-3: the expected size, 0 = 28×28,
// 1 = 32×32, 2 or 3 = the size in the file's IHDR when both sides are 1..256 (so that the whole
// decoder runs on fuzzed sizes), else 28×28.
#include <cstdint>
#include <string>

#include "core/check.h"
#include "io/image.h"
#include "tests/fuzz/fuzz_util.h"

namespace {

uint32_t be32(const uint8_t* p) { return (uint32_t{p[0]} << 24) | (uint32_t{p[1]} << 16) | (uint32_t{p[2]} << 8) | p[3]; }

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  const uint8_t flags = data[0];
  const std::string png(reinterpret_cast<const char*>(data + 1), size - 1);
  const int c = (flags & 1) ? 3 : 1;
  const bool require_end = (flags & 2) != 0;
  int h = 28, w = 28;
  const int mode = (flags >> 2) & 3;
  if (mode == 1) {
    h = w = 32;
  } else if (mode >= 2 && png.size() >= 24) {  // IHDR: width at bytes 16-19, height at 20-23
    const uint32_t iw = be32(data + 1 + 16), ih = be32(data + 1 + 20);
    if (iw >= 1 && iw <= 256 && ih >= 1 && ih <= 256) {
      w = static_cast<int>(iw);
      h = static_cast<int>(ih);
    }
  }
  try {
    const std::vector<float> px = cuvae::decode_png(png, c, h, w, "image", require_end);
    FUZZ_ASSERT(px.size() == static_cast<size_t>(c) * h * w);
    for (float v : px) FUZZ_ASSERT(v >= 0.0f && v <= 1.0f);
  } catch (const cuvae::Error&) {
    // an expected refusal of a malformed file
  }
  return 0;
}
