// `quorumfs log-dump` and `quorumfs snapshot-dump`: offline readers of a member's txn log and
// snapshot files, on the daemon's own storage readers (docs/tools.md).
#pragma once

#include <string>
#include <vector>

namespace qfs::cli {

// True for the commands RunDump handles.
bool IsDumpCommand(const std::string& name);
// Runs one of them with the arguments after its name; returns the exit status: 0 the files are
// valid (a torn log tail included), 1 corruption or an unreadable file, 2 bad usage.
int RunDump(const std::string& name, const std::vector<std::string>& args);

}  // namespace qfs::cli
