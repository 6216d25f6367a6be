// zkbench: load generator for ZooKeeper-protocol servers, on the ZooKeeper C client's async API.
// Every client is its own session (zhandle) and keeps OUTSTANDING requests in flight; latency is
// measured per request from the call to its completion.
#include <signal.h>
#include <time.h>
#include <unistd.h>
#include <zookeeper/zookeeper.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdarg>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace {

constexpr int kSessionTimeoutMs = 10000;

enum class Workload { kCreate, kSet, kGet, kMixed, kEphemeral, kSession, kFill };

struct Options {
  std::string servers = "127.0.0.1:2181";
  Workload workload = Workload::kGet;
  std::string workload_name = "get";
  int clients = 1;
  int outstanding = 1;
  double seconds = 10;
  double warmup = 1;
  int bytes = 1024;
  int keys = 1000;
  int connect_ms = 10000;
  int verbose = 0;
};

enum Phase : int { kWarmup = 0, kMeasure = 1, kStop = 2 };
std::atomic<int> g_phase{kWarmup};
volatile sig_atomic_t g_interrupted = 0;

void OnSignal(int) {
  g_interrupted = 1;
  g_phase.store(kStop);
}

int64_t NowNs() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<int64_t>(ts.tv_sec) * 1000000000 + ts.tv_nsec;
}

[[noreturn]] void Die(const char* fmt, ...) __attribute__((format(printf, 1, 2)));
void Die(const char* fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  fputs("zkbench: ", stderr);
  vfprintf(stderr, fmt, ap);
  fputc('\n', stderr);
  va_end(ap);
  exit(1);
}

// Thread-safe key choice: a hash of a per-client counter, no shared RNG state.
uint64_t Mix(uint64_t x) {
  x += 0x9e3779b97f4a7c15ull;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}

// Connection state of one handle, fed by its session watcher.
struct Conn {
  std::mutex mu;
  std::condition_variable cv;
  int state = 0;
};

void ConnWatcher(zhandle_t*, int type, int state, const char*, void* ctx) {
  if (type != ZOO_SESSION_EVENT) return;
  auto* c = static_cast<Conn*>(ctx);
  std::lock_guard<std::mutex> l(c->mu);
  c->state = state;
  c->cv.notify_all();
}

zhandle_t* Connect(const std::string& servers, Conn* conn, int wait_ms) {
  zhandle_t* zh = zookeeper_init(servers.c_str(), ConnWatcher, kSessionTimeoutMs, nullptr, conn, 0);
  if (!zh) return nullptr;
  std::unique_lock<std::mutex> l(conn->mu);
  if (!conn->cv.wait_for(l, std::chrono::milliseconds(wait_ms),
                         [&] { return conn->state == ZOO_CONNECTED_STATE; })) {
    l.unlock();
    zookeeper_close(zh);
    return nullptr;
  }
  return zh;
}

// Figures one client gathers; only its completion thread writes them while the run is on.
struct Stats {
  std::vector<uint32_t> lat_us;
  uint64_t ops = 0;
  uint64_t errors = 0;
  std::map<int, uint64_t> error_codes;
};

// Sets the in-flight count and lets a waiter see it drop to zero.
struct InFlight {
  std::mutex mu;
  std::condition_variable cv;
  int n = 0;
  void Add() {
    std::lock_guard<std::mutex> l(mu);
    n++;
  }
  void Done() {
    std::lock_guard<std::mutex> l(mu);
    if (--n == 0) cv.notify_all();
  }
  bool WaitZero(int ms) {
    std::unique_lock<std::mutex> l(mu);
    return cv.wait_for(l, std::chrono::milliseconds(ms), [&] { return n == 0; });
  }
};

struct Client;

struct Req {
  Client* c;
  int64_t start_ns;
};

struct Client {
  int id = 0;
  const Options* opt = nullptr;
  std::string root, dir;  // dir: this client's parent for create/ephemeral
  const std::string* value = nullptr;
  zhandle_t* zh = nullptr;
  Conn conn;
  std::atomic<uint64_t> seq{0};          // requests issued: names created nodes, picks keys
  std::atomic<uint64_t> sync_errors{0};  // calls refused at once (their window slot is lost)
  InFlight inflight;
  Stats stats;
};

void Issue(Client* c);

