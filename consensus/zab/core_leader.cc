// The ZAB core's leader (see core.h for the contract, core_impl.h for the state): discovery
// (NEWEPOCH, ACKEPOCH, taking a learner's newer history), synchronization of each learner,
// broadcast (proposals, quorum commits, INFORM to observers, pings, linearizable syncs) and
// stepping down.
#include <algorithm>
#include <functional>
#include <map>
#include <utility>
#include <vector>

#include "consensus/util/result.h"
#include "consensus/zab/core_impl.h"

namespace qfs::zab {

void Core::Impl::Lead() {
  std::map<PeerId, peer::FollowerInfo> infos;
  infos.swap(looking().pending_infos);
  Leading ld;
  ld.ldphase = LdPhase::kDiscovery;
  ld.history_epoch = current_epoch;
  ld.lead_start = now;
  ld.committed_q = 0;
  ld.counter = 0;
  state = std::move(ld);
  // Those that took us for their leader while we were looking.
  for (auto& [p, fi] : infos) OnFollowerInfo(p, fi);
  CheckDiscovery();
}

// This leader and its learners that are voters in its view for which pred holds. A voter on
// an observer link (it has not seen the reconfig that made it one) counts for discovery and
// for its NEWLEADER ack: it promised the epoch and holds the history like any learner.
std::vector<PeerId> Core::Impl::Who(const std::function<bool(const Learner&)>& pred) const {
  const Leading& ld = leading();
  std::vector<PeerId> who{cfg.self};
  for (auto& [p, l] : ld.learners)
    if (IsVoter(p) && pred(l)) who.push_back(p);
  return who;
}

void Core::Impl::OnFollowerInfo(PeerId from, const peer::FollowerInfo& fi) {
  if (IsLooking()) {
    looking().pending_infos[from] = fi;
    return;
  }
  if (!IsLeading()) {
    Disconnect(from);  // not (or no longer) its leader: it looks again
    return;
  }
  Leading& ld = leading();
  if (ld.new_epoch != 0 && fi.accepted_epoch() > ld.new_epoch) {
    // It promised a newer epoch to another candidate: only a new election with a higher
    // epoch can take it in.
    return GoLooking();
  }
  ld.learners.erase(from);
  Learner& l = ld.learners[from];
  // The learner picks its link: a voter on an observer link (it has not seen the reconfig
  // that made it one) is synced, and reconnects once it learns the change.
  l.observer = fi.observer();
  l.info = fi;
  l.heard = now;
  if (ld.new_epoch != 0) SendNewEpoch(from);
}

void Core::Impl::SendNewEpoch(PeerId p) {
  Leading& ld = leading();
  peer::ZabMessage m;
  m.mutable_new_epoch()->set_epoch(ld.new_epoch);
  Send(p, std::move(m));
  ld.learners[p].phase = Learner::Phase::kEpochSent;
}

void Core::Impl::CheckDiscovery() {
  Leading& ld = leading();
  if (ld.ldphase != LdPhase::kDiscovery) return;
  if (!QuorumOf(Who([](const Learner&) { return true; }))) return;
  uint64_t e = accepted_epoch;
  for (auto& [p, l] : ld.learners) e = std::max<uint64_t>(e, l.info.accepted_epoch());
  ld.new_epoch = e + 1;
  accepted_epoch = ld.new_epoch;
  ready.accepted_epoch = ld.new_epoch;
  ld.ldphase = LdPhase::kAckEpoch;
  for (auto& [p, l] : ld.learners) SendNewEpoch(p);
  CheckAckEpoch();
}

void Core::Impl::OnAckEpoch(PeerId from, const peer::AckEpoch& a) {
  Leading& ld = leading();
  auto it = ld.learners.find(from);
  if (it == ld.learners.end() || it->second.phase != Learner::Phase::kEpochSent) return;
  it->second.ack = a;
  it->second.phase = Learner::Phase::kAcked;
  if (IsVoter(from) && !a.already_accepted()) ld.fresh_acks[from] = a;
  if (ld.ldphase == LdPhase::kAckEpoch) {
    CheckAckEpoch();
  } else if (ld.ldphase >= LdPhase::kSync) {
    StartSync(from);
  }
}

void Core::Impl::CheckAckEpoch() {
  Leading& ld = leading();
  if (ld.ldphase != LdPhase::kAckEpoch) return;
  std::vector<PeerId> who{cfg.self};
  for (auto& [p, a] : ld.fresh_acks) who.push_back(p);
  if (!QuorumOf(who)) return;
  // The leader must hold the most up-to-date history of its quorum: the election made sure
  // of that, except that only voters of the committed configuration may be elected, and a
  // new voter of a pending entry may hold txns proposed while it was pending that the
  // leader-elect lacks (seed 651733). Zab's discovery takes that history then.
  std::pair<uint64_t, Zxid> best{std::max(current_epoch, ld.history_epoch), last_logged};
  PeerId ahead = 0;
  for (auto& [p, a] : ld.fresh_acks) {
    std::pair<uint64_t, Zxid> theirs{a.current_epoch(), a.last_zxid()};
    if (theirs > best) {
      best = theirs;
      ahead = p;
    }
  }
  if (ahead != 0) return AskHistory(ahead);
  ld.ldphase = LdPhase::kSync;
  std::vector<PeerId> ps;
  for (auto& [p, l] : ld.learners)
    if (l.phase == Learner::Phase::kAcked) ps.push_back(p);
  for (PeerId p : ps) StartSync(p);
  MaybePersistLeaderEpoch();
}

// Asks `p`, whose history is the newest of the quorum, for what this leader lacks. It must be
// connected (its ack stands across reconnections; it acks again when it comes back).
void Core::Impl::AskHistory(PeerId p) {
  Leading& ld = leading();
  if (ld.adopting) return;  // one request at a time; the answer checks the quorum again
  auto it = ld.learners.find(p);
  if (it == ld.learners.end() || it->second.phase != Learner::Phase::kAcked) return;
  std::optional<Zxid> common = CommonPoint(it->second.info);
  // Not provable, or a cut below what this member can roll back: look again, as before.
  if (!common || *common > last_logged ||
      (*common < last_logged && reader && *common < reader->TruncateFloor()))
    return GoLooking();
  ld.adopting = p;
  ld.adopting_after = *common;
  peer::ZabMessage m;
  m.mutable_history_request()->set_after(*common);
  Send(p, std::move(m));
}

// The history asked for: this leader's log becomes the learner's (its entries after the
// common point replace ours, which cannot have committed: Zab's discovery argument, a
// quorum's newest history holds every committed txn). Durable before the new epoch
// (MaybePersistLeaderEpoch), as every synced history is.
void Core::Impl::OnHistoryReply(PeerId from, const peer::HistoryReply& r) {
  Leading& ld = leading();
  if (ld.ldphase != LdPhase::kAckEpoch || ld.adopting != from || r.after() != ld.adopting_after)
    return;
  ld.adopting.reset();
  auto a = ld.fresh_acks.find(from);
  if (!r.ok() || a == ld.fresh_acks.end() || a->second.current_epoch() != r.current_epoch() ||
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
  ld.history_epoch = std::max(ld.history_epoch, r.current_epoch());
  CheckAckEpoch();
}

void Core::Impl::MaybePersistLeaderEpoch() {
  if (!IsLeading()) return;
  Leading& ld = leading();
  if (ld.ldphase < LdPhase::kSync || current_epoch == ld.new_epoch) return;
  if (durable < last_logged) return;  // its history must be durable before the epoch
  current_epoch = ld.new_epoch;
  ready.current_epoch = ld.new_epoch;
  CheckEstablished();
}

// Newest point of the learner's history that the leader also holds, if provable.
std::optional<Zxid> Core::Impl::CommonPoint(const peer::FollowerInfo& fi) const {
  if (fi.last_zxid() == 0) return 0;
  for (const auto& theirs : fi.epochs()) {
    for (const auto& ours : epochs) {
      if (ours.epoch() == theirs.epoch()) return std::min(ours.last_zxid(), theirs.last_zxid());
    }
  }
  return std::nullopt;
}

void Core::Impl::StartSync(PeerId p) {
  Leading& ld = leading();
  Learner& l = ld.learners[p];
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
  if (ld.ldphase == LdPhase::kBroadcast && ld.committed_q > 0) {
    peer::ZabMessage m;
    m.mutable_commit()->set_zxid(ld.committed_q);
    Send(p, std::move(m));
  }
  peer::ZabMessage nl;
  nl.mutable_new_leader()->set_epoch(ld.new_epoch);
  ToProto(conf, nl.mutable_new_leader()->mutable_config());
  Send(p, std::move(nl));
  l.phase = Learner::Phase::kSyncing;
  l.nl_zxid = last_logged;
  l.sync_started = now;
  l.heard = now;
}

void Core::Impl::OnAck(PeerId from, Zxid z) {
  Leading& ld = leading();
  auto it = ld.learners.find(from);
  if (it == ld.learners.end() || it->second.phase < Learner::Phase::kSyncing) return;
  Learner& l = it->second;
  if (z == MakeZxid(ld.new_epoch, 0)) {
    if (l.nl_acked) return;
    l.nl_acked = true;
    l.acked = std::max(l.acked, l.nl_zxid);
    if (ld.ldphase == LdPhase::kBroadcast) {
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

void Core::Impl::SendUpToDate(PeerId p) {
  Leading& ld = leading();
  Learner& l = ld.learners[p];
  if (ld.committed_q > 0) {
    peer::ZabMessage c;
    c.mutable_commit()->set_zxid(ld.committed_q);
    Send(p, std::move(c));
  }
  peer::ZabMessage m;
  m.mutable_up_to_date();
  Send(p, std::move(m));
  l.phase = Learner::Phase::kUpToDate;
  l.heard = now;
}

void Core::Impl::CheckEstablished() {
  Leading& ld = leading();
  if (ld.ldphase != LdPhase::kSync || current_epoch != ld.new_epoch) return;
  if (!QuorumOf(Who([](const Learner& l) { return l.nl_acked; }))) return;
  ld.ldphase = LdPhase::kBroadcast;
  ld.serving = true;
  ld.counter = EpochOf(last_logged) == ld.new_epoch ? CounterOf(last_logged) : 0;
  ld.next_ping_at = now;
  AdvanceCommit();
  if (!IsLeading()) return;  // the commit ended the leadership (CheckExhausted)
  for (auto& [p, l] : leading().learners) {
    l.heard = now;
    if (l.nl_acked) SendUpToDate(p);
  }
}

void Core::Impl::AdvanceCommit() {
  if (!IsLeading()) return;
  Leading& ld = leading();
  if (ld.ldphase != LdPhase::kBroadcast) return;
  // The highest zxid a majority of each configuration in force acknowledged.
  auto point = [&](const Membership& m) -> Zxid {
    std::vector<Zxid>& acks = ack_scratch;  // reused: this runs on every ack
    acks.clear();
    for (PeerId v : m.voters) {
      if (v == cfg.self) {
        acks.push_back(current_epoch == ld.new_epoch ? durable : 0);
        continue;
      }
      auto it = ld.learners.find(v);
      if (it != ld.learners.end() && it->second.nl_acked) acks.push_back(it->second.acked);
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
  if (z <= ld.committed_q) return;
  Zxid old = ld.committed_q;
  ld.committed_q = z;
  for (auto& [p, l] : ld.learners) {
    if (l.phase < Learner::Phase::kSyncing) continue;
    if (l.observer) {
      for (auto it = FirstAfter(std::max(old, l.nl_zxid)); it != mem.end() && it->zxid <= z; ++it) {
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

void Core::Impl::CheckExhausted() {
  if (!IsLeading()) return;
  const Leading& ld = leading();
  if (ld.ldphase == LdPhase::kBroadcast && ld.counter >= cfg.max_counter &&
      ld.committed_q == last_logged) {
    GoLooking();  // a new epoch restarts the counter
  }
}

void Core::Impl::AnswerSync(const PendingSync& s) {
  Leading& ld = leading();
  if (s.from == 0) {
    ready.syncs_done.push_back({s.tag, s.zxid});
  } else if (ld.learners.count(s.from)) {
    peer::ZabMessage m;
    m.mutable_sync_reply()->set_tag(s.tag);
    m.mutable_sync_reply()->set_zxid(s.zxid);
    Send(s.from, std::move(m));
  }
}

void Core::Impl::LeaderSync(uint64_t tag, PeerId from, bool lin) {
  Leading& ld = leading();
  PendingSync s{tag, from, last_logged, 0};
  if (!lin) return AnswerSync(s);
  s.seq = ++ping_seq;
  ld.lin_syncs.push_back(s);
  for (auto& [p, l] : ld.learners) {
    if (!IsVoter(p) || l.observer || !l.nl_acked) continue;
    peer::ZabMessage m;
    m.mutable_ping()->set_committed(ld.committed_q);
    m.mutable_ping()->set_seq(s.seq);
    Send(p, std::move(m));
  }
  CheckLinSyncs();
}

void Core::Impl::CheckLinSyncs() {
  Leading& ld = leading();
  std::vector<PendingSync> keep;
  for (const PendingSync& s : ld.lin_syncs) {
    if (QuorumOf(Who([&](const Learner& l) { return l.pong_seq >= s.seq; }))) {
      AnswerSync(s);
    } else {
      keep.push_back(s);
    }
  }
  ld.lin_syncs.swap(keep);
}

void Core::Impl::OnLeaderMessage(PeerId from, const peer::ZabMessage& m) {
  Leading& ld = leading();
  auto it = ld.learners.find(from);
  if (it != ld.learners.end()) it->second.heard = now;
  switch (m.body_case()) {
    case peer::ZabMessage::kFollowerInfo:
      OnFollowerInfo(from, m.follower_info());
      if (IsLeading()) CheckDiscovery();  // not if the info ended the leadership
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
      if (it != ld.learners.end()) {
        it->second.pong_seq = std::max(it->second.pong_seq, m.ping_reply().seq());
        CheckLinSyncs();
      }
      return;
    case peer::ZabMessage::kSyncRequest:
      if (it != ld.learners.end() && ld.serving)
        LeaderSync(m.sync_request().tag(), from, m.sync_request().linearizable());
      return;
    default:
      return;
  }
}

void Core::Impl::TickLeader() {
  Leading& ld = leading();
  if (ld.stepping_down) {
    // The configuration without this leader as voter committed (docs/reconfig.md). Its
    // learners leave once they learn it; leaving at once would close their links with the
    // COMMIT maybe still queued (the shell drops what is queued on a closed link), and they
    // would fail the writes they forwarded. So it waits for them, at most syncLimit.
    if (!ld.learners.empty() && now - ld.stepdown_since < static_cast<uint64_t>(cfg.sync_ticks))
      return;
    if (IsMember(cfg.self)) {
      GoLooking();
    } else {
      Remove();
    }
    return;
  }
  if (ld.ldphase != LdPhase::kBroadcast) {
    if (now - ld.lead_start > static_cast<uint64_t>(cfg.init_ticks)) GoLooking();
    return;
  }
  // Drop learners that went silent or could not sync in time; they will come back.
  std::vector<PeerId> drop;
  for (auto& [p, l] : ld.learners) {
    bool stuck = l.phase != Learner::Phase::kUpToDate &&
                 now - l.heard > static_cast<uint64_t>(cfg.init_ticks);
    bool silent = l.phase == Learner::Phase::kUpToDate &&
                  now - l.heard > static_cast<uint64_t>(cfg.sync_ticks);
    if (stuck || silent) drop.push_back(p);
  }
  for (PeerId p : drop) {
    Disconnect(p);
    ld.learners.erase(p);
  }
  if (!QuorumOf(Who([&](const Learner& l) {
        return l.nl_acked && now - l.heard <= static_cast<uint64_t>(cfg.sync_ticks);
      })))
    return GoLooking();
  if (now >= ld.next_ping_at) {
    ld.next_ping_at = now + cfg.ping_ticks;
    uint64_t seq = ++ping_seq;
    for (auto& [p, l] : ld.learners) {
      if (l.phase < Learner::Phase::kSyncing) continue;
      peer::ZabMessage m;
      m.mutable_ping()->set_committed(ld.committed_q);
      m.mutable_ping()->set_seq(seq);
      Send(p, std::move(m));
    }
  }
  CheckExhausted();
}

std::optional<ProposeError> Core::Impl::CanPropose() const {
  if (!IsLeading()) return ProposeError::kNotLeader;
  const Leading& ld = leading();
  if (!ld.serving) return ProposeError::kNotServing;
  if (ld.counter >= cfg.max_counter) return ProposeError::kEpochExhausted;
  return std::nullopt;
}

std::optional<ProposeError> Core::Impl::CheckReconfig(const Membership& m) const {
  QFS_CHECK(m.Valid());
  if (auto err = CanPropose()) return err;
  if (conf.previous) return ProposeError::kReconfigInProgress;
  std::vector<PeerId> synced{cfg.self};
  for (auto& [p, l] : leading().learners)
    if (!l.observer && l.phase == Learner::Phase::kUpToDate) synced.push_back(p);
  if (!m.Majority(synced)) return ProposeError::kNewConfigNoQuorum;
  return std::nullopt;
}

std::optional<ProposeError> Core::Impl::Propose(std::string payload, PeerId origin, uint64_t tag,
                                                std::optional<Membership> config) {
  if (auto err = config ? CheckReconfig(*config) : CanPropose()) return err;
  Leading& ld = leading();
  Zxid z = MakeZxid(ld.new_epoch, ++ld.counter);
  Entry e{z, std::move(payload), origin, tag, std::move(config)};
  for (auto& [p, l] : ld.learners) {
    if (l.observer || l.phase < Learner::Phase::kSyncing) continue;
    peer::ZabMessage m;
    FillProposal(e, m.mutable_proposal());
    Send(p, std::move(m));
  }
  Append(std::move(e));
  return std::nullopt;
}

}  // namespace qfs::zab
