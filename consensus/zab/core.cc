// The ZAB core. See core.h for the contract; this file holds the state machine.
//
// Conventions used throughout:
// - The log the core knows is a history: every member's log is a prefix of some leader's
//   history, and a zxid names one txn ensemble-wide (one leader per epoch assigns it once).
// - `mem_` holds the log entries after `mem_base_` (always every entry after the last one
//   handed out for apply, plus a window of committed ones for DIFF).
// - Acks and commits are cumulative: Ack{z} = "every entry <= z is durable here",
//   Commit{z} = "every entry <= z is committed". The links are FIFO and learners' logs are
//   prefixes of the leader's, so a cumulative value says everything.
// - The ACK of NEWLEADER is Ack{MakeZxid(epoch, 0)}, as in ZooKeeper.
#include "consensus/zab/core.h"

#include <algorithm>
#include <deque>
#include <functional>
#include <map>
#include <set>
#include <utility>

#include "consensus/util/result.h"

namespace qfs::zab {

const char* RoleName(Role r) {
  switch (r) {
    case Role::kLooking:
      return "looking";
    case Role::kFollowing:
      return "following";
    case Role::kLeading:
      return "leading";
    case Role::kObserving:
      return "observing";
  }
  return "?";
}

bool Membership::IsVoter(PeerId p) const {
  return std::binary_search(voters.begin(), voters.end(), p);
}
bool Membership::IsMember(PeerId p) const {
  return IsVoter(p) || std::binary_search(observers.begin(), observers.end(), p);
}
bool Membership::Majority(const std::vector<PeerId>& who) const {
  size_t n = 0;
  for (PeerId p : who)
    if (IsVoter(p)) n++;
  return n >= voters.size() / 2 + 1;
}
bool Membership::Valid() const {
  auto strict = [](const std::vector<PeerId>& v) {
    for (size_t i = 0; i < v.size(); i++)
      if (v[i] == 0 || (i > 0 && v[i - 1] >= v[i])) return false;
    return true;
  };
  if (voters.empty() || !strict(voters) || !strict(observers)) return false;
  for (PeerId p : observers)
    if (IsVoter(p)) return false;
  return true;
}

namespace {

constexpr size_t kMaxEpochs = 64;  // epochs remembered for finding a common prefix

struct VoteKey {
  uint64_t peer_epoch = 0;
  Zxid zxid = 0;
  PeerId leader = 0;
  auto operator<=>(const VoteKey&) const = default;
};
VoteKey KeyOf(const peer::Vote& v) {
  return {v.peer_epoch(), v.zxid(), v.leader()};
}

void ToProto(const Membership& m, peer::Membership* out) {
  for (PeerId p : m.voters) out->add_voters(p);
  for (PeerId p : m.observers) out->add_observers(p);
}
Membership FromProto(const peer::Membership& m) {
  Membership r;
  r.voters.assign(m.voters().begin(), m.voters().end());
  r.observers.assign(m.observers().begin(), m.observers().end());
  return r;
}
void ToProto(const ConfigState& c, peer::ConfigState* out) {
  ToProto(c.current, out->mutable_current());
  out->set_current_zxid(c.current_zxid);
  if (c.previous) {
    ToProto(*c.previous, out->mutable_previous());
    out->set_previous_zxid(c.previous_zxid);
  }
}
// nullopt when the message carries no valid configuration.
std::optional<ConfigState> FromProto(const peer::ConfigState& c) {
  ConfigState r;
  r.current = FromProto(c.current());
  r.current_zxid = c.current_zxid();
  if (c.has_previous()) {
    r.previous = FromProto(c.previous());
    r.previous_zxid = c.previous_zxid();
    if (!r.previous->Valid() || r.previous_zxid >= r.current_zxid) return std::nullopt;
  }
  if (!r.current.Valid()) return std::nullopt;
  return r;
}
void FillProposal(const Entry& e, peer::Proposal* pr) {
  pr->set_zxid(e.zxid);
  pr->set_payload(e.payload);
  pr->set_origin(e.origin);
  pr->set_origin_tag(e.origin_tag);
  if (e.config) ToProto(*e.config, pr->mutable_config());
}
Entry EntryOf(const peer::Proposal& p) {
  Entry e{p.zxid(), p.payload(), p.origin(), p.origin_tag(), std::nullopt};
  if (p.has_config()) e.config = FromProto(p.config());
  return e;
}

}  // namespace

struct Core::Impl {
  // Learner phases (following or observing).
  enum class LPhase {
    kNone,
    kDiscovery,       // FOLLOWERINFO sent, waiting for NEWEPOCH
    kAwaitSync,       // ACKEPOCH sent, waiting for SyncStart
    kAwaitSnapshot,   // asked the shell to install a snapshot
    kSyncing,         // receiving the sync stream
    kNewLeader,       // NEWLEADER seen; ACK once durable
    kAckedNewLeader,  // waiting for UPTODATE
    kServing,
  };
  // Leader phases.
  enum class LdPhase { kDiscovery, kAckEpoch, kSync, kBroadcast };

  struct Learner {
    bool observer = false;
    enum class Phase { kInfo, kEpochSent, kAcked, kSyncing, kUpToDate } phase = Phase::kInfo;
    peer::FollowerInfo info;
    peer::AckEpoch ack;
    bool nl_acked = false;
    Zxid nl_zxid = 0;  // the leader's last zxid when NEWLEADER was sent
    Zxid acked = 0;
    uint64_t heard = 0;
    uint64_t sync_started = 0;
    uint64_t pong_seq = 0;
  };

  struct PendingSync {
    uint64_t tag = 0;
    PeerId from = 0;  // 0: this member's own client
    Zxid zxid = 0;
    uint64_t seq = 0;
  };

  Config cfg;
  LogReader* reader;
  // The configuration (docs/reconfig.md): `conf` as in core.h; `voters` and `members` are the
  // union over current and previous, for taking messages and votes.
  ConfigState conf, persisted_conf;
  std::set<PeerId> voters, members;
  bool removed = false;
  bool stepping_down = false;  // a leader that committed a configuration without itself as voter
  uint64_t stepdown_since = 0;
  std::optional<ConfigState> snap_conf;  // from a SNAP's SyncStart, taken when it is installed
  ConfigState ready_snapshot_conf;       // the configuration at ready_snapshot_zxid

  uint64_t accepted_epoch = 0, current_epoch = 0;
  std::deque<Entry> mem;
  Zxid mem_base = 0;
  Zxid last_logged = 0, durable = 0, last_committed = 0;
  Zxid tree_zxid = 0;  // last entry handed to the shell's tree (apply, replay or snapshot)
  std::vector<peer::EpochEnd> epochs;  // newest first

  Role role = Role::kLooking;
  PeerId leader = 0;
  bool serving = false;
  uint64_t now = 0;  // ticks
  Ready ready;
  std::vector<Entry> deferred_apply;  // committed after a snapshot request in this Ready
  Zxid ready_snapshot_zxid = 0;       // the tree's zxid when that snapshot was asked for
  RoleChange reported;
  bool reported_once = false;

  // Election.
  uint64_t round = 0;
  peer::Vote vote;
  std::map<PeerId, peer::Vote> recv;     // LOOKING votes of this round
  std::map<PeerId, peer::Vote> outside;  // FOLLOWING/LEADING votes
  std::optional<uint64_t> finalize_at;
  uint64_t resend_at = 0;
  int backoff = 1;
  std::map<PeerId, peer::FollowerInfo> pending_infos;

  // Learner.
  LPhase lphase = LPhase::kNone;
  uint64_t leader_epoch = 0;
  uint64_t follow_start = 0, last_heard = 0;
  Zxid nl_point = 0, ack_sent = 0, snapshot_wait = 0;
  std::vector<peer::ZabMessage> buffered;

  // Leader.
  LdPhase ldphase = LdPhase::kDiscovery;
  std::map<PeerId, Learner> learners;
  // Voters that gave a fresh ACKEPOCH for new_epoch, kept across their reconnections (the
  // promise stands even if the link broke).
  std::map<PeerId, peer::AckEpoch> fresh_acks;
  uint64_t new_epoch = 0, lead_start = 0;
  // Discovery: the current epoch that goes with the history this leader holds (higher than
  // current_epoch once it took a learner's newer history), and the learner asked for it.
  uint64_t history_epoch = 0;
  std::optional<PeerId> adopting;
  Zxid adopting_after = 0;
  Zxid committed_q = 0;  // committed by this leader's quorum (sent in Commit)
  uint32_t counter = 0;
  uint64_t next_ping_at = 0, ping_seq = 0;
  std::vector<PendingSync> lin_syncs;

