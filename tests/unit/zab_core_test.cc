// Scenario tests of the ZAB core's sync decisions with hand-made histories. The simulator
// (tests/sim) covers the protocol end to end; these pin down choices it reaches rarely.
#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <vector>

#include "consensus/zab/core.h"

namespace qfs::zab {
namespace {

class VectorLog : public LogReader {
 public:
  std::vector<Entry> entries;
  bool forgetful = false;
  bool ReadAfter(Zxid after, size_t max_entries, std::vector<Entry>* out) override {
    if (forgetful) return false;
    for (const Entry& e : entries)
      if (e.zxid > after && out->size() < max_entries) out->push_back(e);
    return true;
  }
};

peer::EpochEnd EE(uint64_t epoch, Zxid last) {
  peer::EpochEnd e;
  e.set_epoch(epoch);
  e.set_last_zxid(last);
  return e;
}

// The messages of `sent` to `to` with body `body`.
std::vector<peer::ZabMessage> Of(const std::vector<Outgoing>& sent, PeerId to,
                                 peer::ZabMessage::BodyCase body) {
  std::vector<peer::ZabMessage> out;
  for (const auto& o : sent)
    if (o.to == to && o.msg.body_case() == body) out.push_back(o.msg);
  return out;
}

peer::ZabMessage VoteFor(PeerId leader, Zxid zxid, uint64_t peer_epoch, uint64_t round) {
  peer::ZabMessage m;
  auto* v = m.mutable_vote();
  v->set_leader(leader);
  v->set_zxid(zxid);
  v->set_peer_epoch(peer_epoch);
  v->set_round(round);
  v->set_state(peer::Vote::LOOKING);
  return m;
}

// Member 1 with history (1,1..10),(3,1..5), elected by 2 and 3.
struct Fixture {
  VectorLog log;
  std::unique_ptr<Core> core;
  std::vector<Outgoing> sent;
  std::vector<Zxid> applied;

