#include "daemon/replica/pipeline.h"

#include <fcntl.h>
#include <pthread.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <algorithm>
#include <asio.hpp>
#include <chrono>
#include <cinttypes>
#include <cstring>
#include <random>
#include <set>

#include "consensus/storage/file_util.h"
#include "consensus/storage/snapshot_file.h"
#include "consensus/transport/peer_transport.h"
#include "consensus/util/log.h"
#include "daemon/proto/member.pb.h"
#include "daemon/replica/request_proto.h"
#include "daemon/tree/reconfig.h"

namespace qfs {
namespace {

using Clock = std::chrono::steady_clock;
using tree::Err;

int64_t WallMs() {
  using namespace std::chrono;
  return duration_cast<milliseconds>(system_clock::now().time_since_epoch()).count();
}

constexpr int kBaseTickMs = 10;  // the core's tick; tickTime-based limits are converted to it
constexpr size_t kChunkBytes = 1 << 20;
constexpr size_t kStreamQueueBytes = 4 << 20;  // pace a snapshot stream to the peer's link
constexpr int kKeepaliveMs = 100;              // while the leader writes a snapshot for a learner

std::string Hex(uint64_t v) {
  char b[24];
  snprintf(b, sizeof b, "0x%" PRIx64, v);
  return b;
}

// Links to members a configuration dropped are closed this long after it: the COMMIT that
// tells them (and a removed leader's last messages) must get out first.
constexpr auto kUnlinkDelay = std::chrono::seconds(5);
// The configuration state file in dataDir (docs/reconfig.md).
constexpr const char* kDynamicFile = "zoo.cfg.dynamic";

txn::ServerSpec SpecOf(const Config::Server& s) {
  txn::ServerSpec o;
  o.set_id(s.id);
  o.set_observer(s.observer);
  o.set_host(s.host);
  o.set_peer_port(static_cast<uint32_t>(s.peer_port));
  o.set_election_port(static_cast<uint32_t>(s.election_port ? s.election_port : s.peer_port));
  if (s.client_port) {
    o.set_client_host(s.client_host.empty() ? "0.0.0.0" : s.client_host);
    o.set_client_port(static_cast<uint32_t>(s.client_port));
  }
  return o;
}

zab::Membership MembershipOf(const tree::ServerList& l) {
  zab::Membership m;
  for (const auto& s : l) (s.observer() ? m.observers : m.voters).push_back(s.id());
  std::sort(m.voters.begin(), m.voters.end());
  std::sort(m.observers.begin(), m.observers.end());
  return m;
}

// The servers of a reconfig txn's payload, or nullopt for any other txn.
std::optional<tree::ServerList> ReconfigServers(const std::string& payload) {
  txn::Txn t;
  if (!t.ParseFromString(payload) || t.op_case() != txn::Txn::kReconfig) return std::nullopt;
  return tree::ServerList(t.reconfig().servers().begin(), t.reconfig().servers().end());
}

// The server lines of zoo.cfg.dynamic. A member whose address this member did not know when it
// wrote the file is written `server.N=unknown:0:0:role` (Learn skips it).
Result<tree::ServerList> ParseMembers(const std::string& text) {
  tree::ServerList out;
  size_t pos = 0;
  while (pos < text.size()) {
    size_t nl = text.find('\n', pos);
    if (nl == std::string::npos) nl = text.size();
    std::string line = text.substr(pos, nl - pos);
    pos = nl + 1;
    if (line.empty()) continue;
    size_t eq = line.find('=');
    if (eq == std::string::npos) return InvalidArgument("not a server line: " + line);
    auto sv = tree::ParseServer(line.substr(0, eq), line.substr(eq + 1));
    if (!sv.ok()) {
      uint64_t id = 0;
      if (line.rfind("server.", 0) != 0 || sscanf(line.c_str() + 7, "%" SCNu64, &id) != 1 || !id)
        return sv.status();
      txn::ServerSpec u;
      u.set_id(id);
      u.set_observer(line.size() >= 9 && line.compare(line.size() - 9, 9, ":observer") == 0);
      sv = u;
    }
    out.push_back(std::move(*sv));
  }
  std::sort(out.begin(), out.end(), [](const auto& a, const auto& b) { return a.id() < b.id(); });
  return out;
}

// Cheap pre-check: a Txn payload with field 18 (reconfig, length-delimited) has its tag bytes.
bool MaybeReconfig(const std::string& payload) {
  return payload.find("\x92\x01", 0, 2) != std::string::npos;
}

}  // namespace

const char* RoleLabel(zab::Role r) {
  switch (r) {
    case zab::Role::kLooking:
      return "looking";
    case zab::Role::kFollowing:
      return "follower";
    case zab::Role::kLeading:
      return "leader";
    case zab::Role::kObserving:
      return "observer";
  }
  return "?";
}

struct Pipeline::Impl : transport::Handler, zab::LogReader {
  struct Incoming {
    tree::Request req;
    ReplyFn done;
    int sync = 0;  // 1: a sync, 2: a linearizable sync
  };
  struct Event {
    enum Type { kRequest, kPeer, kDisconnected } type = kRequest;
    Incoming in;
    uint64_t peer = 0;
    peer::PeerMessage msg;
  };
  // A request of this member's clients, from submission to reply.
  struct Pending {
    ReplyFn done;
    Reply reply;
    bool finished = false;
  };
  struct Waiting {
    Incoming in;
    Clock::time_point deadline;
  };
  // A snapshot being streamed to a learner; messages for it wait behind the stream.
  struct Transfer {
    uint64_t peer = 0;
    uint64_t zxid = 0;
    bool streaming = false;
    Clock::time_point next_keepalive{};  // state-machine thread
    std::atomic<bool> abort{false};
    std::deque<peer::PeerMessage> held;  // guarded by hold_mu
  };
  struct Receive {
    bool active = false;
    bool complete = false;
    uint64_t from = 0, zxid = 0, bytes = 0;
    int fd = -1;
    std::string path;
  };

  Pipeline* p;
  StoreOptions store_options;
  Options options;
  uint64_t self = 1;
  zab::Config zcfg;

  // The member's event loop: the peer links' sockets and timers, and the inbox below, are
  // served by the state-machine thread (docs/ensemble.md, "Threads"). Declared before `net`,
  // whose sockets live in it.
  asio::io_context io;
  std::unique_ptr<asio::executor_work_guard<asio::io_context::executor_type>> io_work;
  std::atomic<std::thread::id> loop_thread{};
  std::atomic<bool> asleep{false};  // the loop waits in the io_context: Wake() must post

  mutable std::mutex mu;
  std::condition_variable space_cv;  // wakes blocked submitters
  std::deque<Event> inbox;
  uint64_t durable = 0;
  bool log_failed = false;
  Status log_failed_why;
  bool stopping = false, stopped = false, snapshot_requested = false;
  size_t outstanding = 0;
  Stats stats;
  MemberStatus member;
  std::vector<std::pair<int, ApplyListener>> apply_listeners;
  std::vector<std::pair<int, RoleListener>> role_listeners;
  int next_handle = 1;
  std::function<void(const SessionTouches&)> touch_handler;

  std::unique_ptr<transport::PeerTransport> net;
  std::mutex hold_mu;
  std::map<uint64_t, std::shared_ptr<Transfer>> transfers;  // guarded by hold_mu
  std::vector<std::thread> streamers;

  // State-machine thread only.
  std::unique_ptr<zab::Core> core;
  std::unique_ptr<tree::Preparer> preparer;
  std::deque<Pending> pending;
  uint64_t first_tag = 1;  // tag of pending.front()
  std::deque<Waiting> waiting;
  // Txns this leader proposed and has not applied yet, by zxid (Apply uses them instead of
  // parsing the payload again). Dropped when the role changes.
  std::deque<std::pair<uint64_t, txn::Txn>> own_txns;
  std::multimap<uint64_t, uint64_t> sync_waits;  // zxid to reach -> tag
  uint64_t reported_durable = 0;
  zab::LearnerCounts published_learners;  // last copied into stats (loop thread only)
  bool log_broken = false;  // an append failed: append nothing more until the store is reloaded
  uint64_t since_snapshot = 0;
  // Txns until the next snapshot: snapCount/2 plus a random part, drawn again after every
  // snapshot, so the members of an ensemble do not all snapshot at the same txn (ZooKeeper
  // does the same). Randomness lives here, in the shell; the core stays deterministic.
  uint64_t snapshot_after = 0;
  std::mt19937_64 rng{std::random_device{}()};
  bool snapshot_wanted = false;  // RequestSnapshot()
  bool disk_full = false;        // see EnterDiskFull
  Clock::time_point next_space_check;
  Receive recv;
  Clock::time_point stop_deadline;
  Clock::time_point looking_since = Clock::now();  // when the member last went looking
  std::thread thread;

