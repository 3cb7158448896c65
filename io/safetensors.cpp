#include "io/safetensors.h"

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>

#include "core/check.h"
#include "io/fs.h"
#include "io/sha256.h"

static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__,
              "safetensors I/O copies raw bytes and assumes a little-endian host");

namespace cuvae {

namespace {

constexpr uint64_t kMaxHeader = 100000000;  // the reference reader's limit (100 MB)
const char* const kMetadataKey = "__metadata__";
const char* const kChecksumKey = "sha256";

std::string shape_str(const std::vector<int64_t>& shape) {
  std::ostringstream os;
  os << "[";
  for (size_t i = 0; i < shape.size(); ++i) os << (i ? ", " : "") << shape[i];
  os << "]";
  return os.str();
}

// product(shape) × element size, or false on overflow.
bool byte_count(const std::vector<int64_t>& shape, size_t elem, uint64_t* out) {
  uint64_t n = elem;
  for (int64_t d : shape) {
    if (d < 0 || __builtin_mul_overflow(n, static_cast<uint64_t>(d), &n)) return false;
  }
  *out = n;
  return true;
}

// A JSON number that is a non-negative integer (not a float).
bool as_u64(const nlohmann::json& j, uint64_t* out) {
  if (j.is_number_unsigned()) {
    *out = j.get<uint64_t>();
    return true;
  }
  if (j.is_number_integer() && j.get<int64_t>() >= 0) {
    *out = static_cast<uint64_t>(j.get<int64_t>());
    return true;
  }
  return false;
}

// nlohmann's what() starts with "[json.exception.parse_error.101] "; keep the rest.
std::string json_reason(const std::exception& e) {
  std::string s = e.what();
  const size_t p = s.find("] ");
  if (s.rfind("[json.exception", 0) == 0 && p != std::string::npos) s = s.substr(p + 2);
  std::replace(s.begin(), s.end(), '\n', ' ');
  return s;
}

// `s` with control characters replaced, so an error message stays on one line.
std::string printable(std::string s) {
  for (char& ch : s)
    if (static_cast<unsigned char>(ch) < 0x20 || ch == 0x7f) ch = '?';
  return s;
}

}  // namespace

size_t safetensors_dtype_size(const std::string& dtype) {
  static const std::map<std::string, size_t> sizes = {
      {"F64", 8}, {"F32", 4}, {"F16", 2}, {"BF16", 2}, {"I64", 8},
      {"I32", 4}, {"I16", 2}, {"I8", 1},  {"U8", 1},   {"BOOL", 1}};
  const auto it = sizes.find(dtype);
  return it == sizes.end() ? 0 : it->second;
}

// ---- writer ---------------------------------------------------------------------------

void SafetensorsWriter::add_view(const std::string& name, const std::string& dtype,
                                 std::vector<int64_t> shape, const void* data, size_t bytes,
                                 std::shared_ptr<const void> keep) {
  CUVAE_CHECK(!name.empty(), "safetensors: empty tensor name");
  CUVAE_CHECK(name != kMetadataKey, "safetensors: tensor name '" << name << "' is reserved");
  for (const auto& it : items_)
    CUVAE_CHECK(it.name != name, "safetensors: tensor '" << name << "' added twice");
  const size_t elem = safetensors_dtype_size(dtype);
  CUVAE_CHECK(elem != 0, "safetensors: tensor '" << name << "' has unknown dtype '" << dtype
                                                 << "', expected F64, F32, F16, BF16, I64, "
                                                    "I32, I16, I8, U8 or BOOL");
  uint64_t need = 0;
  CUVAE_CHECK(byte_count(shape, elem, &need),
              "safetensors: tensor '" << name << "' has invalid shape " << shape_str(shape));
  CUVAE_CHECK(need == bytes, "safetensors: tensor '" << name << "' of shape " << shape_str(shape)
                                                     << " and dtype " << dtype << " needs "
                                                     << need << " bytes, got " << bytes);
  CUVAE_CHECK(bytes == 0 || data != nullptr,
              "safetensors: tensor '" << name << "' has no data pointer");
  Item it;
  it.name = name;
  it.dtype = dtype;
  it.shape = std::move(shape);
  it.data = static_cast<const char*>(data);
  it.size = bytes;
  it.keep = std::move(keep);
  items_.push_back(std::move(it));
}

void SafetensorsWriter::add(const std::string& name, const std::string& dtype,
                            std::vector<int64_t> shape, const void* data, size_t bytes) {
  auto copy = std::make_shared<std::string>();
  if (bytes && data != nullptr) copy->assign(static_cast<const char*>(data), bytes);
  const char* p = copy->data();
  add_view(name, dtype, std::move(shape), bytes && data != nullptr ? p : data, bytes, std::move(copy));
}

void SafetensorsWriter::add_f32(const std::string& name, const Tensor& t) {
  const std::vector<float> v = t.to_vector();
  add(name, "F32", t.shape(), v.data(), v.size() * sizeof(float));
}

void SafetensorsWriter::add_f32_view(const std::string& name, const Tensor& t) {
  if (t.device() == Device::CPU) {  // raw bytes, as to_vector() gives them
    add_view(name, "F32", t.shape(), t.data(), static_cast<size_t>(t.numel()) * sizeof(float));
    return;
  }
  auto host = std::make_shared<std::vector<float>>(t.to_vector());
  const float* p = host->data();
  add_view(name, "F32", t.shape(), p, host->size() * sizeof(float), std::move(host));
}

void SafetensorsWriter::add_f32(const std::string& name, std::vector<int64_t> shape,
                                const std::vector<float>& values) {
  add(name, "F32", std::move(shape), values.data(), values.size() * sizeof(float));
}

void SafetensorsWriter::add_i64(const std::string& name, std::vector<int64_t> shape,
                                const std::vector<int64_t>& values) {
  add(name, "I64", std::move(shape), values.data(), values.size() * sizeof(int64_t));
}

void SafetensorsWriter::set_metadata(const std::string& key, const std::string& value) {
  for (auto& kv : metadata_) {
    if (kv.first == key) {
      kv.second = value;
      return;
    }
  }
  metadata_.emplace_back(key, value);
}

std::string SafetensorsWriter::prefix() const {
  nlohmann::ordered_json header = nlohmann::ordered_json::object();
  std::vector<std::pair<std::string, std::string>> metadata = metadata_;
  if (checksum_ && sha256_available()) {
    Sha256 digest;
    for (const auto& it : items_) digest.update(it.data, it.size);
    metadata.erase(std::remove_if(metadata.begin(), metadata.end(),
                                  [](const auto& kv) { return kv.first == kChecksumKey; }),
                   metadata.end());
    metadata.emplace_back(kChecksumKey, digest.hex());
  }
  if (!metadata.empty()) {
    nlohmann::ordered_json meta = nlohmann::ordered_json::object();
    for (const auto& kv : metadata) meta[kv.first] = kv.second;
    header[kMetadataKey] = std::move(meta);
  }
  uint64_t offset = 0;
  for (const auto& it : items_) {
    nlohmann::ordered_json e = nlohmann::ordered_json::object();
    e["dtype"] = it.dtype;
    e["shape"] = it.shape;
    e["data_offsets"] = {offset, offset + it.size};
    header[it.name] = std::move(e);
    offset += it.size;
  }
  std::string text;
  try {
    text = header.dump();
  } catch (const nlohmann::json::exception& e) {
    CUVAE_FAIL("safetensors: cannot encode header (names and metadata must be UTF-8): "
               << json_reason(e));
  }
  text.append((8 - text.size() % 8) % 8, ' ');
  CUVAE_CHECK(text.size() <= kMaxHeader,
              "safetensors: header of " << text.size() << " bytes exceeds the 100 MB limit");
  std::string out;
  out.reserve(8 + text.size());
  const uint64_t n = text.size();
  for (int i = 0; i < 8; ++i) out.push_back(static_cast<char>((n >> (8 * i)) & 0xff));
  out += text;
  return out;
}

std::string SafetensorsWriter::serialize() const {
  std::string out = prefix();
  size_t total = out.size();
  for (const auto& it : items_) total += it.size;
  out.reserve(total);
  for (const auto& it : items_) out.append(it.data, it.size);
  return out;
}

void SafetensorsWriter::write(const std::string& path) const {
  const std::string head = prefix();
  std::vector<ByteSpan> pieces;
  pieces.reserve(items_.size() + 1);
  pieces.push_back({head.data(), head.size()});
  for (const auto& it : items_) pieces.push_back({it.data, it.size});
  write_file_atomic(path, pieces);
}

// ---- reader ---------------------------------------------------------------------------

bool SafetensorsFile::has(const std::string& name) const { return tensors.count(name) != 0; }

const SafetensorsEntry& SafetensorsFile::at(const std::string& name) const {
  const auto it = tensors.find(name);
  if (it == tensors.end()) CUVAE_FAIL(path << ": no tensor '" << printable(name) << "'");
  return it->second;
}

namespace {

template <typename T>
std::vector<T> typed(const SafetensorsFile& f, const std::string& name,
                     const std::vector<int64_t>& expected_shape, const char* dtype) {
  const SafetensorsEntry& e = f.at(name);
  if (e.dtype != dtype)
    CUVAE_FAIL(f.path << ": tensor '" << name << "' has dtype " << e.dtype << ", expected "
                      << dtype);
  if (e.shape != expected_shape)
    CUVAE_FAIL(f.path << ": tensor '" << name << "' has shape " << shape_str(e.shape)
                      << ", expected " << shape_str(expected_shape));
  std::vector<T> out(e.bytes.size() / sizeof(T));
  if (!out.empty()) std::memcpy(out.data(), e.bytes.data(), out.size() * sizeof(T));
  return out;
}

}  // namespace

// IEEE 754 binary16 → binary32, exactly (subnormals, infinities and NaN included).
static float half_to_float(uint16_t h) {
  const uint32_t sign = static_cast<uint32_t>(h & 0x8000u) << 16;
  uint32_t exp = (h >> 10) & 0x1Fu, mant = h & 0x3FFu, bits;
  if (exp == 0x1F) {
    bits = sign | 0x7F800000u | (mant << 13);
  } else if (exp != 0) {
    bits = sign | ((exp + 112u) << 23) | (mant << 13);
  } else if (mant == 0) {
    bits = sign;
  } else {  // subnormal: normalise
    exp = 113;
    while ((mant & 0x400u) == 0) {
      mant <<= 1;
      --exp;
    }
    bits = sign | (exp << 23) | ((mant & 0x3FFu) << 13);
  }
  float f;
  std::memcpy(&f, &bits, sizeof f);
  return f;
}

std::vector<float> SafetensorsFile::f32(const std::string& name,
                                        const std::vector<int64_t>& expected_shape) const {
  const SafetensorsEntry& e = at(name);
  if (e.dtype != "F16" && e.dtype != "BF16") return typed<float>(*this, name, expected_shape, "F32");
  // Half-precision files (weights stored small) widen exactly to float32.
  const std::vector<uint16_t> h = typed<uint16_t>(*this, name, expected_shape, e.dtype.c_str());
  std::vector<float> out(h.size());
  for (size_t i = 0; i < h.size(); ++i) {
    if (e.dtype == "F16") {
      out[i] = half_to_float(h[i]);
    } else {
      const uint32_t bits = static_cast<uint32_t>(h[i]) << 16;
      std::memcpy(&out[i], &bits, sizeof(float));
    }
  }
  return out;
}

std::vector<int64_t> SafetensorsFile::i64(const std::string& name,
                                          const std::vector<int64_t>& expected_shape) const {
  return typed<int64_t>(*this, name, expected_shape, "I64");
}

SafetensorsFile parse_safetensors(const std::string& bytes, const std::string& path) {
  SafetensorsFile f;
  f.path = path;
  if (bytes.size() < 8)
    CUVAE_FAIL(path << ": file is " << bytes.size()
                    << " bytes, too short for the 8-byte header length (not a safetensors file)");
  uint64_t n = 0;
  for (int i = 0; i < 8; ++i) n |= uint64_t{static_cast<unsigned char>(bytes[i])} << (8 * i);
  if (n > kMaxHeader)
    CUVAE_FAIL(path << ": header length " << n << " exceeds the 100000000-byte limit");
  if (n > bytes.size() - 8)
    CUVAE_FAIL(path << ": header length " << n << " exceeds the " << bytes.size() - 8
                    << " bytes after the length field (file truncated?)");
  const char* hbeg = bytes.data() + 8;
  const char* hend = hbeg + n;
  if (n == 0 || *hbeg != '{')
    CUVAE_FAIL(path << ": header does not start with '{' (not a safetensors JSON header)");

  std::set<std::string> keys;
  std::string duplicate;
  auto cb = [&](int depth, nlohmann::json::parse_event_t ev, nlohmann::json& parsed) {
    if (ev == nlohmann::json::parse_event_t::key && depth == 1 && parsed.is_string()) {
      const auto& k = parsed.get_ref<const std::string&>();
      if (!keys.insert(k).second && duplicate.empty()) duplicate = k;
    }
    return true;
  };
  nlohmann::json header;
  try {
    header = nlohmann::json::parse(hbeg, hend, cb);
  } catch (const nlohmann::json::exception& e) {
    CUVAE_FAIL(path << ": header is not valid JSON: " << json_reason(e));
  }
  if (!header.is_object()) CUVAE_FAIL(path << ": header is not a JSON object");
  if (!duplicate.empty())
    CUVAE_FAIL(path << ": header has key '" << printable(duplicate) << "' twice");

  struct Span {
    uint64_t begin, end;
    std::string name;
  };
  std::vector<Span> spans;
  for (auto it = header.begin(); it != header.end(); ++it) {
    const std::string& name = it.key();
    const nlohmann::json& v = it.value();
    if (name == kMetadataKey) {
      if (v.is_null()) continue;
      if (!v.is_object())
        CUVAE_FAIL(path << ": __metadata__ is a " << v.type_name()
                        << ", expected an object of strings");
      for (auto m = v.begin(); m != v.end(); ++m) {
        if (!m.value().is_string())
          CUVAE_FAIL(path << ": __metadata__ value for '" << printable(m.key()) << "' is a "
                          << m.value().type_name() << ", expected a string");
        f.metadata[m.key()] = m.value().get<std::string>();
      }
      continue;
    }
    const std::string where = path + ": tensor '" + printable(name) + "'";
    if (!v.is_object()) CUVAE_FAIL(where << ": entry is a " << v.type_name() << ", expected an object");
    SafetensorsEntry e;
    const auto dt = v.find("dtype");
    if (dt == v.end() || !dt->is_string()) CUVAE_FAIL(where << ": missing string field 'dtype'");
    e.dtype = dt->get<std::string>();
    const size_t elem = safetensors_dtype_size(e.dtype);
    if (elem == 0)
      CUVAE_FAIL(where << ": unknown dtype '" << e.dtype
                       << "', expected F64, F32, F16, BF16, I64, I32, I16, I8, U8 or BOOL");
    const auto sh = v.find("shape");
    if (sh == v.end() || !sh->is_array())
      CUVAE_FAIL(where << ": missing field 'shape' (an array of non-negative integers)");
    for (size_t i = 0; i < sh->size(); ++i) {
      uint64_t u = 0;
      if (!as_u64((*sh)[i], &u) || u > static_cast<uint64_t>(INT64_MAX))
        CUVAE_FAIL(where << ": shape entry " << i << " is not a non-negative integer");
      e.shape.push_back(static_cast<int64_t>(u));
    }
    const auto off = v.find("data_offsets");
    uint64_t b = 0, en = 0;
    if (off == v.end() || !off->is_array() || off->size() != 2 || !as_u64((*off)[0], &b) ||
        !as_u64((*off)[1], &en))
      CUVAE_FAIL(where << ": data_offsets must be [begin, end], two non-negative integers");
    if (b > en) CUVAE_FAIL(where << ": data_offsets [" << b << ", " << en << "] have begin > end");
    uint64_t need = 0;
    if (!byte_count(e.shape, elem, &need))
      CUVAE_FAIL(where << ": shape " << shape_str(e.shape) << " overflows");
    if (en - b != need)
      CUVAE_FAIL(where << ": size mismatch: data_offsets [" << b << ", " << en << "] hold "
                       << en - b << " bytes, but shape " << shape_str(e.shape) << " of "
                       << e.dtype << " needs " << need);
    spans.push_back({b, en, name});
    f.tensors.emplace(name, std::move(e));
  }

  const uint64_t data_size = bytes.size() - 8 - n;
  std::sort(spans.begin(), spans.end(), [](const Span& x, const Span& y) {
    return x.begin != y.begin ? x.begin < y.begin : x.end < y.end;
  });
  uint64_t expect = 0;
  for (const Span& s : spans) {
    if (s.begin > expect)
      CUVAE_FAIL(path << ": tensor '" << printable(s.name) << "': data_offsets begin at " << s.begin
                      << ", expected " << expect
                      << " (offsets not contiguous: gap before this tensor)");
    if (s.begin < expect)
      CUVAE_FAIL(path << ": tensor '" << printable(s.name) << "': data_offsets begin at " << s.begin
                      << ", expected " << expect << " (overlapping the previous tensor)");
    if (s.end > data_size)
      CUVAE_FAIL(path << ": tensor '" << printable(s.name) << "': data_offsets end " << s.end
                      << " is out of bounds of the " << data_size << "-byte data section");
    expect = s.end;
  }
  if (expect != data_size)
    CUVAE_FAIL(path << ": " << data_size - expect << " trailing bytes: the data section is "
                    << data_size << " bytes but the tensors end at " << expect);
  const char* data = hend;
  const auto sum = f.metadata.find(kChecksumKey);
  if (sum != f.metadata.end() && sha256_available()) {
    const std::string& want = sum->second;
    if (want.size() != 64 || want.find_first_not_of("0123456789abcdef") != std::string::npos)
      CUVAE_FAIL(path << ": __metadata__ field '" << kChecksumKey << "' is not 64 lowercase hex digits");
    const std::string got = sha256_hex(data, data_size);
    if (got != want)
      CUVAE_FAIL(path << ": checksum mismatch: the tensor data's SHA-256 is " << got.substr(0, 16)
                      << "..., the header records " << want.substr(0, 16)
                      << "... (the file is damaged; restore it or train again)");
  }
  for (const Span& s : spans) {
    auto& bytes_out = f.tensors[s.name].bytes;
    bytes_out.assign(data + s.begin, data + s.end);
  }
  return f;
}

SafetensorsFile read_safetensors(const std::string& path) {
  return parse_safetensors(read_file(path), path);
}

}  // namespace cuvae
