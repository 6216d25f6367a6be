// Reconfig requests in prepare (docs/reconfig.md): ZooKeeper's server-line format, the
// incremental and bulk forms, and the checks and their order (reconfigEnabled, WRITE on
// /zookeeper/config, a reconfig in progress, fromConfig, the new configuration, its quorum).
#include "daemon/tree/reconfig.h"

#include <gtest/gtest.h>

#include <string>

#include "daemon/tree/data_tree.h"
#include "daemon/tree/prepare.h"

namespace qfs::tree {
namespace {

TEST(ReconfigText, ParsesAndPrintsZooKeepersServerLines) {
  auto s = ParseServer("server.4", "127.0.0.1:2888:3888:observer;127.0.0.2:2181");
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  EXPECT_EQ(s->id(), 4u);
  EXPECT_TRUE(s->observer());
  EXPECT_EQ(ServerText(*s), "127.0.0.1:2888:3888:observer;127.0.0.2:2181");
  // A client port alone binds every address, as ZooKeeper's; the role defaults to participant.
  s = ParseServer("server.2", "h:1:2;2181");
  ASSERT_TRUE(s.ok());
  EXPECT_EQ(ServerText(*s), "h:1:2:participant;0.0.0.0:2181");
  s = ParseServer("server.2", "h:1:2");
  ASSERT_TRUE(s.ok());
  EXPECT_EQ(ServerText(*s), "h:1:2:participant");
  for (const char* bad : {"h:1", "h:1:2:leader", "h:0:2", "h:1:2;x:y:z", ":1:2", "h:1:70000"})
    EXPECT_FALSE(ParseServer("server.2", bad).ok()) << bad;
  EXPECT_FALSE(ParseServer("server.0", "h:1:2").ok());
  EXPECT_FALSE(ParseServer("srv.1", "h:1:2").ok());
}

TEST(ReconfigText, ConfigTextIsQuorumMajs) {
  auto l = ParseServers("server.2=b:3:4;5\nversion=1\n,server.1=a:1:2:participant;a:9");
  ASSERT_TRUE(l.ok()) << l.status().ToString();
  EXPECT_EQ(ConfigText(*l, 0x100000003ull),
            "server.1=a:1:2:participant;a:9\nserver.2=b:3:4:participant;0.0.0.0:5\n"
            "version=100000003");
  EXPECT_FALSE(ParseServers("server.1=a:1:2,server.1=b:1:2").ok());  // an id twice
}

TEST(ReconfigText, Incremental) {
  auto cur = ParseServers("server.1=h:1:2;10,server.2=h:3:4;11,server.3=h:5:6;12");
  ASSERT_TRUE(cur.ok());
  std::string leaving = "3, 2";
  auto n = ApplyIncremental(*cur, nullptr, &leaving);
  ASSERT_TRUE(n.ok());
  EXPECT_EQ(n->size(), 1u);
  // Add one, change another's role and client address: the same id replaces it.
  std::string joining = "server.4=h:7:8;13,server.2=h:3:4:observer;h:21";
  n = ApplyIncremental(*cur, &joining, nullptr);
  ASSERT_TRUE(n.ok()) << n.status().ToString();
  EXPECT_EQ(ConfigText(*n, 1),
            "server.1=h:1:2:participant;0.0.0.0:10\nserver.2=h:3:4:observer;h:21\n"
            "server.3=h:5:6:participant;0.0.0.0:12\nserver.4=h:7:8:participant;0.0.0.0:13\n"
            "version=1");
  EXPECT_EQ(VoterCount(*n), 3u);
  // A joiner needs a client address (ZooKeeper: "each server should have 3 ports") and must
  // not take another server's ports.
  for (std::string bad : {"server.4=h:7:8", "server.4=h:1:9;13", "4=h:7:8;13"})
    EXPECT_FALSE(ApplyIncremental(*cur, &bad, nullptr).ok()) << bad;
  std::string bad_id = "x";
  EXPECT_FALSE(ApplyIncremental(*cur, nullptr, &bad_id).ok());
}

class PrepareReconfigTest : public ::testing::Test {
 protected:
  PrepareReconfigTest() : prep(tree) {
    rc.enabled = true;
    rc.current = *ParseServers("server.1=h:1:2;10,server.2=h:3:4;11,server.3=h:5:6;12");
    rc.version = 0x100000000ull;
    rc.check_quorum = [this](const ServerList& next) {
      checked = next;
      return quorum;
    };
  }
  Request Reconfig(std::optional<std::string> joining, std::optional<std::string> leaving,
                   std::optional<std::string> members = std::nullopt, int64_t from = -1,
                   std::vector<Id> auth = {{"super", ""}}) {
    Request r;
    r.type = RequestType::kReconfig;
    r.reconfig = {std::move(joining), std::move(leaving), std::move(members), from};
    r.auth = std::move(auth);
    return r;
  }
  Prepared Run(const Request& r) { return prep.Prepare(r, zxid++, 1000, &rc); }