  // Dynamic membership (docs/reconfig.md), state-machine thread: every server's address as
  // last configured, the configuration state as last persisted (`have_dynamic`: from the
  // file), and links to members a configuration dropped, to close at the given time.
  std::map<uint64_t, txn::ServerSpec> book;
  zab::ConfigState config_state;
  bool have_dynamic = false;
  std::map<uint64_t, Clock::time_point> unlink_at;

  tree::ServerList ServersOf(const zab::Membership& m) const {
    tree::ServerList out;
    auto add = [&](uint64_t id, bool observer) {
      txn::ServerSpec s;
      if (auto it = book.find(id); it != book.end()) {
        s = it->second;
      } else {
        s.set_host("unknown");  // see ParseMembers
      }
      s.set_id(id);
      s.set_observer(observer);
      out.push_back(std::move(s));
    };
    for (uint64_t id : m.voters) add(id, false);
    for (uint64_t id : m.observers) add(id, true);
    std::sort(out.begin(), out.end(), [](const auto& a, const auto& b) { return a.id() < b.id(); });
    return out;
  }
  // The address to dial for a peer: its line in this member's own file when it has one (a
  // member may reach a peer through a proxy, docs/ensemble.md), else the configuration's.
  std::optional<transport::PeerAddress> DialAddress(uint64_t id) const {
    for (const auto& sv : options.config.servers)
      if (sv.id == id) return transport::PeerAddress{id, sv.host, sv.peer_port};
    auto it = book.find(id);
    if (it == book.end()) return std::nullopt;
    return transport::PeerAddress{id, it->second.host(), static_cast<int>(it->second.peer_port())};
  }
  void Learn(const tree::ServerList& l) {
    for (const auto& s : l)
      if (!s.host().empty() && s.peer_port() != 0) book[s.id()] = s;
  }
  Status LoadDynamic();
  // The members' addresses of the newest configuration applied to the tree (a snapshot holds
  // the reconfig txns below it only as /zookeeper/config's text).
  void LearnFromTree() {
    std::string text;
    tree::Stat st;
    if (p->store_->tree().GetData("/zookeeper/config", &text, &st) != Err::kOk || st.mzxid == 0)
      return;
    if (auto l = tree::ParseServers(text); l.ok()) Learn(*l);
  }
  void PersistConfig(const zab::ConfigState& cs);
  // member.client_host/client_port from a committed configuration (call with mu held); true
  // when they changed.
  bool SetClientAddress(const zab::ConfigState& cs) {
    if (cs.previous || cs.current_zxid == 0) return false;  // pending, or zoo.cfg's own
    auto it = book.find(self);
    if (it == book.end() || it->second.client_port() == 0) return false;
    std::string host = it->second.client_host().empty() ? "0.0.0.0" : it->second.client_host();
    int port = static_cast<int>(it->second.client_port());
    if (host == member.client_host && port == member.client_port) return false;
    member.client_host = host;
    member.client_port = port;
    return true;
  }
  void LinkPeers(const zab::ConfigState& cs);
  void UnlinkDue();

  explicit Impl(Pipeline* pp) : p(pp) {}

  // ---- transport::Handler (transport thread) ----
  void OnMessage(uint64_t from, peer::PeerMessage&& msg) override {
    Event e;
    e.type = Event::kPeer;
    e.peer = from;
    e.msg = std::move(msg);
    Push(std::move(e));
  }
  void OnDisconnected(uint64_t peer) override {
    Event e;
    e.type = Event::kDisconnected;
    e.peer = peer;
    Push(std::move(e));
  }
  void Push(Event&& e) {
    {
      std::lock_guard<std::mutex> l(mu);
      inbox.push_back(std::move(e));
    }
    Wake();
  }
  bool OnLoop() const { return std::this_thread::get_id() == loop_thread.load(); }
  // Wakes the loop after something was queued under `mu`. From the loop itself nothing is
  // needed: it looks at the inbox after every batch of I/O handlers.
  void Wake() {
    if (OnLoop()) return;
    if (asleep.exchange(false)) asio::post(io, [] {});
  }

  // ---- zab::LogReader (state-machine thread) ----
  bool ReadAfter(zab::Zxid after, size_t max_entries, std::vector<zab::Entry>* out) override {
    std::vector<storage::LogEntry> v;
    if (!p->store_->log().ReadAfter(after, max_entries, &v)) return false;
    for (auto& e : v) {
      zab::Entry x{e.zxid, std::move(e.payload), 0, 0, std::nullopt};
      // A reconfig entry carries its configuration (docs/reconfig.md).
      if (MaybeReconfig(x.payload)) {
        if (auto servers = ReconfigServers(x.payload)) x.config = MembershipOf(*servers);
      }
      out->push_back(std::move(x));
    }
    return true;
  }

  // Truncating below the oldest snapshot could need log entries already purged.
  zab::Zxid TruncateFloor() override {
    auto snaps = storage::ListSnapshots(store_options.data_dir);
    if (!snaps.ok() || snaps->empty()) return 0;
    return snaps->back().last_zxid;
  }

  // ---- setup ----
  Status Init();
  zab::InitialState Initial();
  void OpenStore();

  // ---- the state-machine thread ----
  void Run();
  void HandleEvent(Event& e);
  static bool Batchable(const Event& e) {
    if (e.type == Event::kRequest) return true;
    if (e.type != Event::kPeer) return false;
    if (e.msg.body_case() == peer::PeerMessage::kApp) return true;
    if (e.msg.body_case() != peer::PeerMessage::kZab) return false;
    switch (e.msg.zab().body_case()) {
      case peer::ZabMessage::kProposal:
      case peer::ZabMessage::kAck:
      case peer::ZabMessage::kCommit:
      case peer::ZabMessage::kInform:
      case peer::ZabMessage::kPing:
      case peer::ZabMessage::kPingReply:
        return true;
      default:
        return false;
    }
  }
  void HandleIncoming(Incoming&& in);
  void HandlePeer(uint64_t from, peer::PeerMessage& msg);
  void HandleApp(uint64_t from, const std::string& bytes);
  void HandleChunk(uint64_t from, const peer::SnapshotChunk& c);
  void DropReceive();
  void InstallSnapshot(uint64_t zxid);
  void ProposeRequest(const tree::Request& req, uint64_t origin, uint64_t tag);
  template <typename Reject>
  void ProposeReconfig(const tree::Request& req, uint64_t origin, uint64_t tag, uint64_t zxid,
                       Reject& reject);
  void ProcessReady();
  void Apply(std::vector<zab::Entry>& entries);
  void CountQuotaExceeded(const tree::Request& req, const tree::Prepared& prep);
  void Truncate(uint64_t zxid);
  void ReloadStore(const char* why);
  void RoleChanged(const zab::RoleChange& rc);
  void StartTransfer(uint64_t peer);
  void PollTransfers();
  void AbortTransfer(uint64_t peer);
  void Stream(std::shared_ptr<Transfer> t, std::string path);
  void Send(uint64_t to, peer::PeerMessage&& m);
  void SendApp(uint64_t to, const member::AppMessage& m);
  void ExpireWaiting(bool all);
  void CheckReadOnly();
  void NotifyRole(const MemberStatus& now);
  void MaybeSnapshot();
  uint64_t NextSnapshotAfter() {
    uint64_t half = std::max<uint64_t>(1, options.snap_count / 2);
    return half + rng() % half;
  }
  void EnterDiskFull(const Status& why);
  bool SpaceAvailable() const;
  void LeaveDiskFull();