// Runs on the client's completion thread.
// What completes inside the measured window counts, whenever it started: the warm-up keeps cold
// starts out, and long operations are not lost at the window's edges.
void Complete(Req* r, int rc) {
  Client* c = r->c;
  int64_t end = NowNs();
  if (g_phase.load() == kMeasure) {
    if (rc == ZOK) {
      c->stats.ops++;
      c->stats.lat_us.push_back(static_cast<uint32_t>((end - r->start_ns) / 1000));
    } else {
      c->stats.errors++;
      c->stats.error_codes[rc]++;
    }
  }
  delete r;
  // Without a connection every call fails at once: back off instead of spinning.
  if (rc == ZCONNECTIONLOSS || rc == ZOPERATIONTIMEOUT)
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  if (g_phase.load() != kStop) Issue(c);
  c->inflight.Done();
}

void StringDone(int rc, const char*, const void* data) {
  Complete(static_cast<Req*>(const_cast<void*>(data)), rc);
}
void StatDone(int rc, const Stat*, const void* data) {
  Complete(static_cast<Req*>(const_cast<void*>(data)), rc);
}
void DataDone(int rc, const char*, int, const Stat*, const void* data) {
  Complete(static_cast<Req*>(const_cast<void*>(data)), rc);
}

std::string KeyPath(const std::string& root, uint64_t k) {
  return root + "/k" + std::to_string(k);
}

// Starts one request; the window slot it fills is released by its completion.
void Issue(Client* c) {
  const Options& o = *c->opt;
  auto* r = new Req{c, NowNs()};
  c->inflight.Add();
  uint64_t n = c->seq.fetch_add(1);
  int rc = ZBADARGUMENTS;
  const std::string& v = *c->value;
  switch (o.workload) {
    case Workload::kCreate:
    case Workload::kEphemeral: {
      std::string path = c->dir + "/" + std::to_string(n);
      rc = zoo_acreate(
          c->zh, path.c_str(), v.data(), static_cast<int>(v.size()), &ZOO_OPEN_ACL_UNSAFE,
          o.workload == Workload::kEphemeral ? ZOO_EPHEMERAL : ZOO_PERSISTENT, StringDone, r);
      break;
    }
    case Workload::kFill:  // runs before any client exists
    case Workload::kSet:
    case Workload::kGet:
    case Workload::kMixed: {
      uint64_t h = Mix((static_cast<uint64_t>(c->id) << 40) ^ n);
      std::string path = KeyPath(c->root, h % static_cast<uint64_t>(o.keys));
      bool set =
          o.workload == Workload::kSet || (o.workload == Workload::kMixed && (h >> 32) % 10 == 0);
      if (set) {
        rc = zoo_aset(c->zh, path.c_str(), v.data(), static_cast<int>(v.size()), -1, StatDone, r);
      } else {
        rc = zoo_aget(c->zh, path.c_str(), 0, DataDone, r);
      }
      break;
    }
    case Workload::kSession:
      rc = ZBADARGUMENTS;  // sessions run in RunSessionClient, never through the window
      break;
  }
  if (rc != ZOK) {
    // The client refused the call (closing or expired handle): the slot stays empty rather
    // than spinning on a dead handle.
    delete r;
    c->sync_errors.fetch_add(1);
    c->inflight.Done();
  }
}

// ----- Windowed helper for setup and cleanup (not measured).

struct Batch {
  std::mutex mu;
  std::condition_variable cv;
  int inflight = 0;
  uint64_t failed = 0;
  int first_error = ZOK;
};

void BatchDone(Batch* b, int rc, bool nonode_ok, bool exists_ok) {
  std::lock_guard<std::mutex> l(b->mu);
  if (rc != ZOK && !(nonode_ok && rc == ZNONODE) && !(exists_ok && rc == ZNODEEXISTS)) {
    b->failed++;
    if (b->first_error == ZOK) b->first_error = rc;
  }
  b->inflight--;
  b->cv.notify_all();
}

struct BatchReq {
  Batch* b;
};

void BatchVoidDone(int rc, const void* data) {
  auto* r = static_cast<const BatchReq*>(data);
  BatchDone(r->b, rc, true, false);
  delete r;
}
void BatchStringDone(int rc, const char*, const void* data) {
  auto* r = static_cast<const BatchReq*>(data);
  BatchDone(r->b, rc, false, true);
  delete r;
}

