// TxnLog: group commit, replay, segments, truncation and purging.
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "consensus/proto/storage.pb.h"
#include "consensus/storage/file_util.h"
#include "consensus/storage/txn_log.h"

namespace qfs::storage {
namespace {

namespace fs = std::filesystem;

std::string Payload(uint64_t zxid, const std::string& tag = "") {
  std::string p = tag + "txn-" + std::to_string(zxid) + ":";
  p.append((zxid * 37) % 180, static_cast<char>('a' + zxid % 26));
  return p;
}

class LogTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/qfs_storage_log_XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override { fs::remove_all(dir_); }

  TxnLog::Options Opts(uint64_t segment_bytes = 1 << 20) {
    TxnLog::Options o;
    o.dir = dir_;
    o.segment_bytes = segment_bytes;
    return o;
  }

  std::unique_ptr<TxnLog> OpenLog(const TxnLog::Options& o, uint64_t after = 0,
                                  std::vector<LogEntry>* replayed = nullptr) {
    auto r = TxnLog::Open(o, after, [&](const LogEntry& e) {
      if (replayed) replayed->push_back(e);
    });
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    if (!r.ok()) return nullptr;
    return std::move(r).value();
  }

  std::vector<LogEntry> ReadAll(uint64_t after = 0, uint64_t segment_bytes = 1 << 20) {
    std::vector<LogEntry> out;
    auto log = OpenLog(Opts(segment_bytes), after, &out);
    return out;
  }

  void AppendRange(TxnLog* log, uint64_t from, uint64_t to, const std::string& tag = "") {
    for (uint64_t z = from; z <= to; z++) {
      ASSERT_TRUE(log->Append(LogEntry{z, Payload(z, tag)}).ok()) << z;
    }
  }

  void ExpectEntries(const std::vector<LogEntry>& got, uint64_t from, uint64_t to,
                     const std::string& tag = "") {
    ASSERT_EQ(got.size(), to >= from ? to - from + 1 : 0);
    for (size_t i = 0; i < got.size(); i++) {
      EXPECT_EQ(got[i].zxid, from + i);
      EXPECT_EQ(got[i].payload, Payload(from + i, tag)) << "zxid " << from + i;
    }
  }

  // (first zxid from the name, size) of every segment file, in order.
  std::vector<std::pair<uint64_t, uint64_t>> Segments() {
    std::vector<std::pair<uint64_t, uint64_t>> out;
    auto names = ListDir(dir_, "log.");
    EXPECT_TRUE(names.ok());
    for (const auto& n : *names) {
      out.emplace_back(std::stoull(n.substr(4), nullptr, 16), fs::file_size(dir_ + "/" + n));
    }
    return out;
  }

  // zxids of the records stored in one segment file.
  std::vector<uint64_t> ZxidsIn(const std::string& path) {
    auto data = ReadFile(path);
    EXPECT_TRUE(data.ok());
    std::vector<uint64_t> out;
    size_t pos = 16;
    std::string_view payload;
    size_t frame = 0;
    while (DecodeFrame(*data, pos, data->size(), &payload, &frame) == FrameResult::kOk) {
      LogRecord rec;
      EXPECT_TRUE(rec.ParseFromArray(payload.data(), static_cast<int>(payload.size())));
      out.push_back(rec.zxid());
      pos += frame;
    }
    return out;
  }

  std::string dir_;
};

TEST_F(LogTest, ConcurrentAppendsAreGroupCommitted) {
  constexpr uint64_t kN = 4000;
  constexpr int kThreads = 8;
  std::mutex dmu;
  std::vector<uint64_t> durable;
  auto o = Opts(4 << 20);
  o.on_durable = [&](uint64_t z) {
    std::lock_guard<std::mutex> g(dmu);
    durable.push_back(z);
  };
  o.on_failed = [&](uint64_t z, const Status& st) {
    ADD_FAILURE() << "unexpected failure at " << z << ": " << st.ToString();
  };
  auto log = OpenLog(o);
  ASSERT_NE(log, nullptr);

  // The leader assigns zxids in order; many threads then call Append concurrently.
  std::mutex zmu;
  uint64_t next = 0;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; t++) {
    threads.emplace_back([&] {
      for (;;) {
        std::lock_guard<std::mutex> g(zmu);
        if (next == kN) return;
        ++next;
        ASSERT_TRUE(log->Append(LogEntry{next, Payload(next)}).ok());
      }
    });
  }
  for (auto& t : threads) t.join();
  log->Flush();