  uint64_t NewPending(ReplyFn done) {
    pending.push_back({std::move(done), Reply(), false});
    return first_tag + pending.size() - 1;
  }
  Pending* FindPending(uint64_t tag) {
    if (tag < first_tag || tag >= first_tag + pending.size()) return nullptr;
    Pending* q = &pending[tag - first_tag];
    return q->finished ? nullptr : q;
  }
  void Finish(uint64_t tag, Reply&& r) {
    Pending* q = FindPending(tag);
    if (!q) return;  // already failed (e.g. the leader was lost) or from an earlier run
    q->reply = std::move(r);
    q->finished = true;
  }
  void Fail(uint64_t tag, Err err, std::vector<tree::OpResult> results = {}) {
    Reply r;
    r.err = err;
    r.results = std::move(results);
    r.zxid = p->store_->tree().last_zxid();
    Finish(tag, std::move(r));
  }
  // A refusal from prepare (BadVersion, NodeExists, ...) is decided against the leader's
  // newest view, which may hold txns not committed yet; it is answered only once the tree has
  // applied `after` (the last txn that view held), as ZooKeeper's error txns wait in the commit
  // order. Otherwise a leader that dies before committing those txns would have answered from
  // a state that never existed (docs/ensemble.md, "Refusals"). A learner waits in the same way
  // for the leader's zxid, so its later reads see what the refusal saw.
  struct Refusal {
    uint64_t origin = 0;
    uint64_t tag = 0;
    Err err = Err::kOk;
    std::vector<tree::OpResult> results;
  };
  std::multimap<uint64_t, Refusal> refusals;  // by the zxid to apply first
  void Refuse(uint64_t origin, uint64_t tag, Err err, std::vector<tree::OpResult> results,
              uint64_t after);
  void FailAllPending(Err err) {
    for (size_t i = 0; i < pending.size(); i++)
      if (!pending[i].finished) Fail(first_tag + i, err);
  }
  void Release();
};

// ---------------------------------------------------------------------------------------------

Status Pipeline::Impl::Init() {
  const Config& c = options.config;
  if (c.ensemble()) {
    tree::ServerList statics;
    for (const auto& sv : c.servers) statics.push_back(SpecOf(sv));
    std::sort(statics.begin(), statics.end(),
              [](const auto& a, const auto& b) { return a.id() < b.id(); });
    Learn(statics);
    store_options.static_config = tree::ConfigText(statics, 0);
    if (Status st = LoadDynamic(); !st.ok()) return st;
  }
  store_options.on_durable = [this](uint64_t z) {
    {
      std::lock_guard<std::mutex> l(mu);
      if (z > durable) durable = z;
    }
    Wake();
  };
  store_options.on_failed = [this](uint64_t first, const Status& why) {
    {
      std::lock_guard<std::mutex> l(mu);
      log_failed = true;
      log_failed_why = Status(why.code(), "from zxid " + Hex(first) + ": " + why.message());
    }
    Wake();
  };
  auto store = Store::Open(store_options);
  if (!store.ok()) return store.status();
  p->store_ = std::move(*store);
  preparer = std::make_unique<tree::Preparer>(p->store_->tree());
  durable = reported_durable = p->store_->log().durable_zxid();
  LearnFromTree();

  zcfg.self = self = c.ensemble() ? c.myid : 1;
  if (c.ensemble()) {
    for (const auto& s : c.servers) (s.observer ? zcfg.observers : zcfg.voters).push_back(s.id);
  } else {
    zcfg.voters = {1};
  }
  int tick = std::max(1, c.tick_time_ms);
  zcfg.init_ticks = std::max(10, c.init_limit * tick / kBaseTickMs);
  zcfg.sync_ticks = std::max(5, c.sync_limit * tick / kBaseTickMs);
  zcfg.ping_ticks = std::max(1, tick / 2 / kBaseTickMs);
  if (options.committed_window) zcfg.committed_window = options.committed_window;
  zcfg.election_finalize_ticks = 5;
  zcfg.vote_resend_ticks = 5;
  member.self = self;
  member.standalone = !c.ensemble();
  core = std::make_unique<zab::Core>(zcfg, Initial(), this);
  member.voters = core->config().current.voters.size();
  member.observers = core->config().current.observers.size();
  if (have_dynamic) SetClientAddress(config_state);

  if (c.ensemble()) {
    const Config::Server* me = c.self();
    transport::Options to;
    to.self_id = self;
    to.listen_host = me->host;
    to.listen_port = me->peer_port;
    // The members of the configuration the core acts under (the static one, or the persisted
    // dynamic one): their addresses from the book.
    std::vector<uint64_t> ids;
    const zab::ConfigState& cs = core->config();
    for (const zab::Membership* m : {&cs.current, cs.previous ? &*cs.previous : nullptr}) {
      if (!m) continue;
      for (const auto* v : {&m->voters, &m->observers}) ids.insert(ids.end(), v->begin(), v->end());
    }
    std::sort(ids.begin(), ids.end());
    ids.erase(std::unique(ids.begin(), ids.end()), ids.end());
    for (uint64_t id : ids) {
      auto a = DialAddress(id);
      if (id != self && a) to.peers.push_back(*a);
    }
    to.secret = c.quorum_secret;
    if (c.ssl_quorum) {
      to.use_tls = true;
      to.tls = c.quorum_tls;
      to.tls_verify_host = c.quorum_hostname_verification;
    }
    to.max_frame_bytes = c.max_data_bytes * 2 + (8 << 20);
    to.io = &io;  // the links are served by this member's loop, not a thread of their own
    auto t = transport::PeerTransport::Start(to, this);
    if (!t.ok()) return t.status();
    net = std::move(*t);
    for (const auto& pa : to.peers) net->Reopen(pa.id);
    QLOG_INFO(
        "member %llu of an ensemble of %zu voters and %zu observers (configuration version %s%s); "
        "peer port %s:%d",
        static_cast<unsigned long long>(self), cs.current.voters.size(),
        cs.current.observers.size(), Hex(cs.current_zxid).c_str(),
        have_dynamic ? (", from " + std::string(kDynamicFile)).c_str() : "", me->host.c_str(),
        me->peer_port);
  }
  return Status::Ok();
}

zab::InitialState Pipeline::Impl::Initial() {
  const Store& s = *p->store_;
  zab::InitialState st;
  st.accepted_epoch = s.accepted_epoch();
  st.current_epoch = s.current_epoch();
  st.last_zxid = static_cast<uint64_t>(s.tree().last_zxid());
  for (const auto& [epoch, last] : s.recovery().epoch_ends) {
    peer::EpochEnd e;
    e.set_epoch(epoch);
    e.set_last_zxid(last);
    st.epochs.push_back(e);
  }
  if (!options.config.ensemble()) return st;
  // The persisted configuration state, then the reconfig entries of the log above it (a crash
  // may have come between an entry's append and the write of the state it made).
  if (have_dynamic) st.config = config_state;
  // Below the snapshot a configuration was persisted when its entry was appended or synced.
  const uint64_t after =
      std::max<uint64_t>(have_dynamic ? config_state.current_zxid : 0, s.recovery().snapshot_zxid);
  std::vector<zab::Entry> entries;
  for (uint64_t from = after;;) {
    entries.clear();
    if (!ReadAfter(from, 1000, &entries) || entries.empty()) break;
    for (auto& e : entries) {
      if (!e.config) continue;
      if (auto servers = ReconfigServers(e.payload)) Learn(*servers);
      st.log_configs.emplace_back(e.zxid, *e.config);
    }
    from = entries.back().zxid;
  }
  return st;
}

// dataDir/zoo.cfg.dynamic (docs/reconfig.md): the configuration state last persisted, in
// ZooKeeper's text: the current configuration's server lines and `version=`, then, while its
// reconfig entry is not known committed, the previous one's with a `previous.` prefix.
Status Pipeline::Impl::LoadDynamic() {
  const std::string path = store_options.data_dir + "/" + kDynamicFile;
  if (access(path.c_str(), F_OK) != 0) return Status::Ok();
  auto text = storage::ReadFile(path);
  if (!text.ok()) return text.status();
  std::string cur, prev;
  uint64_t cur_v = 0, prev_v = 0;
  bool has_prev = false;
  size_t pos = 0;
  while (pos < text->size()) {
    size_t nl = text->find('\n', pos);
    if (nl == std::string::npos) nl = text->size();
    std::string line = text->substr(pos, nl - pos);
    pos = nl + 1;
    if (line.empty() || line[0] == '#') continue;
    bool is_prev = line.rfind("previous.", 0) == 0;
    if (is_prev) {
      line = line.substr(9);
      has_prev = true;
    }
    if (line.rfind("version=", 0) == 0) {
      char* end = nullptr;
      uint64_t v = strtoull(line.c_str() + 8, &end, 16);
      if (end == line.c_str() + 8 || *end != '\0')
        return Corruption(path + ": bad version line: " + line);
      (is_prev ? prev_v : cur_v) = v;
      continue;
    }
    (is_prev ? prev : cur) += line + "\n";
  }
  auto cs = ParseMembers(cur);
  if (!cs.ok()) return Corruption(path + ": " + cs.status().message());
  Learn(*cs);
  config_state.current = MembershipOf(*cs);
  config_state.current_zxid = cur_v;
  if (has_prev) {
    auto ps = ParseMembers(prev);
    if (!ps.ok()) return Corruption(path + ": " + ps.status().message());
    Learn(*ps);
    config_state.previous = MembershipOf(*ps);
    config_state.previous_zxid = prev_v;
  }
  if (!config_state.current.Valid() || (config_state.previous && !config_state.previous->Valid()))
    return Corruption(path + ": not a valid configuration");
  have_dynamic = true;
  QLOG_INFO("configuration version %s from %s (%zu voters, %zu observers)%s", Hex(cur_v).c_str(),
            path.c_str(), config_state.current.voters.size(), config_state.current.observers.size(),
            has_prev ? "; its reconfig entry not known committed yet" : "");
  return Status::Ok();
}

// Ready.config: synchronously and atomically (write, fsync, rename, fsync the directory).
void Pipeline::Impl::PersistConfig(const zab::ConfigState& cs) {
  std::string text =
      "# This member's configuration state, written by quorumfsd (docs/reconfig.md).\n" +
      tree::ConfigText(ServersOf(cs.current), cs.current_zxid) + "\n";
  if (cs.previous) {
    std::string prev = tree::ConfigText(ServersOf(*cs.previous), cs.previous_zxid);
    size_t pos = 0;
    while (pos < prev.size()) {
      size_t nl = prev.find('\n', pos);
      if (nl == std::string::npos) nl = prev.size();
      text += "previous." + prev.substr(pos, nl - pos) + "\n";
      pos = nl + 1;
    }
  }
  Status st = storage::WriteFileAtomic(store_options.data_dir, kDynamicFile, text);
  if (!st.ok()) QFS_FATAL("persisting the configuration: %s", st.ToString().c_str());
  config_state = cs;
  have_dynamic = true;
  QLOG_INFO("configuration version %s: voters %zu, observers %zu%s", Hex(cs.current_zxid).c_str(),
            cs.current.voters.size(), cs.current.observers.size(),
            cs.previous ? " (pending: the previous one counts too)" : " (committed)");
  MemberStatus now;
  bool moved = false;
  {
    std::lock_guard<std::mutex> l(mu);
    member.voters = cs.current.voters.size();
    member.observers = cs.current.observers.size();
    moved = SetClientAddress(cs);
    now = member;
  }
  if (moved) {
    QLOG_INFO("the committed configuration gives this member the client address %s:%d",
              now.client_host.c_str(), now.client_port);
    NotifyRole(now);
  }
}

// The transport follows the configuration: links to its members (with their addresses from the
// book, which may have changed), and members it dropped are unlinked after kUnlinkDelay.
void Pipeline::Impl::LinkPeers(const zab::ConfigState& cs) {
  if (!net) return;
  std::set<uint64_t> want;
  for (const zab::Membership* m : {&cs.current, cs.previous ? &*cs.previous : nullptr}) {
    if (!m) continue;
    for (const auto* v : {&m->voters, &m->observers}) want.insert(v->begin(), v->end());
  }
  want.erase(self);
  for (uint64_t id : want) {
    unlink_at.erase(id);
    auto a = DialAddress(id);
    if (!a) {
      QLOG_WARN("member %llu of the configuration has no known address",
                static_cast<unsigned long long>(id));
      continue;
    }
    net->AddPeer(*a);
  }
  for (uint64_t id : net->peers())
    if (!want.count(id) && !unlink_at.count(id)) unlink_at[id] = Clock::now() + kUnlinkDelay;
}

void Pipeline::Impl::UnlinkDue() {
  if (unlink_at.empty() || !net) return;
  auto now = Clock::now();
  for (auto it = unlink_at.begin(); it != unlink_at.end();) {
    if (it->second > now) {
      ++it;
      continue;
    }
    AbortTransfer(it->first);
    net->RemovePeer(it->first);
    it = unlink_at.erase(it);
  }
}

void Pipeline::Impl::ReloadStore(const char* why) {
  QLOG_INFO("reloading the tree from disk (%s)", why);
  std::unique_lock<std::shared_mutex> wl(p->tree_mu_);
  p->store_->WaitSnapshot();
  p->store_.reset();
  auto store = Store::Open(store_options);
  if (!store.ok())
    QFS_FATAL("cannot reopen the data directory: %s", store.status().ToString().c_str());
  p->store_ = std::move(*store);
  preparer = std::make_unique<tree::Preparer>(p->store_->tree());
  std::lock_guard<std::mutex> l(mu);
  durable = reported_durable = p->store_->log().durable_zxid();
  stats.last_zxid = p->store_->tree().last_zxid();
}

// ---- the loop ----

// One iteration: the I/O handlers that are ready (a bounded batch: the peer links' reads and
// writes, which queue what they received in the inbox), then everything queued, one Ready pass
// per peer message and one for all client requests, then replies. The loop sleeps in the
// io_context, so a socket event, a post from another thread (Wake) or the next tick wakes it.
void Pipeline::Impl::Run() {
  constexpr int kIoBatch = 64;
  loop_thread = std::this_thread::get_id();
  auto next_tick = Clock::now() + std::chrono::milliseconds(kBaseTickMs);
  for (;;) {
    for (int i = 0; i < kIoBatch && io.poll_one(); i++) {
    }
    std::deque<Event> events;
    uint64_t dur;
    bool failed, stop, snap;
    Status why;
    {
      std::unique_lock<std::mutex> l(mu);
      bool work = !inbox.empty() || durable != reported_durable || log_failed || stopping ||
                  snapshot_requested;
      if (!work && Clock::now() < next_tick) {
        asleep = true;
        l.unlock();
        io.run_one_until(next_tick);
        asleep = false;
        continue;
      }
      events.swap(inbox);
      dur = durable;
      failed = log_failed;
      why = log_failed_why;
      log_failed = false;
      stop = stopping;
      snap = snapshot_requested;
      snapshot_requested = false;
    }
    if (failed && !disk_full) EnterDiskFull(why);
    if (disk_full) {
      if (Clock::now() >= next_space_check) {
        next_space_check = Clock::now() + std::chrono::milliseconds(100);
        if (SpaceAvailable()) LeaveDiskFull();
      }
      for (Event& e : events) {
        if (e.type == Event::kDisconnected && net) net->Reopen(e.peer);
        if (e.type != Event::kRequest) continue;  // peers wait until we rejoin
        uint64_t tag = NewPending(std::move(e.in.done));
        Fail(tag, Err::kSystemError);
      }
      Release();
      if (stop) {
        FailAllPending(Err::kConnectionLoss);
        Release();
        break;
      }
      if (disk_full) continue;
      events.clear();
    }
    if (dur != reported_durable && !log_broken) {
      reported_durable = dur;
      core->Persisted(dur);
    }
    for (Event& e : events) {
      // Client requests, forwarded writes and the broadcast phase's messages (proposals, acks,
      // commits, pings) are batched into one Ready per iteration: acks and commits are
      // cumulative, so a batch sends one commit and applies in one pass. Any other message
      // (election, discovery, sync, snapshot chunks, a broken link) may change how the next
      // ones are read (a snapshot stream follows SyncStart, a TRUNC must not be reordered with
      // earlier appends): the Ready so far is carried out before it and its own right after.
      const bool batched = Batchable(e);
      if (!batched) ProcessReady();
      HandleEvent(e);
      if (!batched) ProcessReady();
    }
    if (Clock::now() >= next_tick) {
      next_tick += std::chrono::milliseconds(kBaseTickMs);
      if (next_tick < Clock::now())
        next_tick = Clock::now() + std::chrono::milliseconds(kBaseTickMs);
      core->Tick();
      ExpireWaiting(false);
      UnlinkDue();
      CheckReadOnly();
    }
    ProcessReady();
    PollTransfers();
    if (snap) snapshot_wanted = true;
    MaybeSnapshot();
    Release();
    if (stop) {
      // Let writes already proposed finish (briefly), then answer the rest.
      if (stop_deadline == Clock::time_point())
        stop_deadline = Clock::now() + std::chrono::seconds(2);
      ExpireWaiting(true);
      if (Clock::now() >= stop_deadline || !member.serving) FailAllPending(Err::kConnectionLoss);
      Release();
      // Requests queued before Stop() were taken in this round (Enqueue refuses later ones);
      // peers' messages keep coming and are dropped.
      if (pending.empty()) break;
    }
  }
}

// The log could not take appended txns (disk full). They were never durable, so this member
// must not acknowledge or apply them: fail the writes in flight, leave the ensemble, refuse
// writes, and start over from what is on disk once there is room again.
void Pipeline::Impl::EnterDiskFull(const Status& why) {
  QLOG_ERROR("the txn log failed (%s): refusing writes until there is room on the disk",
             why.ToString().c_str());
  disk_full = true;
  log_broken = true;
  next_space_check = Clock::now() + std::chrono::milliseconds(100);
  FailAllPending(Err::kSystemError);
  sync_waits.clear();
  while (!waiting.empty()) {
    uint64_t tag = NewPending(std::move(waiting.front().in.done));
    waiting.pop_front();
    Fail(tag, Err::kSystemError);
  }
  if (net) {
    for (const auto& sv : options.config.servers) {
      if (sv.id == self) continue;
      AbortTransfer(sv.id);
      net->Close(sv.id);
    }
  }
  DropReceive();
  zab::RoleChange looking;
  RoleChanged(looking);
  Release();
}

bool Pipeline::Impl::SpaceAvailable() const {
  auto free_bytes = [](const std::string& dir) -> uint64_t {
    struct statvfs v {};
    if (statvfs(dir.c_str(), &v) != 0) return 0;
    return static_cast<uint64_t>(v.f_bavail) * v.f_frsize;
  };
  uint64_t need = store_options.segment_bytes + (1 << 20);
  return free_bytes(store_options.log_dir) >= need &&
         free_bytes(store_options.data_dir) >= (1 << 20);
}

void Pipeline::Impl::LeaveDiskFull() {
  QLOG_INFO("there is room on the disk again: restarting this member's state from disk");
  p->store_->log().Flush();
  ReloadStore("the disk was full");
  log_broken = false;
  disk_full = false;
  core = std::make_unique<zab::Core>(zcfg, Initial(), this);
}

void Pipeline::Impl::MaybeSnapshot() {
  Store& s = *p->store_;
  s.PollSnapshot();
  if (!member.serving || s.snapshot_running()) return;
  if (options.snap_count > 0 && snapshot_after == 0) snapshot_after = NextSnapshotAfter();
  bool due = options.snap_count > 0 && since_snapshot >= snapshot_after;
  if (!due && !snapshot_wanted) return;
  {
    std::lock_guard<std::mutex> l(hold_mu);
    if (!transfers.empty()) return;  // a learner's snapshot is being taken or sent
  }
  if (s.StartSnapshot()) {
    since_snapshot = 0;
    snapshot_after = 0;
    snapshot_wanted = false;
  }
}

void Pipeline::Impl::HandleEvent(Event& e) {
  switch (e.type) {
    case Event::kRequest:
      HandleIncoming(std::move(e.in));
      break;
    case Event::kPeer:
      HandlePeer(e.peer, e.msg);
      break;
    case Event::kDisconnected:
      QLOG_DEBUG("link to member %llu broke", static_cast<unsigned long long>(e.peer));
      AbortTransfer(e.peer);
      if (recv.active && recv.from == e.peer && !recv.complete) DropReceive();
      core->Disconnected(e.peer);
      if (net) net->Reopen(e.peer);
      break;
  }
}

void Pipeline::Impl::HandleIncoming(Incoming&& in) {
  if (member.read_only) {
    // ZooKeeper's ReadOnlyRequestProcessor: writes and syncs fail at once (docs/read-only.md).
    Fail(NewPending(std::move(in.done)), Err::kNotReadOnly);
    return;
  }
  if (!member.serving) {
    Waiting w;
    w.in = std::move(in);
    w.deadline = Clock::now() + std::chrono::milliseconds(options.config.write_wait());
    waiting.push_back(std::move(w));
    return;
  }
  uint64_t tag = NewPending(std::move(in.done));
  if (in.sync) {
    core->Sync(tag, in.sync == 2);
    return;
  }
  if (member.role == zab::Role::kLeading) {
    ProposeRequest(in.req, self, tag);
    return;
  }
  member::AppMessage m;
  m.mutable_forward()->set_tag(tag);
  ToProto(in.req, m.mutable_forward()->mutable_request());
  SendApp(member.leader, m);
  std::lock_guard<std::mutex> l(mu);
  stats.forwarded++;
}

void Pipeline::Impl::ExpireWaiting(bool all) {
  auto now = Clock::now();
  while (!waiting.empty() && (all || waiting.front().deadline <= now)) {
    uint64_t tag = NewPending(std::move(waiting.front().in.done));
    waiting.pop_front();
    Fail(tag, Err::kConnectionLoss);
    if (!all)
      QLOG_WARN("a write waited %d ms for a leader; answering connection loss",
                options.config.write_wait());
  }
}

// readonlymode.enabled: a member that has looked for a leader for the grace period turns
// read-only; RoleChanged turns it back as soon as it finds one (docs/read-only.md).
void Pipeline::Impl::CheckReadOnly() {
  const Config& c = options.config;
  if (!c.read_only_mode || !c.ensemble() || member.read_only || member.role != zab::Role::kLooking)
    return;
  if (Clock::now() - looking_since < std::chrono::milliseconds(c.read_only_grace_ms())) return;
  MemberStatus now;
  {
    std::lock_guard<std::mutex> l(mu);
    member.read_only = true;
    now = member;
  }
  QLOG_WARN(
      "read-only mode: no leader for %d ms; serving read-only clients from this member's "
      "tree at zxid %s, refusing writes",
      c.read_only_grace_ms(), Hex(p->store_->tree().last_zxid()).c_str());
  // Writes that were waiting for a leader are refused now, as every later one.
  while (!waiting.empty()) {
    uint64_t tag = NewPending(std::move(waiting.front().in.done));
    waiting.pop_front();
    Fail(tag, Err::kNotReadOnly);
  }
  NotifyRole(now);
}

void Pipeline::Impl::Refuse(uint64_t origin, uint64_t tag, Err err,
                            std::vector<tree::OpResult> results, uint64_t after) {
  const uint64_t applied = static_cast<uint64_t>(p->store_->tree().last_zxid());
  if (applied < after) {
    refusals.emplace(after, Refusal{origin, tag, err, std::move(results)});
    return;
  }
  if (origin == self) return Fail(tag, err, std::move(results));
  member::AppMessage m;
  auto* r = m.mutable_forward_reply();
  r->set_tag(tag);
  r->set_err(static_cast<int32_t>(err));
  r->set_zxid(applied);
  for (const auto& res : results) {
    auto* o = r->add_results();
    o->set_err(static_cast<int32_t>(res.err));
    o->set_type(static_cast<uint32_t>(res.type));
  }
  SendApp(origin, m);
}

void Pipeline::Impl::ProposeRequest(const tree::Request& req, uint64_t origin, uint64_t tag) {
  auto reject = [&](Err err, std::vector<tree::OpResult> results) {
    // Not proposed (kConnectionLoss) depends on no txn; a refusal on every one proposed so far.
    Refuse(origin, tag, err, std::move(results),
           err == Err::kConnectionLoss ? 0 : core->last_logged());
  };
  auto zxid = core->NextZxid();
  if (!zxid) return reject(Err::kConnectionLoss, {});
  if (req.type == tree::RequestType::kReconfig)
    return ProposeReconfig(req, origin, tag, *zxid, reject);
  tree::Prepared prep = preparer->Prepare(req, static_cast<int64_t>(*zxid), WallMs());
  if (prep.err == Err::kQuotaExceeded) CountQuotaExceeded(req, prep);
  if (prep.err != Err::kOk) return reject(prep.err, std::move(prep.multi_results));
  std::string payload;
  QFS_CHECK(prep.txn->SerializeToString(&payload));
  auto err = core->Propose(std::move(payload), origin, tag);
  // NextZxid said this leader can propose, and nothing ran in between.
  QFS_CHECK(!err);
  own_txns.emplace_back(*zxid, std::move(*prep.txn));
}

// A reconfig request (docs/reconfig.md): prepared against the leader's newest configuration, with
// the core's CheckReconfig as the quorum check, then proposed as a reconfig entry.
template <typename Reject>
void Pipeline::Impl::ProposeReconfig(const tree::Request& req, uint64_t origin, uint64_t tag,
                                     uint64_t zxid, Reject& reject) {
  const Config& c = options.config;
  tree::ReconfigContext rc;
  rc.enabled = c.reconfig_enabled;
  rc.standalone = !c.ensemble();
  const zab::ConfigState& cs = core->config();
  rc.current = ServersOf(cs.current);
  rc.version = cs.current_zxid;
  rc.in_progress = cs.previous.has_value();
  rc.check_quorum = [this](const tree::ServerList& next) {
    auto e = core->CheckReconfig(MembershipOf(next));
    if (!e) return Err::kOk;
    if (*e == zab::ProposeError::kReconfigInProgress) return Err::kReconfigInProgress;
    if (*e == zab::ProposeError::kNewConfigNoQuorum) return Err::kNewConfigNoQuorum;
    return Err::kConnectionLoss;
  };
  tree::Prepared prep = preparer->Prepare(req, static_cast<int64_t>(zxid), WallMs(), &rc);
  if (prep.err != Err::kOk) {
    QLOG_INFO("reconfig refused: %s", tree::ErrName(prep.err));
    return reject(prep.err, {});
  }
  const txn::ReconfigTxn& t = prep.txn->reconfig();
  tree::ServerList next(t.servers().begin(), t.servers().end());
  Learn(next);
  std::string payload;
  QFS_CHECK(prep.txn->SerializeToString(&payload));
  QLOG_INFO("proposing configuration version %s:\n%s", Hex(zxid).c_str(), t.node().data().c_str());
  auto err = core->ProposeReconfig(std::move(payload), MembershipOf(next), origin, tag);
  // CheckReconfig passed just now, and nothing ran in between.
  QFS_CHECK(!err);
  own_txns.emplace_back(zxid, std::move(*prep.txn));
}

// ZooKeeper's quota_exceeded_error_per_namespace: by the refused op's top-level path component.
void Pipeline::Impl::CountQuotaExceeded(const tree::Request& req, const tree::Prepared& prep) {
  size_t i = 0;
  while (i < prep.multi_results.size() && prep.multi_results[i].err != Err::kQuotaExceeded) i++;
  if (i >= req.ops.size()) return;
  std::string_view path = req.ops[i].path;
  path.remove_prefix(1);
  std::string ns(path.substr(0, path.find('/')));
  std::lock_guard<std::mutex> l(mu);
  stats.quota_exceeded[ns]++;
}

void Pipeline::Impl::HandlePeer(uint64_t from, peer::PeerMessage& msg) {
  switch (msg.body_case()) {
    case peer::PeerMessage::kZab:
      if (msg.zab().has_sync_start()) {
        static const char* kModes[] = {"DIFF", "TRUNC", "SNAP"};
        const auto& ss = msg.zab().sync_start();
        QLOG_INFO("member %llu syncs us by %s from zxid %s", static_cast<unsigned long long>(from),
                  kModes[std::min<int>(2, std::max<int>(0, ss.mode()))], Hex(ss.zxid()).c_str());
      }
      core->Step(from, msg.zab());
      break;
    case peer::PeerMessage::kChunk:
      HandleChunk(from, msg.chunk());
      break;
    case peer::PeerMessage::kApp:
      HandleApp(from, msg.app());
      break;
    default:
      QLOG_WARN("member %llu sent an empty message", static_cast<unsigned long long>(from));
  }
}

void Pipeline::Impl::HandleApp(uint64_t from, const std::string& bytes) {
  member::AppMessage m;
  if (!m.ParseFromString(bytes)) {
    QLOG_WARN("member %llu sent a malformed app message", static_cast<unsigned long long>(from));
    return;
  }
  switch (m.body_case()) {
    case member::AppMessage::kForward: {
      tree::Request req;
      if (!FromProto(m.forward().request(), &req)) {
        QLOG_WARN("member %llu forwarded a malformed request",
                  static_cast<unsigned long long>(from));
        return;
      }
      if (member.role != zab::Role::kLeading || !member.serving) {
        member::AppMessage r;
        r.mutable_forward_reply()->set_tag(m.forward().tag());
        r.mutable_forward_reply()->set_err(static_cast<int32_t>(Err::kConnectionLoss));
        SendApp(from, r);
        return;
      }
      ProposeRequest(req, from, m.forward().tag());
      break;
    }
    case member::AppMessage::kForwardReply: {
      const auto& r = m.forward_reply();
      std::vector<tree::OpResult> results;
      for (const auto& o : r.results()) {
        tree::OpResult res;
        res.err = static_cast<Err>(o.err());
        res.type = static_cast<tree::OpType>(o.type());
        results.push_back(res);
      }
      Refuse(self, r.tag(), static_cast<Err>(r.err()), std::move(results), r.zxid());
      break;
    }
    case member::AppMessage::kTouch: {
      if (!touch_handler) return;
      SessionTouches t;
      const auto& tm = m.touch();
      for (int i = 0; i < tm.session_ids_size() && i < tm.timeouts_ms_size(); i++)
        t.emplace_back(tm.session_ids(i), tm.timeouts_ms(i));
      touch_handler(t);
      break;
    }
    default:
      break;
  }
}

void Pipeline::Impl::DropReceive() {
  if (recv.fd >= 0) close(recv.fd);
  if (recv.active) unlink(recv.path.c_str());
  recv = Receive();
}

// The leader streams a snapshot ahead of the SyncStart(SNAP) that names it: store it, and install
// it when the core asks (Ready.install_snapshot).
void Pipeline::Impl::HandleChunk(uint64_t from, const peer::SnapshotChunk& c) {
  core->Progress(from);
  if (c.keepalive()) return;
  if (c.offset() == 0) {
    DropReceive();
    recv.active = true;
    recv.from = from;
    recv.zxid = c.zxid();
    recv.path = store_options.data_dir + "/snapshot.received.tmp";
    recv.fd = open(recv.path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (recv.fd < 0) QFS_FATAL("cannot create %s: %s", recv.path.c_str(), strerror(errno));
    QLOG_INFO("receiving a snapshot at zxid %s from member %llu (%llu bytes)",
              Hex(c.zxid()).c_str(), static_cast<unsigned long long>(from),
              static_cast<unsigned long long>(c.total_bytes()));
  }
  if (!recv.active || recv.complete || recv.from != from || c.zxid() != recv.zxid ||
      c.offset() != recv.bytes) {
    QLOG_WARN("unexpected snapshot chunk from member %llu (zxid %s offset %llu); ignored",
              static_cast<unsigned long long>(from), Hex(c.zxid()).c_str(),
              static_cast<unsigned long long>(c.offset()));
    return;
  }
  const std::string& d = c.data();
  size_t off = 0;
  while (off < d.size()) {
    ssize_t w = write(recv.fd, d.data() + off, d.size() - off);
    if (w < 0 && errno == EINTR) continue;
    if (w < 0)
      QFS_FATAL("writing the snapshot from the leader to %s: %s", recv.path.c_str(),
                strerror(errno));
    off += static_cast<size_t>(w);
  }
  recv.bytes += d.size();
  if (!c.last()) return;
  if (fsync(recv.fd) != 0) QFS_FATAL("fsync %s: %s", recv.path.c_str(), strerror(errno));
  close(recv.fd);
  recv.fd = -1;
  recv.complete = true;
}

void Pipeline::Impl::InstallSnapshot(uint64_t zxid) {
  if (!recv.active || !recv.complete || recv.zxid != zxid) {
    QLOG_ERROR("the leader announced a snapshot at zxid %s that did not arrive whole",
               Hex(zxid).c_str());
    DropReceive();
    return;  // the leader gives up on this learner after initLimit; it syncs again
  }
  QLOG_INFO("installing the leader's snapshot at zxid %s (%llu bytes)", Hex(zxid).c_str(),
            static_cast<unsigned long long>(recv.bytes));
  std::string path = recv.path;
  recv = Receive();
  {
    std::unique_lock<std::shared_mutex> wl(p->tree_mu_);
    p->store_->WaitSnapshot();
  }
  Status st = InstallReceivedSnapshot(p->store_.get(), path, zxid);
  if (!st.ok()) QFS_FATAL("installing the leader's snapshot: %s", st.ToString().c_str());
  ReloadStore("installed the leader's snapshot");
  LearnFromTree();
  QFS_CHECK(static_cast<uint64_t>(p->store_->tree().last_zxid()) == zxid);
  {
    std::lock_guard<std::mutex> l(mu);
    stats.snapshots_received++;
  }
  core->SnapshotInstalled(zxid);
}

void Pipeline::Impl::ProcessReady() {
  while (core->HasReady()) {
    zab::Ready r = core->TakeReady();
    if (r.truncate_after) Truncate(*r.truncate_after);
    if (r.install_snapshot) InstallSnapshot(*r.install_snapshot);
    for (auto& e : r.append) {
      if (log_broken) break;
      if (e.config) {
        if (auto servers = ReconfigServers(e.payload)) Learn(*servers);
      }
      Status st = p->store_->log().Append({e.zxid, std::move(e.payload)});
      if (!st.ok()) {
        // Not durable, and nothing after it may be (no gaps): the same path as a failed write.
        log_broken = true;
        std::lock_guard<std::mutex> l(mu);
        log_failed = true;
        log_failed_why = st;
      }
    }
    if (r.accepted_epoch) p->store_->SetAcceptedEpoch(*r.accepted_epoch);
    if (r.current_epoch) p->store_->SetCurrentEpoch(*r.current_epoch);
    if (r.config) {
      PersistConfig(*r.config);
      LinkPeers(*r.config);
    }
    if (!r.apply.empty()) Apply(r.apply);
    for (uint64_t peer : r.send_snapshot) StartTransfer(peer);
    for (uint64_t peer : r.disconnect) {
      AbortTransfer(peer);
      if (recv.active && recv.from == peer && !recv.complete) DropReceive();
      if (net) net->Close(peer);
    }
    for (auto& o : r.messages) {
      peer::PeerMessage m;
      *m.mutable_zab() = std::move(o.msg);
      Send(o.to, std::move(m));
    }
    for (const auto& s : r.syncs_done) {
      if (static_cast<uint64_t>(p->store_->tree().last_zxid()) >= s.zxid) {
        Reply rep;
        rep.zxid = p->store_->tree().last_zxid();
        Finish(s.tag, std::move(rep));
      } else {
        sync_waits.emplace(s.zxid, s.tag);
      }
    }
    if (r.role_change) RoleChanged(*r.role_change);
  }
  // Published only on change: this runs on every turn of the loop.
  zab::LearnerCounts lc = core->learner_counts();
  if (lc == published_learners) return;
  published_learners = lc;
  std::lock_guard<std::mutex> l(mu);
  stats.learners = lc;
}

void Pipeline::Impl::Apply(std::vector<zab::Entry>& entries) {
  std::vector<std::pair<int, ApplyListener>> listeners;
  {
    std::lock_guard<std::mutex> l(mu);
    listeners = apply_listeners;
  }
  int64_t last = 0;
  uint64_t mine = 0;
  uint64_t soft_crossings = 0;
  {
    std::unique_lock<std::shared_mutex> wl(p->tree_mu_);
    tree::DataTree& t = p->store_->tree();
    for (auto& e : entries) {
      // The leader applies the txn it prepared; others parse the payload.
      while (!own_txns.empty() && own_txns.front().first < e.zxid) own_txns.pop_front();
      const bool own = !own_txns.empty() && own_txns.front().first == e.zxid;
      txn::Txn parsed;
      if (!own) QFS_CHECK(parsed.ParseFromString(e.payload));
      const txn::Txn& txn = own ? own_txns.front().second : parsed;
      QFS_CHECK(static_cast<uint64_t>(txn.zxid()) == e.zxid);
      QFS_CHECK(txn.zxid() > t.last_zxid());
      tree::ApplyResult r = t.Apply(txn);
      QFS_CHECK(r.err == Err::kOk);
      for (const tree::QuotaCrossing& c : r.quota_crossings) {
        // Once per crossing: the next WARN needs usage back at or under the limit first.
        QLOG_WARN("Quota exceeded: %s [current %s=%lld, softLimit=%lld] (zxid %s)", c.path.c_str(),
                  c.bytes ? "bytes" : "count", static_cast<long long>(c.usage),
                  static_cast<long long>(c.limit), Hex(txn.zxid()).c_str());
        soft_crossings++;
      }
      for (auto& [h, fn] : listeners) fn(txn.zxid(), r.changes);
      if (e.origin == self) {
        Reply rep;
        rep.zxid = txn.zxid();
        rep.results = std::move(r.results);
        Finish(e.origin_tag, std::move(rep));
        mine++;
      }
      last = txn.zxid();
      since_snapshot++;
      if (own) own_txns.pop_front();
    }
  }
  preparer->Applied(last);
  while (!sync_waits.empty() && sync_waits.begin()->first <= static_cast<uint64_t>(last)) {
    Reply rep;
    rep.zxid = last;
    Finish(sync_waits.begin()->second, std::move(rep));
    sync_waits.erase(sync_waits.begin());
  }
  while (!refusals.empty() && refusals.begin()->first <= static_cast<uint64_t>(last)) {
    Refusal f = std::move(refusals.begin()->second);
    refusals.erase(refusals.begin());
    Refuse(f.origin, f.tag, f.err, std::move(f.results), 0);
  }
  std::lock_guard<std::mutex> l(mu);
  stats.txns_applied += entries.size();
  stats.last_zxid = last;
  stats.quota_soft_crossings += soft_crossings;
}

void Pipeline::Impl::Truncate(uint64_t zxid) {
  QLOG_INFO("the leader truncates this member's log after zxid %s", Hex(zxid).c_str());
  Store& s = *p->store_;
  s.log().Flush();
  Status st = s.log().TruncateAfter(zxid);
  if (!st.ok()) QFS_FATAL("truncating the log: %s", st.ToString().c_str());
  {
    // Durability reports from before the truncation must not reach the core.
    std::lock_guard<std::mutex> l(mu);
    durable = reported_durable = s.log().durable_zxid();
  }
  if (static_cast<uint64_t>(s.tree().last_zxid()) > zxid) {
    {
      std::unique_lock<std::shared_mutex> wl(p->tree_mu_);
      s.WaitSnapshot();
    }
    st = RemoveSnapshotsAfter(store_options.data_dir, zxid);
    if (!st.ok()) QFS_FATAL("truncating: %s", st.ToString().c_str());
    ReloadStore("truncated");
  }
}

void Pipeline::Impl::RoleChanged(const zab::RoleChange& rc) {
  MemberStatus before, now;
  {
    std::lock_guard<std::mutex> l(mu);
    before = member;
    member.role = rc.role;
    member.leader = rc.leader;
    member.epoch = rc.epoch;
    member.serving = rc.serving;
    if (rc.role == zab::Role::kLooking && before.role != zab::Role::kLooking) {
      stats.elections++;
      looking_since = Clock::now();
    }
    // Read-only mode ends when a leader is found, before the sync (as ZooKeeper's
    // ReadOnlyZooKeeperServer, shut down when the election ends): the tree may move on then.
    if (rc.role != zab::Role::kLooking) member.read_only = false;
    now = member;
  }
  if (rc.removed)
    QLOG_WARN(
        "this member is not in the committed configuration (version %s): it takes no further "
        "part until restarted (docs/reconfig.md)",
        Hex(core->config().current_zxid).c_str());
  if (before.role == now.role && before.leader == now.leader && before.epoch == now.epoch &&
      before.serving == now.serving)
    return;
  if (before.read_only && !now.read_only)
    QLOG_INFO("leaving read-only mode: found leader %llu",
              static_cast<unsigned long long>(now.leader));
  if (now.serving) {
    QLOG_INFO("serving as %s (leader %llu, epoch %llu) at zxid %s", RoleLabel(now.role),
              static_cast<unsigned long long>(now.leader),
              static_cast<unsigned long long>(now.epoch),
              Hex(p->store_->tree().last_zxid()).c_str());
  } else {
    QLOG_INFO(
        "not serving: %s%s", RoleLabel(now.role),
        now.leader ? (" (syncing with leader " + std::to_string(now.leader) + ")").c_str() : "");
  }
  if (!now.serving || before.leader != now.leader || before.epoch != now.epoch) {
    // Writes in flight went to a leader this member no longer follows: their outcome is unknown.
    FailAllPending(Err::kConnectionLoss);
    sync_waits.clear();
    // Their requests failed above (here, or on the learner that forwarded them when it left
    // this leader); a late refusal would contradict that.
    refusals.clear();
  }
  if (now.serving && now.role == zab::Role::kLeading) {
    // The tree holds the whole history now: prepare new txns on top of it.
    preparer->Reset();
  }
  if (now.role != zab::Role::kLeading || before.epoch != now.epoch) own_txns.clear();
  // Replies finished before the change go out before listeners close connections (a removed
  // leader answers the reconfig that removed it).
  Release();
  NotifyRole(now);
  if (now.serving) {
    std::deque<Waiting> w;
    w.swap(waiting);
    for (auto& x : w) HandleIncoming(std::move(x.in));
  }
}

void Pipeline::Impl::NotifyRole(const MemberStatus& now) {
  std::vector<std::pair<int, RoleListener>> ls;
  {
    std::lock_guard<std::mutex> l(mu);
    ls = role_listeners;
  }
  for (auto& [h, fn] : ls) fn(now);
}

// ---- sending, snapshot streams ----

void Pipeline::Impl::Send(uint64_t to, peer::PeerMessage&& m) {
  if (!net) return;
  std::lock_guard<std::mutex> l(hold_mu);
  auto it = transfers.find(to);
  if (it != transfers.end()) {  // behind the snapshot stream
    it->second->held.push_back(std::move(m));
    return;
  }
  net->Send(to, m);
}

void Pipeline::Impl::SendApp(uint64_t to, const member::AppMessage& m) {
  peer::PeerMessage pm;
  QFS_CHECK(m.SerializeToString(pm.mutable_app()));
  Send(to, std::move(pm));
}

void Pipeline::Impl::StartTransfer(uint64_t peer) {
  Store& s = *p->store_;
  if (s.snapshot_running()) s.WaitSnapshot();  // the stream needs the tree as it is right now
  uint64_t zxid = static_cast<uint64_t>(s.tree().last_zxid());
  auto t = std::make_shared<Transfer>();
  t->peer = peer;
  t->zxid = zxid;
  {
    std::lock_guard<std::mutex> l(hold_mu);
    transfers[peer] = t;
  }
  if (!s.StartSnapshot()) {
    QLOG_WARN("cannot take a snapshot for member %llu", static_cast<unsigned long long>(peer));
    AbortTransfer(peer);
    core->Disconnected(peer);
    return;
  }
  QLOG_INFO("sending a snapshot at zxid %s to member %llu", Hex(zxid).c_str(),
            static_cast<unsigned long long>(peer));
}

void Pipeline::Impl::PollTransfers() {
  std::vector<std::shared_ptr<Transfer>> ready;
  std::vector<uint64_t> busy;
  {
    std::lock_guard<std::mutex> l(hold_mu);
    if (transfers.empty()) return;
    for (auto& [peer, t] : transfers) {
      busy.push_back(peer);
      if (!t->streaming) ready.push_back(t);
    }
  }
  // A transfer in progress keeps both sides' initLimit timers from firing: the learner hears
  // keepalives while the snapshot is written, then chunks.
  auto now = Clock::now();
  for (uint64_t peer : busy) core->Progress(peer);
  for (auto& t : ready) {
    if (now < t->next_keepalive) continue;
    t->next_keepalive = now + std::chrono::milliseconds(kKeepaliveMs);
    peer::PeerMessage m;
    m.mutable_chunk()->set_zxid(t->zxid);
    m.mutable_chunk()->set_keepalive(true);
    net->Send(t->peer, m);
  }
  if (ready.empty()) return;
  Store& s = *p->store_;
  s.PollSnapshot();
  if (s.snapshot_running()) return;
  for (auto& t : ready) {
    if (s.last_snapshot_zxid() != t->zxid) {
      QLOG_WARN("the snapshot for member %llu failed", static_cast<unsigned long long>(t->peer));
      AbortTransfer(t->peer);
      core->Disconnected(t->peer);
      continue;
    }
    t->streaming = true;
    std::string path = store_options.data_dir + "/" + storage::SnapshotName(t->zxid);
    streamers.emplace_back([this, t, path] { Stream(t, path); });
  }
}

void Pipeline::Impl::Stream(std::shared_ptr<Transfer> t, std::string path) {
  int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    QLOG_WARN("cannot open %s for member %llu: %s", path.c_str(),
              static_cast<unsigned long long>(t->peer), strerror(errno));
    return;  // the learner times out and syncs again
  }
  off_t size = lseek(fd, 0, SEEK_END);
  uint64_t off = 0;
  std::string buf(kChunkBytes, '\0');
  double t0 = NowMs();
  for (;;) {
    if (t->abort) {
      close(fd);
      return;
    }
    if (net->queued_bytes(t->peer) > kStreamQueueBytes) {
      std::this_thread::sleep_for(std::chrono::microseconds(500));
      continue;
    }
    ssize_t n = pread(fd, buf.data(), buf.size(), static_cast<off_t>(off));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      QLOG_WARN("reading %s: %s", path.c_str(), strerror(errno));
      close(fd);
      return;
    }
    peer::PeerMessage m;
    auto* c = m.mutable_chunk();
    c->set_zxid(t->zxid);
    c->set_offset(off);
    c->set_data(buf.data(), static_cast<size_t>(n));
    off += static_cast<uint64_t>(n);
    c->set_last(off >= static_cast<uint64_t>(size));
    c->set_total_bytes(static_cast<uint64_t>(size));
    net->Send(t->peer, m);
    if (c->last()) break;
  }
  close(fd);
  std::lock_guard<std::mutex> l(hold_mu);
  auto it = transfers.find(t->peer);
  if (it == transfers.end() || it->second != t || t->abort) return;
  for (auto& m : t->held) net->Send(t->peer, m);
  transfers.erase(it);
  QLOG_INFO("snapshot at zxid %s sent to member %llu: %llu bytes in %.0f ms", Hex(t->zxid).c_str(),
            static_cast<unsigned long long>(t->peer), static_cast<unsigned long long>(off),
            NowMs() - t0);
  std::lock_guard<std::mutex> l2(mu);
  stats.snapshots_sent++;
}

