// The ZAB core: one member's view of the protocol as a pure state machine.
//
// Inputs are method calls (a message arrived, a tick elapsed, the shell persisted something, a
// client wants a txn proposed); outputs accumulate in a Ready that the shell takes with
// TakeReady() and carries out in the order documented on Ready. No I/O, no clocks, no threads,
// no randomness inside: the same inputs give the same outputs, which is what lets the simulator
// replay a seed exactly. Not thread-safe: one thread owns a Core.
//
// Phases (ZooKeeper's ZAB): election (fast leader election votes) -> discovery (FOLLOWERINFO,
// NEWEPOCH, ACKEPOCH; acceptedEpoch persisted before ACKEPOCH) -> synchronization (DIFF, TRUNC
// or SNAP, NEWLEADER; txns durable, then currentEpoch, then ACK; UPTODATE) -> broadcast
// (PROPOSAL, ACK after local durability, COMMIT at a quorum; INFORM to observers).
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "consensus/proto/peer.pb.h"
#include "consensus/util/shared_bytes.h"

namespace qfs::zab {

using Zxid = uint64_t;
using PeerId = uint64_t;  // server.N's N; 0 is never a member

inline uint64_t EpochOf(Zxid z) {
  return z >> 32;
}
inline uint32_t CounterOf(Zxid z) {
  return static_cast<uint32_t>(z);
}
inline Zxid MakeZxid(uint64_t epoch, uint32_t counter) {
  return (epoch << 32) | counter;
}

// A configuration: who votes and who observes. Ids are sorted and unique, and no id is in
// both lists. A member need not be in its own configuration (a joining server, or one that was
// removed): it then follows a leader as a non-voting learner. See docs/reconfig.md.
struct Membership {
  std::vector<PeerId> voters;
  std::vector<PeerId> observers;
  bool operator==(const Membership&) const = default;
  bool IsVoter(PeerId p) const;
  bool IsMember(PeerId p) const;
  // A strict majority of `voters` is in `who`.
  bool Majority(const std::vector<PeerId>& who) const;
  // Sorted, unique, disjoint, at least one voter.
  bool Valid() const;
};

// The configuration a member acts under: the newest one in its log (`current`, from the
// reconfig entry at `current_zxid`; 0: the static one), and while that entry is not known to
// be committed, the one before it (`previous`): every quorum then needs a majority of both.
struct ConfigState {
  Membership current;
  Zxid current_zxid = 0;
  std::optional<Membership> previous;
  Zxid previous_zxid = 0;
  bool operator==(const ConfigState&) const = default;
};

struct Config {
  PeerId self = 0;
  // The static configuration, used when InitialState.config is empty.
  std::vector<PeerId> voters;     // participants (self included when it votes)
  std::vector<PeerId> observers;  // non-voting members (self included when it observes)

  // Durations are counted in ticks (calls to Tick()).
  int election_finalize_ticks = 2;  // wait this long for a better vote once a quorum agrees
  int vote_resend_ticks = 5;        // resend our vote while looking (doubles up to 8x)
  int init_ticks = 100;             // discovery + sync must finish within this (initLimit)
  int sync_ticks = 50;              // silence tolerated in broadcast (syncLimit)
  int ping_ticks = 10;              // leader heartbeat period

