// qfs_sim: a seeded deterministic simulator that runs real ZAB cores (consensus/zab) against a
// simulated network, simulated disks and real znode trees, and checks ZAB's guarantees after
// every event.
//
// Determinism: one thread, simulated time, one std::mt19937_64 seeded from the seed (only its
// raw output is used, never std:: distributions, whose results differ between libraries), and
// ordered containers only. The same seed and flags replay the same run event for event.
//
// Time: units of 1; a tick is 100 units. Each member's core gets Tick() every 100 units at a
// member-specific phase.
//
// Network model. Between each pair of members there is a bidirectional link with a generation
// number. A message is a packet with a per-direction sequence number; the simulated transport
// behaves like TCP with sequence numbers:
//  - packets of one direction are delivered in order after a random delay (so messages on
//    different links interleave arbitrarily);
//  - injected packet faults: a dropped packet, a packet delayed past its successors
//    (reordered) or a duplicated packet. The receiver discards duplicates (seq below the
//    expected one) and resets the link when it sees a gap (a drop or a reorder); a drop is also
//    noticed by the sender after a retransmission timeout, which resets the link;
//  - partitions cut sets of links for a while: packets across a cut are lost (same detection);
//  - links also break at random, and every link of a crashed member breaks.
// A reset bumps the generation: packets of older generations still in flight are discarded,
// and each end's core gets Disconnected(peer) before any packet of the new generation reaches
// it (the real transport reports every lost FIFO). A core that asks for a disconnect
// (Ready.disconnect) resets the link without being told about it.
//
// Disk model, per member: the txn log (appends become durable only when a simulated fsync,
// which takes a random time, completes; the core hears Persisted then); on a crash the
// unsynced tail is lost except a random prefix of it that the OS happened to write; epoch
// files and snapshots are written synchronously. Snapshots are taken at random; in "forgetful"
// runs the log is purged below the oldest kept snapshot, so the leader's LogReader fails and
// SNAP is used. A restart rebuilds the member exactly as the daemon does: newest snapshot plus
// log replay, InitialState from that.
//
// Pauses: a member may stall (a GC pause, a swapped-out process) for a while: whatever reaches
// it waits, in order, and its timer does not catch up (one tick fires when it resumes), so its
// core has not seen the time pass; a deposed leader can then be asked a sync. Crashes may hit
// one member or several at the same instant (a power failure), each back after its own delay.
//
// Shell: each member applies Ready.apply to a real tree::DataTree; the serving leader turns
// client requests (sessions, creates incl. sequential and ephemeral, setData, deletes, multis)
// into txns with a real tree::Preparer, like daemon/replica/forwarding.cc. Requests arrive at
// any member; learners forward them to their leader (a direct hop with a delay). A client's
// write is acknowledged when its member applies it.
//
// Membership changes (docs/reconfig.md): some seeds start spare members outside the
// configuration (joining servers: some with the ensemble's configuration, some with one that
// lists themselves as voters, as ZooKeeper's joiners do), and the serving leader proposes
// reconfigs at random: add a spare or a removed member, remove a voter (the leader too),
// promote an observer, demote a voter, or a random bulk configuration. A member removed by a
// committed configuration stops; it is restarted now and then (it comes back as a joiner), and
// at healing. The shell persists Ready.config synchronously and restarts from it and the log.
//
// Checks, after every event: at most one member completes discovery for an epoch (persists it
// as a leader), at most one serving leader per epoch; every applied sequence is a prefix of
// one history (the global history grows by the first member that applies a zxid; later
// appliers must agree on the txn and on the tree digest after it); a committed txn is never
// truncated; currentEpoch <= acceptedEpoch on every disk; ACKEPOCH only after acceptedEpoch is
// on disk; the ACK of NEWLEADER only after the synced txns and currentEpoch are on disk; a
// proposal's ACK only after it is durable; a linearizable sync answers a zxid at least as
// new as every write acknowledged before it was asked. At the end every fault is healed and
// the run must elect a leader, commit new writes and converge all members (equal digests and
// histories) within a bounded time; every acknowledged write must be in the final history.
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cinttypes>
#include <cstdarg>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <memory>
#include <optional>
#include <queue>
#include <random>
#include <set>
#include <stdexcept>
#include <string>
#include <vector>

#include "consensus/util/result.h"
#include "consensus/zab/core.h"
#include "daemon/proto/txn.pb.h"
#include "daemon/tree/data_tree.h"
#include "daemon/tree/prepare.h"

namespace qfs::sim {
namespace {

using zab::Entry;
using zab::PeerId;
using zab::Zxid;

constexpr uint64_t kTick = 100;

struct Failure : std::runtime_error {
  using std::runtime_error::runtime_error;
};

[[noreturn]] void Fail(const char* fmt, ...) {
  char buf[1024];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(buf, sizeof buf, fmt, ap);
  va_end(ap);
  throw Failure(buf);
}

uint64_t Fnv(const std::string& s) {
  uint64_t h = 1469598103934665603ull;
  for (unsigned char c : s) h = (h ^ c) * 1099511628211ull;
  return h;
}

std::string Hex(Zxid z) {
  char b[40];
  snprintf(b, sizeof b, "%" PRIu64 ":%u", zab::EpochOf(z), zab::CounterOf(z));
  return b;
}

struct Rng {
  std::mt19937_64 g;
  explicit Rng(uint64_t seed) : g(seed * 0x9e3779b97f4a7c15ull + 12345) {}
  uint64_t U(uint64_t n) { return n == 0 ? 0 : g() % n; }
  uint64_t Range(uint64_t lo, uint64_t hi) { return lo + U(hi - lo + 1); }
  bool P(double p) { return static_cast<double>(g() >> 11) * 0x1.0p-53 < p; }
};

struct Options {
  uint64_t seed = 1;
  int members = 0;  // voters; 0: 3 or 5 chosen by the seed
  int steps = 400;  // ticks of faults and load before healing
  int heal_ticks = 600;
  bool trace = false;
};

struct Stats {
  uint64_t committed = 0, acked = 0, elections = 0, crashes = 0, power_failures = 0, partitions = 0,
           resets = 0, diffs = 0, truncs = 0, snaps = 0, lin_syncs = 0, exhausted = 0,
           observer_applies = 0, pauses = 0, reconfigs = 0, reconfigs_refused = 0, removals = 0,
           histories = 0, readmissions = 0;
  std::vector<std::pair<const char*, uint64_t*>> Fields() {
    return {{"txns committed", &committed},
            {"writes acked", &acked},
            {"leaders", &elections},
            {"crashes", &crashes},
            {"power failures", &power_failures},
            {"partitions", &partitions},
            {"link resets", &resets},
            {"DIFF syncs", &diffs},
            {"TRUNC syncs", &truncs},
            {"SNAP syncs", &snaps},
            {"linearizable syncs", &lin_syncs},
            {"refused (epoch exhausted)", &exhausted},
            {"observer applies", &observer_applies},
            {"pauses", &pauses},
            {"reconfigs proposed", &reconfigs},
            {"reconfigs refused", &reconfigs_refused},
            {"members removed", &removals},
            {"members readmitted while running", &readmissions},
            {"histories taken by a leader-elect", &histories}};
  }
};

// One txn in a tree's history: its zxid, payload hash and the tree digest after it.
struct TreeEntry {
  Zxid zxid = 0;
  uint64_t payload = 0;
  uint64_t digest = 0;
};

struct SnapImage {
  Zxid zxid = 0;
  std::vector<std::string> records;
  std::vector<TreeEntry> seq;
};

struct Disk {
  std::vector<Entry> log;  // all zxids > log_base, increasing
  size_t durable = 0;      // log[0, durable) is durable
  Zxid log_base = 0;
  uint64_t accepted = 0, current = 0;
  std::vector<std::shared_ptr<SnapImage>> snaps;  // oldest first
  uint64_t fsync_gen = 0;
  bool fsync_pending = false;
  std::optional<zab::ConfigState> conf;  // Ready.config, written synchronously

  Zxid DurableLast() const { return durable ? log[durable - 1].zxid : log_base; }
  Zxid Floor() const {
    if (log_base == 0) return 0;
    for (auto& s : snaps)
      if (s->zxid >= log_base) return s->zxid;
    return log_base;
  }
};

struct Member;

class SimReader : public zab::LogReader {
 public:
  explicit SimReader(Member* m) : m_(m) {}
  bool ReadAfter(Zxid after, size_t max_entries, std::vector<Entry>* out) override;
  Zxid TruncateFloor() override;

