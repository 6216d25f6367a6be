// TxnLog recovery: torn tails are repaired, damage before the tail is refused.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <random>
#include <string>
#include <vector>

#include "consensus/proto/storage.pb.h"
#include "consensus/storage/file_util.h"
#include "consensus/storage/txn_log.h"

namespace qfs::storage {
namespace {

namespace fs = std::filesystem;

constexpr uint64_t kSeg = 64 << 10;

std::string Payload(uint64_t zxid, const std::string& tag = "") {
  std::string p = tag + "txn-" + std::to_string(zxid) + ":";
  p.append(60 + (zxid * 13) % 90, static_cast<char>('a' + zxid % 26));
  return p;
}

std::string SegName(uint64_t first) {
  char name[32];
  snprintf(name, sizeof name, "log.%016llx", static_cast<unsigned long long>(first));
  return name;
}

// A segment image as the log writes it: header, frames, zeros up to `size`.
std::string BuildSegment(const std::vector<uint64_t>& zxids, size_t size) {
  std::string s("QFSLOG01", 8);
  s.append(8, '\0');
  for (uint64_t z : zxids) {
    LogRecord rec;
    rec.set_zxid(z);
    rec.set_payload(Payload(z));
    AppendFrame(&s, rec.SerializeAsString());
  }
  if (s.size() < size) s.resize(size, '\0');
  return s;
}

class LogRecoveryTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/qfs_storage_recovery_XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override { fs::remove_all(dir_); }

  TxnLog::Options Opts() {
    TxnLog::Options o;
    o.dir = dir_;
    o.segment_bytes = kSeg;
    return o;
  }

  Result<std::unique_ptr<TxnLog>> Open(std::vector<LogEntry>* out = nullptr) {
    return TxnLog::Open(Opts(), 0, [out](const LogEntry& e) {
      if (out) out->push_back(e);
    });
  }

  void Write(uint64_t from, uint64_t to, const std::string& tag = "") {
    auto log = Open();
    ASSERT_TRUE(log.ok()) << log.status().ToString();
    for (uint64_t z = from; z <= to; z++) {
      ASSERT_TRUE((*log)->Append(LogEntry{z, Payload(z, tag)}).ok());
    }
    (*log)->Flush();
    ASSERT_EQ((*log)->durable_zxid(), to);
  }

  // Expects the log to hold exactly [1, to], with `tag` on entries from `tag_from` on.
  void ExpectLog(uint64_t to, uint64_t tag_from = 0, const std::string& tag = "") {
    std::vector<LogEntry> got;
    auto log = Open(&got);
    ASSERT_TRUE(log.ok()) << log.status().ToString();
    EXPECT_EQ((*log)->durable_zxid(), to);
    ASSERT_EQ(got.size(), to);
    for (uint64_t z = 1; z <= to; z++) {
      EXPECT_EQ(got[z - 1].zxid, z);
      EXPECT_EQ(got[z - 1].payload, Payload(z, tag_from && z >= tag_from ? tag : "")) << z;
    }
  }

  std::vector<std::string> SegmentPaths() {
    auto names = ListDir(dir_, "log.");
    EXPECT_TRUE(names.ok());
    std::vector<std::string> out;
    for (const auto& n : *names) out.push_back(dir_ + "/" + n);
    return out;
  }

  // Offsets of the frames in a segment, plus the end of data as the last element.
  std::vector<size_t> FrameOffsets(const std::string& path) {
    auto data = ReadFile(path);
    EXPECT_TRUE(data.ok());
    std::vector<size_t> out;
    size_t pos = 16;
    std::string_view p;
    size_t frame = 0;
    while (DecodeFrame(*data, pos, data->size(), &p, &frame) == FrameResult::kOk) {
      out.push_back(pos);
      pos += frame;
    }
    out.push_back(pos);
    return out;
  }

  void Pwrite(const std::string& path, const std::string& bytes, size_t off) {
    int fd = open(path.c_str(), O_WRONLY);
    ASSERT_GE(fd, 0);
    ASSERT_EQ(pwrite(fd, bytes.data(), bytes.size(), static_cast<off_t>(off)),
              static_cast<ssize_t>(bytes.size()));
    close(fd);
  }

  void FlipByte(const std::string& path, size_t off) {
    auto data = ReadFile(path);
    ASSERT_TRUE(data.ok());
    ASSERT_LT(off, data->size());
    Pwrite(path, std::string(1, static_cast<char>((*data)[off] ^ 0x5a)), off);
  }

