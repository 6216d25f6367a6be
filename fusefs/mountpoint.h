// The mount point before mounting: created if missing, a stale FUSE mount left by a crashed
// daemon (ENOTCONN) is detached, and a live mount there is refused.
#pragma once

#include <string>

#include "consensus/util/result.h"

namespace qfs::fusefs {

// Returns the absolute path to mount on.
Result<std::string> PrepareMountpoint(const std::string& dir);

// The filesystem type mounted exactly at `abs_dir` per /proc/self/mountinfo ("" if none).
std::string MountedFsType(const std::string& abs_dir);

}  // namespace qfs::fusefs
