#include "apps/serve/requests.h"

#include <cmath>
#include <limits>
#include <optional>
#include <sstream>

#include "io/base64.h"
#include "io/image.h"

namespace cuvae::serve {

using nlohmann::json;

namespace {

[[noreturn]] void bad(const std::string& msg) { throw HttpError(400, msg); }

/// Rejects bodies nested deeper than `max_depth` arrays/objects before parsing them.
void check_depth(const std::string& body, int max_depth) {
  int depth = 0;
  bool in_string = false, escaped = false;
  for (char ch : body) {
    if (in_string) {
      if (escaped) escaped = false;
      else if (ch == '\\') escaped = true;
      else if (ch == '"') in_string = false;
      continue;
    }
    if (ch == '"') in_string = true;
    else if (ch == '[' || ch == '{') {
      if (++depth > max_depth) bad("request body is nested deeper than " + std::to_string(max_depth) + " levels");
    } else if (ch == ']' || ch == '}') --depth;
  }
}

int64_t get_int(const json& j, const std::string& key, int64_t lo, int64_t hi, std::optional<int64_t> def = {}) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) {
    if (def) return *def;
    bad("missing field '" + key + "' (an integer in [" + std::to_string(lo) + ", " + std::to_string(hi) + "])");
  }
  int64_t v = 0;
  if (it->is_number_unsigned()) {
    const uint64_t u = it->get<uint64_t>();
    if (u > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) bad("'" + key + "' is too large");
    v = static_cast<int64_t>(u);
  } else if (it->is_number_integer()) {
    v = it->get<int64_t>();
  } else {
    bad("'" + key + "' must be an integer");
  }
  if (v < lo || v > hi)
    bad("'" + key + "' is " + std::to_string(v) + ", expected an integer in [" + std::to_string(lo) + ", " + std::to_string(hi) + "]");
  return v;
}

double get_number(const json& j, const std::string& key, double lo, double hi, std::optional<double> def = {}) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) {
    if (def) return *def;
    bad("missing field '" + key + "' (a number)");
  }
  if (!it->is_number()) bad("'" + key + "' must be a number");
  const double v = it->get<double>();
  if (!std::isfinite(v) || v < lo || v > hi) {
    std::ostringstream os;
    os << "'" << key << "' must be a number in [" << lo << ", " << hi << "]";
    bad(os.str());
  }
  return v;
}

std::string get_string(const json& j, const std::string& key, std::optional<std::string> def = {}) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) {
    if (def) return *def;
    bad("missing field '" + key + "' (a string)");
  }
  if (!it->is_string()) bad("'" + key + "' must be a string");
  return it->get<std::string>();
}

/// A PNG data URL field decoded to the model's planes [channels, height, width].
std::vector<float> image_field(const json& j, const std::string& key, const RequestLimits& lim) {
  auto it = j.find(key);
  if (it == j.end()) bad("missing field '" + key + "' (a PNG data URL)");
  if (!it->is_string()) bad("'" + key + "' must be a string (a PNG data URL)");
  try {
    const std::string png = png_from_data_url(it->get<std::string>(), "'" + key + "'");
    return decode_png(png, lim.channels, lim.height, lim.width, "'" + key + "'");
  } catch (const HttpError&) {
    throw;
  } catch (const Error& e) {  // bad base64, not a PNG, wrong size: the request's fault
    bad(e.what());
  }
}

int64_t test_index(const json& j, const std::string& key, const RequestLimits& lim) {
  if (lim.test_images <= 0) throw HttpError(404, "the server has no test data (start it with --data DIR)");
  return get_int(j, key, 0, lim.test_images - 1);
}

}  // namespace

json parse_body(const std::string& body) {
  if (body.size() > kMaxBody) throw HttpError(413, "request body larger than 1 MiB");
  check_depth(body, 32);
  json j;
  try {
    j = json::parse(body);
  } catch (const json::exception&) {
    bad("request body is not valid JSON");
  }
  if (!j.is_object()) bad("request body must be a JSON object");
  return j;
}

