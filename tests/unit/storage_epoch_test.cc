// ZAB epoch files.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <string>

#include "consensus/storage/epoch_file.h"
#include "consensus/storage/file_util.h"

namespace qfs::storage {
namespace {

namespace fs = std::filesystem;

class EpochTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/qfs_storage_epoch_XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override { fs::remove_all(dir_); }
  std::string dir_;
};

TEST_F(EpochTest, MissingFileGivesTheDefault) {
  auto v = ReadEpoch(dir_, kAcceptedEpochFile);
  ASSERT_TRUE(v.ok());
  EXPECT_EQ(*v, 0u);
  v = ReadEpoch(dir_, kCurrentEpochFile, 17);
  ASSERT_TRUE(v.ok());
  EXPECT_EQ(*v, 17u);
}

TEST_F(EpochTest, WriteThenRead) {
  WriteEpoch(dir_, kAcceptedEpochFile, 5);
  WriteEpoch(dir_, kCurrentEpochFile, 4);
  EXPECT_EQ(*ReadEpoch(dir_, kAcceptedEpochFile), 5u);
  EXPECT_EQ(*ReadEpoch(dir_, kCurrentEpochFile), 4u);
  WriteEpoch(dir_, kAcceptedEpochFile, 18446744073709551615ull);
  EXPECT_EQ(*ReadEpoch(dir_, kAcceptedEpochFile, 3), 18446744073709551615ull);
  WriteEpoch(dir_, kAcceptedEpochFile, 0);
  EXPECT_EQ(*ReadEpoch(dir_, kAcceptedEpochFile, 3), 0u);
  // Stored as a decimal number and a newline, with no temp file left behind.
  EXPECT_EQ(*ReadFile(dir_ + "/" + kCurrentEpochFile), "4\n");
  EXPECT_EQ(ListDir(dir_, "")->size(), 2u);
}

TEST_F(EpochTest, MalformedIsCorruption) {
  for (const char* bad : {"", "\n", "abc\n", "12x\n", "-1\n", " 7\n", "7\n\n", "0x10\n",
                          "18446744073709551616\n", "99999999999999999999999\n"}) {
    ASSERT_TRUE(WriteFileAtomic(dir_, kCurrentEpochFile, bad).ok());
    auto v = ReadEpoch(dir_, kCurrentEpochFile);
    EXPECT_EQ(v.status().code(), Code::kCorruption) << "'" << bad << "'";
    if (!v.ok()) {
      EXPECT_NE(v.status().message().find(kCurrentEpochFile), std::string::npos);
    }
  }
  ASSERT_TRUE(WriteFileAtomic(dir_, kCurrentEpochFile, "12").ok());  // newline optional
  EXPECT_EQ(*ReadEpoch(dir_, kCurrentEpochFile), 12u);
}

TEST_F(EpochTest, FailedWriteIsFatal) {
  EXPECT_EXIT(WriteEpoch(dir_ + "/no/such/dir", kAcceptedEpochFile, 3),
              ::testing::ExitedWithCode(70), "acceptedEpoch");
}

}  // namespace
}  // namespace qfs::storage
