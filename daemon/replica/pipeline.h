// The replica: one member's znode tree, its log, and the ZAB core that decides what goes into
// them. The class keeps its historical name: it is the write pipeline of every member.
//
// One state-machine thread, the member's event loop (loop(); docs/ensemble.md, "Threads"), owns
// the ZAB core (consensus/zab), the peer links (consensus/transport on the loop) and the client
// port's connections, and carries out the core's Ready: log appends (group-committed by the
// log's writer thread), epoch files, applies to the tree, messages to peers, snapshot streams. On
// the leader a write is prepared (daemon/tree/prepare) and proposed; on a learner it is forwarded
// to the leader and answered when this member applies the txn (so the reply reflects this member's
// own tree). A member with no server.N lines is an ensemble of one and takes the same path.
//
// Replies are released in the order requests were submitted. Reads take a shared lock on the
// tree; applies take it exclusively, a batch at a time.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <shared_mutex>
#include <thread>
#include <vector>

#include "consensus/zab/core.h"
#include "daemon/config.h"
#include "daemon/replica/store.h"
#include "daemon/tree/prepare.h"

namespace asio {
class io_context;
}

namespace qfs {

namespace transport {
class PeerTransport;
}

struct Reply {
  tree::Err err = tree::Err::kOk;
  std::vector<tree::OpResult> results;  // one per op (a multi's per-op results on failure too)
  int64_t zxid = 0;                     // the txn's zxid; for failures, the last applied zxid
};
using ReplyFn = std::function<void(Reply&&)>;
using ApplyListener = std::function<void(int64_t zxid, const std::vector<tree::Change>&)>;

// What this member is doing in the ensemble.
struct MemberStatus {
  zab::Role role = zab::Role::kLooking;
  uint64_t self = 0;
  uint64_t leader = 0;
  uint64_t epoch = 0;
  bool serving = false;    // up to date with a leader that has a quorum
  bool standalone = true;  // no server.N lines
  // readonlymode.enabled and no leader found for the grace period: read-only clients are
  // served from the local tree, every write and sync fails with kNotReadOnly. Cleared as soon
  // as the member finds a leader (docs/read-only.md).
  bool read_only = false;
  size_t voters = 1, observers = 0;
  // This member's client address in the committed configuration, when a reconfig gave it one
  // (ZooKeeper's `;[host:]port`); port 0 otherwise, and zoo.cfg's clientPort applies. The
  // client port listens there (docs/reconfig.md).
  std::string client_host;
  int client_port = 0;
};
using RoleListener = std::function<void(const MemberStatus&)>;
// "leader", "follower", "observer" or "looking" (ZooKeeper's names in srvr/mntr).
const char* RoleLabel(zab::Role r);
// (session id, timeout ms) of sessions alive on some learner.
using SessionTouches = std::vector<std::pair<int64_t, int32_t>>;

class Pipeline {
 public:
  struct Options {
    size_t max_outstanding = 1000;  // requests submitted and not yet replied to
    uint64_t snap_count = 100000;   // txns between snapshots (0: never)
    // The ensemble: server.N lines, myid, quorum.secret, tickTime/initLimit/syncLimit,
    // writeWaitMs. Without server lines the member is an ensemble of one (myid 1).
    Config config;
    // Committed txns kept in memory to bring a follower up to date (0: the core's default);
    // older ones are read from the log, or the follower gets a snapshot.
    uint64_t committed_window = 0;
  };
  struct Stats {
    uint64_t submitted = 0;
    uint64_t applied = 0;  // writes of this member's clients applied
    uint64_t failed = 0;   // replied with an error
    uint64_t outstanding = 0;
    int64_t last_zxid = 0;
    uint64_t txns_applied = 0;  // every txn applied, whoever proposed it
    uint64_t forwarded = 0;     // writes sent to the leader
    uint64_t snapshots_sent = 0, snapshots_received = 0;
    uint64_t elections = 0;       // times this member went looking
    zab::LearnerCounts learners;  // while leading (mntr's zk_learners, zk_synced_followers...)
    // Quotas (docs/quotas.md): soft limits crossed upwards by txns this member applied, and
    // writes this member refused (as leader) over a hard limit, by top-level namespace.
    uint64_t quota_soft_crossings = 0;
    std::map<std::string, uint64_t> quota_exceeded;
  };

  // Opens the store, starts the peer transport (ensemble) and the state-machine thread.
  static std::unique_ptr<Pipeline> Start(StoreOptions store_options, Options options,
                                         Status* error);
  ~Pipeline();  // Stop()