// Creates (value != nullptr) or deletes each path, `window` at a time. Returns the first error.
int RunBatch(zhandle_t* zh, const std::vector<std::string>& paths, const std::string* value,
             int window, uint64_t* failed) {
  Batch b;
  for (const auto& p : paths) {
    {
      std::unique_lock<std::mutex> l(b.mu);
      if (!b.cv.wait_for(l, std::chrono::seconds(30), [&] { return b.inflight < window; })) {
        if (b.first_error == ZOK) b.first_error = ZOPERATIONTIMEOUT;
        break;
      }
      b.inflight++;
    }
    auto* r = new BatchReq{&b};
    int rc = value ? zoo_acreate(zh, p.c_str(), value->data(), static_cast<int>(value->size()),
                                 &ZOO_OPEN_ACL_UNSAFE, ZOO_PERSISTENT, BatchStringDone, r)
                   : zoo_adelete(zh, p.c_str(), -1, BatchVoidDone, r);
    if (rc != ZOK) {
      delete r;
      BatchDone(&b, rc, false, false);
    }
  }
  std::unique_lock<std::mutex> l(b.mu);
  // Outstanding completions point at `b`: wait for all of them, bounded.
  if (!b.cv.wait_for(l, std::chrono::seconds(60), [&] { return b.inflight == 0; })) {
    fprintf(stderr, "zkbench: %d setup/cleanup requests never completed\n", b.inflight);
    _exit(1);  // completions would touch a dead stack frame
  }
  if (failed) *failed = b.failed;
  return b.first_error;
}

// Deletes `path` and everything below it: leaves in windowed batches, then their parents.
int DeleteTree(zhandle_t* zh, const std::string& path) {
  String_vector v{};
  int rc = zoo_get_children(zh, path.c_str(), 0, &v);
  if (rc == ZNONODE) return ZOK;
  if (rc != ZOK) return rc;
  std::vector<std::string> kids;
  for (int i = 0; i < v.count; i++) kids.push_back(path + "/" + v.data[i]);
  deallocate_String_vector(&v);
  std::vector<std::string> leaves;
  for (const auto& k : kids) {
    Stat st{};
    rc = zoo_exists(zh, k.c_str(), 0, &st);
    if (rc == ZOK && st.numChildren > 0) {
      rc = DeleteTree(zh, k);
      if (rc != ZOK) return rc;
    } else if (rc == ZOK) {
      leaves.push_back(k);
    } else if (rc != ZNONODE) {
      return rc;
    }
  }
  rc = RunBatch(zh, leaves, nullptr, 256, nullptr);
  if (rc != ZOK) return rc;
  rc = zoo_delete(zh, path.c_str(), -1);
  return rc == ZNONODE ? ZOK : rc;
}

// ----- session workload: connect -> connected -> close, OUTSTANDING at a time per client.

struct SessionWaker {
  std::mutex mu;
  std::condition_variable cv;
};

struct SessionSlot {
  SessionWaker* w = nullptr;
  int state = 0;  // guarded by w->mu
  zhandle_t* zh = nullptr;
  int64_t start_ns = 0;
};

void SlotWatcher(zhandle_t*, int type, int state, const char*, void* ctx) {
  if (type != ZOO_SESSION_EVENT) return;
  auto* s = static_cast<SessionSlot*>(ctx);
  std::lock_guard<std::mutex> l(s->w->mu);
  s->state = state;
  s->w->cv.notify_all();
}

