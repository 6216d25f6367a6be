// Quotas (docs/quotas.md): ZooKeeper's StatsTrack text, the usage kept in the stat nodes by
// apply (create, delete, setData, append, multi, session close, a quota set on an existing
// subtree, snapshots), soft-limit crossings, and hard limits in prepare.
#include "daemon/tree/quota.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <memory>
#include <string>
#include <vector>

#include "daemon/tree/data_tree.h"
#include "daemon/tree/prepare.h"

namespace qfs::tree {
namespace {

TEST(StatsTrackTest, FormatsAsZooKeeper) {
  StatsTrack t;
  t.Set(StatsTrack::kCount, 0);
  t.Set(StatsTrack::kBytes, 0);
  EXPECT_EQ(t.ToString(), "count=0,bytes=0");
  t.Set(StatsTrack::kCountHard, 10);
  t.Set(StatsTrack::kBytesHard, -1);
  EXPECT_EQ(t.ToString(), "count=0,bytes=0=;byteHardLimit=-1;countHardLimit=10");
  EXPECT_EQ(StatsTrack().ToString(), "count=-1,bytes=-1");
}

TEST(StatsTrackTest, ParsesWhatZooKeeperParses) {
  auto t = StatsTrack::Parse("count=3,bytes=-1=;byteHardLimit=20;countHardLimit=-1");
  ASSERT_TRUE(t);
  EXPECT_EQ(t->count(), 3);
  EXPECT_EQ(t->bytes(), -1);
  EXPECT_EQ(t->Get(StatsTrack::kBytesHard), 20);
  EXPECT_EQ(t->ToString(), "count=3,bytes=-1=;byteHardLimit=20;countHardLimit=-1");
  // Runs of separators, an empty value ("count==5" reads -1), trailing separators, '+', "".
  t = StatsTrack::Parse("count==5;;,bytes=+7;,");
  ASSERT_TRUE(t);
  EXPECT_EQ(t->count(), -1);
  EXPECT_EQ(t->bytes(), 7);
  t = StatsTrack::Parse("");
  ASSERT_TRUE(t);
  EXPECT_EQ(t->count(), -1);
  // What makes ZooKeeper's parser throw.
  for (const char* bad : {",count=1", "count", "count=", "count=x", "count=1,bytes", "=",
                          "count=99999999999999999999"}) {
    EXPECT_FALSE(StatsTrack::Parse(bad)) << bad;
  }
}

TEST(StatsTrackTest, HardLimitRule) {
  StatsTrack limits = *StatsTrack::Parse("count=2,bytes=5=;byteHardLimit=10;countHardLimit=3");
  StatsTrack used = *StatsTrack::Parse("count=3,bytes=10");
  EXPECT_EQ(CheckQuotaLimits(limits, used, {1, 0}), Err::kQuotaExceeded);
  EXPECT_EQ(CheckQuotaLimits(limits, used, {0, 1}), Err::kQuotaExceeded);
  EXPECT_EQ(CheckQuotaLimits(limits, used, {0, 0}), Err::kOk);    // nothing changes
  EXPECT_EQ(CheckQuotaLimits(limits, used, {-1, -1}), Err::kOk);  // back at the limits
  // Soft limits alone never refuse.
  StatsTrack soft = *StatsTrack::Parse("count=1,bytes=1");
  EXPECT_EQ(CheckQuotaLimits(soft, used, {5, 5}), Err::kOk);
}

// A tree and a preparer; requests are prepared and applied at once unless asked not to.
class QuotaTreeTest : public ::testing::Test {
 protected:
  explicit QuotaTreeTest(bool enforce = true) {
    TreeOptions o;
    o.enforce_quota = enforce;
    tree_ = std::make_unique<DataTree>(o);
    prep_ = std::make_unique<Preparer>(*tree_);
  }

  static Op Create(std::string path, std::string data = "",
                   CreateMode mode = CreateMode::kPersistent) {
    Op op;
    op.path = std::move(path);
    op.data = std::move(data);
    op.mode = mode;
    op.acl = OpenAcl();
    return op;
  }
  static Op Other(OpType type, std::string path, std::string data = "") {
    Op op;
    op.type = type;
    op.path = std::move(path);
    op.data = std::move(data);
    return op;
  }