  Impl(Config c, InitialState st, LogReader* r) : cfg(std::move(c)), reader(r) {
    QFS_CHECK(cfg.self != 0);
    if (st.config) {
      conf = *st.config;
    } else {
      conf.current.voters = cfg.voters;
      conf.current.observers = cfg.observers;
      std::sort(conf.current.voters.begin(), conf.current.voters.end());
      std::sort(conf.current.observers.begin(), conf.current.observers.end());
    }
    QFS_CHECK(conf.current.Valid() && (!conf.previous || conf.previous->Valid()));
    persisted_conf = conf;
    for (auto& [z, m] : st.log_configs) ConfigAppend(z, m);
    if (conf.previous && conf.current_zxid > st.last_zxid) {
      // The pending entry did not reach the log before a crash: it is not ours to count.
      ConfigTruncate(st.last_zxid);
    }
    RebuildSets();
    QFS_CHECK(st.current_epoch <= st.accepted_epoch);
    accepted_epoch = st.accepted_epoch;
    current_epoch = st.current_epoch;
    last_logged = durable = last_committed = tree_zxid = mem_base = st.last_zxid;
    epochs = st.epochs;
    if (epochs.size() > kMaxEpochs) epochs.resize(kMaxEpochs);
    QFS_CHECK(st.last_zxid == 0 || (!epochs.empty() && epochs[0].last_zxid() == st.last_zxid));
    StartLooking();
  }

  bool IsVoter(PeerId p) const { return voters.count(p) > 0; }
  bool IsMember(PeerId p) const { return members.count(p) > 0; }
  bool SelfVoter() const { return IsVoter(cfg.self); }
  // Who may be elected: a voter of the committed configuration (the previous one while an
  // entry is pending), as ZooKeeper's election weighs candidates by its committed quorum
  // verifier. A new voter of a pending entry may not lead it in: members that have not seen
  // the entry would never vote for it, and the old majority it needs would not form (seeds
  // 2008455, 2009452). An old voter leads, commits the entry with joint quorums, and, if it
  // is no voter of the new configuration, steps down.
  bool Eligible(PeerId p) const {
    return (conf.previous ? *conf.previous : conf.current).IsVoter(p);
  }
  // Our own vote when looking afresh: ourselves if we may lead, else nobody (we still take
  // part, adopting the best candidate we hear of).
  peer::Vote OwnVote() const { return Eligible(cfg.self) ? SelfVote() : peer::Vote(); }
  // A vote worth adopting over `than`: a better key, for a candidate we may elect.
  bool Better(const peer::Vote& v, const peer::Vote& than) const {
    return Eligible(v.leader()) && KeyOf(v) > KeyOf(than);
  }
  // A learner acknowledges proposals (a follower link) unless it is only an observer: a member
  // outside the configuration (a joining server) acks so that its acks count once a reconfig
  // makes it a voter.
  bool WantParticipant() const { return SelfVoter() || !IsMember(cfg.self); }

  // --- configuration ---
  void RebuildSets() {
    voters.clear();
    members.clear();
    auto add = [&](const Membership& m) {
      voters.insert(m.voters.begin(), m.voters.end());
      members.insert(m.voters.begin(), m.voters.end());
      members.insert(m.observers.begin(), m.observers.end());
    };
    add(conf.current);
    if (conf.previous) add(*conf.previous);
  }
  // A majority of the current voters, and of the previous ones while that is pending.
  bool QuorumOf(const std::vector<PeerId>& who) const {
    return conf.current.Majority(who) && (!conf.previous || conf.previous->Majority(who));
  }
  // To follow someone a majority of either configuration will do: following is safe whatever
  // the election said (the leader's discovery counts joint quorums and checks histories), and
  // members whose views differ (one holds a pending entry, one does not) must still converge.
  bool AnyQuorumOf(const std::vector<PeerId>& who) const {
    return conf.current.Majority(who) || (conf.previous && conf.previous->Majority(who));
  }
  // A reconfig entry at z was appended. An entry pending before it is committed (a leader
  // proposes a reconfig only once the previous one committed), so it becomes `previous`.
  void ConfigAppend(Zxid z, const Membership& m) {
    if (z <= conf.current_zxid) return;  // known already (a crash lost the entry, not the state)
    QFS_CHECK(m.Valid());
    conf.previous = conf.current;
    conf.previous_zxid = conf.current_zxid;
    conf.current = m;
    conf.current_zxid = z;
    RebuildSets();
  }
  // A vote told us of configuration m, committed at z, newer than any we hold: it is ours, and
  // nothing is pending (its entry is skipped when a sync brings it, ConfigAppend).
  void TakeCommittedConfig(Membership m, Zxid z) {
    conf.current = std::move(m);
    conf.current_zxid = z;
    conf.previous.reset();
    conf.previous_zxid = 0;
    RebuildSets();
  }
  // The log now ends at z. Only a pending entry can be cut: a configuration known committed
  // stays even when its entry is not in the log (a crash lost the entry, or a vote told us).
  void ConfigTruncate(Zxid z) {
    if (conf.current_zxid <= z || !conf.previous) return;
    conf.current = *conf.previous;
    conf.current_zxid = conf.previous_zxid;
    conf.previous.reset();
    conf.previous_zxid = 0;
    RebuildSets();
  }
  // The configuration state as of the zxid z of this member's history (z <= last_logged).
  ConfigState ConfigAt(Zxid z) const {
    // A committed configuration whose entry is above z (learned from a vote before the entry
    // was applied here) is the one to use: that entry is committed.
    if (conf.current_zxid <= z || !conf.previous) return conf;
    ConfigState c;
    c.current = *conf.previous;
    c.current_zxid = conf.previous_zxid;
    return c;
  }
  void AdoptConfig(const ConfigState& c) {
    conf = c;
    RebuildSets();
  }
  // Everything up to the pending entry is committed: its configuration alone counts now.
  void ConfigCommitted() {
    bool was_member = IsMember(cfg.self);
    conf.previous.reset();
    conf.previous_zxid = 0;
    RebuildSets();
    if (!IsMember(cfg.self)) {
      if (!was_member) return;  // a joining server that was not added: it keeps learning
      if (role == Role::kLeading) {
        serving = false;
        stepping_down = true;  // this Ready's COMMITs go out first
        stepdown_since = now;
      } else {
        Remove();
      }
      return;
    }
    if (role == Role::kLeading) {
      if (!SelfVoter()) {
        serving = false;
        stepping_down = true;
        stepdown_since = now;
      }
    } else if (role == Role::kFollowing || role == Role::kObserving) {
      // A leader that is no voter now steps down; a learner whose role changed reconnects
      // with the right kind of link.
      if (!IsVoter(leader) || (role == Role::kFollowing) != WantParticipant()) GoLooking();
    }
  }
  void Remove() {
    if (role == Role::kFollowing || role == Role::kObserving) Disconnect(leader);
    if (role == Role::kLeading)
      for (auto& [p, l] : learners) Disconnect(p);
    for (auto& [p, fi] : pending_infos) Disconnect(p);
    ResetSession();
    role = Role::kLooking;
    removed = true;
    resend_at = now + static_cast<uint64_t>(cfg.vote_resend_ticks) * 8;  // TickRemoved
    stepping_down = false;
    recv.clear();
    outside.clear();
    finalize_at.reset();
  }

  // --- output helpers ---
  void Send(PeerId to, peer::ZabMessage m) {
    QFS_CHECK(to != 0 && to != cfg.self);
    if (!m.has_vote()) m.set_epoch(role == Role::kLeading ? new_epoch : leader_epoch);
    ready.messages.push_back({to, std::move(m)});
  }
  void Disconnect(PeerId p) {
    std::erase_if(ready.messages, [p](const Outgoing& o) { return o.to == p; });
    std::erase(ready.send_snapshot, p);
    ready.disconnect.push_back(p);
  }
  void EmitApply(const Entry& e) {
    QFS_CHECK(e.zxid > tree_zxid);
    tree_zxid = e.zxid;
    if (!ready.send_snapshot.empty() || !deferred_apply.empty()) {
      deferred_apply.push_back(e);  // the snapshot asked for in this Ready must not see it
    } else {
      ready.apply.push_back(e);
    }
  }

