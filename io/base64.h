// Base64 (RFC 4648, standard alphabet with '=' padding) for images in JSON (PNG data URLs).
#pragma once

#include <string>

namespace cuvae {

/// The base64 text of `bytes`.
std::string base64_encode(const std::string& bytes);

/// The bytes of base64 `text` (padded to a multiple of 4 characters, as RFC 4648 §3.2 requires;
/// no whitespace). Throws cuvae::Error naming `what` on a length that is not a multiple of 4
/// (a truncated text), a character outside the alphabet or misplaced padding.
std::string base64_decode(const std::string& text, const std::string& what);

/// The PNG bytes of a data URL "data:image/png;base64,…"; throws cuvae::Error naming `what` when
/// the prefix is missing or the base64 is invalid.
std::string png_from_data_url(const std::string& url, const std::string& what);

/// "data:image/png;base64," + base64_encode(png).
std::string png_data_url(const std::string& png);

}  // namespace cuvae
