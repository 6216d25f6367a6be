// SHA-256 (FIPS 180-4) and HMAC-SHA-256 (RFC 2104), for authenticating members to each other
// without a crypto library dependency. Not for bulk hashing: it is a plain portable loop.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <string_view>

namespace qfs {

using Sha256Digest = std::array<uint8_t, 32>;

// Incremental SHA-256.
class Sha256 {
 public:
  Sha256();
  void Update(std::string_view data);
  // Pads and returns the digest; the object must not be used afterwards.
  Sha256Digest Finish();

  static Sha256Digest Hash(std::string_view data);

 private:
  void Block(const uint8_t* p);

  uint32_t h_[8];
  uint8_t buf_[64];
  size_t buf_len_ = 0;
  uint64_t total_bytes_ = 0;
};

Sha256Digest HmacSha256(std::string_view key, std::string_view message);

// Compares without an early exit, so the time taken does not reveal where a MAC differs.
bool ConstantTimeEqual(std::string_view a, std::string_view b);

}  // namespace qfs