void RunSessionClient(Client* c) {
  const Options& o = *c->opt;
  SessionWaker w;
  std::vector<std::unique_ptr<SessionSlot>> slots;
  auto start = [&](SessionSlot* s) {
    {
      std::lock_guard<std::mutex> l(w.mu);
      s->state = 0;
    }
    s->start_ns = NowNs();
    s->zh = zookeeper_init(o.servers.c_str(), SlotWatcher, kSessionTimeoutMs, nullptr, s, 0);
    if (!s->zh) c->sync_errors.fetch_add(1);
  };
  for (int i = 0; i < o.outstanding; i++) {
    slots.push_back(std::make_unique<SessionSlot>());
    slots.back()->w = &w;
    start(slots.back().get());
  }
  while (true) {
    bool stop = g_phase.load() == kStop;
    // Pick the slots to close under the lock; close outside it (close may fire the watcher).
    std::vector<std::pair<SessionSlot*, bool>> ready;  // slot, connected
    bool open = false;
    {
      std::unique_lock<std::mutex> l(w.mu);
      auto scan = [&] {
        ready.clear();
        open = false;
        int64_t now = NowNs();
        for (auto& sp : slots) {
          SessionSlot* s = sp.get();
          if (!s->zh) continue;
          open = true;
          bool connected = s->state == ZOO_CONNECTED_STATE;
          bool failed = s->state == ZOO_EXPIRED_SESSION_STATE ||
                        s->state == ZOO_AUTH_FAILED_STATE ||
                        (now - s->start_ns) / 1000000 > o.connect_ms;
          if (connected || failed || stop) ready.push_back({s, connected});
        }
        return !ready.empty();
      };
      if (!scan() && open) {
        w.cv.wait_for(l, std::chrono::milliseconds(50));
        stop = g_phase.load() == kStop;
        scan();
      }
    }
    if (stop && !open) break;
    for (auto [s, connected] : ready) {
      zookeeper_close(s->zh);
      s->zh = nullptr;
      int64_t end = NowNs();
      if (g_phase.load() == kMeasure) {
        if (connected) {
          c->stats.ops++;
          c->stats.lat_us.push_back(static_cast<uint32_t>((end - s->start_ns) / 1000));
        } else {
          c->stats.errors++;
          c->stats.error_codes[ZCONNECTIONLOSS]++;
        }
      }
    }
    if (g_phase.load() != kStop)
      for (auto& sp : slots)
        if (!sp->zh) start(sp.get());
  }
}

// ----- main

void Usage(FILE* f) {
  fputs(
      "usage: zkbench -s HOST:PORT[,...] -w WORKLOAD [-c CLIENTS] [-o OUTSTANDING] [-d SECONDS]\n"
      "               [-b BYTES] [-n KEYS] [--warmup SECONDS] [-v]\n"
      "\n"
      "Workloads: create (unique persistent nodes), set and get (on KEYS pre-created nodes),\n"
      "mixed (90% get, 10% set), ephemeral (create ephemeral nodes), session (each op is\n"
      "connect -> connected -> close), fill (CLIENTS sessions create KEYS nodes of BYTES under\n"
      "/zkbench-fill-<pid>, OUTSTANDING in flight each, and keep them: prints the rate).\n"
      "Each client is one session keeping OUTSTANDING async requests in flight. Setup\n"
      "(root /zkbench-<pid>, keys) and a warm-up (default 1 s) are not measured; everything\n"
      "created is deleted at the end.\n"
      "Defaults: -s 127.0.0.1:2181 -c 1 -o 1 -d 10 -b 1024 -n 1000. -v: the client library's\n"
      "warnings on stderr (-v -v: debug).\n"
      "Prints one summary line and one 'RESULT key=value ...' line.\n",
      f);
}

Options ParseOptions(int argc, char** argv) {
  Options o;
  auto need = [&](int& i) -> const char* {
    if (i + 1 >= argc) {
      fprintf(stderr, "zkbench: %s needs a value\n", argv[i]);
      Usage(stderr);
      exit(2);
    }
    return argv[++i];
  };
  auto num = [&](const char* flag, const char* s, double lo, double hi) {
    char* end = nullptr;
    double v = strtod(s, &end);
    if (!*s || *end || v < lo || v > hi) {
      fprintf(stderr, "zkbench: %s must be a number in [%g, %g], not '%s'\n", flag, lo, hi, s);
      exit(2);
    }
    return v;
  };
  for (int i = 1; i < argc; i++) {
    std::string a = argv[i];
    if (a == "-h" || a == "--help") {
      Usage(stdout);
      exit(0);
    } else if (a == "-s") {
      o.servers = need(i);
    } else if (a == "-w") {
      o.workload_name = need(i);
      static const std::map<std::string, Workload> names = {{"create", Workload::kCreate},
                                                            {"set", Workload::kSet},
                                                            {"get", Workload::kGet},
                                                            {"mixed", Workload::kMixed},
                                                            {"ephemeral", Workload::kEphemeral},
                                                            {"session", Workload::kSession},
                                                            {"fill", Workload::kFill}};
      auto it = names.find(o.workload_name);
      if (it == names.end()) {
        fprintf(stderr, "zkbench: unknown workload '%s'\n", o.workload_name.c_str());
        exit(2);
      }
      o.workload = it->second;
    } else if (a == "-c") {
      o.clients = static_cast<int>(num("-c", need(i), 1, 1024));
    } else if (a == "-o") {
      o.outstanding = static_cast<int>(num("-o", need(i), 1, 10000));
    } else if (a == "-d") {
      o.seconds = num("-d", need(i), 0.1, 86400);
    } else if (a == "--warmup") {
      o.warmup = num("--warmup", need(i), 0, 3600);
    } else if (a == "-b") {
      o.bytes = static_cast<int>(num("-b", need(i), 0, 1 << 20));
    } else if (a == "-n") {
      o.keys = static_cast<int>(num("-n", need(i), 1, 10000000));
    } else if (a == "-v") {
      o.verbose++;
    } else {
      fprintf(stderr, "zkbench: unknown argument '%s'\n", a.c_str());
      Usage(stderr);
      exit(2);
    }
  }
  return o;
}