 private:
  Member* m_;
};

struct Member {
  int idx = 0;
  PeerId id = 0;
  bool voter = true;
  bool up = true;
  uint64_t inc = 0;  // incarnation
  uint64_t tick_phase = 0;
  uint64_t paused_until = 0;  // a stalled process (GC pause, swapped out): nothing runs
  Disk disk;
  std::unique_ptr<tree::DataTree> tree;
  std::vector<TreeEntry> tseq;  // the tree's history
  size_t verified = 0;          // tseq[0, verified) checked against the global history
  std::unique_ptr<zab::Core> core;
  std::unique_ptr<tree::Preparer> prep;
  SimReader reader{this};
  std::shared_ptr<SnapImage> incoming_snap;
  int incoming_snap_from = -1;
  Zxid nl_point = 0;
  std::map<int, Zxid> stream_last;  // per sender
  zab::RoleChange rc;
  bool joiner_lists_self = false;  // a spare whose static configuration lists itself
};

bool SimReader::ReadAfter(Zxid after, size_t max_entries, std::vector<Entry>* out) {
  const Disk& d = m_->disk;
  if (after < d.log_base) return false;
  auto it = std::upper_bound(d.log.begin(), d.log.end(), after,
                             [](Zxid z, const Entry& e) { return z < e.zxid; });
  if (after != d.log_base && (it == d.log.begin() || std::prev(it)->zxid != after)) return false;
  for (; it != d.log.end() && out->size() < max_entries; ++it) out->push_back(*it);
  return true;
}
Zxid SimReader::TruncateFloor() {
  return m_->disk.Floor();
}

enum class PktType { kZab, kSnap };
struct Packet {
  PktType type = PktType::kZab;
  uint64_t gen = 0, seq = 0;
  peer::ZabMessage msg;
  std::shared_ptr<SnapImage> snap;
};

struct Link {
  uint64_t gen = 1;
  uint64_t send_seq[2] = {0, 0};
  uint64_t recv_next[2] = {0, 0};
  uint64_t last_delivery[2] = {0, 0};
  uint64_t notified[2] = {1, 1};  // generation each end has been told about
  bool cut = false;
  uint64_t timeout_gen = 0;  // a retransmission timeout is pending for this generation
};

enum class Ev { kTick, kDeliver, kFsync, kNotice, kTimeout, kForward, kRestart, kHeal, kSync };
struct Event {
  uint64_t t = 0, seq = 0;
  Ev kind = Ev::kTick;
  int a = 0, b = 0;  // members (deliver: from a to b)
  uint64_t x = 0, y = 0;
  std::shared_ptr<Packet> pkt;
  tree::Request req;
  uint64_t z = 0;
  bool operator>(const Event& o) const { return t != o.t ? t > o.t : seq > o.seq; }
};

struct ClientOp {
  int member = 0;
  bool acked = false;
  Zxid zxid = 0;
};
struct SyncOp {
  int member = 0;
  bool lin = false;
  Zxid must_cover = 0;
  bool done = false;
};

const char* BodyName(const peer::ZabMessage& m) {
  switch (m.body_case()) {
    case peer::ZabMessage::kVote:
      return "VOTE";
    case peer::ZabMessage::kFollowerInfo:
      return "FOLLOWERINFO";
    case peer::ZabMessage::kNewEpoch:
      return "NEWEPOCH";
    case peer::ZabMessage::kAckEpoch:
      return "ACKEPOCH";
    case peer::ZabMessage::kSyncStart:
      return "SYNCSTART";
    case peer::ZabMessage::kNewLeader:
      return "NEWLEADER";
    case peer::ZabMessage::kUpToDate:
      return "UPTODATE";
    case peer::ZabMessage::kProposal:
      return "PROPOSAL";
    case peer::ZabMessage::kAck:
      return "ACK";
    case peer::ZabMessage::kCommit:
      return "COMMIT";
    case peer::ZabMessage::kInform:
      return "INFORM";
    case peer::ZabMessage::kPing:
      return "PING";
    case peer::ZabMessage::kPingReply:
      return "PINGREPLY";
    case peer::ZabMessage::kSyncRequest:
      return "SYNCREQ";
    case peer::ZabMessage::kSyncReply:
      return "SYNCREPLY";
    case peer::ZabMessage::kHistoryRequest:
      return "HISTORYREQ";
    case peer::ZabMessage::kHistoryReply:
      return "HISTORY";
    default:
      return "?";
  }
}

std::string Describe(const peer::ZabMessage& m) {
  std::string s = BodyName(m);
  char b[160];
  switch (m.body_case()) {
    case peer::ZabMessage::kVote:
      snprintf(b, sizeof b, "(leader=%" PRIu64 " zxid=%s pe=%" PRIu64 " round=%" PRIu64 " st=%d)",
               m.vote().leader(), Hex(m.vote().zxid()).c_str(), m.vote().peer_epoch(),
               m.vote().round(), static_cast<int>(m.vote().state()));
      break;
    case peer::ZabMessage::kFollowerInfo:
      snprintf(b, sizeof b, "(acc=%" PRIu64 " last=%s floor=%s)",
               m.follower_info().accepted_epoch(), Hex(m.follower_info().last_zxid()).c_str(),
               Hex(m.follower_info().truncate_floor()).c_str());
      break;
    case peer::ZabMessage::kNewEpoch:
      snprintf(b, sizeof b, "(%" PRIu64 ")", m.new_epoch().epoch());
      break;
    case peer::ZabMessage::kAckEpoch:
      snprintf(b, sizeof b, "(cur=%" PRIu64 " last=%s)", m.ack_epoch().current_epoch(),
               Hex(m.ack_epoch().last_zxid()).c_str());
      break;
    case peer::ZabMessage::kSyncStart:
      snprintf(b, sizeof b, "(%s %s)",
               m.sync_start().mode() == peer::SyncStart::DIFF    ? "DIFF"
               : m.sync_start().mode() == peer::SyncStart::TRUNC ? "TRUNC"
                                                                 : "SNAP",
               Hex(m.sync_start().zxid()).c_str());
      break;
    case peer::ZabMessage::kProposal:
      snprintf(b, sizeof b, "(%s)", Hex(m.proposal().zxid()).c_str());
      break;
    case peer::ZabMessage::kHistoryRequest:
      snprintf(b, sizeof b, "(after %s)", Hex(m.history_request().after()).c_str());
      break;
    case peer::ZabMessage::kHistoryReply:
      snprintf(b, sizeof b, "(ok=%d after %s: %d entries, cur=%" PRIu64 " last=%s)",
               m.history_reply().ok(), Hex(m.history_reply().after()).c_str(),
               m.history_reply().entries_size(), m.history_reply().current_epoch(),
               Hex(m.history_reply().last_zxid()).c_str());
      break;
    case peer::ZabMessage::kAck:
      snprintf(b, sizeof b, "(%s)", Hex(m.ack().zxid()).c_str());
      break;
    case peer::ZabMessage::kCommit:
      snprintf(b, sizeof b, "(%s)", Hex(m.commit().zxid()).c_str());
      break;
    case peer::ZabMessage::kInform:
      snprintf(b, sizeof b, "(%s)", Hex(m.inform().txn().zxid()).c_str());
      break;
    default:
      b[0] = 0;
  }
  return s + b;
}

class Sim {
 public:
  Sim(const Options& o) : opt_(o), rng_(o.seed) {}

  Stats Run() {
    Setup();
    uint64_t fault_end = static_cast<uint64_t>(opt_.steps) * kTick;
    // Fault and load phase.
    while (now_ < fault_end) {
      Advance(now_ + kTick);
      Chaos();
    }
    Heal();
    uint64_t deadline = now_ + static_cast<uint64_t>(opt_.heal_ticks) * kTick;
    int want_acked = 3;
    int heal_acked = 0;
    uint64_t acked_before = stats_.acked;
    while (true) {
      if (now_ >= deadline) {
        if (getenv("QFS_SIM_WHY")) Converged(true);
        Fail("liveness: not converged %d ticks after healing (leader %s, new acks %d)",
             opt_.heal_ticks, LeaderDesc().c_str(), heal_acked);
      }
      Advance(now_ + kTick);
      heal_acked = static_cast<int>(stats_.acked - acked_before);
      if (heal_acked < want_acked) {
        ClientWrite(/*heal=*/true);
        continue;
      }
      if (Converged()) break;
    }
    FinalChecks();
    return stats_;
  }

