// Internal to daemon/replica: the state of a Pipeline (one member's replica shell) and the
// helpers its files share. pipeline.cc is the loop and the Ready executor; forwarding.cc takes
// client writes to the leader and answers them; snapshot_transfer.cc streams and installs
// snapshots; membership.cc keeps the configuration and the peer links (docs/ensemble.md,
// docs/reconfig.md). Nothing outside these files includes this header.
#pragma once

#include <algorithm>
#include <asio.hpp>
#include <chrono>
#include <cinttypes>
#include <cstdio>
#include <random>
#include <set>

#include "consensus/storage/snapshot_file.h"
#include "consensus/transport/peer_transport.h"
#include "daemon/proto/member.pb.h"
#include "daemon/replica/pipeline.h"
#include "daemon/tree/reconfig.h"

namespace qfs {
namespace replica {

using Clock = std::chrono::steady_clock;

inline int64_t WallMs() {
  using namespace std::chrono;
  return duration_cast<milliseconds>(system_clock::now().time_since_epoch()).count();
}

inline std::string Hex(uint64_t v) {
  char b[24];
  snprintf(b, sizeof b, "0x%" PRIx64, v);
  return b;
}

constexpr int kBaseTickMs = 10;  // the core's tick; tickTime-based limits are converted to it
constexpr size_t kChunkBytes = 1 << 20;
constexpr size_t kStreamQueueBytes = 4 << 20;  // pace a snapshot stream to the peer's link
constexpr int kKeepaliveMs = 100;              // while the leader writes a snapshot for a learner

// Links to members a configuration dropped are closed this long after it: the COMMIT that
// tells them (and a removed leader's last messages) must get out first.
constexpr auto kUnlinkDelay = std::chrono::seconds(5);
// A guest (a server outside the configuration that dialed this member, docs/reconfig.md,
// "Joining servers") is unlinked once nothing came from it for this long. A learner of this
// leader answers its pings every tickTime/2 and a looking server sends votes every 50 ms, so
// only a server that stopped, or a dormant one (it asks every 400 ms), is ever that silent.
constexpr auto kGuestSilence = std::chrono::seconds(10);
// The configuration state file in dataDir (docs/reconfig.md).
constexpr const char* kDynamicFile = "zoo.cfg.dynamic";

// membership.cc
txn::ServerSpec SpecOf(const Config::Server& s);
zab::Membership MembershipOf(const tree::ServerList& l);
// The servers of a reconfig txn's payload, or nullopt for any other txn.
std::optional<tree::ServerList> ReconfigServers(const std::string& payload);
// The server lines of zoo.cfg.dynamic. A member whose address this member did not know when it
// wrote the file is written `server.N=unknown:0:0:role` (Learn skips it).
Result<tree::ServerList> ParseMembers(const std::string& text);

// Cheap pre-check: a Txn payload with field 18 (reconfig, length-delimited) has its tag bytes.
inline bool MaybeReconfig(const std::string& payload) {
  return payload.find("\x92\x01", 0, 2) != std::string::npos;
}

}  // namespace replica

struct Pipeline::Impl : transport::Handler, zab::LogReader {
  using Clock = replica::Clock;
  using Err = tree::Err;

  struct Incoming {
    tree::Request req;
    ReplyFn done;
    int sync = 0;        // 1: a sync, 2: a linearizable sync
    std::string packet;  // the client's own bytes of `req`, when a client port sent it
  };
  struct Event {
    enum Type { kRequest, kPeer, kDisconnected, kGuest } type = kRequest;
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
  // Vectors, swapped each turn so both keep their capacity: a deque of Events allocated a
  // block per event and a map per turn (the loop's most frequent allocations).
  std::vector<Event> inbox;
  std::vector<Event> events;         // the loop's: this turn's events
  std::vector<uint64_t> send_group;  // ProcessReady's: the peers one message goes to
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
  ClientDecoder client_decoder;        // set before traffic, as touch_handler
  std::atomic<bool> forwarding{true};  // role != leading (Pipeline::forwarding)

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
  bool removed = false;                   // the core's RoleChange.removed, as last reported
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
  // The peers LinkPeers wants (the configuration's members but this one), and the guests the
  // transport accepted that are not among them, with when this member last heard from each.
  std::set<uint64_t> linked;
  std::map<uint64_t, Clock::time_point> guests;

  tree::ServerList ServersOf(const zab::Membership& m) const;
  // The address to dial for a peer: its line in this member's own file when it has one (a
  // member may reach a peer through a proxy, docs/ensemble.md), else the configuration's.
  std::optional<transport::PeerAddress> DialAddress(uint64_t id) const;
  void Learn(const tree::ServerList& l);
  // Addresses carried beside votes (PeerMessage.servers; docs/reconfig.md).
  void AttachAddresses(const peer::Vote& v, peer::PeerMessage* m) const;
  void LearnAddresses(const peer::PeerMessage& m);
  Status LoadDynamic();
  // The members' addresses of the newest configuration applied to the tree (a snapshot holds
  // the reconfig txns below it only as /zookeeper/config's text).
  void LearnFromTree();
  void PersistConfig(const zab::ConfigState& cs);
  // member.client_host/client_port from a committed configuration (call with mu held); true
  // when they changed.
  bool SetClientAddress(const zab::ConfigState& cs);
  // This member's client address in the last committed configuration seen (from its own
  // zoo.cfg line at start: host "0.0.0.0" when the line names none; port 0 without one).
  std::pair<std::string, int> committed_client;
  void LinkPeers(const zab::ConfigState& cs);
  // Drops members a configuration left out kUnlinkDelay after, and guests silent for
  // kGuestSilence.
  void UnlinkDue();
  void GuestAccepted(uint64_t id);

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
  void OnGuest(const transport::PeerAddress& at) override {
    Event e;
    e.type = Event::kGuest;
    e.peer = at.id;
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
      if (replica::MaybeReconfig(x.payload)) {
        if (auto servers = replica::ReconfigServers(x.payload))
          x.config = replica::MembershipOf(*servers);
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
  void SendToMany(const std::vector<uint64_t>& to, peer::PeerMessage&& m);
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

}  // namespace qfs
