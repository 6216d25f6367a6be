#include "consensus/util/sha256.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/params.h>
#include <openssl/sha.h>

#include <cstdlib>

namespace qfs {

// These calls fail only on allocation failure or a broken libcrypto; like a failed new, abort.
struct Sha256::Ctx {
  EVP_MD_CTX* md = EVP_MD_CTX_new();
  ~Ctx() { EVP_MD_CTX_free(md); }
};

Sha256::Sha256() : ctx_(std::make_unique<Ctx>()) {
  if (ctx_->md == nullptr || EVP_DigestInit_ex(ctx_->md, EVP_sha256(), nullptr) != 1) std::abort();
}

Sha256::~Sha256() = default;
Sha256::Sha256(Sha256&&) noexcept = default;
Sha256& Sha256::operator=(Sha256&&) noexcept = default;

void Sha256::Update(std::string_view data) {
  if (EVP_DigestUpdate(ctx_->md, data.data(), data.size()) != 1) std::abort();
}

Sha256Digest Sha256::Finish() {
  Sha256Digest out;
  if (EVP_DigestFinal_ex(ctx_->md, out.data(), nullptr) != 1) std::abort();
  return out;
}

Sha256Digest Sha256::Hash(std::string_view data) {
  Sha256Digest out;
  SHA256(reinterpret_cast<const unsigned char*>(data.data()), data.size(), out.data());
  return out;
}

Sha256Digest HmacSha256(std::string_view key, std::string_view message) {
  Sha256Digest out;
  unsigned int len = 0;
  // HMAC() rejects a null key pointer; an empty key is valid HMAC (RFC 2104 pads it with zeros).
  static const unsigned char kEmpty = 0;
  const void* k = key.empty() ? static_cast<const void*>(&kEmpty) : key.data();
  if (HMAC(EVP_sha256(), k, static_cast<int>(key.size()),
           reinterpret_cast<const unsigned char*>(message.data()), message.size(), out.data(),
           &len) == nullptr ||
      len != out.size()) {
    std::abort();
  }
  return out;
}

struct HmacSha256Key::Ctx {
  EVP_MAC* mac = nullptr;
  EVP_MAC_CTX* ctx = nullptr;
  ~Ctx() {
    EVP_MAC_CTX_free(ctx);
    EVP_MAC_free(mac);
  }
};

HmacSha256Key::HmacSha256Key(std::string_view key) : ctx_(std::make_unique<Ctx>()) {
  static const unsigned char kEmpty = 0;
  ctx_->mac = EVP_MAC_fetch(nullptr, "HMAC", nullptr);
  ctx_->ctx = ctx_->mac ? EVP_MAC_CTX_new(ctx_->mac) : nullptr;
  char digest[] = "SHA256";
  OSSL_PARAM params[] = {OSSL_PARAM_construct_utf8_string("digest", digest, 0),
                         OSSL_PARAM_construct_end()};
  const unsigned char* k =
      key.empty() ? &kEmpty : reinterpret_cast<const unsigned char*>(key.data());
  if (ctx_->ctx == nullptr || EVP_MAC_init(ctx_->ctx, k, key.size(), params) != 1) std::abort();
}

HmacSha256Key::~HmacSha256Key() = default;

Sha256Digest HmacSha256Key::Mac(std::string_view a, std::string_view b) {
  Sha256Digest out;
  size_t len = 0;
  // A null key re-initializes with the key already set.
  if (EVP_MAC_init(ctx_->ctx, nullptr, 0, nullptr) != 1 ||
      EVP_MAC_update(ctx_->ctx, reinterpret_cast<const unsigned char*>(a.data()), a.size()) != 1 ||
      EVP_MAC_update(ctx_->ctx, reinterpret_cast<const unsigned char*>(b.data()), b.size()) != 1 ||
      EVP_MAC_final(ctx_->ctx, out.data(), &len, out.size()) != 1 || len != out.size()) {
    std::abort();
  }
  return out;
}

bool ConstantTimeEqual(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  return CRYPTO_memcmp(a.data(), b.data(), a.size()) == 0;
}

}  // namespace qfs
