#include "daemon/server/watch_manager.h"

#include <gtest/gtest.h>

#include <atomic>
#include <map>
#include <thread>
#include <vector>

namespace qfs::server {
namespace {

using tree::Change;
using tree::Err;

constexpr int32_t kCreated = 1, kDeleted = 2, kDataChanged = 3, kChildrenChanged = 4;
constexpr int64_t kZxid = 0x500000007;

Delivery D(WatcherId w, int32_t type, const std::string& path, int64_t zxid = kZxid) {
  return Delivery{w, WatchEvent{type, 3, path, zxid}};
}

std::vector<Delivery> Fire(WatchManager& m, Change::Type t, const std::string& path) {
  std::vector<Delivery> out;
  m.Trigger(Change{t, path}, kZxid, &out);
  return out;
}

// ---- one-shot data/exist watches ----

TEST(WatchTriggerTest, CreatedReachesDataAndExistWatchesAndConsumesThem) {
  WatchManager m;
  ASSERT_TRUE(m.Add(1, "/a", WatchKind::kExist));
  ASSERT_TRUE(m.Add(2, "/a", WatchKind::kData));
  ASSERT_TRUE(m.Add(3, "/a", WatchKind::kChild));
  EXPECT_EQ(Fire(m, Change::kCreated, "/a"),
            (std::vector<Delivery>{D(1, kCreated, "/a"), D(2, kCreated, "/a")}));
  EXPECT_FALSE(m.Has(1, "/a", WatchKind::kExist));
  EXPECT_FALSE(m.Has(2, "/a", WatchKind::kData));
  EXPECT_TRUE(m.Has(3, "/a", WatchKind::kChild));  // a child watch ignores creation of its node
  EXPECT_TRUE(Fire(m, Change::kCreated, "/a").empty());
  EXPECT_EQ(m.size(), 1u);
}

TEST(WatchTriggerTest, DataChangedReachesDataAndExistWatchesOnly) {
  WatchManager m;
  m.Add(1, "/a", WatchKind::kData);
  m.Add(2, "/a", WatchKind::kExist);
  m.Add(3, "/a", WatchKind::kChild);
  m.Add(4, "/b", WatchKind::kData);
  EXPECT_EQ(Fire(m, Change::kDataChanged, "/a"),
            (std::vector<Delivery>{D(1, kDataChanged, "/a"), D(2, kDataChanged, "/a")}));
  EXPECT_TRUE(Fire(m, Change::kDataChanged, "/a").empty());
  EXPECT_TRUE(m.Has(3, "/a", WatchKind::kChild));
  EXPECT_TRUE(m.Has(4, "/b", WatchKind::kData));
}

TEST(WatchTriggerTest, DeletedReachesDataExistAndChildWatches) {
  WatchManager m;
  m.Add(1, "/a", WatchKind::kData);
  m.Add(2, "/a", WatchKind::kExist);
  m.Add(3, "/a", WatchKind::kChild);
  m.Add(4, "/a/b", WatchKind::kData);
  EXPECT_EQ(
      Fire(m, Change::kDeleted, "/a"),
      (std::vector<Delivery>{D(1, kDeleted, "/a"), D(2, kDeleted, "/a"), D(3, kDeleted, "/a")}));
  EXPECT_EQ(m.size(), 1u);
  EXPECT_EQ(m.CountForPath("/a"), 0u);
  EXPECT_TRUE(Fire(m, Change::kDeleted, "/a").empty());
}

TEST(WatchTriggerTest, ChildrenChangedReachesChildWatchesOnly) {
  WatchManager m;
  m.Add(1, "/a", WatchKind::kChild);
  m.Add(2, "/a", WatchKind::kData);
  m.Add(3, "/a", WatchKind::kExist);
  EXPECT_EQ(Fire(m, Change::kChildrenChanged, "/a"),
            std::vector<Delivery>{D(1, kChildrenChanged, "/a")});
  EXPECT_FALSE(m.Has(1, "/a", WatchKind::kChild));
  EXPECT_TRUE(m.Has(2, "/a", WatchKind::kData));
  EXPECT_TRUE(Fire(m, Change::kChildrenChanged, "/a").empty());
}

TEST(WatchTriggerTest, OneShotWatchesIgnoreOtherPaths) {
  WatchManager m;
  m.Add(1, "/a", WatchKind::kData);
  m.Add(1, "/a", WatchKind::kChild);
  for (auto t :
       {Change::kCreated, Change::kDeleted, Change::kDataChanged, Change::kChildrenChanged}) {
    EXPECT_TRUE(Fire(m, t, "/a/b").empty());
    EXPECT_TRUE(Fire(m, t, "/ab").empty());
    EXPECT_TRUE(Fire(m, t, "/").empty());
  }
  EXPECT_EQ(m.size(), 2u);
}

TEST(WatchTriggerTest, AclChangedTriggersNothing) {
  WatchManager m;
  m.Add(1, "/a", WatchKind::kData);
  m.Add(2, "/a", WatchKind::kChild);
  m.Add(3, "/a", WatchKind::kPersistent);
  m.Add(4, "/", WatchKind::kPersistentRecursive);
  EXPECT_TRUE(Fire(m, Change::kAclChanged, "/a").empty());
  EXPECT_EQ(m.size(), 4u);
}

TEST(WatchTriggerTest, DataAndChildWatchOfOneWatcherGetOneDeletedEvent) {
  WatchManager m;
  m.Add(1, "/a", WatchKind::kData);
  m.Add(1, "/a", WatchKind::kChild);
  m.Add(1, "/a", WatchKind::kExist);
  EXPECT_EQ(Fire(m, Change::kDeleted, "/a"), std::vector<Delivery>{D(1, kDeleted, "/a")});
  EXPECT_EQ(m.size(), 0u);
}

// A create and a delete as the tree reports them: the node, then its parent's children.
TEST(WatchTriggerTest, CreateSequenceNotifiesNodeThenParent) {
  WatchManager m;
  m.Add(1, "/p/c", WatchKind::kExist);
  m.Add(1, "/p", WatchKind::kChild);
  std::vector<Delivery> out;
  m.Trigger({Change::kCreated, "/p/c"}, kZxid, &out);
  m.Trigger({Change::kChildrenChanged, "/p"}, kZxid, &out);
  EXPECT_EQ(out, (std::vector<Delivery>{D(1, kCreated, "/p/c"), D(1, kChildrenChanged, "/p")}));
}

// ---- persistent ----

TEST(WatchPersistentTest, ReceivesEveryEventOnItsPathAndStays) {
  WatchManager m;
  ASSERT_TRUE(m.Add(1, "/a", WatchKind::kPersistent));
  for (int round = 0; round < 2; ++round) {
    EXPECT_EQ(Fire(m, Change::kCreated, "/a"), std::vector<Delivery>{D(1, kCreated, "/a")});
    EXPECT_EQ(Fire(m, Change::kDataChanged, "/a"), std::vector<Delivery>{D(1, kDataChanged, "/a")});
    EXPECT_EQ(Fire(m, Change::kChildrenChanged, "/a"),
              std::vector<Delivery>{D(1, kChildrenChanged, "/a")});
    EXPECT_EQ(Fire(m, Change::kDeleted, "/a"), std::vector<Delivery>{D(1, kDeleted, "/a")});
  }
  EXPECT_TRUE(m.Has(1, "/a", WatchKind::kPersistent));
  EXPECT_EQ(m.size(), 1u);
}

TEST(WatchPersistentTest, NotReachedByDescendants) {
  WatchManager m;
  m.Add(1, "/a", WatchKind::kPersistent);
  for (auto t :
       {Change::kCreated, Change::kDeleted, Change::kDataChanged, Change::kChildrenChanged}) {
    EXPECT_TRUE(Fire(m, t, "/a/b").empty());
  }
}

TEST(WatchPersistentTest, WithOneShotOnSamePathGivesOneEventAndKeepsPersistent) {
  WatchManager m;
  m.Add(1, "/a", WatchKind::kPersistent);
  m.Add(1, "/a", WatchKind::kData);
  m.Add(1, "/a", WatchKind::kChild);
  EXPECT_EQ(Fire(m, Change::kDataChanged, "/a"), std::vector<Delivery>{D(1, kDataChanged, "/a")});
  EXPECT_FALSE(m.Has(1, "/a", WatchKind::kData));
  EXPECT_EQ(Fire(m, Change::kDeleted, "/a"), std::vector<Delivery>{D(1, kDeleted, "/a")});
  EXPECT_FALSE(m.Has(1, "/a", WatchKind::kChild));
  EXPECT_TRUE(m.Has(1, "/a", WatchKind::kPersistent));
  EXPECT_EQ(m.size(), 1u);
}

// ---- persistent recursive ----

TEST(WatchRecursiveTest, ReachedByNodeAndAncestorsForNodeEvents) {
  WatchManager m;
  m.Add(1, "/", WatchKind::kPersistentRecursive);
  m.Add(2, "/a", WatchKind::kPersistentRecursive);
  m.Add(3, "/a/b", WatchKind::kPersistentRecursive);
  m.Add(4, "/a/b/c", WatchKind::kPersistentRecursive);
  m.Add(5, "/x", WatchKind::kPersistentRecursive);
  m.Add(6, "/a/bb", WatchKind::kPersistentRecursive);  // a sibling prefix, not an ancestor
  for (auto [t, type] : {std::pair{Change::kCreated, kCreated},
                         {Change::kDataChanged, kDataChanged},
                         {Change::kDeleted, kDeleted}}) {
    EXPECT_EQ(Fire(m, t, "/a/b"),
              (std::vector<Delivery>{D(1, type, "/a/b"), D(2, type, "/a/b"), D(3, type, "/a/b")}));
  }
  EXPECT_EQ(Fire(m, Change::kDataChanged, "/"), std::vector<Delivery>{D(1, kDataChanged, "/")});
  EXPECT_EQ(m.size(), 6u);
}

TEST(WatchRecursiveTest, NeverReachedByChildrenChanged) {
  WatchManager m;
  m.Add(1, "/", WatchKind::kPersistentRecursive);
  m.Add(2, "/a", WatchKind::kPersistentRecursive);
  EXPECT_TRUE(Fire(m, Change::kChildrenChanged, "/a").empty());
  EXPECT_TRUE(Fire(m, Change::kChildrenChanged, "/a/b").empty());
  EXPECT_TRUE(Fire(m, Change::kChildrenChanged, "/").empty());
}

TEST(WatchRecursiveTest, AncestorsDoNotConsumeOrReachOtherKinds) {
  WatchManager m;
  m.Add(1, "/a", WatchKind::kData);
  m.Add(2, "/a", WatchKind::kPersistent);
  m.Add(3, "/a", WatchKind::kChild);
  m.Add(9, "/", WatchKind::kPersistentRecursive);
  EXPECT_EQ(Fire(m, Change::kDataChanged, "/a/b"),
            std::vector<Delivery>{D(9, kDataChanged, "/a/b")});
  EXPECT_TRUE(m.Has(1, "/a", WatchKind::kData));
  EXPECT_TRUE(m.Has(3, "/a", WatchKind::kChild));
}

TEST(WatchRecursiveTest, DedupsAcrossPathAndAncestors) {
  WatchManager m;
  m.Add(1, "/", WatchKind::kPersistentRecursive);
  m.Add(1, "/a", WatchKind::kPersistentRecursive);
  m.Add(1, "/a/b", WatchKind::kData);
  m.Add(1, "/a/b", WatchKind::kChild);
  m.Add(1, "/a/b", WatchKind::kPersistent);
  m.Add(2, "/a", WatchKind::kPersistentRecursive);
  EXPECT_EQ(Fire(m, Change::kDeleted, "/a/b"),
            (std::vector<Delivery>{D(1, kDeleted, "/a/b"), D(2, kDeleted, "/a/b")}));
  // The one-shots went, the persistent ones stay.
  EXPECT_FALSE(m.Has(1, "/a/b", WatchKind::kData));
  EXPECT_FALSE(m.Has(1, "/a/b", WatchKind::kChild));
  EXPECT_TRUE(m.Has(1, "/a/b", WatchKind::kPersistent));
  EXPECT_EQ(m.size(), 4u);
}

TEST(WatchRecursiveTest, CountOfRecursiveWatchesTracksRemovals) {
  WatchManager m;
  m.Add(1, "/", WatchKind::kPersistentRecursive);
  ASSERT_EQ(m.Remove(1, "/", watcher_type::kPersistentRecursive, false), Err::kOk);
  m.Add(2, "/a", WatchKind::kData);
  EXPECT_EQ(Fire(m, Change::kDataChanged, "/a"), std::vector<Delivery>{D(2, kDataChanged, "/a")});
  m.Add(3, "/", WatchKind::kPersistentRecursive);
  EXPECT_EQ(Fire(m, Change::kDataChanged, "/a"), std::vector<Delivery>{D(3, kDataChanged, "/a")});
  m.RemoveWatcher(3);
  EXPECT_TRUE(Fire(m, Change::kDataChanged, "/a").empty());
}

// ---- delivery filter ----

TEST(WatchFilterTest, FilteredWatcherLosesItsOneShotWatchWithoutAnEvent) {
  WatchManager m;
  m.Add(1, "/a", WatchKind::kData);
  m.Add(2, "/a", WatchKind::kData);
  m.Add(3, "/", WatchKind::kPersistentRecursive);
  std::vector<Delivery> out;
  m.Trigger({Change::kDataChanged, "/a"}, kZxid, &out, [](WatcherId w) { return w == 2; });
  EXPECT_EQ(out, std::vector<Delivery>{D(2, kDataChanged, "/a")});
  EXPECT_FALSE(m.Has(1, "/a", WatchKind::kData));  // consumed, as ZooKeeper removes before ACL
  EXPECT_TRUE(m.Has(3, "/", WatchKind::kPersistentRecursive));
}

// ---- Add / limits / counts ----

TEST(WatchAddTest, ReAddIsNoOpAndExistEqualsData) {
  WatchManager m;
  EXPECT_TRUE(m.Add(1, "/a", WatchKind::kData));
  EXPECT_TRUE(m.Add(1, "/a", WatchKind::kData));
  EXPECT_TRUE(m.Add(1, "/a", WatchKind::kExist));
  EXPECT_EQ(m.size(), 1u);
  EXPECT_TRUE(m.Has(1, "/a", WatchKind::kExist));
  m.Add(1, "/a", WatchKind::kChild);
  m.Add(1, "/a", WatchKind::kPersistent);
  m.Add(1, "/a", WatchKind::kPersistentRecursive);
  m.Add(1, "/b", WatchKind::kChild);
  m.Add(2, "/a", WatchKind::kChild);
  EXPECT_EQ(m.size(), 6u);
  EXPECT_EQ(m.CountForPath("/a"), 5u);
  EXPECT_EQ(m.CountForPath("/b"), 1u);
  EXPECT_EQ(m.CountForPath("/c"), 0u);
  EXPECT_EQ(m.CountForWatcher(1), 5u);
  EXPECT_EQ(m.CountForWatcher(2), 1u);
  EXPECT_EQ(m.CountForWatcher(3), 0u);
}

TEST(WatchAddTest, TotalLimit) {
  WatchManager m(WatchLimits{3, 0});
  EXPECT_TRUE(m.Add(1, "/a", WatchKind::kData));
  EXPECT_TRUE(m.Add(2, "/b", WatchKind::kChild));
  EXPECT_TRUE(m.Add(3, "/c", WatchKind::kPersistent));
  EXPECT_FALSE(m.Add(4, "/d", WatchKind::kData));
  EXPECT_FALSE(m.Add(1, "/a", WatchKind::kChild));
  EXPECT_FALSE(m.Has(4, "/d", WatchKind::kData));
  EXPECT_TRUE(m.Add(1, "/a", WatchKind::kExist));  // already armed: no new watch needed
  EXPECT_EQ(m.size(), 3u);
  Fire(m, Change::kDataChanged, "/a");  // consumes one
  EXPECT_TRUE(m.Add(4, "/d", WatchKind::kData));
  EXPECT_FALSE(m.Add(4, "/e", WatchKind::kData));
  m.RemoveWatcher(2);
  EXPECT_TRUE(m.Add(4, "/e", WatchKind::kData));
  EXPECT_EQ(m.size(), 3u);
}

TEST(WatchAddTest, PerWatcherLimit) {
  WatchManager m(WatchLimits{100, 2});
  EXPECT_TRUE(m.Add(1, "/a", WatchKind::kData));
  EXPECT_TRUE(m.Add(1, "/a", WatchKind::kChild));
  EXPECT_FALSE(m.Add(1, "/b", WatchKind::kData));
  EXPECT_TRUE(m.Add(2, "/b", WatchKind::kData));
  EXPECT_EQ(m.Remove(1, "/a", watcher_type::kChildren, false), Err::kOk);
  EXPECT_TRUE(m.Add(1, "/b", WatchKind::kData));
}

TEST(WatchAddTest, WatchLimitErrorIsQuotaExceeded) {
  EXPECT_EQ(kWatchLimitErr, Err::kQuotaExceeded);
}

// ---- checkWatches / removeWatches ----

TEST(WatchRemoveTest, ByType) {
  WatchManager m;
  m.Add(1, "/a", WatchKind::kData);
  m.Add(1, "/a", WatchKind::kChild);
  m.Add(1, "/a", WatchKind::kPersistent);
  m.Add(1, "/a", WatchKind::kPersistentRecursive);

  EXPECT_EQ(m.Remove(1, "/a", watcher_type::kData, false), Err::kOk);
  EXPECT_FALSE(m.Has(1, "/a", WatchKind::kData));
  EXPECT_EQ(m.Remove(1, "/a", watcher_type::kData, false), Err::kNoWatcher);
  // checkWatches looks through ZooKeeper's data table, where persistent watches sit too.
  EXPECT_EQ(m.Remove(1, "/a", watcher_type::kData, true), Err::kOk);

  EXPECT_EQ(m.Remove(1, "/a", watcher_type::kChildren, true), Err::kOk);
  EXPECT_EQ(m.Remove(1, "/a", watcher_type::kChildren, false), Err::kOk);
  EXPECT_EQ(m.Remove(1, "/a", watcher_type::kChildren, false), Err::kNoWatcher);

  EXPECT_EQ(m.Remove(1, "/a", watcher_type::kPersistent, false), Err::kOk);
  EXPECT_FALSE(m.Has(1, "/a", WatchKind::kPersistent));
  EXPECT_EQ(m.Remove(1, "/a", watcher_type::kPersistent, true), Err::kNoWatcher);

  EXPECT_TRUE(m.Has(1, "/a", WatchKind::kPersistentRecursive));
  EXPECT_EQ(m.Remove(1, "/a", watcher_type::kPersistentRecursive, false), Err::kOk);
  EXPECT_EQ(m.size(), 0u);
  EXPECT_EQ(m.Remove(1, "/a", watcher_type::kAny, false), Err::kNoWatcher);
}

// As measured on ZooKeeper 3.8 (tests/clients): checkWatches with Data or Children finds a
// persistent watch (it sits in both of ZooKeeper's tables), a recursive one only with Data;
// removeWatches with Data or Children removes only one-shot watches.
TEST(WatchRemoveTest, DataTypeCoversExistWatchesAndChecksFindPersistentOnes) {
  WatchManager m;
  m.Add(1, "/a", WatchKind::kExist);
  EXPECT_EQ(m.Remove(1, "/a", watcher_type::kData, true), Err::kOk);
  EXPECT_EQ(m.Remove(1, "/a", watcher_type::kData, false), Err::kOk);
  m.Add(1, "/a", WatchKind::kPersistent);
  EXPECT_EQ(m.Remove(1, "/a", watcher_type::kData, true), Err::kOk);
  EXPECT_EQ(m.Remove(1, "/a", watcher_type::kChildren, true), Err::kOk);
  EXPECT_EQ(m.Remove(1, "/a", watcher_type::kData, false), Err::kNoWatcher);
  EXPECT_EQ(m.Remove(1, "/a", watcher_type::kPersistentRecursive, true), Err::kNoWatcher);
  EXPECT_EQ(m.Remove(1, "/a", watcher_type::kAny, true), Err::kOk);
  EXPECT_TRUE(m.Has(1, "/a", WatchKind::kPersistent));

  WatchManager r;
  r.Add(1, "/b", WatchKind::kPersistentRecursive);
  EXPECT_EQ(r.Remove(1, "/b", watcher_type::kData, true), Err::kOk);
  EXPECT_EQ(r.Remove(1, "/b", watcher_type::kChildren, true), Err::kNoWatcher);
}

TEST(WatchRemoveTest, CheckOnlyLeavesTheWatch) {
  WatchManager m;
  m.Add(1, "/a", WatchKind::kChild);
  EXPECT_EQ(m.Remove(1, "/a", watcher_type::kChildren, true), Err::kOk);
  EXPECT_EQ(m.Remove(1, "/a", watcher_type::kAny, true), Err::kOk);
  EXPECT_TRUE(m.Has(1, "/a", WatchKind::kChild));
  EXPECT_EQ(Fire(m, Change::kChildrenChanged, "/a"),
            std::vector<Delivery>{D(1, kChildrenChanged, "/a")});
}

TEST(WatchRemoveTest, AnyRemovesEveryKindOnThePathOnly) {
  WatchManager m;
  m.Add(1, "/a", WatchKind::kData);
  m.Add(1, "/a", WatchKind::kChild);
  m.Add(1, "/a", WatchKind::kPersistent);
  m.Add(1, "/a", WatchKind::kPersistentRecursive);
  m.Add(1, "/b", WatchKind::kData);
  m.Add(2, "/a", WatchKind::kData);
  EXPECT_EQ(m.Remove(1, "/a", watcher_type::kAny, false), Err::kOk);
  EXPECT_EQ(m.CountForWatcher(1), 1u);
  EXPECT_TRUE(m.Has(2, "/a", WatchKind::kData));
  EXPECT_TRUE(Fire(m, Change::kDataChanged, "/a/x").empty());  // recursive one went too
}

TEST(WatchRemoveTest, OtherWatchersAndPathsAreNoWatcher) {
  WatchManager m;
  m.Add(1, "/a", WatchKind::kData);
  EXPECT_EQ(m.Remove(2, "/a", watcher_type::kAny, false), Err::kNoWatcher);
  EXPECT_EQ(m.Remove(1, "/b", watcher_type::kAny, false), Err::kNoWatcher);
  EXPECT_EQ(m.Remove(1, "/a/b", watcher_type::kData, true), Err::kNoWatcher);
  EXPECT_TRUE(m.Has(1, "/a", WatchKind::kData));
}

TEST(WatchRemoveTest, UnknownTypeIsMarshallingError) {
  WatchManager m;
  m.Add(1, "/a", WatchKind::kData);
  for (int32_t t : {0, 6, -1, 100}) {
    EXPECT_EQ(m.Remove(1, "/a", t, false), Err::kMarshallingError) << t;
    EXPECT_EQ(m.Remove(1, "/a", t, true), Err::kMarshallingError) << t;
  }
  EXPECT_TRUE(m.Has(1, "/a", WatchKind::kData));
}

TEST(WatchRemoveTest, RemoveWatcherDropsEverything) {
  WatchManager m;
  m.Add(1, "/a", WatchKind::kData);
  m.Add(1, "/b", WatchKind::kChild);
  m.Add(1, "/", WatchKind::kPersistentRecursive);
  m.Add(2, "/a", WatchKind::kData);
  m.RemoveWatcher(1);
  m.RemoveWatcher(7);  // unknown: nothing happens
  EXPECT_EQ(m.size(), 1u);
  EXPECT_EQ(m.CountForWatcher(1), 0u);
  EXPECT_EQ(Fire(m, Change::kDeleted, "/a"), std::vector<Delivery>{D(2, kDeleted, "/a")});
  EXPECT_TRUE(Fire(m, Change::kChildrenChanged, "/b").empty());
  EXPECT_EQ(m.Summary(), "0 connections watching 0 paths\nTotal watches:0");
}

// ---- dumps ----

TEST(WatchDumpTest, SummaryAndDumps) {
  WatchManager m;
  m.Add(1, "/a", WatchKind::kData);
  m.Add(1, "/a", WatchKind::kChild);  // same (connection, path) pair
  m.Add(1, "/b", WatchKind::kPersistent);
  m.Add(2, "/a", WatchKind::kExist);
  EXPECT_EQ(m.Summary(), "2 connections watching 2 paths\nTotal watches:3");
  std::map<WatcherId, int64_t> sessions = {{1, 0x100000abcdef}, {2, -2}};
  auto session_of = [&](WatcherId w) { return sessions.at(w); };
  EXPECT_EQ(m.DumpByWatcher(session_of),
            "0xfffffffffffffffe\n\t/a\n"
            "0x100000abcdef\n\t/a\n\t/b\n");
  EXPECT_EQ(m.DumpByPath(session_of),
            "/a\n\t0xfffffffffffffffe\n\t0x100000abcdef\n"
            "/b\n\t0x100000abcdef\n");
}

TEST(WatchDumpTest, Empty) {
  WatchManager m;
  EXPECT_EQ(m.Summary(), "0 connections watching 0 paths\nTotal watches:0");
  auto session_of = [](WatcherId w) { return static_cast<int64_t>(w); };
  EXPECT_EQ(m.DumpByWatcher(session_of), "");
  EXPECT_EQ(m.DumpByPath(session_of), "");
}

// ---- setWatches re-arming ----

struct FakeTree {
  std::map<std::string, tree::Stat> nodes;
  void Put(const std::string& path, int64_t mzxid, int64_t pzxid) {
    tree::Stat s;
    s.czxid = 1;
    s.mzxid = mzxid;
    s.pzxid = pzxid;
    nodes[path] = s;
  }
  StatLookup Lookup() {
    return [this](const std::string& p) -> std::optional<tree::Stat> {
      auto it = nodes.find(p);
      if (it == nodes.end()) return std::nullopt;
      return it->second;
    };
  }
};

Delivery R(WatcherId w, int32_t type, const std::string& path) {
  return D(w, type, path, -1);
}

TEST(WatchReArmTest, DataWatches) {
  WatchManager m;
  FakeTree t;
  t.Put("/same", 10, 10);
  t.Put("/changed", 11, 10);
  SetWatchLists l;
  l.data = {"/same", "/changed", "/gone"};
  std::vector<Delivery> out;
  EXPECT_EQ(m.ReArm(1, 10, l, t.Lookup(), &out), Err::kOk);
  EXPECT_EQ(out, (std::vector<Delivery>{R(1, kDataChanged, "/changed"), R(1, kDeleted, "/gone")}));
  EXPECT_TRUE(m.Has(1, "/same", WatchKind::kData));
  EXPECT_FALSE(m.Has(1, "/changed", WatchKind::kData));
  EXPECT_FALSE(m.Has(1, "/gone", WatchKind::kData));
  EXPECT_EQ(m.size(), 1u);
}

TEST(WatchReArmTest, ExistWatches) {
  WatchManager m;
  FakeTree t;
  t.Put("/now", 5, 5);  // existing at all means it was created since: NodeCreated, any zxid
  SetWatchLists l;
  l.exist = {"/now", "/still-missing"};
  std::vector<Delivery> out;
  EXPECT_EQ(m.ReArm(1, 10, l, t.Lookup(), &out), Err::kOk);
  EXPECT_EQ(out, std::vector<Delivery>{R(1, kCreated, "/now")});
  EXPECT_TRUE(m.Has(1, "/still-missing", WatchKind::kExist));
  EXPECT_FALSE(m.Has(1, "/now", WatchKind::kExist));
  EXPECT_EQ(m.size(), 1u);
}

TEST(WatchReArmTest, ChildWatches) {
  WatchManager m;
  FakeTree t;
  t.Put("/same", 99, 10);  // data changes do not matter to a child watch
  t.Put("/changed", 1, 12);
  SetWatchLists l;
  l.child = {"/same", "/changed", "/gone"};
  std::vector<Delivery> out;
  EXPECT_EQ(m.ReArm(1, 10, l, t.Lookup(), &out), Err::kOk);
  EXPECT_EQ(out,
            (std::vector<Delivery>{R(1, kChildrenChanged, "/changed"), R(1, kDeleted, "/gone")}));
  EXPECT_TRUE(m.Has(1, "/same", WatchKind::kChild));
  EXPECT_EQ(m.size(), 1u);
}

TEST(WatchReArmTest, PersistentAreArmedWithoutEvents) {
  WatchManager m;
  FakeTree t;
  t.Put("/p", 50, 50);
  SetWatchLists l;
  l.persistent = {"/p", "/missing"};
  l.persistent_recursive = {"/"};
  std::vector<Delivery> out;
  EXPECT_EQ(m.ReArm(1, 10, l, t.Lookup(), &out), Err::kOk);
  EXPECT_TRUE(out.empty());
  EXPECT_TRUE(m.Has(1, "/p", WatchKind::kPersistent));
  EXPECT_TRUE(m.Has(1, "/missing", WatchKind::kPersistent));
  EXPECT_TRUE(m.Has(1, "/", WatchKind::kPersistentRecursive));
  EXPECT_EQ(Fire(m, Change::kDataChanged, "/q"), std::vector<Delivery>{D(1, kDataChanged, "/q")});
}

TEST(WatchReArmTest, EventsFollowListOrder) {
  WatchManager m;
  FakeTree t;
  t.Put("/e", 1, 1);
  SetWatchLists l;
  l.data = {"/d"};
  l.exist = {"/e"};
  l.child = {"/c"};
  std::vector<Delivery> out;
  m.ReArm(1, 10, l, t.Lookup(), &out);
  EXPECT_EQ(out, (std::vector<Delivery>{R(1, kDeleted, "/d"), R(1, kCreated, "/e"),
                                        R(1, kDeleted, "/c")}));
  EXPECT_EQ(m.size(), 0u);
}

TEST(WatchReArmTest, ArmedWatchFiresLater) {
  WatchManager m;
  FakeTree t;
  t.Put("/a", 10, 10);
  SetWatchLists l;
  l.data = {"/a"};
  l.child = {"/a"};
  std::vector<Delivery> out;
  m.ReArm(1, 10, l, t.Lookup(), &out);
  EXPECT_TRUE(out.empty());
  EXPECT_EQ(Fire(m, Change::kDeleted, "/a"), std::vector<Delivery>{D(1, kDeleted, "/a")});
  EXPECT_EQ(m.size(), 0u);
}

// A change applied while ReArm looks nodes up must not be missed: the watch is armed first.
TEST(WatchReArmTest, ChangeDuringLookupIsDeliveredOnce) {
  WatchManager m;
  FakeTree t;
  t.Put("/a", 10, 10);
  std::vector<Delivery> trig;
  auto lookup = [&](const std::string& p) -> std::optional<tree::Stat> {
    // The apply thread changes the node and triggers before ReArm reads it.
    t.Put(p, 20, 10);
    m.Trigger({Change::kDataChanged, p}, 20, &trig);
    return t.Lookup()(p);
  };
  SetWatchLists l;
  l.data = {"/a"};
  std::vector<Delivery> out;
  EXPECT_EQ(m.ReArm(1, 10, l, lookup, &out), Err::kOk);
  EXPECT_EQ(trig, std::vector<Delivery>{D(1, kDataChanged, "/a", 20)});
  EXPECT_TRUE(out.empty());  // the trigger already told the client
  EXPECT_EQ(m.size(), 0u);
}

TEST(WatchReArmTest, ChangeAfterLookupStillFires) {
  WatchManager m;
  FakeTree t;
  t.Put("/a", 10, 10);
  SetWatchLists l;
  l.exist = {"/b"};
  std::vector<Delivery> out;
  m.ReArm(1, 10, l, t.Lookup(), &out);
  EXPECT_TRUE(out.empty());
  EXPECT_EQ(Fire(m, Change::kCreated, "/b"), std::vector<Delivery>{D(1, kCreated, "/b")});
}

TEST(WatchReArmTest, LimitDropsOnlyWatchesThatNeedArming) {
  WatchManager m(WatchLimits{1, 0});
  FakeTree t;
  t.Put("/keep", 10, 10);
  t.Put("/changed", 11, 10);
  SetWatchLists l;
  l.data = {"/keep", "/changed", "/gone"};
  l.persistent = {"/p"};
  std::vector<Delivery> out;
  EXPECT_EQ(m.ReArm(1, 10, l, t.Lookup(), &out), kWatchLimitErr);
  // Events for changed nodes need no slot and are still sent.
  EXPECT_EQ(out, (std::vector<Delivery>{R(1, kDataChanged, "/changed"), R(1, kDeleted, "/gone")}));
  EXPECT_TRUE(m.Has(1, "/keep", WatchKind::kData));
  EXPECT_FALSE(m.Has(1, "/p", WatchKind::kPersistent));
  EXPECT_EQ(m.size(), 1u);

  WatchManager roomy(WatchLimits{3, 0});
  out.clear();
  EXPECT_EQ(roomy.ReArm(1, 10, l, t.Lookup(), &out), Err::kOk);
  EXPECT_EQ(roomy.size(), 2u);
}

// ---- concurrency (run under the sanitizers) ----

TEST(WatchConcurrencyTest, AddRemoveAndTriggerFromManyThreads) {
  WatchManager m;
  std::atomic<bool> stop{false};
  std::atomic<size_t> delivered{0};
  std::thread applier([&] {
    std::vector<Delivery> out;
    while (!stop.load()) {
      out.clear();
      m.Trigger({Change::kDataChanged, "/a/b"}, 1, &out);
      m.Trigger({Change::kChildrenChanged, "/a"}, 1, &out);
      m.Trigger({Change::kDeleted, "/a/b"}, 1, &out);
      delivered += out.size();
    }
  });
  std::vector<std::thread> io;
  for (WatcherId w = 1; w <= 3; ++w) {
    io.emplace_back([&m, w] {
      for (int i = 0; i < 2000; ++i) {
        m.Add(w, "/a/b", WatchKind::kData);
        m.Add(w, "/a", WatchKind::kChild);
        if (i % 7 == 0) m.Add(w, "/a", WatchKind::kPersistentRecursive);
        if (i % 5 == 0) m.Remove(w, "/a", watcher_type::kAny, false);
        if (i % 11 == 0) m.RemoveWatcher(w);
      }
      m.RemoveWatcher(w);
    });
  }
  for (auto& th : io) th.join();
  stop = true;
  applier.join();
  EXPECT_EQ(m.size(), 0u);
  EXPECT_EQ(m.Summary(), "0 connections watching 0 paths\nTotal watches:0");
}

}  // namespace
}  // namespace qfs::server
