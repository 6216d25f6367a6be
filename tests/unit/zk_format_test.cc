// The ZooKeeper file readers of import-zookeeper (docs/migration.md) on synthetic files, for the
// cases a live ZooKeeper does not produce on demand: a torn last record, a bad record checksum,
// txn types that must be refused, the optional TxnDigest, compressed and odd file names.
#include "daemon/cli/zk_format.h"

#include <gtest/gtest.h>
#include <stdlib.h>
#include <unistd.h>

#include <cstdio>
#include <string>
#include <vector>

#include "daemon/server/jute.h"

namespace qfs::zkimport {
namespace {

class TempDir {
 public:
  TempDir() {
    char tmpl[] = "/tmp/qfs-zkformat-XXXXXX";
    path_ = mkdtemp(tmpl);
  }
  ~TempDir() {
    std::string cmd = "rm -rf '" + path_ + "'";
    if (system(cmd.c_str()) != 0) perror("rm");
  }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

void WriteFile(const std::string& path, const std::string& bytes) {
  FILE* f = fopen(path.c_str(), "wb");
  ASSERT_NE(f, nullptr);
  ASSERT_EQ(fwrite(bytes.data(), 1, bytes.size(), f), bytes.size());
  fclose(f);
}

std::string FileHeader(int32_t magic) {
  zk::JuteWriter w;
  w.WriteInt(magic);
  w.WriteInt(2);
  w.WriteLong(0);
  return std::move(w).Finish();
}

// One log record: Adler-32, length, TxnHeader + body, 'B'.
std::string Record(int64_t zxid, int32_t type, const std::string& body) {
  zk::JuteWriter e;
  e.WriteLong(0x1234);  // client id
  e.WriteInt(7);        // cxid
  e.WriteLong(zxid);
  e.WriteLong(1700000000000);
  e.WriteInt(type);
  std::string entry = std::move(e).Finish() + body;
  zk::JuteWriter r;
  r.WriteLong(Adler32(entry));
  r.WriteBuffer(entry);
  return std::move(r).Finish() + "B";
}

std::string DeleteBody(const std::string& path) {
  zk::JuteWriter w;
  w.WriteString(path);
  return std::move(w).Finish();
}

TEST(ZkFormat, Adler32KnownValues) {
  EXPECT_EQ(Adler32(""), 1u);
  EXPECT_EQ(Adler32("Wikipedia"), 0x11e60398u);
  // Incremental equals one pass, across the 5552-byte blocks.
  std::string big(20000, '\xff');
  EXPECT_EQ(Adler32(big.substr(7000), Adler32(big.substr(0, 7000))), Adler32(big));
}

TEST(ZkFormat, LogRecordsPaddingAndTornTail) {
  TempDir d;
  std::string path = d.path() + "/log.1";
  std::string good = FileHeader(0x5a4b4c47) + Record(1, op::kDelete, DeleteBody("/a")) +
                     Record(2, op::kDelete, DeleteBody("/b"));
  // Zero padding ends the file.
  WriteFile(path, good + std::string(100, '\0'));
  std::vector<int64_t> seen;
  auto st = ReadZkLog({1, path}, [&](const ZkTxnHeader& h, std::string_view body) {
    seen.push_back(h.zxid);
    auto t = DecodeZkTxn(h.type, body, true);
    EXPECT_TRUE(t.ok()) << t.status().ToString();
    return Status::Ok();
  });
  ASSERT_TRUE(st.ok()) << st.status().ToString();
  EXPECT_EQ(seen, (std::vector<int64_t>{1, 2}));
  EXPECT_FALSE(st->torn_tail);

  // A third record cut short: the first two are read, the tail reported.
  std::string third = Record(3, op::kDelete, DeleteBody("/c"));
  WriteFile(path, good + third.substr(0, third.size() - 4));
  seen.clear();
  st = ReadZkLog({1, path}, [&](const ZkTxnHeader& h, std::string_view) {
    seen.push_back(h.zxid);
    return Status::Ok();
  });
  ASSERT_TRUE(st.ok());
  EXPECT_EQ(seen.size(), 2u);
  EXPECT_TRUE(st->torn_tail);
}

TEST(ZkFormat, BadRecordChecksumNamesFileAndOffset) {
  TempDir d;
  std::string path = d.path() + "/log.1";
  std::string rec = Record(1, op::kDelete, DeleteBody("/a"));
  rec[rec.size() - 3] ^= 1;  // inside the path
  WriteFile(path, FileHeader(0x5a4b4c47) + rec);
  auto st = ReadZkLog({1, path}, [](const ZkTxnHeader&, std::string_view) { return Status::Ok(); });
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.status().message().find(path + " at offset 16: bad checksum"), std::string::npos)
      << st.status().message();
}

TEST(ZkFormat, WrongMagicAndVersion) {
  TempDir d;
  std::string path = d.path() + "/log.1";
  WriteFile(path, FileHeader(0x5a4b534e));  // a snapshot's magic
  auto st = ReadZkLog({1, path}, [](const ZkTxnHeader&, std::string_view) { return Status::Ok(); });
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.status().message().find("not a ZooKeeper txn log file"), std::string::npos);
  zk::JuteWriter w;
  w.WriteInt(0x5a4b4c47);
  w.WriteInt(1);
  w.WriteLong(0);
  WriteFile(path, std::move(w).Finish());
  st = ReadZkLog({1, path}, [](const ZkTxnHeader&, std::string_view) { return Status::Ok(); });
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.status().message().find("format version 1"), std::string::npos);
}