  // --- log helpers ---
  void NoteEpoch(Zxid z) {
    uint64_t e = EpochOf(z);
    if (epochs.empty() || epochs[0].epoch() < e) {
      peer::EpochEnd ee;
      ee.set_epoch(e);
      ee.set_last_zxid(z);
      epochs.insert(epochs.begin(), ee);
      if (epochs.size() > kMaxEpochs) epochs.pop_back();
    } else {
      QFS_CHECK(epochs[0].epoch() == e && epochs[0].last_zxid() < z);
      epochs[0].set_last_zxid(z);
    }
  }
  void Append(Entry e) {
    QFS_CHECK(e.zxid > last_logged);
    last_logged = e.zxid;
    NoteEpoch(e.zxid);
    if (e.config) ConfigAppend(e.zxid, *e.config);
    ready.append.push_back(e);
    mem.push_back(std::move(e));
  }
  void Truncate(Zxid z) {
    QFS_CHECK(z < last_logged);
    // Entries not yet handed to the shell need no truncation: just forget them.
    std::erase_if(ready.append, [z](const Entry& e) { return e.zxid > z; });
    ready.truncate_after = ready.truncate_after ? std::min(*ready.truncate_after, z) : z;
    while (!mem.empty() && mem.back().zxid > z) mem.pop_back();
    if (z < mem_base) {
      mem.clear();
      mem_base = z;
    }
    last_logged = z;
    ConfigTruncate(z);
    durable = std::min(durable, z);
    last_committed = std::min(last_committed, z);
    tree_zxid = std::min(tree_zxid, z);
    while (!epochs.empty() && epochs[0].epoch() > EpochOf(z)) epochs.erase(epochs.begin());
    if (z == 0) {
      epochs.clear();
    } else {
      QFS_CHECK(!epochs.empty() && epochs[0].epoch() == EpochOf(z));
      epochs[0].set_last_zxid(z);
    }
  }
  void Trim() {
    Zxid limit = std::min(last_committed, durable);
    size_t removable = static_cast<size_t>(FirstAfter(limit) - mem.begin());
    while (removable > cfg.committed_window) {
      mem_base = mem.front().zxid;
      mem.pop_front();
      removable--;
    }
  }
  // The first entry in `mem` with zxid > z (zxids increase along `mem`). A binary search:
  // `mem` keeps the last committed_window entries, and a scan from its front on every commit
  // cost 7% of a loaded leader's CPU.
  std::deque<Entry>::const_iterator FirstAfter(Zxid z) const {
    return std::upper_bound(mem.begin(), mem.end(), z,
                            [](Zxid v, const Entry& e) { return v < e.zxid; });
  }
  // Hands out for apply every entry in (last_committed, z].
  void CommitTo(Zxid z) {
    QFS_CHECK(z <= last_logged);
    if (z <= last_committed) {
      // A restarted member counts its whole log as applied (last_committed), a pending
      // reconfig entry in it included; that entry is known committed only now (seed 300316).
      if (conf.previous && z >= conf.current_zxid) ConfigCommitted();
      return;
    }
    QFS_CHECK(last_committed >= mem_base);
    for (auto it = FirstAfter(last_committed); it != mem.end() && it->zxid <= z; ++it) {
      if (it->zxid > tree_zxid) EmitApply(*it);
    }
    last_committed = z;
    Trim();
    if (conf.previous && z >= conf.current_zxid) ConfigCommitted();
  }
  // The entries after `after` up to last_logged, or false if they cannot be produced (too
  // many, or the log forgot them).
  bool EntriesAfter(Zxid after, std::vector<Entry>* out) {
    out->clear();
    if (after >= mem_base) {
      for (const Entry& e : mem)
        if (e.zxid > after) out->push_back(e);
    } else {
      if (!reader || !reader->ReadAfter(after, cfg.max_diff_txns + 1, out)) return false;
      Zxid last = out->empty() ? after : out->back().zxid;
      if (last < mem_base) return false;  // the log does not reach what is in memory
      for (const Entry& e : mem)
        if (e.zxid > last) out->push_back(e);
    }
    return out->size() <= cfg.max_diff_txns;
  }

  // --- election ---
  peer::Vote::State MyState() const {
    switch (role) {
      case Role::kLooking:
        return peer::Vote::LOOKING;
      case Role::kFollowing:
        return peer::Vote::FOLLOWING;
      case Role::kLeading:
        return peer::Vote::LEADING;
      case Role::kObserving:
        return peer::Vote::OBSERVING;
    }
    return peer::Vote::LOOKING;
  }
  peer::ZabMessage VoteMsg() const {
    peer::ZabMessage m;
    *m.mutable_vote() = vote;
    m.mutable_vote()->set_round(round);
    m.mutable_vote()->set_state(MyState());
    m.mutable_vote()->set_config_zxid(CommittedConfigZxid());
    if (CommittedConfigZxid() != 0)
      ToProto(conf.previous ? *conf.previous : conf.current, m.mutable_vote()->mutable_config());
    if (conf.previous) {
      m.mutable_vote()->set_pending_zxid(conf.current_zxid);
      ToProto(conf.current, m.mutable_vote()->mutable_pending());
    }
    return m;
  }
  Zxid CommittedConfigZxid() const {
    return conf.previous ? conf.previous_zxid : conf.current_zxid;
  }
  void SendVoteAll() {
    for (PeerId p : voters)
      if (p != cfg.self) Send(p, VoteMsg());
  }
  peer::Vote SelfVote() const {
    peer::Vote v;
    v.set_leader(cfg.self);
    v.set_zxid(last_logged);
    v.set_peer_epoch(current_epoch);
    return v;
  }

  // A removed member is dormant, not gone (ZooKeeper's keeps running too): now and then it asks
  // the members of the configuration that removed it for theirs, with a LOOKING vote of round
  // 0 for nobody, which no one counts and everyone answers. A later configuration that names
  // it again (it was added back, perhaps before it even learnt of its removal: seed 2031112)
  // readmits it.
  void TickRemoved() {
    if (now < resend_at) return;
    resend_at = now + static_cast<uint64_t>(cfg.vote_resend_ticks) * 8;
    peer::ZabMessage probe;
    probe.mutable_vote()->set_state(peer::Vote::LOOKING);
    probe.mutable_vote()->set_config_zxid(conf.current_zxid);
    for (PeerId p : members)
      if (p != cfg.self) Send(p, probe);
  }
  // A pending entry that names it readmits it too, as a joining server (its committed view
  // still leaves it out): the leader-elect holding that entry may need its vote for the new
  // majority (seed 3089466), and a joining server syncs, votes and counts once it commits.
  bool MaybeReadmitted(const peer::Vote& v) {
    bool newer = v.config_zxid() > conf.current_zxid && v.has_config();
    std::optional<Membership> committed, pending;
    if (newer) {
      committed = FromProto(v.config());
      if (!committed->Valid()) return false;
    }
    if (v.pending_zxid() > std::max(conf.current_zxid, v.config_zxid()) && v.has_pending()) {
      pending = FromProto(v.pending());
      if (!pending->Valid() || !pending->IsMember(cfg.self)) pending.reset();
    }
    if (!(committed && committed->IsMember(cfg.self)) && !pending) return false;
    if (committed) TakeCommittedConfig(*committed, v.config_zxid());
    removed = false;
    StartLooking();
    return true;
  }

  void ResetSession() {
    serving = false;
    stepping_down = false;
    leader = 0;
    lphase = LPhase::kNone;
    buffered.clear();
    learners.clear();
    lin_syncs.clear();
    new_epoch = 0;
    adopting.reset();
    pending_infos.clear();
  }

  void StartLooking() {
    ResetSession();
    role = Role::kLooking;
    round++;
    vote = OwnVote();
    recv.clear();
    outside.clear();
    finalize_at.reset();
    if (SelfVoter()) recv[cfg.self] = vote;
    SendVoteAll();
    backoff = 1;
    resend_at = now + cfg.vote_resend_ticks;
    CheckVotes();
  }

  // Leaves the current role for an election. `close_links`: ask the shell to close the
  // session links (false when the transport already reported the break).
  void GoLooking(bool close_links = true) {
    if (close_links) {
      if (role == Role::kFollowing || role == Role::kObserving) Disconnect(leader);
      if (role == Role::kLeading)
        for (auto& [p, l] : learners) Disconnect(p);
    }
    StartLooking();
  }

  // Our vote becomes v (its round and state are the sender's, not part of a vote).
  void Adopt(const peer::Vote& v) {
    vote = v;
    vote.clear_round();
    vote.clear_state();
  }
  // Our vote changed: count again from now, and tell the voters at once.
  void VoteChanged() {
    finalize_at.reset();
    SendVoteAll();
    backoff = 1;
    resend_at = now + cfg.vote_resend_ticks;
  }

