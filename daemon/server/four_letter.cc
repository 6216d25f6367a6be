#include "daemon/server/four_letter.h"

#include <unistd.h>

#include <array>
#include <cmath>
#include <cstdio>
#include <map>
#include <set>
#include <sstream>

#include "consensus/storage/snapshot_file.h"
#include "daemon/server/process_info.h"
#include "daemon/tree/quota.h"

#ifndef QFS_BUILD_DATE
#define QFS_BUILD_DATE "unknown"
#endif

namespace qfs {
namespace {

std::string Hex(int64_t z) {
  char b[32];
  snprintf(b, sizeof b, "0x%llx", static_cast<unsigned long long>(z));
  return b;
}

// A mean as ZooKeeper prints it: rounded to 4 decimals, then Java's Double.toString ("6.0").
std::string JavaDouble(double v) {
  char b[64];
  snprintf(b, sizeof b, "%.4f", std::round(v * 1e4) / 1e4);
  std::string s = b;
  while (s.size() > 2 && s.back() == '0' && s[s.size() - 2] != '.') s.pop_back();
  return s;
}

// What the tree holds, read under one shared lock.
struct TreeFacts {
  size_t nodes = 0, data_bytes = 0, sessions = 0, ephemerals = 0;
  uint64_t digest = 0;
  int64_t zxid = 0;
  std::map<std::string, tree::NamespaceQuota> quota;  // docs/quotas.md
};

TreeFacts ReadTree(Pipeline& p, bool ephemerals) {
  return p.Read([&](const tree::DataTree& t) {
    TreeFacts f;
    // ZooKeeper's count holds its root twice (as "" and "/"): the same tree, the same number.
    f.nodes = t.node_count() + 1;
    f.digest = t.digest();
    f.zxid = t.last_zxid();
    f.sessions = t.sessions().size();
    if (ephemerals) {  // mntr only: these walk the tree
      f.data_bytes = t.ApproxDataBytes();
      for (auto& [sid, to] : t.sessions()) f.ephemerals += t.GetEphemerals(sid, "/").size();
      f.quota = tree::QuotaByNamespace(t);
    }
    return f;
  });
}

// srvr, and stat's lines after its client list (ZooKeeper's ServerStats order).
void ServerStats(std::ostream& o, const PortStats& port, const Pipeline::Stats& st,
                 const TreeFacts& tf, const char* mode) {
  o << "Latency min/avg/max: " << port.latency_min_ms << "/" << JavaDouble(port.latency_avg_ms)
    << "/" << port.latency_max_ms << "\n"
    << "Received: " << port.packets_received << "\n"
    << "Sent: " << port.packets_sent << "\n"
    << "Connections: " << port.connections << "\n"
    << "Outstanding: " << st.outstanding << "\n"
    << "Zxid: " << Hex(tf.zxid) << "\n"
    << "Mode: " << mode << "\n"
    << "Node count: " << tf.nodes << "\n"
    << "Digest: " << std::hex << tf.digest << std::dec << "\n";  // quorumfs' own
}

void Mntr(std::ostream& o, const Pipeline& p, const PortStats& port, const Pipeline::Stats& st,
          const TreeFacts& tf, const MemberStatus& ms, const char* mode) {
  o << "zk_version\t" << ZooKeeperVersionString() << "\n"
    << "zk_server_state\t" << mode << "\n";
  if (!ms.standalone && !ms.read_only) {  // ZooKeeper prints no peer state when read-only
    const char* peer = ms.role == zab::Role::kLeading     ? "leading"
                       : ms.role == zab::Role::kFollowing ? "following"
                                                          : "observing";
    o << "zk_peer_state\t" << peer << " - broadcast\n";  // only asked while serving
  }
  o << "zk_ephemerals_count\t" << tf.ephemerals << "\n"
    << "zk_num_alive_connections\t" << port.connections << "\n"
    << "zk_avg_latency\t" << JavaDouble(port.latency_avg_ms) << "\n"
    << "zk_min_latency\t" << port.latency_min_ms << "\n"
    << "zk_max_latency\t" << port.latency_max_ms << "\n"
    << "zk_outstanding_requests\t" << st.outstanding << "\n"
    << "zk_znode_count\t" << tf.nodes << "\n"
    << "zk_global_sessions\t" << tf.sessions << "\n"
    << "zk_local_sessions\t" << port.read_only_sessions << "\n"
    << "zk_packets_sent\t" << port.packets_sent << "\n"
    << "zk_packets_received\t" << port.packets_received << "\n"
    << "zk_watch_count\t" << port.watches << "\n"
    << "zk_approximate_data_size\t" << tf.data_bytes << "\n"
    << "zk_open_file_descriptor_count\t" << server::OpenFileDescriptors() << "\n"
    << "zk_max_file_descriptor_count\t" << server::MaxFileDescriptors() << "\n"
    << "zk_uptime\t" << port.uptime_ms << "\n";
  if (!ms.standalone) o << "zk_quorum_size\t" << ms.voters << "\n";
  // ZooKeeper's quota metrics, one line per namespace (docs/quotas.md).
  for (const auto& [ns, q] : tf.quota) {
    for (const auto& [name, value] : q.Gauges())
      o << "zk_" << ns << "_" << name << "\t" << value << "\n";
  }
  for (const auto& [ns, n] : st.quota_exceeded) {
    o << "zk_" << ns << "_quota_exceeded_error_per_namespace\t" << n << "\n";
  }
  if (ms.role == zab::Role::kLeading && !ms.standalone) {
    const zab::LearnerCounts& l = st.learners;
    o << "zk_learners\t" << l.learners << "\n"
      << "zk_followers\t" << l.learners << "\n"  // ZooKeeper 3.4's name, which older tools read
      << "zk_synced_followers\t" << l.synced_followers << "\n"
      << "zk_synced_non_voting_followers\t0\n"
      << "zk_synced_observers\t" << l.synced_observers << "\n"
      << "zk_pending_syncs\t" << l.pending_syncs << "\n";
  }
  const auto log = p.log_stats();
  const auto sn = p.snapshot_stats();
  o << "qfs_member_id\t" << ms.self << "\n"
    << "qfs_leader_id\t" << ms.leader << "\n"
    << "qfs_epoch\t" << ms.epoch << "\n"
    << "qfs_elections\t" << st.elections << "\n"
    << "qfs_txns_applied\t" << st.txns_applied << "\n"
    << "qfs_writes_forwarded\t" << st.forwarded << "\n"
    << "qfs_snapshots_sent\t" << st.snapshots_sent << "\n"
    << "qfs_snapshots_received\t" << st.snapshots_received << "\n"
    << "qfs_last_zxid\t" << tf.zxid << "\n"
    << "qfs_digest\t" << tf.digest << "\n"
    << "qfs_writes_applied\t" << st.applied << "\n"
    << "qfs_writes_failed\t" << st.failed << "\n"
    << "qfs_fsyncs\t" << log.fsyncs << "\n"
    << "qfs_last_fsync_us\t" << log.last_fsync_us << "\n"
    << "qfs_max_fsync_us\t" << log.max_fsync_us << "\n"
    << "qfs_log_segments\t" << log.segments << "\n"
    << "qfs_log_bytes\t" << log.disk_bytes << "\n"
    << "qfs_snapshots_taken\t" << sn.taken << "\n"
    << "qfs_snapshot_last_bytes\t" << sn.last_bytes << "\n"
    << "qfs_snapshot_max_pause_ms\t" << sn.max_fork_ms << "\n"
    << "qfs_quota_soft_crossings\t" << st.quota_soft_crossings << "\n"
    << "qfs_allocations\t" << server::Allocations() << "\n";
}

uint64_t SnapshotBytes(const Config& c) {
  uint64_t n = 0;
  auto snaps = storage::ListSnapshots(c.data_dir);
  if (snaps.ok())
    for (auto& s : *snaps) n += s.size;
  return n;
}

// ZooKeeper's order: the server's keys, the quorum peer's, then the membership (QuorumVerifier).
void Conf(std::ostream& o, const Config& c, const Pipeline& p, const MemberStatus& ms) {
  // ZooKeeper prints -1 for a port it does not serve.
  o << "clientPort=" << (c.plain_client_port() ? c.client_port : -1) << "\n"
    << "secureClientPort=" << (c.secure_client_port != 0 ? c.secure_client_port : -1) << "\n"
    << "dataDir=" << c.data_dir << "\n"
    << "dataDirSize=" << SnapshotBytes(c) << "\n"
    << "dataLogDir=" << c.data_log_dir << "\n"
    << "dataLogSize=" << p.log_stats().disk_bytes << "\n"
    << "tickTime=" << c.tick_time_ms << "\n"
    << "maxClientCnxns=" << c.max_client_cnxns << "\n"
    << "minSessionTimeout=" << c.min_session_timeout() << "\n"
    << "maxSessionTimeout=" << c.max_session_timeout() << "\n"
    << "clientPortListenBacklog=-1\n"
    << "serverId=" << (ms.standalone ? 0 : ms.self) << "\n";  // standalone ZooKeeper says 0
  const Config::Server* self = c.self();
  if (self) {
    o << "initLimit=" << c.init_limit << "\n"
      << "syncLimit=" << c.sync_limit << "\n"
      << "electionAlg=3\n"
      << "electionPort=" << self->election_port << "\n"
      << "quorumPort=" << self->peer_port << "\n"
      << "peerType=" << (c.observer ? 1 : 0) << "\n";
  }
  // quorumfs' own keys, before the membership block (which a reader takes to the end).
  o << "clientPortAddress=" << c.client_address << "\n"
    << "snapCount=" << c.snap_count << "\n"
    << "autopurge.snapRetainCount=" << c.snap_retain_count << "\n"
    << "preAllocSize=" << c.log_segment_bytes / 1024 << "\n"
    << "jute.maxbuffer=" << c.max_data_bytes << "\n"
    << "globalOutstandingLimit=" << c.global_outstanding_limit << "\n";
  if (!self) return;
  o << "membership: \n";
  for (const Config::Server& s : c.servers) {
    o << "server." << s.id << "=" << s.host << ":" << s.peer_port << ":" << s.election_port << ":"
      << (s.observer ? "observer" : "participant");
    if (s.client_port) {
      // ZooKeeper shows a line's client address as 0.0.0.0 when it names only a port.
      const std::string& host = s.id == c.myid          ? c.client_address
                                : s.client_host.empty() ? std::string("0.0.0.0")
                                                        : s.client_host;
      o << ";" << host << ":" << s.client_port;
    }
    o << "\n";
  }
  o << "version=0";  // no dynamic reconfiguration: the static config's version; no newline
}

void Envi(std::ostream& o) {
  const server::ProcessInfo pi = server::GetProcessInfo();
  o << "Environment:\n"
    << "zookeeper.version=" << ZooKeeperVersionString() << "\n"
    << "host.name=" << pi.host_name << "\n"
    << "os.name=" << pi.os_name << "\n"
    << "os.arch=" << pi.os_arch << "\n"
    << "os.version=" << pi.os_version << "\n"
    << "user.name=" << pi.user_name << "\n"
    << "user.home=" << pi.user_home << "\n"
    << "user.dir=" << pi.user_dir << "\n"
    << "os.memory.free=" << pi.mem_free_mb << "MB\n"
    << "os.memory.max=" << pi.mem_max_mb << "MB\n"
    << "os.memory.total=" << pi.mem_total_mb << "MB\n"
    << "quorumfs.version=" << kQuorumfsVersion << "\n"
    << "process.id=" << getpid() << "\n";
}

}  // namespace

std::string ZooKeeperVersionString() {
  return std::string(kZooKeeperCompatVersion) + "-quorumfs-" + kQuorumfsVersion +
         ", built on " QFS_BUILD_DATE;
}

bool IsFourLetterWord(const std::string& w) {
  static const std::set<std::string> words = {"ruok", "srvr", "stat", "mntr",
                                              "conf", "envi", "dirs", "isro"};
  return words.count(w) > 0;
}

std::string AnswerFourLetterWord(const std::string& w, const Config& c, Pipeline& p,
                                 const PortStats& port) {
  std::ostringstream o;
  MemberStatus ms = p.member();
  const char* mode = ms.read_only ? "read-only" : ms.standalone ? "standalone" : RoleLabel(ms.role);
  if (w == "ruok") return "imok";
  // ZooKeeper's isro: "null" while no server runs (no leader, not read-only).
  if (w == "isro") return ms.read_only ? "ro" : ms.serving ? "rw" : "null";
  if (!ms.serving && !ms.read_only && (w == "srvr" || w == "stat" || w == "mntr"))
    return "This ZooKeeper instance is not currently serving requests\n";
  if (w == "srvr" || w == "stat") {
    const TreeFacts tf = ReadTree(p, false);
    o << "Zookeeper version: " << ZooKeeperVersionString() << "\n";
    if (ms.read_only) o << "READ-ONLY mode; serving only read-only clients\n";
    if (w == "stat") o << "Clients:\n" << port.clients << "\n";
    ServerStats(o, port, p.stats(), tf, mode);
    return o.str();
  }
  if (w == "mntr") {
    Mntr(o, p, port, p.stats(), ReadTree(p, true), ms, mode);
    return o.str();
  }
  if (w == "conf") {
    Conf(o, c, p, ms);
    return o.str();
  }
  if (w == "envi") {
    Envi(o);
    return o.str();
  }
  if (w == "dirs") {
    o << "datadir_size: " << SnapshotBytes(c) << "\nlogdir_size: " << p.log_stats().disk_bytes
      << "\n";
    return o.str();
  }
  return "";
}

}  // namespace qfs
