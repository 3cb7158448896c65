// Fuzz target: the dashboard's request bodies (apps/serve/requests.h), as a POST handler sees
// them. Input: byte 0 selects, the rest is the body. Bits 0-2: the endpoint (0 decode, 1 encode,
// 2 anchor, 3 interpolate, 4 classify, 5 gradcam, 6-7 parse_body alone); bit 3: a CIFAR-shaped
// server (3×32×32 images, D = 16, 1 test image) instead of an MNIST-shaped one (1×28×28, D = 8,
// 50 test images, as in tests/test_serve_api.cpp); bit 4: no test data (index fields → 404).
#include <cstdint>
#include <string>

#include "apps/serve/requests.h"
#include "core/check.h"
#include "tests/fuzz/fuzz_util.h"

using namespace cuvae::serve;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  const uint8_t sel = data[0];
  const std::string body(reinterpret_cast<const char*>(data + 1), size - 1);
  RequestLimits lim;
  if (sel & 8) {
    lim.latent = 16;
    lim.test_images = 1;
    lim.channels = 3;
    lim.height = lim.width = 32;
  } else {
    lim.latent = 8;
    lim.test_images = 50;
  }
  if (sel & 16) lim.test_images = 0;
  const size_t image_size = static_cast<size_t>(lim.channels) * lim.height * lim.width;
  try {
    switch (sel & 7) {
      case 0: {
        const DecodeRequest r = parse_decode_request(body, lim);
        FUZZ_ASSERT(r.n >= 1 && r.n <= 256 && r.z.size() == static_cast<size_t>(r.n * lim.latent));
        for (float v : r.z) FUZZ_ASSERT(v >= -1e4f && v <= 1e4f);
        break;
      }
      case 1: {
        const EncodeRequest r = parse_encode_request(body, lim);
        if (r.index >= 0)
          FUZZ_ASSERT(r.index < lim.test_images && r.image.empty());
        else
          FUZZ_ASSERT(r.index == -1 && r.image.size() == image_size);
        break;
      }
      case 2: {
        const AnchorRequest r = parse_anchor_request(body, lim);
        FUZZ_ASSERT(r.cls >= 0 && r.cls < lim.num_classes && r.n >= 1 && r.n <= 256);
        FUZZ_ASSERT(r.noise >= 0.0 && r.noise <= 10.0);
        break;
      }
      case 3: {
        const InterpolateRequest r = parse_interpolate_request(body, lim);
        FUZZ_ASSERT(r.from >= 0 && r.from < lim.test_images && r.to >= 0 && r.to < lim.test_images);
        FUZZ_ASSERT(r.steps >= 2 && r.steps <= 64 && (r.mode == "lerp" || r.mode == "slerp"));
        break;
      }
      case 4: {
        const ClassifyRequest r = parse_classify_request(body, lim);
        FUZZ_ASSERT(r.image.size() == image_size);
        break;
      }
      case 5: {
        const GradcamRequest r = parse_gradcam_request(body, lim);
        FUZZ_ASSERT(r.image.size() == image_size && (r.layer == 3 || r.layer == 4));
        FUZZ_ASSERT(r.cls >= -1 && r.cls < lim.num_classes);
        break;
      }
      default:
        FUZZ_ASSERT(parse_body(body).is_object());
    }
  } catch (const HttpError& e) {
    FUZZ_ASSERT(e.status == 400 || e.status == 404 || e.status == 413);
  }
  return 0;
}
