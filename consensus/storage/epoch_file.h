// ZAB's persisted epochs: <dir>/acceptedEpoch and <dir>/currentEpoch, each a decimal number and a
// newline, replaced atomically (temp, fsync, rename, fsync dir). A failed write is fatal.
#pragma once

#include <cstdint>
#include <string>

#include "consensus/util/result.h"

namespace qfs::storage {

inline constexpr const char* kAcceptedEpochFile = "acceptedEpoch";
inline constexpr const char* kCurrentEpochFile = "currentEpoch";

// Returns the stored value, `missing_value` if the file does not exist, kCorruption if malformed.
Result<uint64_t> ReadEpoch(const std::string& dir, const char* name, uint64_t missing_value = 0);
// Writes durably; QFS_FATAL on any I/O failure.
void WriteEpoch(const std::string& dir, const char* name, uint64_t value);

}  // namespace qfs::storage
