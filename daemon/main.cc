// quorumfsd: one member of a quorumfs ensemble.
#include <malloc.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstddef>
#include <cstdio>
#include <cstring>
#include <string>

#include "consensus/storage/file_util.h"
#include "consensus/util/log.h"
#include "daemon/config.h"
#include "daemon/replica/pipeline.h"
#include "daemon/server/auth.h"
#include "daemon/server/client_port.h"
#include "daemon/server/sasl.h"
#include "daemon/service/reaper.h"
#include "daemon/service/sessions.h"
#include "fusefs/guard.h"
#include "fusefs/mount.h"

namespace {

const char* kUsage =
    "usage: quorumfsd [CONFIG_FILE] [--data-dir DIR] [--client-port PORT] [--log-level LEVEL]\n"
    "                 [--mount DIR]\n"
    "\n"
    "One member of a quorumfs ensemble: a ZooKeeper-protocol server (stock ZooKeeper clients\n"
    "work against it) that replicates its znode tree with ZAB and can mount it with FUSE.\n"
    "\n"
    "  CONFIG_FILE         a zoo.cfg-style file of key=value lines with ZooKeeper's key\n"
    "                      names (dataDir, dataLogDir, clientPort, server.N, snapCount, mount,\n"
    "                      ...; README.md lists every key). Without it, runs as a single\n"
    "                      member with the embedded defaults: data in /var/lib/quorumfs (root)\n"
    "                      or ~/.local/share/quorumfs, client port 2181 on 127.0.0.1.\n"
    "  --data-dir DIR      dataDir and dataLogDir both, overriding the file\n"
    "  --client-port PORT  clientPort, overriding the file\n"
    "  --log-level LEVEL   debug, info, warn or error (logLevel; default info)\n"
    "  --mount DIR         mount the tree at DIR with FUSE (mount; default: no mount)\n"
    "  -h, --help          this help\n"
    "\n"
    "Logs to stderr; a single member logs 'serving on HOST:PORT' once it takes writes.\n"
    "Under systemd (Type=notify) it reports READY=1 once its client port (and mount) serve.\n"
    "Stops cleanly on SIGTERM or SIGINT.\n"
    "Exit status: 0 stopped cleanly, 1 cannot start (the log says why: a corrupt log, a data\n"
    "directory locked by another process, a port in use), 2 bad command line or\n"
    "configuration, 70 a fatal storage error while running.\n"
    "Offline inspection of its files: 'quorumfs log-dump' and 'quorumfs snapshot-dump'.\n";

int Usage(int code) {
  fputs(kUsage, code == 0 ? stdout : stderr);
  return code;
}

// Snapshots fork the process; fork copies page tables, so its pause grows with the heap in 4 KiB
// pages (about 12 ms for a million znodes). Asking glibc's malloc for transparent huge pages
// shrinks the page tables 512-fold (the pause drops below 1 ms). Tunables are read at process
// start, so set the tunable and exec ourselves once. QUORUMFS_SMALL_PAGES=1 opts out.
void UseHugePagesForTheHeap(char** argv) {
  const char* t = getenv("GLIBC_TUNABLES");
  if (getenv("QUORUMFS_SMALL_PAGES") || (t && strstr(t, "glibc.malloc.hugetlb"))) return;
  std::string v = "glibc.malloc.hugetlb=1";
  if (t && *t) v = std::string(t) + ":" + v;
  setenv("GLIBC_TUNABLES", v.c_str(), 1);
  execv("/proc/self/exe", argv);  // on failure, carry on with small pages
}

// One malloc arena for every thread. The daemon's threads hand objects to each other (a message
// built by the transport thread is freed by the state-machine thread, a reply the other way), so
// with glibc's default of an arena per thread each arena keeps freed memory the others cannot
// reuse, in huge pages too (above): a 3-member ensemble holding a million znodes used 25% more
// memory that way. The threads that allocate are few, so the shared arena's lock costs nothing
// measurable (bench: creates 16x32 on 3 members, within the run-to-run noise). MALLOC_ARENA_MAX
// or glibc.malloc.arena_max in GLIBC_TUNABLES still decide, if set.
void UseOneMallocArena() {
  const char* t = getenv("GLIBC_TUNABLES");
  if (getenv("MALLOC_ARENA_MAX") || (t && strstr(t, "glibc.malloc.arena_max"))) return;
  mallopt(M_ARENA_MAX, 1);
}

// systemd's readiness protocol (Type=notify): one datagram with `state` to $NOTIFY_SOCKET, a
// path or an abstract name ('@'). Without the variable, nothing.
void NotifySystemd(const char* state) {
  const char* path = getenv("NOTIFY_SOCKET");
  if (!path || (path[0] != '/' && path[0] != '@')) return;
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  const size_t len = strlen(path);
  if (len >= sizeof addr.sun_path) return;
  memcpy(addr.sun_path, path, len);
  if (path[0] == '@') addr.sun_path[0] = '\0';
  int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return;
  if (sendto(fd, state, strlen(state), MSG_NOSIGNAL, reinterpret_cast<sockaddr*>(&addr),
             static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + len)) < 0) {
    QLOG_WARN("cannot notify systemd at %s: %s", path, strerror(errno));
  }
  close(fd);
}

}  // namespace