  // Queues a write request. Blocks while max_outstanding requests are in flight. `done` runs on
  // the pipeline thread once the txn is applied here, or with an error: kConnectionLoss when no
  // leader could take it within writeWaitMs (the outcome is then unknown if it was sent).
  void Submit(tree::Request req, ReplyFn done);
  // Like Submit but never blocks: false when the outstanding limit is reached.
  bool TrySubmit(tree::Request req, ReplyFn done);
  // The same for a client port's write: `packet` is the request as the client sent it (header
  // and body), and `req` what the client port decoded from it. A learner forwards `packet`,
  // not a re-encoding of `req`, and the leader decodes it with the client decoder
  // (docs/ensemble.md, "Copies of a txn"). An empty packet forwards `req`.
  // Both are moved from only when it returns true (a retry can pass them again).
  bool TrySubmitPacket(tree::Request&& req, std::string&& packet, ReplyFn done);
  // Builds the tree request of a forwarded client packet (the client port's own decoding); set
  // once, before Start's peers connect. Without one, learners forward decoded requests.
  using ClientDecoder = std::function<bool(std::string_view packet, int64_t session_id,
                                           const std::vector<tree::Id>& auth, tree::Request* out)>;
  void SetClientDecoder(ClientDecoder d);
  // Whether writes now go to another member (a hint, read without a lock: the client port keeps
  // a request's packet only then).
  bool forwarding() const;

  // Runs fn(const tree::DataTree&) under the tree's shared lock.
  template <typename F>
  auto Read(F&& fn) const {
    std::shared_lock<std::shared_mutex> lock(tree_mu_);
    return fn(static_cast<const tree::DataTree&>(store_->tree()));
  }

  // Listeners are called on the pipeline thread after each applied txn, in the order they were
  // added, with the tree lock held so that no reader sees the change before the listener has
  // queued its watch events (or cache invalidations). Keep them short and non-blocking.
  // Returns a handle for RemoveApplyListener.
  int AddApplyListener(ApplyListener l);
  void RemoveApplyListener(int handle);
  // Called on the pipeline thread whenever the member's role, leader or serving flag changes.
  // When a member stops serving and later serves again, its tree may have been replaced
  // wholesale (TRUNC / SNAP sync): listeners that cache tree contents must drop them then.
  int AddRoleListener(RoleListener l);
  void RemoveRoleListener(int handle);

  // Answers `done` (err kOk, zxid) once every write submitted before it has been answered and
  // this member has applied everything the leader had committed when it got the sync (ZooKeeper's
  // sync). `linearizable` adds a quorum round, so that a deposed leader cannot answer.
  void Sync(ReplyFn done, bool linearizable = false);

  // Sessions: a learner reports the sessions connected to it; the leader hears them through the
  // handler (on the pipeline thread).
  void ForwardSessionTouches(SessionTouches touches);
  void SetSessionTouchHandler(std::function<void(const SessionTouches&)> h);

  // Answers everything in flight, then stops. Idempotent.
  void Stop();

  // The member's event loop, run by the pipeline thread until Stop(): the client port serves its
  // connections on it, so a request and its reply need no other thread (docs/ensemble.md,
  // "Threads"). Handlers on it must not block; Submit from it never waits for room.
  asio::io_context& loop();
  // True on the loop's own thread.
  bool on_loop() const;

  Stats stats() const;
  MemberStatus member() const;
  // The store is replaced when a learner installs a snapshot or truncates: outside the
  // pipeline thread, use these (they hold the tree lock) rather than store().
  Store& store() { return *store_; }
  storage::TxnLog::Stats log_stats() const {
    std::shared_lock<std::shared_mutex> lock(tree_mu_);
    return store_->log().stats();
  }
  SnapshotStats snapshot_stats() const {
    std::shared_lock<std::shared_mutex> lock(tree_mu_);
    return store_->snapshot_stats();
  }
  // Starts a snapshot at the next txn boundary (tests, admin).
  void RequestSnapshot();

  struct Impl;

 private:
  Pipeline() = default;
  bool Enqueue(tree::Request&& req, ReplyFn&& done, bool block, int sync,
               std::string&& packet = {});

  std::unique_ptr<Store> store_;
  mutable std::shared_mutex tree_mu_;
  std::unique_ptr<Impl> impl_;
  friend struct Impl;
};

}  // namespace qfs