 private:
  // --- setup ---
  void Setup() {
    int voters = opt_.members ? opt_.members : (rng_.P(0.5) ? 3 : 5);
    int observers = rng_.P(0.6) ? 0 : (rng_.P(0.7) ? 1 : 2);
    int spares = rng_.P(0.5) ? 0 : (rng_.P(0.6) ? 1 : 2);
    reconf_rate_ = rng_.P(0.3) ? 0.0 : 0.004 * static_cast<double>(rng_.Range(1, 6));
    n_ = voters + observers + spares;
    cfg_.election_finalize_ticks = 2;
    cfg_.vote_resend_ticks = 3;
    cfg_.init_ticks = 40;
    cfg_.sync_ticks = 10;
    cfg_.ping_ticks = 2;
    if (rng_.P(0.2)) cfg_.max_counter = static_cast<uint32_t>(rng_.Range(3, 25));
    if (rng_.P(0.3)) cfg_.committed_window = rng_.Range(1, 8);
    if (rng_.P(0.2)) cfg_.max_diff_txns = rng_.Range(2, 12);
    forgetful_ = rng_.P(0.3);
    snap_prob_ = rng_.P(0.5) ? 0.05 : 0.01;
    crash_rate_ = rng_.P(0.2) ? 0.0 : 0.002 * static_cast<double>(rng_.Range(1, 10));
    break_rate_ = rng_.P(0.3) ? 0.0 : 0.005 * static_cast<double>(rng_.Range(1, 6));
    part_rate_ = rng_.P(0.3) ? 0.0 : 0.003 * static_cast<double>(rng_.Range(1, 8));
    pkt_fault_ = rng_.P(0.5) ? 0.0 : 0.0005 * static_cast<double>(rng_.Range(1, 8));
    pause_rate_ = rng_.P(0.4) ? 0.0 : 0.002 * static_cast<double>(rng_.Range(1, 8));
    client_rate_ = 0.3 + 0.1 * static_cast<double>(rng_.U(8));
    slow_net_ = rng_.P(0.2);
    for (int i = 0; i < voters + observers; i++) {
      if (i < voters) {
        cfg_.voters.push_back(static_cast<PeerId>(i + 1));
      } else {
        cfg_.observers.push_back(static_cast<PeerId>(i + 1));
      }
    }
    Trace("setup: %d voters, %d observers, %d spares, reconfig=%.3f", voters, observers, spares,
          reconf_rate_);
    Trace("setup: max_counter=%u window=%" PRIu64 " max_diff=%" PRIu64
          " forgetful=%d crash=%.3f break=%.3f part=%.3f pkt=%.4f",
          cfg_.max_counter, cfg_.committed_window, cfg_.max_diff_txns, forgetful_, crash_rate_,
          break_rate_, part_rate_, pkt_fault_);
    members_.resize(n_);
    links_.resize(static_cast<size_t>(n_ * n_));
    for (int i = 0; i < n_; i++) {
      auto& m = members_[i] = std::make_unique<Member>();
      m->idx = i;
      m->id = static_cast<PeerId>(i + 1);
      m->voter = i < voters;
      m->tick_phase = rng_.U(kTick);
      m->joiner_lists_self = i >= voters + observers && rng_.P(0.5);
    }
    for (int i = 0; i < n_; i++) Start(*members_[i]);
  }

  // --- events ---
  void Push(Event e) {
    e.seq = ev_seq_++;
    events_.push(std::move(e));
  }

  void Advance(uint64_t until) {
    while (!events_.empty() && events_.top().t <= until) {
      Event e = events_.top();
      events_.pop();
      now_ = e.t;
      Handle(e);
      CheckAlways();
    }
    now_ = until;
  }

  // The member an event runs on, or -1.
  int Target(const Event& e) const {
    switch (e.kind) {
      case Ev::kTick:
      case Ev::kFsync:
      case Ev::kNotice:
      case Ev::kSync:
        return e.a;
      case Ev::kDeliver:
      case Ev::kForward:
        return e.b;
      default:
        return -1;
    }
  }

  void Handle(const Event& e) {
    if (int t = Target(e); t >= 0 && members_[t]->paused_until > now_) {
      // A paused process runs nothing; what reached it waits, in order. Its timer does not
      // catch up: one tick fires when it resumes, so its core has not seen the time pass.
      Event r = e;
      r.t = members_[t]->paused_until;
      if (e.kind == Ev::kTick) r.t += members_[t]->tick_phase % kTick;
      Push(std::move(r));
      return;
    }
    switch (e.kind) {
      case Ev::kSync: {
        Member& m = *members_[e.a];
        if (!m.up) return;
        m.core->Sync(e.x, e.y != 0);
        Process(m);
        return;
      }
      case Ev::kTick: {
        Member& m = *members_[e.a];
        if (!m.up || m.inc != e.x) return;
        m.core->Tick();
        Process(m);
        Push({now_ + kTick, 0, Ev::kTick, e.a, 0, m.inc, 0, nullptr, {}});
        return;
      }
      case Ev::kDeliver:
        return Deliver(e.a, e.b, *e.pkt);
      case Ev::kFsync: {
        Member& m = *members_[e.a];
        if (!m.up || m.inc != e.x || m.disk.fsync_gen != e.y) return;
        m.disk.fsync_pending = false;
        Disk& d = m.disk;
        size_t target = d.durable;
        while (target < d.log.size() && d.log[target].zxid <= e.z) target++;
        if (target > d.durable) {
          d.durable = target;
          m.core->Persisted(d.log[target - 1].zxid);
          Process(m);
        }
        MaybeFsync(m);
        return;
      }
      case Ev::kNotice:
        return Notice(e.a, e.b, e.x);
      case Ev::kTimeout: {
        Link& l = L(e.a, e.b);
        if (l.gen == e.x && l.timeout_gen == e.x) ResetLink(e.a, e.b, -1, "timeout");
        return;
      }
      case Ev::kForward: {
        Member& m = *members_[e.b];
        if (m.up && m.core->role() == zab::Role::kLeading && m.core->serving())
          LeaderSubmit(m, e.req, static_cast<PeerId>(e.a + 1), e.x);
        return;
      }
      case Ev::kRestart:
        if (!members_[e.a]->up && !healed_) Start(*members_[e.a]);
        return;
      case Ev::kHeal:
        if (partition_id_ == e.x) HealPartition();
        return;
    }
  }

  // --- members ---
  void Start(Member& m) {
    Disk& d = m.disk;
    // Recovery: newest snapshot, then the log after it; the configuration state, then the
    // reconfig entries of the log after it.
    std::shared_ptr<SnapImage> snap;
    for (auto& s : d.snaps)
      if (!snap || s->zxid > snap->zxid) snap = s;
    Zxid base = snap ? snap->zxid : 0;
    if (d.log_base > base) Fail("member %d: log starts after every snapshot", m.idx + 1);
    if (base > 0 && (d.log.empty() || d.log.back().zxid < base)) {
      // The log lost the tail the snapshot holds: restart the log after the snapshot.
      d.log.clear();
      d.log_base = base;
    }
    d.durable = d.log.size();  // whatever survived is on disk now
    if (snap) {
      size_t i = 0;
      auto t = tree::DataTree::LoadSnapshot({}, [&](std::string_view* r) {
        if (i == snap->records.size()) return false;
        *r = snap->records[i++];
        return true;
      });
      if (!t.ok())
        Fail("member %d: snapshot does not load: %s", m.idx + 1, t.status().ToString().c_str());
      m.tree = std::move(t).value();
      m.tseq = snap->seq;
    } else {
      m.tree = std::make_unique<tree::DataTree>();
      m.tseq.clear();
    }
    for (const Entry& e : d.log)
      if (e.zxid > base) ApplyToTree(m, e);
    m.verified = 0;
    zab::InitialState st;
    st.accepted_epoch = d.accepted;
    st.current_epoch = d.current;
    st.last_zxid = static_cast<Zxid>(m.tree->last_zxid());
    // Epochs of the history held: the base point, then the log.
    std::vector<peer::EpochEnd> eps;
    auto note = [&](Zxid z) {
      if (!eps.empty() && eps.back().epoch() == zab::EpochOf(z)) {
        eps.back().set_last_zxid(z);
      } else {
        peer::EpochEnd ee;
        ee.set_epoch(zab::EpochOf(z));
        ee.set_last_zxid(z);
        eps.push_back(ee);
      }
    };
    if (d.log_base) note(d.log_base);
    for (const Entry& e : d.log) note(e.zxid);
    std::reverse(eps.begin(), eps.end());
    st.epochs = eps;
    st.config = d.conf;
    for (const Entry& e : d.log)
      if (e.config && (!d.conf || e.zxid > d.conf->current_zxid))
        st.log_configs.emplace_back(e.zxid, *e.config);
    if ((st.epochs.empty() ? 0 : st.epochs[0].last_zxid()) != st.last_zxid)
      Fail("member %d: recovered tree at %s but the history ends elsewhere", m.idx + 1,
           Hex(st.last_zxid).c_str());
    zab::Config c = cfg_;
    c.self = m.id;
    if (m.joiner_lists_self) {
      // A ZooKeeper-style joiner: its static configuration is the ensemble plus itself.
      c.voters.push_back(m.id);
      std::sort(c.voters.begin(), c.voters.end());
    }
    m.core = std::make_unique<zab::Core>(c, st, &m.reader);
    m.up = true;
    m.inc++;
    m.prep.reset();
    m.incoming_snap.reset();
    m.rc = zab::RoleChange();
    d.fsync_gen++;
    d.fsync_pending = false;
    for (int j = 0; j < n_; j++) {
      if (j == m.idx) continue;
      Link& l = L(m.idx, j);
      l.notified[End(m.idx, j)] = l.gen;
    }
    Trace("member %d starts: acc=%" PRIu64 " cur=%" PRIu64 " last=%s base=%s", m.idx + 1,
          d.accepted, d.current, Hex(st.last_zxid).c_str(), Hex(d.log_base).c_str());
    Push({now_ + m.tick_phase + 1, 0, Ev::kTick, m.idx, 0, m.inc, 0, nullptr, {}});
    Process(m);
  }

