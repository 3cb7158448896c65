// Linked into the test programs: contexts made without an explicit CPU backend use the
// reference (im2col + Eigen, loops), the path every other one is checked against. The oneDNN
// backend is tested explicitly (tests/test_onednn.cpp) and by the end-to-end runs of the cuvae
// program, whose default it is.
#include "core/context.h"

namespace {
const bool kReferenceDefault = [] {
  cuvae::set_default_cpu_backend(cuvae::CpuBackend::Reference);
  return true;
}();
}  // namespace
