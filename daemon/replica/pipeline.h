// The write pipeline of the leader: prepare -> log (group commit) -> apply -> reply.
// With one member, this member is the leader of an ensemble of one; the ZAB broadcast slots in
// between "log" and "apply" (apply on commit instead of on local durability).
//
// One state-machine thread prepares and applies; the log's writer thread fsyncs. Replies are
// released in the order requests were prepared, so a client never sees a reply that reflects a
// state older than an earlier reply. Reads take a shared lock on the tree; applies take it
// exclusively, a batch at a time.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <mutex>
#include <shared_mutex>
#include <thread>
#include <vector>

#include "daemon/replica/store.h"
#include "daemon/tree/prepare.h"

namespace qfs {

struct Reply {
  tree::Err err = tree::Err::kOk;
  std::vector<tree::OpResult> results;  // one per op (a multi's per-op results on failure too)
  int64_t zxid = 0;                     // the txn's zxid; for failures, the last applied zxid
};
using ReplyFn = std::function<void(Reply&&)>;
using ApplyListener = std::function<void(int64_t zxid, const std::vector<tree::Change>&)>;

class Pipeline {
 public:
  struct Options {
    size_t max_outstanding = 1000;  // requests submitted and not yet replied to
    uint64_t snap_count = 100000;   // txns between snapshots (0: never)
  };
  struct Stats {
    uint64_t submitted = 0;
    uint64_t applied = 0;
    uint64_t failed = 0;  // replied with an error
    uint64_t outstanding = 0;
    int64_t last_zxid = 0;
  };

  // Takes over the store: installs the log callbacks, starts a new epoch, starts the thread.
  static std::unique_ptr<Pipeline> Start(StoreOptions store_options, Options options,
                                         Status* error);
  ~Pipeline();  // Stop()

  // Queues a write request. Blocks while max_outstanding requests are in flight. `done` runs on
  // the pipeline thread once the txn is applied, or with an error. After Stop() it is answered
  // with kConnectionLoss.
  void Submit(tree::Request req, ReplyFn done);
  // Like Submit but never blocks: false when the outstanding limit is reached.
  bool TrySubmit(tree::Request req, ReplyFn done);

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

  // Answers `done` (err kOk, zxid = the last applied zxid) once every write submitted before
  // it has been answered: the caller then reads state at least that fresh.
  void Sync(ReplyFn done);

  // Answers everything in flight (waits for durable txns to apply), then stops. Idempotent.
  void Stop();

  Stats stats() const;
  Store& store() { return *store_; }
  // Starts a snapshot at the next txn boundary (tests, admin).
  void RequestSnapshot();

 private:
  struct Incoming {
    tree::Request req;
    ReplyFn done;
    bool sync = false;  // a Sync(): answered in order, prepares nothing
  };
  struct InFlight {
    int64_t zxid = 0;  // 0: a reply-only entry (the request failed in prepare)
    txn::Txn txn;
    ReplyFn done;
    Reply reply;
  };

  Pipeline() = default;
  bool Enqueue(tree::Request&& req, ReplyFn&& done, bool block, bool sync = false);
  void Run();
  void ApplyDurable(uint64_t durable);
  void FailFrom(uint64_t first_failed, const Status& why);
  void PrepareOne(Incoming&& in);
  int64_t NextZxid();
  void Release(std::vector<std::pair<ReplyFn, Reply>>* replies);

  std::unique_ptr<Store> store_;
  std::unique_ptr<tree::Preparer> preparer_;
  Options options_;
  mutable std::shared_mutex tree_mu_;

  mutable std::mutex mu_;
  std::condition_variable cv_;        // wakes the pipeline thread
  std::condition_variable space_cv_;  // wakes blocked submitters
  std::deque<Incoming> incoming_;
  uint64_t durable_ = 0;
  bool failed_ = false;
  uint64_t failed_from_ = 0;
  Status failed_why_;
  bool stopping_ = false;
  bool stopped_ = false;
  bool snapshot_requested_ = false;
  size_t outstanding_ = 0;  // submitted and not yet answered
  Stats stats_;

  // Pipeline-thread state.
  std::deque<InFlight> inflight_;
  bool draining_ = false;  // prepared txns were abandoned: wait until none is in flight
  uint64_t epoch_ = 0;
  uint32_t counter_ = 0;
  uint64_t since_snapshot_ = 0;
  std::vector<std::pair<int, ApplyListener>> listeners_;  // guarded by mu_
  int next_listener_ = 1;
  std::thread thread_;
};

}  // namespace qfs
