// The dashboard API's request bodies (docs/api.md), parsed and validated without a server or
// models: each POST handler of apps/serve/server.cpp calls one parse_*_request function before
// any model work, and the fuzz target tests/fuzz/fuzz_requests.cpp calls them directly.
#pragma once

#include <cstddef>
#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "core/check.h"

namespace cuvae::serve {

/// Most bytes a request body may have (larger bodies get 413).
constexpr size_t kMaxBody = size_t(1) << 20;

/// An error answered with HTTP `status` and the body {"error": what()}: 400 for a bad field,
/// 404 for something the server does not have (no test data), 413 for a body over kMaxBody.
struct HttpError : Error {
  int status;
  HttpError(int s, const std::string& msg) : Error(msg), status(s) {}
};

/// What requests are checked against: the shapes of the loaded models and data.
struct RequestLimits {
  int64_t latent = 32;       ///< D, the VAE's latent size: the length of every z row
  int64_t num_classes = 10;  ///< K: a 'class' field must be in 0..K−1
  int64_t test_images = 0;   ///< test-set size: an index must be in 0..test_images−1; 0 = no test data (404)
  int channels = 1;          ///< the model's image channels (1 or 3): uploaded PNGs are converted to them
  int height = 28;           ///< the model's image height: uploaded PNGs must have it
  int width = 28;            ///< the model's image width: uploaded PNGs must have it
};

/// The body as a JSON object. Throws HttpError 413 when it is larger than kMaxBody, 400 when it
/// is nested deeper than 32 arrays/objects (checked before parsing), is not valid JSON (NaN,
/// Infinity and trailing garbage included) or its root is not an object.
nlohmann::json parse_body(const std::string& body);

/// POST /api/decode: {"z": [[D numbers], …]} with 1..256 rows, each |z| ≤ 1e4 and finite.
struct DecodeRequest {
  int64_t n = 0;         ///< number of rows
  std::vector<float> z;  ///< [n, D] row-major
};
/// Throws HttpError (400, or parse_body's statuses) naming the field: "z[0] has 3 values, expected 8".
DecodeRequest parse_decode_request(const std::string& body, const RequestLimits& lim);

/// POST /api/encode: exactly one of {"image": PNG data URL} or {"index": test image}.
struct EncodeRequest {
  int64_t index = -1;        ///< the test image's index, or −1 for an uploaded image
  std::vector<float> image;  ///< the uploaded image [channels, height, width] in [0, 1]; empty for an index
};
/// Throws HttpError 400 on a bad field, 404 for an index when lim.test_images is 0.
EncodeRequest parse_encode_request(const std::string& body, const RequestLimits& lim);

/// POST /api/anchor: {"class": K, "n": 1..256 (16), "noise": 0..10 (0.5), "seed": ≥ 0 (0)}.
struct AnchorRequest {
  int64_t cls = 0;     ///< in 0..lim.num_classes−1
  int64_t n = 16;      ///< samples
  double noise = 0.5;  ///< s in z ~ N(m_Km, s²Σ_Km), component m of class K's mixture (kDefaultAnchorComponents)
  uint64_t seed = 0;
};
/// Throws HttpError 400 naming the field.
AnchorRequest parse_anchor_request(const std::string& body, const RequestLimits& lim);

/// POST /api/interpolate: {"from": I, "to": J, "steps": 2..64 (11), "mode": "lerp" | "slerp"}.
struct InterpolateRequest {
  int64_t from = 0, to = 0;  ///< test-image indices
  int steps = 11;
  std::string mode = "lerp";  ///< "lerp" or "slerp"
};
/// Throws HttpError 400 naming the field, 404 when lim.test_images is 0.
InterpolateRequest parse_interpolate_request(const std::string& body, const RequestLimits& lim);

/// POST /api/classify: {"image": PNG data URL}.
struct ClassifyRequest {
  std::vector<float> image;  ///< [channels, height, width] in [0, 1]
};
/// Throws HttpError 400 when the image is missing, not a PNG data URL, not decodable or of the wrong size.
ClassifyRequest parse_classify_request(const std::string& body, const RequestLimits& lim);

/// POST /api/gradcam: {"image": PNG data URL, "layer": "layer3" | "layer4" (layer4), "class": K (optional)}.
struct GradcamRequest {
  std::vector<float> image;  ///< [channels, height, width] in [0, 1]
  int layer = 4;             ///< 3 or 4
  int64_t cls = -1;          ///< the class to explain, −1 = the predicted one
};
/// Throws HttpError 400 naming the field.
GradcamRequest parse_gradcam_request(const std::string& body, const RequestLimits& lim);

}  // namespace cuvae::serve
