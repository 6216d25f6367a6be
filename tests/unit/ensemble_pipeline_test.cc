// The replica shell in an ensemble: three (or five) Pipelines in one process, talking over the
// real peer transport on loopback. Elections, forwarded writes, replication, a leader stopped
// and replaced, a member restarted (DIFF), a member far behind (SNAP), sync.
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <condition_variable>
#include <filesystem>
#include <map>
#include <set>
#include <thread>

#include "consensus/util/log.h"
#include "daemon/replica/pipeline.h"
#include "tests/unit/free_port.h"

using namespace qfs;
using tree::Err;

namespace {

using testing_util::FreePort;

tree::Request Create(const std::string& path, const std::string& data = "") {
  tree::Request r;
  tree::Op op;
  op.type = tree::OpType::kCreate;
  op.path = path;
  op.data = data;
  op.acl = tree::OpenAcl();
  r.ops.push_back(op);
  return r;
}

Reply Call(Pipeline& p, tree::Request req, bool sync = false) {
  std::mutex mu;
  std::condition_variable cv;
  bool done = false;
  Reply out;
  auto fn = [&](Reply&& r) {
    std::lock_guard<std::mutex> l(mu);
    out = std::move(r);
    done = true;
    cv.notify_one();
  };
  if (sync) {
    p.Sync(fn);
  } else {
    p.Submit(std::move(req), fn);
  }
  std::unique_lock<std::mutex> l(mu);
  cv.wait(l, [&] { return done; });
  return out;
}

class Ensemble {
 public:
  explicit Ensemble(int n, uint64_t snap_count = 100000, bool read_only_mode = false)
      : n_(n), snap_count_(snap_count), read_only_mode_(read_only_mode) {
    char tmpl[] = "/tmp/qfs-ens-XXXXXX";
    dir_ = mkdtemp(tmpl);
    for (int i = 1; i <= n; i++) {
      Config::Server s;
      s.id = static_cast<uint64_t>(i);
      s.host = "127.0.0.1";
      s.peer_port = FreePort();
      servers_.push_back(s);
    }
    members_.resize(static_cast<size_t>(n) + 1);
  }
  ~Ensemble() {
    for (auto& m : members_) m.reset();
    std::filesystem::remove_all(dir_);
  }
  void Start(int id) {
    Config c = DefaultConfig();
    c.data_dir = c.data_log_dir = dir_ + "/m" + std::to_string(id);
    c.servers = servers_;
    if (config_members_ > 0) {
      // A joining server's zoo.cfg: the configuration plus itself.
      c.servers.resize(static_cast<size_t>(config_members_));
      if (id > config_members_) c.servers.push_back(servers_[static_cast<size_t>(id) - 1]);
      c.reconfig_enabled = true;
    }
    c.myid = static_cast<uint64_t>(id);
    c.quorum_secret = "test-secret";
    c.tick_time_ms = 50;
    c.init_limit = 40;
    c.sync_limit = 10;
    c.read_only_mode = read_only_mode_;
    StoreOptions so;
    so.data_dir = so.log_dir = c.data_dir;
    so.segment_bytes = 1 << 20;
    Pipeline::Options po;
    po.config = c;
    po.snap_count = snap_count_;
    po.committed_window = 100;  // older txns come from the log or a snapshot
    Status st;
    members_[static_cast<size_t>(id)] = Pipeline::Start(so, po, &st);
    ASSERT_TRUE(members_[static_cast<size_t>(id)]) << st.ToString();
  }
  // With reconfigEnabled, members 1..k are the configuration and the others start outside it
  // (docs/reconfig.md, "Joining servers").
  void SetConfigMembers(int k) { config_members_ = k; }
  void StartAll() {
    for (int i = 1; i <= n_; i++) Start(i);
  }
  void Stop(int id) { members_[static_cast<size_t>(id)].reset(); }
  Pipeline* at(int id) { return members_[static_cast<size_t>(id)].get(); }

