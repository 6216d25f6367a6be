// The ZAB core's learner (see core.h for the contract, core_impl.h for the state): a follower's
// or observer's session with its leader, from FOLLOWERINFO through discovery and sync
// (DIFF, TRUNC or SNAP, NEWLEADER, UPTODATE) to broadcast.
#include <map>
#include <utility>
#include <vector>

#include "consensus/util/result.h"
#include "consensus/zab/core_impl.h"

namespace qfs::zab {

void Core::Impl::Follow(PeerId l) {
  std::map<PeerId, peer::FollowerInfo> infos;
  infos.swap(looking().pending_infos);
  Learning ln;
  ln.leader = l;
  ln.observing = !WantParticipant();
  ln.lphase = LPhase::kDiscovery;
  ln.follow_start = ln.last_heard = now;
  ln.leader_epoch = 0;
  state = std::move(ln);
  // Whoever took us for its leader must look again.
  for (auto& [p, fi] : infos) Disconnect(p);
  peer::ZabMessage m;
  auto* fi = m.mutable_follower_info();
  fi->set_accepted_epoch(accepted_epoch);
  fi->set_last_zxid(last_logged);
  fi->set_observer(!WantParticipant());
  for (const auto& e : epochs) *fi->add_epochs() = e;
  if (reader) fi->set_truncate_floor(reader->TruncateFloor());
  Send(l, std::move(m));
}

void Core::Impl::MaybeAckNewLeader() {
  Learning& ln = learning();
  if (ln.lphase == LPhase::kNewLeader && durable >= ln.nl_point) {
    // Order: synced txns durable (checked), then currentEpoch, then the ACK.
    if (current_epoch != ln.leader_epoch) {
      current_epoch = ln.leader_epoch;
      ready.current_epoch = ln.leader_epoch;
    }
    peer::ZabMessage m;
    m.mutable_ack()->set_zxid(MakeZxid(ln.leader_epoch, 0));
    Send(ln.leader, std::move(m));
    ln.lphase = LPhase::kAckedNewLeader;
    ln.ack_sent = ln.nl_point;
  }
  if ((ln.lphase == LPhase::kAckedNewLeader || ln.lphase == LPhase::kServing) &&
      role() == Role::kFollowing && durable > ln.ack_sent) {
    peer::ZabMessage m;
    m.mutable_ack()->set_zxid(durable);
    Send(ln.leader, std::move(m));
    ln.ack_sent = durable;
  }
}

void Core::Impl::OnLearnerMessage(const peer::ZabMessage& m) {
  Learning& ln = learning();
  ln.last_heard = now;
  if (ln.lphase == LPhase::kAwaitSnapshot) {
    ln.buffered.push_back(m);
    return;
  }
  bool synced = ln.lphase == LPhase::kSyncing || ln.lphase == LPhase::kNewLeader ||
                ln.lphase == LPhase::kAckedNewLeader || ln.lphase == LPhase::kServing;
  switch (m.body_case()) {
    case peer::ZabMessage::kNewEpoch: {
      uint64_t e = m.new_epoch().epoch();
      if (ln.lphase != LPhase::kDiscovery || e < accepted_epoch) {
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
      ln.leader_epoch = e;
      peer::ZabMessage r;
      r.mutable_ack_epoch()->set_current_epoch(current_epoch);
      r.mutable_ack_epoch()->set_last_zxid(last_logged);
      r.mutable_ack_epoch()->set_already_accepted(again);
      Send(ln.leader, std::move(r));
      ln.lphase = LPhase::kAwaitSync;
      return;
    }
    case peer::ZabMessage::kHistoryRequest:
      if (ln.lphase != LPhase::kAwaitSync) return GoLooking();
      return SendHistory(m.history_request().after());
    case peer::ZabMessage::kSyncStart: {
      if (ln.lphase != LPhase::kAwaitSync) return GoLooking();
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
          ln.lphase = LPhase::kAwaitSnapshot;
          return;
        default:
          return GoLooking();
      }
      ln.lphase = LPhase::kSyncing;
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
      if (ln.lphase != LPhase::kSyncing || m.new_leader().epoch() != ln.leader_epoch)
        return GoLooking();
      ln.nl_point = last_logged;
      // Our log is now the leader's: so is its configuration state.
      if (auto c = FromProto(m.new_leader().config())) AdoptConfig(*c);
      ln.lphase = LPhase::kNewLeader;
      MaybeAckNewLeader();
      return;
    case peer::ZabMessage::kUpToDate:
      if (ln.lphase != LPhase::kAckedNewLeader) return GoLooking();
      // The sync brought a configuration that changed our role: reconnect on the right link
      // (a voter on an observer link acknowledges nothing).
      if ((role() == Role::kFollowing) != WantParticipant()) return GoLooking();
      ln.lphase = LPhase::kServing;  // serving()
      return;
    case peer::ZabMessage::kPing: {
      peer::ZabMessage r;
      r.mutable_ping_reply()->set_seq(m.ping().seq());
      Send(ln.leader, std::move(r));
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
void Core::Impl::SendHistory(Zxid after) {
  const Learning& ln = learning();
  static constexpr size_t kMaxEntries = 10000;
  static constexpr size_t kMaxBytes = 32u << 20;  // half the transport's frame limit
  peer::ZabMessage m;
  auto* r = m.mutable_history_reply();
  r->set_after(after);
  r->set_current_epoch(current_epoch);
  r->set_last_zxid(last_logged);
  std::vector<Entry> entries;
  bool ok = after <= last_logged && EntriesAfter(after, &entries) && entries.size() <= kMaxEntries;
  size_t bytes = 0;
  for (const Entry& e : entries) bytes += e.payload.size();
  if (ok && bytes <= kMaxBytes) {
    r->set_ok(true);
    for (const Entry& e : entries) FillProposal(e, r->add_entries());
  }
  Send(ln.leader, std::move(m));
}

void Core::Impl::TickLearner() {
  const Learning& ln = learning();
  uint64_t silence = now - ln.last_heard;
  if (ln.lphase != LPhase::kServing) {
    if (now - ln.follow_start > static_cast<uint64_t>(cfg.init_ticks) ||
        silence > static_cast<uint64_t>(cfg.init_ticks))
      GoLooking();
  } else if (silence > static_cast<uint64_t>(cfg.sync_ticks)) {
    GoLooking();
  }
}

}  // namespace qfs::zab
