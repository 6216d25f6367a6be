// Record framing and the small file helpers.
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <string>

#include "consensus/proto/storage.pb.h"
#include "consensus/storage/file_util.h"
#include "consensus/util/checksum.h"

namespace qfs::storage {
namespace {

std::string Le32(uint32_t v) {
  std::string s(4, '\0');
  for (int i = 0; i < 4; i++) s[i] = static_cast<char>(v >> (8 * i));
  return s;
}

TEST(FrameTest, LayoutIsLengthCrcPayload) {
  std::string out;
  AppendFrame(&out, "hello");
  ASSERT_EQ(out.size(), kFrameHeader + 5);
  EXPECT_EQ(out.substr(0, 4), Le32(5));
  // The checksum covers the length bytes followed by the payload.
  std::string covered = Le32(5) + "hello";
  EXPECT_EQ(out.substr(4, 4), Le32(Crc32c(covered)));
  EXPECT_EQ(out.substr(8), "hello");
}

// The hand-encoded log record is byte for byte what Protobuf writes, for zxids and payload
// sizes across every varint length (the reader parses it with Protobuf).
TEST(FrameTest, HandEncodedRecordIsProtobufs) {
  for (uint64_t zxid : {0ull, 1ull, 127ull, 128ull, 0x100000001ull, ~0ull}) {
    for (size_t size : {0ul, 1ul, 127ul, 128ul, 1024ul, 16384ul, 2097152ul}) {
      std::string payload(size, 'x');
      for (size_t i = 0; i < size; i += 7) payload[i] = static_cast<char>(i);
      LogRecord rec;
      rec.set_zxid(zxid);
      rec.set_payload(payload);
      std::string want;
      AppendFrame(&want, rec.SerializeAsString());
      std::string got = "prefix";
      const size_t n = AppendRecordFrame(&got, zxid, payload);
      EXPECT_EQ(n, RecordFrameSize(zxid, size));
      ASSERT_EQ(got.substr(0, 6), "prefix");
      EXPECT_EQ(got.substr(6), want) << "zxid " << zxid << " size " << size;
    }
  }
}

TEST(FrameTest, RoundTripOfManyFrames) {
  std::string buf;
  std::vector<std::string> payloads;
  for (int i = 1; i < 300; i++) {
    std::string p;
    for (int j = 0; j < i; j++) p.push_back(static_cast<char>((i * 31 + j * 7) & 0xff));
    payloads.push_back(p);
    AppendFrame(&buf, p);
  }
  size_t pos = 0;
  for (const std::string& want : payloads) {
    std::string_view got;
    size_t frame = 0;
    ASSERT_EQ(DecodeFrame(buf, pos, 1 << 20, &got, &frame), FrameResult::kOk);
    EXPECT_EQ(got, want);
    EXPECT_EQ(frame, kFrameHeader + want.size());
    pos += frame;
  }
  EXPECT_EQ(pos, buf.size());
}

TEST(FrameTest, ZeroLengthWordIsZero) {
  std::string buf;
  AppendFrame(&buf, "abc");
  const size_t end = buf.size();
  buf.append(64, '\0');
  std::string_view p;
  size_t f = 0;
  EXPECT_EQ(DecodeFrame(buf, end, 1 << 20, &p, &f), FrameResult::kZero);
  // A partial length word of zeros at the very end is still preallocated space.
  std::string tail = buf.substr(0, end) + std::string(3, '\0');
  EXPECT_EQ(DecodeFrame(tail, end, 1 << 20, &p, &f), FrameResult::kZero);
}

TEST(FrameTest, TruncatedFrameIsIncomplete) {
  std::string buf;
  AppendFrame(&buf, std::string(100, 'x'));
  std::string_view p;
  size_t f = 0;
  for (size_t cut :
       {size_t{1}, size_t{3}, size_t{4}, size_t{7}, size_t{8}, size_t{50}, buf.size() - 1}) {
    std::string_view part(buf.data(), cut);
    EXPECT_EQ(DecodeFrame(part, 0, 1 << 20, &p, &f), FrameResult::kIncomplete) << "cut " << cut;
  }
  EXPECT_EQ(DecodeFrame(buf, buf.size(), 1 << 20, &p, &f), FrameResult::kIncomplete);
  EXPECT_EQ(DecodeFrame(buf, 0, 1 << 20, &p, &f), FrameResult::kOk);
}

TEST(FrameTest, AnyFlippedByteIsBad) {
  std::string good;
  AppendFrame(&good, "the quick brown fox");
  for (size_t i = 0; i < good.size(); i++) {
    std::string buf = good;
    buf[i] ^= 0x01;
    std::string_view p;
    size_t f = 0;
    FrameResult r = DecodeFrame(buf, 0, 1 << 20, &p, &f);
    // A flipped length bit may also make the frame run past the buffer.
    if (i < 4) {
      EXPECT_TRUE(r == FrameResult::kBad || r == FrameResult::kIncomplete) << "byte " << i;
    } else {
      EXPECT_EQ(r, FrameResult::kBad) << "byte " << i;
    }
  }
}

TEST(FrameTest, LengthAboveMaxIsBad) {
  std::string buf;
  AppendFrame(&buf, std::string(100, 'y'));
  std::string_view p;
  size_t f = 0;
  EXPECT_EQ(DecodeFrame(buf, 0, 99, &p, &f), FrameResult::kBad);
  EXPECT_EQ(DecodeFrame(buf, 0, 100, &p, &f), FrameResult::kOk);
  // An absurd length is bad even though the buffer is too short to hold it.
  std::string absurd = Le32(0xfffffff0u) + std::string(12, 'z');
  EXPECT_EQ(DecodeFrame(absurd, 0, 1 << 20, &p, &f), FrameResult::kBad);
}

TEST(FrameTest, DecodesAtAnOffset) {
  std::string buf = "junk";
  AppendFrame(&buf, "payload");
  std::string_view p;
  size_t f = 0;
  ASSERT_EQ(DecodeFrame(buf, 4, 1 << 20, &p, &f), FrameResult::kOk);
  EXPECT_EQ(p, "payload");
}

class FileUtilTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/qfs_storage_file_XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  std::string dir_;
};

TEST_F(FileUtilTest, WriteFileAtomicReadFileAndListDir) {
  ASSERT_TRUE(EnsureDir(dir_ + "/a/b/c").ok());
  ASSERT_TRUE(EnsureDir(dir_ + "/a/b/c").ok());  // idempotent
  ASSERT_TRUE(WriteFileAtomic(dir_, "x.1", "one").ok());
  ASSERT_TRUE(WriteFileAtomic(dir_, "x.2", "two").ok());
  ASSERT_TRUE(WriteFileAtomic(dir_, "x.1", "uno").ok());
  ASSERT_TRUE(WriteFileAtomic(dir_, "y", "").ok());
  auto one = ReadFile(dir_ + "/x.1");
  ASSERT_TRUE(one.ok());
  EXPECT_EQ(*one, "uno");
  auto names = ListDir(dir_, "x.");
  ASSERT_TRUE(names.ok());
  EXPECT_EQ(*names, (std::vector<std::string>{"x.1", "x.2"}));  // no temp files left
  auto missing = ReadFile(dir_ + "/nope");
  EXPECT_EQ(missing.status().code(), Code::kNotFound);
  EXPECT_EQ(ListDir(dir_ + "/nope", "").status().code(), Code::kNotFound);
  EXPECT_TRUE(FsyncDir(dir_).ok());
  EXPECT_FALSE(FsyncDir(dir_ + "/nope").ok());
  EXPECT_FALSE(WriteFileAtomic(dir_ + "/nope", "z", "data").ok());
}

}  // namespace
}  // namespace qfs::storage
