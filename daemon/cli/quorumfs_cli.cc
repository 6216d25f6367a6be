// quorumfs: the command-line client for quorumfs (and any ZooKeeper-protocol server).
// Built on the ZooKeeper C client (libzookeeper_mt) so it exercises the same wire protocol real
// applications use.
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include <zookeeper/zookeeper.h>

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <cstdarg>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "daemon/cli/dump.h"
#include "daemon/cli/import_zookeeper.h"

namespace {

constexpr int kExitOp = 1;
constexpr int kExitUsage = 2;
constexpr int kSessionTimeoutMs = 10000;
constexpr const char* kDefaultServer = "127.0.0.1:2181";

// An operation failed: main prints "quorumfs: <msg>" and exits 1 after closing the session.
struct OpError {
  std::string msg;
};

// Bad command line: main prints the message and the command's usage, exits 2.
struct UsageError {
  std::string cmd;  // empty: global usage
  std::string msg;
};

std::string Format(const char* fmt, ...) __attribute__((format(printf, 1, 2)));
std::string Format(const char* fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  char buf[1024];
  vsnprintf(buf, sizeof buf, fmt, ap);
  va_end(ap);
  return buf;
}

volatile sig_atomic_t g_stop = 0;
void OnSignal(int) {
  g_stop = 1;
}

// ---------------------------------------------------------------------------------------------
// Command-line parsing

struct OptSpec {
  const char* name;  // "-e" or "--ttl"
  bool takes_value;
};

struct Args {
  std::map<std::string, std::string> opts;  // present options; value or ""
  std::vector<std::string> pos;
  bool has(const std::string& o) const { return opts.count(o) > 0; }
};

// GNU-style: options may follow positionals; "--" ends options; "-es" bundles flags.
Args ParseArgs(const std::string& cmd, const std::vector<std::string>& in,
               const std::vector<OptSpec>& specs) {
  auto find = [&](const std::string& n) -> const OptSpec* {
    for (const auto& s : specs)
      if (n == s.name) return &s;
    return nullptr;
  };
  Args a;
  for (size_t i = 0; i < in.size(); i++) {
    const std::string& t = in[i];
    if (t == "--") {
      a.pos.insert(a.pos.end(), in.begin() + static_cast<long>(i) + 1, in.end());
      break;
    }
    if (t.size() < 2 || t[0] != '-') {
      a.pos.push_back(t);
      continue;
    }
    if (t[1] == '-') {
      std::string name = t, value;
      bool inline_value = false;
      if (auto eq = t.find('='); eq != std::string::npos) {
        name = t.substr(0, eq);
        value = t.substr(eq + 1);
        inline_value = true;
      }
      const OptSpec* s = find(name);
      if (!s) throw UsageError{cmd, "unknown option '" + name + "'"};
      if (s->takes_value && !inline_value) {
        if (i + 1 >= in.size()) throw UsageError{cmd, name + " needs a value"};
        value = in[++i];
      } else if (!s->takes_value && inline_value) {
        throw UsageError{cmd, name + " takes no value"};
      }
      a.opts[name] = value;
      continue;
    }
    for (size_t j = 1; j < t.size(); j++) {
      std::string name = std::string("-") + t[j];
      const OptSpec* s = find(name);
      if (!s) throw UsageError{cmd, "unknown option '" + name + "'"};
      if (s->takes_value) {
        if (j + 1 < t.size()) {
          a.opts[name] = t.substr(j + 1);
        } else {
          if (i + 1 >= in.size()) throw UsageError{cmd, name + " needs a value"};
          a.opts[name] = in[++i];
        }
        break;
      }
      a.opts[name] = "";
    }
  }
  return a;
}

long long ParseInt(const std::string& cmd, const std::string& what, const std::string& s,
                   long long lo, long long hi) {
  errno = 0;
  char* end = nullptr;
  long long v = strtoll(s.c_str(), &end, 10);
  if (s.empty() || *end != '\0' || errno == ERANGE || v < lo || v > hi)
    throw UsageError{cmd, Format("%s must be an integer in [%lld, %lld], not '%s'", what.c_str(),
                                 lo, hi, s.c_str())};
  return v;
}

// Paths are checked here, not left to the C client, so a typo gets a precise message.
void CheckPath(const std::string& cmd, const std::string& p, bool allow_trailing_slash = false) {
  auto bad = [&](const char* why) { throw UsageError{cmd, "invalid path '" + p + "': " + why}; };
  if (p.empty() || p[0] != '/') bad("must start with '/'");
  if (p.find('\0') != std::string::npos) bad("contains a NUL byte");
  if (p.size() > 1 && p.back() == '/' && !allow_trailing_slash) bad("must not end with '/'");
  if (p.find("//") != std::string::npos) bad("empty path component");
  size_t start = 1;
  while (start < p.size()) {
    size_t end = p.find('/', start);
    if (end == std::string::npos) end = p.size();
    std::string part = p.substr(start, end - start);
    if (part == "." || part == "..") bad("'.' and '..' are not allowed");
    start = end + 1;
  }
}

std::string Parent(const std::string& p) {
  size_t slash = p.rfind('/');
  return slash == 0 ? "/" : p.substr(0, slash);
}

std::string Join(const std::string& dir, const std::string& child) {
  return dir == "/" ? "/" + child : dir + "/" + child;
}

// ---------------------------------------------------------------------------------------------
// Session: one zhandle plus the events its watcher delivers.

struct Event {
  int type;
  int state;
  std::string path;
};

class Session {
 public:
  Session(std::string servers, int wait_ms) : servers_(std::move(servers)) {
    zh_ = zookeeper_init(servers_.c_str(), &Session::Watcher, kSessionTimeoutMs, nullptr, this, 0);
    if (!zh_)
      throw OpError{Format(
          "cannot use server list '%s': %s", servers_.c_str(),
          errno == EINVAL ? "not HOST:PORT[,HOST:PORT...]" : "cannot resolve its host names")};
    std::unique_lock<std::mutex> l(mu_);
    bool done = cv_.wait_for(l, std::chrono::milliseconds(wait_ms), [&] {
      return state_ == ZOO_CONNECTED_STATE || state_ == ZOO_EXPIRED_SESSION_STATE ||
             state_ == ZOO_AUTH_FAILED_STATE || g_stop;
    });
    if (!done || state_ != ZOO_CONNECTED_STATE) {
      l.unlock();
      zookeeper_close(zh_);
      zh_ = nullptr;
      if (g_stop) throw OpError{"interrupted while connecting"};
      if (state_ == ZOO_AUTH_FAILED_STATE) throw OpError{"authentication failed"};
      throw OpError{
          Format("cannot reach the server at %s (tried for %d ms)", servers_.c_str(), wait_ms)};
    }
    events_.clear();  // the connect event is not news to callers
  }
  ~Session() {
    if (zh_) zookeeper_close(zh_);
  }
  Session(const Session&) = delete;
  Session& operator=(const Session&) = delete;

