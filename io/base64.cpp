#include "io/base64.h"

#include <cstdint>

#include "core/check.h"

namespace cuvae {

namespace {
constexpr char kAlphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

int value_of(unsigned char c) {
  if (c >= 'A' && c <= 'Z') return c - 'A';
  if (c >= 'a' && c <= 'z') return c - 'a' + 26;
  if (c >= '0' && c <= '9') return c - '0' + 52;
  if (c == '+') return 62;
  if (c == '/') return 63;
  return -1;
}
}  // namespace

std::string base64_encode(const std::string& bytes) {
  std::string out;
  out.reserve((bytes.size() + 2) / 3 * 4);
  size_t i = 0;
  for (; i + 2 < bytes.size(); i += 3) {
    const uint32_t v = (uint32_t(uint8_t(bytes[i])) << 16) | (uint32_t(uint8_t(bytes[i + 1])) << 8) | uint8_t(bytes[i + 2]);
    out += kAlphabet[(v >> 18) & 63];
    out += kAlphabet[(v >> 12) & 63];
    out += kAlphabet[(v >> 6) & 63];
    out += kAlphabet[v & 63];
  }
  if (i < bytes.size()) {
    uint32_t v = uint32_t(uint8_t(bytes[i])) << 16;
    if (i + 1 < bytes.size()) v |= uint32_t(uint8_t(bytes[i + 1])) << 8;
    out += kAlphabet[(v >> 18) & 63];
    out += kAlphabet[(v >> 12) & 63];
    out += i + 1 < bytes.size() ? kAlphabet[(v >> 6) & 63] : '=';
    out += '=';
  }
  return out;
}

std::string base64_decode(const std::string& text, const std::string& what) {
  if (text.size() % 4 != 0) CUVAE_FAIL(what << ": invalid base64 (length " << text.size() << " is not a multiple of 4: truncated?)");
  size_t n = text.size();
  size_t pad = 0;
  while (n > 0 && text[n - 1] == '=' && pad < 2) {
    --n;
    ++pad;
  }
  if (pad > 0 && (n + pad) % 4 != 0) CUVAE_FAIL(what << ": invalid base64 (misplaced '=' padding)");
  if (n % 4 == 1) CUVAE_FAIL(what << ": invalid base64 (truncated)");
  std::string out;
  out.reserve(n / 4 * 3 + 2);
  uint32_t acc = 0;
  int bits = 0;
  for (size_t i = 0; i < n; ++i) {
    const int v = value_of(static_cast<unsigned char>(text[i]));
    if (v < 0) CUVAE_FAIL(what << ": invalid base64 (character " << i << " is not in the base64 alphabet)");
    acc = (acc << 6) | static_cast<uint32_t>(v);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out += static_cast<char>((acc >> bits) & 0xff);
    }
  }
  return out;
}

std::string png_from_data_url(const std::string& url, const std::string& what) {
  static const std::string kPrefix = "data:image/png;base64,";
  if (url.compare(0, kPrefix.size(), kPrefix) != 0)
    CUVAE_FAIL(what << " must be a PNG data URL starting with \"data:image/png;base64,\"");
  return base64_decode(url.substr(kPrefix.size()), what);
}

std::string png_data_url(const std::string& png) { return "data:image/png;base64," + base64_encode(png); }

}  // namespace cuvae