  // Prepares; applies unless `hold` (then the txn waits in held_).
  Err Run(Request r, bool hold = false, ApplyResult* out = nullptr) {
    ++zxid_;
    Prepared p = prep_->Prepare(r, zxid_, 1000 + zxid_);
    if (p.err != Err::kOk) return p.err;
    held_.push_back(*p.txn);
    if (!hold) ApplyHeld(out);
    return Err::kOk;
  }
  void ApplyHeld(ApplyResult* out = nullptr) {
    for (const txn::Txn& t : held_) {
      ApplyResult r = tree_->Apply(t);
      EXPECT_EQ(tree_->digest(), tree_->ComputeDigest());
      if (out) *out = r;
      prep_->Applied(t.zxid());
    }
    held_.clear();
  }
  Err Do(Op op, int64_t session = 0, bool hold = false) {
    Request r;
    r.session_id = session;
    r.ops.push_back(std::move(op));
    return Run(std::move(r), hold);
  }
  Err Multi(std::vector<Op> ops) {
    Request r;
    r.type = RequestType::kMulti;
    r.ops = std::move(ops);
    return Run(std::move(r));
  }
  // What zkCli's setquota does for a new quota.
  void SetQuota(const std::string& path, const std::string& limits) {
    std::string q(kQuotaTree);
    for (size_t i = 1; i < path.size();) {
      size_t j = std::min(path.find('/', i), path.size());
      q += "/" + path.substr(i, j - i);
      Err e = Do(Create(q));
      ASSERT_TRUE(e == Err::kOk || e == Err::kNodeExists) << q;
      i = j + 1;
    }
    ASSERT_EQ(Do(Create(LimitPath(path), limits)), Err::kOk);
    ASSERT_EQ(Do(Create(StatPath(path), "count=0,bytes=0")), Err::kOk);
  }
  std::string Usage(const std::string& path) {
    std::string d;
    EXPECT_EQ(tree_->GetData(StatPath(path), &d, nullptr), Err::kOk);
    return d;
  }

