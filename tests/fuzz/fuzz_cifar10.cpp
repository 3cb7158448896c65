// Fuzz target: the CIFAR-10 binary batch reader, parse_cifar10_batch (records of 1 label
// byte + 3072 pixel bytes). The input is the whole batch file.
#include <cstdint>
#include <string>

#include "core/check.h"
#include "io/dataset.h"
#include "tests/fuzz/fuzz_util.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string bytes(reinterpret_cast<const char*>(data), size);
  try {
    const cuvae::Dataset ds = cuvae::parse_cifar10_batch(bytes, "batch");
    FUZZ_ASSERT(ds.n > 0 && ds.c == 3 && ds.h == 32 && ds.w == 32 && ds.num_classes == 10);
    FUZZ_ASSERT(static_cast<size_t>(ds.n) * 3073 == size);
    FUZZ_ASSERT(ds.images.size() == static_cast<size_t>(ds.n) * 3072);
    FUZZ_ASSERT(ds.labels.size() == static_cast<size_t>(ds.n));
    for (int64_t r = 0; r < ds.n; ++r) {
      FUZZ_ASSERT(ds.labels[r] < 10 && ds.labels[r] == data[r * 3073]);
      FUZZ_ASSERT(ds.images[r * 3072 + 3071] == data[r * 3073 + 3072]);
    }
  } catch (const cuvae::Error&) {
    // an expected refusal of a malformed file
  }
  return 0;
}
