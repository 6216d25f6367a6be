// The leader-of-one pipeline: prepare -> log -> apply -> reply, restarts, disk full, snapshots.
#include "daemon/replica/pipeline.h"

#include <gtest/gtest.h>
#include <sys/mount.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <filesystem>
#include <fstream>
#include <thread>

#include "consensus/util/log.h"

using namespace qfs;
using tree::Err;
using tree::Op;
using tree::OpType;
using tree::Request;

namespace {

std::string TempDir() {
  char tmpl[] = "/tmp/qfs-pipe-XXXXXX";
  EXPECT_NE(mkdtemp(tmpl), nullptr);
  return tmpl;
}

Request Create(const std::string& path, const std::string& data = "") {
  Request r;
  Op op;
  op.type = OpType::kCreate;
  op.path = path;
  op.data = data;
  op.acl = tree::OpenAcl();
  r.ops.push_back(op);
  return r;
}

Request SetData(const std::string& path, const std::string& data) {
  Request r = Create(path, data);
  r.ops[0].type = OpType::kSetData;
  return r;
}

Reply Call(Pipeline& p, Request req) {
  std::mutex mu;
  std::condition_variable cv;
  bool done = false;
  Reply out;
  p.Submit(std::move(req), [&](Reply&& r) {
    std::lock_guard<std::mutex> l(mu);
    out = std::move(r);
    done = true;
    cv.notify_one();
  });
  std::unique_lock<std::mutex> l(mu);
  cv.wait(l, [&] { return done; });
  return out;
}

class PipelineTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = TempDir();
    so_.data_dir = dir_ + "/data";
    so_.log_dir = dir_ + "/log";
    so_.segment_bytes = 1 << 20;
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  std::unique_ptr<Pipeline> Open(Pipeline::Options po = {}) {
    Status st;
    auto p = Pipeline::Start(so_, po, &st);
    EXPECT_TRUE(p) << st.ToString();
    return p;
  }
  std::string dir_;
  StoreOptions so_;
};

TEST_F(PipelineTest, WritesApplyInOrderAndSurviveRestart) {
  uint64_t digest;
  {
    auto p = Open();
    Reply a = Call(*p, Create("/a", "x"));
    ASSERT_EQ(a.err, Err::kOk);
    EXPECT_EQ(a.zxid, (int64_t{1} << 32) | 1) << "first epoch is 1, first counter 1";
    Reply dup = Call(*p, Create("/a"));
    EXPECT_EQ(dup.err, Err::kNodeExists);
    Reply s = Call(*p, SetData("/a", "yy"));
    ASSERT_EQ(s.err, Err::kOk);
    EXPECT_EQ(s.zxid, (int64_t{1} << 32) | 2) << "a failed request consumes no zxid";
    EXPECT_EQ(s.results.at(0).stat.version, 1);
    digest = p->Read([](const tree::DataTree& t) { return t.digest(); });
    p->Stop();
  }
  auto p = Open();
  EXPECT_EQ(p->Read([](const tree::DataTree& t) { return t.digest(); }), digest);
  std::string data;
  tree::Stat st;
  EXPECT_EQ(p->Read([&](const tree::DataTree& t) { return t.GetData("/a", &data, &st); }),
            Err::kOk);
  EXPECT_EQ(data, "yy");
  Reply b = Call(*p, Create("/b"));
  EXPECT_EQ(b.zxid, (int64_t{2} << 32) | 1) << "a restart starts a new epoch";
}