  void CheckVotes() {
    if (role != Role::kLooking || !SelfVoter()) return;
    if (vote.leader() == 0) {  // we may not lead and have heard of no one who may
      finalize_at.reset();
      return;
    }
    std::vector<PeerId> agree;
    for (auto& [p, v] : recv)
      if (IsVoter(p) && KeyOf(v) == KeyOf(vote)) agree.push_back(p);
    if (agree.size() == voters.size()) {
      Decide();
    } else if (vote.leader() == cfg.self ? QuorumOf(agree) : AnyQuorumOf(agree)) {
      if (!finalize_at) finalize_at = now + cfg.election_finalize_ticks;
    } else {
      finalize_at.reset();
    }
  }

  void CheckOutside() {
    if (role != Role::kLooking) return;
    // A quorum of voters says it follows (or is) the same leader, and that leader says it
    // leads. (Their votes may differ otherwise: a member that joined later adopted another
    // vote for the same leader.)
    std::map<PeerId, std::vector<PeerId>> count;
    for (auto& [p, v] : outside) count[v.leader()].push_back(p);
    for (auto& [l, who] : count) {
      if (!AnyQuorumOf(who)) continue;
      auto it = outside.find(l);
      if (l == cfg.self || it == outside.end() || it->second.state() != peer::Vote::LEADING)
        continue;
      Adopt(it->second);
      round = std::max(round, it->second.round());
      Follow(l);
      return;
    }
  }

  void Decide() {
    finalize_at.reset();
    if (vote.leader() == cfg.self) {
      Lead();
    } else {
      Follow(vote.leader());
    }
  }

  void OnVote(PeerId from, const peer::Vote& v) {
    if (role == Role::kLooking && v.config_zxid() > conf.current_zxid && v.has_config()) {
      // A committed configuration newer than any we hold: we missed its entry (down, or cut
      // off) and perhaps every voter we know has left since (seed 401644). Take it as ours;
      // the entry comes with the sync, and is skipped then (ConfigAppend).
      Membership m = FromProto(v.config());
      if (m.Valid()) {
        // Left out of it, we were removed only if a reconfig entry had named us: a static
        // configuration (version 0) that lists us is a joining server's own, started with the
        // ensemble's lines plus its own as ZooKeeper's joiners are (docs/reconfig.md). That
        // one looks for the leader as a joining server, as does a removed member restarted.
        bool was_member = IsMember(cfg.self) && conf.current_zxid != 0;
        TakeCommittedConfig(m, v.config_zxid());
        if (was_member && !IsMember(cfg.self)) return Remove();
        StartLooking();
      }
    }
    if (role == Role::kLooking && conf.previous && v.config_zxid() == conf.current_zxid) {
      // The sender knows our pending entry committed (a zxid names one txn): after a commit
      // whose COMMIT we missed, members that moved on may no longer vote in the old
      // configuration, so this is how the election stays live.
      bool was_member = IsMember(cfg.self);
      conf.previous.reset();
      conf.previous_zxid = 0;
      RebuildSets();
      if (was_member && !IsMember(cfg.self)) return Remove();
      StartLooking();
    }
    if (role == Role::kLooking && v.state() == peer::Vote::LEADING && v.leader() == from &&
        v.config_zxid() > CommittedConfigZxid()) {
      // A leader that knows a newer configuration than ours: we are behind, and our own view
      // cannot count its supporters. Following is safe (discovery checks the histories).
      Adopt(v);
      vote.clear_config_zxid();
      round = std::max(round, v.round());
      return Follow(from);
    }
    if (role == Role::kLooking && v.state() != peer::Vote::LOOKING && v.leader() != 0 &&
        v.leader() != from && v.leader() != cfg.self &&
        (v.config_zxid() > CommittedConfigZxid() || !IsVoter(v.leader()))) {
      // Someone follows a leader under a newer configuration, or one that is no voter of
      // ours (it holds an entry we have not seen): ask that leader directly (it may be a voter
      // we do not know of yet); its LEADING answer lets us follow it.
      Send(v.leader(), VoteMsg());
    }
    bool from_looking = v.state() == peer::Vote::LOOKING;
    if (!IsVoter(from) && role == Role::kLooking) return OnOutsiderVote(from, v);
    // Voters answer anyone looking with their vote (that is how a restarted member or an
    // observer finds the established leader).
    if (!IsVoter(from) || role != Role::kLooking) {
      if (from_looking && SelfVoter()) {
        Send(from, VoteMsg());
      } else if (from_looking && (role == Role::kFollowing || role == Role::kObserving)) {
        // A non-voter's answer is counted by no one: it names its leader and configuration
        // for a member that is behind (see above).
        peer::ZabMessage r = VoteMsg();
        r.mutable_vote()->set_leader(leader);
        r.mutable_vote()->set_state(peer::Vote::OBSERVING);
        Send(from, std::move(r));
      }
      return;
    }
    if (v.state() == peer::Vote::FOLLOWING || v.state() == peer::Vote::LEADING) {
      outside[from] = v;
      if (SelfVoter() && v.round() == round) recv[from] = v;
      CheckOutside();
      if (role == Role::kLooking) CheckVotes();
      return;
    }
    // A member that is no voter in its own view still takes part, proposing nobody: a leader
    // with a pending reconfig may count it as a new voter that has not seen the entry yet (as
    // any Raft server answers any candidate). Discovery, not the election, is what is safe.
    if (v.state() != peer::Vote::LOOKING) return;
    bool changed = false;
    if (v.round() > round) {
      round = v.round();
      recv.clear();
      peer::Vote self = OwnVote();
      Adopt(Better(v, self) ? v : self);
      recv[cfg.self] = vote;
      changed = true;
    } else if (v.round() < round) {
      Send(from, VoteMsg());  // bring it to our round
      return;
    } else if (Better(v, vote)) {
      Adopt(v);
      recv[cfg.self] = vote;
      changed = true;
    }
    recv[from] = v;
    if (changed) VoteChanged();
    CheckVotes();
  }

  // While looking, a vote from a member that is no voter in our view: one that knows a
  // configuration we do not (a pending entry names us a voter), an observer, or a removed
  // member. Its vote counts for nothing here, but:
  // - a leader it announces is followed once a quorum of our voters follows it too (seed
  //   300676: the leader-elect was a new voter its fellow new voter did not know);
  // - it is answered, since its view may count ours (a non-voter looking here echoes the best
  //   vote it has seen for a candidate it may elect, as a Raft server answers any candidate);
  // - its higher round is taken, or each side would keep sending the other "come to my
  //   round" forever.
  void OnOutsiderVote(PeerId from, const peer::Vote& v) {
    if (v.state() == peer::Vote::LEADING && v.leader() == from) {
      outside[from] = v;
      CheckOutside();
      return;
    }
    if (v.state() != peer::Vote::LOOKING) return;
    bool changed = false;
    if (v.round() > round) {
      round = v.round();
      recv.clear();
      if (SelfVoter()) {
        vote = OwnVote();
        recv[cfg.self] = vote;
      }
      changed = true;
    }
    if (!SelfVoter() && Better(v, vote)) {
      Adopt(v);
      changed = true;
    }
    Send(from, VoteMsg());
    if (changed) {
      VoteChanged();
      CheckVotes();
    }
  }

  void TickLooking() {
    if (finalize_at && now >= *finalize_at) {
      Decide();
      return;
    }
    if (now >= resend_at) {
      SendVoteAll();
      backoff = std::min(backoff * 2, 8);
      resend_at = now + static_cast<uint64_t>(cfg.vote_resend_ticks) * backoff;
    }
  }

  // --- learner ---
  void Follow(PeerId l) {
    std::map<PeerId, peer::FollowerInfo> infos;
    infos.swap(pending_infos);
    ResetSession();
    // Whoever took us for its leader must look again.
    for (auto& [p, fi] : infos) Disconnect(p);
    role = WantParticipant() ? Role::kFollowing : Role::kObserving;
    leader = l;
    lphase = LPhase::kDiscovery;
    follow_start = last_heard = now;
    leader_epoch = 0;
    peer::ZabMessage m;
    auto* fi = m.mutable_follower_info();
    fi->set_accepted_epoch(accepted_epoch);
    fi->set_last_zxid(last_logged);
    fi->set_observer(!WantParticipant());
    for (const auto& e : epochs) *fi->add_epochs() = e;
    if (reader) fi->set_truncate_floor(reader->TruncateFloor());
    Send(l, std::move(m));
  }

