#include "daemon/config.h"

#include <gtest/gtest.h>

using namespace qfs;

TEST(ConfigTest, ParsesZooKeeperKeys) {
  auto c = ParseConfig(
      "# a comment\n"
      "dataDir=/var/q\n"
      "tickTime = 500\n"
      "clientPort=2999\n"
      "clientPortAddress=127.0.0.2\n"
      "snapCount=5000\n"
      "autopurge.snapRetainCount=5\n"
      "preAllocSize=1024\n"
      "jute.maxbuffer=2048\n"
      "globalOutstandingLimit=77\n"
      "maxClientCnxns=9\n"
      "initLimit=4\nsyncLimit=2\n"
      "logLevel=warn\n");
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(c->data_dir, "/var/q");
  EXPECT_EQ(c->data_log_dir, "/var/q") << "dataLogDir defaults to dataDir";
  EXPECT_EQ(c->tick_time_ms, 500);
  EXPECT_EQ(c->client_port, 2999);
  EXPECT_EQ(c->client_address, "127.0.0.2");
  EXPECT_EQ(c->snap_count, 5000u);
  EXPECT_EQ(c->snap_retain_count, 5);
  EXPECT_EQ(c->log_segment_bytes, 1024u * 1024);
  EXPECT_EQ(c->max_data_bytes, 2048u);
  EXPECT_EQ(c->global_outstanding_limit, 77);
  EXPECT_EQ(c->max_client_cnxns, 9);
  EXPECT_EQ(c->log_level, LogLevel::kWarn);
  EXPECT_EQ(c->min_session_timeout(), 1000) << "2 x tickTime";
  EXPECT_EQ(c->max_session_timeout(), 10000) << "20 x tickTime";
}

TEST(ConfigTest, RejectsBadInputWithTheLine) {
  auto bad = [](const std::string& text, const std::string& needle) {
    auto c = ParseConfig(text);
    ASSERT_FALSE(c.ok()) << text;
    EXPECT_NE(c.status().message().find(needle), std::string::npos) << c.status().message();
  };
  bad("dataDir=/x\nbogus=1\n", "line 2");
  bad("dataDir=/x\nbogus=1\n", "unknown key 'bogus'");
  bad("dataDir=/x\ntickTime=abc\n", "tickTime=abc");
  bad("dataDir=/x\nclientPort=70000\n", "0 to 65535");
  bad("dataDir=/x\njust a line\n", "key=value");
  bad("tickTime=100\n", "dataDir is required");
  bad("dataDir=/x\nserver.1=127.0.0.1\n", "host:peerPort");
  bad("dataDir=/x\nserver.1=127.0.0.1:2888:3888:voter\n", "bad field 'voter'");
  bad("dataDir=/x\nserver.0=127.0.0.1:2888\n", "1 to 255");
  bad("dataDir=/x\nserver.1=h:1\nserver.1=h:2\n", "given twice");
  bad("dataDir=/x\nminSessionTimeout=9000\nmaxSessionTimeout=100\n", "larger");
}

TEST(ConfigTest, EnforceQuota) {
  // Off by default, as ZooKeeper's zookeeper.enforceQuota; that name is accepted too.
  EXPECT_FALSE(ParseConfig("dataDir=/x\n")->enforce_quota);
  EXPECT_TRUE(ParseConfig("dataDir=/x\nenforceQuota=true\n")->enforce_quota);
  EXPECT_TRUE(ParseConfig("dataDir=/x\nzookeeper.enforceQuota=true\n")->enforce_quota);
  EXPECT_FALSE(ParseConfig("dataDir=/x\nenforceQuota=false\n")->enforce_quota);
  auto c = ParseConfig("dataDir=/x\nenforceQuota=yes\n");
  ASSERT_FALSE(c.ok());
  EXPECT_NE(c.status().message().find("enforceQuota=yes"), std::string::npos)
      << c.status().message();
}

TEST(ConfigTest, DefaultNeedsNothing) {
  Config c = DefaultConfig();
  EXPECT_FALSE(c.data_dir.empty());
  EXPECT_EQ(c.data_dir, c.data_log_dir);
  EXPECT_EQ(c.client_port, 2181);
  EXPECT_EQ(c.max_data_bytes, 1u << 20);
}