  void Crash(Member& m) {
    stats_.crashes++;
    Disk& d = m.disk;
    size_t unsynced = d.log.size() - d.durable;
    size_t keep = static_cast<size_t>(rng_.U(unsynced + 1));  // what the OS had written
    d.log.resize(d.durable + keep);
    Trace("member %d crashes (kept %zu of %zu unsynced entries)", m.idx + 1, keep, unsynced);
    m.up = false;
    m.paused_until = 0;
    m.core.reset();
    m.prep.reset();
    m.tree.reset();
    m.tseq.clear();
    m.incoming_snap.reset();
    for (int j = 0; j < n_; j++)
      if (j != m.idx) ResetLink(m.idx, j, m.idx, "crash", rng_.U(3 * kTick));
    Push({now_ + rng_.Range(3, 40) * kTick, 0, Ev::kRestart, m.idx, 0, 0, 0, nullptr, {}});
  }

  void ApplyToTree(Member& m, const Entry& e) {
    txn::Txn t;
    if (!t.ParseFromString(e.payload) || static_cast<Zxid>(t.zxid()) != e.zxid)
      Fail("member %d: bad payload at %s", m.idx + 1, Hex(e.zxid).c_str());
    if (static_cast<Zxid>(m.tree->last_zxid()) >= e.zxid)
      Fail("member %d: applies %s after %s", m.idx + 1, Hex(e.zxid).c_str(),
           Hex(m.tree->last_zxid()).c_str());
    tree::ApplyResult r = m.tree->Apply(t);
    if (r.err != tree::Err::kOk)
      Fail("member %d: apply of %s failed", m.idx + 1, Hex(e.zxid).c_str());
    m.tseq.push_back({e.zxid, Fnv(e.payload), m.tree->digest()});
  }

  // --- the shell: carrying out a Ready ---
  void Process(Member& m) {
    while (m.up && m.core->HasReady()) {
      zab::Ready r = m.core->TakeReady();
      Carry(m, r);
    }
  }

  void Carry(Member& m, zab::Ready& r) {
    Disk& d = m.disk;
    if (r.truncate_after) Truncate(m, *r.truncate_after);
    if (r.install_snapshot) InstallSnapshot(m, *r.install_snapshot);
    for (Entry& e : r.append) {
      Zxid last = d.log.empty() ? d.log_base : d.log.back().zxid;
      if (e.zxid <= last)
        Fail("member %d: append %s after %s", m.idx + 1, Hex(e.zxid).c_str(), Hex(last).c_str());
      d.log.push_back(e);
    }
    if (!r.append.empty()) MaybeFsync(m);
    if (r.accepted_epoch) d.accepted = *r.accepted_epoch;
    if (r.config) d.conf = *r.config;
    if (r.current_epoch) {
      d.current = *r.current_epoch;
      if (m.core->role() == zab::Role::kLeading) {
        auto [it, fresh] = established_.emplace(d.current, m.id);
        if (!fresh && it->second != m.id)
          Fail("two leaders completed discovery for epoch %" PRIu64 ": %" PRIu64 " and %" PRIu64,
               d.current, it->second, m.id);
        Trace("member %d: leader of epoch %" PRIu64, m.idx + 1, d.current);
      }
    }
    if (d.current > d.accepted)
      Fail("member %d: currentEpoch %" PRIu64 " > acceptedEpoch %" PRIu64, m.idx + 1, d.current,
           d.accepted);
    for (const Entry& e : r.apply) Apply(m, e);
    for (PeerId p : r.send_snapshot) {
      auto img = std::make_shared<SnapImage>();
      img->zxid = static_cast<Zxid>(m.tree->last_zxid());
      img->seq = m.tseq;
      Status st = m.tree->WriteSnapshot([&](std::string_view rec) {
        img->records.emplace_back(rec);
        return Status::Ok();
      });
      if (!st.ok()) Fail("snapshot write failed");
      stats_.snaps++;
      auto pkt = std::make_shared<Packet>();
      pkt->type = PktType::kSnap;
      pkt->snap = img;
      Send(m.idx, static_cast<int>(p - 1), pkt);
    }
    for (PeerId p : r.disconnect) ResetLink(m.idx, static_cast<int>(p - 1), m.idx, "asked");
    for (auto& o : r.messages) {
      CheckOutgoing(m, o);
      if (o.msg.has_sync_start()) {
        auto mode = o.msg.sync_start().mode();
        if (mode == peer::SyncStart::DIFF) stats_.diffs++;
        if (mode == peer::SyncStart::TRUNC) stats_.truncs++;
      }
      if (o.msg.has_history_reply() && o.msg.history_reply().ok()) stats_.histories++;
      auto pkt = std::make_shared<Packet>();
      pkt->msg = std::move(o.msg);
      Send(m.idx, static_cast<int>(o.to - 1), pkt);
    }
    for (auto& s : r.syncs_done) SyncDone(m, s);
    if (r.role_change) {
      if (m.rc.removed && !r.role_change->removed) {
        stats_.readmissions++;
        Trace("member %d: readmitted", m.idx + 1);
      }
      m.rc = *r.role_change;
      Trace("member %d: %s leader=%" PRIu64 " epoch=%" PRIu64 " serving=%d", m.idx + 1,
            zab::RoleName(m.rc.role), m.rc.leader, m.rc.epoch, m.rc.serving);
      if (m.rc.role == zab::Role::kLeading && m.rc.serving) {
        stats_.elections++;
        auto [it, fresh] = serving_leaders_.emplace(m.rc.epoch, m.id);
        if (!fresh && it->second != m.id)
          Fail("two serving leaders in epoch %" PRIu64 ": %" PRIu64 " and %" PRIu64, m.rc.epoch,
               it->second, m.id);
      }
      if (m.rc.role != zab::Role::kLeading || !m.rc.serving) m.prep.reset();
      if (m.rc.removed) {
        stats_.removals++;
        Trace("member %d: removed from the configuration", m.idx + 1);
      }
    }
    if (r.install_snapshot) {
      m.core->SnapshotInstalled(*r.install_snapshot);
    }
  }

  void MaybeFsync(Member& m) {
    Disk& d = m.disk;
    if (d.fsync_pending || d.durable == d.log.size()) return;
    d.fsync_pending = true;
    uint64_t delay = rng_.Range(5, rng_.P(0.1) ? 400 : 120);
    Event e{now_ + delay, 0, Ev::kFsync, m.idx, 0, m.inc, d.fsync_gen, nullptr, {}};
    e.z = d.log.back().zxid;  // fsync covers what is written when it starts
    Push(std::move(e));
  }

