// Snapshot files: write/read, validation, temp files, listing and purging.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <vector>

#include "consensus/proto/storage.pb.h"
#include "consensus/storage/file_util.h"
#include "consensus/storage/snapshot_file.h"
#include "consensus/util/checksum.h"

namespace qfs::storage {
namespace {

namespace fs = std::filesystem;

std::string Record(size_t i) {
  std::string r = "node-" + std::to_string(i) + ":";
  r.append(i % 700, static_cast<char>('A' + i % 26));
  return r;
}

class SnapshotTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/qfs_storage_snap_XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override { fs::remove_all(dir_); }

  // Writes a finished snapshot of `n` records and returns its path.
  std::string WriteSnapshot(uint64_t zxid, size_t n) {
    auto w = SnapshotWriter::Create(dir_, zxid);
    EXPECT_TRUE(w.ok()) << w.status().ToString();
    if (!w.ok()) return "";
    for (size_t i = 0; i < n; i++) EXPECT_TRUE((*w)->Add(Record(i)).ok());
    Status st = (*w)->Finish();
    EXPECT_TRUE(st.ok()) << st.ToString();
    EXPECT_EQ((*w)->bytes_written(), fs::file_size((*w)->final_path()));
    return (*w)->final_path();
  }

  std::vector<std::string> Names() {
    std::vector<std::string> out;
    for (const auto& e : fs::directory_iterator(dir_)) out.push_back(e.path().filename());
    std::sort(out.begin(), out.end());
    return out;
  }