  zhandle_t* zh() const { return zh_; }
  const std::string& servers() const { return servers_; }

  // Waits up to `ms` for a watch or session event.
  std::optional<Event> NextEvent(int ms) {
    std::unique_lock<std::mutex> l(mu_);
    cv_.wait_for(l, std::chrono::milliseconds(ms), [&] { return !events_.empty(); });
    if (events_.empty()) return std::nullopt;
    Event e = events_.front();
    events_.pop_front();
    return e;
  }

 private:
  // Runs on the C client's completion thread: only records, never calls back into the client.
  static void Watcher(zhandle_t*, int type, int state, const char* path, void* ctx) {
    auto* s = static_cast<Session*>(ctx);
    std::lock_guard<std::mutex> l(s->mu_);
    if (type == ZOO_SESSION_EVENT) s->state_ = state;
    s->events_.push_back(Event{type, state, path ? path : ""});
    s->cv_.notify_all();
  }

  std::string servers_;
  zhandle_t* zh_ = nullptr;
  std::mutex mu_;
  std::condition_variable cv_;
  int state_ = 0;
  std::deque<Event> events_;
};

// Human words for ZooKeeper error codes.
std::string Describe(const Session& s, int rc) {
  if (rc == ZNONODE) return "no such node";
  if (rc == ZNODEEXISTS) return "node exists";
  if (rc == ZNOTEMPTY) return "node has children";
  if (rc == ZBADVERSION) return "version mismatch";
  if (rc == ZNOAUTH) return "not authorized (the node's ACL denies this)";
  if (rc == ZINVALIDACL) return "invalid ACL";
  if (rc == ZNOCHILDRENFOREPHEMERALS) return "ephemeral nodes cannot have children";
  if (rc == ZCONNECTIONLOSS) return "cannot reach the server at " + s.servers();
  if (rc == ZSESSIONEXPIRED) return "session expired";
  if (rc == ZOPERATIONTIMEOUT) return "operation timed out";
  if (rc == ZBADARGUMENTS) return "invalid arguments";
  if (rc == ZUNIMPLEMENTED) return "not supported by the server";
  if (rc == ZAUTHFAILED) return "authentication failed";
  if (rc == ZSESSIONMOVED) return "session moved to another server";
  if (rc == ZNOTREADONLY) return "the server is read-only";
  if (rc == ZEPHEMERALONLOCALSESSION) return "ephemeral nodes need a global session";
  if (rc == ZTHROTTLEDOP) return "throttled by the server; retry later";
  if (rc == ZINVALIDSTATE) return "the session is no longer valid";
  if (rc == ZCLOSING) return "the client is closing";
  if (rc == ZMARSHALLINGERROR) return "request or reply could not be encoded";
  if (rc == ZSESSIONCLOSEDREQUIRESASLAUTH) return "the server requires SASL authentication";
  return zerror(rc);
}

[[noreturn]] void Fail(const Session& s, const std::string& what, int rc,
                       const std::string& detail = "") {
  std::string msg = what + ": " + Describe(s, rc);
  std::string why = rc == ZCONNECTIONLOSS ? "connection lost" : "";
  if (!detail.empty()) why += (why.empty() ? "" : "; ") + detail;
  if (!why.empty()) msg += " (" + why + ")";
  throw OpError{msg};
}

// ---------------------------------------------------------------------------------------------
// Output helpers

void WriteOut(const void* p, size_t n) {
  if (n && fwrite(p, 1, n, stdout) != n) throw OpError{Format("write: %s", strerror(errno))};
}

std::string Hex(int64_t v) {
  return Format("0x%llx", static_cast<unsigned long long>(v));
}

std::string Millis(int64_t ms) {
  time_t secs = static_cast<time_t>(ms / 1000);
  struct tm tm;
  gmtime_r(&secs, &tm);
  char buf[64];
  strftime(buf, sizeof buf, "%Y-%m-%d %H:%M:%S", &tm);
  return Format("%lld (%s.%03lld UTC)", static_cast<long long>(ms), buf,
                static_cast<long long>(ms % 1000));
}

std::string StatText(const Stat& st) {
  std::string o;
  o += "cZxid: " + Hex(st.czxid) + "\n";
  o += "ctime: " + Millis(st.ctime) + "\n";
  o += "mZxid: " + Hex(st.mzxid) + "\n";
  o += "mtime: " + Millis(st.mtime) + "\n";
  o += "pZxid: " + Hex(st.pzxid) + "\n";
  o += Format("cversion: %d\n", st.cversion);
  o += Format("dataVersion: %d\n", st.version);
  o += Format("aclVersion: %d\n", st.aversion);
  o += "ephemeralOwner: " + Hex(st.ephemeralOwner) + "\n";
  o += Format("dataLength: %d\n", st.dataLength);
  o += Format("numChildren: %d\n", st.numChildren);
  return o;
}

std::string ReadStdin() {
  std::string data;
  char buf[65536];
  size_t n;
  while ((n = fread(buf, 1, sizeof buf, stdin)) > 0) data.append(buf, n);
  if (ferror(stdin)) throw OpError{Format("reading stdin: %s", strerror(errno))};
  return data;
}

std::vector<std::string> Children(const Session& s, const std::string& what,
                                  const std::string& path, Stat* st, int* rc_out = nullptr) {
  String_vector v{};
  Stat local{};
  int rc = zoo_get_children2(s.zh(), path.c_str(), 0, &v, st ? st : &local);
  if (rc != ZOK) {
    if (rc_out) {
      *rc_out = rc;
      return {};
    }
    Fail(s, what, rc);
  }
  if (rc_out) *rc_out = ZOK;
  std::vector<std::string> out(v.data, v.data + v.count);
  deallocate_String_vector(&v);
  std::sort(out.begin(), out.end());
  return out;
}

// Names the current version in a version-mismatch message.
std::string VersionDetail(const Session& s, const std::string& path, int expected) {
  Stat st{};
  if (zoo_exists(s.zh(), path.c_str(), 0, &st) == ZOK)
    return Format("expected version %d, node is at version %d", expected, st.version);
  return Format("expected version %d", expected);
}

// ---------------------------------------------------------------------------------------------
// Commands

int CmdLs(Session& s, const Args& a) {
  const std::string& path = a.pos[0];
  Stat st{};
  auto kids = Children(s, "ls " + path, path, &st);
  std::string out;
  for (const auto& k : kids) out += k + "\n";
  if (a.has("-s")) out += "\n" + StatText(st);  // blank line: child names are never empty
  WriteOut(out.data(), out.size());
  return 0;
}

int CmdGet(Session& s, const Args& a) {
  const std::string& path = a.pos[0];
  std::string what = "get " + path;
  Stat st{};
  int rc = zoo_exists(s.zh(), path.c_str(), 0, &st);
  if (rc != ZOK) Fail(s, what, rc);
  // The data may grow between exists and get: retry with the size get reports.
  std::vector<char> buf;
  for (int attempt = 0;; attempt++) {
    buf.resize(static_cast<size_t>(std::max(st.dataLength, 0)) + 1);
    int len = static_cast<int>(buf.size());
    rc = zoo_get(s.zh(), path.c_str(), 0, buf.data(), &len, &st);
    if (rc != ZOK) Fail(s, what, rc);
    if (st.dataLength < static_cast<int>(buf.size()) || attempt >= 5) {
      WriteOut(buf.data(), static_cast<size_t>(std::max(len, 0)));  // -1: null data
      break;
    }
  }
  if (a.has("-s")) {
    if (fflush(stdout) != 0) throw OpError{Format("write: %s", strerror(errno))};
    fputs(StatText(st).c_str(), stderr);
  }
  return 0;
}

int Version(const char* cmd, const Args& a) {
  if (!a.has("-v")) return -1;
  return static_cast<int>(ParseInt(cmd, "VERSION", a.opts.at("-v"), -1, INT32_MAX));
}

int CmdSet(Session& s, const Args& a) {
  const std::string& path = a.pos[0];
  std::string what = "set " + path;
  std::string data = a.pos.size() > 1 ? a.pos[1] : ReadStdin();
  int version = Version("set", a);
  int rc = zoo_set(s.zh(), path.c_str(), data.data(), static_cast<int>(data.size()), version);
  if (rc == ZBADVERSION) Fail(s, what, rc, VersionDetail(s, path, version));
  if (rc == ZCONNECTIONLOSS && data.size() > 1000000)
    Fail(s, what, rc, "the server may have refused a value larger than its jute.maxbuffer");
  if (rc != ZOK) Fail(s, what, rc);
  return 0;
}

void CheckCreate(const Args& a) {
  bool eph = a.has("-e"), seq = a.has("-s"), container = a.has("--container");
  bool ttl_set = a.has("--ttl");
  // ZooKeeper's limit for a TTL (EphemeralType.MAX_TTL): 40 bits of milliseconds.
  if (ttl_set) ParseInt("create", "--ttl", a.opts.at("--ttl"), 1, 0xffffffffffll);
  if (container && (eph || seq || ttl_set))
    throw UsageError{"create", "--container cannot be combined with -e, -s or --ttl"};
  if (eph && ttl_set) throw UsageError{"create", "-e and --ttl cannot be combined"};
  if (a.pos[0].back() == '/' && !seq)
    throw UsageError{"create", "invalid path '" + a.pos[0] + "': must not end with '/'"};
}

int CmdCreate(Session& s, const Args& a) {
  const std::string& path = a.pos[0];
  std::string what = "create " + path;
  std::string data = a.pos.size() > 1 ? a.pos[1] : "";
  bool eph = a.has("-e"), seq = a.has("-s"), container = a.has("--container");
  bool ttl_set = a.has("--ttl");
  int64_t ttl = ttl_set ? ParseInt("create", "--ttl", a.opts.at("--ttl"), 1, 0xffffffffffll) : -1;
  int mode = ZOO_PERSISTENT;
  if (container)
    mode = ZOO_CONTAINER;
  else if (ttl_set)
    mode = seq ? ZOO_PERSISTENT_SEQUENTIAL_WITH_TTL : ZOO_PERSISTENT_WITH_TTL;
  else if (eph)
    mode = seq ? ZOO_EPHEMERAL_SEQUENTIAL : ZOO_EPHEMERAL;
  else if (seq)
    mode = ZOO_PERSISTENT_SEQUENTIAL;

  std::vector<char> created(path.size() + 64);
  Stat st{};
  int rc = zoo_create2_ttl(s.zh(), path.c_str(), data.data(), static_cast<int>(data.size()),
                           &ZOO_OPEN_ACL_UNSAFE, mode, ttl, created.data(),
                           static_cast<int>(created.size()), &st);
  if (rc == ZNONODE) {
    std::string parent = Parent(path.back() == '/' ? path.substr(0, path.size() - 1) : path);
    Fail(s, what, rc, "parent " + parent + " does not exist");
  }
  if (rc == ZNOCHILDRENFOREPHEMERALS) Fail(s, what, rc, "parent " + Parent(path) + " is ephemeral");
  if (rc == ZUNIMPLEMENTED && ttl_set)
    Fail(s, what, rc, "TTL nodes are disabled; ZooKeeper needs extendedTypesEnabled=true");
  if (rc == ZCONNECTIONLOSS && data.size() > 1000000)
    Fail(s, what, rc, "the server may have refused a value larger than its jute.maxbuffer");
  if (rc != ZOK) Fail(s, what, rc);
  std::string out = std::string(created.data()) + "\n";
  WriteOut(out.data(), out.size());
  return 0;
}

// Deletes children first. Children created concurrently make the parent's delete fail with
// ZNOTEMPTY; the subtree is listed again a bounded number of times.
int DeleteTree(const Session& s, const std::string& path, int version) {
  for (int attempt = 0; attempt < 10; attempt++) {
    int rc;
    auto kids = Children(s, "", path, nullptr, &rc);
    if (rc != ZOK) return rc;
    for (const auto& k : kids) {
      rc = DeleteTree(s, Join(path, k), -1);
      if (rc != ZOK && rc != ZNONODE) return rc;
    }
    rc = zoo_delete(s.zh(), path.c_str(), version);
    if (rc != ZNOTEMPTY) return rc;
  }
  return ZNOTEMPTY;
}

int CmdDelete(Session& s, const Args& a) {
  const std::string& path = a.pos[0];
  std::string what = "delete " + path;
  int version = Version("delete", a);
  if (path == "/") throw OpError{what + ": the root node cannot be deleted"};
  int rc;
  if (a.has("-r")) {
    // Check the version before touching the children, so a mismatch deletes nothing.
    if (version != -1) {
      Stat st{};
      rc = zoo_exists(s.zh(), path.c_str(), 0, &st);
      if (rc != ZOK) Fail(s, what, rc);
      if (st.version != version) Fail(s, what, ZBADVERSION, VersionDetail(s, path, version));
    }
    rc = DeleteTree(s, path, version);
  } else {
    rc = zoo_delete(s.zh(), path.c_str(), version);
  }
  if (rc == ZNOTEMPTY && !a.has("-r")) Fail(s, what, rc, "use -r to delete the subtree");
  if (rc == ZBADVERSION) Fail(s, what, rc, VersionDetail(s, path, version));
  if (rc != ZOK) Fail(s, what, rc);
  return 0;
}

int CmdStat(Session& s, const Args& a) {
  const std::string& path = a.pos[0];
  Stat st{};
  int rc = zoo_exists(s.zh(), path.c_str(), 0, &st);
  if (rc != ZOK) Fail(s, "stat " + path, rc);
  std::string out = StatText(st);
  WriteOut(out.data(), out.size());
  return 0;
}

// The 3.8 C client has no persistent watches, so one-shot watches are re-armed after every event.
// Events are not printed from the notification itself but from what changed since the last look
// (czxid, dataVersion, cversion, children): a change made while a watch was being re-armed still
// shows, as it would with a persistent watch. -r keeps a data and a child watch on every node of
// the subtree and reports NodeCreated, NodeDeleted and NodeDataChanged, as a persistent recursive
// watch does.
class Watch {
 public:
  Watch(Session& s, std::string root, bool recursive)
      : s_(s), root_(std::move(root)), recursive_(recursive) {}

