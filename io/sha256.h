// SHA-256 digests (FIPS 180-4) through OpenSSL's libcrypto, for the checksums of the files
// cuvae writes.
#pragma once

#include <cstddef>
#include <memory>
#include <string>

namespace cuvae {

/// True when this build has SHA-256 (OpenSSL's libcrypto was found at build time). Without it
/// files are written without a checksum and checksums in files are not verified.
bool sha256_available();

/// Incremental SHA-256: update() with the bytes in order, then hex() once.
/// Throws cuvae::Error when the build has no SHA-256 (sha256_available() is false).
class Sha256 {
 public:
  Sha256();
  ~Sha256();
  Sha256(const Sha256&) = delete;
  Sha256& operator=(const Sha256&) = delete;
  /// Adds `n` bytes at `data` to the digest.
  void update(const void* data, size_t n);
  /// The digest of everything added so far as 64 lowercase hex digits (ends the digest).
  std::string hex();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

/// SHA-256 of `n` bytes at `data` as 64 lowercase hex digits.
std::string sha256_hex(const void* data, size_t n);

}  // namespace cuvae