  // Largest counter a leader assigns before it forces a new epoch (tests make it small).
  uint32_t max_counter = 0xffffffffu;
  // Sync by DIFF only if the leader can produce at most this many txns for the learner;
  // otherwise SNAP.
  uint64_t max_diff_txns = 1000000;
  // Recent committed txns kept in memory for DIFF (older ones come from LogReader).
  uint64_t committed_window = 10000;
};

struct Entry {
  Zxid zxid = 0;
  SharedBytes payload;  // shared, not copied, by the window, the Ready and the log
  PeerId origin = 0;    // the member whose client proposed it, and its tag (for the reply)
  uint64_t origin_tag = 0;
  // A reconfig entry: the whole new configuration. The shell stores it with the entry (its
  // payload carries it) and gives it back from LogReader and in InitialState.
  std::optional<Membership> config;
};

// Durable state the shell recovered at start.
struct InitialState {
  uint64_t accepted_epoch = 0;
  uint64_t current_epoch = 0;
  Zxid last_zxid = 0;  // last txn in the log (or the snapshot): the shell has applied it
  // Newest epochs of the history held (snapshot + log) and the last zxid in each, newest
  // first (see FollowerInfo.epochs). A snapshot at zxid S counts as holding S in EpochOf(S);
  // epochs below the oldest one the shell can vouch for are left out (the leader then SNAPs).
  std::vector<peer::EpochEnd> epochs;
  // The configuration state last persisted from Ready.config (nullopt: the static one of
  // Config, version 0), then the reconfig entries of the log with a zxid above its
  // current_zxid, in order (a crash may come between a Ready's append and its config).
  std::optional<ConfigState> config;
  std::vector<std::pair<Zxid, Membership>> log_configs;
};

// Read access to this member's durable log, for DIFF. Implemented by the shell.
class LogReader {
 public:
  virtual ~LogReader() = default;
  // Appends to *out the entries with zxid > after, in order, at most max_entries of them.
  // Returns false if the log no longer holds the entry right after `after` (purged, or the
  // state below it exists only as a snapshot): the learner then needs a SNAP.
  virtual bool ReadAfter(Zxid after, size_t max_entries, std::vector<Entry>* out) = 0;
  // The lowest zxid the shell can truncate to (Ready.truncate_after rebuilds the tree from a
  // snapshot at or below the cut plus the log): its oldest snapshot when the log does not
  // reach back to zxid 0, else 0. Sent in FOLLOWERINFO so the leader SNAPs instead of asking
  // for a TRUNC the shell could not carry out.
  virtual Zxid TruncateFloor() { return 0; }
};

enum class Role { kLooking, kFollowing, kLeading, kObserving };
const char* RoleName(Role r);

struct Outgoing {
  PeerId to = 0;
  peer::ZabMessage msg;
};

struct RoleChange {
  Role role = Role::kLooking;
  PeerId leader = 0;     // 0 while looking
  uint64_t epoch = 0;    // the established epoch
  bool serving = false;  // up to date with a leader that has a quorum: may serve clients
  // A committed configuration left this member out: it takes no further part (no votes, no
  // learning) until restarted. See docs/reconfig.md.
  bool removed = false;
};

struct SyncDone {
  uint64_t tag = 0;
  Zxid zxid = 0;  // answer once the applied zxid reaches this
};

// What the shell must do, in exactly this order. The shell takes the Ready after every input
// (Tick, Step, Disconnected, Persisted, SnapshotInstalled, Propose, Sync) and carries it out
// before giving the core its next input: zxids of snapshots and truncations refer to the
// state at the end of that Ready. One exception, for batching: several inputs that can only
// add appends, applies, messages and syncs_done (Propose, Sync, and Step of a Proposal, Ack,
// Commit, Inform, Ping or PingReply) may be given in a row and their Ready taken once; the
// lists then hold each input's items in input order. Any other input needs the Ready before
// it carried out first.
struct Ready {
  // 1. Drop every log entry after this zxid; if the tree applied beyond it, rebuild the tree
  //    from the newest snapshot at or below it plus the log (TRUNC). Synchronous.
  std::optional<Zxid> truncate_after;
  // 2. The leader sent a snapshot at this zxid (SyncStart.SNAP): its SnapshotChunks came on the
  //    leader's link just BEFORE that SyncStart (see step 6). The shell replaces the tree with
  //    it, makes it durable, restarts the log after it (forgetting older entries and
  //    snapshots), then calls SnapshotInstalled(zxid). The core buffers the leader's messages
  //    that arrive before that call, so the shell may keep delivering them.
  std::optional<Zxid> install_snapshot;
  // 3. Append to the log, in order. Asynchronous: report with Persisted(zxid) once durable.
  std::vector<Entry> append;
  // 4. Persist these epochs synchronously (acceptedEpoch before currentEpoch if both). The core
  //    asks only once every txn that must precede them is durable.
  std::optional<uint64_t> accepted_epoch;
  std::optional<uint64_t> current_epoch;
  // 4b. The configuration state changed (a reconfig entry appended, truncated or committed; a
  //    snapshot or a leader's sync brought one): persist it synchronously, atomically (it is
  //    InitialState.config after a restart). The newest committed configuration is
  //    `previous` when set, else `current`.
  std::optional<ConfigState> config;
  // 5. Apply these committed txns to the tree, in order (zxids increase, none applied twice).
  std::vector<Entry> apply;
  // 6. Stream a snapshot of the tree as it is after step 5 to each of these peers, then send
  //    them the messages of step 7 (and later) only after the whole snapshot. (The core never
  //    adds applies to a Ready after a snapshot was asked for in it: they wait for the next.)
  std::vector<PeerId> send_snapshot;
  // 6b. Close the link to each of these peers: the session with it is over (a learner left its
  //    leader, a leader dropped a learner). Messages still queued or in flight on the old link
  //    must be dropped, and the closure must not be reported back to this core through
  //    Disconnected; the peer's side must get Disconnected. Step 7 may send to the peer again:
  //    that goes on a new link.
  std::vector<PeerId> disconnect;
  // 7. Send, each peer's messages in order.
  std::vector<Outgoing> messages;
  // 8. Answer syncs and learn the new role (last one wins).
  std::vector<SyncDone> syncs_done;
  std::optional<RoleChange> role_change;

