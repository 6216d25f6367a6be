// `quorumfs import-zookeeper`: turns an Apache ZooKeeper 3.8 data directory into a quorumfs
// one (docs/migration.md).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace qfs::zkimport {

// The command: parses `args` (what follows the command name), imports, prints a summary.
// Returns the exit status: 0 done, 1 refused or failed (the message names the file), 2 usage.
int RunImportZookeeper(const std::vector<std::string>& args);

}  // namespace qfs::zkimport
