// ZooKeeper's four-letter words, answered on the client port: a connection whose first four
// bytes are one of these words gets a text answer and is closed. envi, srvr, stat, conf and mntr
// carry ZooKeeper 3.8's keys in its formats, so that its tools and clients read them
// (docs/four-letter-words.md); quorumfs' own keys come after ZooKeeper's.
#pragma once

#include <cstdint>
#include <string>

#include "daemon/config.h"
#include "daemon/replica/pipeline.h"

namespace qfs {

// The ZooKeeper release whose protocol and four-letter words quorumfs serves, and quorumfs' own.
inline constexpr const char* kZooKeeperCompatVersion = "3.8.0";
inline constexpr const char* kQuorumfsVersion = "0.1";
// "3.8.0-quorumfs-0.1, built on <date> UTC": ZooKeeper's shape, which clients parse
// (kazoo's server_version() reads the leading digits).
std::string ZooKeeperVersionString();

// What the client port counts, for srvr, stat and mntr.
struct PortStats {
  size_t connections = 0;  // open client connections, the asking one included
  size_t watches = 0;
  uint64_t packets_received = 0, packets_sent = 0;
  uint64_t latency_min_ms = 0, latency_max_ms = 0;
  double latency_avg_ms = 0;
  int64_t uptime_ms = 0;
  size_t read_only_sessions = 0;  // mntr's zk_local_sessions (docs/read-only.md)
  std::string clients;  // stat's lines, one per connection: " /ip:port[1](queued=..,...)\n"
};

// True if `word` is a four-letter word this server knows (whitelisted or not).
bool IsFourLetterWord(const std::string& word);
// The answer to `word` (ruok, srvr, stat, mntr, conf, envi, dirs, isro).
std::string AnswerFourLetterWord(const std::string& word, const Config& config, Pipeline& pipeline,
                                 const PortStats& port);

}  // namespace qfs