  int Run() {
    Refresh(root_);
    report_ = true;
    fprintf(stderr, "quorumfs: watching %s%s (Ctrl-C to stop)\n", root_.c_str(),
            recursive_ ? " and its subtree" : "");
    while (!g_stop) {
      auto e = s_.NextEvent(200);
      if (!e) continue;
      if (e->type != ZOO_SESSION_EVENT) {
        Refresh(recursive_ ? e->path : root_);
        continue;
      }
      if (e->state == ZOO_EXPIRED_SESSION_STATE)
        throw OpError{"watch " + root_ + ": session expired; watches are lost"};
      if (e->state == ZOO_AUTH_FAILED_STATE)
        throw OpError{"watch " + root_ + ": authentication failed"};
      if (e->state == ZOO_CONNECTING_STATE) {
        fprintf(stderr, "quorumfs: connection lost, reconnecting to %s\n", s_.servers().c_str());
      } else if (e->state == ZOO_CONNECTED_STATE) {
        fprintf(stderr, "quorumfs: reconnected\n");
        RefreshAll();  // watches that could not be set while disconnected
      }
    }
    return 0;
  }

 private:
  struct NodeState {
    int64_t czxid;
    int32_t version, cversion;
    std::set<std::string> kids;
  };

  void Print(const char* name, const std::string& path) {
    if (!report_) return;
    printf("%s %s\n", name, path.c_str());
    if (fflush(stdout) != 0) throw OpError{Format("write: %s", strerror(errno))};
  }

