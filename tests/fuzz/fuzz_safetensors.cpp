// Fuzz target: the safetensors reader (checkpoints, anchor statistics), parse_safetensors,
// then the typed accessors on every tensor it accepted. The input is the whole file.
#include <cstdint>
#include <string>

#include "core/check.h"
#include "io/safetensors.h"
#include "tests/fuzz/fuzz_util.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string bytes(reinterpret_cast<const char*>(data), size);
  try {
    const cuvae::SafetensorsFile f = cuvae::parse_safetensors(bytes, "file");
    size_t total = 0;
    for (const auto& [name, e] : f.tensors) {
      uint64_t count = 1;
      for (int64_t d : e.shape) count *= static_cast<uint64_t>(d);
      const size_t elem = cuvae::safetensors_dtype_size(e.dtype);
      FUZZ_ASSERT(elem > 0);
      FUZZ_ASSERT(e.bytes.size() == count * elem);
      total += e.bytes.size();
      FUZZ_ASSERT(f.has(name));
      if (e.dtype == "F32") FUZZ_ASSERT(f.f32(name, e.shape).size() == count);
      if (e.dtype == "I64") FUZZ_ASSERT(f.i64(name, e.shape).size() == count);
      try {
        f.f32(name, {1, 2, 3});  // a wrong shape or dtype is refused with a message
      } catch (const cuvae::Error&) {
      }
    }
    FUZZ_ASSERT(total <= size);
    try {
      f.at(std::string("\xff no such tensor", 17));
    } catch (const cuvae::Error&) {
    }
  } catch (const cuvae::Error&) {
    // an expected refusal of a malformed file
  }
  return 0;
}