  void MaybeAckNewLeader() {
    if (lphase == LPhase::kNewLeader && durable >= nl_point) {
      // Order: synced txns durable (checked), then currentEpoch, then the ACK.
      if (current_epoch != leader_epoch) {
        current_epoch = leader_epoch;
        ready.current_epoch = leader_epoch;
      }
      peer::ZabMessage m;
      m.mutable_ack()->set_zxid(MakeZxid(leader_epoch, 0));
      Send(leader, std::move(m));
      lphase = LPhase::kAckedNewLeader;
      ack_sent = nl_point;
    }
    if ((lphase == LPhase::kAckedNewLeader || lphase == LPhase::kServing) &&
        role == Role::kFollowing && durable > ack_sent) {
      peer::ZabMessage m;
      m.mutable_ack()->set_zxid(durable);
      Send(leader, std::move(m));
      ack_sent = durable;
    }
  }

  void OnLearnerMessage(const peer::ZabMessage& m) {
    last_heard = now;
    if (lphase == LPhase::kAwaitSnapshot) {
      buffered.push_back(m);
      return;
    }
    bool synced = lphase == LPhase::kSyncing || lphase == LPhase::kNewLeader ||
                  lphase == LPhase::kAckedNewLeader || lphase == LPhase::kServing;
    switch (m.body_case()) {
      case peer::ZabMessage::kNewEpoch: {
        uint64_t e = m.new_epoch().epoch();
        if (lphase != LPhase::kDiscovery || e < accepted_epoch) {
          GoLooking();  // we promised a newer epoch to another leader
          return;
        }
        // A member acks an epoch once: a repeated ack lets it sync without counting toward the
        // quorum that establishes the epoch (two candidates may propose the same number).
        bool again = e == accepted_epoch;
        if (!again) {
          accepted_epoch = e;
          ready.accepted_epoch = e;
        }
        leader_epoch = e;
        peer::ZabMessage r;
        r.mutable_ack_epoch()->set_current_epoch(current_epoch);
        r.mutable_ack_epoch()->set_last_zxid(last_logged);
        r.mutable_ack_epoch()->set_already_accepted(again);
        Send(leader, std::move(r));
        lphase = LPhase::kAwaitSync;
        return;
      }
      case peer::ZabMessage::kHistoryRequest:
        if (lphase != LPhase::kAwaitSync) return GoLooking();
        return SendHistory(m.history_request().after());
      case peer::ZabMessage::kSyncStart: {
        if (lphase != LPhase::kAwaitSync) return GoLooking();
        const auto& s = m.sync_start();
        switch (s.mode()) {
          case peer::SyncStart::DIFF:
            QFS_CHECK(s.zxid() == last_logged);
            break;
          case peer::SyncStart::TRUNC:
            Truncate(s.zxid());
            break;
          case peer::SyncStart::SNAP:
            // The log is being replaced by the snapshot: its configuration goes with it, in the
            // same Ready (the shell persists it with the snapshot).
            snap_conf = FromProto(s.snap_config());
            if (snap_conf) AdoptConfig(*snap_conf);
            ready.install_snapshot = s.zxid();
            ready.append.clear();
            deferred_apply.clear();
            ready.apply.clear();  // the snapshot holds them
            snapshot_wait = s.zxid();
            lphase = LPhase::kAwaitSnapshot;
            return;
          default:
            return GoLooking();
        }
        lphase = LPhase::kSyncing;
        return;
      }
      case peer::ZabMessage::kProposal: {
        if (!synced) return GoLooking();
        const auto& p = m.proposal();
        QFS_CHECK(p.zxid() > last_logged);
        Append(EntryOf(p));
        return;
      }
      case peer::ZabMessage::kCommit:
        if (!synced) return GoLooking();
        CommitTo(m.commit().zxid());
        return;
      case peer::ZabMessage::kInform: {
        if (!synced) return GoLooking();
        const auto& p = m.inform().txn();
        if (p.zxid() > last_logged) Append(EntryOf(p));
        CommitTo(p.zxid());
        return;
      }
      case peer::ZabMessage::kNewLeader:
        if (lphase != LPhase::kSyncing || m.new_leader().epoch() != leader_epoch)
          return GoLooking();
        nl_point = last_logged;
        // Our log is now the leader's: so is its configuration state.
        if (auto c = FromProto(m.new_leader().config())) AdoptConfig(*c);
        lphase = LPhase::kNewLeader;
        MaybeAckNewLeader();
        return;
      case peer::ZabMessage::kUpToDate:
        if (lphase != LPhase::kAckedNewLeader) return GoLooking();
        // The sync brought a configuration that changed our role: reconnect on the right link
        // (a voter on an observer link acknowledges nothing).
        if ((role == Role::kFollowing) != WantParticipant()) return GoLooking();
        lphase = LPhase::kServing;
        serving = true;
        return;
      case peer::ZabMessage::kPing: {
        peer::ZabMessage r;
        r.mutable_ping_reply()->set_seq(m.ping().seq());
        Send(leader, std::move(r));
        return;
      }
      case peer::ZabMessage::kSyncReply:
        ready.syncs_done.push_back({m.sync_reply().tag(), m.sync_reply().zxid()});
        return;
      default:
        return;
    }
  }

  // Our entries after `after` for a leader-elect that is behind us (HistoryRequest). Bounded:
  // the txns a leader-elect lacks are those proposed while a reconfig entry was pending, a
  // window's worth; a longer history is refused (the leader looks again, as it used to).
  void SendHistory(Zxid after) {
    static constexpr size_t kMaxEntries = 10000;
    static constexpr size_t kMaxBytes = 32u << 20;  // half the transport's frame limit
    peer::ZabMessage m;
    auto* r = m.mutable_history_reply();
    r->set_after(after);
    r->set_current_epoch(current_epoch);
    r->set_last_zxid(last_logged);
    std::vector<Entry> entries;
    bool ok =
        after <= last_logged && EntriesAfter(after, &entries) && entries.size() <= kMaxEntries;
    size_t bytes = 0;
    for (const Entry& e : entries) bytes += e.payload.size();
    if (ok && bytes <= kMaxBytes) {
      r->set_ok(true);
      for (const Entry& e : entries) FillProposal(e, r->add_entries());
    }
    Send(leader, std::move(m));
  }

  void TickLearner() {
    uint64_t silence = now - last_heard;
    if (lphase != LPhase::kServing) {
      if (now - follow_start > static_cast<uint64_t>(cfg.init_ticks) ||
          silence > static_cast<uint64_t>(cfg.init_ticks))
        GoLooking();
    } else if (silence > static_cast<uint64_t>(cfg.sync_ticks)) {
      GoLooking();
    }
  }

  // --- leader ---
  void Lead() {
    std::map<PeerId, peer::FollowerInfo> infos;
    infos.swap(pending_infos);
    ResetSession();
    role = Role::kLeading;
    leader = cfg.self;
    ldphase = LdPhase::kDiscovery;
    fresh_acks.clear();
    history_epoch = current_epoch;
    lead_start = now;
    committed_q = 0;
    counter = 0;
    for (auto& [p, fi] : infos) OnFollowerInfo(p, fi);
    CheckDiscovery();
  }

  // This leader and its learners that are voters in its view for which pred holds. A voter on
  // an observer link (it has not seen the reconfig that made it one) counts for discovery and
  // for its NEWLEADER ack: it promised the epoch and holds the history like any learner.
  std::vector<PeerId> Who(const std::function<bool(const Learner&)>& pred) const {
    std::vector<PeerId> who{cfg.self};
    for (auto& [p, l] : learners)
      if (IsVoter(p) && pred(l)) who.push_back(p);
    return who;
  }

  void OnFollowerInfo(PeerId from, const peer::FollowerInfo& fi) {
    if (role == Role::kLooking) {
      pending_infos[from] = fi;
      return;
    }
    if (role != Role::kLeading) {
      Disconnect(from);  // not (or no longer) its leader: it looks again
      return;
    }
    if (new_epoch != 0 && fi.accepted_epoch() > new_epoch) {
      // It promised a newer epoch to another candidate: only a new election with a higher
      // epoch can take it in.
      return GoLooking();
    }
    learners.erase(from);
    Learner& l = learners[from];
    // The learner picks its link: a voter on an observer link (it has not seen the reconfig
    // that made it one) is synced, and reconnects once it learns the change.
    l.observer = fi.observer();
    l.info = fi;
    l.heard = now;
    if (new_epoch != 0) SendNewEpoch(from);
  }

