#include "daemon/config.h"

#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <fstream>
#include <sstream>

namespace qfs {
namespace {

std::string Trim(const std::string& s) {
  size_t b = s.find_first_not_of(" \t\r");
  if (b == std::string::npos) return "";
  size_t e = s.find_last_not_of(" \t\r");
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
      // --- end FUSE mount ---
    } else if (key.rfind("server.", 0) == 0 || key == "peerType") {
      return err("ensemble keys are not supported by this version (one member only)");
    } else {
      return err("unknown key '" + key + "'");
    }
  }
  if (c.data_dir.empty()) return InvalidArgument("config: dataDir is required");
  if (c.data_log_dir.empty()) c.data_log_dir = c.data_dir;
  if (c.min_session_timeout() > c.max_session_timeout())
    return InvalidArgument("config: minSessionTimeout is larger than maxSessionTimeout");
  return c;
}

Result<Config> LoadConfigFile(const std::string& path) {
  std::ifstream f(path);
  if (!f) return ErrnoStatus("cannot read config file " + path, errno);
  std::stringstream ss;
  ss << f.rdbuf();
  return ParseConfig(ss.str());
}

}  // namespace qfs
