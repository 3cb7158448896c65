// CUB for the emulated device (kernels/emu/): the subset the kernels use, in kernels/emu/cub.h.
#pragma once

#include "kernels/emu/cub.h"
