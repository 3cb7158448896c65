// Fuzz target: the IDX reader (MNIST/FashionMNIST images + labels, raw or gzip), parse_idx.
// Input: byte 0 sets num_classes = 1 + byte (1..256; seeds use 9 → 10), bytes 1-2 the image
// part's length L (little-endian), then L bytes of the image file and the rest as the label
// file (a shorter input makes the image part what there is and the label part empty).
#include <algorithm>
#include <cstdint>
#include <string>

#include "core/check.h"
#include "io/dataset.h"
#include "tests/fuzz/fuzz_util.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 3) return 0;
  const int num_classes = 1 + data[0];
  const size_t len = std::min<size_t>(size - 3, data[1] | (size_t{data[2]} << 8));
  const std::string images(reinterpret_cast<const char*>(data + 3), len);
  const std::string labels(reinterpret_cast<const char*>(data + 3 + len), size - 3 - len);
  try {
    const cuvae::Dataset ds = cuvae::parse_idx(images, labels, num_classes, "images", "labels");
    FUZZ_ASSERT(ds.n > 0 && ds.c == 1 && ds.h > 0 && ds.w > 0);
    FUZZ_ASSERT(ds.images.size() == static_cast<size_t>(ds.n * ds.pixels()));
    FUZZ_ASSERT(ds.labels.size() == static_cast<size_t>(ds.n));
    for (uint8_t l : ds.labels) FUZZ_ASSERT(l < num_classes);
  } catch (const cuvae::Error&) {
    // an expected refusal of a malformed file
  }
  return 0;
}
