// The stream type of the emulated CUDA device (kernels/emu/).
#pragma once

namespace cuvae {

/// Stands where a CUDA stream stands when a kernel launcher runs on the emulated device: every
/// `*_cuda` launcher of kernels/ is a template over its stream type S, defined once for
/// `Stream` (the GPU, compiled by nvcc) and once for `EmuStream` (the same source compiled as
/// host C++ against kernels/emu/device.h). Launches on it run to completion before the
/// launcher returns, so it carries no state.
struct EmuStream {};

}  // namespace cuvae