  void SendNewEpoch(PeerId p) {
    peer::ZabMessage m;
    m.mutable_new_epoch()->set_epoch(new_epoch);
    Send(p, std::move(m));
    learners[p].phase = Learner::Phase::kEpochSent;
  }

  void CheckDiscovery() {
    if (ldphase != LdPhase::kDiscovery) return;
    if (!QuorumOf(Who([](const Learner&) { return true; }))) return;
    uint64_t e = accepted_epoch;
    for (auto& [p, l] : learners) e = std::max<uint64_t>(e, l.info.accepted_epoch());
    new_epoch = e + 1;
    accepted_epoch = new_epoch;
    ready.accepted_epoch = new_epoch;
    ldphase = LdPhase::kAckEpoch;
    for (auto& [p, l] : learners) SendNewEpoch(p);
    CheckAckEpoch();
  }

  void OnAckEpoch(PeerId from, const peer::AckEpoch& a) {
    auto it = learners.find(from);
    if (it == learners.end() || it->second.phase != Learner::Phase::kEpochSent) return;
    it->second.ack = a;
    it->second.phase = Learner::Phase::kAcked;
    if (IsVoter(from) && !a.already_accepted()) fresh_acks[from] = a;
    if (ldphase == LdPhase::kAckEpoch) {
      CheckAckEpoch();
    } else if (ldphase >= LdPhase::kSync) {
      StartSync(from);
    }
  }

  void CheckAckEpoch() {
    if (ldphase != LdPhase::kAckEpoch) return;
    std::vector<PeerId> who{cfg.self};
    for (auto& [p, a] : fresh_acks) who.push_back(p);
    if (!QuorumOf(who)) return;
    // The leader must hold the most up-to-date history of its quorum: the election made sure
    // of that, except that only voters of the committed configuration may be elected, and a
    // new voter of a pending entry may hold txns proposed while it was pending that the
    // leader-elect lacks (seed 651733). Zab's discovery takes that history then.
    std::pair<uint64_t, Zxid> best{std::max(current_epoch, history_epoch), last_logged};
    PeerId ahead = 0;
    for (auto& [p, a] : fresh_acks) {
      std::pair<uint64_t, Zxid> theirs{a.current_epoch(), a.last_zxid()};
      if (theirs > best) {
        best = theirs;
        ahead = p;
      }
    }
    if (ahead != 0) return AskHistory(ahead);
    ldphase = LdPhase::kSync;
    std::vector<PeerId> ps;
    for (auto& [p, l] : learners)
      if (l.phase == Learner::Phase::kAcked) ps.push_back(p);
    for (PeerId p : ps) StartSync(p);
    MaybePersistLeaderEpoch();
  }

  // Asks `p`, whose history is the newest of the quorum, for what this leader lacks. It must be
  // connected (its ack stands across reconnections; it acks again when it comes back).
  void AskHistory(PeerId p) {
    if (adopting) return;  // one request at a time; the answer checks the quorum again
    auto it = learners.find(p);
    if (it == learners.end() || it->second.phase != Learner::Phase::kAcked) return;
    std::optional<Zxid> common = CommonPoint(it->second.info);
    // Not provable, or a cut below what this member can roll back: look again, as before.
    if (!common || *common > last_logged ||
        (*common < last_logged && reader && *common < reader->TruncateFloor()))
      return GoLooking();
    adopting = p;
    adopting_after = *common;
    peer::ZabMessage m;
    m.mutable_history_request()->set_after(*common);
    Send(p, std::move(m));
  }

  // The history asked for: this leader's log becomes the learner's (its entries after the
  // common point replace ours, which cannot have committed: Zab's discovery argument, a
  // quorum's newest history holds every committed txn). Durable before the new epoch
  // (MaybePersistLeaderEpoch), as every synced history is.
  void OnHistoryReply(PeerId from, const peer::HistoryReply& r) {
    if (ldphase != LdPhase::kAckEpoch || adopting != from || r.after() != adopting_after) return;
    adopting.reset();
    auto a = fresh_acks.find(from);
    if (!r.ok() || a == fresh_acks.end() || a->second.current_epoch() != r.current_epoch() ||
        a->second.last_zxid() != r.last_zxid())
      return GoLooking();
    Zxid prev = r.after();
    for (const auto& e : r.entries()) {
      if (e.zxid() <= prev) return GoLooking();  // malformed: not in order
      prev = e.zxid();
    }
    if (prev != r.last_zxid()) return GoLooking();
    if (r.after() < last_logged) Truncate(r.after());
    for (const auto& e : r.entries()) Append(EntryOf(e));
    history_epoch = std::max(history_epoch, r.current_epoch());
    CheckAckEpoch();
  }

  void MaybePersistLeaderEpoch() {
    if (role != Role::kLeading || ldphase < LdPhase::kSync || current_epoch == new_epoch) return;
    if (durable < last_logged) return;  // its history must be durable before the epoch
    current_epoch = new_epoch;
    ready.current_epoch = new_epoch;
    CheckEstablished();
  }

  // Newest point of the learner's history that the leader also holds, if provable.
  std::optional<Zxid> CommonPoint(const peer::FollowerInfo& fi) const {
    if (fi.last_zxid() == 0) return 0;
    for (const auto& theirs : fi.epochs()) {
      for (const auto& ours : epochs) {
        if (ours.epoch() == theirs.epoch()) return std::min(ours.last_zxid(), theirs.last_zxid());
      }
    }
    return std::nullopt;
  }

  void StartSync(PeerId p) {
    Learner& l = learners[p];
    std::vector<Entry> entries;
    std::optional<Zxid> common = CommonPoint(l.info);
    peer::ZabMessage start;
    auto* s = start.mutable_sync_start();
    bool trunc = common && *common < l.info.last_zxid();
    if (common && *common <= last_logged && !(trunc && *common < l.info.truncate_floor()) &&
        EntriesAfter(*common, &entries)) {
      s->set_mode(*common < l.info.last_zxid() ? peer::SyncStart::TRUNC : peer::SyncStart::DIFF);
      s->set_zxid(*common);
    } else {
      // The snapshot is the tree after step 5 of this Ready; later applies wait (EmitApply).
      if (ready.send_snapshot.empty()) {
        ready_snapshot_zxid = tree_zxid;
        ready_snapshot_conf = ConfigAt(tree_zxid);
      }
      Zxid snap = ready_snapshot_zxid;
      s->set_mode(peer::SyncStart::SNAP);
      s->set_zxid(snap);
      ToProto(ready_snapshot_conf, s->mutable_snap_config());
      ready.send_snapshot.push_back(p);
      entries.clear();
      for (const Entry& e : mem)
        if (e.zxid > snap) entries.push_back(e);
      QFS_CHECK(mem_base <= snap);
    }
    Send(p, std::move(start));
    for (const Entry& e : entries) {
      peer::ZabMessage m;
      FillProposal(e, m.mutable_proposal());
      Send(p, std::move(m));
    }
    if (ldphase == LdPhase::kBroadcast && committed_q > 0) {
      peer::ZabMessage m;
      m.mutable_commit()->set_zxid(committed_q);
      Send(p, std::move(m));
    }
    peer::ZabMessage nl;
    nl.mutable_new_leader()->set_epoch(new_epoch);
    ToProto(conf, nl.mutable_new_leader()->mutable_config());
    Send(p, std::move(nl));
    l.phase = Learner::Phase::kSyncing;
    l.nl_zxid = last_logged;
    l.sync_started = now;
    l.heard = now;
  }

  void OnAck(PeerId from, Zxid z) {
    auto it = learners.find(from);
    if (it == learners.end() || it->second.phase < Learner::Phase::kSyncing) return;
    Learner& l = it->second;
    if (z == MakeZxid(new_epoch, 0)) {
      if (l.nl_acked) return;
      l.nl_acked = true;
      l.acked = std::max(l.acked, l.nl_zxid);
      if (ldphase == LdPhase::kBroadcast) {
        SendUpToDate(from);
        AdvanceCommit();
      } else {
        CheckEstablished();
      }
      return;
    }
    if (l.observer || !l.nl_acked) return;
    QFS_CHECK(z <= last_logged);
    l.acked = std::max(l.acked, z);
    AdvanceCommit();
  }

  void SendUpToDate(PeerId p) {
    Learner& l = learners[p];
    if (committed_q > 0) {
      peer::ZabMessage c;
      c.mutable_commit()->set_zxid(committed_q);
      Send(p, std::move(c));
    }
    peer::ZabMessage m;
    m.mutable_up_to_date();
    Send(p, std::move(m));
    l.phase = Learner::Phase::kUpToDate;
    l.heard = now;
  }