TEST(ZkFormat, TxnDecoding) {
  // A trailing TxnDigest (int, long) is accepted at top level only.
  std::string body = DeleteBody("/a");
  zk::JuteWriter dg;
  dg.WriteInt(2);
  dg.WriteLong(99);
  std::string digest = std::move(dg).Finish();
  EXPECT_TRUE(DecodeZkTxn(op::kDelete, body + digest, true).ok());
  EXPECT_FALSE(DecodeZkTxn(op::kDelete, body + digest, false).ok());
  EXPECT_FALSE(DecodeZkTxn(op::kDelete, body + "x", true).ok());
  // closeSession with and without its path list.
  auto close = DecodeZkTxn(op::kCloseSession, "", true);
  ASSERT_TRUE(close.ok());
  EXPECT_FALSE(close->has_paths_to_delete);
  zk::JuteWriter paths;
  paths.WriteStringVector({"/e1", "/e2"});
  close = DecodeZkTxn(op::kCloseSession, std::move(paths).Finish(), true);
  ASSERT_TRUE(close.ok());
  EXPECT_EQ(close->paths_to_delete, (std::vector<std::string>{"/e1", "/e2"}));
  // Types quorumfs does not import are refused by name.
  auto reconfig = DecodeZkTxn(op::kReconfig, "", true);
  ASSERT_FALSE(reconfig.ok());
  EXPECT_NE(reconfig.status().message().find("reconfig"), std::string::npos);
  EXPECT_FALSE(DecodeZkTxn(42, "", true).ok());
  // A multi of a create and a delete; an unsupported op inside a multi is refused.
  zk::JuteWriter create;
  create.WriteString("/m");
  create.WriteBuffer("v");
  create.WriteAclVector(tree::OpenAcl());
  create.WriteBool(false);
  create.WriteInt(3);
  zk::JuteWriter multi;
  multi.WriteInt(2);
  multi.WriteInt(op::kCreate);
  multi.WriteBuffer(std::move(create).Finish());
  multi.WriteInt(op::kDelete);
  multi.WriteBuffer(DeleteBody("/x"));
  auto m = DecodeZkTxn(op::kMulti, std::move(multi).Finish(), true);
  ASSERT_TRUE(m.ok()) << m.status().ToString();
  ASSERT_EQ(m->sub.size(), 2u);
  EXPECT_EQ(m->sub[0].path, "/m");
  EXPECT_EQ(m->sub[0].parent_cversion, 3);
  EXPECT_EQ(m->sub[1].path, "/x");
  zk::JuteWriter bad;
  bad.WriteInt(1);
  bad.WriteInt(op::kReconfig);
  bad.WriteBuffer("");
  EXPECT_FALSE(DecodeZkTxn(op::kMulti, std::move(bad).Finish(), true).ok());
}

TEST(ZkFormat, FileNames) {
  TempDir d;
  for (const char* n : {"snapshot.1f", "snapshot.0", "snapshot.100000002", "log.1"})
    WriteFile(d.path() + "/" + n, "");
  auto snaps = ListZkFiles(d.path(), "snapshot");
  ASSERT_TRUE(snaps.ok());
  ASSERT_EQ(snaps->size(), 3u);
  EXPECT_EQ((*snaps)[0].zxid, 0u);
  EXPECT_EQ((*snaps)[1].zxid, 0x1fu);
  EXPECT_EQ((*snaps)[2].zxid, 0x100000002u);
  WriteFile(d.path() + "/snapshot.20.gz", "");
  snaps = ListZkFiles(d.path(), "snapshot");
  ASSERT_FALSE(snaps.ok());
  EXPECT_NE(snaps.status().message().find("snapshot.20.gz: unsupported file format"),
            std::string::npos);
}

TEST(ZkFormat, SnapshotSealIsChecked) {
  TempDir d;
  // FileHeader, no sessions, no ACL lists, the root, the end marker, the seal.
  zk::JuteWriter w;
  w.WriteInt(0x5a4b534e);
  w.WriteInt(2);
  w.WriteLong(-1);
  w.WriteInt(0);
  w.WriteInt(0);
  w.WriteString("");
  w.WriteBuffer("");
  w.WriteLong(-1);
  for (int i = 0; i < 4; i++) w.WriteLong(0);
  for (int i = 0; i < 3; i++) w.WriteInt(0);
  w.WriteLong(0);
  w.WriteLong(0);
  w.WriteString("/");
  std::string body = std::move(w).Finish();
  zk::JuteWriter seal;
  seal.WriteLong(Adler32(body));
  seal.WriteString("/");
  std::string path = d.path() + "/snapshot.0";
  WriteFile(path, body + std::move(seal).Finish());
  auto s = ReadZkSnapshot({0, path});
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  ASSERT_EQ(s->nodes.size(), 1u);
  EXPECT_EQ(s->nodes[0].path, "/");
  EXPECT_EQ(s->nodes[0].acl_ref, -1);

  std::string bad = body;
  bad[bad.size() - 10] ^= 1;
  zk::JuteWriter seal2;
  seal2.WriteLong(Adler32(body));
  seal2.WriteString("/");
  WriteFile(path, bad + std::move(seal2).Finish());
  s = ReadZkSnapshot({0, path});
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.status().message().find(path + ": bad checksum"), std::string::npos)
      << s.status().message();
}

}  // namespace
}  // namespace qfs::zkimport
