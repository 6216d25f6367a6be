// The ZAB core's internals, shared by its files (not part of the contract: see core.h).
//
// Core::Impl keeps what outlives a role (the log window, the epochs, the configuration, the
// election round and vote, the Ready being built) and holds the state of the current role in
// a std::variant, as ScyllaDB's raft fsm does:
// - Looking: one election's round of votes (also a removed member's probe timer);
// - Learning: a follower's or observer's session with its leader;
// - Leading: a leader's session with its learners.
// Every role change replaces the variant's alternative, so a new session starts from fresh
// state; reading another role's state is a failed QFS_CHECK (looking(), learning(),
// leading()), never a stale or default value.
//
// The methods are defined by topic: core.cc (the API, Tick/Step dispatch, log and
// configuration helpers), core_election.cc (looking, votes, removed members), core_learner.cc,
// core_leader.cc.
#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <optional>
#include <set>
#include <variant>
#include <vector>

#include "consensus/util/result.h"
#include "consensus/zab/core.h"

namespace qfs::zab {

struct Core::Impl {
  // Learner phases (following or observing).
  enum class LPhase {
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

  // A leader's view of one connected learner.
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

  // --- per-role state ---
  // (Each declares its constructor, defined in core.cc: a nested class's default member
  // initializers are not usable, for std::variant's default constructor, inside Impl.)
  // Looking: this round's election (StartLooking), or a removed member's dormancy (Remove).
  struct Looking {
    Looking();
    std::map<PeerId, peer::Vote> recv;     // LOOKING votes of this round
    std::map<PeerId, peer::Vote> outside;  // FOLLOWING/LEADING votes
    std::optional<uint64_t> finalize_at;
    uint64_t resend_at = 0;  // next vote resend (a removed member: next probe, TickRemoved)
    int backoff = 1;
    // FOLLOWERINFOs that came while looking: a leader-elect takes them, a follower closes them.
    std::map<PeerId, peer::FollowerInfo> pending_infos;
  };
  // Following or observing: one session with a leader (Follow).
  struct Learning {
    Learning();
    PeerId leader = 0;
    bool observing = false;  // an observer link: acknowledges nothing
    LPhase lphase = LPhase::kDiscovery;
    uint64_t leader_epoch = 0;
    uint64_t follow_start = 0, last_heard = 0;
    Zxid nl_point = 0, ack_sent = 0;
    std::vector<peer::ZabMessage> buffered;  // the leader's, while a snapshot is installed
  };
  // Leading: one session as leader (Lead).
  struct Leading {
    Leading();
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
    uint64_t next_ping_at = 0;
    std::vector<PendingSync> lin_syncs;
    bool serving = false;
    bool stepping_down = false;  // committed a configuration without itself as voter
    uint64_t stepdown_since = 0;
  };

  Config cfg;
  LogReader* reader;
  // The configuration (docs/reconfig.md): `conf` as in core.h; `voters` and `members` are the
  // union over current and previous, for taking messages and votes.
  ConfigState conf, persisted_conf;
  std::set<PeerId> voters, members;
  bool removed = false;
  // A SNAP's install outlives the session that asked for it (the shell reports it even after
  // the learner left its leader): the zxid asked for, and the configuration that goes with it.
  Zxid snapshot_wait = 0;
  std::optional<ConfigState> snap_conf;  // from a SNAP's SyncStart, taken when it is installed
  ConfigState ready_snapshot_conf;       // the configuration at ready_snapshot_zxid

  uint64_t accepted_epoch = 0, current_epoch = 0;
  std::deque<Entry> mem;
  Zxid mem_base = 0;
  Zxid last_logged = 0, durable = 0, last_committed = 0;
  Zxid tree_zxid = 0;  // last entry handed to the shell's tree (apply, replay or snapshot)
  std::vector<peer::EpochEnd> epochs;  // newest first

  std::variant<Looking, Learning, Leading> state;
  uint64_t now = 0;  // ticks
  Ready ready;
  std::vector<Zxid> ack_scratch;      // AdvanceCommit's, kept to spare an allocation per ack
  std::vector<Entry> deferred_apply;  // committed after a snapshot request in this Ready
  Zxid ready_snapshot_zxid = 0;       // the tree's zxid when that snapshot was asked for
  RoleChange reported;
  bool reported_once = false;

  // Election: the round and our vote, which FOLLOWING and LEADING votes still carry.
  uint64_t round = 0;
  peer::Vote vote;
  // Sequence numbers of a leader's pings, never reused across its leaderships.
  uint64_t ping_seq = 0;

  Impl(Config c, InitialState st, LogReader* r);