  bool empty() const {
    return !truncate_after && !install_snapshot && append.empty() && !accepted_epoch &&
           !current_epoch && !config && apply.empty() && send_snapshot.empty() &&
           disconnect.empty() && messages.empty() && syncs_done.empty() && !role_change;
  }
};

enum class ProposeError {
  kNotLeader,
  kNotServing,
  kEpochExhausted,
  kReconfigInProgress,  // a reconfig entry is not committed yet (ZRECONFIGINPROGRESS)
  kNewConfigNoQuorum,   // a majority of the new voters is not connected and synced
};

// A leader's learners, as ZooKeeper's mntr reports them (all zero unless leading).
struct LearnerCounts {
  size_t learners = 0;          // connected, in any phase
  size_t synced_followers = 0;  // voters that finished sync (UPTODATE)
  size_t synced_observers = 0;  // observers that finished sync
  size_t pending_syncs = 0;     // linearizable syncs waiting for their quorum round
  bool operator==(const LearnerCounts&) const = default;
};

class Core {
 public:
  // `log` must outlive the core.
  Core(Config config, InitialState state, LogReader* log);
  ~Core();

  // --- inputs ---
  void Tick();
  void Step(PeerId from, const peer::ZabMessage& msg);
  // The transport lost (or could not establish) the link to `peer` in either direction: every
  // message sent to it since the last Disconnected may be lost. The core treats it as a broken
  // FIFO channel (a learner leaves its leader; a leader drops the learner).
  void Disconnected(PeerId peer);
  // Every appended entry with zxid <= `zxid` is durable. After a truncate_after or
  // install_snapshot, reports about entries appended before it must not be delivered (they may
  // name zxids above entries appended later).
  void Persisted(Zxid zxid);
  // A snapshot transfer with `peer` made progress (the leader is writing or streaming it; the
  // learner received a chunk or a keepalive): resets that side's initLimit silence timers.
  void Progress(PeerId peer);
  // The snapshot asked for by Ready.install_snapshot is installed (tree and log restarted).
  void SnapshotInstalled(Zxid zxid);

  // The zxid the next Propose will get (the shell prepares the txn with it); nullopt when
  // Propose would fail (not the serving leader, or the epoch's counter is exhausted).
  std::optional<Zxid> NextZxid() const;
  // Leader only, while serving: appends a proposal (zxid = NextZxid()) and broadcasts it.
  // Applied (Ready.apply) once a quorum acknowledged it, with origin/tag passed through.
  std::optional<ProposeError> Propose(std::string payload, PeerId origin, uint64_t origin_tag);
  // Whether ProposeReconfig(config) would be accepted now (kReconfigInProgress while a
  // reconfig entry is uncommitted; kNewConfigNoQuorum unless a majority of config's voters,
  // this leader included if it is one, is synced and acknowledges proposals). `config` must be
  // Valid().
  std::optional<ProposeError> CheckReconfig(const Membership& config) const;
  // Proposes a reconfig entry (zxid = NextZxid()). It commits only with a majority of the old
  // voters and one of the new; a leader that is not a voter of the new configuration stops
  // serving when it commits and leaves the leadership once its learners have left (at most
  // sync_ticks later).
  std::optional<ProposeError> ProposeReconfig(std::string payload, Membership config, PeerId origin,
                                              uint64_t origin_tag);
  // A client's sync: answered through Ready.syncs_done with the zxid to wait for. On a leader
  // at once (the last proposed zxid); on a learner via the leader. `linearizable` adds a
  // quorum round so that a deposed leader cannot answer. A sync asked while not serving, or
  // not answered when the role changes (Ready.role_change), is never answered: the shell
  // fails it.
  void Sync(uint64_t tag, bool linearizable);

  Ready TakeReady();
  bool HasReady() const;

  // --- observation (tests, metrics, 4lw) ---
  Role role() const;
  PeerId leader() const;
  uint64_t current_epoch() const;
  uint64_t accepted_epoch() const;
  bool serving() const;
  Zxid last_logged() const;     // last appended (durable or not)
  Zxid last_committed() const;  // last handed out for apply
  uint64_t election_round() const;
  LearnerCounts learner_counts() const;
  const ConfigState& config() const;
  bool removed() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace qfs::zab