  void CheckEstablished() {
    if (ldphase != LdPhase::kSync || current_epoch != new_epoch) return;
    if (!QuorumOf(Who([](const Learner& l) { return l.nl_acked; }))) return;
    ldphase = LdPhase::kBroadcast;
    serving = true;
    counter = EpochOf(last_logged) == new_epoch ? CounterOf(last_logged) : 0;
    next_ping_at = now;
    AdvanceCommit();
    for (auto& [p, l] : learners) {
      l.heard = now;
      if (l.nl_acked) SendUpToDate(p);
    }
  }

  void AdvanceCommit() {
    if (role != Role::kLeading || ldphase != LdPhase::kBroadcast) return;
    // The highest zxid a majority of each configuration in force acknowledged.
    auto point = [&](const Membership& m) -> Zxid {
      std::vector<Zxid> acks;
      for (PeerId v : m.voters) {
        if (v == cfg.self) {
          acks.push_back(current_epoch == new_epoch ? durable : 0);
          continue;
        }
        auto it = learners.find(v);
        if (it != learners.end() && it->second.nl_acked) acks.push_back(it->second.acked);
      }
      size_t q = m.voters.size() / 2 + 1;
      if (acks.size() < q) return 0;
      std::nth_element(acks.begin(), acks.begin() + static_cast<long>(q - 1), acks.end(),
                       std::greater<Zxid>());
      return acks[q - 1];
    };
    Zxid z = point(conf.current);
    if (conf.previous) z = std::min(z, point(*conf.previous));
    z = std::min(z, last_logged);
    if (z <= committed_q) return;
    Zxid old = committed_q;
    committed_q = z;
    for (auto& [p, l] : learners) {
      if (l.phase < Learner::Phase::kSyncing) continue;
      if (l.observer) {
        for (auto it = FirstAfter(std::max(old, l.nl_zxid)); it != mem.end() && it->zxid <= z;
             ++it) {
          peer::ZabMessage m;
          FillProposal(*it, m.mutable_inform()->mutable_txn());
          Send(p, std::move(m));
        }
        if (!l.nl_acked) continue;  // its Commit comes with UPTODATE
      }
      peer::ZabMessage m;
      m.mutable_commit()->set_zxid(z);
      Send(p, std::move(m));
    }
    CommitTo(z);
    CheckExhausted();
  }

  void CheckExhausted() {
    if (role == Role::kLeading && ldphase == LdPhase::kBroadcast && counter >= cfg.max_counter &&
        committed_q == last_logged) {
      GoLooking();  // a new epoch restarts the counter
    }
  }

  void AnswerSync(const PendingSync& s) {
    if (s.from == 0) {
      ready.syncs_done.push_back({s.tag, s.zxid});
    } else if (learners.count(s.from)) {
      peer::ZabMessage m;
      m.mutable_sync_reply()->set_tag(s.tag);
      m.mutable_sync_reply()->set_zxid(s.zxid);
      Send(s.from, std::move(m));
    }
  }

  void LeaderSync(uint64_t tag, PeerId from, bool lin) {
    PendingSync s{tag, from, last_logged, 0};
    if (!lin) return AnswerSync(s);
    s.seq = ++ping_seq;
    lin_syncs.push_back(s);
    for (auto& [p, l] : learners) {
      if (!IsVoter(p) || l.observer || !l.nl_acked) continue;
      peer::ZabMessage m;
      m.mutable_ping()->set_committed(committed_q);
      m.mutable_ping()->set_seq(s.seq);
      Send(p, std::move(m));
    }
    CheckLinSyncs();
  }

  void CheckLinSyncs() {
    std::vector<PendingSync> keep;
    for (const PendingSync& s : lin_syncs) {
      if (QuorumOf(Who([&](const Learner& l) { return l.pong_seq >= s.seq; }))) {
        AnswerSync(s);
      } else {
        keep.push_back(s);
      }
    }
    lin_syncs.swap(keep);
  }

  void OnLeaderMessage(PeerId from, const peer::ZabMessage& m) {
    auto it = learners.find(from);
    if (it != learners.end()) it->second.heard = now;
    switch (m.body_case()) {
      case peer::ZabMessage::kFollowerInfo:
        OnFollowerInfo(from, m.follower_info());
        CheckDiscovery();
        return;
      case peer::ZabMessage::kAckEpoch:
        OnAckEpoch(from, m.ack_epoch());
        return;
      case peer::ZabMessage::kHistoryReply:
        OnHistoryReply(from, m.history_reply());
        return;
      case peer::ZabMessage::kAck:
        OnAck(from, m.ack().zxid());
        return;
      case peer::ZabMessage::kPingReply:
        if (it != learners.end()) {
          it->second.pong_seq = std::max(it->second.pong_seq, m.ping_reply().seq());
          CheckLinSyncs();
        }
        return;
      case peer::ZabMessage::kSyncRequest:
        if (it != learners.end() && serving)
          LeaderSync(m.sync_request().tag(), from, m.sync_request().linearizable());
        return;
      default:
        return;
    }
  }

  void TickLeader() {
    if (stepping_down) {
      // The configuration without this leader as voter committed (docs/reconfig.md). Its
      // learners leave once they learn it; leaving at once would close their links with the
      // COMMIT maybe still queued (the shell drops what is queued on a closed link), and they
      // would fail the writes they forwarded. So it waits for them, at most syncLimit.
      if (!learners.empty() && now - stepdown_since < static_cast<uint64_t>(cfg.sync_ticks)) return;
      if (IsMember(cfg.self)) {
        GoLooking();
      } else {
        Remove();
      }
      return;
    }
    if (ldphase != LdPhase::kBroadcast) {
      if (now - lead_start > static_cast<uint64_t>(cfg.init_ticks)) GoLooking();
      return;
    }
    // Drop learners that went silent or could not sync in time; they will come back.
    std::vector<PeerId> drop;
    for (auto& [p, l] : learners) {
      bool stuck = l.phase != Learner::Phase::kUpToDate &&
                   now - l.heard > static_cast<uint64_t>(cfg.init_ticks);
      bool silent = l.phase == Learner::Phase::kUpToDate &&
                    now - l.heard > static_cast<uint64_t>(cfg.sync_ticks);
      if (stuck || silent) drop.push_back(p);
    }
    for (PeerId p : drop) {
      Disconnect(p);
      learners.erase(p);
    }
    if (!QuorumOf(Who([&](const Learner& l) {
          return l.nl_acked && now - l.heard <= static_cast<uint64_t>(cfg.sync_ticks);
        })))
      return GoLooking();
    if (now >= next_ping_at) {
      next_ping_at = now + cfg.ping_ticks;
      uint64_t seq = ++ping_seq;
      for (auto& [p, l] : learners) {
        if (l.phase < Learner::Phase::kSyncing) continue;
        peer::ZabMessage m;
        m.mutable_ping()->set_committed(committed_q);
        m.mutable_ping()->set_seq(seq);
        Send(p, std::move(m));
      }
    }
    CheckExhausted();
  }

  // --- inputs ---
  void Tick() {
    now++;
    if (removed) return TickRemoved();
    switch (role) {
      case Role::kLooking:
        TickLooking();
        break;
      case Role::kFollowing:
      case Role::kObserving:
        TickLearner();
        break;
      case Role::kLeading:
        TickLeader();
        break;
    }
  }

  void Step(PeerId from, const peer::ZabMessage& m) {
    // Messages from outside the configuration are taken too: a joining server's votes (answered)
    // and FOLLOWERINFO (it learns as a non-voter).
    if (from == cfg.self || from == 0) return;
    if (removed) {
      if (m.has_vote() && MaybeReadmitted(m.vote())) return;
      // A removed member still tells those looking which configuration removed it.
      if (m.has_vote() && m.vote().state() == peer::Vote::LOOKING && m.vote().round() != 0) {
        peer::ZabMessage r;
        r.mutable_vote()->set_state(peer::Vote::OBSERVING);
        r.mutable_vote()->set_config_zxid(CommittedConfigZxid());
        // With its members: the asker may know none of them yet (a restarted member whose
        // configuration is older; seed 2008724).
        ToProto(conf.current, r.mutable_vote()->mutable_config());
        Send(from, std::move(r));
      }
      return;
    }
    if (m.has_vote()) return OnVote(from, m.vote());
    switch (role) {
      case Role::kLooking:
        if (m.has_follower_info()) OnFollowerInfo(from, m.follower_info());
        return;
      case Role::kLeading:
        return OnLeaderMessage(from, m);
      case Role::kFollowing:
      case Role::kObserving:
        if (from == leader) return OnLearnerMessage(m);
        if (m.has_follower_info()) Disconnect(from);
        return;
    }
  }