  void Truncate(Member& m, Zxid z) {
    Disk& d = m.disk;
    Trace("member %d: truncate after %s (tree at %s)", m.idx + 1, Hex(z).c_str(),
          Hex(m.tree->last_zxid()).c_str());
    if (m.verified > 0 && m.tseq[m.verified - 1].zxid > z)
      Fail("member %d: TRUNC to %s drops committed txn %s", m.idx + 1, Hex(z).c_str(),
           Hex(m.tseq[m.verified - 1].zxid).c_str());
    if (z < d.Floor())
      Fail("member %d: TRUNC to %s below its floor %s", m.idx + 1, Hex(z).c_str(),
           Hex(d.Floor()).c_str());
    while (!d.log.empty() && d.log.back().zxid > z) d.log.pop_back();
    d.durable = std::min(d.durable, d.log.size());
    d.fsync_gen++;
    d.fsync_pending = false;
    std::erase_if(d.snaps, [z](const std::shared_ptr<SnapImage>& s) { return s->zxid > z; });
    if (static_cast<Zxid>(m.tree->last_zxid()) > z) {
      // Rebuild: newest snapshot at or below the cut, then the log up to it.
      std::shared_ptr<SnapImage> snap;
      for (auto& s : d.snaps)
        if (s->zxid >= d.log_base && (!snap || s->zxid > snap->zxid)) snap = s;
      if (!snap && d.log_base != 0)
        Fail("member %d: no snapshot to rebuild at %s", m.idx + 1, Hex(z).c_str());
      Zxid base = snap ? snap->zxid : 0;
      if (snap) {
        size_t i = 0;
        auto t = tree::DataTree::LoadSnapshot({}, [&](std::string_view* rec) {
          if (i == snap->records.size()) return false;
          *rec = snap->records[i++];
          return true;
        });
        if (!t.ok()) Fail("snapshot load failed");
        m.tree = std::move(t).value();
        m.tseq = snap->seq;
      } else {
        m.tree = std::make_unique<tree::DataTree>();
        m.tseq.clear();
      }
      for (const Entry& e : d.log)
        if (e.zxid > base) ApplyToTree(m, e);
      m.verified = 0;
      m.prep.reset();
    }
    MaybeFsync(m);
  }

  void InstallSnapshot(Member& m, Zxid z) {
    if (!m.incoming_snap || m.incoming_snap->zxid != z)
      Fail("member %d: asked to install snapshot %s but received %s", m.idx + 1, Hex(z).c_str(),
           m.incoming_snap ? Hex(m.incoming_snap->zxid).c_str() : "none");
    auto snap = m.incoming_snap;
    m.incoming_snap.reset();
    size_t i = 0;
    auto t = tree::DataTree::LoadSnapshot({}, [&](std::string_view* rec) {
      if (i == snap->records.size()) return false;
      *rec = snap->records[i++];
      return true;
    });
    if (!t.ok()) Fail("snapshot load failed");
    m.tree = std::move(t).value();
    m.tseq = snap->seq;
    m.verified = 0;
    Disk& d = m.disk;
    d.log.clear();
    d.durable = 0;
    d.log_base = z;
    d.snaps = {snap};
    d.fsync_gen++;
    d.fsync_pending = false;
    Trace("member %d: installed snapshot %s", m.idx + 1, Hex(z).c_str());
  }

  void Apply(Member& m, const Entry& e) {
    ApplyToTree(m, e);
    if (!m.voter) stats_.observer_applies++;
    if (m.prep) m.prep->Applied(static_cast<int64_t>(e.zxid));
    // Everything the tree holds up to here is committed: check it against the history.
    for (size_t i = m.verified; i < m.tseq.size(); i++) {
      const TreeEntry& te = m.tseq[i];
      if (i < hist_.size()) {
        const TreeEntry& h = hist_[i];
        if (h.zxid != te.zxid || h.payload != te.payload)
          Fail("member %d: applied history diverges at position %zu: %s vs the history's %s",
               m.idx + 1, i, Hex(te.zxid).c_str(), Hex(h.zxid).c_str());
        if (h.digest != te.digest)
          Fail("member %d: tree digest differs after %s", m.idx + 1, Hex(te.zxid).c_str());
      } else {
        if (!hist_.empty() && hist_.back().zxid >= te.zxid) Fail("history not increasing");
        hist_.push_back(te);
        hist_index_[te.zxid] = i;
        stats_.committed++;
      }
    }
    m.verified = m.tseq.size();
    if (e.origin == m.id) {
      auto it = ops_.find(e.origin_tag);
      if (it != ops_.end() && !it->second.acked) {
        it->second.acked = true;
        it->second.zxid = e.zxid;
        stats_.acked++;
        acked_max_ = std::max(acked_max_, e.zxid);
      }
    }
    // Sometimes take a snapshot (synchronously: the simulated disk is instant for these).
    if (rng_.P(snap_prob_)) TakeSnapshot(m);
  }

  void TakeSnapshot(Member& m) {
    Disk& d = m.disk;
    auto img = std::make_shared<SnapImage>();
    img->zxid = static_cast<Zxid>(m.tree->last_zxid());
    if (!d.snaps.empty() && d.snaps.back()->zxid >= img->zxid) return;
    img->seq = m.tseq;
    Status st = m.tree->WriteSnapshot([&](std::string_view rec) {
      img->records.emplace_back(rec);
      return Status::Ok();
    });
    if (!st.ok()) Fail("snapshot failed");
    d.snaps.push_back(img);
    while (d.snaps.size() > 3) d.snaps.erase(d.snaps.begin());
    if (forgetful_) {
      // Purge the log below the oldest kept snapshot (only what is durable).
      Zxid p = std::min(d.snaps.front()->zxid, d.DurableLast());
      if (p > d.log_base) {
        size_t n = 0;
        while (n < d.log.size() && d.log[n].zxid <= p) n++;
        d.log.erase(d.log.begin(), d.log.begin() + static_cast<long>(n));
        d.durable -= std::min(d.durable, n);
        d.log_base = p;
      }
    }
  }

  void CheckOutgoing(Member& m, const zab::Outgoing& o) {
    const peer::ZabMessage& msg = o.msg;
    Disk& d = m.disk;
    if (msg.has_ack_epoch() && d.accepted < msg.epoch())
      Fail("member %d: ACKEPOCH %" PRIu64 " before acceptedEpoch is on disk", m.idx + 1,
           msg.epoch());
    if (msg.has_ack()) {
      Zxid z = msg.ack().zxid();
      if (zab::CounterOf(z) == 0) {
        if (d.current != zab::EpochOf(z))
          Fail("member %d: ACK of NEWLEADER %" PRIu64 " with currentEpoch %" PRIu64 " on disk",
               m.idx + 1, zab::EpochOf(z), d.current);
        if (d.DurableLast() < m.nl_point)
          Fail("member %d: ACK of NEWLEADER before its txns (to %s) are durable (%s)", m.idx + 1,
               Hex(m.nl_point).c_str(), Hex(d.DurableLast()).c_str());
      } else {
        if (d.DurableLast() < z)
          Fail("member %d: ACK of %s before it is durable (%s)", m.idx + 1, Hex(z).c_str(),
               Hex(d.DurableLast()).c_str());
        if (d.current != msg.epoch())
          Fail("member %d: ACK in epoch %" PRIu64 " with currentEpoch %" PRIu64, m.idx + 1,
               msg.epoch(), d.current);
      }
    }
  }

  void SyncDone(Member& m, const zab::SyncDone& s) {
    auto it = syncs_.find(s.tag);
    if (it == syncs_.end() || it->second.member != m.idx || it->second.done) return;
    it->second.done = true;
    if (it->second.lin) {
      stats_.lin_syncs++;
      if (s.zxid < it->second.must_cover)
        Fail("member %d: linearizable sync answered %s but %s was acknowledged before it",
             m.idx + 1, Hex(s.zxid).c_str(), Hex(it->second.must_cover).c_str());
    }
  }

  // --- network ---
  Link& L(int a, int b) {
    int i = std::min(a, b), j = std::max(a, b);
    return links_[static_cast<size_t>(i * n_ + j)];
  }
  static int End(int a, int b) { return a < b ? 0 : 1; }  // a's end of link (a,b)
  static int Dir(int from, int to) { return from < to ? 0 : 1; }

