// The ZAB core's election (see core.h for the contract, core_impl.h for the state): fast
// leader election while looking, the answers members in any role give to votes, and a
// removed member's dormancy and readmission (docs/reconfig.md).
#include <algorithm>
#include <map>
#include <vector>

#include "consensus/util/result.h"
#include "consensus/zab/core_impl.h"

namespace qfs::zab {

namespace {

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

// Our own vote when looking afresh: ourselves if we may lead, else nobody (we still take
// part, adopting the best candidate we hear of).
peer::Vote Core::Impl::OwnVote() const {
  return Eligible(cfg.self) ? SelfVote() : peer::Vote();
}

// A vote worth adopting over `than`: a better key, for a candidate we may elect.
bool Core::Impl::Better(const peer::Vote& v, const peer::Vote& than) const {
  return Eligible(v.leader()) && KeyOf(v) > KeyOf(than);
}

peer::Vote::State Core::Impl::MyState() const {
  switch (role()) {
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

peer::ZabMessage Core::Impl::VoteMsg() const {
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

void Core::Impl::SendVoteAll() {
  for (PeerId p : voters)
    if (p != cfg.self) Send(p, VoteMsg());
}

peer::Vote Core::Impl::SelfVote() const {
  peer::Vote v;
  v.set_leader(cfg.self);
  v.set_zxid(last_logged);
  v.set_peer_epoch(current_epoch);
  return v;
}

// A committed configuration left this member out (docs/reconfig.md): it closes its session
// and stays dormant, looking with no election (TickRemoved).
void Core::Impl::Remove() {
  if (IsLearning()) Disconnect(learning().leader);
  if (IsLeading())
    for (auto& [p, l] : leading().learners) Disconnect(p);
  if (IsLooking())
    for (auto& [p, fi] : looking().pending_infos) Disconnect(p);
  state = Looking{};
  removed = true;
  looking().resend_at = now + static_cast<uint64_t>(cfg.vote_resend_ticks) * 8;  // TickRemoved
}

// A removed member is dormant, not gone (ZooKeeper's keeps running too): now and then it asks
// the members of the configuration that removed it for theirs, with a LOOKING vote of round
// 0 for nobody, which no one counts and everyone answers. A later configuration that names
// it again (it was added back, perhaps before it even learnt of its removal: seed 2031112)
// readmits it.
void Core::Impl::TickRemoved() {
  Looking& lk = looking();  // a removed member looks until it is readmitted
  if (now < lk.resend_at) return;
  lk.resend_at = now + static_cast<uint64_t>(cfg.vote_resend_ticks) * 8;
  peer::ZabMessage probe;
  probe.mutable_vote()->set_state(peer::Vote::LOOKING);
  probe.mutable_vote()->set_config_zxid(conf.current_zxid);
  for (PeerId p : members)
    if (p != cfg.self) Send(p, probe);
}

// A pending entry that names it readmits it too, as a joining server (its committed view
// still leaves it out): the leader-elect holding that entry may need its vote for the new
// majority (seed 3089466), and a joining server syncs, votes and counts once it commits.
bool Core::Impl::MaybeReadmitted(const peer::Vote& v) {
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

// A new round, from fresh election state (whatever the role was: the session is over).
void Core::Impl::StartLooking() {
  state = Looking{};
  round++;
  vote = OwnVote();
  if (SelfVoter()) looking().recv[cfg.self] = vote;
  SendVoteAll();
  Looking& lk = looking();
  lk.backoff = 1;
  lk.resend_at = now + cfg.vote_resend_ticks;
  CheckVotes();
}

// Leaves the current role for an election. `close_links`: ask the shell to close the
// session links (false when the transport already reported the break).
void Core::Impl::GoLooking(bool close_links) {
  if (close_links) {
    if (IsLearning()) Disconnect(learning().leader);
    if (IsLeading())
      for (auto& [p, l] : leading().learners) Disconnect(p);
  }
  StartLooking();
}

// Our vote becomes v (its round and state are the sender's, not part of a vote).
void Core::Impl::Adopt(const peer::Vote& v) {
  vote = v;
  vote.clear_round();
  vote.clear_state();
}

// Our vote changed: count again from now, and tell the voters at once.
void Core::Impl::VoteChanged() {
  Looking& lk = looking();
  lk.finalize_at.reset();
  SendVoteAll();
  lk.backoff = 1;
  lk.resend_at = now + cfg.vote_resend_ticks;
}

void Core::Impl::CheckVotes() {
  if (!IsLooking() || !SelfVoter()) return;
  Looking& lk = looking();
  if (vote.leader() == 0) {  // we may not lead and have heard of no one who may
    lk.finalize_at.reset();
    return;
  }
  std::vector<PeerId> agree;
  for (auto& [p, v] : lk.recv)
    if (IsVoter(p) && KeyOf(v) == KeyOf(vote)) agree.push_back(p);
  if (agree.size() == voters.size()) {
    Decide();
  } else if (vote.leader() == cfg.self ? QuorumOf(agree) : AnyQuorumOf(agree)) {
    if (!lk.finalize_at) lk.finalize_at = now + cfg.election_finalize_ticks;
  } else {
    lk.finalize_at.reset();
  }
}

void Core::Impl::CheckOutside() {
  if (!IsLooking()) return;
  // A quorum of voters says it follows (or is) the same leader, and that leader says it
  // leads. (Their votes may differ otherwise: a member that joined later adopted another
  // vote for the same leader.)
  const std::map<PeerId, peer::Vote>& outside = looking().outside;
  std::map<PeerId, std::vector<PeerId>> count;
  for (auto& [p, v] : outside) count[v.leader()].push_back(p);
  for (auto& [l, who] : count) {
    if (!AnyQuorumOf(who)) continue;
    auto it = outside.find(l);
    if (l == cfg.self || it == outside.end() || it->second.state() != peer::Vote::LEADING) continue;
    Adopt(it->second);
    round = std::max(round, it->second.round());
    Follow(l);  // ends the looking state (and `outside` with it)
    return;
  }
}

void Core::Impl::Decide() {
  looking().finalize_at.reset();
  if (vote.leader() == cfg.self) {
    Lead();
  } else {
    Follow(vote.leader());
  }
}

void Core::Impl::OnVote(PeerId from, const peer::Vote& v) {
  if (IsLooking() && v.config_zxid() > conf.current_zxid && v.has_config()) {
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
  if (IsLooking() && conf.previous && v.config_zxid() == conf.current_zxid) {
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
  if (IsLooking() && v.state() == peer::Vote::LEADING && v.leader() == from &&
      v.config_zxid() > CommittedConfigZxid()) {
    // A leader that knows a newer configuration than ours: we are behind, and our own view
    // cannot count its supporters. Following is safe (discovery checks the histories).
    Adopt(v);
    vote.clear_config_zxid();
    round = std::max(round, v.round());
    return Follow(from);
  }
  if (IsLooking() && v.state() != peer::Vote::LOOKING && v.leader() != 0 && v.leader() != from &&
      v.leader() != cfg.self && (v.config_zxid() > CommittedConfigZxid() || !IsVoter(v.leader()))) {
    // Someone follows a leader under a newer configuration, or one that is no voter of
    // ours (it holds an entry we have not seen): ask that leader directly (it may be a voter
    // we do not know of yet); its LEADING answer lets us follow it.
    Send(v.leader(), VoteMsg());
  }
  bool from_looking = v.state() == peer::Vote::LOOKING;
  if (!IsVoter(from) && IsLooking()) return OnOutsiderVote(from, v);
  // Voters answer anyone looking with their vote (that is how a restarted member or an
  // observer finds the established leader).
  if (!IsVoter(from) || !IsLooking()) {
    if (from_looking && SelfVoter()) {
      Send(from, VoteMsg());
    } else if (from_looking && IsLearning()) {
      // A non-voter's answer is counted by no one: it names its leader and configuration
      // for a member that is behind (see above).
      peer::ZabMessage r = VoteMsg();
      r.mutable_vote()->set_leader(learning().leader);
      r.mutable_vote()->set_state(peer::Vote::OBSERVING);
      Send(from, std::move(r));
    }
    return;
  }
  if (v.state() == peer::Vote::FOLLOWING || v.state() == peer::Vote::LEADING) {
    Looking& lk = looking();
    lk.outside[from] = v;
    if (SelfVoter() && v.round() == round) lk.recv[from] = v;
    CheckOutside();  // may follow: lk is gone then
    if (IsLooking()) CheckVotes();
    return;
  }
  // A member that is no voter in its own view still takes part, proposing nobody: a leader
  // with a pending reconfig may count it as a new voter that has not seen the entry yet (as
  // any Raft server answers any candidate). Discovery, not the election, is what is safe.
  if (v.state() != peer::Vote::LOOKING) return;
  Looking& lk = looking();
  bool changed = false;
  if (v.round() > round) {
    round = v.round();
    lk.recv.clear();
    peer::Vote self = OwnVote();
    Adopt(Better(v, self) ? v : self);
    lk.recv[cfg.self] = vote;
    changed = true;
  } else if (v.round() < round) {
    Send(from, VoteMsg());  // bring it to our round
    return;
  } else if (Better(v, vote)) {
    Adopt(v);
    lk.recv[cfg.self] = vote;
    changed = true;
  }
  lk.recv[from] = v;
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
void Core::Impl::OnOutsiderVote(PeerId from, const peer::Vote& v) {
  Looking& lk = looking();
  if (v.state() == peer::Vote::LEADING && v.leader() == from) {
    lk.outside[from] = v;
    CheckOutside();
    return;
  }
  if (v.state() != peer::Vote::LOOKING) return;
  bool changed = false;
  if (v.round() > round) {
    round = v.round();
    lk.recv.clear();
    if (SelfVoter()) {
      vote = OwnVote();
      lk.recv[cfg.self] = vote;
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

void Core::Impl::TickLooking() {
  Looking& lk = looking();
  if (lk.finalize_at && now >= *lk.finalize_at) {
    Decide();
    return;
  }
  if (now >= lk.resend_at) {
    SendVoteAll();
    lk.backoff = std::min(lk.backoff * 2, 8);
    lk.resend_at = now + static_cast<uint64_t>(cfg.vote_resend_ticks) * lk.backoff;
  }
}

}  // namespace qfs::zab
