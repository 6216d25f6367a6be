// TxnLog on a full disk: a small tmpfs where no new segment fits. Needs root for mount(2).
#include <errno.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/mount.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "consensus/storage/file_util.h"
#include "consensus/storage/txn_log.h"

namespace qfs::storage {
namespace {

namespace fs = std::filesystem;

constexpr uint64_t kSeg = 1 << 20;

std::string Payload(uint64_t zxid) {
  std::string p = "txn-" + std::to_string(zxid) + ":";
  p.resize(1000, static_cast<char>('a' + zxid % 26));
  return p;
}

class DiskFullTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/qfs_storage_full_XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    mnt_ = tmpl;
    if (mount("tmpfs", mnt_.c_str(), "tmpfs", 0, "size=4m") != 0) {
      GTEST_SKIP() << "cannot mount a tmpfs (" << strerror(errno) << "); needs root";
    }
    mounted_ = true;
    dir_ = mnt_ + "/log";
    ASSERT_TRUE(EnsureDir(dir_).ok());
  }

  void TearDown() override {
    log_.reset();
    if (mounted_ && umount2(mnt_.c_str(), 0) != 0) {
      ADD_FAILURE() << "umount " << mnt_ << ": " << strerror(errno);
      umount2(mnt_.c_str(), MNT_DETACH);
    }
    fs::remove_all(mnt_);
  }

  void OpenLog(std::vector<LogEntry>* replayed = nullptr) {
    TxnLog::Options o;
    o.dir = dir_;
    o.segment_bytes = kSeg;
    o.on_durable = [this](uint64_t z) {
      std::lock_guard<std::mutex> g(mu_);
      EXPECT_GT(z, reported_durable_);
      reported_durable_ = z;
    };
    o.on_failed = [this](uint64_t z, const Status& st) {
      std::lock_guard<std::mutex> g(mu_);
      failures_.emplace_back(z, st);
    };
    auto r = TxnLog::Open(o, 0, [replayed](const LogEntry& e) {
      if (replayed) replayed->push_back(e);
    });
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    log_ = std::move(r).value();
  }

  // Fills the file system with a filler file until ENOSPC.
  void Fill() {
    int fd = open((mnt_ + "/filler").c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    ASSERT_GE(fd, 0);
    std::string chunk(64 << 10, 'F');
    for (;;) {
      ssize_t w = write(fd, chunk.data(), chunk.size());
      if (w < static_cast<ssize_t>(chunk.size())) break;
    }
    close(fd);
  }

  std::vector<std::string> Files() {
    std::vector<std::string> out;
    for (const auto& e : fs::directory_iterator(dir_)) out.push_back(e.path().filename());
    std::sort(out.begin(), out.end());
    return out;
  }

  uint64_t ReportedDurable() {
    std::lock_guard<std::mutex> g(mu_);
    return reported_durable_;
  }

  void ExpectDurableEntriesPresent(const std::vector<LogEntry>& got, uint64_t last) {
    ASSERT_EQ(got.size(), last);
    for (uint64_t z = 1; z <= last; z++) {
      EXPECT_EQ(got[z - 1].zxid, z);
      EXPECT_EQ(got[z - 1].payload, Payload(z)) << z;
    }
  }

  std::string mnt_, dir_;
  bool mounted_ = false;
  std::unique_ptr<TxnLog> log_;
  std::mutex mu_;
  uint64_t reported_durable_ = 0;
  std::vector<std::pair<uint64_t, Status>> failures_;
};

TEST_F(DiskFullTest, FailsCleanlyAndRecoversWhenSpaceReturns) {
  OpenLog();
  for (uint64_t z = 1; z <= 300; z++) ASSERT_TRUE(log_->Append(LogEntry{z, Payload(z)}).ok());
  log_->Flush();
  ASSERT_EQ(ReportedDurable(), 300u);
  Fill();

  // The first segment holds about 1000 records; appending past it needs a new segment.
  Status st;
  for (uint64_t z = 301; z <= 1500; z++) {
    st = log_->Append(LogEntry{z, Payload(z)});
    if (!st.ok()) break;
  }
  log_->Flush();
  if (!st.ok()) {
    EXPECT_EQ(st.code(), Code::kNoSpace) << st.ToString();
  }
  uint64_t first_failed;
  {
    std::lock_guard<std::mutex> g(mu_);
    ASSERT_EQ(failures_.size(), 1u);
    first_failed = failures_[0].first;
    EXPECT_EQ(failures_[0].second.code(), Code::kNoSpace) << failures_[0].second.ToString();
  }
  EXPECT_GT(first_failed, 900u);
  EXPECT_LT(first_failed, 1100u);
  // Everything before the failed entry is durable; it and everything queued after it is dropped.
  EXPECT_EQ(ReportedDurable(), first_failed - 1);
  EXPECT_EQ(log_->durable_zxid(), first_failed - 1);
  EXPECT_EQ(log_->last_zxid(), first_failed - 1);
  // The partial segment was removed.
  EXPECT_EQ(Files(), std::vector<std::string>{"log.0000000000000001"});

  // Within the retry interval appends fail at once, without touching the disk.
  auto t0 = std::chrono::steady_clock::now();
  EXPECT_EQ(log_->Append(LogEntry{first_failed, Payload(first_failed)}).code(), Code::kNoSpace);
  EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::milliseconds(50));
  // After it, the next append retries, still in vain.
  std::this_thread::sleep_for(std::chrono::milliseconds(150));
  EXPECT_EQ(log_->Append(LogEntry{first_failed, Payload(first_failed)}).code(), Code::kNoSpace);
  EXPECT_EQ(Files(), std::vector<std::string>{"log.0000000000000001"});
  {
    std::lock_guard<std::mutex> g(mu_);
    EXPECT_EQ(failures_.size(), 1u) << "a rejected Append must not report through on_failed";
  }