  void Send(int from, int to, std::shared_ptr<Packet> pkt) {
    if (trace_msgs()) {
      if (pkt->type == PktType::kSnap) {
        Trace("  %d -> %d SNAPSHOT(%s)", from + 1, to + 1, Hex(pkt->snap->zxid).c_str());
      } else {
        Trace("  %d -> %d %s", from + 1, to + 1, Describe(pkt->msg).c_str());
      }
    }
    Link& l = L(from, to);
    int dir = Dir(from, to);
    pkt->gen = l.gen;
    pkt->seq = l.send_seq[dir]++;
    if (l.cut || (pkt_fault_ > 0 && rng_.P(pkt_fault_))) {
      ArmTimeout(from, to);  // lost: the sender's transport notices eventually
      return;
    }
    uint64_t delay = rng_.Range(2, slow_net_ ? 150 : 60);
    if (rng_.P(0.02)) delay += rng_.Range(50, 300);
    uint64_t t = std::max(now_ + delay, l.last_delivery[dir]);
    bool reorder = pkt_fault_ > 0 && rng_.P(pkt_fault_);
    if (reorder) {
      t += rng_.Range(20, 300);  // overtaken by later packets
    } else {
      l.last_delivery[dir] = t;
    }
    Push({t, 0, Ev::kDeliver, from, to, 0, 0, pkt, {}});
    if (pkt_fault_ > 0 && rng_.P(pkt_fault_))
      Push({t + rng_.Range(0, 200), 0, Ev::kDeliver, from, to, 0, 0, pkt, {}});
  }

  void ArmTimeout(int a, int b) {
    Link& l = L(a, b);
    if (l.timeout_gen == l.gen) return;
    l.timeout_gen = l.gen;
    Push({now_ + rng_.Range(2, 8) * kTick, 0, Ev::kTimeout, a, b, l.gen, 0, nullptr, {}});
  }

  void Deliver(int from, int to, const Packet& p) {
    Member& m = *members_[to];
    Link& l = L(from, to);
    if (p.gen != l.gen) return;  // a packet of a closed connection
    if (!m.up || l.cut) {
      ArmTimeout(from, to);
      return;
    }
    int dir = Dir(from, to);
    if (p.seq < l.recv_next[dir]) return;  // duplicate
    if (p.seq > l.recv_next[dir]) {
      ResetLink(from, to, -1, "gap");  // a packet was lost or overtaken
      return;
    }
    l.recv_next[dir]++;
    // The transport reports a broken connection before anything of the new one.
    int end = End(to, from);
    if (l.notified[end] < l.gen) Notice(to, from, l.gen);
    if (p.type == PktType::kSnap) {
      m.incoming_snap = p.snap;
      m.incoming_snap_from = from;
      return;
    }
    if (trace_msgs()) Trace("  %d <- %d %s", to + 1, from + 1, Describe(p.msg).c_str());
    // What the sync stream has given before NEWLEADER: its ACK must wait until it is durable.
    if (p.msg.has_sync_start()) m.stream_last[from] = p.msg.sync_start().zxid();
    if (p.msg.has_proposal()) m.stream_last[from] = p.msg.proposal().zxid();
    if (p.msg.has_new_leader()) m.nl_point = m.stream_last[from];
    m.core->Step(static_cast<PeerId>(from + 1), p.msg);
    Process(m);
  }

  // Resets link (a,b). `asker`: the member that asked (it is not told), or -1.
  void ResetLink(int a, int b, int asker, const char* why, uint64_t notice_delay = 0) {
    stats_.resets++;
    Link& l = L(a, b);
    l.gen++;
    l.send_seq[0] = l.send_seq[1] = 0;
    l.recv_next[0] = l.recv_next[1] = 0;
    l.last_delivery[0] = l.last_delivery[1] = 0;
    if (trace_msgs() || strcmp(why, "asked") != 0)
      Trace("link %d-%d reset (%s)", a + 1, b + 1, why);
    for (int who : {a, b}) {
      int other = who == a ? b : a;
      if (who == asker) {
        l.notified[End(who, other)] = l.gen;
        continue;
      }
      if (notice_delay == 0 && asker == -1 && who == b) {
        Notice(who, other, l.gen);  // the receiver saw the gap itself
      } else {
        uint64_t d = notice_delay ? notice_delay : rng_.Range(0, 30);
        Push({now_ + d, 0, Ev::kNotice, who, other, l.gen, 0, nullptr, {}});
      }
    }
  }

  void Notice(int who, int other, uint64_t gen) {
    Link& l = L(who, other);
    int end = End(who, other);
    if (l.notified[end] >= gen) return;
    l.notified[end] = gen;
    Member& m = *members_[who];
    if (!m.up) return;
    if (trace_msgs()) Trace("  %d: disconnected from %d", who + 1, other + 1);
    if (m.incoming_snap_from == other) m.incoming_snap.reset();
    m.core->Disconnected(static_cast<PeerId>(other + 1));
    Process(m);
  }

  // --- faults ---
  void Chaos() {
    // Client load.
    int k = static_cast<int>(rng_.U(3));
    for (int i = 0; i < k; i++)
      if (rng_.P(client_rate_)) ClientWrite(false);
    if (rng_.P(0.1)) ClientSync();
    if (rng_.P(pause_rate_)) {
      Member& m = *members_[rng_.U(n_)];
      if (m.up && m.paused_until <= now_) {
        m.paused_until = now_ + rng_.Range(5, 40) * kTick;
        stats_.pauses++;
        Trace("member %d pauses until %" PRIu64, m.idx + 1, m.paused_until / kTick);
      }
    }
    if (rng_.P(crash_rate_)) {
      if (rng_.P(0.15)) {
        // A power failure: several members at the same instant, back at different times.
        stats_.power_failures++;
        for (auto& m : members_)
          if (m->up && rng_.P(0.7)) Crash(*m);
      } else {
        int i = static_cast<int>(rng_.U(n_));
        if (members_[i]->up) Crash(*members_[i]);
      }
    }
    if (rng_.P(break_rate_)) {
      int a = static_cast<int>(rng_.U(n_)), b = static_cast<int>(rng_.U(n_));
      if (a != b) ResetLink(a, b, -1, "break", rng_.U(kTick));
    }
    if (reconf_rate_ > 0 && rng_.P(reconf_rate_)) Reconfig();
    if (rng_.P(0.01)) {
      // An operator restarts a removed member: it comes back as a joining server.
      Member& m = *members_[rng_.U(n_)];
      if (m.up && m.core->removed()) Crash(m);
    }
    if (partition_id_ == 0 && rng_.P(part_rate_)) {
      stats_.partitions++;
      std::vector<int> side(n_);
      if (rng_.P(0.5)) {
        int iso = static_cast<int>(rng_.U(n_));
        for (int i = 0; i < n_; i++) side[i] = i == iso;
      } else {
        for (int i = 0; i < n_; i++) side[i] = static_cast<int>(rng_.U(2));
      }
      std::string desc;
      for (int i = 0; i < n_; i++) {
        desc += side[i] ? "B" : "A";
        for (int j = i + 1; j < n_; j++)
          if (side[i] != side[j]) L(i, j).cut = true;
      }
      partition_id_ = ++partitions_made_;
      Trace("partition %s", desc.c_str());
      Push({now_ + rng_.Range(5, 60) * kTick, 0, Ev::kHeal, 0, 0, partition_id_, 0, nullptr, {}});
    }
  }