  std::unique_ptr<DataTree> tree_;
  std::unique_ptr<Preparer> prep_;
  std::vector<txn::Txn> held_;
  int64_t zxid_ = 0;
};

class QuotaNotEnforcedTest : public QuotaTreeTest {
 protected:
  QuotaNotEnforcedTest() : QuotaTreeTest(false) {}
};

TEST_F(QuotaTreeTest, UsageOfAnExistingSubtreeAndEveryWrite) {
  ASSERT_EQ(Do(Create("/a", "12")), Err::kOk);
  ASSERT_EQ(Do(Create("/a/b", "345")), Err::kOk);
  ASSERT_EQ(Do(Create("/ab", "not under /a")), Err::kOk);
  SetQuota("/a", "count=100,bytes=-1");
  EXPECT_EQ(Usage("/a"), "count=2,bytes=5");
  EXPECT_EQ(tree_->QuotaRootOf("/a/b/c"), "/a");
  EXPECT_EQ(tree_->QuotaRootOf("/ab"), std::nullopt);
  Stat st0;
  ASSERT_EQ(tree_->Exists(StatPath("/a"), &st0), Err::kOk);

  ASSERT_EQ(Do(Create("/a/b/c", "6789")), Err::kOk);
  EXPECT_EQ(Usage("/a"), "count=3,bytes=9");
  ASSERT_EQ(Do(Other(OpType::kSetData, "/a/b", "x")), Err::kOk);
  EXPECT_EQ(Usage("/a"), "count=3,bytes=7");
  ASSERT_EQ(Do(Other(OpType::kAppend, "/a/b", "yz")), Err::kOk);
  EXPECT_EQ(Usage("/a"), "count=3,bytes=9");
  ASSERT_EQ(Do(Other(OpType::kDelete, "/a/b/c")), Err::kOk);
  EXPECT_EQ(Usage("/a"), "count=2,bytes=5");
  ASSERT_EQ(Multi({Create("/a/m", "1"), Other(OpType::kSetData, "/a", ""),
                   Other(OpType::kDelete, "/a/m")}),
            Err::kOk);
  EXPECT_EQ(Usage("/a"), "count=2,bytes=3");
  ASSERT_EQ(Do(Other(OpType::kSetData, "/ab", "elsewhere")), Err::kOk);
  EXPECT_EQ(Usage("/a"), "count=2,bytes=3");

  // As ZooKeeper: the stat node's data changes, its version and mzxid do not.
  Stat st;
  ASSERT_EQ(tree_->Exists(StatPath("/a"), &st), Err::kOk);
  EXPECT_EQ(st.version, st0.version);
  EXPECT_EQ(st.mzxid, st0.mzxid);
  EXPECT_EQ(st.data_length, static_cast<int32_t>(Usage("/a").size()));

  // Ephemerals leave with their session.
  Request cs;
  cs.type = RequestType::kCreateSession;
  cs.session_id = 77;
  cs.session_timeout_ms = 10000;
  ASSERT_EQ(Run(cs), Err::kOk);
  ASSERT_EQ(Do(Create("/a/e1", "eph", CreateMode::kEphemeral), 77), Err::kOk);
  ASSERT_EQ(Do(Create("/a/e2", "", CreateMode::kEphemeralSequential), 77), Err::kOk);
  EXPECT_EQ(Usage("/a"), "count=4,bytes=6");
  Request close;
  close.type = RequestType::kCloseSession;
  close.session_id = 77;
  ASSERT_EQ(Run(close), Err::kOk);
  EXPECT_EQ(Usage("/a"), "count=2,bytes=3");

  // The quota'd node itself counts; its deletion leaves the quota with zero usage.
  ASSERT_EQ(Do(Other(OpType::kDelete, "/a/b")), Err::kOk);
  ASSERT_EQ(Do(Other(OpType::kDelete, "/a")), Err::kOk);
  EXPECT_EQ(Usage("/a"), "count=0,bytes=0");
  ASSERT_EQ(Do(Create("/a", "1")), Err::kOk);
  EXPECT_EQ(Usage("/a"), "count=1,bytes=1");

  // delquota: the limit node goes, the path is no longer tracked.
  ASSERT_EQ(Do(Other(OpType::kDelete, LimitPath("/a"))), Err::kOk);
  EXPECT_EQ(tree_->QuotaRootOf("/a"), std::nullopt);
  ASSERT_EQ(Do(Create("/a/after")), Err::kOk);
  EXPECT_EQ(Usage("/a"), "count=1,bytes=1");
}

TEST_F(QuotaTreeTest, DeepestQuotaCountsAndUnparsableUsageIsRecounted) {
  ASSERT_EQ(Do(Create("/x")), Err::kOk);
  ASSERT_EQ(Do(Create("/x/y")), Err::kOk);
  SetQuota("/x/y", "count=-1,bytes=-1");
  ASSERT_EQ(Do(Create("/x/y/z", "abc")), Err::kOk);
  EXPECT_EQ(Usage("/x/y"), "count=2,bytes=3");
  // A client overwrites the stat node (ZooKeeper allows it); apply carries on from its text, or
  // recounts when ZooKeeper's parser would throw.
  ASSERT_EQ(Do(Other(OpType::kSetData, StatPath("/x/y"), "count=10,bytes=10")), Err::kOk);
  ASSERT_EQ(Do(Create("/x/y/w")), Err::kOk);
  EXPECT_EQ(Usage("/x/y"), "count=11,bytes=10");
  ASSERT_EQ(Do(Other(OpType::kSetData, StatPath("/x/y"), "garbage")), Err::kOk);
  ASSERT_EQ(Do(Create("/x/y/v")), Err::kOk);
  EXPECT_EQ(Usage("/x/y"), "count=4,bytes=3");
}

TEST_F(QuotaTreeTest, SnapshotKeepsUsageAndTheIndex) {
  ASSERT_EQ(Do(Create("/s", "1")), Err::kOk);
  SetQuota("/s", "count=-1,bytes=-1=;byteHardLimit=-1;countHardLimit=3");
  ASSERT_EQ(Do(Create("/s/a", "22")), Err::kOk);
  std::vector<std::string> recs;
  ASSERT_TRUE(tree_
                  ->WriteSnapshot([&](std::string_view r) {
                    recs.emplace_back(r);
                    return Status::Ok();
                  })
                  .ok());
  size_t i = 0;
  TreeOptions o;
  o.enforce_quota = true;
  auto loaded = DataTree::LoadSnapshot(o, [&](std::string_view* r) {
    if (i == recs.size()) return false;
    *r = recs[i++];
    return true;
  });
  ASSERT_TRUE(loaded.ok()) << loaded.status().ToString();
  tree_ = std::move(*loaded);
  prep_ = std::make_unique<Preparer>(*tree_);
  EXPECT_EQ(Usage("/s"), "count=2,bytes=3");
  EXPECT_EQ(tree_->QuotaPaths(), std::vector<std::string>{"/s"});
  ASSERT_EQ(Do(Create("/s/b")), Err::kOk);
  EXPECT_EQ(Usage("/s"), "count=3,bytes=3");
  EXPECT_EQ(Do(Create("/s/c")), Err::kQuotaExceeded);
}

TEST_F(QuotaTreeTest, SoftLimitCrossingsOncePerCrossing) {
  ASSERT_EQ(Do(Create("/w")), Err::kOk);
  SetQuota("/w", "count=2,bytes=4");
  ApplyResult r;
  Request req;
  auto create = [&](const std::string& p, const std::string& d) {
    req.ops = {Create(p, d)};
    EXPECT_EQ(Run(req, false, &r), Err::kOk);
    return r.quota_crossings.size();
  };
  EXPECT_EQ(create("/w/1", "1234"), 0u);  // count 2, bytes 4: at the limits
  EXPECT_EQ(create("/w/2", "5"), 2u);     // both over
  EXPECT_EQ(r.quota_crossings[0].path, "/w");
  EXPECT_FALSE(r.quota_crossings[0].bytes);
  EXPECT_EQ(r.quota_crossings[0].usage, 3);
  EXPECT_EQ(r.quota_crossings[0].limit, 2);
  EXPECT_TRUE(r.quota_crossings[1].bytes);
  EXPECT_EQ(create("/w/3", ""), 0u);  // still over: no new crossing
  ASSERT_EQ(Do(Other(OpType::kDelete, "/w/3")), Err::kOk);
  ASSERT_EQ(Do(Other(OpType::kDelete, "/w/2")), Err::kOk);
  EXPECT_EQ(create("/w/3", ""), 1u);  // back under, then over again: count only
}

TEST_F(QuotaTreeTest, HardLimitsInPrepareCountPendingTxnsAndMultis) {
  ASSERT_EQ(Do(Create("/h")), Err::kOk);
  SetQuota("/h", "count=-1,bytes=-1=;byteHardLimit=10;countHardLimit=3");
  // Two creates prepared but not applied fill the count: a third is refused.
  ASSERT_EQ(Do(Create("/h/1"), 0, /*hold=*/true), Err::kOk);
  ASSERT_EQ(Do(Create("/h/2"), 0, /*hold=*/true), Err::kOk);
  EXPECT_EQ(Do(Create("/h/3"), 0, true), Err::kQuotaExceeded);
  ApplyHeld();
  EXPECT_EQ(Usage("/h"), "count=3,bytes=0");
  EXPECT_EQ(Do(Create("/h/3")), Err::kQuotaExceeded);
  // A delete makes room.
  ASSERT_EQ(Do(Other(OpType::kDelete, "/h/2")), Err::kOk);
  // A multi: ops see the earlier ops' usage.
  EXPECT_EQ(Multi({Create("/h/m1"), Create("/h/m2")}), Err::kQuotaExceeded);
  EXPECT_EQ(Multi({Other(OpType::kDelete, "/h/1"), Create("/h/m1"), Create("/h/m2")}), Err::kOk);
  EXPECT_EQ(Usage("/h"), "count=3,bytes=0");
  // Bytes: setData and append by their growth; ZooKeeper refuses a shrink still over the limit.
  EXPECT_EQ(Do(Other(OpType::kSetData, "/h/m1", "12345678901")), Err::kQuotaExceeded);
  ASSERT_EQ(Do(Other(OpType::kSetData, "/h/m1", "1234567890")), Err::kOk);
  EXPECT_EQ(Do(Other(OpType::kAppend, "/h/m1", "1")), Err::kQuotaExceeded);
  EXPECT_EQ(Do(Other(OpType::kSetData, "/h/m2", "x")), Err::kQuotaExceeded);
  ASSERT_EQ(Do(Other(OpType::kSetData, "/h/m1", "")), Err::kOk);
  EXPECT_EQ(Usage("/h"), "count=3,bytes=0");
  // Writes outside the quota'd path are not counted.
  EXPECT_EQ(Do(Create("/hx", "12345678901")), Err::kOk);
}

TEST_F(QuotaNotEnforcedTest, HardLimitsOnlyWithEnforceQuota) {
  ASSERT_EQ(Do(Create("/h")), Err::kOk);
  SetQuota("/h", "count=-1,bytes=-1=;byteHardLimit=1;countHardLimit=1");
  EXPECT_EQ(Do(Create("/h/1", "too much")), Err::kOk);
  EXPECT_EQ(Usage("/h"), "count=2,bytes=8");
}

}  // namespace
}  // namespace qfs::tree