DecodeRequest parse_decode_request(const std::string& body, const RequestLimits& lim) {
  const json j = parse_body(body);
  auto it = j.find("z");
  if (it == j.end()) bad("missing field 'z' (an array of 1 to 256 latent vectors)");
  if (!it->is_array() || it->empty() || it->size() > 256) bad("'z' must be an array of 1 to 256 latent vectors");
  const int64_t D = lim.latent;
  DecodeRequest r;
  r.n = static_cast<int64_t>(it->size());
  r.z.reserve(static_cast<size_t>(r.n * D));
  for (size_t row_i = 0; row_i < it->size(); ++row_i) {
    const json& row = (*it)[row_i];
    const std::string name = "z[" + std::to_string(row_i) + "]";
    if (!row.is_array()) bad(name + " must be an array of " + std::to_string(D) + " numbers");
    if (static_cast<int64_t>(row.size()) != D)
      bad(name + " has " + std::to_string(row.size()) + " values, expected " + std::to_string(D));
    for (size_t d = 0; d < row.size(); ++d) {
      if (!row[d].is_number()) bad(name + "[" + std::to_string(d) + "] must be a number");
      const double v = row[d].get<double>();
      if (!std::isfinite(v) || std::abs(v) > 1e4)
        bad(name + "[" + std::to_string(d) + "] must be a finite number with |z| <= 10000");
      r.z.push_back(static_cast<float>(v));
    }
  }
  return r;
}

EncodeRequest parse_encode_request(const std::string& body, const RequestLimits& lim) {
  const json j = parse_body(body);
  const bool has_image = j.contains("image"), has_index = j.contains("index");
  if (has_image == has_index) bad("give exactly one of 'image' (a PNG data URL) or 'index' (a test image)");
  EncodeRequest r;
  if (has_index)
    r.index = test_index(j, "index", lim);
  else
    r.image = image_field(j, "image", lim);
  return r;
}

AnchorRequest parse_anchor_request(const std::string& body, const RequestLimits& lim) {
  const json j = parse_body(body);
  AnchorRequest r;
  r.cls = get_int(j, "class", 0, lim.num_classes - 1);
  r.n = get_int(j, "n", 1, 256, 16);
  r.noise = get_number(j, "noise", 0.0, 10.0, 0.5);
  r.seed = static_cast<uint64_t>(get_int(j, "seed", 0, std::numeric_limits<int64_t>::max(), 0));
  return r;
}

InterpolateRequest parse_interpolate_request(const std::string& body, const RequestLimits& lim) {
  const json j = parse_body(body);
  InterpolateRequest r;
  r.from = test_index(j, "from", lim);
  r.to = test_index(j, "to", lim);
  r.steps = static_cast<int>(get_int(j, "steps", 2, 64, 11));
  r.mode = get_string(j, "mode", std::string("lerp"));
  if (r.mode != "lerp" && r.mode != "slerp") bad("'mode' must be \"lerp\" or \"slerp\", got \"" + r.mode.substr(0, 40) + "\"");
  return r;
}

ClassifyRequest parse_classify_request(const std::string& body, const RequestLimits& lim) {
  const json j = parse_body(body);
  return ClassifyRequest{image_field(j, "image", lim)};
}

GradcamRequest parse_gradcam_request(const std::string& body, const RequestLimits& lim) {
  const json j = parse_body(body);
  GradcamRequest r;
  r.image = image_field(j, "image", lim);
  const std::string layer = get_string(j, "layer", std::string("layer4"));
  if (layer != "layer3" && layer != "layer4") bad("'layer' must be \"layer3\" or \"layer4\"");
  r.layer = layer == "layer3" ? 3 : 4;
  r.cls = get_int(j, "class", 0, lim.num_classes - 1, -1);
  return r;
}

}  // namespace cuvae::serve
