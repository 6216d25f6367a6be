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
  std::set<PeerId> voters, observers;
  size_t quorum = 1;

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
  Zxid committed_q = 0;  // committed by this leader's quorum (sent in Commit)
  uint32_t counter = 0;
  uint64_t next_ping_at = 0, ping_seq = 0;
  std::vector<PendingSync> lin_syncs;

  Impl(Config c, InitialState st, LogReader* r) : cfg(std::move(c)), reader(r) {
    voters.insert(cfg.voters.begin(), cfg.voters.end());
    observers.insert(cfg.observers.begin(), cfg.observers.end());
    QFS_CHECK(cfg.self != 0 && (voters.count(cfg.self) + observers.count(cfg.self)) == 1);
    QFS_CHECK(!voters.empty());
    quorum = voters.size() / 2 + 1;
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
  bool IsMember(PeerId p) const { return voters.count(p) || observers.count(p); }
  bool SelfVoter() const { return IsVoter(cfg.self); }

  // --- output helpers ---
  void Send(PeerId to, peer::ZabMessage m) {
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
    if (z <= last_committed) return;
    QFS_CHECK(last_committed >= mem_base);
    for (auto it = FirstAfter(last_committed); it != mem.end() && it->zxid <= z; ++it) {
      if (it->zxid > tree_zxid) EmitApply(*it);
    }
    last_committed = z;
    Trim();
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
    return m;
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

  void ResetSession() {
    serving = false;
    leader = 0;
    lphase = LPhase::kNone;
    buffered.clear();
    learners.clear();
    lin_syncs.clear();
    new_epoch = 0;
    pending_infos.clear();
  }

  void StartLooking() {
    ResetSession();
    role = Role::kLooking;
    round++;
    vote = SelfVoter() ? SelfVote() : peer::Vote();
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

  void CheckVotes() {
    if (role != Role::kLooking || !SelfVoter()) return;
    size_t agree = 0;
    for (auto& [p, v] : recv)
      if (IsVoter(p) && KeyOf(v) == KeyOf(vote)) agree++;
    if (agree == voters.size()) {
      Decide();
    } else if (agree >= quorum) {
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
    std::map<PeerId, size_t> count;
    for (auto& [p, v] : outside) count[v.leader()]++;
    for (auto& [l, n] : count) {
      if (n < quorum) continue;
      auto it = outside.find(l);
      if (l == cfg.self || it == outside.end() || it->second.state() != peer::Vote::LEADING)
        continue;
      vote = it->second;
      vote.clear_round();
      vote.clear_state();
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
    // Voters answer anyone looking with their vote (that is how a restarted member or an
    // observer finds the established leader). Observers never answer.
    bool from_looking = v.state() == peer::Vote::LOOKING;
    if (!IsVoter(from) || role != Role::kLooking) {
      if (from_looking && SelfVoter()) Send(from, VoteMsg());
      return;
    }
    if (v.state() == peer::Vote::FOLLOWING || v.state() == peer::Vote::LEADING) {
      outside[from] = v;
      if (SelfVoter() && v.round() == round) recv[from] = v;
      CheckOutside();
      if (role == Role::kLooking) CheckVotes();
      return;
    }
    if (!SelfVoter() || v.state() != peer::Vote::LOOKING) return;
    bool changed = false;
    if (v.round() > round) {
      round = v.round();
      recv.clear();
      peer::Vote self = SelfVote();
      vote = KeyOf(v) > KeyOf(self) ? v : self;
      vote.clear_round();
      vote.clear_state();
      recv[cfg.self] = vote;
      changed = true;
    } else if (v.round() < round) {
      Send(from, VoteMsg());  // bring it to our round
      return;
    } else if (KeyOf(v) > KeyOf(vote)) {
      vote = v;
      vote.clear_round();
      vote.clear_state();
      recv[cfg.self] = vote;
      changed = true;
    }
    recv[from] = v;
    if (changed) {
      finalize_at.reset();
      SendVoteAll();
      backoff = 1;
      resend_at = now + cfg.vote_resend_ticks;
    }
    CheckVotes();
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
    role = SelfVoter() ? Role::kFollowing : Role::kObserving;
    leader = l;
    lphase = LPhase::kDiscovery;
    follow_start = last_heard = now;
    leader_epoch = 0;
    peer::ZabMessage m;
    auto* fi = m.mutable_follower_info();
    fi->set_accepted_epoch(accepted_epoch);
    fi->set_last_zxid(last_logged);
    fi->set_observer(!SelfVoter());
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
    if ((lphase == LPhase::kAckedNewLeader || lphase == LPhase::kServing) && SelfVoter() &&
        durable > ack_sent) {
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
        Append({p.zxid(), p.payload(), p.origin(), p.origin_tag()});
        return;
      }
      case peer::ZabMessage::kCommit:
        if (!synced) return GoLooking();
        CommitTo(m.commit().zxid());
        return;
      case peer::ZabMessage::kInform: {
        if (!synced) return GoLooking();
        const auto& p = m.inform().txn();
        if (p.zxid() > last_logged) Append({p.zxid(), p.payload(), p.origin(), p.origin_tag()});
        CommitTo(p.zxid());
        return;
      }
      case peer::ZabMessage::kNewLeader:
        if (lphase != LPhase::kSyncing || m.new_leader().epoch() != leader_epoch)
          return GoLooking();
        nl_point = last_logged;
        lphase = LPhase::kNewLeader;
        MaybeAckNewLeader();
        return;
      case peer::ZabMessage::kUpToDate:
        if (lphase != LPhase::kAckedNewLeader) return GoLooking();
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
    lead_start = now;
    committed_q = 0;
    counter = 0;
    for (auto& [p, fi] : infos) OnFollowerInfo(p, fi);
    CheckDiscovery();
  }

  size_t CountVoters(const std::function<bool(const Learner&)>& pred) const {
    size_t n = 0;
    for (auto& [p, l] : learners)
      if (IsVoter(p) && pred(l)) n++;
    return n;
  }

  void OnFollowerInfo(PeerId from, const peer::FollowerInfo& fi) {
    if (role == Role::kLooking) {
      pending_infos[from] = fi;
      return;
    }
    if (role != Role::kLeading || fi.observer() == IsVoter(from)) {
      Disconnect(from);  // not (or no longer) its leader, or a confused member: it looks again
      return;
    }
    if (new_epoch != 0 && fi.accepted_epoch() > new_epoch) {
      // It promised a newer epoch to another candidate: only a new election with a higher
      // epoch can take it in.
      return GoLooking();
    }
    learners.erase(from);
    Learner& l = learners[from];
    l.observer = !IsVoter(from);
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
    if (CountVoters([](const Learner&) { return true; }) + 1 < quorum) return;
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
    if (fresh_acks.size() + 1 < quorum) return;
    // The leader must hold the most up-to-date history of its quorum.
    std::pair<uint64_t, Zxid> mine{current_epoch, last_logged};
    for (auto& [p, a] : fresh_acks) {
      if (std::pair<uint64_t, Zxid>{a.current_epoch(), a.last_zxid()} > mine) return GoLooking();
    }
    ldphase = LdPhase::kSync;
    std::vector<PeerId> ps;
    for (auto& [p, l] : learners)
      if (l.phase == Learner::Phase::kAcked) ps.push_back(p);
    for (PeerId p : ps) StartSync(p);
    MaybePersistLeaderEpoch();
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
      if (ready.send_snapshot.empty()) ready_snapshot_zxid = tree_zxid;
      Zxid snap = ready_snapshot_zxid;
      s->set_mode(peer::SyncStart::SNAP);
      s->set_zxid(snap);
      ready.send_snapshot.push_back(p);
      entries.clear();
      for (const Entry& e : mem)
        if (e.zxid > snap) entries.push_back(e);
      QFS_CHECK(mem_base <= snap);
    }
    Send(p, std::move(start));
    for (const Entry& e : entries) {
      peer::ZabMessage m;
      auto* pr = m.mutable_proposal();
      pr->set_zxid(e.zxid);
      pr->set_payload(e.payload);
      pr->set_origin(e.origin);
      pr->set_origin_tag(e.origin_tag);
      Send(p, std::move(m));
    }
    if (ldphase == LdPhase::kBroadcast && committed_q > 0) {
      peer::ZabMessage m;
      m.mutable_commit()->set_zxid(committed_q);
      Send(p, std::move(m));
    }
    peer::ZabMessage nl;
    nl.mutable_new_leader()->set_epoch(new_epoch);
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
      if (!l.observer) l.acked = std::max(l.acked, l.nl_zxid);
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
    if (CountVoters([](const Learner& l) { return l.nl_acked; }) + 1 < quorum) return;
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
    std::vector<Zxid> acks;
    acks.push_back(current_epoch == new_epoch ? durable : 0);
    for (auto& [p, l] : learners)
      if (IsVoter(p) && l.nl_acked) acks.push_back(l.acked);
    if (acks.size() < quorum) return;
    std::sort(acks.begin(), acks.end(), std::greater<Zxid>());
    Zxid z = std::min(acks[quorum - 1], last_logged);
    if (z <= committed_q) return;
    Zxid old = committed_q;
    committed_q = z;
    for (auto& [p, l] : learners) {
      if (l.phase < Learner::Phase::kSyncing) continue;
      if (l.observer) {
        for (auto it = FirstAfter(std::max(old, l.nl_zxid)); it != mem.end() && it->zxid <= z;
             ++it) {
          const Entry& e = *it;
          peer::ZabMessage m;
          auto* t = m.mutable_inform()->mutable_txn();
          t->set_zxid(e.zxid);
          t->set_payload(e.payload);
          t->set_origin(e.origin);
          t->set_origin_tag(e.origin_tag);
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
      if (!IsVoter(p) || !l.nl_acked) continue;
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
      size_t n = 1 + CountVoters([&](const Learner& l) { return l.pong_seq >= s.seq; });
      if (n >= quorum) {
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
    size_t alive = 1 + CountVoters([&](const Learner& l) {
                     return l.nl_acked && now - l.heard <= static_cast<uint64_t>(cfg.sync_ticks);
                   });
    if (alive < quorum) return GoLooking();
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
    if (from == cfg.self || !IsMember(from)) return;
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

  std::optional<ProposeError> Propose(std::string payload, PeerId origin, uint64_t tag) {
    if (auto err = CanPropose()) return err;
    Zxid z = MakeZxid(new_epoch, ++counter);
    Entry e{z, std::move(payload), origin, tag};
    for (auto& [p, l] : learners) {
      if (l.observer || l.phase < Learner::Phase::kSyncing) continue;
      peer::ZabMessage m;
      auto* pr = m.mutable_proposal();
      pr->set_zxid(z);
      pr->set_payload(e.payload);
      pr->set_origin(origin);
      pr->set_origin_tag(tag);
      Send(p, std::move(m));
    }
    Append(std::move(e));
    return std::nullopt;
  }

  void Sync(uint64_t tag, bool lin) {
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
    return rc;
  }
  bool RoleChanged() const {
    RoleChange c = Current();
    return !reported_once || c.role != reported.role || c.leader != reported.leader ||
           c.epoch != reported.epoch || c.serving != reported.serving;
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
  // Applies held back behind a snapshot request go into the next Ready.
  impl_->ready.apply.swap(impl_->deferred_apply);
  impl_->ready_snapshot_zxid = 0;
  return r;
}
bool Core::HasReady() const {
  return !impl_->ready.empty() || !impl_->deferred_apply.empty() || impl_->RoleChanged();
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
