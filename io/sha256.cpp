#include "io/sha256.h"

#include "core/check.h"

#ifdef CUVAE_HAS_OPENSSL
#include <openssl/evp.h>
#endif

namespace cuvae {

bool sha256_available() {
#ifdef CUVAE_HAS_OPENSSL
  return true;
#else
  return false;
#endif
}

struct Sha256::Impl {
#ifdef CUVAE_HAS_OPENSSL
  EVP_MD_CTX* ctx = nullptr;
  ~Impl() { EVP_MD_CTX_free(ctx); }
#endif
};

Sha256::Sha256() : impl_(std::make_unique<Impl>()) {
#ifdef CUVAE_HAS_OPENSSL
  impl_->ctx = EVP_MD_CTX_new();
  CUVAE_CHECK(impl_->ctx != nullptr && EVP_DigestInit_ex(impl_->ctx, EVP_sha256(), nullptr) == 1,
              "SHA-256: OpenSSL could not start a digest");
#else
  CUVAE_FAIL("SHA-256: this build has no OpenSSL libcrypto (install libssl-dev and rebuild)");
#endif
}

Sha256::~Sha256() = default;

void Sha256::update(const void* data, size_t n) {
#ifdef CUVAE_HAS_OPENSSL
  if (n > 0) CUVAE_CHECK(EVP_DigestUpdate(impl_->ctx, data, n) == 1, "SHA-256: digest update failed");
#else
  (void)data;
  (void)n;
#endif
}

std::string Sha256::hex() {
#ifdef CUVAE_HAS_OPENSSL
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  CUVAE_CHECK(EVP_DigestFinal_ex(impl_->ctx, md, &len) == 1 && len == 32, "SHA-256: digest failed");
  static const char* const digits = "0123456789abcdef";
  std::string out(64, '0');
  for (unsigned i = 0; i < 32; ++i) {
    out[2 * i] = digits[md[i] >> 4];
    out[2 * i + 1] = digits[md[i] & 15];
  }
  return out;
#else
  return {};
#endif
}

std::string sha256_hex(const void* data, size_t n) {
  Sha256 h;
  h.update(data, n);
  return h.hex();
}

}  // namespace cuvae
