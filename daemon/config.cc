#include "daemon/config.h"

#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <sstream>

namespace qfs {
namespace {

std::string Trim(const std::string& s) {
  size_t b = s.find_first_not_of(" \t\r\n");
  if (b == std::string::npos) return "";
  size_t e = s.find_last_not_of(" \t\r\n");
  return s.substr(b, e - b + 1);
}

bool ParseInt(const std::string& v, int64_t lo, int64_t hi, int64_t* out) {
  if (v.empty()) return false;
  errno = 0;
  char* end = nullptr;
  long long x = strtoll(v.c_str(), &end, 10);
  if (errno != 0 || *end != '\0' || x < lo || x > hi) return false;
  *out = x;
  return true;
}

// host:peerPort[:electionPort][:participant|observer][;[clientHost:]clientPort]
bool ParseServer(const std::string& v, Config::Server* out, std::string* why) {
  std::string quorum = v, client;
  size_t semi = v.find(';');
  if (semi != std::string::npos) {
    quorum = Trim(v.substr(0, semi));
    client = Trim(v.substr(semi + 1));
  }
  std::vector<std::string> parts;
  size_t start = 0;
  for (;;) {
    size_t c = quorum.find(':', start);
    parts.push_back(quorum.substr(start, c == std::string::npos ? std::string::npos : c - start));
    if (c == std::string::npos) break;
    start = c + 1;
  }
  if (parts.size() < 2 || parts.size() > 4 || parts[0].empty()) {
    *why = "expected host:peerPort[:electionPort][:participant|observer][;[host:]clientPort]";
    return false;
  }
  out->host = parts[0];
  int64_t n = 0;
  if (!ParseInt(parts[1], 1, 65535, &n)) {
    *why = "bad peer port '" + parts[1] + "'";
    return false;
  }
  out->peer_port = static_cast<int>(n);
  for (size_t i = 2; i < parts.size(); i++) {
    if (parts[i] == "observer") {
      out->observer = true;
    } else if (parts[i] == "participant") {
      out->observer = false;
    } else if (i == 2 && ParseInt(parts[i], 1, 65535, &n)) {
      out->election_port = static_cast<int>(n);
    } else {
      *why = "bad field '" + parts[i] + "'";
      return false;
    }
  }
  if (!client.empty()) {
    size_t c = client.rfind(':');
    std::string port = c == std::string::npos ? client : client.substr(c + 1);
    if (c != std::string::npos) out->client_host = client.substr(0, c);
    if (!ParseInt(port, 0, 65535, &n)) {
      *why = "bad client port '" + port + "'";
      return false;
    }
    out->client_port = static_cast<int>(n);
  }
  return true;
}

std::string ReadSmallFile(const std::string& path, bool* ok) {
  std::ifstream f(path);
  *ok = static_cast<bool>(f);
  std::stringstream ss;
  if (f) ss << f.rdbuf();
  return Trim(ss.str());
}

}  // namespace

std::string DefaultDataDir() {
  if (geteuid() == 0) return "/var/lib/quorumfs";
  const char* home = getenv("HOME");
  return std::string(home && *home ? home : ".") + "/.local/share/quorumfs";
}

Config DefaultConfig() {
  Config c;
  c.data_dir = DefaultDataDir();
  c.data_log_dir = c.data_dir;
  return c;
}

namespace {

// The stores must be given and PEM, so that a wrong setup fails at start (docs/tls.md).
Status CheckTls(const Config& c) {
  auto check = [](const char* prefix, const tls::Options& t, bool need_trust) -> Status {
    const std::string p = prefix;
    if (t.key_store.empty())
      return InvalidArgument("config: " + p + "keyStore.location is required");
    if (need_trust && t.trust_store.empty())
      return InvalidArgument("config: " + p + "trustStore.location is required");
    if (Status st = tls::CheckStoreType("config: " + p + "keyStore", t.key_store_type, t.key_store);
        !st.ok())
      return st;
    return tls::CheckStoreType("config: " + p + "trustStore", t.trust_store_type, t.trust_store);
  };
  if (c.secure_client_port != 0) {
    if (Status st = check("ssl.", c.client_tls, c.client_tls.client_auth != tls::ClientAuth::kNone);
        !st.ok())
      return st;
    if (c.client_port_given && c.client_port == c.secure_client_port)
      return InvalidArgument("config: clientPort and secureClientPort are the same port");
  }
  if (c.ssl_quorum) return check("ssl.quorum.", c.quorum_tls, true);
  return Status::Ok();
}

}  // namespace

Result<Config> ParseConfig(const std::string& text) {
  Config c = DefaultConfig();
  c.data_dir.clear();
  c.data_log_dir.clear();
  std::istringstream in(text);
  std::string raw;
  int lineno = 0;
  while (std::getline(in, raw)) {
    lineno++;
    std::string line = Trim(raw);
    if (line.empty() || line[0] == '#') continue;
    size_t eq = line.find('=');
    auto err = [&](const std::string& why) {
      return InvalidArgument("config line " + std::to_string(lineno) + " (" + line + "): " + why);
    };
    if (eq == std::string::npos) return err("expected key=value");
    std::string key = Trim(line.substr(0, eq));
    std::string val = Trim(line.substr(eq + 1));
    int64_t n = 0;
    auto num = [&](int64_t lo, int64_t hi) -> bool { return ParseInt(val, lo, hi, &n); };
    auto range = [&](int64_t lo, int64_t hi) {
      return err("expected an integer from " + std::to_string(lo) + " to " + std::to_string(hi));
    };
    if (key == "dataDir") {
      if (val.empty()) return err("empty path");
      c.data_dir = val;
    } else if (key == "dataLogDir") {
      if (val.empty()) return err("empty path");
      c.data_log_dir = val;
    } else if (key == "tickTime") {
      if (!num(1, 600000)) return range(1, 600000);
      c.tick_time_ms = static_cast<int>(n);
    } else if (key == "initLimit") {
      if (!num(1, 100000)) return range(1, 100000);
      c.init_limit = static_cast<int>(n);
    } else if (key == "syncLimit") {
      if (!num(1, 100000)) return range(1, 100000);
      c.sync_limit = static_cast<int>(n);
    } else if (key == "clientPort") {
      if (!num(0, 65535)) return range(0, 65535);
      c.client_port = static_cast<int>(n);
      c.client_port_given = true;
    } else if (key == "clientPortAddress") {
      if (val.empty()) return err("empty address");
      c.client_address = val;
    } else if (key == "maxClientCnxns") {
      if (!num(0, 1000000)) return range(0, 1000000);
      c.max_client_cnxns = static_cast<int>(n);
    } else if (key == "minSessionTimeout") {
      if (!num(1, 1 << 30)) return range(1, 1 << 30);
      c.min_session_timeout_ms = static_cast<int>(n);
    } else if (key == "maxSessionTimeout") {
      if (!num(1, 1 << 30)) return range(1, 1 << 30);
      c.max_session_timeout_ms = static_cast<int>(n);
    } else if (key == "snapCount") {
      if (!num(2, 1ll << 40)) return range(2, 1ll << 40);
      c.snap_count = static_cast<uint64_t>(n);
    } else if (key == "autopurge.snapRetainCount") {
      if (!num(1, 1000)) return range(1, 1000);
      c.snap_retain_count = static_cast<int>(n);
    } else if (key == "preAllocSize") {
      if (!num(64, 16ll << 20)) return range(64, 16ll << 20);
      c.log_segment_bytes = static_cast<uint64_t>(n) * 1024;
    } else if (key == "jute.maxbuffer") {
      if (!num(1024, 1ll << 30)) return range(1024, 1ll << 30);
      c.max_data_bytes = static_cast<size_t>(n);
    } else if (key == "globalOutstandingLimit") {
      if (!num(1, 1000000)) return range(1, 1000000);
      c.global_outstanding_limit = static_cast<int>(n);
    } else if (key == "logLevel") {
      if (!ParseLogLevel(val.c_str(), &c.log_level))
        return err("expected debug, info, warn or error");
    } else if (key == "DigestAuthenticationProvider.superDigest" || key == "superDigest") {
      if (val.rfind("super:", 0) != 0) return err("expected super:<base64 of SHA-1>");
      c.super_digest = val;
    } else if (key == "metricsProvider.httpPort") {
      if (!num(0, 65535)) return range(0, 65535);
      c.metrics_port = static_cast<int>(n);
    } else if (key == "metricsProvider.httpHost") {
      if (val.empty()) return err("empty address");
      c.metrics_address = val;
    } else if (key == "metricsProvider.className") {
      // ZooKeeper's name for the Prometheus provider; quorumfs always has it.
    } else if (key == "znode.container.checkIntervalMs") {
      if (!num(10, 1ll << 30)) return range(10, 1ll << 30);
      c.container_check_interval_ms = static_cast<int>(n);
    } else if (key.rfind("server.", 0) == 0) {
      Config::Server sv;
      if (!ParseInt(key.substr(7), 1, 255, &n)) return err("server id must be 1 to 255");
      sv.id = static_cast<uint64_t>(n);
      std::string why;
      if (!ParseServer(val, &sv, &why)) return err(why);
      for (const auto& o : c.servers)
        if (o.id == sv.id) return err("server." + std::to_string(n) + " given twice");
      c.servers.push_back(sv);
    } else if (key == "myid") {
      if (!num(1, 255)) return range(1, 255);
      c.myid = static_cast<uint64_t>(n);
    } else if (key == "peerType") {
      if (val != "observer" && val != "participant") return err("expected observer or participant");
      c.observer = val == "observer";
    } else if (key == "quorum.secret") {
      if (val.empty()) return err("empty secret");
      c.quorum_secret = val;
    } else if (key == "quorum.secretFile") {
      bool ok = false;
      c.quorum_secret = ReadSmallFile(val, &ok);
      if (!ok) return err("cannot read " + val);
      if (c.quorum_secret.empty()) return err(val + " is empty");
    } else if (key == "linearizableReads") {
      if (val != "true" && val != "false") return err("expected true or false");
      c.linearizable_reads = val == "true";
    } else if (key == "readonlymode.enabled") {
      // A Java system property in ZooKeeper (-Dreadonlymode.enabled=true); a config key here.
      if (val != "true" && val != "false") return err("expected true or false");
      c.read_only_mode = val == "true";
    } else if (key == "enforceQuota" || key == "zookeeper.enforceQuota") {
      // ZooKeeper's system property zookeeper.enforceQuota (docs/quotas.md).
      if (val != "true" && val != "false") return err("expected true or false");
      c.enforce_quota = val == "true";
    } else if (key == "writeWaitMs") {
      if (!num(1, 1ll << 30)) return range(1, 1ll << 30);
      c.write_wait_ms = static_cast<int>(n);
    } else if (key == "reconfigEnabled") {
      // docs/reconfig.md: off by default, as ZooKeeper 3.5.3+.
      if (val != "true" && val != "false") return err("expected true or false");
      c.reconfig_enabled = val == "true";
    } else if (key == "standaloneEnabled" || key == "quorumListenOnAllIPs" ||
               key == "4lw.commands.whitelist" || key == "localSessionsEnabled" ||
               key == "localSessionsUpgradingEnabled") {
      // ZooKeeper keys with no effect here (an ensemble of one is always a quorum of one; every
      // 4lw is on; read-only sessions are always local, docs/read-only.md).
      // --- TLS (docs/tls.md) ---
    } else if (key == "secureClientPort") {
      if (!num(1, 65535)) return range(1, 65535);
      c.secure_client_port = static_cast<int>(n);
    } else if (key == "secureClientPortAddress") {
      if (val.empty()) return err("empty address");
      c.secure_client_address = val;
    } else if (key == "sslQuorum") {
      if (val != "true" && val != "false") return err("expected true or false");
      c.ssl_quorum = val == "true";
    } else if (key == "ssl.quorum.hostnameVerification") {
      if (val != "true" && val != "false") return err("expected true or false");
      c.quorum_hostname_verification = val == "true";
    } else if (key.starts_with("ssl.")) {
      const bool quorum = key.starts_with("ssl.quorum.");
      tls::Options& t = quorum ? c.quorum_tls : c.client_tls;
      const std::string k = key.substr(quorum ? 11 : 4);
      if (k == "keyStore.location") {
        t.key_store = val;
      } else if (k == "keyStore.password") {
        t.key_store_password = val;
      } else if (k == "keyStore.type") {
        t.key_store_type = val;
      } else if (k == "trustStore.location") {
        t.trust_store = val;
      } else if (k == "trustStore.type") {
        t.trust_store_type = val;
      } else if (k == "trustStore.password") {
        // A PEM bundle of certificates has no password; accepted for ZooKeeper configs.
      } else if (k == "protocol") {
        if (val != "TLSv1.2" && val != "TLSv1.3") return err("expected TLSv1.2 or TLSv1.3");
        t.protocol = val;
      } else if (k == "enabledProtocols") {
        t.enabled_protocols = val;
      } else if (k == "ciphersuites") {
        t.ciphersuites = val;
      } else if (k == "clientAuth" && !quorum) {
        if (!tls::ParseClientAuth(val, &t.client_auth)) return err("expected need, want or none");
      } else if (k == "hostnameVerification" && !quorum) {
        // A client's setting in ZooKeeper (the server never checks a client's host name).
        if (val != "true" && val != "false") return err("expected true or false");
      } else {
        return err("unknown key '" + key + "'");
      }
    } else if (key == "X509AuthenticationProvider.superUser" ||
               key == "zookeeper.X509AuthenticationProvider.superUser") {
      if (val.empty()) return err("empty subject");
      c.x509_super_user = val;
    } else if (key == "jaasLoginConfig" || key == "java.security.auth.login.config") {
      if (val.empty()) return err("empty path");
      c.jaas_path = val;
    } else if (key == "superUser" || key == "zookeeper.superUser") {
      if (val.empty()) return err("empty user");
      c.sasl_super_user = val;
    } else if (key == "serverCnxnFactory" || key.starts_with("authProvider.")) {
      // ZooKeeper's Netty factory and its x509 provider: TLS and x509 are built in here.
      // --- end TLS ---
      // --- FUSE mount (docs/fuse.md) ---
    } else if (key == "mount") {
      if (val.empty()) return err("empty path");
      c.mount_dir = val;
    } else if (key == "mount.writeTimeoutMs") {
      if (!num(1, 1 << 30)) return range(1, 1 << 30);
      c.mount_write_timeout_ms = static_cast<int>(n);
    } else if (key == "mount.sessionTimeoutMs") {
      if (!num(1, 1 << 30)) return range(1, 1 << 30);
      c.mount_session_timeout_ms = static_cast<int>(n);
    } else if (key == "mount.auth") {
      // Only the digest scheme: ip and unix ids are the mount's own, world needs no auth.
      if (!val.starts_with("digest:") || val.size() == 7)
        return err("expected digest:user:password");
      c.mount_auth = val;
    } else if (key == "mount.rootIsSuper") {
      if (val != "true" && val != "false") return err("expected true or false");
      c.mount_root_is_super = val == "true";
      // --- end FUSE mount ---
    } else {
      return err("unknown key '" + key + "'");
    }
  }
  if (c.data_dir.empty()) return InvalidArgument("config: dataDir is required");
  if (c.data_log_dir.empty()) c.data_log_dir = c.data_dir;
  if (c.min_session_timeout() > c.max_session_timeout())
    return InvalidArgument("config: minSessionTimeout is larger than maxSessionTimeout");
  if (Status st = CheckTls(c); !st.ok()) return st;
  return c;
}

Status ResolveMembership(Config* c) {
  if (!c->ensemble()) {
    if (c->observer) return InvalidArgument("config: peerType=observer needs server.N lines");
    return Status::Ok();
  }
  if (c->myid == 0) {
    bool ok = false;
    std::string text = ReadSmallFile(c->data_dir + "/myid", &ok);
    int64_t n = 0;
    if (!ok)
      return InvalidArgument("config has server.N lines but neither a myid key nor a file " +
                             c->data_dir + "/myid");
    if (!ParseInt(text, 1, 255, &n))
      return InvalidArgument(c->data_dir + "/myid: expected a number from 1 to 255");
    c->myid = static_cast<uint64_t>(n);
  }
  const Config::Server* me = c->self();
  if (!me)
    return InvalidArgument("config: myid " + std::to_string(c->myid) + " has no server." +
                           std::to_string(c->myid) + " line");
  if (me->observer != c->observer)
    return InvalidArgument("config: peerType and the :observer flag of server." +
                           std::to_string(c->myid) + " disagree");
  int voters = 0;
  for (const auto& s : c->servers) voters += s.observer ? 0 : 1;
  if (voters == 0) return InvalidArgument("config: no voting member among the server.N lines");
  if (c->quorum_secret.empty())
    return InvalidArgument(
        "config: an ensemble needs quorum.secret (or quorum.secretFile) so that members can "
        "authenticate each other (with sslQuorum too: it also keys session passwords)");
  return Status::Ok();
}

Result<Config> LoadConfigFile(const std::string& path) {
  std::ifstream f(path);
  if (!f) return ErrnoStatus("cannot read config file " + path, errno);
  std::stringstream ss;
  ss << f.rdbuf();
  // ZooKeeper 3.5+'s dynamicConfigFile=PATH (docs/reconfig.md): its server.N lines are read as
  // if they were in this file; its version= line is ZooKeeper's bookkeeping and is skipped.
  std::string text, line;
  std::istringstream in(ss.str());
  while (std::getline(in, line)) {
    std::string_view l = line;
    while (!l.empty() && (l.front() == ' ' || l.front() == '\t')) l.remove_prefix(1);
    if (l.rfind("dynamicConfigFile", 0) == 0 && l.find('=') != std::string_view::npos) {
      std::string dyn(l.substr(l.find('=') + 1));
      while (!dyn.empty() && (dyn.back() == ' ' || dyn.back() == '\r')) dyn.pop_back();
      if (!dyn.empty() && dyn.front() != '/') {
        // Relative paths are relative to the directory of the main file, as ZooKeeper's.
        size_t slash = path.rfind('/');
        if (slash != std::string::npos) dyn = path.substr(0, slash + 1) + dyn;
      }
      std::ifstream d(dyn);
      if (!d) return ErrnoStatus("cannot read dynamicConfigFile " + dyn, errno);
      std::string dl;
      while (std::getline(d, dl)) {
        if (dl.rfind("version=", 0) == 0) continue;
        text += dl + "\n";
      }
      continue;
    }
    text += line + "\n";
  }
  return ParseConfig(text);
}

Status CheckMountDir(const Config& c) {
  if (c.mount_dir.empty()) return Status::Ok();
  namespace fs = std::filesystem;
  // Absolute, with symbolic links of the existing part resolved: "/tmp/q" and "/tmp/./q/" or a
  // link to it are the same directory.
  auto norm = [](const std::string& p) {
    std::error_code ec;
    fs::path a = fs::absolute(p, ec).lexically_normal();
    if (ec) return fs::path(p).lexically_normal();
    // A stale mount point (ENOTCONN) cannot be resolved: then the path as written.
    fs::path r = fs::weakly_canonical(a, ec);
    return ec || r.empty() ? a : r.lexically_normal();
  };
  const fs::path mount = norm(c.mount_dir);
  for (const auto& [key, dir] : {std::pair<const char*, const std::string&>{"dataDir", c.data_dir},
                                 {"dataLogDir", c.data_log_dir}}) {
    if (dir.empty()) continue;
    const fs::path d = norm(dir);
    auto [m, di] = std::mismatch(mount.begin(), mount.end(), d.begin(), d.end());
    const bool inside = m == mount.end() || (std::next(m) == mount.end() && m->empty());
    if (inside) {
      return InvalidArgument("the mount directory " + c.mount_dir + " would cover " + key + " " +
                             dir + ": mount the tree elsewhere");
    }
  }
  return Status::Ok();
}

}  // namespace qfs