TEST_F(PipelineTest, RepliesFollowPrepareOrderAcrossFailures) {
  auto p = Open();
  std::mutex mu;
  std::vector<int> order;
  std::vector<Err> errs(6);
  std::atomic<int> left{6};
  auto cb = [&](int i) {
    return [&, i](Reply&& r) {
      std::lock_guard<std::mutex> l(mu);
      order.push_back(i);
      errs[i] = r.err;
      left--;
    };
  };
  p->Submit(Create("/q"), cb(0));
  p->Submit(Create("/q"), cb(1));       // fails: exists (sees the pending create)
  p->Submit(Create("/q/c"), cb(2));     // ok: parent pending
  p->Submit(Create("/nope/c"), cb(3));  // fails: no parent
  p->Submit(SetData("/q", "v"), cb(4));
  p->Submit(Create("/q/c"), cb(5));  // fails: exists
  while (left > 0) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  EXPECT_EQ(order, (std::vector<int>{0, 1, 2, 3, 4, 5}));
  EXPECT_EQ(errs, (std::vector<Err>{Err::kOk, Err::kNodeExists, Err::kOk, Err::kNoNode, Err::kOk,
                                    Err::kNodeExists}));
}

TEST_F(PipelineTest, ConcurrentWritersShareFsyncs) {
  auto p = Open();
  ASSERT_EQ(Call(*p, Create("/c")).err, Err::kOk);
  const int kThreads = 16, kEach = 200;
  std::vector<std::thread> ts;
  std::atomic<int> bad{0};
  for (int t = 0; t < kThreads; t++) {
    ts.emplace_back([&, t] {
      for (int i = 0; i < kEach; i++) {
        Reply r = Call(*p, Create("/c/" + std::to_string(t) + "-" + std::to_string(i), "d"));
        if (r.err != Err::kOk) bad++;
      }
    });
  }
  for (auto& t : ts) t.join();
  EXPECT_EQ(bad, 0);
  auto ls = p->store().log().stats();
  printf("%d writes, %llu fsyncs\n", kThreads * kEach, static_cast<unsigned long long>(ls.fsyncs));
  EXPECT_LT(ls.fsyncs, static_cast<uint64_t>(kThreads * kEach) / 2) << "no group commit";
  int32_t n = 0;
  p->Read([&](const tree::DataTree& t) { return t.GetAllChildrenNumber("/c", &n); });
  EXPECT_EQ(n, kThreads * kEach);
}

TEST_F(PipelineTest, BackPressureBoundsOutstanding) {
  Pipeline::Options po;
  po.max_outstanding = 4;
  auto p = Open(po);
  std::atomic<int> done{0};
  int accepted = 0;
  for (int i = 0; i < 100; i++) {
    if (p->TrySubmit(Create("/bp" + std::to_string(i)), [&](Reply&&) { done++; })) accepted++;
    EXPECT_LE(p->stats().outstanding, 4u);
  }
  while (done < accepted) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  EXPECT_GE(accepted, 4);
}