void Pipeline::Impl::AbortTransfer(uint64_t peer) {
  std::lock_guard<std::mutex> l(hold_mu);
  auto it = transfers.find(peer);
  if (it == transfers.end()) return;
  it->second->abort = true;
  transfers.erase(it);
}

void Pipeline::Impl::Release() {
  std::vector<std::pair<ReplyFn, Reply>> out;
  while (!pending.empty() && pending.front().finished) {
    out.emplace_back(std::move(pending.front().done), std::move(pending.front().reply));
    pending.pop_front();
    first_tag++;
  }
  if (out.empty()) return;
  uint64_t ok = 0, bad = 0;
  for (auto& [done, reply] : out) (reply.err == Err::kOk ? ok : bad)++;
  {
    // Room first: a reply handler on the loop may submit the connection's next write at once.
    std::lock_guard<std::mutex> l(mu);
    outstanding -= out.size();
    stats.applied += ok;
    stats.failed += bad;
    space_cv.notify_all();
  }
  for (auto& [done, reply] : out)
    if (done) done(std::move(reply));
}

// ---- Pipeline ----

std::unique_ptr<Pipeline> Pipeline::Start(StoreOptions so, Options options, Status* error) {
  std::unique_ptr<Pipeline> p(new Pipeline());
  p->impl_ = std::make_unique<Impl>(p.get());
  Impl& m = *p->impl_;
  m.store_options = so;
  m.options = options;
  // Origin tags must not repeat across restarts (a txn proposed for an earlier run may still
  // commit): start above anything an earlier run could have used.
  m.first_tag = static_cast<uint64_t>(WallMs()) << 20;
  Status st = m.Init();
  if (!st.ok()) {
    *error = st;
    if (m.net) m.net->Stop();
    return nullptr;
  }
  m.stats.last_zxid = p->store_->tree().last_zxid();
  m.io_work = std::make_unique<asio::executor_work_guard<asio::io_context::executor_type>>(
      m.io.get_executor());
  m.thread = std::thread([&m] {
    pthread_setname_np(pthread_self(), "qfs-pipeline");
    m.Run();
  });
  *error = Status::Ok();
  return p;
}

