#include "daemon/tree/digest.h"

#include "consensus/util/checksum.h"

namespace qfs::tree::internal {

uint64_t PathHash(std::string_view path) {
  return Hash64(path, 0x70617468ULL);
}

uint64_t DataPart(uint64_t path_hash, std::string_view data) {
  return Hash64(data, HashMix(path_hash, 0x64617461ULL));
}

uint64_t StatPart(uint64_t path_hash, const Stat& s, int32_t child_creates, uint8_t kind,
                  uint64_t acl_hash) {
  auto u32 = [](int32_t v) { return static_cast<uint64_t>(static_cast<uint32_t>(v)); };
  uint64_t h = HashMix(path_hash, 0x73746174ULL);
  h = HashMix(h, static_cast<uint64_t>(s.czxid));
  h = HashMix(h, static_cast<uint64_t>(s.mzxid));
  h = HashMix(h, static_cast<uint64_t>(s.ctime));
  h = HashMix(h, static_cast<uint64_t>(s.mtime));
  h = HashMix(h, u32(s.version) | (u32(s.cversion) << 32));
  h = HashMix(h, u32(s.aversion) | (uint64_t{kind} << 32));
  h = HashMix(h, static_cast<uint64_t>(s.ephemeral_owner));
  h = HashMix(h, u32(s.data_length) | (u32(s.num_children) << 32));
  h = HashMix(h, static_cast<uint64_t>(s.pzxid));
  // The counter enters as cversion minus it (the child deletes), and only when nonzero, so trees
  // without deletes keep the digests of snapshots written before the counter existed.
  const uint32_t deletes = static_cast<uint32_t>(s.cversion) - static_cast<uint32_t>(child_creates);
  if (deletes != 0) h = HashMix(h, deletes);
  return HashMix(h, acl_hash);
}

}  // namespace qfs::tree::internal