  // A restart on the full disk loses nothing that was reported durable.
  log_.reset();
  std::vector<LogEntry> got;
  OpenLog(&got);
  ExpectDurableEntriesPresent(got, first_failed - 1);
  EXPECT_EQ(log_->durable_zxid(), first_failed - 1);
  // The restarted log learns about the full disk from its writer.
  ASSERT_TRUE(log_->Append(LogEntry{first_failed, Payload(first_failed)}).ok());
  log_->Flush();
  {
    std::lock_guard<std::mutex> g(mu_);
    ASSERT_EQ(failures_.size(), 2u);
    EXPECT_EQ(failures_[1].first, first_failed);
  }
  EXPECT_EQ(Files(), std::vector<std::string>{"log.0000000000000001"});

  // Space comes back; appends work again once the retry interval has passed.
  ASSERT_EQ(unlink((mnt_ + "/filler").c_str()), 0);
  EXPECT_EQ(log_->Append(LogEntry{first_failed, Payload(first_failed)}).code(), Code::kNoSpace);
  std::this_thread::sleep_for(std::chrono::milliseconds(150));
  const uint64_t last = first_failed + 400;
  for (uint64_t n = first_failed; n <= last; n++) {
    ASSERT_TRUE(log_->Append(LogEntry{n, Payload(n)}).ok()) << n;
  }
  log_->Flush();
  EXPECT_EQ(log_->durable_zxid(), last);
  EXPECT_EQ(ReportedDurable(), last);
  EXPECT_EQ(Files().size(), 2u);
  {
    std::lock_guard<std::mutex> g(mu_);
    EXPECT_EQ(failures_.size(), 2u);
  }

  log_.reset();
  got.clear();
  OpenLog(&got);
  ExpectDurableEntriesPresent(got, last);
}

TEST_F(DiskFullTest, FirstSegmentOfAnEmptyLogCannotBeCreated) {
  Fill();
  OpenLog();
  ASSERT_TRUE(log_->Append(LogEntry{1, Payload(1)}).ok());  // queued; the writer finds no space
  log_->Flush();
  {
    std::lock_guard<std::mutex> g(mu_);
    ASSERT_EQ(failures_.size(), 1u);
    EXPECT_EQ(failures_[0].first, 1u);
  }
  EXPECT_EQ(log_->durable_zxid(), 0u);
  EXPECT_EQ(log_->last_zxid(), 0u);
  EXPECT_TRUE(Files().empty());
  EXPECT_EQ(log_->Append(LogEntry{1, Payload(1)}).code(), Code::kNoSpace);

  ASSERT_EQ(unlink((mnt_ + "/filler").c_str()), 0);
  std::this_thread::sleep_for(std::chrono::milliseconds(150));
  // The retrying Append creates the segment itself and is accepted.
  ASSERT_TRUE(log_->Append(LogEntry{1, Payload(1)}).ok());
  ASSERT_TRUE(log_->Append(LogEntry{2, Payload(2)}).ok());
  log_->Flush();
  EXPECT_EQ(ReportedDurable(), 2u);
  log_.reset();
  std::vector<LogEntry> got;
  OpenLog(&got);
  ExpectDurableEntriesPresent(got, 2);
}

}  // namespace
}  // namespace qfs::storage
