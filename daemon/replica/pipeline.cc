#include "daemon/replica/pipeline.h"

#include <fcntl.h>
#include <pthread.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <cstring>
#include <set>

#include "consensus/storage/file_util.h"
#include "consensus/storage/snapshot_file.h"
#include "consensus/util/log.h"
#include "daemon/replica/pipeline_impl.h"
#include "daemon/replica/request_proto.h"

namespace qfs {

using namespace replica;  // NOLINT: the helpers of pipeline_impl.h
using tree::Err;

const char* RoleLabel(zab::Role r) {
  switch (r) {
    case zab::Role::kLooking:
      return "looking";
    case zab::Role::kFollowing:
      return "follower";
    case zab::Role::kLeading:
      return "leader";
    case zab::Role::kObserving:
      return "observer";
  }
  return "?";
}

Status Pipeline::Impl::Init() {
  const Config& c = options.config;
  if (c.ensemble()) {
    tree::ServerList statics;
    for (const auto& sv : c.servers) statics.push_back(SpecOf(sv));
    std::sort(statics.begin(), statics.end(),
              [](const auto& a, const auto& b) { return a.id() < b.id(); });
    Learn(statics);
    store_options.static_config = tree::ConfigText(statics, 0);
    if (Status st = LoadDynamic(); !st.ok()) return st;
  }
  store_options.on_durable = [this](uint64_t z) {
    {
      std::lock_guard<std::mutex> l(mu);
      if (z > durable) durable = z;
    }
    Wake();
  };
  store_options.on_failed = [this](uint64_t first, const Status& why) {
    {
      std::lock_guard<std::mutex> l(mu);
      log_failed = true;
      log_failed_why = Status(why.code(), "from zxid " + Hex(first) + ": " + why.message());
    }
    Wake();
  };
  auto store = Store::Open(store_options);
  if (!store.ok()) return store.status();
  p->store_ = std::move(*store);
  preparer = std::make_unique<tree::Preparer>(p->store_->tree());
  durable = reported_durable = p->store_->log().durable_zxid();
  LearnFromTree();

  zcfg.self = self = c.ensemble() ? c.myid : 1;
  if (c.ensemble()) {
    for (const auto& s : c.servers) (s.observer ? zcfg.observers : zcfg.voters).push_back(s.id);
  } else {
    zcfg.voters = {1};
  }
  int tick = std::max(1, c.tick_time_ms);
  zcfg.init_ticks = std::max(10, c.init_limit * tick / kBaseTickMs);
  zcfg.sync_ticks = std::max(5, c.sync_limit * tick / kBaseTickMs);
  zcfg.ping_ticks = std::max(1, tick / 2 / kBaseTickMs);
  if (options.committed_window) zcfg.committed_window = options.committed_window;
  zcfg.election_finalize_ticks = 5;
  zcfg.vote_resend_ticks = 5;
  member.self = self;
  member.standalone = !c.ensemble();
  core = std::make_unique<zab::Core>(zcfg, Initial(), this);
  member.voters = core->config().current.voters.size();
  member.observers = core->config().current.observers.size();
  if (const Config::Server* me = c.ensemble() ? c.self() : nullptr; me && me->client_port) {
    txn::ServerSpec own = SpecOf(*me);
    committed_client = {own.client_host(), static_cast<int>(own.client_port())};
  }
  if (have_dynamic) SetClientAddress(config_state);

  if (c.ensemble()) {
    const Config::Server* me = c.self();
    transport::Options to;
    to.self_id = self;
    to.listen_host = me->host;
    to.listen_port = me->peer_port;
    // The members of the configuration the core acts under (the static one, or the persisted
    // dynamic one): their addresses from the book.
    std::vector<uint64_t> ids;
    const zab::ConfigState& cs = core->config();
    for (const zab::Membership* m : {&cs.current, cs.previous ? &*cs.previous : nullptr}) {
      if (!m) continue;
      for (const auto* v : {&m->voters, &m->observers}) ids.insert(ids.end(), v->begin(), v->end());
    }
    std::sort(ids.begin(), ids.end());
    ids.erase(std::unique(ids.begin(), ids.end()), ids.end());
    for (uint64_t id : ids) {
      auto a = DialAddress(id);
      if (id != self && a) to.peers.push_back(*a);
      if (id != self) linked.insert(id);
    }
    to.secret = c.quorum_secret;
    // A joining server syncs as a non-voting learner before the reconfig that adds it
    // (docs/reconfig.md, "Joining servers"): the members take it as a guest.
    to.accept_guests = c.reconfig_enabled;
    if (c.ssl_quorum) {
      to.use_tls = true;
      to.tls = c.quorum_tls;
      to.tls_verify_host = c.quorum_hostname_verification;
    }
    to.max_frame_bytes = c.max_data_bytes * 2 + (8 << 20);
    to.io = &io;  // the links are served by this member's loop, not a thread of their own
    auto t = transport::PeerTransport::Start(to, this);
    if (!t.ok()) return t.status();
    net = std::move(*t);
    for (const auto& pa : to.peers) net->Reopen(pa.id);
    QLOG_INFO(
        "member %llu of an ensemble of %zu voters and %zu observers (configuration version %s%s); "
        "peer port %s:%d",
        static_cast<unsigned long long>(self), cs.current.voters.size(),
        cs.current.observers.size(), Hex(cs.current_zxid).c_str(),
        have_dynamic ? (", from " + std::string(kDynamicFile)).c_str() : "", me->host.c_str(),
        me->peer_port);
  }
  return Status::Ok();
}

zab::InitialState Pipeline::Impl::Initial() {
  const Store& s = *p->store_;
  zab::InitialState st;
  st.accepted_epoch = s.accepted_epoch();
  st.current_epoch = s.current_epoch();
  st.last_zxid = static_cast<uint64_t>(s.tree().last_zxid());
  for (const auto& [epoch, last] : s.recovery().epoch_ends) {
    peer::EpochEnd e;
    e.set_epoch(epoch);
    e.set_last_zxid(last);
    st.epochs.push_back(e);
  }
  if (!options.config.ensemble()) return st;
  // The persisted configuration state, then the reconfig entries of the log above it (a crash
  // may have come between an entry's append and the write of the state it made).
  if (have_dynamic) st.config = config_state;
  // Below the snapshot a configuration was persisted when its entry was appended or synced.
  const uint64_t after =
      std::max<uint64_t>(have_dynamic ? config_state.current_zxid : 0, s.recovery().snapshot_zxid);
  std::vector<zab::Entry> entries;
  for (uint64_t from = after;;) {
    entries.clear();
    if (!ReadAfter(from, 1000, &entries) || entries.empty()) break;
    for (auto& e : entries) {
      if (!e.config) continue;
      if (auto servers = ReconfigServers(e.payload)) Learn(*servers);
      st.log_configs.emplace_back(e.zxid, *e.config);
    }
    from = entries.back().zxid;
  }
  return st;
}

void Pipeline::Impl::ReloadStore(const char* why) {
  QLOG_INFO("reloading the tree from disk (%s)", why);
  std::unique_lock<std::shared_mutex> wl(p->tree_mu_);
  p->store_->WaitSnapshot();
  p->store_.reset();
  auto store = Store::Open(store_options);
  if (!store.ok())
    QFS_FATAL("cannot reopen the data directory: %s", store.status().ToString().c_str());
  p->store_ = std::move(*store);
  preparer = std::make_unique<tree::Preparer>(p->store_->tree());
  std::lock_guard<std::mutex> l(mu);
  durable = reported_durable = p->store_->log().durable_zxid();
  stats.last_zxid = p->store_->tree().last_zxid();
}

// ---- the loop ----

// One iteration: the I/O handlers that are ready (a bounded batch: the peer links' reads and
// writes, which queue what they received in the inbox), then everything queued, one Ready pass
// per peer message and one for all client requests, then replies. The loop sleeps in the
// io_context, so a socket event, a post from another thread (Wake) or the next tick wakes it.
void Pipeline::Impl::Run() {
  constexpr int kIoBatch = 64;
  loop_thread = std::this_thread::get_id();
  if (net) net->DeferFlushes();
  auto next_tick = Clock::now() + std::chrono::milliseconds(kBaseTickMs);
  // Each poll pass ends with an epoll_wait that finds nothing (asio learns that way that no
  // handler is ready). Right after a turn's work the loop does not poll again before it
  // waits: the wait's own epoll_wait sees any socket that became ready, and peer writes are
  // flushed here, not by handlers (DeferFlushes). One system call less per wake-up.
  bool poll = true;
  for (;;) {
    if (poll) {
      for (int i = 0; i < kIoBatch && io.poll_one(); i++) {
      }
    }
    if (net) net->FlushDeferred();
    events.clear();
    uint64_t dur;
    bool failed, stop, snap;
    Status why;
    {
      std::unique_lock<std::mutex> l(mu);
      bool work = !inbox.empty() || durable != reported_durable || log_failed || stopping ||
                  snapshot_requested;
      if (!work && Clock::now() < next_tick) {
        asleep = true;
        l.unlock();
        io.run_one_until(next_tick);
        asleep = false;
        poll = true;
        continue;
      }
      if (!poll) {  // more work came in: take what the sockets have too, as any turn does
        poll = true;
        continue;
      }
      events.swap(inbox);
      dur = durable;
      failed = log_failed;
      why = log_failed_why;
      log_failed = false;
      stop = stopping;
      snap = snapshot_requested;
      snapshot_requested = false;
    }
    if (failed && !disk_full) EnterDiskFull(why);
    if (disk_full) {
      if (Clock::now() >= next_space_check) {
        next_space_check = Clock::now() + std::chrono::milliseconds(100);
        if (SpaceAvailable()) LeaveDiskFull();
      }
      for (Event& e : events) {
        if (e.type == Event::kDisconnected && net) net->Reopen(e.peer);
        if (e.type != Event::kRequest) continue;  // peers wait until we rejoin
        uint64_t tag = NewPending(std::move(e.in.done));
        Fail(tag, Err::kSystemError);
      }
      Release();
      if (stop) {
        FailAllPending(Err::kConnectionLoss);
        Release();
        if (net) net->FlushDeferred();  // the last turn's writes
        break;
      }
      if (disk_full) continue;
      events.clear();
    }
    if (dur != reported_durable && !log_broken) {
      reported_durable = dur;
      core->Persisted(dur);
    }
    for (Event& e : events) {
      // Client requests, forwarded writes and the broadcast phase's messages (proposals, acks,
      // commits, pings) are batched into one Ready per iteration: acks and commits are
      // cumulative, so a batch sends one commit and applies in one pass. Any other message
      // (election, discovery, sync, snapshot chunks, a broken link) may change how the next
      // ones are read (a snapshot stream follows SyncStart, a TRUNC must not be reordered with
      // earlier appends): the Ready so far is carried out before it and its own right after.
      const bool batched = Batchable(e);
      if (!batched) ProcessReady();
      HandleEvent(e);
      if (!batched) ProcessReady();
    }
    if (Clock::now() >= next_tick) {
      next_tick += std::chrono::milliseconds(kBaseTickMs);
      if (next_tick < Clock::now())
        next_tick = Clock::now() + std::chrono::milliseconds(kBaseTickMs);
      core->Tick();
      ExpireWaiting(false);
      UnlinkDue();
      CheckReadOnly();
    }
    ProcessReady();
    PollTransfers();
    if (snap) snapshot_wanted = true;
    MaybeSnapshot();
    Release();
    poll = false;
    if (stop) {
      // Let writes already proposed finish (briefly), then answer the rest.
      if (stop_deadline == Clock::time_point())
        stop_deadline = Clock::now() + std::chrono::seconds(2);
      ExpireWaiting(true);
      if (Clock::now() >= stop_deadline || !member.serving) FailAllPending(Err::kConnectionLoss);
      Release();
      // Requests queued before Stop() were taken in this round (Enqueue refuses later ones);
      // peers' messages keep coming and are dropped.
      if (pending.empty()) {
        if (net) net->FlushDeferred();  // the last turn's writes
        break;
      }
    }
  }
}

// The log could not take appended txns (disk full). They were never durable, so this member
// must not acknowledge or apply them: fail the writes in flight, leave the ensemble, refuse
// writes, and start over from what is on disk once there is room again.
void Pipeline::Impl::EnterDiskFull(const Status& why) {
  QLOG_ERROR("the txn log failed (%s): refusing writes until there is room on the disk",
             why.ToString().c_str());
  disk_full = true;
  log_broken = true;
  next_space_check = Clock::now() + std::chrono::milliseconds(100);
  FailAllPending(Err::kSystemError);
  sync_waits.clear();
  while (!waiting.empty()) {
    uint64_t tag = NewPending(std::move(waiting.front().in.done));
    waiting.pop_front();
    Fail(tag, Err::kSystemError);
  }
  if (net) {
    for (const auto& sv : options.config.servers) {
      if (sv.id == self) continue;
      AbortTransfer(sv.id);
      net->Close(sv.id);
    }
  }
  DropReceive();
  zab::RoleChange looking;
  RoleChanged(looking);
  Release();
}

bool Pipeline::Impl::SpaceAvailable() const {
  auto free_bytes = [](const std::string& dir) -> uint64_t {
    struct statvfs v {};
    if (statvfs(dir.c_str(), &v) != 0) return 0;
    return static_cast<uint64_t>(v.f_bavail) * v.f_frsize;
  };
  uint64_t need = store_options.segment_bytes + (1 << 20);
  return free_bytes(store_options.log_dir) >= need &&
         free_bytes(store_options.data_dir) >= (1 << 20);
}

void Pipeline::Impl::LeaveDiskFull() {
  QLOG_INFO("there is room on the disk again: restarting this member's state from disk");
  p->store_->log().Flush();
  ReloadStore("the disk was full");
  log_broken = false;
  disk_full = false;
  core = std::make_unique<zab::Core>(zcfg, Initial(), this);
}

void Pipeline::Impl::MaybeSnapshot() {
  Store& s = *p->store_;
  s.PollSnapshot();
  if (!member.serving || s.snapshot_running()) return;
  if (options.snap_count > 0 && snapshot_after == 0) snapshot_after = NextSnapshotAfter();
  bool due = options.snap_count > 0 && since_snapshot >= snapshot_after;
  if (!due && !snapshot_wanted) return;
  {
    std::lock_guard<std::mutex> l(hold_mu);
    if (!transfers.empty()) return;  // a learner's snapshot is being taken or sent
  }
  if (s.StartSnapshot()) {
    since_snapshot = 0;
    snapshot_after = 0;
    snapshot_wanted = false;
  }
}

void Pipeline::Impl::HandleEvent(Event& e) {
  switch (e.type) {
    case Event::kRequest:
      HandleIncoming(std::move(e.in));
      break;
    case Event::kPeer:
      if (!guests.empty()) {
        if (auto it = guests.find(e.peer); it != guests.end()) it->second = Clock::now();
      }
      HandlePeer(e.peer, e.msg);
      break;
    case Event::kGuest:
      GuestAccepted(e.peer);
      break;
    case Event::kDisconnected:
      QLOG_DEBUG("link to member %llu broke", static_cast<unsigned long long>(e.peer));
      AbortTransfer(e.peer);
      if (recv.active && recv.from == e.peer && !recv.complete) DropReceive();
      core->Disconnected(e.peer);
      if (net) net->Reopen(e.peer);
      break;
  }
}

void Pipeline::Impl::HandlePeer(uint64_t from, peer::PeerMessage& msg) {
  switch (msg.body_case()) {
    case peer::PeerMessage::kZab:
      if (msg.servers_size() > 0) LearnAddresses(msg);
      if (msg.zab().has_sync_start()) {
        static const char* kModes[] = {"DIFF", "TRUNC", "SNAP"};
        const auto& ss = msg.zab().sync_start();
        QLOG_INFO("member %llu syncs us by %s from zxid %s", static_cast<unsigned long long>(from),
                  kModes[std::min<int>(2, std::max<int>(0, ss.mode()))], Hex(ss.zxid()).c_str());
      }
      if (msg.zab().has_history_request()) {
        QLOG_INFO("member %llu, leader-elect, is behind us: it asks for our txns after zxid %s",
                  static_cast<unsigned long long>(from),
                  Hex(msg.zab().history_request().after()).c_str());
      }
      if (msg.zab().has_history_reply()) {
        const auto& h = msg.zab().history_reply();
        QLOG_INFO(
            "member %llu holds a newer history than ours (docs/zab.md, discovery): %s its %d "
            "txns after zxid %s",
            static_cast<unsigned long long>(from), h.ok() ? "taking" : "it cannot send",
            h.entries_size(), Hex(h.after()).c_str());
      }
      core->Step(from, msg.zab());
      break;
    case peer::PeerMessage::kChunk:
      HandleChunk(from, msg.chunk());
      break;
    case peer::PeerMessage::kApp:
      HandleApp(from, msg.app());
      break;
    default:
      QLOG_WARN("member %llu sent an empty message", static_cast<unsigned long long>(from));
  }
}

void Pipeline::Impl::ProcessReady() {
  while (core->HasReady()) {
    zab::Ready r = core->TakeReady();
    if (r.truncate_after) Truncate(*r.truncate_after);
    if (r.install_snapshot) InstallSnapshot(*r.install_snapshot);
    for (auto& e : r.append) {
      if (log_broken) break;
      if (e.config) {
        if (auto servers = ReconfigServers(e.payload)) Learn(*servers);
      }
      Status st = p->store_->log().Append({e.zxid, std::move(e.payload)});
      if (!st.ok()) {
        // Not durable, and nothing after it may be (no gaps): the same path as a failed write.
        log_broken = true;
        std::lock_guard<std::mutex> l(mu);
        log_failed = true;
        log_failed_why = st;
      }
    }
    if (r.accepted_epoch) p->store_->SetAcceptedEpoch(*r.accepted_epoch);
    if (r.current_epoch) p->store_->SetCurrentEpoch(*r.current_epoch);
    if (r.config) {
      PersistConfig(*r.config);
      LinkPeers(*r.config);
    }
    if (!r.apply.empty()) Apply(r.apply);
    for (uint64_t peer : r.send_snapshot) StartTransfer(peer);
    for (uint64_t peer : r.disconnect) {
      AbortTransfer(peer);
      if (recv.active && recv.from == peer && !recv.complete) DropReceive();
      if (net) net->Close(peer);
    }
    for (size_t i = 0; i < r.messages.size();) {
      zab::Outgoing& o = r.messages[i];
      // A leader's PROPOSAL goes to each learner as its own message, one after the other;
      // one zxid in one epoch is one txn, so they are the same bytes: serialized once
      // (docs/ensemble.md, "Copies of a txn").
      std::vector<uint64_t>& to = send_group;
      to.assign(1, o.to);
      while (o.msg.has_proposal() && i + to.size() < r.messages.size()) {
        const zab::Outgoing& n = r.messages[i + to.size()];
        if (!n.msg.has_proposal() || n.msg.proposal().zxid() != o.msg.proposal().zxid() ||
            n.msg.epoch() != o.msg.epoch())
          break;
        to.push_back(n.to);
      }
      i += to.size();
      peer::PeerMessage m;
      if (o.msg.has_vote()) AttachAddresses(o.msg.vote(), &m);
      *m.mutable_zab() = std::move(o.msg);
      if (to.size() == 1) {
        Send(to[0], std::move(m));
      } else {
        SendToMany(to, std::move(m));
      }
    }
    for (const auto& s : r.syncs_done) {
      if (static_cast<uint64_t>(p->store_->tree().last_zxid()) >= s.zxid) {
        Reply rep;
        rep.zxid = p->store_->tree().last_zxid();
        Finish(s.tag, std::move(rep));
      } else {
        sync_waits.emplace(s.zxid, s.tag);
      }
    }
    if (r.role_change) RoleChanged(*r.role_change);
  }
  // Published only on change: this runs on every turn of the loop.
  zab::LearnerCounts lc = core->learner_counts();
  if (lc == published_learners) return;
  published_learners = lc;
  std::lock_guard<std::mutex> l(mu);
  stats.learners = lc;
}

void Pipeline::Impl::Apply(std::vector<zab::Entry>& entries) {
  std::vector<std::pair<int, ApplyListener>> listeners;
  {
    std::lock_guard<std::mutex> l(mu);
    listeners = apply_listeners;
  }
  int64_t last = 0;
  uint64_t mine = 0;
  uint64_t soft_crossings = 0;
  {
    std::unique_lock<std::shared_mutex> wl(p->tree_mu_);
    tree::DataTree& t = p->store_->tree();
    for (auto& e : entries) {
      // The leader applies the txn it prepared; others parse the payload.
      while (!own_txns.empty() && own_txns.front().first < e.zxid) own_txns.pop_front();
      const bool own = !own_txns.empty() && own_txns.front().first == e.zxid;
      txn::Txn parsed;
      if (!own) QFS_CHECK(parsed.ParseFromString(e.payload));
      const txn::Txn& txn = own ? own_txns.front().second : parsed;
      QFS_CHECK(static_cast<uint64_t>(txn.zxid()) == e.zxid);
      QFS_CHECK(txn.zxid() > t.last_zxid());
      tree::ApplyResult r = t.Apply(txn);
      QFS_CHECK(r.err == Err::kOk);
      for (const tree::QuotaCrossing& c : r.quota_crossings) {
        // Once per crossing: the next WARN needs usage back at or under the limit first.
        QLOG_WARN("Quota exceeded: %s [current %s=%lld, softLimit=%lld] (zxid %s)", c.path.c_str(),
                  c.bytes ? "bytes" : "count", static_cast<long long>(c.usage),
                  static_cast<long long>(c.limit), Hex(txn.zxid()).c_str());
        soft_crossings++;
      }
      for (auto& [h, fn] : listeners) fn(txn.zxid(), r.changes);
      if (e.origin == self) {
        Reply rep;
        rep.zxid = txn.zxid();
        rep.results = std::move(r.results);
        Finish(e.origin_tag, std::move(rep));
        mine++;
      }
      last = txn.zxid();
      since_snapshot++;
      if (own) own_txns.pop_front();
    }
  }
  preparer->Applied(last);
  while (!sync_waits.empty() && sync_waits.begin()->first <= static_cast<uint64_t>(last)) {
    Reply rep;
    rep.zxid = last;
    Finish(sync_waits.begin()->second, std::move(rep));
    sync_waits.erase(sync_waits.begin());
  }
  while (!refusals.empty() && refusals.begin()->first <= static_cast<uint64_t>(last)) {
    Refusal f = std::move(refusals.begin()->second);
    refusals.erase(refusals.begin());
    Refuse(f.origin, f.tag, f.err, std::move(f.results), 0);
  }
  std::lock_guard<std::mutex> l(mu);
  stats.txns_applied += entries.size();
  stats.last_zxid = last;
  stats.quota_soft_crossings += soft_crossings;
}

void Pipeline::Impl::Truncate(uint64_t zxid) {
  QLOG_INFO("the leader truncates this member's log after zxid %s", Hex(zxid).c_str());
  Store& s = *p->store_;
  s.log().Flush();
  Status st = s.log().TruncateAfter(zxid);
  if (!st.ok()) QFS_FATAL("truncating the log: %s", st.ToString().c_str());
  {
    // Durability reports from before the truncation must not reach the core.
    std::lock_guard<std::mutex> l(mu);
    durable = reported_durable = s.log().durable_zxid();
  }
  if (static_cast<uint64_t>(s.tree().last_zxid()) > zxid) {
    {
      std::unique_lock<std::shared_mutex> wl(p->tree_mu_);
      s.WaitSnapshot();
    }
    st = RemoveSnapshotsAfter(store_options.data_dir, zxid);
    if (!st.ok()) QFS_FATAL("truncating: %s", st.ToString().c_str());
    ReloadStore("truncated");
  }
}

void Pipeline::Impl::RoleChanged(const zab::RoleChange& rc) {
  MemberStatus before, now;
  {
    std::lock_guard<std::mutex> l(mu);
    before = member;
    member.role = rc.role;
    forwarding.store(rc.role != zab::Role::kLeading, std::memory_order_relaxed);
    member.leader = rc.leader;
    member.epoch = rc.epoch;
    member.serving = rc.serving;
    if (rc.role == zab::Role::kLooking && before.role != zab::Role::kLooking) {
      stats.elections++;
      looking_since = Clock::now();
    }
    // Read-only mode ends when a leader is found, before the sync (as ZooKeeper's
    // ReadOnlyZooKeeperServer, shut down when the election ends): the tree may move on then.
    if (rc.role != zab::Role::kLooking) member.read_only = false;
    now = member;
  }
  if (rc.removed && !removed)
    QLOG_WARN(
        "this member is not in the committed configuration (version %s): it takes no further "
        "part until a later configuration adds it back, or it is restarted (docs/reconfig.md)",
        Hex(core->config().current_zxid).c_str());
  if (!rc.removed && removed)
    QLOG_INFO("the committed configuration version %s names this member again: it takes part",
              Hex(core->config().current_zxid).c_str());
  removed = rc.removed;
  if (before.role == now.role && before.leader == now.leader && before.epoch == now.epoch &&
      before.serving == now.serving)
    return;
  if (before.read_only && !now.read_only)
    QLOG_INFO("leaving read-only mode: found leader %llu",
              static_cast<unsigned long long>(now.leader));
  if (now.serving) {
    QLOG_INFO("serving as %s (leader %llu, epoch %llu) at zxid %s", RoleLabel(now.role),
              static_cast<unsigned long long>(now.leader),
              static_cast<unsigned long long>(now.epoch),
              Hex(p->store_->tree().last_zxid()).c_str());
  } else {
    QLOG_INFO(
        "not serving: %s%s", RoleLabel(now.role),
        now.leader ? (" (syncing with leader " + std::to_string(now.leader) + ")").c_str() : "");
  }
  if (!now.serving || before.leader != now.leader || before.epoch != now.epoch) {
    // Writes in flight went to a leader this member no longer follows: their outcome is unknown.
    FailAllPending(Err::kConnectionLoss);
    sync_waits.clear();
    // Their requests failed above (here, or on the learner that forwarded them when it left
    // this leader); a late refusal would contradict that.
    refusals.clear();
  }
  if (now.serving && now.role == zab::Role::kLeading) {
    // The tree holds the whole history now: prepare new txns on top of it.
    preparer->Reset();
  }
  if (now.role != zab::Role::kLeading || before.epoch != now.epoch) own_txns.clear();
  // Replies finished before the change go out before listeners close connections (a removed
  // leader answers the reconfig that removed it).
  Release();
  NotifyRole(now);
  if (now.serving) {
    std::deque<Waiting> w;
    w.swap(waiting);
    for (auto& x : w) HandleIncoming(std::move(x.in));
  }
}

void Pipeline::Impl::NotifyRole(const MemberStatus& now) {
  std::vector<std::pair<int, RoleListener>> ls;
  {
    std::lock_guard<std::mutex> l(mu);
    ls = role_listeners;
  }
  for (auto& [h, fn] : ls) fn(now);
}

void Pipeline::Impl::Release() {
  std::vector<std::pair<ReplyFn, Reply>> out;
  while (!pending.empty() && pending.front().finished) {
    out.emplace_back(std::move(pending.front().done), std::move(pending.front().reply));
    pending.pop_front();
    first_tag++;
  }
  if (out.empty()) return;
  uint64_t ok = 0, bad = 0;
  for (auto& [done, reply] : out) (reply.err == Err::kOk ? ok : bad)++;
  {
    // Room first: a reply handler on the loop may submit the connection's next write at once.
    std::lock_guard<std::mutex> l(mu);
    outstanding -= out.size();
    stats.applied += ok;
    stats.failed += bad;
    space_cv.notify_all();
  }
  for (auto& [done, reply] : out)
    if (done) done(std::move(reply));
}

// ---- Pipeline ----

std::unique_ptr<Pipeline> Pipeline::Start(StoreOptions so, Options options, Status* error) {
  std::unique_ptr<Pipeline> p(new Pipeline());
  p->impl_ = std::make_unique<Impl>(p.get());
  Impl& m = *p->impl_;
  m.store_options = so;
  m.options = options;
  // Origin tags must not repeat across restarts (a txn proposed for an earlier run may still
  // commit): start above anything an earlier run could have used.
  m.first_tag = static_cast<uint64_t>(WallMs()) << 20;
  Status st = m.Init();
  if (!st.ok()) {
    *error = st;
    if (m.net) m.net->Stop();
    return nullptr;
  }
  m.stats.last_zxid = p->store_->tree().last_zxid();
  m.io_work = std::make_unique<asio::executor_work_guard<asio::io_context::executor_type>>(
      m.io.get_executor());
  m.thread = std::thread([&m] {
    pthread_setname_np(pthread_self(), "qfs-pipeline");
    m.Run();
  });
  *error = Status::Ok();
  return p;
}

Pipeline::~Pipeline() {
  Stop();
}

int Pipeline::AddApplyListener(ApplyListener l) {
  std::lock_guard<std::mutex> lock(impl_->mu);
  int h = impl_->next_handle++;
  impl_->apply_listeners.emplace_back(h, std::move(l));
  return h;
}

void Pipeline::RemoveApplyListener(int handle) {
  std::lock_guard<std::mutex> lock(impl_->mu);
  std::erase_if(impl_->apply_listeners, [handle](const auto& x) { return x.first == handle; });
}

int Pipeline::AddRoleListener(RoleListener l) {
  std::lock_guard<std::mutex> lock(impl_->mu);
  int h = impl_->next_handle++;
  impl_->role_listeners.emplace_back(h, std::move(l));
  return h;
}

void Pipeline::RemoveRoleListener(int handle) {
  std::lock_guard<std::mutex> lock(impl_->mu);
  std::erase_if(impl_->role_listeners, [handle](const auto& x) { return x.first == handle; });
}

void Pipeline::SetSessionTouchHandler(std::function<void(const SessionTouches&)> h) {
  std::lock_guard<std::mutex> lock(impl_->mu);
  impl_->touch_handler = std::move(h);
}

void Pipeline::ForwardSessionTouches(SessionTouches touches) {
  Impl& m = *impl_;
  if (!m.net || touches.empty()) return;
  MemberStatus s = member();
  if (!s.serving || s.role == zab::Role::kLeading || s.leader == 0) return;
  member::AppMessage a;
  auto* t = a.mutable_touch();
  for (auto& [id, to] : touches) {
    t->add_session_ids(id);
    t->add_timeouts_ms(to);
  }
  peer::PeerMessage pm;
  QFS_CHECK(a.SerializeToString(pm.mutable_app()));
  m.Send(s.leader, std::move(pm));
}

void Pipeline::Submit(tree::Request req, ReplyFn done) {
  Enqueue(std::move(req), std::move(done), true, 0);
}

bool Pipeline::TrySubmit(tree::Request req, ReplyFn done) {
  return Enqueue(std::move(req), std::move(done), false, 0);
}

void Pipeline::Sync(ReplyFn done, bool linearizable) {
  Enqueue(tree::Request(), std::move(done), true, linearizable ? 2 : 1);
}

bool Pipeline::TrySubmitPacket(tree::Request&& req, std::string&& packet, ReplyFn done) {
  return Enqueue(std::move(req), std::move(done), false, 0, std::move(packet));
}

void Pipeline::SetClientDecoder(ClientDecoder d) {
  std::lock_guard<std::mutex> l(impl_->mu);
  impl_->client_decoder = std::move(d);
}

bool Pipeline::forwarding() const {
  return impl_->forwarding.load(std::memory_order_relaxed);
}

bool Pipeline::Enqueue(tree::Request&& req, ReplyFn&& done, bool block, int sync,
                       std::string&& packet) {
  Impl& m = *impl_;
  std::unique_lock<std::mutex> l(m.mu);
  // The loop itself never waits for room (it is what makes room): a blocking submit from a
  // handler on the loop goes over the limit instead.
  if (block && m.OnLoop()) {
  } else if (block) {
    m.space_cv.wait(l, [&] { return m.outstanding < m.options.max_outstanding || m.stopping; });
  } else if (m.outstanding >= m.options.max_outstanding && !m.stopping) {
    return false;
  }
  if (m.stopping) {
    l.unlock();
    Reply r;
    r.err = Err::kConnectionLoss;
    done(std::move(r));
    return true;
  }
  m.outstanding++;
  m.stats.submitted++;
  Impl::Event e;
  e.in = {std::move(req), std::move(done), sync, std::move(packet)};
  m.inbox.push_back(std::move(e));
  l.unlock();
  m.Wake();
  return true;
}

void Pipeline::RequestSnapshot() {
  {
    std::lock_guard<std::mutex> l(impl_->mu);
    impl_->snapshot_requested = true;
  }
  impl_->Wake();
}

void Pipeline::Stop() {
  if (!impl_) return;
  Impl& m = *impl_;
  {
    std::lock_guard<std::mutex> l(m.mu);
    if (m.stopped) return;
    m.stopping = true;
    m.space_cv.notify_all();
  }
  m.Wake();
  if (m.thread.joinable()) m.thread.join();
  {
    std::lock_guard<std::mutex> l(m.hold_mu);
    for (auto& [peer, t] : m.transfers) t->abort = true;
  }
  for (auto& t : m.streamers)
    if (t.joinable()) t.join();
  if (m.net) m.net->Stop();
  if (store_) {
    store_->log().Close();
    store_->WaitSnapshot();
  }
  std::lock_guard<std::mutex> l(m.mu);
  m.stopped = true;
}

bool Pipeline::on_loop() const {
  return impl_->OnLoop();
}

asio::io_context& Pipeline::loop() {
  return impl_->io;
}

Pipeline::Stats Pipeline::stats() const {
  std::lock_guard<std::mutex> l(impl_->mu);
  Stats s = impl_->stats;
  s.outstanding = impl_->outstanding;
  return s;
}

MemberStatus Pipeline::member() const {
  std::lock_guard<std::mutex> l(impl_->mu);
  return impl_->member;
}

}  // namespace qfs