double Percentile(const std::vector<uint32_t>& sorted, double q) {
  if (sorted.empty()) return 0;
  size_t idx = static_cast<size_t>(q * static_cast<double>(sorted.size() - 1) + 0.5);
  return sorted[std::min(idx, sorted.size() - 1)] / 1000.0;
}

}  // namespace

int main(int argc, char** argv) {
  Options o = ParseOptions(argc, argv);
  static FILE* devnull = fopen("/dev/null", "w");
  if (o.verbose == 0) {
    zoo_set_debug_level(ZOO_LOG_LEVEL_ERROR);
    if (devnull) zoo_set_log_stream(devnull);
  } else {
    zoo_set_debug_level(o.verbose > 1 ? ZOO_LOG_LEVEL_DEBUG : ZOO_LOG_LEVEL_WARN);
  }
  struct sigaction sa {};
  sa.sa_handler = OnSignal;
  sigaction(SIGINT, &sa, nullptr);
  sigaction(SIGTERM, &sa, nullptr);

  const std::string value(static_cast<size_t>(o.bytes), 'x');
  if (o.workload == Workload::kFill) {
    // Loads a tree and leaves it there (for catch-up measurements): CLIENTS sessions each
    // create their share of KEYS nodes, OUTSTANDING in flight per session; only the rate is
    // reported.
    const std::string froot = "/zkbench-fill-" + std::to_string(getpid());
    Conn fconn;
    zhandle_t* zh = Connect(o.servers, &fconn, o.connect_ms);
    if (!zh) Die("cannot reach the server at %s", o.servers.c_str());
    int frc =
        zoo_create(zh, froot.c_str(), "", 0, &ZOO_OPEN_ACL_UNSAFE, ZOO_PERSISTENT, nullptr, 0);
    if (frc != ZOK) Die("create %s: %s", froot.c_str(), zerror(frc));
    zookeeper_close(zh);
    const int64_t t0 = NowNs();
    std::atomic<uint64_t> failed{0};
    std::atomic<int> first_rc{ZOK};
    std::vector<std::thread> threads;
    for (int c = 0; c < o.clients; c++) {
      threads.emplace_back([&, c] {
        auto conn = std::make_unique<Conn>();
        zhandle_t* h = Connect(o.servers, conn.get(), o.connect_ms);
        if (!h) {
          first_rc.store(ZCONNECTIONLOSS);
          return;
        }
        constexpr int kChunk = 50000;
        for (int base = c; base < o.keys && !g_interrupted; base += kChunk * o.clients) {
          std::vector<std::string> paths;
          for (int k = base; k < o.keys && paths.size() < kChunk; k += o.clients) {
            char name[32];
            snprintf(name, sizeof name, "/n%09d", k);
            paths.push_back(froot + name);
          }
          // Creates are idempotent here (an existing node counts as created), so a chunk with
          // failures (connection loss under load) is simply sent again.
          int rc = ZOK;
          uint64_t f = 0;
          for (int attempt = 0; attempt < 5; attempt++) {
            f = 0;
            rc = RunBatch(h, paths, &value, o.outstanding, &f);
            if (f == 0 && rc == ZOK) break;
            fprintf(stderr, "zkbench: fill: %llu of %zu creates failed (first: %s); again\n",
                    static_cast<unsigned long long>(f), paths.size(), zerror(rc));
            std::this_thread::sleep_for(std::chrono::seconds(1));
          }
          failed += f;
          if (f != 0) {
            first_rc.store(rc);
            break;
          }
        }
        zookeeper_close(h);
      });
    }
    for (auto& t : threads) t.join();
    const double secs = static_cast<double>(NowNs() - t0) / 1e9;
    printf(
        "fill: %d nodes of %d B under %s by %d sessions in %.2f s (%.0f creates/s), %llu "
        "failed\n",
        o.keys, o.bytes, froot.c_str(), o.clients, secs, o.keys / secs,
        static_cast<unsigned long long>(failed.load()));
    printf("RESULT workload=fill root=%s nodes=%d seconds=%.3f ops_per_sec=%.0f errors=%llu\n",
           froot.c_str(), o.keys, secs, o.keys / secs,
           static_cast<unsigned long long>(failed.load()));
    return first_rc.load() == ZOK && failed.load() == 0 ? 0 : 1;
  }
  const std::string root = "/zkbench-" + std::to_string(getpid());
  const bool windowed = o.workload != Workload::kSession;
  const bool per_client_dir = o.workload == Workload::kCreate || o.workload == Workload::kEphemeral;
  const bool keyed = o.workload == Workload::kSet || o.workload == Workload::kGet ||
                     o.workload == Workload::kMixed;

  // Setup on an admin session.
  Conn admin_conn;
  zhandle_t* admin = Connect(o.servers, &admin_conn, o.connect_ms);
  if (!admin)
    Die("cannot reach the server at %s (tried for %d ms)", o.servers.c_str(), o.connect_ms);
  int rc = zoo_create(admin, root.c_str(), "", 0, &ZOO_OPEN_ACL_UNSAFE, ZOO_PERSISTENT, nullptr, 0);
  if (rc != ZOK) {
    zookeeper_close(admin);
    Die("create %s: %s", root.c_str(), zerror(rc));
  }
  std::vector<std::unique_ptr<Client>> clients;
  for (int i = 0; i < o.clients; i++) {
    auto c = std::make_unique<Client>();
    c->id = i;
    c->opt = &o;
    c->root = root;
    c->dir = root + "/c" + std::to_string(i);
    c->value = &value;
    clients.push_back(std::move(c));
  }
  // Removes everything under root; complains once if it cannot.
  auto cleanup_admin = [&] {
    int drc = DeleteTree(admin, root);
    if (drc != ZOK)
      fprintf(stderr, "zkbench: cleanup of %s incomplete: %s\n", root.c_str(), zerror(drc));
    zookeeper_close(admin);
    return drc == ZOK;
  };
  std::vector<std::string> keys, dirs;
  if (keyed)
    for (int k = 0; k < o.keys; k++) keys.push_back(KeyPath(root, static_cast<uint64_t>(k)));
  if (per_client_dir)
    for (auto& c : clients) dirs.push_back(c->dir);
  const std::string empty;
  rc = RunBatch(admin, keys, &value, 256, nullptr);
  if (rc == ZOK) rc = RunBatch(admin, dirs, &empty, 256, nullptr);
  if (rc != ZOK) {
    cleanup_admin();
    Die("setup under %s failed: %s", root.c_str(), zerror(rc));
  }

  if (windowed) {
    for (auto& c : clients) {
      c->zh = Connect(o.servers, &c->conn, o.connect_ms);
      if (!c->zh) {
        for (auto& d : clients)
          if (d->zh) zookeeper_close(d->zh);
        cleanup_admin();
        Die("client %d cannot reach the server at %s", c->id, o.servers.c_str());
      }
    }
  }

  // Run: warm-up, then the measured window.
  std::vector<std::thread> session_threads;
  g_phase.store(kWarmup);
  if (windowed) {
    for (auto& c : clients)
      for (int i = 0; i < o.outstanding; i++) Issue(c.get());
  } else {
    for (auto& c : clients) session_threads.emplace_back(RunSessionClient, c.get());
  }
  auto sleep_s = [&](double s) {
    int64_t until = NowNs() + static_cast<int64_t>(s * 1e9);
    while (!g_interrupted && NowNs() < until)
      std::this_thread::sleep_for(std::chrono::milliseconds(
          std::min<int64_t>(50, std::max<int64_t>(1, (until - NowNs()) / 1000000))));
  };
  sleep_s(o.warmup);
  int64_t t0 = NowNs();
  if (!g_interrupted) g_phase.store(kMeasure);
  // Lets a driver sample server CPU over the measured window only (bench/README).
  fprintf(stderr, "MEASURE start\n");
  fflush(stderr);
  sleep_s(o.seconds);
  int64_t t1 = NowNs();
  g_phase.store(kStop);
  fprintf(stderr, "MEASURE end\n");
  fflush(stderr);

  // Drain: completions stop re-issuing once the phase is kStop.
  bool drained = true;
  for (auto& c : clients)
    if (windowed && !c->inflight.WaitZero(30000)) drained = false;
  for (auto& t : session_threads) t.join();
  if (!drained) {
    fprintf(stderr, "zkbench: requests still in flight after 30 s; leaving %s behind\n",
            root.c_str());
    _exit(1);
  }

  // Created nodes are deleted by their own client, in parallel, by name (no huge listings);
  // ephemerals go with their sessions; the admin session removes the rest.
  bool cleanup_ok = true;
  if (o.workload == Workload::kCreate) {
    std::vector<std::thread> ts;
    std::atomic<bool> ok{true};
    for (auto& c : clients) {
      ts.emplace_back([&, cp = c.get()] {
        std::vector<std::string> paths;
        uint64_t n = cp->seq.load();
        for (uint64_t i = 0; i < n; i++) paths.push_back(cp->dir + "/" + std::to_string(i));
        if (RunBatch(cp->zh, paths, nullptr, std::max(o.outstanding, 64), nullptr) != ZOK)
          ok = false;
      });
    }
    for (auto& t : ts) t.join();
    cleanup_ok = ok;
  }
  for (auto& c : clients)
    if (c->zh) zookeeper_close(c->zh);
  cleanup_ok = cleanup_admin() && cleanup_ok;

  // Report.
  std::vector<uint32_t> lat;
  uint64_t ops = 0, errors = 0, refused = 0;
  uint64_t sess_min = UINT64_MAX, sess_max = 0;  // fairness across sessions
  std::map<int, uint64_t> codes;
  for (auto& c : clients) {
    lat.insert(lat.end(), c->stats.lat_us.begin(), c->stats.lat_us.end());
    ops += c->stats.ops;
    sess_min = std::min(sess_min, c->stats.ops);
    sess_max = std::max(sess_max, c->stats.ops);
    refused += c->sync_errors.load();
    errors += c->stats.errors + c->sync_errors.load();
    for (auto [code, n] : c->stats.error_codes) codes[code] += n;
  }
  std::sort(lat.begin(), lat.end());
  double secs = static_cast<double>(t1 - t0) / 1e9;
  double ops_s = secs > 0 ? static_cast<double>(ops) / secs : 0;
  double p50 = Percentile(lat, 0.50), p99 = Percentile(lat, 0.99), p999 = Percentile(lat, 0.999);
  printf(
      "%s: %d clients x %d outstanding, %d-byte values, %.1f s: %.0f ops/s, p50 %.3f ms, "
      "p99 %.3f ms, p999 %.3f ms, %llu errors\n",
      o.workload_name.c_str(), o.clients, o.outstanding, o.bytes, secs, ops_s, p50, p99, p999,
      static_cast<unsigned long long>(errors));
  printf(
      "RESULT workload=%s clients=%d outstanding=%d bytes=%d seconds=%.2f ops=%llu "
      "ops_per_sec=%.1f p50_ms=%.3f p99_ms=%.3f p999_ms=%.3f errors=%llu sess_min=%llu "
      "sess_max=%llu\n",
      o.workload_name.c_str(), o.clients, o.outstanding, o.bytes, secs,
      static_cast<unsigned long long>(ops), ops_s, p50, p99, p999,
      static_cast<unsigned long long>(errors),
      static_cast<unsigned long long>(clients.empty() ? 0 : sess_min),
      static_cast<unsigned long long>(sess_max));
  for (auto [code, n] : codes)
    fprintf(stderr, "zkbench: %llu x %s\n", static_cast<unsigned long long>(n), zerror(code));
  if (refused)
    fprintf(stderr, "zkbench: %llu requests refused by the client library\n",
            static_cast<unsigned long long>(refused));
  if (g_interrupted) fprintf(stderr, "zkbench: interrupted; figures cover the time run\n");
  return cleanup_ok ? 0 : 1;
}