  // The serving leader (if any) is asked for a random membership change.
  void Reconfig() {
    Member* lead = nullptr;
    for (auto& m : members_)
      if (m->up && m->core->role() == zab::Role::kLeading && m->core->serving()) lead = m.get();
    if (!lead) return;
    const zab::Membership& cur = lead->core->config().current;
    std::set<PeerId> v(cur.voters.begin(), cur.voters.end());
    std::set<PeerId> o(cur.observers.begin(), cur.observers.end());
    auto pick = [&](const std::set<PeerId>& from) -> PeerId {
      if (from.empty()) return 0;
      auto it = from.begin();
      std::advance(it, static_cast<long>(rng_.U(from.size())));
      return *it;
    };
    std::set<PeerId> outside;
    for (int i = 1; i <= n_; i++)
      if (!v.count(static_cast<PeerId>(i)) && !o.count(static_cast<PeerId>(i)))
        outside.insert(static_cast<PeerId>(i));
    const char* what = "?";
    switch (rng_.U(7)) {
      case 0:
      case 1:
        what = "add";
        if (PeerId p = pick(outside)) (rng_.P(0.75) ? v : o).insert(p);
        break;
      case 2:
        what = "remove voter";
        if (rng_.P(0.3)) {
          v.erase(lead->id);
        } else {
          v.erase(pick(v));
        }
        break;
      case 3:
        what = "remove observer";
        o.erase(pick(o));
        break;
      case 4:
        what = "promote";
        if (PeerId p = pick(o)) {
          o.erase(p);
          v.insert(p);
        }
        break;
      case 5:
        what = "demote";
        if (PeerId p = pick(v)) {
          v.erase(p);
          o.insert(p);
        }
        break;
      default:
        what = "bulk";
        v.clear();
        o.clear();
        for (int i = 1; i <= n_; i++) {
          uint64_t k = rng_.U(10);
          if (k < 5) v.insert(static_cast<PeerId>(i));
          if (k >= 5 && k < 7) o.insert(static_cast<PeerId>(i));
        }
        break;
    }
    if (v.empty()) return;
    zab::Membership nm;
    nm.voters.assign(v.begin(), v.end());
    nm.observers.assign(o.begin(), o.end());
    if (auto err = lead->core->CheckReconfig(nm)) {
      stats_.reconfigs_refused++;
      Trace("member %d: reconfig (%s) refused: %d", lead->idx + 1, what, static_cast<int>(*err));
      return;
    }
    std::optional<Zxid> z = lead->core->NextZxid();
    if (!z) Fail("member %d: CheckReconfig passed without a next zxid", lead->idx + 1);
    // The txn the daemon would write: the member list and /zookeeper/config's new text.
    txn::Txn t;
    t.set_zxid(static_cast<int64_t>(*z));
    t.set_time_ms(static_cast<int64_t>(now_));
    std::string text;
    for (PeerId p : nm.voters) {
      auto* sv = t.mutable_reconfig()->add_servers();
      sv->set_id(p);
      text += "server." + std::to_string(p) + "=127.0.0.1:1:2:participant\n";
    }
    for (PeerId p : nm.observers) {
      auto* sv = t.mutable_reconfig()->add_servers();
      sv->set_id(p);
      sv->set_observer(true);
      text += "server." + std::to_string(p) + "=127.0.0.1:1:2:observer\n";
    }
    char ver[40];
    snprintf(ver, sizeof ver, "version=%" PRIx64, *z);
    tree::Stat st;
    if (lead->tree->GetData("/zookeeper/config", nullptr, &st, nullptr) != tree::Err::kOk)
      Fail("no /zookeeper/config");
    auto* node = t.mutable_reconfig()->mutable_node();
    node->set_path("/zookeeper/config");
    node->set_data(text + ver);
    node->set_version(st.version + 1);
    std::string payload;
    QFS_CHECK(t.SerializeToString(&payload));
    if (lead->core->ProposeReconfig(std::move(payload), nm, 0, 0))
      Fail("member %d: ProposeReconfig failed after CheckReconfig", lead->idx + 1);
    stats_.reconfigs++;
    auto ids = [](const std::vector<PeerId>& ps) {
      std::string s;
      for (PeerId p : ps) s += (s.empty() ? "" : ",") + std::to_string(p);
      return s;
    };
    Trace("member %d: reconfig (%s) at %s: voters {%s}, observers {%s}", lead->idx + 1, what,
          Hex(*z).c_str(), ids(nm.voters).c_str(), ids(nm.observers).c_str());
    Process(*lead);
  }

  void HealPartition() {
    for (auto& l : links_) l.cut = false;
    partition_id_ = 0;
    Trace("partition healed");
  }

  void Heal() {
    Trace("--- healing everything ---");
    healed_ = true;
    HealPartition();
    pkt_fault_ = 0;
    for (auto& m : members_) {
      m->paused_until = std::min(m->paused_until, now_);
      if (m->up && m->core->removed()) Crash(*m);  // restarted as a joining server
      if (!m->up) Start(*m);
    }
  }

  // --- clients ---
  tree::Request RandomRequest() {
    tree::Request r;
    uint64_t k = rng_.U(100);
    auto op = [&](tree::OpType t, std::string path) {
      tree::Op o;
      o.type = t;
      o.path = std::move(path);
      o.acl = tree::OpenAcl();
      o.data = "v" + std::to_string(rng_.U(1000));
      return o;
    };
    auto live_session = [&]() -> int64_t {
      if (sessions_.empty()) return 0;
      auto it = sessions_.begin();
      std::advance(it, static_cast<long>(rng_.U(sessions_.size())));
      return *it;
    };
    std::string node = "/n" + std::to_string(rng_.U(6));
    if (k < 8) {
      r.type = tree::RequestType::kCreateSession;
      r.session_id = next_session_++;
      r.session_timeout_ms = 10000;
      sessions_.insert(r.session_id);
    } else if (k < 35) {
      if (rng_.P(0.3)) node += "/c" + std::to_string(rng_.U(3));
      r.ops.push_back(op(tree::OpType::kCreate, node));
    } else if (k < 45) {
      tree::Op o = op(tree::OpType::kCreate, rng_.P(0.2) ? "/q" : "/q/s-");
      if (o.path != "/q") o.mode = tree::CreateMode::kPersistentSequential;
      r.ops.push_back(o);
    } else if (k < 55) {
      r.session_id = live_session();
      tree::Op o = op(tree::OpType::kCreate, "/e" + std::to_string(rng_.U(4)));
      o.mode = rng_.P(0.5) ? tree::CreateMode::kEphemeral : tree::CreateMode::kEphemeralSequential;
      r.ops.push_back(o);
    } else if (k < 64) {
      r.ops.push_back(op(tree::OpType::kSetData, node));
    } else if (k < 70) {
      r.ops.push_back(op(tree::OpType::kAppend, node));
    } else if (k < 82) {
      r.ops.push_back(op(tree::OpType::kDelete, node));
    } else if (k < 95) {
      r.type = tree::RequestType::kMulti;
      r.ops.push_back(op(tree::OpType::kCreate, "/m" + std::to_string(rng_.U(4))));
      r.ops.push_back(op(tree::OpType::kSetData, node));
    } else {
      r.type = tree::RequestType::kCloseSession;
      r.session_id = live_session();
      sessions_.erase(r.session_id);
    }
    return r;
  }

  void ClientWrite(bool heal) {
    // During healing, go straight to a serving leader so that new writes do commit.
    int i = static_cast<int>(rng_.U(n_));
    if (heal) {
      for (int j = 0; j < n_; j++)
        if (members_[j]->up && members_[j]->core->role() == zab::Role::kLeading &&
            members_[j]->core->serving())
          i = j;
    }
    Member& m = *members_[i];
    if (!m.up || !m.core->serving()) return;
    uint64_t id = next_op_++;
    ops_[id] = ClientOp{i, false, 0};
    tree::Request req = RandomRequest();
    if (m.core->role() == zab::Role::kLeading) {
      LeaderSubmit(m, req, m.id, id);
    } else {
      Event e{now_ + rng_.Range(2, 60),
              0,
              Ev::kForward,
              i,
              static_cast<int>(m.core->leader() - 1),
              id,
              0,
              nullptr,
              std::move(req)};
      Push(std::move(e));
    }
  }

  void LeaderSubmit(Member& m, const tree::Request& req, PeerId origin, uint64_t tag) {
    std::optional<Zxid> z = m.core->NextZxid();
    if (!z) {
      stats_.exhausted += m.core->serving() ? 1 : 0;
      return;
    }
    if (!m.prep) m.prep = std::make_unique<tree::Preparer>(*m.tree);
    tree::Prepared p = m.prep->Prepare(req, static_cast<int64_t>(*z), static_cast<int64_t>(now_));
    if (p.err != tree::Err::kOk) return;  // answered with an error, no txn
    std::string payload;
    QFS_CHECK(p.txn->SerializeToString(&payload));
    auto err = m.core->Propose(std::move(payload), origin, tag);
    if (err) Fail("member %d: Propose failed after NextZxid", m.idx + 1);
    Process(m);
  }

  void ClientSync() {
    int i = static_cast<int>(rng_.U(n_));
    Member& m = *members_[i];
    if (!m.up) return;
    uint64_t tag = next_op_++;
    bool lin = rng_.P(0.6);
    // Invoked now (it must cover every write acknowledged so far); it reaches the member a
    // little later, or when the member resumes from a pause.
    syncs_[tag] = SyncOp{i, lin, acked_max_, false};
    Push({now_ + rng_.U(kTick), 0, Ev::kSync, i, 0, tag, lin ? 1u : 0u, nullptr, {}});
  }