Pipeline::~Pipeline() {
  Stop();
}

int Pipeline::AddApplyListener(ApplyListener l) {
  std::lock_guard<std::mutex> lock(impl_->mu);
  int h = impl_->next_handle++;
  impl_->apply_listeners.emplace_back(h, std::move(l));
  return h;
}

void Pipeline::RemoveApplyListener(int handle) {
  std::lock_guard<std::mutex> lock(impl_->mu);
  std::erase_if(impl_->apply_listeners, [handle](const auto& x) { return x.first == handle; });
}

int Pipeline::AddRoleListener(RoleListener l) {
  std::lock_guard<std::mutex> lock(impl_->mu);
  int h = impl_->next_handle++;
  impl_->role_listeners.emplace_back(h, std::move(l));
  return h;
}

void Pipeline::RemoveRoleListener(int handle) {
  std::lock_guard<std::mutex> lock(impl_->mu);
  std::erase_if(impl_->role_listeners, [handle](const auto& x) { return x.first == handle; });
}

void Pipeline::SetSessionTouchHandler(std::function<void(const SessionTouches&)> h) {
  std::lock_guard<std::mutex> lock(impl_->mu);
  impl_->touch_handler = std::move(h);
}

void Pipeline::ForwardSessionTouches(SessionTouches touches) {
  Impl& m = *impl_;
  if (!m.net || touches.empty()) return;
  MemberStatus s = member();
  if (!s.serving || s.role == zab::Role::kLeading || s.leader == 0) return;
  member::AppMessage a;
  auto* t = a.mutable_touch();
  for (auto& [id, to] : touches) {
    t->add_session_ids(id);
    t->add_timeouts_ms(to);
  }
  peer::PeerMessage pm;
  QFS_CHECK(a.SerializeToString(pm.mutable_app()));
  m.Send(s.leader, std::move(pm));
}

