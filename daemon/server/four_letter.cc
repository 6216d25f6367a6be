#include "daemon/server/four_letter.h"

#include <unistd.h>

#include <cstdio>
#include <set>
#include <sstream>

#include "consensus/storage/snapshot_file.h"

namespace qfs {
namespace {

std::string Hex(int64_t z) {
  char b[32];
  snprintf(b, sizeof b, "0x%llx", static_cast<unsigned long long>(z));
  return b;
}

}  // namespace

bool IsFourLetterWord(const std::string& w) {
  static const std::set<std::string> words = {"ruok", "srvr", "stat", "mntr",
                                              "conf", "envi", "dirs", "isro"};
  return words.count(w) > 0;
}

std::string AnswerFourLetterWord(const std::string& w, const Config& c, Pipeline& p) {
  std::ostringstream o;
  auto st = p.stats();
  size_t nodes = 0, mem = 0;
  uint64_t digest = 0;
  int64_t zxid = 0;
  size_t sessions = 0;
  p.Read([&](const tree::DataTree& t) {
    nodes = t.node_count();
    mem = t.ApproxMemoryBytes();
    digest = t.digest();
    zxid = t.last_zxid();
    sessions = t.sessions().size();
    return 0;
  });
  auto log = p.log_stats();
  MemberStatus ms = p.member();
  const char* mode = ms.standalone ? "standalone" : RoleLabel(ms.role);
  if (w == "ruok") return "imok";
  if (!ms.serving && (w == "srvr" || w == "stat" || w == "mntr"))
    return "This ZooKeeper instance is not currently serving requests\n";
  if (w == "isro") return "rw";
  if (w == "srvr" || w == "stat") {
    o << "quorumfs version: 0.1\n"
      << "Outstanding: " << st.outstanding << "\n"
      << "Zxid: " << Hex(zxid) << "\n"
      << "Mode: " << mode << "\n"
      << "Node count: " << nodes << "\n"
      << "Digest: " << std::hex << digest << std::dec << "\n";
    return o.str();
  }
  if (w == "mntr") {
    const auto sn = p.snapshot_stats();
    o << "zk_version\tquorumfs-0.1\n"
      << "zk_server_state\t" << mode << "\n"
      << "qfs_member_id\t" << ms.self << "\n"
      << "qfs_leader_id\t" << ms.leader << "\n"
      << "qfs_epoch\t" << ms.epoch << "\n"
      << "qfs_elections\t" << st.elections << "\n"
      << "qfs_txns_applied\t" << st.txns_applied << "\n"
      << "qfs_writes_forwarded\t" << st.forwarded << "\n"
      << "qfs_snapshots_sent\t" << st.snapshots_sent << "\n"
      << "qfs_snapshots_received\t" << st.snapshots_received << "\n"
      << "zk_znode_count\t" << nodes << "\n"
      << "zk_approximate_data_size\t" << mem << "\n"
      << "zk_outstanding_requests\t" << st.outstanding << "\n"
      << "zk_global_sessions\t" << sessions << "\n"
      << "qfs_last_zxid\t" << zxid << "\n"
      << "qfs_digest\t" << digest << "\n"
      << "qfs_writes_applied\t" << st.applied << "\n"
      << "qfs_writes_failed\t" << st.failed << "\n"
      << "qfs_fsyncs\t" << log.fsyncs << "\n"
      << "qfs_last_fsync_us\t" << log.last_fsync_us << "\n"
      << "qfs_max_fsync_us\t" << log.max_fsync_us << "\n"
      << "qfs_log_segments\t" << log.segments << "\n"
      << "qfs_log_bytes\t" << log.disk_bytes << "\n"
      << "qfs_snapshots_taken\t" << sn.taken << "\n"
      << "qfs_snapshot_last_bytes\t" << sn.last_bytes << "\n"
      << "qfs_snapshot_max_pause_ms\t" << sn.max_fork_ms << "\n";
    return o.str();
  }
  if (w == "conf") {
    o << "clientPort=" << c.client_port << "\n"
      << "clientPortAddress=" << c.client_address << "\n"
      << "dataDir=" << c.data_dir << "\n"
      << "dataLogDir=" << c.data_log_dir << "\n"
      << "tickTime=" << c.tick_time_ms << "\n"
      << "maxClientCnxns=" << c.max_client_cnxns << "\n"
      << "minSessionTimeout=" << c.min_session_timeout() << "\n"
      << "maxSessionTimeout=" << c.max_session_timeout() << "\n"
      << "snapCount=" << c.snap_count << "\n"
      << "autopurge.snapRetainCount=" << c.snap_retain_count << "\n"
      << "preAllocSize=" << c.log_segment_bytes / 1024 << "\n"
      << "jute.maxbuffer=" << c.max_data_bytes << "\n"
      << "globalOutstandingLimit=" << c.global_outstanding_limit << "\n";
    return o.str();
  }
  if (w == "envi") {
    char host[256] = "";
    gethostname(host, sizeof host - 1);
    o << "Environment:\nhost.name=" << host << "\nquorumfs.version=0.1\n"
      << "process.id=" << getpid() << "\n";
    return o.str();
  }
  if (w == "dirs") {
    uint64_t snap = 0;
    auto snaps = storage::ListSnapshots(c.data_dir);
    if (snaps.ok())
      for (auto& s : *snaps) snap += s.size;
    o << "datadir_size: " << snap << "\nlogdir_size: " << log.disk_bytes << "\n";
    return o.str();
  }
  return "";
}

}  // namespace qfs