int main(int argc, char** argv) {
  using namespace qfs;
  // The FUSE mount's guard process (fusefs/guard.h), started by the mount with this binary.
  if (argc > 1 && strcmp(argv[1], "--mount-guard") == 0) return fusefs::RunMountGuard(argc, argv);
  UseHugePagesForTheHeap(argv);
  UseOneMallocArena();
  std::string config_path, data_dir, log_level, mount_dir;
  int client_port = -1;
  for (int i = 1; i < argc; i++) {
    std::string a = argv[i];
    auto value = [&](const char* flag) -> const char* {
      if (i + 1 >= argc) {
        fprintf(stderr, "quorumfsd: %s needs a value\n", flag);
        exit(Usage(2));
      }
      return argv[++i];
    };
    if (a == "-h" || a == "--help") return Usage(0);
    if (a == "--data-dir") {
      data_dir = value("--data-dir");
    } else if (a == "--client-port") {
      client_port = atoi(value("--client-port"));
    } else if (a == "--mount") {
      mount_dir = value("--mount");
    } else if (a == "--log-level") {
      log_level = value("--log-level");
    } else if (!a.empty() && a[0] != '-' && config_path.empty()) {
      config_path = a;
    } else {
      fprintf(stderr, "quorumfsd: unknown argument '%s'\n", a.c_str());
      return Usage(2);
    }
  }

  Config config = DefaultConfig();
  if (!config_path.empty()) {
    auto c = LoadConfigFile(config_path);
    if (!c.ok()) {
      fprintf(stderr, "quorumfsd: %s\n", c.status().message().c_str());
      return 2;
    }
    config = *c;
  }
  if (!data_dir.empty()) config.data_dir = config.data_log_dir = data_dir;
  if (client_port >= 0) {
    config.client_port = client_port;
    config.client_port_given = true;
  }
  if (!mount_dir.empty()) config.mount_dir = mount_dir;
  if (!log_level.empty() && !ParseLogLevel(log_level.c_str(), &config.log_level)) {
    fprintf(stderr, "quorumfsd: unknown log level '%s'\n", log_level.c_str());
    return 2;
  }
  SetLogLevel(config.log_level);
  if (Status m = ResolveMembership(&config); !m.ok()) {
    fprintf(stderr, "quorumfsd: %s\n", m.message().c_str());
    return 2;
  }
  if (Status m = CheckMountDir(config); !m.ok()) {
    fprintf(stderr, "quorumfsd: %s\n", m.message().c_str());
    return 2;
  }
  if (!config.jaas_path.empty()) {  // SASL users (docs/sasl.md)
    auto text = storage::ReadFile(config.jaas_path);
    auto users =
        text.ok() ? server::ParseJaasUsers(*text) : Result<server::SaslUsers>(text.status());
    if (!users.ok()) {
      fprintf(stderr, "quorumfsd: jaasLoginConfig %s: %s\n", config.jaas_path.c_str(),
              users.status().message().c_str());
      return 2;
    }
    config.sasl_users = std::move(*users);
  }

  // Signals are taken by sigwait in this thread only.
  sigset_t sigs;
  sigemptyset(&sigs);
  sigaddset(&sigs, SIGTERM);
  sigaddset(&sigs, SIGINT);
  pthread_sigmask(SIG_BLOCK, &sigs, nullptr);
  signal(SIGPIPE, SIG_IGN);

  QLOG_INFO("quorumfsd starting: %s, dataDir=%s dataLogDir=%s",
            config_path.empty() ? "embedded default config" : config_path.c_str(),
            config.data_dir.c_str(), config.data_log_dir.c_str());
  StoreOptions so;
  so.data_dir = config.data_dir;
  so.log_dir = config.data_log_dir;
  so.segment_bytes = config.log_segment_bytes;
  so.max_data_bytes = config.max_data_bytes;
  so.enforce_quota = config.enforce_quota;
  so.snap_retain_count = config.snap_retain_count;
  Pipeline::Options po;
  po.max_outstanding = static_cast<size_t>(config.global_outstanding_limit);
  po.snap_count = config.snap_count;
  po.config = config;
  Status st;
  auto pipeline = Pipeline::Start(so, po, &st);
  if (!pipeline) {
    QLOG_ERROR("cannot start: %s", st.ToString().c_str());
    return 1;
  }
  // The session service first: both front ends (the client port, the mount) take theirs from it.
  service::Sessions sessions(config, pipeline.get());
  ClientPort port(config, pipeline.get(), &sessions);
  if (Status ss = sessions.Start(); !ss.ok()) {
    QLOG_ERROR("cannot start: %s", ss.ToString().c_str());
    return 1;
  }
  service::Reaper reaper(config, pipeline.get());  // containers and TTL nodes
  reaper.Start();
  auto bound = port.Start();
  if (!bound.ok()) {
    QLOG_ERROR("cannot start: %s", bound.status().ToString().c_str());
    reaper.Stop();
    sessions.Stop();
    pipeline->Stop();  // answers the service's txns in flight while it still exists
    return 1;
  }
  if (config.ensemble()) {
    QLOG_INFO("client port %s:%d: clients are served while this member follows a leader",
              config.client_address.c_str(), *bound);
  } else {
    // A member of one elects itself within a few ticks; say so once it can take writes.
    for (int i = 0; i < 500 && !pipeline->member().serving; i++) usleep(10000);
    QLOG_INFO("serving on %s:%d", config.client_address.c_str(), *bound);
  }

  // --- FUSE mount (docs/fuse.md) ---
  std::unique_ptr<fusefs::Mount> mount;
  if (!config.mount_dir.empty()) {
    fusefs::MountOptions mo;
    mo.dir = config.mount_dir;
    mo.write_timeout_ms = config.mount_write_timeout_ms;
    mo.session_timeout_ms = config.mount_session_timeout_ms;
    mo.max_data_bytes = config.max_data_bytes;
    mo.root_is_super = config.mount_root_is_super;
    if (!config.mount_auth.empty()) {
      // As a client's addauth: the digest id, and super if it is superDigest's.
      std::string scheme = config.mount_auth.substr(0, config.mount_auth.find(':'));
      std::string cred = config.mount_auth.substr(scheme.size() + 1);
      if (server::Authenticate(scheme, cred, "127.0.0.1", config.super_digest, &mo.extra_ids) !=
          tree::Err::kOk) {
        QLOG_ERROR("cannot start: mount.auth: unknown scheme '%s'", scheme.c_str());
        return 1;
      }
    }
    mo.sessions = &sessions;
    auto m = fusefs::Mount::Start(std::move(mo), pipeline.get());
    if (!m.ok()) {
      QLOG_ERROR("cannot start: %s", m.status().ToString().c_str());
      port.Stop();
      reaper.Stop();
      sessions.Stop();
      pipeline->Stop();
      return 1;
    }
    mount = std::move(*m);
  }
  // --- end FUSE mount ---
  NotifySystemd("READY=1");  // the client port (and the mount, if any) serve

  int sig = 0;
  sigwait(&sigs, &sig);
  QLOG_INFO("received %s: shutting down", strsignal(sig));
  NotifySystemd("STOPPING=1");
  if (mount) mount->Stop();  // FUSE mount: unmount, then close its session
  port.Stop();
  reaper.Stop();
  sessions.Stop();
  pipeline->Stop();
  auto s = pipeline->stats();
  QLOG_INFO("stopped cleanly at zxid 0x%llx (%llu writes applied this run)",
            static_cast<unsigned long long>(s.last_zxid),
            static_cast<unsigned long long>(s.applied));
  return 0;
}