void Pipeline::Submit(tree::Request req, ReplyFn done) {
  Enqueue(std::move(req), std::move(done), true, 0);
}

bool Pipeline::TrySubmit(tree::Request req, ReplyFn done) {
  return Enqueue(std::move(req), std::move(done), false, 0);
}

void Pipeline::Sync(ReplyFn done, bool linearizable) {
  Enqueue(tree::Request(), std::move(done), true, linearizable ? 2 : 1);
}

bool Pipeline::Enqueue(tree::Request&& req, ReplyFn&& done, bool block, int sync) {
  Impl& m = *impl_;
  std::unique_lock<std::mutex> l(m.mu);
  // The loop itself never waits for room (it is what makes room): a blocking submit from a
  // handler on the loop goes over the limit instead.
  if (block && m.OnLoop()) {
  } else if (block) {
    m.space_cv.wait(l, [&] { return m.outstanding < m.options.max_outstanding || m.stopping; });
  } else if (m.outstanding >= m.options.max_outstanding && !m.stopping) {
    return false;
  }
  if (m.stopping) {
    l.unlock();
    Reply r;
    r.err = Err::kConnectionLoss;
    done(std::move(r));
    return true;
  }
  m.outstanding++;
  m.stats.submitted++;
  Impl::Event e;
  e.in = {std::move(req), std::move(done), sync};
  m.inbox.push_back(std::move(e));
  l.unlock();
  m.Wake();
  return true;
}