  // `path` is gone: reports it and what was known below it, deepest first.
  void Gone(const std::string& path) {
    auto it = known_.find(path);
    if (it == known_.end()) return;
    auto kids = it->second.kids;
    known_.erase(it);
    for (const auto& k : kids) Gone(Join(path, k));
    Print("NodeDeleted", path);
  }

  // Re-arms the data watch (exists: also fires on creation) and the child watch on `path` and
  // reports the difference from its last known state.
  void Refresh(const std::string& path) {
    Stat st{};
    int rc = zoo_exists(s_.zh(), path.c_str(), 1, &st);
    if (rc == ZOK) {
      String_vector v{};
      rc = zoo_get_children2(s_.zh(), path.c_str(), 1, &v, &st);
      if (rc == ZOK) {
        Update(path, st, std::set<std::string>(v.data, v.data + v.count));
        deallocate_String_vector(&v);
        return;
      }
    }
    if (rc == ZNONODE) return Gone(path);
    // Lost connections are re-armed on reconnect; anything else ends the watch.
    if (rc != ZCONNECTIONLOSS && rc != ZOPERATIONTIMEOUT) Fail(s_, "watch " + path, rc);
  }

  void Update(const std::string& path, const Stat& st, std::set<std::string> kids) {
    auto it = known_.find(path);
    if (it != known_.end() && it->second.czxid != st.czxid) {  // deleted and created again
      Gone(path);
      it = known_.end();
    }
    NodeState prev{st.czxid, 0, 0, {}};
    if (it != known_.end()) {
      prev = it->second;
    } else {
      if (!report_) prev = NodeState{st.czxid, st.version, st.cversion, {}};
      Print("NodeCreated", path);
    }
    for (int32_t i = prev.version; i < st.version; i++) Print("NodeDataChanged", path);
    if (!recursive_) {
      for (int32_t i = prev.cversion; i < st.cversion; i++) Print("NodeChildrenChanged", path);
      known_[path] = NodeState{st.czxid, st.version, st.cversion, {}};
      return;
    }
    known_[path] = NodeState{st.czxid, st.version, st.cversion, kids};
    for (const auto& k : prev.kids)
      if (!kids.count(k)) Gone(Join(path, k));
    for (const auto& k : kids)
      if (!prev.kids.count(k)) Refresh(Join(path, k));
  }

