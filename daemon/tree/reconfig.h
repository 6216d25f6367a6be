// Dynamic configurations as text, in ZooKeeper's format (docs/reconfig.md): the server lines
// `server.N=host:peerPort:electionPort[:participant|observer][;[clientHost:]clientPort]` that
// reconfig requests carry and /zookeeper/config shows (followed by `version=<hex>`), and the
// changes a reconfig request makes to a configuration.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "consensus/util/result.h"
#include "daemon/proto/txn.pb.h"

namespace qfs::tree {

using ServerList = std::vector<txn::ServerSpec>;  // sorted by id, ids unique

// One server: `key` is "server.N", `value` "host:peer:election[:role][;[host:]port]". A client
// address given as a port alone gets host 0.0.0.0, as ZooKeeper's.
Result<txn::ServerSpec> ParseServer(std::string_view key, std::string_view value);
// Server lines separated by newlines or commas ("server.N=..."); `version=` lines and blank
// lines are skipped. Ids must be unique.
Result<ServerList> ParseServers(std::string_view text);

// ZooKeeper's QuorumServer.toString: "host:peer:election:role[;clientHost:clientPort]".
std::string ServerText(const txn::ServerSpec& s);
// ZooKeeper's QuorumMaj.toString: "server.N=...\n" for each, then "version=<hex>" (no newline).
std::string ConfigText(const ServerList& servers, uint64_t version);

// The incremental form: removes the `leaving` ids ("N,M"), then adds or replaces the `joining`
// servers (comma-separated server lines, each with a client address, as ZooKeeper requires).
Result<ServerList> ApplyIncremental(const ServerList& current, const std::string* joining,
                                    const std::string* leaving);

size_t VoterCount(const ServerList& servers);

}  // namespace qfs::tree