TEST(ConfigTest, ParsesAnEnsemble) {
  auto c = ParseConfig(
      "dataDir=/x\n"
      "server.1=127.0.0.1:2888:3888;2181\n"
      "server.2=127.0.0.2:2889:3889:participant;127.0.0.2:2182\n"
      "server.3=127.0.0.3:2890\n"
      "server.4=127.0.0.4:2891:3891:observer\n"
      "myid=2\nquorum.secret=s3cret\nlinearizableReads=true\n");
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  ASSERT_EQ(c->servers.size(), 4u);
  EXPECT_EQ(c->servers[0].peer_port, 2888);
  EXPECT_EQ(c->servers[0].election_port, 3888);
  EXPECT_EQ(c->servers[0].client_port, 2181);
  EXPECT_EQ(c->servers[1].host, "127.0.0.2");
  EXPECT_EQ(c->servers[1].client_host, "127.0.0.2");
  EXPECT_EQ(c->servers[2].election_port, 0);
  EXPECT_TRUE(c->servers[3].observer);
  EXPECT_FALSE(c->servers[1].observer);
  EXPECT_TRUE(c->linearizable_reads);
  Config cfg = *c;
  ASSERT_TRUE(ResolveMembership(&cfg).ok());
  EXPECT_EQ(cfg.self()->peer_port, 2889);

  Config no_secret = cfg;
  no_secret.quorum_secret.clear();
  EXPECT_NE(ResolveMembership(&no_secret).message().find("quorum.secret"), std::string::npos);
  Config stranger = cfg;
  stranger.myid = 9;
  EXPECT_NE(ResolveMembership(&stranger).message().find("no server.9"), std::string::npos);
  Config observer = cfg;
  observer.myid = 4;
  EXPECT_NE(ResolveMembership(&observer).message().find("disagree"), std::string::npos);
  observer.observer = true;
  EXPECT_TRUE(ResolveMembership(&observer).ok());
}

TEST(ConfigTest, RefusesAMountOverTheDataDir) {
  Config c = DefaultConfig();
  c.data_dir = "/tmp/qfs-cfg-test/m1";
  c.data_log_dir = "/tmp/qfs-cfg-test/m1/log";
  c.mount_dir = "/tmp/qfs-cfg-test/mnt1";
  EXPECT_TRUE(CheckMountDir(c).ok());
  c.mount_dir = "/tmp/qfs-cfg-test/m1";  // the data dir itself
  EXPECT_FALSE(CheckMountDir(c).ok());
  c.mount_dir = "/tmp/qfs-cfg-test/./m1/";
  EXPECT_FALSE(CheckMountDir(c).ok());
  c.mount_dir = "/tmp/qfs-cfg-test";  // a parent
  EXPECT_FALSE(CheckMountDir(c).ok());
  c.mount_dir = "/tmp/qfs-cfg-test/m1/log";  // dataLogDir
  EXPECT_NE(CheckMountDir(c).message().find("dataLogDir"), std::string::npos);
  c.mount_dir = "/tmp/qfs-cfg-test/m";  // a name prefix is not a parent
  EXPECT_TRUE(CheckMountDir(c).ok());
  c.mount_dir = "";
  EXPECT_TRUE(CheckMountDir(c).ok());
  c.mount_dir = "relative/mnt";  // resolved against the working directory
  EXPECT_TRUE(CheckMountDir(c).ok());
}

TEST(ConfigTest, ReadOnlyMode) {
  auto off = ParseConfig("dataDir=/x\n");
  ASSERT_TRUE(off.ok());
  EXPECT_FALSE(off->read_only_mode);  // ZooKeeper's default
  auto on = ParseConfig(
      "dataDir=/x\ntickTime=200\nreadonlymode.enabled=true\nlocalSessionsEnabled=true\n"
      "localSessionsUpgradingEnabled=true\n");
  ASSERT_TRUE(on.ok()) << on.status().ToString();
  EXPECT_TRUE(on->read_only_mode);
  // ZooKeeper's grace period: max(2 s, tickTime).
  EXPECT_EQ(on->read_only_grace_ms(), 2000);
  auto slow = ParseConfig("dataDir=/x\ntickTime=3000\nreadonlymode.enabled=false\n");
  ASSERT_TRUE(slow.ok());
  EXPECT_FALSE(slow->read_only_mode);
  EXPECT_EQ(slow->read_only_grace_ms(), 3000);
  EXPECT_FALSE(ParseConfig("dataDir=/x\nreadonlymode.enabled=yes\n").ok());
}
