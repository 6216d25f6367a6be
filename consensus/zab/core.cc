// The ZAB core. See core.h for the contract; this file holds the state machine's API, its
// input dispatch and the helpers every role uses (log, configuration, output). The state and
// the per-role files are described in core_impl.h.
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
#include <type_traits>
#include <utility>

#include "consensus/util/result.h"
#include "consensus/zab/core_impl.h"

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

}  // namespace

// --- message conversions ---
void Core::Impl::ToProto(const Membership& m, peer::Membership* out) {
  for (PeerId p : m.voters) out->add_voters(p);
  for (PeerId p : m.observers) out->add_observers(p);
}
Membership Core::Impl::FromProto(const peer::Membership& m) {
  Membership r;
  r.voters.assign(m.voters().begin(), m.voters().end());
  r.observers.assign(m.observers().begin(), m.observers().end());
  return r;
}
void Core::Impl::ToProto(const ConfigState& c, peer::ConfigState* out) {
  ToProto(c.current, out->mutable_current());
  out->set_current_zxid(c.current_zxid);
  if (c.previous) {
    ToProto(*c.previous, out->mutable_previous());
    out->set_previous_zxid(c.previous_zxid);
  }
}
std::optional<ConfigState> Core::Impl::FromProto(const peer::ConfigState& c) {
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
void Core::Impl::FillProposal(const Entry& e, peer::Proposal* pr) {
  pr->set_zxid(e.zxid);
  pr->set_payload(e.payload);
  pr->set_origin(e.origin);
  pr->set_origin_tag(e.origin_tag);
  if (e.config) ToProto(*e.config, pr->mutable_config());
}
Entry Core::Impl::EntryOf(const peer::Proposal& p) {
  Entry e{p.zxid(), p.payload(), p.origin(), p.origin_tag(), std::nullopt};
  if (p.has_config()) e.config = FromProto(p.config());
  return e;
}

Core::Impl::Impl(Config c, InitialState st, LogReader* r) : cfg(std::move(c)), reader(r) {
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

// --- role ---
Core::Impl::Looking::Looking() = default;
Core::Impl::Learning::Learning() = default;
Core::Impl::Leading::Leading() = default;

Role Core::Impl::role() const {
  if (const auto* l = std::get_if<Learning>(&state))
    return l->observing ? Role::kObserving : Role::kFollowing;
  return IsLeading() ? Role::kLeading : Role::kLooking;
}
PeerId Core::Impl::leader() const {
  if (const auto* l = std::get_if<Learning>(&state)) return l->leader;
  return IsLeading() ? cfg.self : 0;
}
// A learner serves from UPTODATE to the end of its session; a leader from its quorum's
// NEWLEADER acks until it steps down.
bool Core::Impl::serving() const {
  if (const auto* l = std::get_if<Learning>(&state)) return l->lphase == LPhase::kServing;
  if (const auto* l = std::get_if<Leading>(&state)) return l->serving;
  return false;
}
// The current role's state; another role's is a failed check, never a default value.
namespace {
template <typename T, typename V>
T& RoleState(V& state) {
  auto* s = std::get_if<std::remove_const_t<T>>(&state);
  QFS_CHECK(s != nullptr);
  return *s;
}
}  // namespace
Core::Impl::Looking& Core::Impl::looking() {
  return RoleState<Looking>(state);
}
Core::Impl::Learning& Core::Impl::learning() {
  return RoleState<Learning>(state);
}
const Core::Impl::Learning& Core::Impl::learning() const {
  return RoleState<const Learning>(state);
}
Core::Impl::Leading& Core::Impl::leading() {
  return RoleState<Leading>(state);
}
const Core::Impl::Leading& Core::Impl::leading() const {
  return RoleState<const Leading>(state);
}

// --- configuration ---
void Core::Impl::RebuildSets() {
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
bool Core::Impl::QuorumOf(const std::vector<PeerId>& who) const {
  return conf.current.Majority(who) && (!conf.previous || conf.previous->Majority(who));
}
// To follow someone a majority of either configuration will do: following is safe whatever
// the election said (the leader's discovery counts joint quorums and checks histories), and
// members whose views differ (one holds a pending entry, one does not) must still converge.
bool Core::Impl::AnyQuorumOf(const std::vector<PeerId>& who) const {
  return conf.current.Majority(who) || (conf.previous && conf.previous->Majority(who));
}
// A reconfig entry at z was appended. An entry pending before it is committed (a leader
// proposes a reconfig only once the previous one committed), so it becomes `previous`.
void Core::Impl::ConfigAppend(Zxid z, const Membership& m) {
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
void Core::Impl::TakeCommittedConfig(Membership m, Zxid z) {
  conf.current = std::move(m);
  conf.current_zxid = z;
  conf.previous.reset();
  conf.previous_zxid = 0;
  RebuildSets();
}
// The log now ends at z. Only a pending entry can be cut: a configuration known committed
// stays even when its entry is not in the log (a crash lost the entry, or a vote told us).
void Core::Impl::ConfigTruncate(Zxid z) {
  if (conf.current_zxid <= z || !conf.previous) return;
  conf.current = *conf.previous;
  conf.current_zxid = conf.previous_zxid;
  conf.previous.reset();
  conf.previous_zxid = 0;
  RebuildSets();
}
// The configuration state as of the zxid z of this member's history (z <= last_logged).
ConfigState Core::Impl::ConfigAt(Zxid z) const {
  // A committed configuration whose entry is above z (learned from a vote before the entry
  // was applied here) is the one to use: that entry is committed.
  if (conf.current_zxid <= z || !conf.previous) return conf;
  ConfigState c;
  c.current = *conf.previous;
  c.current_zxid = conf.previous_zxid;
  return c;
}
void Core::Impl::AdoptConfig(const ConfigState& c) {
  conf = c;
  RebuildSets();
}
// Everything up to the pending entry is committed: its configuration alone counts now.
void Core::Impl::ConfigCommitted() {
  bool was_member = IsMember(cfg.self);
  conf.previous.reset();
  conf.previous_zxid = 0;
  RebuildSets();
  if (!IsMember(cfg.self)) {
    if (!was_member) return;  // a joining server that was not added: it keeps learning
    if (IsLeading()) {
      Leading& ld = leading();
      ld.serving = false;
      ld.stepping_down = true;  // this Ready's COMMITs go out first
      ld.stepdown_since = now;
    } else {
      Remove();
    }
    return;
  }
  if (IsLeading()) {
    if (!SelfVoter()) {
      Leading& ld = leading();
      ld.serving = false;
      ld.stepping_down = true;
      ld.stepdown_since = now;
    }
  } else if (IsLearning()) {
    // A leader that is no voter now steps down; a learner whose role changed reconnects
    // with the right kind of link.
    if (!IsVoter(leader()) || (role() == Role::kFollowing) != WantParticipant()) GoLooking();
  }
}

// --- output helpers ---
void Core::Impl::Send(PeerId to, peer::ZabMessage m) {
  QFS_CHECK(to != 0 && to != cfg.self);
  // Only votes go out while looking: every other message belongs to a session.
  if (!m.has_vote()) m.set_epoch(IsLeading() ? leading().new_epoch : learning().leader_epoch);
  ready.messages.push_back({to, std::move(m)});
}
void Core::Impl::Disconnect(PeerId p) {
  std::erase_if(ready.messages, [p](const Outgoing& o) { return o.to == p; });
  std::erase(ready.send_snapshot, p);
  ready.disconnect.push_back(p);
}
void Core::Impl::EmitApply(const Entry& e) {
  QFS_CHECK(e.zxid > tree_zxid);
  tree_zxid = e.zxid;
  if (!ready.send_snapshot.empty() || !deferred_apply.empty()) {
    deferred_apply.push_back(e);  // the snapshot asked for in this Ready must not see it
  } else {
    ready.apply.push_back(e);
  }
}

// --- log helpers ---
void Core::Impl::NoteEpoch(Zxid z) {
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

void Core::Impl::Append(Entry e) {
  QFS_CHECK(e.zxid > last_logged);
  last_logged = e.zxid;
  NoteEpoch(e.zxid);
  if (e.config) ConfigAppend(e.zxid, *e.config);
  ready.append.push_back(e);
  mem.push_back(std::move(e));
}

void Core::Impl::Truncate(Zxid z) {
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

void Core::Impl::Trim() {
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
std::deque<Entry>::const_iterator Core::Impl::FirstAfter(Zxid z) const {
  return std::upper_bound(mem.begin(), mem.end(), z,
                          [](Zxid v, const Entry& e) { return v < e.zxid; });
}

// Hands out for apply every entry in (last_committed, z].
void Core::Impl::CommitTo(Zxid z) {
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
bool Core::Impl::EntriesAfter(Zxid after, std::vector<Entry>* out) {
  out->clear();
  if (after >= mem_base) {
    for (const Entry& e : mem)
      if (e.zxid > after) out->push_back(e);
  } else {
    if (!reader || !reader->ReadAfter(after, cfg.max_diff_txns + 1, out)) return false;
    // A truncation of this Ready is not carried out yet: the shell's log still holds the
    // entries it cuts (a leader that took a learner's history and DIFFs another learner in
    // the same Ready sent them; seed 3625411).
    if (ready.truncate_after)
      std::erase_if(*out, [&](const Entry& e) { return e.zxid > *ready.truncate_after; });
    Zxid last = out->empty() ? after : out->back().zxid;
    if (last < mem_base) return false;  // the log does not reach what is in memory
    for (const Entry& e : mem)
      if (e.zxid > last) out->push_back(e);
  }
  return out->size() <= cfg.max_diff_txns;
}

// --- inputs ---
void Core::Impl::Tick() {
  now++;
  if (removed) return TickRemoved();
  if (IsLooking()) {
    TickLooking();
  } else if (IsLearning()) {
    TickLearner();
  } else {
    TickLeader();
  }
}

void Core::Impl::Step(PeerId from, const peer::ZabMessage& m) {
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
  if (IsLooking()) {
    if (m.has_follower_info()) OnFollowerInfo(from, m.follower_info());
  } else if (IsLeading()) {
    OnLeaderMessage(from, m);
  } else {
    if (from == learning().leader) return OnLearnerMessage(m);
    if (m.has_follower_info()) Disconnect(from);
  }
}

void Core::Impl::Disconnected(PeerId p) {
  if (removed) return;
  if (IsLooking()) {
    looking().pending_infos.erase(p);
  } else if (IsLearning() && p == learning().leader) {
    GoLooking(false);
  } else if (IsLeading()) {
    Leading& ld = leading();
    ld.learners.erase(p);
    std::erase_if(ld.lin_syncs, [p](const PendingSync& s) { return s.from == p; });
  }
}

// A snapshot for a learner is being written or streamed: the link is busy, not silent.
// initLimit bounds silence during a sync, not a transfer's total time (as in ZooKeeper,
// whose learner's read timeout is initLimit per read).
void Core::Impl::Progress(PeerId p) {
  if (IsLearning()) {
    Learning& ln = learning();
    if (p == ln.leader && ln.lphase != LPhase::kServing) ln.last_heard = ln.follow_start = now;
  } else if (IsLeading()) {
    Leading& ld = leading();
    auto it = ld.learners.find(p);
    if (it == ld.learners.end() || it->second.phase == Learner::Phase::kUpToDate) return;
    it->second.heard = now;
    if (ld.ldphase != LdPhase::kBroadcast) ld.lead_start = now;
  }
}

void Core::Impl::Persisted(Zxid z) {
  z = std::min(z, last_logged);
  if (z <= durable) return;
  durable = z;
  Trim();
  if (IsLeading()) {
    MaybePersistLeaderEpoch();
    AdvanceCommit();  // checks the role again: the epoch may have ended the leadership
  } else if (IsLearning()) {
    MaybeAckNewLeader();
  }
}

void Core::Impl::SnapshotInstalled(Zxid z) {
  QFS_CHECK(z == snapshot_wait);
  mem.clear();
  mem_base = last_logged = durable = last_committed = tree_zxid = z;
  epochs.clear();
  if (z != 0) NoteEpoch(z);
  if (snap_conf) AdoptConfig(*snap_conf);  // the configuration that goes with the snapshot
  snap_conf.reset();
  // The session that asked for it may be over (the shell reports the install all the same).
  if (!IsLearning() || learning().lphase != LPhase::kAwaitSnapshot) return;
  learning().lphase = LPhase::kSyncing;
  std::vector<peer::ZabMessage> msgs;
  msgs.swap(learning().buffered);
  for (const auto& m : msgs) {
    // A message may end the session: the rest were the old leader's. (Any role: a committed
    // configuration whose only voter is this member could make it lead at once.)
    if (!IsLearning()) break;
    OnLearnerMessage(m);
  }
}

void Core::Impl::Sync(uint64_t tag, bool lin) {
  if (removed) return;
  if (IsLeading()) {
    if (leading().serving) LeaderSync(tag, 0, lin);
  } else if (IsLearning() && learning().lphase == LPhase::kServing) {
    peer::ZabMessage m;
    m.mutable_sync_request()->set_tag(tag);
    m.mutable_sync_request()->set_linearizable(lin);
    Send(learning().leader, std::move(m));
  }
}

RoleChange Core::Impl::Current() const {
  RoleChange rc;
  rc.role = role();
  rc.leader = leader();
  rc.epoch = current_epoch;
  rc.serving = serving();
  rc.removed = removed;
  return rc;
}

bool Core::Impl::RoleChanged() const {
  RoleChange c = Current();
  return !reported_once || c.role != reported.role || c.leader != reported.leader ||
         c.epoch != reported.epoch || c.serving != reported.serving ||
         c.removed != reported.removed;
}

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
  const Impl::Leading& ld = impl_->leading();
  return MakeZxid(ld.new_epoch, ld.counter + 1);
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
  return impl_->role();
}
PeerId Core::leader() const {
  return impl_->leader();
}
uint64_t Core::current_epoch() const {
  return impl_->current_epoch;
}
uint64_t Core::accepted_epoch() const {
  return impl_->accepted_epoch;
}
bool Core::serving() const {
  return impl_->serving();
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
  if (!impl_->IsLeading()) return c;
  const Impl::Leading& ld = impl_->leading();
  c.learners = ld.learners.size();
  for (const auto& [p, l] : ld.learners) {
    if (l.phase != Impl::Learner::Phase::kUpToDate) continue;
    if (impl_->IsVoter(p)) {
      c.synced_followers++;
    } else {
      c.synced_observers++;
    }
  }
  c.pending_syncs = ld.lin_syncs.size();
  return c;
}

}  // namespace qfs::zab
