// Float options written to JSON as the decimals a user typed.
#pragma once

#include <charconv>
#include <cstdlib>

namespace cuvae {

/// The double nearest the shortest decimal that reads back as `v` (std::to_chars): 1e-3f gives
/// 0.001, where widening the float gives 0.0010000000474974513. For JSON written from float
/// options and configs (config.json, checkpoint metadata), so that a value reads back as typed.
inline double typed_decimal(float v) {
  char buf[48];
  const std::to_chars_result r = std::to_chars(buf, buf + sizeof buf - 1, v);
  *r.ptr = '\0';
  return std::strtod(buf, nullptr);
}

}  // namespace cuvae