  void Disconnected(PeerId p) {
    if (removed) return;
    pending_infos.erase(p);
    if ((role == Role::kFollowing || role == Role::kObserving) && p == leader) {
      GoLooking(false);
    } else if (role == Role::kLeading) {
      learners.erase(p);
      std::erase_if(lin_syncs, [p](const PendingSync& s) { return s.from == p; });
    }
  }

  // A snapshot for a learner is being written or streamed: the link is busy, not silent.
  // initLimit bounds silence during a sync, not a transfer's total time (as in ZooKeeper,
  // whose learner's read timeout is initLimit per read).
  void Progress(PeerId p) {
    if ((role == Role::kFollowing || role == Role::kObserving) && p == leader &&
        lphase != LPhase::kServing) {
      last_heard = follow_start = now;
    } else if (role == Role::kLeading) {
      auto it = learners.find(p);
      if (it == learners.end() || it->second.phase == Learner::Phase::kUpToDate) return;
      it->second.heard = now;
      if (ldphase != LdPhase::kBroadcast) lead_start = now;
    }
  }

  void Persisted(Zxid z) {
    z = std::min(z, last_logged);
    if (z <= durable) return;
    durable = z;
    Trim();
    if (role == Role::kLeading) {
      MaybePersistLeaderEpoch();
      AdvanceCommit();
    } else if (role == Role::kFollowing || role == Role::kObserving) {
      MaybeAckNewLeader();
    }
  }

  void SnapshotInstalled(Zxid z) {
    QFS_CHECK(z == snapshot_wait);
    mem.clear();
    mem_base = last_logged = durable = last_committed = tree_zxid = z;
    epochs.clear();
    if (z != 0) NoteEpoch(z);
    if (snap_conf) AdoptConfig(*snap_conf);  // the configuration that goes with the snapshot
    snap_conf.reset();
    if (lphase != LPhase::kAwaitSnapshot) return;
    lphase = LPhase::kSyncing;
    std::vector<peer::ZabMessage> msgs;
    msgs.swap(buffered);
    for (const auto& m : msgs) {
      if (role == Role::kLooking) break;
      OnLearnerMessage(m);
    }
  }

  std::optional<ProposeError> CanPropose() const {
    if (role != Role::kLeading) return ProposeError::kNotLeader;
    if (!serving) return ProposeError::kNotServing;
    if (counter >= cfg.max_counter) return ProposeError::kEpochExhausted;
    return std::nullopt;
  }

  std::optional<ProposeError> CheckReconfig(const Membership& m) const {
    QFS_CHECK(m.Valid());
    if (auto err = CanPropose()) return err;
    if (conf.previous) return ProposeError::kReconfigInProgress;
    std::vector<PeerId> synced{cfg.self};
    for (auto& [p, l] : learners)
      if (!l.observer && l.phase == Learner::Phase::kUpToDate) synced.push_back(p);
    if (!m.Majority(synced)) return ProposeError::kNewConfigNoQuorum;
    return std::nullopt;
  }

  std::optional<ProposeError> Propose(std::string payload, PeerId origin, uint64_t tag,
                                      std::optional<Membership> config = std::nullopt) {
    if (auto err = config ? CheckReconfig(*config) : CanPropose()) return err;
    Zxid z = MakeZxid(new_epoch, ++counter);
    Entry e{z, std::move(payload), origin, tag, std::move(config)};
    for (auto& [p, l] : learners) {
      if (l.observer || l.phase < Learner::Phase::kSyncing) continue;
      peer::ZabMessage m;
      FillProposal(e, m.mutable_proposal());
      Send(p, std::move(m));
    }
    Append(std::move(e));
    return std::nullopt;
  }

  void Sync(uint64_t tag, bool lin) {
    if (removed) return;
    if (role == Role::kLeading) {
      if (serving) LeaderSync(tag, 0, lin);
    } else if ((role == Role::kFollowing || role == Role::kObserving) &&
               lphase == LPhase::kServing) {
      peer::ZabMessage m;
      m.mutable_sync_request()->set_tag(tag);
      m.mutable_sync_request()->set_linearizable(lin);
      Send(leader, std::move(m));
    }
  }

  RoleChange Current() const {
    RoleChange rc;
    rc.role = role;
    rc.leader = leader;
    rc.epoch = current_epoch;
    rc.serving = serving;
    rc.removed = removed;
    return rc;
  }
  bool RoleChanged() const {
    RoleChange c = Current();
    return !reported_once || c.role != reported.role || c.leader != reported.leader ||
           c.epoch != reported.epoch || c.serving != reported.serving ||
           c.removed != reported.removed;
  }
};

Core::Core(Config config, InitialState state, LogReader* log)
    : impl_(std::make_unique<Impl>(std::move(config), std::move(state), log)) {}
Core::~Core() = default;

void Core::Tick() {
  impl_->Tick();
}
void Core::Step(PeerId from, const peer::ZabMessage& msg) {
  impl_->Step(from, msg);
}
void Core::Disconnected(PeerId peer) {
  impl_->Disconnected(peer);
}
void Core::Persisted(Zxid zxid) {
  impl_->Persisted(zxid);
}
void Core::Progress(PeerId peer) {
  impl_->Progress(peer);
}
void Core::SnapshotInstalled(Zxid zxid) {
  impl_->SnapshotInstalled(zxid);
}
std::optional<Zxid> Core::NextZxid() const {
  if (impl_->CanPropose()) return std::nullopt;
  return MakeZxid(impl_->new_epoch, impl_->counter + 1);
}
std::optional<ProposeError> Core::Propose(std::string payload, PeerId origin, uint64_t origin_tag) {
  return impl_->Propose(std::move(payload), origin, origin_tag);
}
std::optional<ProposeError> Core::CheckReconfig(const Membership& config) const {
  return impl_->CheckReconfig(config);
}
std::optional<ProposeError> Core::ProposeReconfig(std::string payload, Membership config,
                                                  PeerId origin, uint64_t origin_tag) {
  return impl_->Propose(std::move(payload), origin, origin_tag, std::move(config));
}
void Core::Sync(uint64_t tag, bool linearizable) {
  impl_->Sync(tag, linearizable);
}

Ready Core::TakeReady() {
  Ready r;
  std::swap(r, impl_->ready);
  if (impl_->RoleChanged()) {
    impl_->reported = impl_->Current();
    impl_->reported_once = true;
    r.role_change = impl_->reported;
  }
  if (impl_->conf != impl_->persisted_conf) {
    impl_->persisted_conf = impl_->conf;
    r.config = impl_->conf;
  }
  // Applies held back behind a snapshot request go into the next Ready.
  impl_->ready.apply.swap(impl_->deferred_apply);
  impl_->ready_snapshot_zxid = 0;
  return r;
}
bool Core::HasReady() const {
  return !impl_->ready.empty() || !impl_->deferred_apply.empty() || impl_->RoleChanged() ||
         impl_->conf != impl_->persisted_conf;
}

Role Core::role() const {
  return impl_->role;
}
PeerId Core::leader() const {
  return impl_->leader;
}
uint64_t Core::current_epoch() const {
  return impl_->current_epoch;
}
uint64_t Core::accepted_epoch() const {
  return impl_->accepted_epoch;
}
bool Core::serving() const {
  return impl_->serving;
}
Zxid Core::last_logged() const {
  return impl_->last_logged;
}
Zxid Core::last_committed() const {
  return impl_->last_committed;
}
uint64_t Core::election_round() const {
  return impl_->round;
}
const ConfigState& Core::config() const {
  return impl_->conf;
}
bool Core::removed() const {
  return impl_->removed;
}
LearnerCounts Core::learner_counts() const {
  LearnerCounts c;
  if (impl_->role != Role::kLeading) return c;
  c.learners = impl_->learners.size();
  for (const auto& [p, l] : impl_->learners) {
    if (l.phase != Impl::Learner::Phase::kUpToDate) continue;
    if (impl_->IsVoter(p)) {
      c.synced_followers++;
    } else {
      c.synced_observers++;
    }
  }
  c.pending_syncs = impl_->lin_syncs.size();
  return c;
}

}  // namespace qfs::zab