  explicit Fixture(Config cfg = {}) {
    for (uint32_t c = 1; c <= 10; c++)
      log.entries.push_back({MakeZxid(1, c), "p", 0, 0, std::nullopt});
    for (uint32_t c = 1; c <= 5; c++)
      log.entries.push_back({MakeZxid(3, c), "p", 0, 0, std::nullopt});
    cfg.self = 1;
    cfg.voters = {1, 2, 3};
    InitialState st;
    st.accepted_epoch = 3;
    st.current_epoch = 3;
    st.last_zxid = MakeZxid(3, 5);
    st.epochs = {EE(3, MakeZxid(3, 5)), EE(1, MakeZxid(1, 10))};
    core = std::make_unique<Core>(cfg, st, &log);
    Drain();
    core->Step(2, VoteFor(1, MakeZxid(3, 5), 3, 1));
    core->Step(3, VoteFor(1, MakeZxid(3, 5), 3, 1));
    Drain();
    EXPECT_EQ(core->role(), Role::kLeading);
  }
  void Drain() {
    while (core->HasReady()) {
      Ready r = core->TakeReady();
      for (auto& o : r.messages) sent.push_back(o);
      for (auto& e : r.apply) applied.push_back(e.zxid);
    }
  }
  void Ack(PeerId from, Zxid z) {
    peer::ZabMessage m;
    m.mutable_ack()->set_zxid(z);
    core->Step(from, m);
    Drain();
  }
  // `peer` (in the configuration or not) joins with the leader's whole history and is synced.
  void JoinSynced(PeerId peer) {
    Join(peer, MakeZxid(3, 5), {EE(3, MakeZxid(3, 5)), EE(1, MakeZxid(1, 10))});
    Ack(peer, MakeZxid(4, 0));
  }
  // Registers `peer` with the given history and returns what the leader sent it after its
  // ACKEPOCH.
  std::vector<peer::ZabMessage> Join(PeerId peer, Zxid last, std::vector<peer::EpochEnd> eps,
                                     Zxid floor = 0) {
    peer::ZabMessage fi;
    fi.mutable_follower_info()->set_accepted_epoch(2);
    fi.mutable_follower_info()->set_last_zxid(last);
    fi.mutable_follower_info()->set_truncate_floor(floor);
    for (auto& e : eps) *fi.mutable_follower_info()->add_epochs() = e;
    core->Step(peer, fi);
    Drain();
    peer::ZabMessage ack;
    ack.mutable_ack_epoch()->set_current_epoch(2);
    ack.mutable_ack_epoch()->set_last_zxid(last);
    sent.clear();
    core->Step(peer, ack);
    Drain();
    std::vector<peer::ZabMessage> out;
    for (auto& o : sent)
      if (o.to == peer) out.push_back(o.msg);
    return out;
  }
  // Member 2 joins with the leader's whole history and acknowledges NEWLEADER: the leader of
  // epoch 4 serves.
  void Establish() {
    Join(2, MakeZxid(3, 5), {EE(3, MakeZxid(3, 5)), EE(1, MakeZxid(1, 10))});
    core->Persisted(MakeZxid(3, 5));
    Drain();
    peer::ZabMessage nl_ack;
    nl_ack.mutable_ack()->set_zxid(MakeZxid(4, 0));
    core->Step(2, nl_ack);
    Drain();
  }
};

TEST(ZabCoreTest, TruncatesToTheLongestCommonPrefixNotToTheLeadersLastZxidBelow) {
  Fixture f;
  // The learner holds (1,1..5) and then (2,1..3) of an epoch the leader never saw. The
  // leader's last zxid below (2,3) is (1,10), but the learner lacks (1,6..10): the only correct
  // cut is (1,5), followed by (1,6..10) and (3,1..5).
  auto msgs = f.Join(2, MakeZxid(2, 3), {EE(2, MakeZxid(2, 3)), EE(1, MakeZxid(1, 5))});
  ASSERT_GE(msgs.size(), 2u);
  ASSERT_TRUE(msgs[0].has_sync_start());
  EXPECT_EQ(msgs[0].sync_start().mode(), peer::SyncStart::TRUNC);
  EXPECT_EQ(msgs[0].sync_start().zxid(), MakeZxid(1, 5));
  std::vector<Zxid> proposed;
  for (auto& m : msgs)
    if (m.has_proposal()) proposed.push_back(m.proposal().zxid());
  ASSERT_EQ(proposed.size(), 10u);
  EXPECT_EQ(proposed.front(), MakeZxid(1, 6));
  EXPECT_EQ(proposed.back(), MakeZxid(3, 5));
  EXPECT_TRUE(msgs.back().has_new_leader());
}

TEST(ZabCoreTest, DiffsALearnerThatIsAPrefix) {
  Fixture f;
  auto msgs = f.Join(2, MakeZxid(1, 8), {EE(1, MakeZxid(1, 8))});
  ASSERT_TRUE(msgs[0].has_sync_start());
  EXPECT_EQ(msgs[0].sync_start().mode(), peer::SyncStart::DIFF);
  EXPECT_EQ(msgs[0].sync_start().zxid(), MakeZxid(1, 8));
}

TEST(ZabCoreTest, SnapsWhenNoCommonPointCanBeProven) {
  Fixture f;
  // Only epoch 2 is listed (older epochs unknown): nothing provably shared.
  auto msgs = f.Join(2, MakeZxid(2, 3), {EE(2, MakeZxid(2, 3))});
  ASSERT_TRUE(msgs[0].has_sync_start());
  EXPECT_EQ(msgs[0].sync_start().mode(), peer::SyncStart::SNAP);
}

TEST(ZabCoreTest, SnapsInsteadOfATruncBelowTheLearnersFloor) {
  Fixture f;
  auto msgs = f.Join(2, MakeZxid(2, 3), {EE(2, MakeZxid(2, 3)), EE(1, MakeZxid(1, 5))},
                     /*floor=*/MakeZxid(1, 7));
  ASSERT_TRUE(msgs[0].has_sync_start());
  EXPECT_EQ(msgs[0].sync_start().mode(), peer::SyncStart::SNAP);
}

TEST(ZabCoreTest, SnapsWhenTheLogForgotOrTheDiffIsTooLong) {
  {
    Fixture f;
    f.log.forgetful = true;
    auto msgs = f.Join(2, MakeZxid(1, 8), {EE(1, MakeZxid(1, 8))});
    EXPECT_EQ(msgs[0].sync_start().mode(), peer::SyncStart::SNAP);
  }
  {
    Config cfg;
    cfg.max_diff_txns = 3;
    Fixture f(cfg);
    auto msgs = f.Join(2, MakeZxid(1, 8), {EE(1, MakeZxid(1, 8))});
    EXPECT_EQ(msgs[0].sync_start().mode(), peer::SyncStart::SNAP);
  }
}

TEST(ZabCoreTest, EpochCounterExhaustionRefusesProposalsAndForcesANewEpoch) {
  Config cfg;
  cfg.max_counter = 2;
  Fixture f(cfg);
  f.Establish();
  ASSERT_TRUE(f.core->serving());
  EXPECT_EQ(f.core->NextZxid(), MakeZxid(4, 1));
  EXPECT_FALSE(f.core->Propose("a", 1, 1));
  EXPECT_FALSE(f.core->Propose("b", 1, 2));
  EXPECT_EQ(f.core->Propose("c", 1, 3), ProposeError::kEpochExhausted);
  EXPECT_FALSE(f.core->NextZxid());
  f.Drain();
  f.core->Persisted(MakeZxid(4, 2));
  peer::ZabMessage ack;
  ack.mutable_ack()->set_zxid(MakeZxid(4, 2));
  f.core->Step(2, ack);
  Ready r = f.core->TakeReady();
  ASSERT_EQ(r.apply.size(), 2u);
  // Everything committed: the leader steps down so that a new epoch restarts the counter.
  EXPECT_EQ(f.core->role(), Role::kLooking);
}

// A snapshot that takes longer than initLimit to write and stream: the leader keeps the
// learner while the shell reports progress, and drops it once the transfer goes silent.
TEST(ZabCoreTest, SnapshotProgressKeepsASlowSnapLearnerUntilItGoesSilent) {
  Config cfg;
  cfg.init_ticks = 5;
  cfg.sync_ticks = 1000;  // the up-to-date learner 2 keeps the quorum without pings here
  Fixture f(cfg);
  f.Establish();
  ASSERT_TRUE(f.core->serving());
  auto msgs = f.Join(3, MakeZxid(2, 3), {EE(2, MakeZxid(2, 3))});  // needs a SNAP
  auto dropped = [&] {
    while (f.core->HasReady()) {
      Ready r = f.core->TakeReady();
      for (PeerId p : r.disconnect)
        if (p == 3) return true;
    }
    return false;
  };
  for (int t = 0; t < 4 * cfg.init_ticks; t++) {
    f.core->Progress(3);
    f.core->Tick();
    ASSERT_FALSE(dropped()) << "dropped at tick " << t << " while the transfer progressed";
  }
  bool gone = false;
  for (int t = 0; t < 2 * cfg.init_ticks && !gone; t++) {
    f.core->Tick();
    gone = dropped();
  }
  EXPECT_TRUE(gone) << "a silent transfer must still be bounded by initLimit";
  EXPECT_EQ(f.core->role(), Role::kLeading);
}

// Reconfiguration (docs/reconfig.md): a reconfig entry commits only with a majority of the old
// voters and one of the new; one at a time; refused without a synced majority of the new.
TEST(ZabCoreTest, ReconfigCommitsOnlyWithJointQuorumsOneAtATime) {
  Fixture f;
  f.Establish();
  f.JoinSynced(4);  // a joining server: not in {1,2,3}, learns on a follower link
  ASSERT_TRUE(f.core->serving());
  EXPECT_EQ(f.core->CheckReconfig(Membership{{1, 5, 6}, {}}), ProposeError::kNewConfigNoQuorum);
  Membership next{{1, 4, 5}, {}};
  EXPECT_FALSE(f.core->CheckReconfig(next));
  ASSERT_FALSE(f.core->ProposeReconfig("r", next, 1, 7));
  const Zxid r = MakeZxid(4, 1);
  EXPECT_EQ(f.core->ProposeReconfig("r2", next, 1, 8), ProposeError::kReconfigInProgress);
  ASSERT_TRUE(f.core->config().previous);
  f.Drain();
  f.core->Persisted(r);
  f.Drain();
  f.Ack(2, r);  // the old majority {1,2}; the new one has only 1
  EXPECT_TRUE(f.applied.empty() || f.applied.back() < r);
  f.Ack(4, r);  // {1,4} of the new voters
  ASSERT_FALSE(f.applied.empty());
  EXPECT_EQ(f.applied.back(), r);
  EXPECT_FALSE(f.core->config().previous);
  EXPECT_EQ(f.core->config().current, next);
  EXPECT_EQ(f.core->config().current_zxid, r);
  // Member 2 no longer counts; 4 does.
  ASSERT_FALSE(f.core->Propose("x", 1, 9));
  f.core->Persisted(MakeZxid(4, 2));
  f.Ack(2, MakeZxid(4, 2));
  EXPECT_EQ(f.applied.back(), r);
  f.Ack(4, MakeZxid(4, 2));
  EXPECT_EQ(f.applied.back(), MakeZxid(4, 2));
  EXPECT_EQ(f.core->role(), Role::kLeading);
}

TEST(ZabCoreTest, ARemovedLeaderCommitsThenStepsDownAndStops) {
  Fixture f;
  f.Establish();
  f.JoinSynced(4);
  Membership next{{2, 3, 4}, {}};
  ASSERT_FALSE(f.core->ProposeReconfig("r", next, 1, 7));
  const Zxid r = MakeZxid(4, 1);
  f.Drain();
  f.core->Persisted(r);
  f.Ack(2, r);
  EXPECT_TRUE(f.applied.empty() || f.applied.back() < r);
  f.sent.clear();
  f.Ack(4, r);  // old {1,2}, new {2,4}
  ASSERT_FALSE(f.applied.empty());
  EXPECT_EQ(f.applied.back(), r);
  bool commit_sent = false;
  for (auto& o : f.sent)
    if (o.to == 2 && o.msg.has_commit() && o.msg.commit().zxid() == r) commit_sent = true;
  EXPECT_TRUE(commit_sent) << "the COMMIT goes out before the leader steps down";
  EXPECT_EQ(f.core->role(), Role::kLeading);
  EXPECT_FALSE(f.core->serving());
  EXPECT_EQ(f.core->NextZxid(), std::nullopt);
  // It waits for its learners to leave (they do once the COMMIT reaches them): closing their
  // links at once could drop the COMMIT still queued on them.
  f.core->Tick();
  f.Drain();
  EXPECT_EQ(f.core->role(), Role::kLeading);
  for (PeerId p : {2, 3, 4}) f.core->Disconnected(p);
  f.core->Tick();
  f.Drain();
  EXPECT_EQ(f.core->role(), Role::kLooking);
  EXPECT_TRUE(f.core->removed());
}

TEST(ZabCoreTest, ARemovedLeaderWaitsForItsLearnersAtMostSyncLimit) {
  Fixture f;
  f.Establish();
  f.JoinSynced(4);
  Membership next{{2, 3, 4}, {}};
  ASSERT_FALSE(f.core->ProposeReconfig("r", next, 1, 7));
  const Zxid r = MakeZxid(4, 1);
  f.Drain();
  f.core->Persisted(r);
  f.Ack(2, r);
  f.Ack(4, r);
  ASSERT_FALSE(f.applied.empty());
  EXPECT_EQ(f.applied.back(), r);
  Config c;
  for (int i = 1; i < c.sync_ticks; i++) {
    f.core->Tick();
    f.Drain();
    ASSERT_EQ(f.core->role(), Role::kLeading) << "tick " << i;
  }
  f.core->Tick();
  f.Drain();
  EXPECT_EQ(f.core->role(), Role::kLooking);
  EXPECT_TRUE(f.core->removed());
}

// A reconfig entry in the log that is not known committed: elections need both majorities.
TEST(ZabCoreTest, APendingReconfigInTheLogNeedsJointQuorumsToElect) {
  VectorLog log;
  for (uint32_t c = 1; c <= 3; c++)
    log.entries.push_back({MakeZxid(1, c), "p", 0, 0, std::nullopt});
  log.entries.back().config = Membership{{1, 4, 5}, {}};
  Config cfg;
  cfg.self = 1;
  cfg.voters = {1, 2, 3};
  InitialState st;
  st.accepted_epoch = 1;
  st.current_epoch = 1;
  st.last_zxid = MakeZxid(1, 3);
  st.epochs = {EE(1, MakeZxid(1, 3))};
  st.log_configs = {{MakeZxid(1, 3), Membership{{1, 4, 5}, {}}}};
  Core core(cfg, st, &log);
  ASSERT_TRUE(core.config().previous);
  auto drain = [&] {
    while (core.HasReady()) core.TakeReady();
  };
  drain();
  core.Step(2, VoteFor(1, MakeZxid(1, 3), 1, 1));
  core.Step(3, VoteFor(1, MakeZxid(1, 3), 1, 1));
  for (int i = 0; i < 10; i++) core.Tick();
  drain();
  EXPECT_EQ(core.role(), Role::kLooking) << "a majority of the old voters alone elected";
  core.Step(4, VoteFor(1, MakeZxid(1, 3), 1, 1));
  for (int i = 0; i < 3; i++) core.Tick();
  drain();
  EXPECT_EQ(core.role(), Role::kLeading);
}

// A joining server outside the configuration follows the established leader on a follower
// link (its acks count once a reconfig makes it a voter).
TEST(ZabCoreTest, AJoiningServerFollowsTheLeaderWithoutVoting) {
  VectorLog log;
  Config cfg;
  cfg.self = 4;
  cfg.voters = {1, 2, 3};
  Core core(cfg, InitialState{}, &log);
  std::vector<Outgoing> sent;
  auto drain = [&] {
    while (core.HasReady())
      for (auto& o : core.TakeReady().messages) sent.push_back(o);
  };
  drain();
  for (auto& o : sent) EXPECT_EQ(o.msg.vote().leader(), 0u) << "a joiner proposes nobody";
  auto m = VoteFor(1, 0, 1, 1);
  m.mutable_vote()->set_state(peer::Vote::LEADING);
  core.Step(1, m);
  m.mutable_vote()->set_state(peer::Vote::FOLLOWING);
  core.Step(2, m);
  sent.clear();
  drain();
  EXPECT_EQ(core.role(), Role::kFollowing);
  ASSERT_FALSE(sent.empty());
  ASSERT_TRUE(sent.back().msg.has_follower_info());
  EXPECT_FALSE(sent.back().msg.follower_info().observer());
}

// Seed 300676: a member that is no voter in its own view (it has not seen the pending entry
// that makes it one) answers a looking vote from a member it does not know as a voter, with
// the best vote it has seen for a candidate it may elect; a leader-elect of the pending
// configuration needs that vote for the new majority.
TEST(ZabCoreTest, ANonVoterAnswersALookingOutsider) {
  VectorLog log;
  Config cfg;
  cfg.self = 5;
  cfg.voters = {1, 2, 3};
  Core core(cfg, InitialState{}, &log);
  std::vector<Outgoing> sent;
  auto drain = [&] {
    while (core.HasReady())
      for (auto& o : core.TakeReady().messages) sent.push_back(o);
  };
  drain();
  core.Step(1, VoteFor(2, MakeZxid(3, 26), 3, 3));  // voter 1 backs 2
  sent.clear();
  drain();
  core.Step(4, VoteFor(4, MakeZxid(3, 26), 3, 3));  // 4 is unknown here
  sent.clear();
  drain();
  bool answered = false;
  for (auto& o : sent)
    if (o.to == 4 && o.msg.has_vote()) {
      answered = true;
      EXPECT_EQ(o.msg.vote().leader(), 2u) << "4 is no voter of the committed configuration";
      EXPECT_EQ(o.msg.vote().round(), 3u);
    }
  EXPECT_TRUE(answered) << "the outsider's vote was not answered";
  // A higher round from an outsider is taken: no endless "come to my round" exchange.
  core.Step(4, VoteFor(4, MakeZxid(3, 26), 3, 7));
  sent.clear();
  drain();
  for (auto& o : sent)
    if (o.to == 4 && o.msg.has_vote()) {
      EXPECT_EQ(o.msg.vote().round(), 7u);
    }
}

// Seed 2008455: while a reconfig entry is pending, only a voter of the committed configuration
// may be elected. Member 2 holds the entry adding 3, 4 and 6; member 1, an old voter whose
// vote every leader needs, has not seen it and would never vote for 6. So 2 keeps its own
// vote against 6's better key.
TEST(ZabCoreTest, ANewVoterOfAPendingEntryIsNotElected) {
  VectorLog log;
  log.entries.push_back({MakeZxid(9, 1), "p", 0, 0, std::nullopt});
  log.entries.push_back({MakeZxid(9, 2), "p", 0, 0, Membership{{1, 2, 3, 4, 6}, {5}}});
  Config cfg;
  cfg.self = 2;
  cfg.voters = {1, 2};
  cfg.observers = {4};
  InitialState st;
  st.accepted_epoch = 9;
  st.current_epoch = 9;
  st.last_zxid = MakeZxid(9, 2);
  st.epochs = {EE(9, MakeZxid(9, 2))};
  st.log_configs = {{MakeZxid(9, 2), Membership{{1, 2, 3, 4, 6}, {5}}}};
  Core core(cfg, st, &log);
  ASSERT_TRUE(core.config().previous);
  std::vector<Outgoing> sent;
  auto drain = [&] {
    while (core.HasReady())
      for (auto& o : core.TakeReady().messages) sent.push_back(o);
  };
  drain();
  core.Step(6, VoteFor(6, MakeZxid(9, 2), 9, 1));
  core.Step(3, VoteFor(6, MakeZxid(9, 2), 9, 1));
  sent.clear();
  drain();
  for (auto& o : sent)
    if (o.msg.has_vote()) {
      EXPECT_EQ(o.msg.vote().leader(), 2u) << "adopted 6 to " << o.to;
    }
  // With the old voter 1 and a majority of the new voters behind it, 2 leads.
  core.Step(1, VoteFor(2, MakeZxid(9, 2), 9, 1));
  core.Step(3, VoteFor(2, MakeZxid(9, 2), 9, 1));
  core.Step(6, VoteFor(2, MakeZxid(9, 2), 9, 1));
  for (int i = 0; i < 3; i++) core.Tick();
  drain();
  EXPECT_EQ(core.role(), Role::kLeading);
}

// Seed 2031112: a member removed by a configuration that a later one reverses (it was added
// back before it even learnt of its removal) is dormant, not gone: it asks the members of the
// configuration that removed it, and a configuration that names it again readmits it.
// Member 3 of {1, 2, 3}, a configuration of a reconfig entry at 3:5 (a static one would not make
// it a removed member: see AStaticConfigurationNamingItselfMakesAJoinerNotARemovedMember).
struct Member3 {
  VectorLog log;
  std::unique_ptr<Core> core;
  std::vector<Outgoing> sent;
  Member3() {
    Config cfg;
    cfg.self = 3;
    cfg.voters = {1, 2, 3};
    InitialState init;
    init.config = ConfigState{};
    init.config->current.voters = {1, 2, 3};
    init.config->current_zxid = MakeZxid(3, 5);
    core = std::make_unique<Core>(cfg, init, &log);
    Drain();
  }
  void Drain() {
    while (core->HasReady())
      for (auto& o : core->TakeReady().messages) sent.push_back(o);
  }
};

TEST(ZabCoreTest, ARemovedMemberIsReadmittedByALaterConfiguration) {
  Member3 m3;
  Core& core = *m3.core;
  std::vector<Outgoing>& sent = m3.sent;
  auto drain = [&] { m3.Drain(); };
  auto told = [](Zxid config_zxid, std::vector<PeerId> voters) {
    peer::ZabMessage m;
    auto* v = m.mutable_vote();
    v->set_state(peer::Vote::OBSERVING);
    v->set_round(1);
    v->set_config_zxid(config_zxid);
    for (PeerId p : voters) v->mutable_config()->add_voters(p);
    return m;
  };
  core.Step(1, told(MakeZxid(4, 11), {1, 2}));
  drain();
  ASSERT_TRUE(core.removed());
  sent.clear();
  for (int i = 0; i < 100; i++) core.Tick();
  drain();
  std::vector<PeerId> asked;
  for (auto& o : sent)
    if (o.msg.has_vote()) {
      asked.push_back(o.to);
      EXPECT_EQ(o.msg.vote().leader(), 0u) << "a removed member backs nobody";
    }
  std::sort(asked.begin(), asked.end());
  asked.erase(std::unique(asked.begin(), asked.end()), asked.end());
  EXPECT_EQ(asked, (std::vector<PeerId>{1, 2})) << "a removed member asks its last members";
  core.Step(2, told(MakeZxid(4, 11), {1, 2}));  // the same configuration: still removed
  drain();
  EXPECT_TRUE(core.removed());
  core.Step(2, told(MakeZxid(4, 12), {1, 2, 3}));
  sent.clear();
  drain();
  EXPECT_FALSE(core.removed());
  EXPECT_EQ(core.role(), Role::kLooking);
  EXPECT_EQ(core.config().current_zxid, MakeZxid(4, 12));
  bool voted = false;
  for (auto& o : sent)
    if (o.msg.has_vote() && o.msg.vote().leader() == 3) voted = true;
  EXPECT_TRUE(voted) << "readmitted, it looks for a leader as a voter again";
}

// A joining server is started with the ensemble's lines plus its own (docs/reconfig.md), a
// static configuration of version 0 that names it. Told of a newer committed configuration
// that does not, it is a joining server (it follows the leader as a non-voting learner), not a
// removed member gone dormant (reconfig_3 grow-many after earlier reconfigs).
TEST(ZabCoreTest, AStaticConfigurationNamingItselfMakesAJoinerNotARemovedMember) {
  VectorLog log;
  Config cfg;
  cfg.self = 4;
  cfg.voters = {1, 2, 3, 4};
  Core core(cfg, InitialState{}, &log);
  while (core.HasReady()) core.TakeReady();
  auto vote = [](peer::Vote::State st) {
    peer::ZabMessage m = VoteFor(1, MakeZxid(4, 11), 4, 1);
    m.mutable_vote()->set_state(st);
    m.mutable_vote()->set_config_zxid(MakeZxid(4, 11));
    for (PeerId p : {1, 2, 3}) m.mutable_vote()->mutable_config()->add_voters(p);
    return m;
  };
  core.Step(1, vote(peer::Vote::LEADING));
  while (core.HasReady()) core.TakeReady();
  EXPECT_FALSE(core.removed());
  EXPECT_EQ(core.config().current_zxid, MakeZxid(4, 11));
  core.Step(2, vote(peer::Vote::FOLLOWING));
  std::vector<Outgoing> sent;
  while (core.HasReady())
    for (auto& o : core.TakeReady().messages) sent.push_back(o);
  EXPECT_EQ(core.role(), Role::kFollowing);
  EXPECT_EQ(core.leader(), 1u);
  ASSERT_FALSE(sent.empty());
  EXPECT_TRUE(sent.back().msg.has_follower_info());
}

// Seed 300316: a restarted member counts its whole log as applied, a pending reconfig entry
// included; a commit at or above that entry, though not above what it applied, marks the
// entry committed.
TEST(ZabCoreTest, ACommitBelowWhatARestartAppliedStillCommitsThePendingConfig) {
  VectorLog log;
  for (uint32_t c = 1; c <= 3; c++)
    log.entries.push_back({MakeZxid(1, c), "p", 0, 0, std::nullopt});
  log.entries[0].config = Membership{{1, 2, 3}, {4}};
  Config cfg;
  cfg.self = 1;
  cfg.voters = {1, 2, 3};
  InitialState st;
  st.accepted_epoch = 1;
  st.current_epoch = 1;
  st.last_zxid = MakeZxid(1, 3);
  st.epochs = {EE(1, MakeZxid(1, 3))};
  st.log_configs = {{MakeZxid(1, 1), Membership{{1, 2, 3}, {4}}}};
  Core core(cfg, st, &log);
  ASSERT_TRUE(core.config().previous);
  auto drain = [&] {
    while (core.HasReady()) core.TakeReady();
  };
  drain();
  core.Step(2, VoteFor(1, MakeZxid(1, 3), 1, 1));
  core.Step(3, VoteFor(1, MakeZxid(1, 3), 1, 1));
  for (int i = 0; i < 10; i++) core.Tick();
  drain();
  ASSERT_EQ(core.role(), Role::kLeading);
  peer::ZabMessage fi;
  fi.mutable_follower_info()->set_accepted_epoch(1);
  fi.mutable_follower_info()->set_last_zxid(MakeZxid(1, 3));
  *fi.mutable_follower_info()->add_epochs() = EE(1, MakeZxid(1, 3));
  core.Step(2, fi);
  drain();
  peer::ZabMessage ack;
  ack.mutable_ack_epoch()->set_current_epoch(1);
  ack.mutable_ack_epoch()->set_last_zxid(MakeZxid(1, 3));
  core.Step(2, ack);
  core.Persisted(MakeZxid(1, 3));
  drain();
  peer::ZabMessage nl_ack;
  nl_ack.mutable_ack()->set_zxid(MakeZxid(2, 0));
  core.Step(2, nl_ack);
  drain();
  ASSERT_TRUE(core.serving());
  EXPECT_FALSE(core.config().previous) << "the entry at 1:1 stayed pending after the commit";
}

// Seed 401644: a member that missed a reconfig, whose only known voter has since been removed,
// learns the committed configuration from that member's vote and looks among its voters.
TEST(ZabCoreTest, AVoteCarriesTheCommittedConfiguration) {
  VectorLog log;
  Config cfg;
  cfg.self = 2;
  cfg.voters = {5};
  cfg.observers = {2};
  Core core(cfg, InitialState{}, &log);
  std::vector<Outgoing> sent;
  auto drain = [&] {
    while (core.HasReady())
      for (auto& o : core.TakeReady().messages) sent.push_back(o);
  };
  drain();
  peer::ZabMessage m;
  auto* v = m.mutable_vote();
  v->set_state(peer::Vote::OBSERVING);
  v->set_config_zxid(MakeZxid(1, 48));
  for (PeerId p : {3, 4, 6}) v->mutable_config()->add_voters(p);
  v->mutable_config()->add_observers(2);
  sent.clear();
  core.Step(5, m);
  drain();
  EXPECT_EQ(core.config().current_zxid, MakeZxid(1, 48));
  EXPECT_EQ(core.config().current.voters, (std::vector<PeerId>{3, 4, 6}));
  EXPECT_FALSE(core.config().previous);
  std::vector<PeerId> asked;
  for (auto& o : sent)
    if (o.msg.has_vote()) asked.push_back(o.to);
  std::sort(asked.begin(), asked.end());
  EXPECT_EQ(asked, (std::vector<PeerId>{3, 4, 6}));
}

// Seed 651733: only voters of the committed configuration may be elected, so the leader-elect
// can be behind a new voter of the pending entry that holds txns proposed while it was pending.
// Zab's discovery takes the newest history of the quorum: the leader asks that learner for it,
// cuts what it holds that the learner does not (it cannot have committed) and appends the
// rest, instead of looking again forever.
TEST(ZabCoreTest, ALeaderElectBehindALearnerOfItsQuorumTakesItsHistory) {
  VectorLog log;
  for (uint32_t c = 1; c <= 3; c++)
    log.entries.push_back({MakeZxid(1, c), "p", 0, 0, std::nullopt});
  log.entries.back().config = Membership{{1, 2, 3}, {}};
  log.entries.push_back({MakeZxid(2, 1), "stale", 0, 0, std::nullopt});
  Config cfg;
  cfg.self = 1;
  cfg.voters = {1};
  InitialState st;
  st.accepted_epoch = 2;
  st.current_epoch = 2;
  st.last_zxid = MakeZxid(2, 1);
  st.epochs = {EE(2, MakeZxid(2, 1)), EE(1, MakeZxid(1, 3))};
  st.log_configs = {{MakeZxid(1, 3), Membership{{1, 2, 3}, {}}}};
  Core core(cfg, st, &log);
  ASSERT_TRUE(core.config().previous);
  std::vector<Outgoing> sent;
  std::vector<Ready> readies;
  auto drain = [&] {
    while (core.HasReady()) {
      readies.push_back(core.TakeReady());
      for (auto& o : readies.back().messages) sent.push_back(o);
    }
  };
  drain();
  core.Step(2, VoteFor(1, MakeZxid(2, 1), 2, 1));  // the new voter backs the only candidate
  for (int i = 0; i < 3; i++) core.Tick();
  drain();
  ASSERT_EQ(core.role(), Role::kLeading);
  // Member 2 followed a leader of epoch 3 (its history is newer: current epoch 3).
  auto join = [&](PeerId p, uint64_t cur, std::vector<peer::EpochEnd> eps, bool again = false) {
    peer::ZabMessage fi;
    fi.mutable_follower_info()->set_accepted_epoch(3);
    fi.mutable_follower_info()->set_last_zxid(eps[0].last_zxid());
    for (auto& e : eps) *fi.mutable_follower_info()->add_epochs() = e;
    core.Step(p, fi);
    peer::ZabMessage ack;
    ack.mutable_ack_epoch()->set_current_epoch(cur);
    ack.mutable_ack_epoch()->set_last_zxid(eps[0].last_zxid());
    ack.mutable_ack_epoch()->set_already_accepted(again);
    core.Step(p, ack);
  };
  sent.clear();
  readies.clear();
  // Member 3 is behind (it had accepted the epoch before: its ack does not count toward the
  // quorum, but it is synced with the others); member 2 followed a leader of epoch 3.
  join(3, 1, {EE(1, MakeZxid(1, 2))}, true);
  join(2, 3, {EE(3, MakeZxid(3, 2)), EE(1, MakeZxid(1, 3))});
  drain();
  EXPECT_EQ(core.role(), Role::kLeading) << "it looked again instead of taking the history";
  auto asked = Of(sent, 2, peer::ZabMessage::kHistoryRequest);
  ASSERT_EQ(asked.size(), 1u);
  EXPECT_EQ(asked[0].history_request().after(), MakeZxid(1, 3)) << "the newest common point";
  peer::ZabMessage reply;
  auto* r = reply.mutable_history_reply();
  r->set_ok(true);
  r->set_after(MakeZxid(1, 3));
  r->set_current_epoch(3);
  r->set_last_zxid(MakeZxid(3, 2));
  for (uint32_t c = 1; c <= 2; c++) {
    auto* e = r->add_entries();
    e->set_zxid(MakeZxid(3, c));
    e->set_payload("new");
  }
  sent.clear();
  readies.clear();
  core.Step(2, reply);
  drain();
  ASSERT_FALSE(readies.empty());
  EXPECT_EQ(readies[0].truncate_after, std::optional<Zxid>(MakeZxid(1, 3)));
  ASSERT_EQ(readies[0].append.size(), 2u);
  EXPECT_EQ(readies[0].append[1].zxid, MakeZxid(3, 2));
  EXPECT_EQ(core.last_logged(), MakeZxid(3, 2));
  auto starts = Of(sent, 2, peer::ZabMessage::kSyncStart);
  ASSERT_EQ(starts.size(), 1u);
  EXPECT_EQ(starts[0].sync_start().mode(), peer::SyncStart::DIFF);
  EXPECT_EQ(starts[0].sync_start().zxid(), MakeZxid(3, 2)) << "the learner is synced as is";
  // Member 3 is DIFFed in the same Ready as the cut: the shell's log still holds the cut 2:1
  // then, and it must not be sent (seed 3625411).
  std::vector<Zxid> diff;
  bool in_sync = false;
  for (const auto& o : sent) {
    if (o.to != 3) continue;
    if (o.msg.has_sync_start()) {
      in_sync = true;
      EXPECT_EQ(o.msg.sync_start().mode(), peer::SyncStart::DIFF);
    } else if (in_sync && o.msg.has_proposal()) {
      diff.push_back(o.msg.proposal().zxid());
    }
  }
  EXPECT_EQ(diff, (std::vector<Zxid>{MakeZxid(1, 3), MakeZxid(3, 1), MakeZxid(3, 2)}));
  // The new epoch is persisted only once the taken history is durable.
  for (auto& rd : readies) EXPECT_FALSE(rd.current_epoch);
  readies.clear();
  core.Persisted(MakeZxid(3, 2));
  drain();
  ASSERT_FALSE(readies.empty());
  EXPECT_EQ(readies[0].current_epoch, std::optional<uint64_t>(4));
  peer::ZabMessage nl_ack;
  nl_ack.mutable_ack()->set_zxid(MakeZxid(4, 0));
  core.Step(2, nl_ack);
  drain();
  EXPECT_TRUE(core.serving());
  EXPECT_EQ(core.last_committed(), MakeZxid(3, 2));
}

// A learner that cannot send its history (too long, or forgotten) answers ok=false: the
// leader-elect looks again, as it did before it could take a history.
TEST(ZabCoreTest, ALearnerThatCannotSendItsHistorySendsTheLeaderLooking) {
  Fixture f;
  peer::ZabMessage fi;
  fi.mutable_follower_info()->set_accepted_epoch(3);
  fi.mutable_follower_info()->set_last_zxid(MakeZxid(3, 9));
  *fi.mutable_follower_info()->add_epochs() = EE(3, MakeZxid(3, 9));
  f.core->Step(2, fi);
  peer::ZabMessage ack;
  ack.mutable_ack_epoch()->set_current_epoch(3);
  ack.mutable_ack_epoch()->set_last_zxid(MakeZxid(3, 9));
  f.sent.clear();
  f.core->Step(2, ack);
  f.Drain();
  auto asked = Of(f.sent, 2, peer::ZabMessage::kHistoryRequest);
  ASSERT_EQ(asked.size(), 1u);
  EXPECT_EQ(asked[0].history_request().after(), MakeZxid(3, 5));
  EXPECT_EQ(f.core->role(), Role::kLeading);
  peer::ZabMessage reply;
  reply.mutable_history_reply()->set_after(MakeZxid(3, 5));
  reply.mutable_history_reply()->set_current_epoch(3);
  reply.mutable_history_reply()->set_last_zxid(MakeZxid(3, 9));
  f.core->Step(2, reply);
  f.Drain();
  EXPECT_EQ(f.core->role(), Role::kLooking);
  EXPECT_EQ(f.core->last_logged(), MakeZxid(3, 5));
}

// A learner asked for its history sends its entries after the common point.
TEST(ZabCoreTest, ALearnerSendsItsHistoryToTheLeaderElect) {
  VectorLog log;
  for (uint32_t c = 1; c <= 4; c++)
    log.entries.push_back({MakeZxid(1, c), "p", 0, 0, std::nullopt});
  Config cfg;
  cfg.self = 2;
  cfg.voters = {1, 2, 3};
  InitialState st;
  st.accepted_epoch = 1;
  st.current_epoch = 1;
  st.last_zxid = MakeZxid(1, 4);
  st.epochs = {EE(1, MakeZxid(1, 4))};
  Core core(cfg, st, &log);
  std::vector<Outgoing> sent;
  auto drain = [&] {
    while (core.HasReady())
      for (auto& o : core.TakeReady().messages) sent.push_back(o);
  };
  drain();
  auto leading = VoteFor(1, MakeZxid(1, 2), 1, 1);
  leading.mutable_vote()->set_state(peer::Vote::LEADING);
  core.Step(1, leading);
  auto following = VoteFor(1, MakeZxid(1, 2), 1, 1);
  following.mutable_vote()->set_state(peer::Vote::FOLLOWING);
  core.Step(3, following);
  drain();
  ASSERT_EQ(core.role(), Role::kFollowing);
  peer::ZabMessage ne;
  ne.mutable_new_epoch()->set_epoch(2);
  core.Step(1, ne);
  peer::ZabMessage req;
  req.mutable_history_request()->set_after(MakeZxid(1, 2));
  sent.clear();
  core.Step(1, req);
  drain();
  auto replies = Of(sent, 1, peer::ZabMessage::kHistoryReply);
  ASSERT_EQ(replies.size(), 1u);
  const auto& r = replies[0].history_reply();
  EXPECT_TRUE(r.ok());
  EXPECT_EQ(r.after(), MakeZxid(1, 2));
  EXPECT_EQ(r.last_zxid(), MakeZxid(1, 4));
  ASSERT_EQ(r.entries_size(), 2);
  EXPECT_EQ(r.entries(0).zxid(), MakeZxid(1, 3));
  EXPECT_EQ(core.role(), Role::kFollowing) << "it waits for the sync as before";
}

// Seed 3089466: a removed member is readmitted, as a joining server, by a pending entry that
// names it again: the leader-elect holding the entry needs its vote for the new majority.
TEST(ZabCoreTest, ARemovedMemberIsReadmittedByAPendingEntryNamingIt) {
  Member3 m3;
  Core& core = *m3.core;
  std::vector<Outgoing>& sent = m3.sent;
  auto drain = [&] { m3.Drain(); };
  auto told = [](std::vector<PeerId> pending) {
    peer::ZabMessage m;
    auto* v = m.mutable_vote();
    v->set_state(peer::Vote::LOOKING);
    v->set_leader(1);
    v->set_round(4);
    v->set_config_zxid(MakeZxid(4, 11));
    for (PeerId p : {1, 2}) v->mutable_config()->add_voters(p);
    if (!pending.empty()) {
      v->set_pending_zxid(MakeZxid(5, 1));
      for (PeerId p : pending) v->mutable_pending()->add_voters(p);
    }
    return m;
  };
  core.Step(1, told({}));
  drain();
  ASSERT_TRUE(core.removed());
  core.Step(1, told({1, 2, 4}));  // a pending entry that does not name it
  drain();
  EXPECT_TRUE(core.removed());
  core.Step(1, told({1, 2, 3}));
  sent.clear();
  drain();
  EXPECT_FALSE(core.removed());
  EXPECT_EQ(core.role(), Role::kLooking);
  EXPECT_EQ(core.config().current_zxid, MakeZxid(4, 11)) << "its committed view is unchanged";
  // A joining server: it backs the leader-elect it hears of, and follows it once it leads.
  core.Step(1, told({1, 2, 3}));
  drain();
  bool backs = false;
  for (auto& o : sent)
    if (o.to == 1 && o.msg.has_vote() && o.msg.vote().leader() == 1) backs = true;
  EXPECT_TRUE(backs) << "it did not answer the leader-elect with a vote for it";
  auto leading = told({1, 2, 3});
  leading.mutable_vote()->set_state(peer::Vote::LEADING);
  core.Step(1, leading);
  leading.mutable_vote()->set_state(peer::Vote::FOLLOWING);
  core.Step(2, leading);
  drain();
  EXPECT_EQ(core.role(), Role::kFollowing);
  EXPECT_EQ(core.leader(), 1u);
}

}  // namespace
}  // namespace qfs::zab