  void WriteFile(const std::string& path, const std::string& data) {
    int fd = open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    ASSERT_GE(fd, 0);
    ASSERT_EQ(write(fd, data.data(), data.size()), static_cast<ssize_t>(data.size()));
    close(fd);
  }

  std::string dir_;
};

TEST_F(LogRecoveryTest, SegmentTruncatedMidRecordIsATornTail) {
  Write(1, 50);
  auto paths = SegmentPaths();
  ASSERT_EQ(paths.size(), 1u);
  auto offs = FrameOffsets(paths[0]);
  ASSERT_EQ(offs.size(), 51u);
  // The process died while record 40 was being written and the file was short.
  fs::resize_file(paths[0], offs[39] + 10);

  ExpectLog(39);
  // Appends continue (in a new segment, the cut one has no room) and survive a restart.
  Write(40, 60, "after-");
  ExpectLog(60, 40, "after-");
  EXPECT_EQ(SegmentPaths().size(), 2u);
}

TEST_F(LogRecoveryTest, GarbageAfterLastRecordIsZeroedAndAppendsContinueInPlace) {
  Write(1, 50);
  auto paths = SegmentPaths();
  ASSERT_EQ(paths.size(), 1u);
  const size_t end = FrameOffsets(paths[0]).back();
  std::mt19937 rng(7);
  std::string junk(300, '\0');
  for (char& c : junk) c = static_cast<char>(rng() | 1);  // never a zero length word
  Pwrite(paths[0], junk, end);

  ExpectLog(50);
  // The torn bytes are gone and the preallocation is kept.
  auto data = ReadFile(paths[0]);
  ASSERT_TRUE(data.ok());
  EXPECT_EQ(data->size(), kSeg);
  EXPECT_EQ(data->substr(end), std::string(kSeg - end, '\0'));

  Write(51, 70, "after-");
  EXPECT_EQ(SegmentPaths().size(), 1u);
  ExpectLog(70, 51, "after-");
}

TEST_F(LogRecoveryTest, DamagedLastRecordIsATornTail) {
  Write(1, 50);
  auto paths = SegmentPaths();
  auto offs = FrameOffsets(paths[0]);
  FlipByte(paths[0], offs[49] + 20);  // inside record 50, nothing valid after it
  ExpectLog(49);
  Write(50, 55, "again-");
  ExpectLog(55, 50, "again-");
}

TEST_F(LogRecoveryTest, PartiallyZeroedLastRecordIsATornTail) {
  Write(1, 30);
  auto paths = SegmentPaths();
  auto offs = FrameOffsets(paths[0]);
  // Only the first bytes of the last record reached the disk.
  Pwrite(paths[0], std::string(offs[30] - offs[29] - 12, '\0'), offs[29] + 12);
  ExpectLog(29);
}

// ScanLog (quorumfs log-dump) sees what recovery sees, and changes nothing.
TEST_F(LogRecoveryTest, ScanReportsATornTailWithoutRepairingIt) {
  Write(1, 50);
  auto paths = SegmentPaths();
  auto offs = FrameOffsets(paths[0]);
  FlipByte(paths[0], offs[49] + 20);
  auto before = ReadFile(paths[0]);
  ASSERT_TRUE(before.ok());
  std::vector<uint64_t> zxids;
  std::vector<LogScanSegment> segs;
  Status st = ScanLog(
      dir_,
      [&](const LogScanRecord& r) {
        EXPECT_EQ(r.offset, offs[zxids.size()]);
        EXPECT_EQ(r.payload, Payload(r.zxid));
        zxids.push_back(r.zxid);
      },
      [&](const LogScanSegment& s) { segs.push_back(s); });
  ASSERT_TRUE(st.ok()) << st.ToString();
  ASSERT_EQ(zxids.size(), 49u);
  EXPECT_EQ(zxids.back(), 49u);
  ASSERT_EQ(segs.size(), 1u);
  EXPECT_TRUE(segs[0].torn);
  EXPECT_FALSE(segs[0].remove);
  EXPECT_EQ(segs[0].end, offs[49]);
  EXPECT_EQ(segs[0].records, 49u);
  EXPECT_EQ(*ReadFile(paths[0]), *before);
  // One segment file on its own reads the same.
  size_t n = 0;
  ASSERT_TRUE(ScanLog(
                  paths[0], [&](const LogScanRecord&) { n++; }, [](const LogScanSegment&) {})
                  .ok());
  EXPECT_EQ(n, 49u);
  ExpectLog(49);
}

TEST_F(LogRecoveryTest, ScanRefusesWhatRecoveryRefusesWithTheSameMessage) {
  Write(1, 50);
  auto paths = SegmentPaths();
  auto offs = FrameOffsets(paths[0]);
  FlipByte(paths[0], offs[19] + 12);
  size_t n = 0, segs = 0;
  Status st = ScanLog(
      dir_, [&](const LogScanRecord&) { n++; }, [&](const LogScanSegment&) { segs++; });
  EXPECT_EQ(st.code(), Code::kCorruption);
  EXPECT_EQ(n, 19u);  // the records before the damage
  EXPECT_EQ(segs, 0u);
  EXPECT_EQ(st.message(), Open().status().message());
}

TEST_F(LogRecoveryTest, ScanWalksEverySegmentAndRefusesDamageInAnEarlierOne) {
  Write(1, 1500);
  auto paths = SegmentPaths();
  ASSERT_GE(paths.size(), 3u);
  uint64_t next = 1;
  std::vector<std::string> seen;
  Status st = ScanLog(
      dir_, [&](const LogScanRecord& r) { EXPECT_EQ(r.zxid, next++); },
      [&](const LogScanSegment& s) {
        EXPECT_FALSE(s.torn || s.stray || s.remove) << s.path;
        seen.push_back(s.path);
      });
  ASSERT_TRUE(st.ok()) << st.ToString();
  EXPECT_EQ(next, 1501u);
  EXPECT_EQ(seen, paths);

  auto offs = FrameOffsets(paths[0]);
  FlipByte(paths[0], offs[offs.size() - 2] + 9);
  seen.clear();
  st = ScanLog(
      dir_, [](const LogScanRecord&) {}, [&](const LogScanSegment& s) { seen.push_back(s.path); });
  EXPECT_EQ(st.code(), Code::kCorruption);
  EXPECT_TRUE(seen.empty());
  EXPECT_EQ(st.message(), Open().status().message());
}

TEST_F(LogRecoveryTest, DamagedRecordFollowedByValidRecordsIsCorruption) {
  Write(1, 50);
  auto paths = SegmentPaths();
  auto offs = FrameOffsets(paths[0]);
  const size_t bad = offs[19];  // record 20
  FlipByte(paths[0], bad + 12);
  auto log = Open();
  ASSERT_FALSE(log.ok());
  EXPECT_EQ(log.status().code(), Code::kCorruption);
  const std::string& msg = log.status().message();
  EXPECT_NE(msg.find(fs::path(paths[0]).filename().string()), std::string::npos) << msg;
  EXPECT_NE(msg.find("offset " + std::to_string(bad)), std::string::npos) << msg;
  // Nothing was repaired behind the operator's back.
  EXPECT_EQ(FrameOffsets(paths[0]).size(), 20u);
  EXPECT_EQ(Open().status().code(), Code::kCorruption);
}

TEST_F(LogRecoveryTest, DamagedLengthWordFollowedByValidRecordsIsCorruption) {
  Write(1, 50);
  auto paths = SegmentPaths();
  auto offs = FrameOffsets(paths[0]);
  Pwrite(paths[0], std::string("\xff\xff\xff\x7f", 4), offs[9]);
  auto log = Open();
  ASSERT_EQ(log.status().code(), Code::kCorruption);
  EXPECT_NE(log.status().message().find("offset " + std::to_string(offs[9])), std::string::npos)
      << log.status().message();
}

TEST_F(LogRecoveryTest, DamageInANonLastSegmentIsCorruption) {
  // Several segments, written by the log itself.
  Write(1, 1500);
  auto paths = SegmentPaths();
  ASSERT_GE(paths.size(), 3u);
  auto offs = FrameOffsets(paths[0]);
  // The last record of the first segment: no valid record follows it in that file.
  FlipByte(paths[0], offs[offs.size() - 2] + 9);
  auto log = Open();
  ASSERT_FALSE(log.ok());
  EXPECT_EQ(log.status().code(), Code::kCorruption);
  EXPECT_NE(log.status().message().find(fs::path(paths[0]).filename().string()), std::string::npos)
      << log.status().message();
  EXPECT_NE(log.status().message().find("offset " + std::to_string(offs[offs.size() - 2])),
            std::string::npos)
      << log.status().message();
}

TEST_F(LogRecoveryTest, ZeroedRecordFollowedByValidRecordsIsCorruption) {
  Write(1, 50);
  auto paths = SegmentPaths();
  auto offs = FrameOffsets(paths[0]);
  Pwrite(paths[0], std::string(offs[20] - offs[19], '\0'), offs[19]);
  EXPECT_EQ(Open().status().code(), Code::kCorruption);
}

TEST_F(LogRecoveryTest, ShortLastSegmentFromACrashedCreateIsRemoved) {
  Write(1, 20);
  WriteFile(dir_ + "/" + SegName(21), "QFSLOG");
  ExpectLog(20);
  EXPECT_EQ(SegmentPaths().size(), 1u);
  Write(21, 25);
  ExpectLog(25);
}

TEST_F(LogRecoveryTest, LastSegmentWithoutRecordsIsRemoved) {
  Write(1, 20);
  WriteFile(dir_ + "/" + SegName(21), BuildSegment({}, kSeg));
  ExpectLog(20);
  ASSERT_EQ(SegmentPaths().size(), 1u);
  Write(21, 25);
  EXPECT_EQ(SegmentPaths().size(), 1u);
  ExpectLog(25);
}

TEST_F(LogRecoveryTest, StrayBytesAreClearedWhenTheirSegmentBecomesActiveAgain) {
  std::string first = BuildSegment({1, 2, 3}, kSeg);
  const size_t end = BuildSegment({1, 2, 3}, 0).size();
  for (size_t i = kSeg - 100; i < kSeg; i++) first[i] = static_cast<char>(0xa5);
  WriteFile(dir_ + "/" + SegName(1), first);
  WriteFile(dir_ + "/" + SegName(4), BuildSegment({}, kSeg));
  ExpectLog(3);
  ASSERT_EQ(SegmentPaths().size(), 1u);
  auto data = ReadFile(dir_ + "/" + SegName(1));
  ASSERT_TRUE(data.ok());
  EXPECT_EQ(data->substr(end), std::string(kSeg - end, '\0'));
  Write(4, 300);
  EXPECT_EQ(SegmentPaths().size(), 1u);
  ExpectLog(300);
}

TEST_F(LogRecoveryTest, BadSegmentHeaderIsCorruption) {
  Write(1, 20);
  Pwrite(SegmentPaths()[0], "XFSLOG01", 0);
  auto log = Open();
  EXPECT_EQ(log.status().code(), Code::kCorruption);
  EXPECT_NE(log.status().message().find(SegName(1)), std::string::npos);
}

TEST_F(LogRecoveryTest, ShortNonLastSegmentIsCorruption) {
  WriteFile(dir_ + "/" + SegName(1), "QFS");
  WriteFile(dir_ + "/" + SegName(5), BuildSegment({5, 6}, kSeg));
  EXPECT_EQ(Open().status().code(), Code::kCorruption);
}

TEST_F(LogRecoveryTest, ZxidsMustIncreaseAcrossSegments) {
  WriteFile(dir_ + "/" + SegName(1), BuildSegment({1, 2, 3, 4, 5, 6}, kSeg));
  WriteFile(dir_ + "/" + SegName(5), BuildSegment({5, 6, 7}, kSeg));
  auto log = Open();
  EXPECT_EQ(log.status().code(), Code::kCorruption);
  EXPECT_NE(log.status().message().find(SegName(5)), std::string::npos);
}

TEST_F(LogRecoveryTest, ZxidsMustIncreaseWithinASegment) {
  WriteFile(dir_ + "/" + SegName(1), BuildSegment({1, 2, 4, 3}, kSeg));
  EXPECT_EQ(Open().status().code(), Code::kCorruption);
}

TEST_F(LogRecoveryTest, SegmentNameMustMatchItsFirstRecord) {
  WriteFile(dir_ + "/" + SegName(1), BuildSegment({1, 2, 3}, kSeg));
  WriteFile(dir_ + "/" + SegName(4), BuildSegment({9, 10}, kSeg));
  EXPECT_EQ(Open().status().code(), Code::kCorruption);
}

TEST_F(LogRecoveryTest, HandBuiltSegmentsReplay) {
  WriteFile(dir_ + "/" + SegName(1), BuildSegment({1, 2, 3}, kSeg));
  WriteFile(dir_ + "/" + SegName(4), BuildSegment({4, 5}, kSeg));
  WriteFile(dir_ + "/unrelated", "x");
  ExpectLog(5);
}

}  // namespace
}  // namespace qfs::storage