  // --- checks ---
  void CheckAlways() {
    for (auto& m : members_) {
      if (!m->up) continue;
      if (m->core->current_epoch() > m->core->accepted_epoch())
        Fail("member %d: currentEpoch > acceptedEpoch in the core", m->idx + 1);
      if (m->disk.current > m->disk.accepted)
        Fail("member %d: currentEpoch > acceptedEpoch on disk", m->idx + 1);
    }
  }

  bool Converged(bool why = false) const {
    auto no = [&](const char* reason, int id) {
      if (why) printf("not converged: %s (member %d)\n", reason, id);
      return false;
    };
    const Member* lead = nullptr;
    for (auto& m : members_)
      if (m->up && m->core->role() == zab::Role::kLeading && m->core->serving()) lead = m.get();
    if (!lead) return no("no serving leader", 0);
    // The members of the leader's configuration (joiners and removed members are left out).
    const zab::ConfigState& cs = lead->core->config();
    if (cs.previous) return no("the leader's configuration is pending", lead->idx + 1);
    for (auto& m : members_) {
      if (!cs.current.IsMember(m->id)) continue;
      if (!m->up || !m->core->serving()) return no("down or not serving", m->idx + 1);
      if (m->tree->last_zxid() != lead->tree->last_zxid() ||
          m->tree->digest() != lead->tree->digest())
        return no("tree differs from the leader's", m->idx + 1);
      if (m->tseq.size() != hist_.size()) return no("history short", m->idx + 1);
    }
    return true;
  }

  void FinalChecks() {
    for (auto& m : members_) {
      if (m->tree->digest() != m->tree->ComputeDigest())
        Fail("member %d: digest drifted", m->idx + 1);
      // Only a member outside the final configuration may lag (it was not waited for), and
      // what it holds beyond what it applied as committed may be uncommitted.
      bool member = false;
      for (auto& l : members_)
        if (l->up && l->core->role() == zab::Role::kLeading && l->core->serving())
          member = l->core->config().current.IsMember(m->id);
      if (member && m->tseq.size() < hist_.size())
        Fail("member %d: final history is short", m->idx + 1);
      size_t upto = std::min(hist_.size(), member ? m->tseq.size() : m->verified);
      for (size_t i = 0; i < upto; i++)
        if (m->tseq[i].zxid != hist_[i].zxid || m->tseq[i].digest != hist_[i].digest)
          Fail("member %d: final history differs at %zu", m->idx + 1, i);
    }
    for (auto& [id, op] : ops_) {
      if (!op.acked) continue;
      if (!hist_index_.count(op.zxid))
        Fail("acknowledged write %s is not in the history", Hex(op.zxid).c_str());
    }
  }

  std::string LeaderDesc() const {
    std::string s;
    for (auto& m : members_) {
      char b[160];
      if (!m->up) {
        snprintf(b, sizeof b, "[%d down]", m->idx + 1);
      } else {
        snprintf(b, sizeof b,
                 "[%d %s l=%" PRIu64 " e=%" PRIu64 " s=%d last=%s tree=%s %zu/%zu/%zu]", m->idx + 1,
                 zab::RoleName(m->core->role()), m->core->leader(), m->core->current_epoch(),
                 m->core->serving(), Hex(m->core->last_logged()).c_str(),
                 Hex(m->tree->last_zxid()).c_str(), m->verified, m->tseq.size(), hist_.size());
      }
      s += b;
    }
    return s;
  }

  bool trace_msgs() const { return opt_.trace; }
  void Trace(const char* fmt, ...) {
    if (!opt_.trace) return;
    va_list ap;
    va_start(ap, fmt);
    printf("%8" PRIu64 ".%02" PRIu64 " ", now_ / kTick, now_ % kTick);
    vprintf(fmt, ap);
    printf("\n");
    va_end(ap);
  }

  Options opt_;
  Rng rng_;
  zab::Config cfg_;
  int n_ = 0;
  std::vector<std::unique_ptr<Member>> members_;
  std::vector<Link> links_;
  std::priority_queue<Event, std::vector<Event>, std::greater<Event>> events_;
  uint64_t now_ = 0, ev_seq_ = 0;
  bool forgetful_ = false, slow_net_ = false, healed_ = false;
  double pause_rate_ = 0, reconf_rate_ = 0;
  double snap_prob_ = 0, crash_rate_ = 0, break_rate_ = 0, part_rate_ = 0, pkt_fault_ = 0,
         client_rate_ = 0;
  uint64_t partition_id_ = 0, partitions_made_ = 0;
  std::vector<TreeEntry> hist_;
  std::map<Zxid, size_t> hist_index_;
  std::map<uint64_t, PeerId> established_, serving_leaders_;
  std::map<uint64_t, ClientOp> ops_;
  std::map<uint64_t, SyncOp> syncs_;
  std::set<int64_t> sessions_;
  int64_t next_session_ = 1000;
  uint64_t next_op_ = 1;
  Zxid acked_max_ = 0;
  Stats stats_;
};

// The command line that replays the running seed, for crash reports.
char g_replay[256];

void OnAbort(int) {
  ssize_t n = write(2, g_replay, strlen(g_replay));
  (void)n;
  signal(SIGABRT, SIG_DFL);
  abort();
}

int Main(int argc, char** argv) {
  Options o;
  uint64_t seeds = 1, first = 1;
  bool one = false;
  for (int i = 1; i < argc; i++) {
    std::string a = argv[i];
    auto next = [&]() -> uint64_t {
      if (i + 1 >= argc) {
        fprintf(stderr, "qfs_sim: %s needs a value\n", a.c_str());
        exit(2);
      }
      return strtoull(argv[++i], nullptr, 10);
    };
    if (a == "--seeds") {
      seeds = next();
    } else if (a == "--first") {
      first = next();
    } else if (a == "--seed") {
      first = next();
      seeds = 1;
      one = true;
    } else if (a == "--members") {
      o.members = static_cast<int>(next());
    } else if (a == "--steps") {
      o.steps = static_cast<int>(next());
    } else if (a == "--trace") {
      o.trace = true;
    } else {
      fprintf(stderr,
              "usage: qfs_sim [--seeds N --first S | --seed S [--trace]] [--members 0|1|3|5] "
              "[--steps K]\n  QFS_SIM_SEEDS=N overrides --seeds\n");
      return 2;
    }
  }
  if (o.members != 0 && o.members != 3 && o.members != 5 && o.members != 1) {
    fprintf(stderr, "qfs_sim: --members must be 1, 3 or 5\n");
    return 2;
  }
  if (const char* env = getenv("QFS_SIM_SEEDS"); env && !one) seeds = strtoull(env, nullptr, 10);
  signal(SIGABRT, OnAbort);
  Stats total;
  uint64_t failed = 0;
  auto t0 = std::chrono::steady_clock::now();
  for (uint64_t s = first; s < first + seeds; s++) {
    o.seed = s;
    snprintf(g_replay, sizeof g_replay,
             "qfs_sim: seed %" PRIu64 " crashed; replay: qfs_sim --seed %" PRIu64
             " --members %d --steps %d --trace\n",
             s, s, o.members, o.steps);
    try {
      Sim sim(o);
      Stats st = sim.Run();
      auto a = total.Fields();
      auto b = st.Fields();
      for (size_t k = 0; k < a.size(); k++) *a[k].second += *b[k].second;
    } catch (const Failure& f) {
      failed++;
      printf("FAIL seed %" PRIu64 ": %s\n  replay: qfs_sim --seed %" PRIu64
             " --members %d --steps %d --trace\n",
             s, f.what(), s, o.members, o.steps);
      fflush(stdout);
      if (one) return 1;
    }
  }
  double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  printf("qfs_sim: %" PRIu64 " seeds from %" PRIu64 " (members %s), %" PRIu64
         " failed, %.1f s (%.1f seeds/s)\n ",
         seeds, first, o.members ? std::to_string(o.members).c_str() : "3/5", failed, secs,
         secs > 0 ? static_cast<double>(seeds) / secs : 0.0);
  for (auto& [name, v] : total.Fields()) printf(" %s %" PRIu64 ",", name, *v);
  printf("\n");
  return failed ? 1 : 0;
}

}  // namespace
}  // namespace qfs::sim

int main(int argc, char** argv) {
  return qfs::sim::Main(argc, argv);
}
