// quorumfsd's configuration: a zoo.cfg-style file of `key=value` lines. Keys that mean the same as
// in ZooKeeper use ZooKeeper's names. Every key is documented in README.md.
#pragma once

#include <algorithm>
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "consensus/util/log.h"
#include "consensus/util/result.h"
#include "consensus/util/tls.h"

namespace qfs {

struct Config {
  std::string data_dir;                      // dataDir: snapshots and epoch files
  std::string data_log_dir;                  // dataLogDir: txn log segments (default: dataDir)
  int tick_time_ms = 2000;                   // tickTime
  int init_limit = 10;                       // initLimit (ticks), used by the ensemble
  int sync_limit = 5;                        // syncLimit (ticks), used by the ensemble
  int client_port = 2181;                    // clientPort
  std::string client_address = "127.0.0.1";  // clientPortAddress
  int max_client_cnxns = 60;                 // maxClientCnxns (per client IP)
  int min_session_timeout_ms = 0;            // minSessionTimeout (0: 2 x tickTime)
  int max_session_timeout_ms = 0;            // maxSessionTimeout (0: 20 x tickTime)
  uint64_t snap_count = 100000;              // snapCount: txns between snapshots
  int snap_retain_count = 3;  // autopurge.snapRetainCount: snapshots kept (and the log they need)
  uint64_t log_segment_bytes = 64ull << 20;  // preAllocSize (in KiB in the file): segment size
  size_t max_data_bytes = 1 << 20;           // jute.maxbuffer: largest znode data / packet
  int global_outstanding_limit = 1000;       // globalOutstandingLimit: writes in flight
  LogLevel log_level = LogLevel::kInfo;      // logLevel: debug, info, warn, error
  // DigestAuthenticationProvider.superDigest (alias superDigest): "super:<base64 sha1>"; a
  // session authenticated with the matching digest passes every ACL check. Empty: none.
  std::string super_digest;
  bool enforce_quota = false;  // enforceQuota: refuse writes over a hard quota (docs/quotas.md)
  int container_check_interval_ms = 60000;  // znode.container.checkIntervalMs
  int metrics_port = 0;                     // metricsProvider.httpPort: Prometheus metrics (0: off)
  std::string metrics_address;              // metricsProvider.httpHost (default: clientPortAddress)

  // --- TLS (docs/tls.md) ---
  // secureClientPort: the ZooKeeper protocol inside TLS (0: none). With it, a clientPort that is
  // absent or 0 means no plain port.
  int secure_client_port = 0;
  bool client_port_given = false;     // clientPort appeared in the file (or --client-port)
  std::string secure_client_address;  // secureClientPortAddress (default: clientPortAddress)
  tls::Options client_tls;            // ssl.keyStore.*, ssl.trustStore.*, ssl.clientAuth, ...
  // X509AuthenticationProvider.superUser: the x509 id (a subject DN) that passes every ACL.
  std::string x509_super_user;
  // SASL (docs/sasl.md): jaasLoginConfig (alias java.security.auth.login.config), a JAAS file
  // whose "Server" section lists DigestLoginModule users; main loads them into sasl_users.
  // superUser (alias zookeeper.superUser): the SASL user that passes every ACL.
  std::string jaas_path;
  std::map<std::string, std::string> sasl_users;
  std::string sasl_super_user;
  bool ssl_quorum = false;                   // sslQuorum: peer links inside TLS
  tls::Options quorum_tls;                   // ssl.quorum.*
  bool quorum_hostname_verification = true;  // ssl.quorum.hostnameVerification
  bool plain_client_port() const {
    return secure_client_port == 0 || (client_port_given && client_port != 0);
  }
  // --- end TLS ---

  // --- the ensemble ---
  struct Server {  // server.N=host:peerPort[:electionPort][:participant|observer][;[host:]port]
    uint64_t id = 0;
    std::string host;
    int peer_port = 0;
    int election_port = 0;  // accepted for ZooKeeper configs; quorumfs uses peer_port only
    bool observer = false;
    std::string client_host;  // from ";[host:]port", informational
    int client_port = 0;
  };
  std::vector<Server> servers;      // empty: a single member (standalone)
  uint64_t myid = 0;                // myid key, else the dataDir/myid file
  bool observer = false;            // peerType=observer
  std::string quorum_secret;        // quorum.secret or the contents of quorum.secretFile
  bool linearizable_reads = false;  // linearizableReads: a quorum round before each read batch
  int write_wait_ms = 0;  // writeWaitMs: how long a write waits for a leader (0: syncLimit ticks)
  // readonlymode.enabled: a member without a leader for read_only_grace() serves read-only
  // sessions from its local tree (docs/read-only.md).
  bool read_only_mode = false;
  // reconfigEnabled: the reconfig opcode changes the membership (docs/reconfig.md); off, it
  // answers ZRECONFIGDISABLED.
  bool reconfig_enabled = false;

  bool ensemble() const { return !servers.empty(); }
  const Server* self() const {
    for (const Server& s : servers)
      if (s.id == myid) return &s;
    return nullptr;
  }
  int write_wait() const { return write_wait_ms ? write_wait_ms : sync_limit * tick_time_ms; }
  // How long a member looks for a leader before it turns read-only (ZooKeeper's grace period).
  int read_only_grace_ms() const { return std::max(2000, tick_time_ms); }

  // --- FUSE mount (docs/fuse.md) ---
  std::string mount_dir;                 // mount: mount the tree here ("": no mount)
  int mount_write_timeout_ms = 10000;    // mount.writeTimeoutMs: bounded wait of a write
  int mount_session_timeout_ms = 10000;  // mount.sessionTimeoutMs: the mount's session
  std::string mount_auth;                // mount.auth: "digest:user:pw" for every local caller
  bool mount_root_is_super = false;      // mount.rootIsSuper: uid 0 passes every ACL check
  // --- end FUSE mount ---

  int min_session_timeout() const {
    return min_session_timeout_ms ? min_session_timeout_ms : 2 * tick_time_ms;
  }
  int max_session_timeout() const {
    return max_session_timeout_ms ? max_session_timeout_ms : 20 * tick_time_ms;
  }
};

// The embedded default: one member, data in DefaultDataDir().
Config DefaultConfig();
// /var/lib/quorumfs when running as root, else $HOME/.local/share/quorumfs.
std::string DefaultDataDir();

// Parses the text of a config file. Unknown keys and bad values are errors naming the line.
Result<Config> ParseConfig(const std::string& text);
Result<Config> LoadConfigFile(const std::string& path);
// With server.N lines: finds myid (the dataDir/myid file unless the myid key was given) and
// checks that this member is listed, that peerType agrees with its line and that a secret is set.
Status ResolveMembership(Config* c);
// The mount must not hide the member's own files: refuses a mount directory that is dataDir or
// dataLogDir or one of their parents (the daemon would write its log and epochs through its own
// mount, or into a directory the mount covers).
Status CheckMountDir(const Config& c);

}  // namespace qfs