TEST_F(PipelineTest, SnapshotUnderHeavyWritesPausesBriefly) {
  Pipeline::Options po;
  po.snap_count = 0;
  auto p = Open(po);
  ASSERT_EQ(Call(*p, Create("/s")).err, Err::kOk);
  // A tree of some size, so that fork has page tables to copy.
  std::string data(100, 'x');
  {
    std::vector<std::thread> ts;
    for (int t = 0; t < 16; t++)
      ts.emplace_back([&, t] {
        for (int i = 0; i < 2000; i++)
          Call(*p, Create("/s/p" + std::to_string(t) + "-" + std::to_string(i), data));
      });
    for (auto& t : ts) t.join();
  }
  // Heavy writes while snapshots run; record the longest gap between consecutive replies.
  std::atomic<bool> stop{false};
  std::mutex mu;
  std::vector<double> stamps;
  std::vector<std::thread> ts;
  for (int t = 0; t < 16; t++)
    ts.emplace_back([&, t] {
      for (int i = 0; !stop; i++) {
        Call(*p, SetData("/s/p" + std::to_string(t) + "-" + std::to_string(i % 2000), data));
        std::lock_guard<std::mutex> l(mu);
        stamps.push_back(NowMs());
      }
    });
  for (int i = 0; i < 3; i++) {
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
    p->RequestSnapshot();
    while (p->store().snapshot_stats().taken + p->store().snapshot_stats().failed <
           static_cast<uint64_t>(i + 1))
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  stop = true;
  for (auto& t : ts) t.join();
  std::sort(stamps.begin(), stamps.end());
  double gap = 0;
  for (size_t i = 1; i < stamps.size(); i++) gap = std::max(gap, stamps[i] - stamps[i - 1]);
  const auto& sn = p->store().snapshot_stats();
  printf(
      "snapshot under load: %llu taken, %llu bytes, %.1f ms each; fork pause max %.2f ms; "
      "longest gap between write replies %.2f ms over %zu writes\n",
      static_cast<unsigned long long>(sn.taken), static_cast<unsigned long long>(sn.last_bytes),
      sn.last_ms, sn.max_fork_ms, gap, stamps.size());
  EXPECT_EQ(sn.taken, 3u);
  EXPECT_EQ(sn.failed, 0u);
  uint64_t digest = p->Read([](const tree::DataTree& t) { return t.digest(); });
  p.reset();  // releases the data directory
  p = Open();
  EXPECT_GT(p->store().recovery().snapshot_zxid, 0u);
  EXPECT_EQ(p->Read([](const tree::DataTree& t) { return t.digest(); }), digest);
}

// A small tmpfs: writes fail cleanly when it is full and work again when space returns.
TEST_F(PipelineTest, FullDiskStopsWritesAndRecovers) {
  std::string mnt = dir_ + "/small";
  std::filesystem::create_directories(mnt);
  if (mount("tmpfs", mnt.c_str(), "tmpfs", 0, "size=3m") != 0)
    GTEST_SKIP() << "cannot mount a tmpfs here (needs root)";
  struct Unmount {
    std::string m;
    ~Unmount() { umount2(m.c_str(), MNT_DETACH); }
  } unmount{mnt};
  so_.data_dir = mnt + "/data";
  so_.log_dir = mnt + "/log";
  so_.segment_bytes = 512 << 10;
  Pipeline::Options po;
  po.snap_count = 0;
  std::map<std::string, std::string> acked;
  {
    auto p = Open(po);
    ASSERT_EQ(Call(*p, Create("/f")).err, Err::kOk);
    // Fill the disk so that only the current segment has room.
    {
      std::ofstream filler(mnt + "/filler");
      std::string mb(1 << 20, 'z');
      for (int i = 0; i < 3; i++) filler << mb;
    }
    int ok = 0, failed = 0;
    std::string data(2000, 'd');
    for (int i = 0; i < 2000 && failed < 20; i++) {
      std::string path = "/f/n" + std::to_string(i);
      Reply r = Call(*p, Create(path, data));
      if (r.err == Err::kOk) {
        acked[path] = data;
        ok++;
      } else {
        EXPECT_EQ(r.err, Err::kSystemError);
        failed++;
      }
    }
    printf("disk full after %d writes, %d refused\n", ok, failed);
    ASSERT_GT(ok, 0);
    ASSERT_GT(failed, 0) << "the disk never filled up";
    std::filesystem::remove(mnt + "/filler");
    std::this_thread::sleep_for(std::chrono::milliseconds(150));
    int after = 0;
    for (int i = 0; i < 50; i++) {
      std::string path = "/f/again" + std::to_string(i);
      Reply r = Call(*p, Create(path, "x"));
      if (r.err == Err::kOk) {
        acked[path] = "x";
        after++;
      }
    }
    EXPECT_GT(after, 40) << "writes did not resume when space returned";
    p->Stop();
  }
  auto p = Open(po);
  for (const auto& [path, data] : acked) {
    std::string got;
    tree::Stat st;
    EXPECT_EQ(p->Read([&](const tree::DataTree& t) { return t.GetData(path, &got, &st); }),
              Err::kOk)
        << path;
    EXPECT_EQ(got, data);
  }
  uint64_t d = p->Read([](const tree::DataTree& t) { return t.digest(); });
  p->Stop();
  auto replay = ReplayLogFromScratch(so_.log_dir, 1 << 20);
  ASSERT_TRUE(replay.ok()) << replay.status().ToString();
  EXPECT_EQ((*replay)->digest(), d);
}

}  // namespace
