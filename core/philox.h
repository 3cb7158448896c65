// Counter-based Philox4x32-10 random numbers (Salmon et al., "Parallel Random
// Numbers: As Easy as 1, 2, 3", SC 2011), one implementation for host and
// device so the same (seed, offset, index) gives bit-identical bits on CPU and GPU.
#pragma once

#include <cmath>
#include <cstdint>

#if defined(__CUDACC__)
#define CUVAE_HD __host__ __device__ __forceinline__
#else
#define CUVAE_HD inline
#endif

namespace cuvae {

/// Four 32-bit words: a Philox counter or output block.
struct PhiloxBlock {
  uint32_t v[4];
};

/// Philox4x32 with 10 rounds. `ctr` is the 128-bit counter, (k0, k1) the key.
CUVAE_HD PhiloxBlock philox4x32_10(PhiloxBlock ctr, uint32_t k0, uint32_t k1) {
  const uint32_t M0 = 0xD2511F53u, M1 = 0xCD9E8D57u;
  const uint32_t W0 = 0x9E3779B9u, W1 = 0xBB67AE85u;
  for (int r = 0; r < 10; ++r) {
    const uint64_t p0 = static_cast<uint64_t>(M0) * ctr.v[0];
    const uint64_t p1 = static_cast<uint64_t>(M1) * ctr.v[2];
    const uint32_t hi0 = static_cast<uint32_t>(p0 >> 32), lo0 = static_cast<uint32_t>(p0);
    const uint32_t hi1 = static_cast<uint32_t>(p1 >> 32), lo1 = static_cast<uint32_t>(p1);
    PhiloxBlock n;
    n.v[0] = hi1 ^ ctr.v[1] ^ k0;
    n.v[1] = lo1;
    n.v[2] = hi0 ^ ctr.v[3] ^ k1;
    n.v[3] = lo0;
    ctr = n;
    k0 += W0;
    k1 += W1;
  }
  return ctr;
}

/// The block for element `index` of stream `offset` under `seed`:
/// counter = (index lo, index hi, offset lo, offset hi), key = (seed lo, seed hi).
CUVAE_HD PhiloxBlock philox_at(uint64_t seed, uint64_t offset, uint64_t index) {
  PhiloxBlock c;
  c.v[0] = static_cast<uint32_t>(index);
  c.v[1] = static_cast<uint32_t>(index >> 32);
  c.v[2] = static_cast<uint32_t>(offset);
  c.v[3] = static_cast<uint32_t>(offset >> 32);
  return philox4x32_10(c, static_cast<uint32_t>(seed), static_cast<uint32_t>(seed >> 32));
}

/// Maps 32 random bits to a float uniform in the open interval (0, 1):
/// (top 24 bits + 0.5) · 2^-24, exact in float.
CUVAE_HD float philox_uniform(uint32_t bits) {
  return (static_cast<float>(bits >> 8) + 0.5f) * (1.0f / 16777216.0f);
}

/// One standard-normal sample for (seed, offset, index) by the Box–Muller
/// transform of the block's first two words. Host and device agree to a few ulp
/// (logf/cosf/sqrtf rounding), the underlying uniforms bit for bit.
CUVAE_HD float philox_normal(uint64_t seed, uint64_t offset, uint64_t index) {
  const PhiloxBlock b = philox_at(seed, offset, index);
  const float u1 = philox_uniform(b.v[0]);
  const float u2 = philox_uniform(b.v[1]);
  const float r = sqrtf(-2.0f * logf(u1));
  return r * cosf(6.2831853071795864f * u2);
}

/// One uniform in (0,1) for (seed, offset, index), from the block's third word.
CUVAE_HD float philox_uniform_at(uint64_t seed, uint64_t offset, uint64_t index) {
  return philox_uniform(philox_at(seed, offset, index).v[2]);
}

}  // namespace cuvae
