// The session rules for every front end (the client port and the FUSE mount), so that neither
// can skip one: timeouts clamped to [minSessionTimeout, maxSessionTimeout], the password a
// reconnecting client must show, a late ping never reviving an expired session, and expiry.
//
// Sessions are created and closed by txns (createSession / closeSession) through the pipeline.
// The leader's tracker (session_tracker.h) decides expiry: a thread of this service checks it
// every half tick and proposes closeSession for each session gone quiet. A learner instead
// forwards to the leader, every half tick, the sessions that are open on it. Local sessions
// (the mount's) live in this process: touched every half tick while the daemon runs, so their
// ephemerals go when the daemon dies or is cut off for longer than the timeout.
//
// Threading: internally locked, callable from any thread, except that Create, Resume,
// ResumeReadOnly, OpenLocal and CloseLocal use the pipeline (its tree lock, or a wait for a
// txn): never call them on the pipeline thread (from an apply, role or reply callback).
// Start() before the rest; Stop() before the pipeline stops.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>
#include <unordered_map>

#include "consensus/util/result.h"
#include "daemon/config.h"
#include "daemon/replica/pipeline.h"
#include "daemon/service/session_tracker.h"

namespace qfs::service {

// What a front end holding sessions on connections tells the service. Both are called on the
// service's thread or the pipeline thread, never under the service's lock.
struct SessionHolder {
  // Appends (id, timeout) for every session with an open connection here (kept alive on a
  // learner: the leader's tracker hears of them).
  std::function<void(SessionTouches*)> open;
  // The session's closeSession for expiry committed: close its connection.
  std::function<void(int64_t id)> expired;
};

class Sessions {
 public:
  Sessions(const Config& config, Pipeline* pipeline);
  ~Sessions();  // Stop()
  // The network front end, if any; before Start(). It must outlive the pipeline's replies.
  void SetHolder(SessionHolder holder);
  // Loads (or derives) the password secret, tracks the sessions in the tree (each with a full
  // timeout from now, as a new leader) and starts the expiry thread.
  Status Start();
  void Stop();

  // The timeout a client asking for `ms` gets.
  int32_t ClampTimeout(int32_t ms) const;

  // A new session: an id, then its createSession txn. `done(err, id)` runs on the pipeline
  // thread once it committed (the session is tracked by then) or failed. False, and nothing
  // submitted, when the pipeline has too many writes in flight.
  bool Create(int32_t timeout_ms, std::function<void(tree::Err, int64_t id)> done);
  // A reconnect to session `id`: true (and its deadline moved) if it is live in the tree, not
  // expired here, and `password` is its own. Takes the tree's shared lock.
  bool Resume(int64_t id, std::string_view password, int32_t timeout_ms);
  // The password a client of session `id` must show to resume it.
  std::string Password(int64_t id) const;
  // Activity on session `id`: moves its deadline unless it already expired.
  void Touch(int64_t id, int32_t timeout_ms);
  // Session `id`'s closeSession committed (its client closed it): stop tracking it.
  void Closed(int64_t id);

  // Read-only sessions (docs/read-only.md): a read-only member gives them to clients that asked
  // for one. No txn: they live in this process only, expire after their timeout without
  // activity (Touch), and all go when the member leaves read-only mode (DropReadOnly); a
  // read-write member then answers "expired" to their clients, which start a new session.
  int64_t CreateReadOnly(int32_t timeout_ms);
  // A reconnect to a read-only member: true for a live read-only session of this member, or a
  // session of the tree (created while the ensemble served), with `password` its own. Moves no
  // expiry deadline of the tree's sessions: only the majority's leader decides those.
  bool ResumeReadOnly(int64_t id, std::string_view password, int32_t timeout_ms);
  // Read-only session `id`'s client closed it.
  void ClosedReadOnly(int64_t id);
  // The member left read-only mode.
  void DropReadOnly();
  // Live read-only sessions (mntr's zk_local_sessions, as ZooKeeper counts them).
  size_t ReadOnlyCount();

  // Sessions of in-process clients (the FUSE mount). Blocking: they wait for the txn.
  Result<int64_t> OpenLocal(int32_t timeout_ms);
  Status CloseLocal(int64_t id);

 private:
  Status LoadSecret();
  void Run();
  void CheckExpiry();

  const Config config_;
  Pipeline* const pipeline_;
  SessionHolder holder_;  // set before Start(), then read-only
  uint64_t secret_ = 0;   // set by Start(), then read-only
  std::unique_ptr<SessionTracker> tracker_;
  int role_listener_ = -1;

  std::mutex mu_;  // the members below
  std::condition_variable wake_;
  bool stopping_ = false;
  std::unordered_map<int64_t, int32_t> local_;  // id -> timeout ms
  struct ReadOnlySession {
    int32_t timeout_ms = 0;
    int64_t deadline_ms = 0;  // monotonic ms; moved by Touch
  };
  std::unordered_map<int64_t, ReadOnlySession> read_only_;
  std::thread thread_;
};

}  // namespace qfs::service