  DataTree tree;
  Preparer prep;
  ReconfigContext rc;
  ServerList checked;
  Err quorum = Err::kOk;
  int64_t zxid = 0x100000005;
};

TEST_F(PrepareReconfigTest, ChecksInZooKeepersOrder) {
  Request r = Reconfig(std::nullopt, "3");
  EXPECT_EQ(prep.Prepare(r, 1, 1, nullptr).err, Err::kUnimplemented);
  rc.enabled = false;
  EXPECT_EQ(Run(Reconfig(std::nullopt, "3", std::nullopt, -1, {})).err, Err::kReconfigDisabled);
  rc.enabled = true;
  // /zookeeper/config is world-readable only: WRITE takes super (or an ACL set on it). It is
  // checked last, as ZooKeeper's: a bad request without it is still BADARGUMENTS.
  EXPECT_EQ(Run(Reconfig(std::nullopt, "3", std::nullopt, -1, {{"digest", "u:x"}})).err,
            Err::kNoAuth);
  EXPECT_EQ(Run(Reconfig("some thing", std::nullopt, std::nullopt, -1, {})).err,
            Err::kBadArguments);
  EXPECT_EQ(Run(Reconfig(std::nullopt, "3", std::nullopt, 77, {})).err, Err::kBadVersion);
  rc.in_progress = true;
  EXPECT_EQ(Run(r).err, Err::kReconfigInProgress);
  rc.in_progress = false;
  EXPECT_EQ(Run(Reconfig(std::nullopt, "3", std::nullopt, 0x1234)).err, Err::kBadVersion);
  EXPECT_EQ(Run(Reconfig("server.9=h", std::nullopt)).err, Err::kBadArguments);
  EXPECT_EQ(Run(Reconfig(std::nullopt, "1,2,3")).err, Err::kBadArguments);  // no voter left
  quorum = Err::kNewConfigNoQuorum;
  EXPECT_EQ(Run(r).err, Err::kNewConfigNoQuorum);
  EXPECT_EQ(Run(Reconfig(std::nullopt, "3", std::nullopt, -1, {})).err, Err::kNewConfigNoQuorum);
  EXPECT_EQ(checked.size(), 2u);
  rc.standalone = true;
  EXPECT_EQ(Run(r).err, Err::kUnimplemented);
}

TEST_F(PrepareReconfigTest, TxnSetsConfigNodeAsZooKeeper) {
  Prepared p = Run(Reconfig(std::nullopt, "2", std::nullopt, 0x100000000));
  ASSERT_EQ(p.err, Err::kOk);
  const txn::ReconfigTxn& t = p.txn->reconfig();
  ASSERT_EQ(t.servers_size(), 2);
  EXPECT_EQ(t.servers(1).id(), 3u);
  EXPECT_EQ(t.node().path(), "/zookeeper/config");
  EXPECT_EQ(t.node().version(), -1);
  EXPECT_EQ(t.node().data(),
            "server.1=h:1:2:participant;0.0.0.0:10\nserver.3=h:5:6:participant;0.0.0.0:12\n"
            "version=100000005");
  ApplyResult a = tree.Apply(*p.txn);
  ASSERT_EQ(a.err, Err::kOk);
  ASSERT_EQ(a.results.size(), 1u);
  EXPECT_EQ(a.results[0].data, t.node().data());
  EXPECT_EQ(a.results[0].stat.version, -1);
  EXPECT_EQ(a.results[0].stat.mzxid, 0x100000005);
  ASSERT_EQ(a.changes.size(), 1u);  // a data watch on /zookeeper/config fires
  EXPECT_EQ(a.changes[0].type, Change::kDataChanged);
  // The bulk form replaces everything.
  p = Run(Reconfig(std::nullopt, std::nullopt, "server.5=h:9:10:participant;20"));
  ASSERT_EQ(p.err, Err::kOk);
  EXPECT_EQ(p.txn->reconfig().servers_size(), 1);
}

TEST(StaticConfig, ShownUntilAReconfigTxnSetsTheNode) {
  TreeOptions o;
  o.static_config = "server.1=h:1:2:participant\nversion=0";
  DataTree t(o);
  std::string data;
  Stat st;
  ASSERT_EQ(t.GetData("/zookeeper/config", &data, &st), Err::kOk);
  EXPECT_EQ(data, o.static_config);
  EXPECT_EQ(st.version, -1);
  EXPECT_EQ(st.data_length, static_cast<int32_t>(data.size()));
  // Not part of the tree: the digest is that of a tree without it.
  EXPECT_EQ(t.digest(), DataTree().digest());
}

}  // namespace
}  // namespace qfs::tree
