// SHA-256 and HMAC-SHA-256, for authenticating members to each other. Thin wrappers over
// OpenSSL's libcrypto (README.md, "Dependencies"), so callers need not see its API.
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <string_view>

namespace qfs {

using Sha256Digest = std::array<uint8_t, 32>;

// Incremental SHA-256.
class Sha256 {
 public:
  Sha256();
  ~Sha256();
  Sha256(Sha256&&) noexcept;
  Sha256& operator=(Sha256&&) noexcept;
  void Update(std::string_view data);
  // Returns the digest; the object must not be used afterwards.
  Sha256Digest Finish();

  static Sha256Digest Hash(std::string_view data);

 private:
  struct Ctx;
  std::unique_ptr<Ctx> ctx_;
};

Sha256Digest HmacSha256(std::string_view key, std::string_view message);

// HMAC-SHA-256 under one key for many messages: the key is set up once, so each MAC costs only
// the hashing (the peer transport MACs every frame).
class HmacSha256Key {
 public:
  explicit HmacSha256Key(std::string_view key);
  ~HmacSha256Key();
  HmacSha256Key(const HmacSha256Key&) = delete;
  HmacSha256Key& operator=(const HmacSha256Key&) = delete;
  // The MAC of the concatenation of `a` and `b`.
  Sha256Digest Mac(std::string_view a, std::string_view b);

 private:
  struct Ctx;
  std::unique_ptr<Ctx> ctx_;
};

// Compares without an early exit (CRYPTO_memcmp), so the time taken does not reveal where a
// MAC differs. Different lengths compare unequal at once: lengths are public (digest sizes).
bool ConstantTimeEqual(std::string_view a, std::string_view b);

}  // namespace qfs