  std::string dir_;
};

TEST_F(SnapshotTest, NameIsSixteenHexDigits) {
  EXPECT_EQ(SnapshotName(0x1234abcd), "snapshot.000000001234abcd");
  EXPECT_EQ(SnapshotName(~0ull), "snapshot.ffffffffffffffff");
}

TEST_F(SnapshotTest, RoundTrip) {
  // Past the writer's 1 MiB buffer, so several writes are involved.
  constexpr size_t kN = 5000;
  const std::string path = WriteSnapshot(0x500000007, kN);
  EXPECT_EQ(path, dir_ + "/snapshot.0000000500000007");
  EXPECT_GT(fs::file_size(path), 1u << 20);
  EXPECT_EQ(Names(), std::vector<std::string>{"snapshot.0000000500000007"});

  auto r = SnapshotReader::Open(path);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ((*r)->last_zxid(), 0x500000007u);
  EXPECT_EQ((*r)->record_count(), kN);
  std::string_view rec;
  size_t i = 0;
  while ((*r)->Next(&rec)) {
    ASSERT_EQ(rec, Record(i)) << i;
    i++;
  }
  EXPECT_EQ(i, kN);
  EXPECT_FALSE((*r)->Next(&rec));
}

TEST_F(SnapshotTest, EmptySnapshotIsValid) {
  const std::string path = WriteSnapshot(9, 0);
  auto r = SnapshotReader::Open(path);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ((*r)->record_count(), 0u);
  std::string_view rec;
  EXPECT_FALSE((*r)->Next(&rec));
}

TEST_F(SnapshotTest, FileLayoutIsHeaderRecordsFooter) {
  const std::string path = WriteSnapshot(42, 3);
  auto data = ReadFile(path);
  ASSERT_TRUE(data.ok());
  std::string_view p;
  size_t f = 0, pos = 0;
  ASSERT_EQ(DecodeFrame(*data, pos, data->size(), &p, &f), FrameResult::kOk);
  SnapshotHeader hdr;
  ASSERT_TRUE(hdr.ParseFromArray(p.data(), static_cast<int>(p.size())));
  EXPECT_EQ(hdr.format_version(), 1u);
  EXPECT_EQ(hdr.last_zxid(), 42u);
  EXPECT_GT(hdr.created_unix_ms(), 1600000000000u);
  pos += f;
  for (size_t i = 0; i < 3; i++) {
    ASSERT_EQ(DecodeFrame(*data, pos, data->size(), &p, &f), FrameResult::kOk);
    EXPECT_EQ(p, Record(i));
    pos += f;
  }
  const size_t body_end = pos;
  ASSERT_EQ(DecodeFrame(*data, pos, data->size(), &p, &f), FrameResult::kOk);
  SnapshotFooter footer;
  ASSERT_TRUE(footer.ParseFromArray(p.data(), static_cast<int>(p.size())));
  EXPECT_EQ(footer.record_count(), 3u);
  EXPECT_EQ(footer.body_crc32c(), Crc32c(std::string_view(data->data(), body_end)));
  EXPECT_EQ(pos + f, data->size());
}

TEST_F(SnapshotTest, TruncatedFileIsInvalid) {
  const std::string path = WriteSnapshot(7, 50);
  auto data = ReadFile(path);
  ASSERT_TRUE(data.ok());
  const std::string copy = dir_ + "/copy";
  // Every cut, including ones on frame boundaries (a lost footer).
  for (size_t cut = 0; cut < data->size(); cut += 37) {
    ASSERT_TRUE(WriteFileAtomic(dir_, "copy", data->substr(0, cut)).ok());
    auto r = SnapshotReader::Open(copy);
    ASSERT_FALSE(r.ok()) << "cut at " << cut;
    EXPECT_EQ(r.status().code(), Code::kCorruption) << "cut at " << cut;
    EXPECT_NE(r.status().message().find(copy), std::string::npos);
  }
  // Dropping exactly the footer frame.
  std::string_view p;
  size_t f = 0, pos = 0, last = 0;
  while (DecodeFrame(*data, pos, data->size(), &p, &f) == FrameResult::kOk) {
    last = pos;
    pos += f;
  }
  ASSERT_TRUE(WriteFileAtomic(dir_, "copy", data->substr(0, last)).ok());
  EXPECT_EQ(SnapshotReader::Open(copy).status().code(), Code::kCorruption);
  EXPECT_EQ(SnapshotReader::Open(dir_ + "/missing").status().code(), Code::kNotFound);
}

TEST_F(SnapshotTest, FlippedByteIsInvalidAndNamesThePath) {
  const std::string path = WriteSnapshot(8, 40);
  auto data = ReadFile(path);
  ASSERT_TRUE(data.ok());
  for (size_t off = 0; off < data->size(); off += 13) {
    std::string bad = *data;
    bad[off] ^= 0x20;
    ASSERT_TRUE(WriteFileAtomic(dir_, SnapshotName(8), bad).ok());
    auto r = SnapshotReader::Open(path);
    ASSERT_FALSE(r.ok()) << "flip at " << off;
    EXPECT_EQ(r.status().code(), Code::kCorruption);
    EXPECT_NE(r.status().message().find(path), std::string::npos) << r.status().message();
  }
}

TEST_F(SnapshotTest, WrongRecordCountOrBodyCrcIsInvalid) {
  // Frames that are individually valid but whose footer disagrees with the body.
  auto build = [&](uint64_t count, bool good_crc) {
    std::string s;
    SnapshotHeader hdr;
    hdr.set_format_version(1);
    hdr.set_last_zxid(3);
    AppendFrame(&s, hdr.SerializeAsString());
    AppendFrame(&s, "a");
    AppendFrame(&s, "b");
    SnapshotFooter footer;
    footer.set_record_count(count);
    footer.set_body_crc32c(Crc32c(s) ^ (good_crc ? 0u : 1u));
    AppendFrame(&s, footer.SerializeAsString());
    return s;
  };
  const std::string path = dir_ + "/" + SnapshotName(3);
  ASSERT_TRUE(WriteFileAtomic(dir_, SnapshotName(3), build(2, true)).ok());
  EXPECT_TRUE(SnapshotReader::Open(path).ok());
  ASSERT_TRUE(WriteFileAtomic(dir_, SnapshotName(3), build(3, true)).ok());
  EXPECT_EQ(SnapshotReader::Open(path).status().code(), Code::kCorruption);
  ASSERT_TRUE(WriteFileAtomic(dir_, SnapshotName(3), build(2, false)).ok());
  EXPECT_EQ(SnapshotReader::Open(path).status().code(), Code::kCorruption);
}

TEST_F(SnapshotTest, UnfinishedWriterLeavesNoFile) {
  {
    auto w = SnapshotWriter::Create(dir_, 11);
    ASSERT_TRUE(w.ok());
    for (size_t i = 0; i < 3000; i++) ASSERT_TRUE((*w)->Add(Record(i)).ok());
    EXPECT_EQ(Names(), std::vector<std::string>{"snapshot.000000000000000b.tmp"});
  }
  EXPECT_TRUE(Names().empty());
  EXPECT_EQ(SnapshotWriter::Create(dir_ + "/missing", 1).status().code(), Code::kIoError);
}

TEST_F(SnapshotTest, ListIgnoresTempFilesAndRemoveTempSnapshotsDeletesThem) {
  WriteSnapshot(5, 3);
  WriteSnapshot(0x100000001, 3);
  WriteSnapshot(20, 3);
  // A crash mid-snapshot leaves a .tmp; unrelated files are not snapshots either.
  ASSERT_TRUE(WriteFileAtomic(dir_, SnapshotName(30) + ".tmp", "partial").ok());
  ASSERT_TRUE(WriteFileAtomic(dir_, "snapshot.zz", "x").ok());
  ASSERT_TRUE(WriteFileAtomic(dir_, "log.0000000000000001", "x").ok());

  auto list = ListSnapshots(dir_);
  ASSERT_TRUE(list.ok());
  ASSERT_EQ(list->size(), 3u);
  EXPECT_EQ((*list)[0].last_zxid, 0x100000001u);
  EXPECT_EQ((*list)[1].last_zxid, 20u);
  EXPECT_EQ((*list)[2].last_zxid, 5u);
  EXPECT_EQ((*list)[1].path, dir_ + "/" + SnapshotName(20));
  EXPECT_EQ((*list)[1].size, fs::file_size((*list)[1].path));

  ASSERT_TRUE(RemoveTempSnapshots(dir_).ok());
  EXPECT_FALSE(fs::exists(dir_ + "/" + SnapshotName(30) + ".tmp"));
  EXPECT_TRUE(fs::exists(dir_ + "/snapshot.zz"));
  EXPECT_EQ(ListSnapshots(dir_)->size(), 3u);
  auto missing = ListSnapshots(dir_ + "/missing");
  ASSERT_TRUE(missing.ok());
  EXPECT_TRUE(missing->empty());
}

TEST_F(SnapshotTest, PurgeKeepsTheNewest) {
  for (uint64_t z : {10, 40, 20, 50, 30}) WriteSnapshot(z, 2);
  auto oldest = PurgeSnapshots(dir_, 3);
  ASSERT_TRUE(oldest.ok());
  EXPECT_EQ(*oldest, 30u);
  auto list = ListSnapshots(dir_);
  ASSERT_TRUE(list.ok());
  ASSERT_EQ(list->size(), 3u);
  EXPECT_EQ((*list)[0].last_zxid, 50u);
  EXPECT_EQ((*list)[2].last_zxid, 30u);

  EXPECT_EQ(*PurgeSnapshots(dir_, 10), 30u);  // fewer than `keep`: nothing removed
  EXPECT_EQ(ListSnapshots(dir_)->size(), 3u);
  EXPECT_EQ(*PurgeSnapshots(dir_, 1), 50u);
  EXPECT_EQ(ListSnapshots(dir_)->size(), 1u);
  EXPECT_EQ(*PurgeSnapshots(dir_, 0), 0u);
  EXPECT_TRUE(ListSnapshots(dir_)->empty());
}

}  // namespace
}  // namespace qfs::storage