  // --- role ---
  Role role() const;
  PeerId leader() const;  // 0 while looking, cfg.self while leading
  bool serving() const;
  bool IsLooking() const { return std::holds_alternative<Looking>(state); }
  bool IsLearning() const { return std::holds_alternative<Learning>(state); }
  bool IsLeading() const { return std::holds_alternative<Leading>(state); }
  // The current role's state; a failed check in any other role.
  Looking& looking();
  Learning& learning();
  const Learning& learning() const;
  Leading& leading();
  const Leading& leading() const;

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
  // A learner acknowledges proposals (a follower link) unless it is only an observer: a member
  // outside the configuration (a joining server) acks so that its acks count once a reconfig
  // makes it a voter.
  bool WantParticipant() const { return SelfVoter() || !IsMember(cfg.self); }

  // --- message conversions (core.cc) ---
  static void ToProto(const Membership& m, peer::Membership* out);
  static Membership FromProto(const peer::Membership& m);
  static void ToProto(const ConfigState& c, peer::ConfigState* out);
  // nullopt when the message carries no valid configuration.
  static std::optional<ConfigState> FromProto(const peer::ConfigState& c);
  static void FillProposal(const Entry& e, peer::Proposal* pr);
  static Entry EntryOf(const peer::Proposal& p);

  // --- configuration (core.cc) ---
  void RebuildSets();
  bool QuorumOf(const std::vector<PeerId>& who) const;
  bool AnyQuorumOf(const std::vector<PeerId>& who) const;
  void ConfigAppend(Zxid z, const Membership& m);
  void TakeCommittedConfig(Membership m, Zxid z);
  void ConfigTruncate(Zxid z);
  ConfigState ConfigAt(Zxid z) const;
  void AdoptConfig(const ConfigState& c);
  void ConfigCommitted();
  Zxid CommittedConfigZxid() const {
    return conf.previous ? conf.previous_zxid : conf.current_zxid;
  }

  // --- output helpers (core.cc) ---
  void Send(PeerId to, peer::ZabMessage m);
  void Disconnect(PeerId p);
  void EmitApply(const Entry& e);

  // --- log helpers (core.cc) ---
  void NoteEpoch(Zxid z);
  void Append(Entry e);
  void Truncate(Zxid z);
  void Trim();
  std::deque<Entry>::const_iterator FirstAfter(Zxid z) const;
  void CommitTo(Zxid z);
  bool EntriesAfter(Zxid after, std::vector<Entry>* out);

  // --- election and removed members (core_election.cc) ---
  peer::Vote OwnVote() const;
  bool Better(const peer::Vote& v, const peer::Vote& than) const;
  peer::Vote::State MyState() const;
  peer::ZabMessage VoteMsg() const;
  void SendVoteAll();
  peer::Vote SelfVote() const;
  void Remove();
  void TickRemoved();
  bool MaybeReadmitted(const peer::Vote& v);
  void StartLooking();
  void GoLooking(bool close_links = true);
  void Adopt(const peer::Vote& v);
  void VoteChanged();
  void CheckVotes();
  void CheckOutside();
  void Decide();
  void OnVote(PeerId from, const peer::Vote& v);
  void OnOutsiderVote(PeerId from, const peer::Vote& v);
  void TickLooking();

  // --- learner (core_learner.cc) ---
  void Follow(PeerId l);
  void MaybeAckNewLeader();
  void OnLearnerMessage(const peer::ZabMessage& m);
  void SendHistory(Zxid after);
  void TickLearner();

  // --- leader (core_leader.cc) ---
  void Lead();
  std::vector<PeerId> Who(const std::function<bool(const Learner&)>& pred) const;
  void OnFollowerInfo(PeerId from, const peer::FollowerInfo& fi);
  void SendNewEpoch(PeerId p);
  void CheckDiscovery();
  void OnAckEpoch(PeerId from, const peer::AckEpoch& a);
  void CheckAckEpoch();
  void AskHistory(PeerId p);
  void OnHistoryReply(PeerId from, const peer::HistoryReply& r);
  void MaybePersistLeaderEpoch();
  std::optional<Zxid> CommonPoint(const peer::FollowerInfo& fi) const;
  void StartSync(PeerId p);
  void OnAck(PeerId from, Zxid z);
  void SendUpToDate(PeerId p);
  void CheckEstablished();
  void AdvanceCommit();
  void CheckExhausted();
  void AnswerSync(const PendingSync& s);
  void LeaderSync(uint64_t tag, PeerId from, bool lin);
  void CheckLinSyncs();
  void OnLeaderMessage(PeerId from, const peer::ZabMessage& m);
  void TickLeader();
  std::optional<ProposeError> CanPropose() const;
  std::optional<ProposeError> CheckReconfig(const Membership& m) const;
  std::optional<ProposeError> Propose(std::string payload, PeerId origin, uint64_t tag,
                                      std::optional<Membership> config = std::nullopt);

  // --- inputs (core.cc) ---
  void Tick();
  void Step(PeerId from, const peer::ZabMessage& m);
  void Disconnected(PeerId p);
  void Progress(PeerId p);
  void Persisted(Zxid z);
  void SnapshotInstalled(Zxid z);
  void Sync(uint64_t tag, bool lin);

  RoleChange Current() const;
  bool RoleChanged() const;
};

}  // namespace qfs::zab
