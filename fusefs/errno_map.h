// ZooKeeper error codes as errno values on the mount. The table is documented in docs/fuse.md;
// the principle: ENOENT only when the node does not exist, a distinct errno for "could not ask".
#pragma once

#include "daemon/tree/types.h"

namespace qfs::fusefs {

// The errno of a failed conditional commit: another client changed the node since open().
inline constexpr int kConflictErrno = 116;  // ESTALE
// The errno of a write that got no answer (no quorum) within mount.writeTimeoutMs.
inline constexpr int kNoQuorumErrno = 110;  // ETIMEDOUT

// Positive errno for a tree error (0 for kOk).
int ErrnoOf(tree::Err e);

}  // namespace qfs::fusefs