void Pipeline::RequestSnapshot() {
  {
    std::lock_guard<std::mutex> l(impl_->mu);
    impl_->snapshot_requested = true;
  }
  impl_->Wake();
}

void Pipeline::Stop() {
  if (!impl_) return;
  Impl& m = *impl_;
  {
    std::lock_guard<std::mutex> l(m.mu);
    if (m.stopped) return;
    m.stopping = true;
    m.space_cv.notify_all();
  }
  m.Wake();
  if (m.thread.joinable()) m.thread.join();
  {
    std::lock_guard<std::mutex> l(m.hold_mu);
    for (auto& [peer, t] : m.transfers) t->abort = true;
  }
  for (auto& t : m.streamers)
    if (t.joinable()) t.join();
  if (m.net) m.net->Stop();
  if (store_) {
    store_->log().Close();
    store_->WaitSnapshot();
  }
  std::lock_guard<std::mutex> l(m.mu);
  m.stopped = true;
}

bool Pipeline::on_loop() const {
  return impl_->OnLoop();
}

asio::io_context& Pipeline::loop() {
  return impl_->io;
}

Pipeline::Stats Pipeline::stats() const {
  std::lock_guard<std::mutex> l(impl_->mu);
  Stats s = impl_->stats;
  s.outstanding = impl_->outstanding;
  return s;
}

MemberStatus Pipeline::member() const {
  std::lock_guard<std::mutex> l(impl_->mu);
  return impl_->member;
}

}  // namespace qfs