  void RefreshAll() {
    std::vector<std::string> paths{root_};
    for (const auto& [p, st] : known_)
      if (p != root_) paths.push_back(p);
    for (const auto& p : paths) Refresh(p);
  }

  Session& s_;
  std::string root_;
  bool recursive_;
  bool report_ = false;  // off while the initial state is read
  std::map<std::string, NodeState> known_;
};

int CmdWatch(Session& s, const Args& a) {
  struct sigaction sa {};
  sa.sa_handler = OnSignal;
  sigaction(SIGINT, &sa, nullptr);
  sigaction(SIGTERM, &sa, nullptr);
  return Watch(s, a.pos[0], a.has("-r")).Run();
}

// status: four-letter words over plain TCP, so it works even when sessions cannot be opened.
struct HostPort {
  std::string host, port;
  std::string text() const {
    return host.find(':') != std::string::npos ? "[" + host + "]:" + port : host + ":" + port;
  }
};

std::vector<HostPort> SplitServers(std::string list) {
  size_t slash = list.find('/');  // a chroot suffix applies to sessions only
  if (slash != std::string::npos) list.resize(slash);
  std::vector<HostPort> out;
  size_t start = 0;
  while (start <= list.size()) {
    size_t comma = list.find(',', start);
    if (comma == std::string::npos) comma = list.size();
    std::string item = list.substr(start, comma - start);
    start = comma + 1;
    if (item.empty()) continue;
    HostPort hp;
    if (item[0] == '[') {
      size_t close = item.find(']');
      if (close == std::string::npos) throw UsageError{"", "bad server '" + item + "'"};
      hp.host = item.substr(1, close - 1);
      hp.port = close + 2 <= item.size() && item[close + 1] == ':' ? item.substr(close + 2) : "";
    } else if (size_t colon = item.rfind(':'); colon != std::string::npos) {
      hp.host = item.substr(0, colon);
      hp.port = item.substr(colon + 1);
    } else {
      hp.host = item;
    }
    if (hp.port.empty()) hp.port = "2181";
    out.push_back(hp);
  }
  if (out.empty()) throw UsageError{"", "empty server list"};
  return out;
}

int64_t NowMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

// Sends `word` and reads until the server closes, all within `timeout_ms`.
std::string FourLetter(const HostPort& hp, const char* word, int timeout_ms) {
  int64_t deadline = NowMs() + timeout_ms;
  addrinfo hints{};
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* res = nullptr;
  int gai = getaddrinfo(hp.host.c_str(), hp.port.c_str(), &hints, &res);
  if (gai != 0) throw OpError{Format("status %s: %s", hp.text().c_str(), gai_strerror(gai))};
  std::string err = "no address";
  int fd = -1;
  for (addrinfo* ai = res; ai && fd < 0; ai = ai->ai_next) {
    fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, ai->ai_protocol);
    if (fd < 0) {
      err = strerror(errno);
      continue;
    }
    if (connect(fd, ai->ai_addr, ai->ai_addrlen) != 0 && errno != EINPROGRESS) {
      err = strerror(errno);
      close(fd);
      fd = -1;
      continue;
    }
    pollfd p{fd, POLLOUT, 0};
    int left = static_cast<int>(std::max<int64_t>(0, deadline - NowMs()));
    int soerr = 0;
    socklen_t len = sizeof soerr;
    if (poll(&p, 1, left) != 1) {
      err = "timed out";
    } else if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &len) == 0 && soerr == 0) {
      break;
    } else {
      err = strerror(soerr);
    }
    close(fd);
    fd = -1;
  }
  freeaddrinfo(res);
  if (fd < 0)
    throw OpError{
        Format("status: cannot reach the server at %s (%s)", hp.text().c_str(), err.c_str())};
  std::string out;
  bool sent = send(fd, word, 4, MSG_NOSIGNAL) == 4;
  while (sent) {
    pollfd p{fd, POLLIN, 0};
    int left = static_cast<int>(deadline - NowMs());
    if (left <= 0 || poll(&p, 1, left) != 1) {
      close(fd);
      throw OpError{
          Format("status %s: no answer to '%s' within %d ms", hp.text().c_str(), word, timeout_ms)};
    }
    char buf[8192];
    ssize_t n = recv(fd, buf, sizeof buf, 0);
    if (n <= 0) break;
    out.append(buf, static_cast<size_t>(n));
  }
  close(fd);
  if (!sent) throw OpError{Format("status %s: send failed", hp.text().c_str())};
  return out;
}