  EXPECT_EQ(log->durable_zxid(), kN);
  EXPECT_EQ(log->last_zxid(), kN);
  {
    std::lock_guard<std::mutex> g(dmu);
    ASSERT_FALSE(durable.empty());
    for (size_t i = 1; i < durable.size(); i++) EXPECT_LT(durable[i - 1], durable[i]);
    EXPECT_EQ(durable.back(), kN);
  }
  TxnLog::Stats s = log->stats();
  EXPECT_EQ(s.entries, kN);
  EXPECT_GT(s.fsyncs, 0u);
  EXPECT_LT(s.fsyncs, kN / 4) << "batches are not being group committed";
  RecordProperty("fsyncs", std::to_string(s.fsyncs));
  EXPECT_GE(s.max_fsync_us, s.last_fsync_us);
  EXPECT_EQ(s.segments, 1u);
  EXPECT_EQ(s.disk_bytes, 4u << 20);
  EXPECT_GT(s.bytes, kN * 8);
  log->Close();
  log->Close();  // idempotent
  EXPECT_EQ(log->Append(LogEntry{kN + 1, "x"}).code(), Code::kUnavailable);
  log.reset();

  ExpectEntries(ReadAll(), 1, kN);
}

// Clients that wait for their own entry before sending the next one: every wait is answered by
// a batch that also carries the other clients' entries.
TEST_F(LogTest, WaitingClientsShareFsyncs) {
  constexpr uint64_t kN = 2000;
  constexpr int kThreads = 16;
  std::mutex dmu;
  std::condition_variable dcv;
  uint64_t durable = 0;
  bool monotonic = true;
  auto o = Opts(4 << 20);
  o.on_durable = [&](uint64_t z) {
    std::lock_guard<std::mutex> g(dmu);
    if (z <= durable) monotonic = false;
    durable = z;
    dcv.notify_all();
  };
  auto log = OpenLog(o);
  ASSERT_NE(log, nullptr);
  std::mutex zmu;
  uint64_t next = 0;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; t++) {
    threads.emplace_back([&] {
      for (;;) {
        uint64_t mine;
        {
          std::lock_guard<std::mutex> g(zmu);
          if (next == kN) return;
          mine = ++next;
          ASSERT_TRUE(log->Append(LogEntry{mine, Payload(mine)}).ok());
        }
        std::unique_lock<std::mutex> l(dmu);
        dcv.wait(l, [&] { return durable >= mine; });
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_TRUE(monotonic);
  EXPECT_EQ(durable, kN);
  TxnLog::Stats s = log->stats();
  RecordProperty("fsyncs", std::to_string(s.fsyncs));
  EXPECT_LT(s.fsyncs, kN / 2);
}

TEST_F(LogTest, ReplayAfterZxidAndContinueInSameSegment) {
  {
    auto log = OpenLog(Opts());
    AppendRange(log.get(), 1, 100);
    log->Flush();
    EXPECT_EQ(log->durable_zxid(), 100u);
  }
  ASSERT_EQ(Segments().size(), 1u);
  std::vector<LogEntry> replayed;
  auto log = OpenLog(Opts(), 60, &replayed);
  ExpectEntries(replayed, 61, 100);
  EXPECT_EQ(log->durable_zxid(), 100u);
  EXPECT_EQ(log->last_zxid(), 100u);
  AppendRange(log.get(), 101, 120);
  log->Flush();
  EXPECT_EQ(log->durable_zxid(), 120u);
  log.reset();
  // A restart does not cost a new segment.
  EXPECT_EQ(Segments().size(), 1u);
  ExpectEntries(ReadAll(), 1, 120);
  EXPECT_TRUE(ReadAll(120).empty());
}

TEST_F(LogTest, EmptyLogOpensAndCreatesNoSegmentUntilAppend) {
  {
    auto log = OpenLog(Opts());
    EXPECT_EQ(log->durable_zxid(), 0u);
    EXPECT_EQ(log->last_zxid(), 0u);
    log->Flush();
  }
  EXPECT_TRUE(Segments().empty());
  EXPECT_TRUE(ReadAll().empty());
}

TEST_F(LogTest, RollsOverIntoPreallocatedSegments) {
  constexpr uint64_t kSeg = 4096;
  {
    auto log = OpenLog(Opts(kSeg));
    AppendRange(log.get(), 1, 400);
    // One record larger than a segment gets a segment of its own, sized to fit.
    ASSERT_TRUE(log->Append(LogEntry{401, std::string(3 * kSeg, 'B')}).ok());
    AppendRange(log.get(), 402, 420);
    log->Flush();
    EXPECT_EQ(log->durable_zxid(), 420u);
    auto st = log->stats();
    EXPECT_EQ(st.segments, Segments().size());
    uint64_t total = 0;
    for (auto& [z, size] : Segments()) total += size;
    EXPECT_EQ(st.disk_bytes, total);
  }
  auto segs = Segments();
  ASSERT_GT(segs.size(), 5u);
  uint64_t expect_next = 1;
  for (auto& [first, size] : segs) {
    char name[32];
    snprintf(name, sizeof name, "log.%016llx", static_cast<unsigned long long>(first));
    auto zx = ZxidsIn(dir_ + "/" + name);
    ASSERT_FALSE(zx.empty()) << name;
    EXPECT_EQ(zx.front(), first) << "a segment is named after its first zxid";
    EXPECT_EQ(zx.front(), expect_next);
    expect_next = zx.back() + 1;
    if (first == 401) {
      EXPECT_EQ(zx, std::vector<uint64_t>{401});
      EXPECT_GT(size, 3 * kSeg);
    } else {
      EXPECT_EQ(size, kSeg) << "appends must never grow a preallocated segment";
    }
  }
  EXPECT_EQ(expect_next, 421u);
  std::vector<LogEntry> all;
  { auto log = OpenLog(Opts(kSeg), 0, &all); }
  ASSERT_EQ(all.size(), 420u);
  EXPECT_EQ(all[400].zxid, 401u);
  EXPECT_EQ(all[400].payload, std::string(3 * kSeg, 'B'));
  for (size_t i = 0; i < all.size(); i++) {
    EXPECT_EQ(all[i].zxid, i + 1);
    if (i != 400) {
      EXPECT_EQ(all[i].payload, Payload(i + 1));
    }
  }
}

// Roll-overs take the segment the spare thread prepared once the active one was half full; a
// stale spare from an earlier run is deleted at open, never read as a segment.
TEST_F(LogTest, RollOverUsesThePreparedSpare) {
  constexpr uint64_t kSeg = 4096;
  { std::ofstream(dir_ + "/spare.tmp") << "left by a crash"; }
  uint64_t used = 0;
  {
    auto log = OpenLog(Opts(kSeg));
    EXPECT_FALSE(fs::exists(dir_ + "/spare.tmp"));
    for (uint64_t z = 1; z <= 200; z++) {
      ASSERT_TRUE(log->Append(LogEntry{z, Payload(z)}).ok());
      log->Flush();
      if (z % 10 == 0) usleep(20000);  // let the spare thread keep up
    }
    used = log->stats().spares_used;
  }
  EXPECT_GT(used, 0u);
  EXPECT_FALSE(fs::exists(dir_ + "/spare.tmp")) << "closing gives the spare's space back";
  for (auto& [first, size] : Segments()) EXPECT_EQ(size, kSeg);
  std::vector<LogEntry> all;
  { auto log = OpenLog(Opts(kSeg), 0, &all); }
  ASSERT_EQ(all.size(), 200u);
  for (size_t i = 0; i < all.size(); i++) EXPECT_EQ(all[i].payload, Payload(i + 1));
}

TEST_F(LogTest, TruncateAfterDropsLaterEntries) {
  constexpr uint64_t kSeg = 4096;
  auto log = OpenLog(Opts(kSeg));
  AppendRange(log.get(), 1, 300);
  log->Flush();
  const size_t before = Segments().size();
  ASSERT_GT(before, 4u);

  ASSERT_TRUE(log->TruncateAfter(150).ok());
  EXPECT_EQ(log->last_zxid(), 150u);
  EXPECT_EQ(log->durable_zxid(), 150u);
  for (auto& [first, size] : Segments()) EXPECT_LE(first, 150u);
  EXPECT_LT(Segments().size(), before);
  EXPECT_TRUE(log->TruncateAfter(200).ok());  // nothing above 150 any more
  EXPECT_EQ(log->last_zxid(), 150u);

  // The follower then receives the leader's history after 150.
  AppendRange(log.get(), 151, 170, "new-");
  log->Flush();
  EXPECT_EQ(log->durable_zxid(), 170u);
  log.reset();

  auto all = ReadAll(0, kSeg);
  ASSERT_EQ(all.size(), 170u);
  for (uint64_t z = 1; z <= 170; z++) {
    EXPECT_EQ(all[z - 1].zxid, z);
    EXPECT_EQ(all[z - 1].payload, Payload(z, z > 150 ? "new-" : ""));
  }
}

TEST_F(LogTest, TruncateAtSegmentBoundaryAndToNothing) {
  constexpr uint64_t kSeg = 4096;
  auto log = OpenLog(Opts(kSeg));
  AppendRange(log.get(), 1, 200);
  log->Flush();
  auto segs = Segments();
  ASSERT_GT(segs.size(), 3u);
  const uint64_t boundary = segs[2].first;  // first zxid of the third segment

  ASSERT_TRUE(log->TruncateAfter(boundary - 1).ok());
  EXPECT_EQ(Segments().size(), 2u);
  EXPECT_EQ(log->last_zxid(), boundary - 1);
  AppendRange(log.get(), boundary, boundary + 5, "b-");
  log->Flush();

  ASSERT_TRUE(log->TruncateAfter(0).ok());
  EXPECT_TRUE(Segments().empty());
  EXPECT_EQ(log->last_zxid(), 0u);
  EXPECT_EQ(log->durable_zxid(), 0u);
  AppendRange(log.get(), 1, 10, "c-");
  log->Flush();
  log.reset();
  ExpectEntries(ReadAll(0, kSeg), 1, 10, "c-");
}

TEST_F(LogTest, PurgeUpToKeepsSegmentsWithLaterEntries) {
  constexpr uint64_t kSeg = 4096;
  auto log = OpenLog(Opts(kSeg));
  AppendRange(log.get(), 1, 300);
  log->Flush();
  auto segs = Segments();
  ASSERT_GT(segs.size(), 4u);

  // Nothing is removed while the first segment still holds a needed entry.
  ASSERT_TRUE(log->PurgeUpTo(segs[1].first - 2).ok());
  EXPECT_EQ(Segments(), segs);
  // Every entry of the first segment is <= segs[1].first - 1.
  ASSERT_TRUE(log->PurgeUpTo(segs[1].first - 1).ok());
  EXPECT_EQ(Segments(), std::vector(segs.begin() + 1, segs.end()));
  // zxid = first of segment 2 leaves segment 2 (it holds later entries).
  ASSERT_TRUE(log->PurgeUpTo(segs[2].first).ok());
  EXPECT_EQ(Segments(), std::vector(segs.begin() + 2, segs.end()));
  // The active segment stays even when everything is covered.
  ASSERT_TRUE(log->PurgeUpTo(1000).ok());
  EXPECT_EQ(Segments(), std::vector(segs.end() - 1, segs.end()));
  EXPECT_EQ(log->stats().segments, 1u);
  AppendRange(log.get(), 301, 310);
  log->Flush();
  log.reset();
  ExpectEntries(ReadAll(0, kSeg), segs.back().first, 310);
}

TEST_F(LogTest, NoSyncSkipsFdatasync) {
  auto o = Opts();
  o.sync = false;
  auto log = OpenLog(o);
  AppendRange(log.get(), 1, 50);
  log->Flush();
  EXPECT_EQ(log->stats().fsyncs, 0u);
  EXPECT_EQ(log->stats().entries, 50u);
  EXPECT_EQ(log->durable_zxid(), 50u);
}

TEST_F(LogTest, AppendWithOldZxidIsAProgrammingError) {
  EXPECT_DEATH(
      {
        auto log = OpenLog(Opts());
        AppendRange(log.get(), 1, 5);
        (void)log->Append(LogEntry{5, "again"});
      },
      "CHECK failed");
}

}  // namespace
}  // namespace qfs::storage
