// Per-node digest contributions. The tree digest is the wrapping sum of every node's
// DataPart + StatPart, so an apply adds and subtracts the parts of the nodes it changes.
// Splitting data from stat keeps a parent's stat change (a child created) from rehashing its data.
// Only fixed hashes of content are used: no pointers, no iteration order, no std::hash.
#pragma once

#include <cstdint>
#include <string_view>

#include "daemon/tree/types.h"

namespace qfs::tree::internal {

uint64_t PathHash(std::string_view path);
uint64_t DataPart(uint64_t path_hash, std::string_view data);
// Covers every Stat field (data_length and num_children included), the child create counter,
// the ACL content and the kind.
uint64_t StatPart(uint64_t path_hash, const Stat& s, int32_t child_creates, uint8_t kind,
                  uint64_t acl_hash);

}  // namespace qfs::tree::internal