std::map<std::string, std::string> ParseFields(const std::string& text, char sep) {
  std::map<std::string, std::string> m;
  size_t start = 0;
  while (start < text.size()) {
    size_t nl = text.find('\n', start);
    if (nl == std::string::npos) nl = text.size();
    std::string line = text.substr(start, nl - start);
    start = nl + 1;
    size_t at = line.find(sep);
    if (at == std::string::npos) continue;
    std::string v = line.substr(at + 1);
    while (!v.empty() && (v[0] == ' ' || v[0] == '\t')) v.erase(0, 1);
    m[line.substr(0, at)] = v;
  }
  return m;
}

void PrintServerStatus(const HostPort& hp, int timeout_ms) {
  std::string srvr = FourLetter(hp, "srvr", timeout_ms);
  if (srvr.find("not in the whitelist") != std::string::npos ||
      srvr.find("not executed") != std::string::npos)
    throw OpError{
        Format("status %s: the server refuses four-letter words (ZooKeeper needs "
               "4lw.commands.whitelist=srvr,mntr)",
               hp.text().c_str())};
  auto s = ParseFields(srvr, ':');
  std::map<std::string, std::string> m;
  try {
    m = ParseFields(FourLetter(hp, "mntr", timeout_ms), '\t');
  } catch (const OpError&) {
    // mntr is optional: srvr alone gives the essentials.
  }
  auto pick = [&](const char* srvr_key, const char* mntr_key) -> std::string {
    if (srvr_key && s.count(srvr_key)) return s[srvr_key];
    if (mntr_key && m.count(mntr_key)) return m[mntr_key];
    return "";
  };
  std::string version;
  for (const auto& [k, v] : s)
    if (k.size() >= 8 && k.compare(k.size() - 8, 8, " version") == 0) version = v;
  if (version.empty()) version = pick(nullptr, "zk_version");
  std::vector<std::pair<std::string, std::string>> rows;
  rows.push_back({"server", hp.text()});
  rows.push_back({"mode", pick("Mode", "zk_server_state")});
  rows.push_back({"version", version});
  std::string zxid = pick("Zxid", nullptr);
  if (!zxid.empty()) {
    unsigned long long z = strtoull(zxid.c_str(), nullptr, 0);
    zxid += Format(" (epoch %llu, counter %llu)", z >> 32, z & 0xffffffffull);
  }
  rows.push_back({"zxid", zxid});
  rows.push_back({"nodes", pick("Node count", "zk_znode_count")});
  rows.push_back({"outstanding", pick("Outstanding", "zk_outstanding_requests")});
  std::string lat = pick("Latency min/avg/max", nullptr);
  if (!lat.empty()) {
    std::replace(lat.begin(), lat.end(), '/', ' ');
    char mn[32], av[32], mx[32];
    if (sscanf(lat.c_str(), "%31s %31s %31s", mn, av, mx) == 3)
      lat = Format("min %s / avg %s / max %s ms", mn, av, mx);
  } else if (m.count("zk_avg_latency")) {
    lat = Format("min %s / avg %s / max %s ms", m["zk_min_latency"].c_str(),
                 m["zk_avg_latency"].c_str(), m["zk_max_latency"].c_str());
  }
  rows.push_back({"latency", lat});
  rows.push_back({"connections", pick("Connections", "zk_num_alive_connections")});
  rows.push_back({"sessions", pick(nullptr, "zk_global_sessions")});
  rows.push_back({"watches", pick(nullptr, "zk_watch_count")});
  rows.push_back({"ephemerals", pick(nullptr, "zk_ephemerals_count")});
  std::string size = pick(nullptr, "zk_approximate_data_size");
  rows.push_back({"data size", size.empty() ? "" : size + " bytes"});
  if (m.count("zk_synced_followers")) {
    // ZooKeeper 3.5+ says zk_learners; 3.4 said zk_followers.
    std::string all = m.count("zk_learners") ? m["zk_learners"] : m["zk_followers"];
    rows.push_back({"followers", m["zk_synced_followers"] + " synced of " + all});
  }
  std::string out;
  for (const auto& [k, v] : rows)
    if (!v.empty()) out += Format("%-13s%s\n", (k + ":").c_str(), v.c_str());
  WriteOut(out.data(), out.size());
}

// ---------------------------------------------------------------------------------------------
// Command table and help