  // Waits until one member leads and every running member serves under it.
  int WaitLeader(double seconds = 10) {
    auto end = std::chrono::steady_clock::now() + std::chrono::duration<double>(seconds);
    while (std::chrono::steady_clock::now() < end) {
      int leader = 0;
      bool all = true;
      for (int i = 1; i <= n_; i++) {
        if (!at(i)) continue;
        MemberStatus s = at(i)->member();
        if (!s.serving) all = false;
        if (s.serving && s.role == zab::Role::kLeading) leader = i;
      }
      if (leader && all) return leader;
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    return 0;
  }
  // Waits until every running member applied the same last zxid; returns whether digests agree.
  bool WaitConverged(double seconds = 10) {
    auto end = std::chrono::steady_clock::now() + std::chrono::duration<double>(seconds);
    while (std::chrono::steady_clock::now() < end) {
      std::set<std::pair<int64_t, uint64_t>> seen;
      for (int i = 1; i <= n_; i++) {
        if (!at(i)) continue;
        seen.insert(at(i)->Read(
            [](const tree::DataTree& t) { return std::make_pair(t.last_zxid(), t.digest()); }));
      }
      if (seen.size() == 1) return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    return false;
  }
  bool Exists(int id, const std::string& path) {
    return at(id)->Read([&](const tree::DataTree& t) {
      tree::Stat st;
      return t.Exists(path, &st) == Err::kOk;
    });
  }

 private:
  int n_;
  int config_members_ = 0;
  uint64_t snap_count_;
  bool read_only_mode_;
  std::string dir_;
  std::vector<Config::Server> servers_;
  std::vector<std::unique_ptr<Pipeline>> members_;
};

TEST(EnsemblePipeline, ElectsReplicatesAndForwards) {
  Ensemble e(3);
  e.StartAll();
  int leader = e.WaitLeader();
  ASSERT_NE(leader, 0);
  for (int i = 1; i <= 3; i++) {
    Reply r = Call(*e.at(i), Create("/from" + std::to_string(i), "x"));
    ASSERT_EQ(r.err, Err::kOk) << "member " << i;
    EXPECT_TRUE(e.Exists(i, "/from" + std::to_string(i))) << "a reply reflects the member's tree";
  }
  Reply dup = Call(*e.at(leader % 3 + 1), Create("/from1"));
  EXPECT_EQ(dup.err, Err::kNodeExists) << "a learner gets the leader's prepare error";
  Reply s = Call(*e.at(leader % 3 + 1), {}, true);
  EXPECT_EQ(s.err, Err::kOk);
  EXPECT_TRUE(e.WaitConverged());
  for (int i = 1; i <= 3; i++) {
    EXPECT_EQ(e.at(i)->member().leader, static_cast<uint64_t>(leader));
    EXPECT_EQ(e.at(i)->member().standalone, false);
  }
}

// A server outside the configuration (reconfigEnabled) is taken as a guest by the members'
// transports, finds the leader and syncs and serves as a non-voting learner before any reconfig
// names it (docs/reconfig.md, "Adding and removing members"). Before guests, the members
// refused its connections and it never served.
TEST(EnsemblePipeline, JoiningServerSyncsBeforeAnyReconfig) {
  Ensemble e(4);
  e.SetConfigMembers(3);
  for (int i = 1; i <= 3; i++) e.Start(i);
  const int leader = e.WaitLeader();
  ASSERT_NE(leader, 0);
  ASSERT_EQ(Call(*e.at(leader), Create("/before", "x")).err, Err::kOk);
  e.Start(4);
  ASSERT_EQ(e.WaitLeader(), leader) << "the joining server did not sync with the leader";
  MemberStatus s = e.at(4)->member();
  EXPECT_EQ(s.role, zab::Role::kFollowing);
  EXPECT_EQ(s.leader, static_cast<uint64_t>(leader));
  EXPECT_TRUE(e.Exists(4, "/before"));
  Reply r = Call(*e.at(4), Create("/via4", "y"));  // forwarded to the leader
  ASSERT_EQ(r.err, Err::kOk);
  EXPECT_TRUE(e.Exists(4, "/via4"));
  EXPECT_TRUE(e.WaitConverged());
}

TEST(EnsemblePipeline, NewLeaderAfterTheLeaderStops) {
  Ensemble e(3);
  e.StartAll();
  int leader = e.WaitLeader();
  ASSERT_NE(leader, 0);
  int other = leader % 3 + 1;
  for (int i = 0; i < 50; i++)
    ASSERT_EQ(Call(*e.at(other), Create("/a" + std::to_string(i))).err, Err::kOk);
  auto t0 = std::chrono::steady_clock::now();
  e.Stop(leader);
  int next = e.WaitLeader();
  ASSERT_NE(next, 0);
  ASSERT_NE(next, leader);
  Reply r = Call(*e.at(other), Create("/after"));
  double ms =
      std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
  ASSERT_EQ(r.err, Err::kOk);
  printf("failover (stop of the leader to the next acknowledged write): %.0f ms\n", ms);
  for (int i = 0; i < 50; i++) EXPECT_TRUE(e.Exists(other, "/a" + std::to_string(i)));
  // The old leader comes back as a follower and catches up.
  e.Start(leader);
  ASSERT_NE(e.WaitLeader(), 0);
  EXPECT_TRUE(e.WaitConverged());
  EXPECT_TRUE(e.Exists(leader, "/after"));
}

TEST(EnsemblePipeline, FollowerCatchesUpByDiffAndBySnapshot) {
  Ensemble e(3, /*snap_count=*/200);
  e.StartAll();
  int leader = e.WaitLeader();
  ASSERT_NE(leader, 0);
  int lagger = leader % 3 + 1;
  e.Stop(lagger);
  for (int i = 0; i < 100; i++)
    ASSERT_EQ(Call(*e.at(leader), Create("/d" + std::to_string(i))).err, Err::kOk);
  e.Start(lagger);  // 100 txns behind: DIFF
  ASSERT_NE(e.WaitLeader(), 0);
  ASSERT_TRUE(e.WaitConverged());
  EXPECT_TRUE(e.Exists(lagger, "/d99"));
  e.Stop(lagger);
  std::string big(4000, 'b');
  for (int i = 0; i < 3000; i++)
    ASSERT_EQ(Call(*e.at(leader), Create("/s" + std::to_string(i), big)).err, Err::kOk);
  e.Start(lagger);  // far behind, with the leader's log purged past it: SNAP (or a long DIFF)
  ASSERT_NE(e.WaitLeader(20), 0);
  ASSERT_TRUE(e.WaitConverged(20));
  EXPECT_TRUE(e.Exists(lagger, "/s2999"));
  ASSERT_EQ(Call(*e.at(lagger), Create("/last")).err, Err::kOk);
  EXPECT_TRUE(e.WaitConverged());
}

TEST(EnsemblePipeline, MinorityRefusesWrites) {
  Ensemble e(3);
  e.StartAll();
  int leader = e.WaitLeader();
  ASSERT_NE(leader, 0);
  int a = leader % 3 + 1, b = a % 3 + 1;
  e.Stop(a);
  e.Stop(b);
  // The leader alone has no quorum: it steps down, and a write fails after writeWaitMs.
  Reply r = Call(*e.at(leader), Create("/lonely"));
  EXPECT_EQ(r.err, Err::kConnectionLoss);
  EXPECT_FALSE(e.at(leader)->member().serving);
  e.Start(a);
  ASSERT_NE(e.WaitLeader(), 0);
  EXPECT_EQ(Call(*e.at(a), Create("/together")).err, Err::kOk);
}

// readonlymode.enabled (docs/read-only.md): the member left alone turns read-only after
// max(2 s, tickTime) of looking; a write waiting for a leader then, and every later write or
// sync, fails with kNotReadOnly at once; finding a leader ends it.
TEST(EnsemblePipeline, ReadOnlyModeAfterTheGracePeriod) {
  std::vector<bool> seen_read_only;  // before the ensemble: its listener outlives nothing it uses
  std::mutex mu;
  Ensemble e(3, 100000, true);
  e.StartAll();
  int leader = e.WaitLeader();
  ASSERT_NE(leader, 0);
  ASSERT_EQ(Call(*e.at(leader), Create("/before", "x")).err, Err::kOk);
  int a = leader % 3 + 1, b = a % 3 + 1;
  ASSERT_TRUE(e.WaitConverged());
  e.Stop(a);
  e.Stop(b);
  Pipeline& p = *e.at(leader);
  auto t0 = std::chrono::steady_clock::now();
  int h = p.AddRoleListener([&](const MemberStatus& m) {
    std::lock_guard<std::mutex> l(mu);
    seen_read_only.push_back(m.read_only);
  });
  while (!p.member().read_only && std::chrono::steady_clock::now() - t0 < std::chrono::seconds(10))
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  const double waited =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  ASSERT_TRUE(p.member().read_only);
  EXPECT_GE(waited, 1.9) << "the grace period is 2 s";
  EXPECT_FALSE(p.member().serving);
  EXPECT_EQ(p.member().role, zab::Role::kLooking);
  {
    std::lock_guard<std::mutex> l(mu);
    ASSERT_FALSE(seen_read_only.empty()) << "the role listeners heard of it";
    EXPECT_TRUE(seen_read_only.back());
  }
  auto t1 = std::chrono::steady_clock::now();
  EXPECT_EQ(Call(p, Create("/lonely")).err, Err::kNotReadOnly);
  EXPECT_EQ(Call(p, {}, /*sync=*/true).err, Err::kNotReadOnly);
  EXPECT_LT(std::chrono::steady_clock::now() - t1, std::chrono::milliseconds(400)) << "at once";
  EXPECT_TRUE(e.Exists(leader, "/before")) << "the tree is still there to read";
  e.Start(a);
  ASSERT_NE(e.WaitLeader(), 0);
  EXPECT_FALSE(p.member().read_only);
  EXPECT_EQ(Call(p, Create("/together")).err, Err::kOk);
  p.RemoveRoleListener(h);
}

}  // namespace
