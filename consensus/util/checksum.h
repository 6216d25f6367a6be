// CRC32C (Castagnoli) for record framing, and a fixed 64-bit hash for the tree digest.
// Both are stable across machines and builds: they are part of the on-disk and wire formats.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>

namespace qfs {

// Extends `crc` (0 to start) over `data`.
uint32_t Crc32c(uint32_t crc, const void* data, size_t n);
inline uint32_t Crc32c(std::string_view s) {
  return Crc32c(0, s.data(), s.size());
}

// 64-bit non-cryptographic hash with a seed. Deterministic everywhere (little-endian loads).
uint64_t Hash64(const void* data, size_t n, uint64_t seed = 0);
inline uint64_t Hash64(std::string_view s, uint64_t seed = 0) {
  return Hash64(s.data(), s.size(), seed);
}

// Mixes a 64-bit value into a hash state.
inline uint64_t HashMix(uint64_t h, uint64_t v) {
  h ^= v + 0x9e3779b97f4a7c15ULL + (h << 6) + (h >> 2);
  h ^= h >> 33;
  h *= 0xff51afd7ed558ccdULL;
  h ^= h >> 33;
  return h;
}

}  // namespace qfs