struct Command {
  const char* name;
  const char* usage;
  const char* help;
  std::vector<OptSpec> opts;
  size_t min_pos, max_pos;
  std::function<int(Session&, const Args&)> run;  // null: runs without a session (status)
  bool path_may_end_in_slash = false;
  std::function<void(const Args&)> check = nullptr;  // usage checks before connecting
};

const char* kGlobalHelp =
    "usage: quorumfs [-s HOST:PORT[,HOST:PORT...][/CHROOT]] [-t TIMEOUT_MS] [-v] COMMAND ...\n"
    "\n"
    "A command-line client for quorumfs and other ZooKeeper-protocol servers.\n"
    "\n"
    "Options:\n"
    "  -s, --server LIST   servers to use (default $QUORUMFS_SERVER, else 127.0.0.1:2181)\n"
    "  -t, --timeout MS    how long to wait for a connection (default 5000)\n"
    "  -v, --verbose       show the ZooKeeper client library's log on stderr (-v -v: debug)\n"
    "  -h, --help          this help; 'quorumfs help COMMAND' or 'COMMAND --help' for a command\n"
    "\n"
    "Commands:\n"
    "  ls [-s] PATH                 list children, sorted\n"
    "  get [-s] PATH                print a node's data exactly as stored\n"
    "  set [-v VERSION] PATH [DATA] replace a node's data (DATA or stdin)\n"
    "  create [-e] [-s] [--ttl MS] [--container] PATH [DATA]\n"
    "                               create a node and print its path\n"
    "  delete [-v VERSION] [-r] PATH\n"
    "                               delete a node (-r: with its subtree)\n"
    "  stat PATH                    print a node's Stat\n"
    "  watch [-r] PATH              print change events until Ctrl-C\n"
    "  status                       server mode, zxid, counts and latency (srvr/mntr)\n"
    "\n"
    "Offline commands (a member's or ZooKeeper's files; no server):\n"
    "  log-dump [--data] DIR|FILE   print and check a txn log (dataLogDir or one segment)\n"
    "  snapshot-dump [--data] FILE  print and check a snapshot file\n"
    "  import-zookeeper ZK_DATA_DIR QFS_DATA_DIR\n"
    "                               convert a stopped ZooKeeper's data (docs/migration.md)\n"
    "\n"
    "Exit status: 0 success, 1 the operation failed, 2 bad usage.\n";

const std::vector<Command>& Commands() {
  static const std::vector<Command> cmds = {
      {"ls",
       "ls [-s] PATH",
       "Lists the children of PATH, one per line, sorted bytewise.\n"
       "  -s  also print PATH's Stat after a blank line\n",
       {{"-s", false}},
       1,
       1,
       CmdLs},
      {"get",
       "get [-s] PATH",
       "Writes PATH's data to stdout exactly, with no added newline (binary-safe).\n"
       "  -s  print PATH's Stat to stderr\n",
       {{"-s", false}},
       1,
       1,
       CmdGet},
      {"set",
       "set [-v VERSION] PATH [DATA]",
       "Replaces PATH's data with DATA, or with all of stdin when DATA is absent.\n"
       "  -v VERSION  only if the node's dataVersion is VERSION (-1: any)\n"
       "Use '--' before DATA that starts with '-'.\n",
       {{"-v", true}},
       1,
       2,
       CmdSet,
       false,
       [](const Args& a) { Version("set", a); }},
      {"create",
       "create [-e] [-s] [--ttl MS] [--container] PATH [DATA]",
       "Creates PATH with DATA (default empty) and an open ACL; prints the created path,\n"
       "which for sequential nodes carries the server-assigned suffix.\n"
       "  -e           ephemeral: removed when this command's session ends, i.e. at once\n"
       "  -s           sequential: PATH gets a 10-digit suffix; PATH may end with '/'\n"
       "  --ttl MS     persistent node removed by the server once it has had no children\n"
       "               and no changes for MS ms (ZooKeeper needs extendedTypesEnabled=true)\n"
       "  --container  container node: removed by the server once its last child is gone\n"
       "Use '--' before DATA that starts with '-'.\n",
       {{"-e", false}, {"-s", false}, {"--ttl", true}, {"--container", false}},
       1,
       2,
       CmdCreate,
       true,
       CheckCreate},
      {"delete",
       "delete [-v VERSION] [-r] PATH",
       "Deletes PATH.\n"
       "  -v VERSION  only if the node's dataVersion is VERSION (checked before -r deletes\n"
       "              anything)\n"
       "  -r          delete the whole subtree, children first\n",
       {{"-v", true}, {"-r", false}},
       1,
       1,
       CmdDelete,
       false,
       [](const Args& a) { Version("delete", a); }},
      {"stat",
       "stat PATH",
       "Prints PATH's Stat: the 11 fields, one 'name: value' per line, zxids in hex,\n"
       "times in ms since the epoch with the UTC time.\n",
       {},
       1,
       1,
       CmdStat},
      {"watch",
       "watch [-r] PATH",
       "Prints one line per event, 'EventType PATH', until Ctrl-C (exit 0), e.g.\n"
       "'NodeDataChanged /a'. PATH need not exist yet.\n"
       "  (no -r)  data and child events of PATH: NodeCreated, NodeDeleted,\n"
       "           NodeDataChanged, NodeChildrenChanged\n"
       "  -r       NodeCreated, NodeDeleted and NodeDataChanged for PATH and every node\n"
       "           below it\n"
       "The ZooKeeper 3.8 C client this is built on has no persistent watches, so one-shot\n"
       "watches on data and children are re-armed after each event. Events are worked out\n"
       "from the node's versions, so writes made while a watch is being re-armed are still\n"
       "counted; with -r, a node created and deleted again within that moment goes unseen.\n",
       {{"-r", false}},
       1,
       1,
       CmdWatch},
      {"status",
       "status",
       "For each server in the list: mode (standalone/leader/follower), version, last zxid,\n"
       "node count, outstanding requests, latency, connections, sessions and watches, from\n"
       "the srvr and mntr four-letter words over a plain TCP connection.\n",
       {},
       0,
       0,
       nullptr},
  };
  return cmds;
}

