// Unit tests of the FUSE view's small modules: creation suffixes, the errno table, ACL text,
// the inode table.
#include <gtest/gtest.h>

#include <cerrno>

#include "fusefs/errno_map.h"
#include "fusefs/inode_table.h"
#include "fusefs/names.h"
#include "fusefs/xattrs.h"

namespace qfs::fusefs {
namespace {

TEST(Names, Suffixes) {
  auto n = ParseCreateName("lock@eph");
  EXPECT_EQ(n.base, "lock");
  EXPECT_TRUE(n.ephemeral);
  EXPECT_FALSE(n.sequential);
  n = ParseCreateName("job-@seq");
  EXPECT_EQ(n.base, "job-");
  EXPECT_TRUE(n.sequential);
  for (const char* s : {"l-@seq@eph", "l-@eph@seq"}) {
    n = ParseCreateName(s);
    EXPECT_EQ(n.base, "l-") << s;
    EXPECT_TRUE(n.ephemeral && n.sequential) << s;
  }
  n = ParseCreateName("x@eph@eph");  // each suffix counts once
  EXPECT_EQ(n.base, "x@eph");
  n = ParseCreateName("plain");
  EXPECT_FALSE(n.has_suffix());
  EXPECT_EQ(n.base, "plain");
  EXPECT_EQ(ParseCreateName("@seq").base, "");
}

TEST(Names, PathsAndReserved) {
  EXPECT_EQ(JoinPath("/", "a"), "/a");
  EXPECT_EQ(JoinPath("/a", "b"), "/a/b");
  EXPECT_TRUE(IsReserved("/zookeeper"));
  EXPECT_TRUE(IsReserved("/zookeeper/quota"));
  EXPECT_FALSE(IsReserved("/zookeeperx"));
}

TEST(Errno, Table) {
  using tree::Err;
  EXPECT_EQ(ErrnoOf(Err::kOk), 0);
  EXPECT_EQ(ErrnoOf(Err::kNoNode), ENOENT);
  EXPECT_EQ(ErrnoOf(Err::kNodeExists), EEXIST);
  EXPECT_EQ(ErrnoOf(Err::kNotEmpty), ENOTEMPTY);
  EXPECT_EQ(ErrnoOf(Err::kBadVersion), ESTALE);
  EXPECT_EQ(ErrnoOf(Err::kConnectionLoss), ETIMEDOUT);  // never ENOENT or EIO
  EXPECT_EQ(ErrnoOf(Err::kOperationTimeout), ETIMEDOUT);
  EXPECT_EQ(ErrnoOf(Err::kNoChildrenForEphemerals), EOPNOTSUPP);
  EXPECT_EQ(ErrnoOf(Err::kNoAuth), EACCES);
  EXPECT_EQ(ErrnoOf(Err::kSessionExpired), ECONNRESET);
  EXPECT_EQ(ErrnoOf(Err::kSystemError), EIO);
}

TEST(Xattrs, AclRoundTrip) {
  auto acl = ParseAcl("world:anyone:cdrwa,digest:u:abc=:r,ip:10.0.0.0/8:rw\n");
  ASSERT_TRUE(acl.ok());
  ASSERT_EQ(acl->size(), 3u);
  EXPECT_EQ((*acl)[0].perms, tree::perm::kAll);
  EXPECT_EQ((*acl)[1].id.scheme, "digest");
  EXPECT_EQ((*acl)[1].id.id, "u:abc=");
  EXPECT_EQ((*acl)[1].perms, tree::perm::kRead);
  EXPECT_EQ(FormatAcl(*acl), "world:anyone:cdrwa,digest:u:abc=:r,ip:10.0.0.0/8:rw");
  EXPECT_FALSE(ParseAcl("world:anyone").ok());
  EXPECT_FALSE(ParseAcl("world:anyone:x").ok());
}

TEST(Xattrs, StatFields) {
  tree::Stat st;
  st.czxid = 0x100000003;
  st.version = 7;
  std::string v;
  ASSERT_TRUE(XattrValue("user.zk.czxid", st, {}, &v));
  EXPECT_EQ(v, "0x100000003");
  ASSERT_TRUE(XattrValue("user.zk.version", st, {}, &v));
  EXPECT_EQ(v, "7");
  EXPECT_FALSE(XattrValue("user.other", st, {}, &v));
  EXPECT_EQ(XattrNames().size(), 12u);
}

TEST(InodeTable, IncarnationsAndTypes) {
  InodeTable t;
  uint64_t a = t.Ref("/a", 5, false, false);
  EXPECT_EQ(t.Ref("/a", 5, false, false), a);  // same incarnation: same id
  EXPECT_EQ(t.Find("/a"), a);
  uint64_t flipped = t.Ref("/a", 5, true, false);  // a file that became a directory
  EXPECT_NE(flipped, a);
  EXPECT_EQ(t.Find("/a"), flipped);
  Inode in;
  ASSERT_TRUE(t.Get(a, &in));  // the old id keeps its type until forgotten
  EXPECT_FALSE(in.is_dir);
  uint64_t again = t.Ref("/a", 9, true, false);  // re-created: new czxid, new id
  EXPECT_NE(again, flipped);
  uint64_t data = t.Ref("/a", 9, false, true);  // its .data
  EXPECT_NE(data, again);
  EXPECT_EQ(t.Find("/a", true), data);
  t.Forget(a, 2);
  EXPECT_FALSE(t.Get(a, &in));
  t.Forget(again, 1);
  EXPECT_EQ(t.Find("/a"), 0u);
  EXPECT_TRUE(t.Held("/"));
  t.Forget(kRootId, 100);  // the root is never forgotten
  EXPECT_TRUE(t.Get(kRootId, &in));
}

TEST(InodeTable, PendingCreateRebinds) {
  InodeTable t;
  Inode p;
  p.path = "/q/job-";
  p.pending = true;
  uint64_t id = t.RefDetached(p);
  EXPECT_EQ(t.Find("/q/job-"), 0u);  // not visible by path until committed
  t.Rebind(id, "/q/job-0000000001", 42);
  EXPECT_EQ(t.Find("/q/job-0000000001"), id);
  Inode in;
  ASSERT_TRUE(t.Get(id, &in));
  EXPECT_FALSE(in.pending);
  EXPECT_EQ(in.czxid, 42);
}

}  // namespace
}  // namespace qfs::fusefs