const Command* FindCommand(const std::string& name) {
  for (const auto& c : Commands())
    if (name == c.name) return &c;
  return nullptr;
}

void PrintCommandHelp(const Command& c, FILE* f) {
  fprintf(f, "usage: quorumfs [GLOBAL OPTIONS] %s\n\n%s", c.usage, c.help);
}

int RunStatus(const std::string& servers, int timeout_ms) {
  int rc = 0;
  bool first = true;
  for (const auto& hp : SplitServers(servers)) {
    if (!first) WriteOut("\n", 1);
    first = false;
    try {
      PrintServerStatus(hp, timeout_ms);
    } catch (const OpError& e) {
      fflush(stdout);
      fprintf(stderr, "quorumfs: %s\n", e.msg.c_str());
      rc = kExitOp;
    }
  }
  return rc;
}

int Main(int argc, char** argv) {
  std::vector<std::string> args(argv + 1, argv + argc);
  const char* env = getenv("QUORUMFS_SERVER");
  std::string servers = env && *env ? env : kDefaultServer;
  int timeout_ms = 5000, verbose = 0;
  size_t i = 0;
  for (; i < args.size(); i++) {
    const std::string& t = args[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= args.size()) throw UsageError{"", t + " needs a value"};
      return args[++i];
    };
    if (t == "-h" || t == "--help") {
      fputs(kGlobalHelp, stdout);
      return 0;
    } else if (t == "-s" || t == "--server") {
      servers = value();
    } else if (t == "-t" || t == "--timeout") {
      timeout_ms = static_cast<int>(ParseInt("", "TIMEOUT_MS", value(), 1, 3600000));
    } else if (t == "-v" || t == "--verbose") {
      verbose++;
    } else if (t == "--") {
      i++;
      break;
    } else if (!t.empty() && t[0] == '-') {
      throw UsageError{"", "unknown option '" + t + "'"};
    } else {
      break;
    }
  }
  if (i >= args.size()) throw UsageError{"", "no command given"};
  std::string name = args[i++];
  std::vector<std::string> rest(args.begin() + static_cast<long>(i), args.end());
  if (qfs::cli::IsDumpCommand(name)) return qfs::cli::RunDump(name, rest);
  if (name == "import-zookeeper") return qfs::zkimport::RunImportZookeeper(rest);  // offline
  if (name == "help" && rest.size() == 1 && rest[0] == "import-zookeeper")
    return qfs::zkimport::RunImportZookeeper({"--help"});
  if (name == "help") {
    if (rest.empty()) {
      fputs(kGlobalHelp, stdout);
      return 0;
    }
    if (qfs::cli::IsDumpCommand(rest[0])) return qfs::cli::RunDump(rest[0], {"--help"});
    const Command* c = FindCommand(rest[0]);
    if (!c) throw UsageError{"", "unknown command '" + rest[0] + "'"};
    PrintCommandHelp(*c, stdout);
    return 0;
  }
  const Command* c = FindCommand(name);
  if (!c) throw UsageError{"", "unknown command '" + name + "'"};
  for (const auto& r : rest) {
    if (r == "--") break;
    if (r == "-h" || r == "--help") {
      PrintCommandHelp(*c, stdout);
      return 0;
    }
  }
  Args a = ParseArgs(name, rest, c->opts);
  if (a.pos.size() < c->min_pos) throw UsageError{name, "missing PATH"};
  if (a.pos.size() > c->max_pos) throw UsageError{name, "too many arguments"};
  if (!a.pos.empty()) CheckPath(name, a.pos[0], c->path_may_end_in_slash);
  if (c->check) c->check(a);

  if (!c->run) return RunStatus(servers, timeout_ms);

  // The C client logs connection chatter to stderr by default; a CLI stays quiet.
  static FILE* devnull = fopen("/dev/null", "w");
  if (verbose == 0) {
    zoo_set_debug_level(ZOO_LOG_LEVEL_ERROR);
    if (devnull) zoo_set_log_stream(devnull);
  } else {
    zoo_set_debug_level(verbose > 1 ? ZOO_LOG_LEVEL_DEBUG : ZOO_LOG_LEVEL_INFO);
  }
  Session s(servers, timeout_ms);
  return c->run(s, a);
}

}  // namespace

int main(int argc, char** argv) {
  try {
    int rc = Main(argc, argv);
    if (fflush(stdout) != 0) {
      fprintf(stderr, "quorumfs: write: %s\n", strerror(errno));
      return kExitOp;
    }
    return rc;
  } catch (const OpError& e) {
    fflush(stdout);
    fprintf(stderr, "quorumfs: %s\n", e.msg.c_str());
    return kExitOp;
  } catch (const UsageError& e) {
    fprintf(stderr, "quorumfs: %s%s%s\n", e.cmd.c_str(), e.cmd.empty() ? "" : ": ", e.msg.c_str());
    if (const Command* c = e.cmd.empty() ? nullptr : FindCommand(e.cmd)) {
      fprintf(stderr, "usage: quorumfs [GLOBAL OPTIONS] %s\nTry 'quorumfs %s --help'.\n", c->usage,
              c->name);
    } else {
      fprintf(stderr, "Try 'quorumfs --help'.\n");
    }
    return kExitUsage;
  }
}
