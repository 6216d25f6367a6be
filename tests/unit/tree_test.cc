// DataTree: applying txns, reads, indexes, the incremental digest and snapshots.
#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <random>
#include <set>

#include "daemon/tree/data_tree.h"

using namespace qfs;
using namespace qfs::tree;

namespace {

std::vector<Acl> ReadAcl() {
  return {Acl{perm::kRead, Id{"world", "anyone"}}};
}
std::vector<Acl> DigestAcl(const std::string& who) {
  return {Acl{perm::kAll, Id{"digest", who + ":hash"}}, Acl{perm::kRead, Id{"world", "anyone"}}};
}

template <typename M>
void SetAclField(M* m, const std::vector<Acl>& acl) {
  for (const Acl& a : acl) {
    txn::Acl* p = m->add_acl();
    p->set_perms(a.perms);
    p->set_scheme(a.id.scheme);
    p->set_id(a.id.id);
  }
}

std::string ParentOf(const std::string& path) {
  size_t slash = path.rfind('/');
  return slash == 0 ? "/" : path.substr(0, slash);
}

std::vector<std::string> Snapshot(const DataTree& t) {
  std::vector<std::string> recs;
  Status st = t.WriteSnapshot([&](std::string_view r) {
    recs.emplace_back(r);
    return Status::Ok();
  });
  EXPECT_TRUE(st.ok()) << st.ToString();
  return recs;
}

Result<std::unique_ptr<DataTree>> Load(const std::vector<std::string>& recs) {
  size_t i = 0;
  return DataTree::LoadSnapshot({}, [&](std::string_view* r) {
    if (i == recs.size()) return false;
    *r = recs[i++];
    return true;
  });
}

// Builds txns against the tree's current state, as prepare would, and applies them.
class TreeTest : public ::testing::Test {
 protected:
  Stat StatOf(const std::string& path) {
    Stat s;
    EXPECT_EQ(tree_.Exists(path, &s), Err::kOk) << path;
    return s;
  }
  int32_t CreatesOf(const std::string& path) {
    NodeMeta m;
    EXPECT_TRUE(tree_.GetMeta(path, &m)) << path;
    return m.child_creates;
  }

  txn::Txn Next() {
    txn::Txn t;
    t.set_zxid(++zxid_);
    t.set_time_ms(now_);
    return t;
  }

  void FillCreate(txn::CreateTxn* c, const std::string& path, const std::string& data,
                  int64_t owner, Kind kind, const std::vector<Acl>& acl, int32_t parent_cversion) {
    c->set_path(path);
    c->set_data(data);
    c->set_ephemeral_owner(owner);
    c->set_kind(static_cast<uint32_t>(kind));
    c->set_parent_cversion(parent_cversion);
    SetAclField(c, acl);
  }

  ApplyResult Apply(const txn::Txn& t) {
    ApplyResult r = tree_.Apply(t);
    EXPECT_EQ(r.err, Err::kOk);
    EXPECT_EQ(tree_.digest(), tree_.ComputeDigest()) << "after zxid " << t.zxid();
    EXPECT_EQ(tree_.last_zxid(), t.zxid());
    return r;
  }

  ApplyResult Create(const std::string& path, const std::string& data = "", int64_t owner = 0,
                     Kind kind = Kind::kUnset, const std::vector<Acl>& acl = OpenAcl()) {
    txn::Txn t = Next();
    FillCreate(t.mutable_create(), path, data, owner, kind, acl, CreatesOf(ParentOf(path)) + 1);
    return Apply(t);
  }
  ApplyResult Delete(const std::string& path) {
    txn::Txn t = Next();
    t.mutable_delete_()->set_path(path);
    return Apply(t);
  }
  ApplyResult SetData(const std::string& path, const std::string& data) {
    txn::Txn t = Next();
    t.mutable_set_data()->set_path(path);
    t.mutable_set_data()->set_data(data);
    t.mutable_set_data()->set_version(StatOf(path).version + 1);
    return Apply(t);
  }
  ApplyResult SetAcl(const std::string& path, const std::vector<Acl>& acl) {
    txn::Txn t = Next();
    t.mutable_set_acl()->set_path(path);
    SetAclField(t.mutable_set_acl(), acl);
    t.mutable_set_acl()->set_aversion(StatOf(path).aversion + 1);
    return Apply(t);
  }
  ApplyResult CreateSession(int64_t id, int32_t timeout = 30000) {
    txn::Txn t = Next();
    t.set_session_id(id);
    t.mutable_create_session()->set_timeout_ms(timeout);
    return Apply(t);
  }
  ApplyResult CloseSession(int64_t id) {
    txn::Txn t = Next();
    t.set_session_id(id);
    for (const std::string& p : tree_.GetEphemerals(id, "/")) {
      t.mutable_close_session()->add_paths_to_delete(p);
    }
    return Apply(t);
  }

  DataTree tree_;
  int64_t zxid_ = 0;
  int64_t now_ = 1000;
};

TEST_F(TreeTest, InitialTreeIsZooKeepers) {
  EXPECT_EQ(tree_.node_count(), 4u);
  EXPECT_EQ(tree_.last_zxid(), 0);
  EXPECT_EQ(tree_.digest(), tree_.ComputeDigest());
  std::vector<std::string> names;
  Stat s;
  ASSERT_EQ(tree_.GetChildren("/", &names, &s), Err::kOk);
  EXPECT_EQ(names, std::vector<std::string>{"zookeeper"});
  Stat root;
  root.num_children = 1;
  EXPECT_EQ(s, root);
  ASSERT_EQ(tree_.GetChildren("/zookeeper", &names, nullptr), Err::kOk);
  EXPECT_EQ(names, (std::vector<std::string>{"config", "quota"}));
  std::vector<Acl> acl;
  ASSERT_EQ(tree_.GetAcl("/zookeeper/quota", &acl, &s), Err::kOk);
  EXPECT_EQ(acl, OpenAcl());
  EXPECT_EQ(s, Stat());
  ASSERT_EQ(tree_.GetAcl("/zookeeper/config", &acl, &s), Err::kOk);
  EXPECT_EQ(acl, ReadAcl());
  EXPECT_EQ(s.aversion, -1);
  int32_t count = 0;
  EXPECT_EQ(tree_.GetAllChildrenNumber("/", &count), Err::kOk);
  EXPECT_EQ(count, 3);
  EXPECT_EQ(tree_.Exists("/nope", nullptr), Err::kNoNode);
  EXPECT_EQ(tree_.Exists("bad//path", nullptr), Err::kNoNode);
  EXPECT_TRUE(tree_.sessions().empty());
}

TEST_F(TreeTest, CreateSetsEveryStatField) {
  now_ = 5000;
  ApplyResult r = Create("/a", "hello", 0, Kind::kFile);
  Stat want;
  want.czxid = want.mzxid = want.pzxid = 1;
  want.ctime = want.mtime = 5000;
  want.data_length = 5;
  ASSERT_EQ(r.results.size(), 1u);
  EXPECT_EQ(r.results[0].err, Err::kOk);
  EXPECT_EQ(r.results[0].type, OpType::kCreate);
  EXPECT_EQ(r.results[0].path, "/a");
  EXPECT_EQ(r.results[0].stat, want);
  EXPECT_EQ(StatOf("/a"), want);
  std::string data;
  EXPECT_EQ(tree_.GetData("/a", &data, nullptr), Err::kOk);
  EXPECT_EQ(data, "hello");
  Kind kind;
  EXPECT_EQ(tree_.GetKind("/a", &kind), Err::kOk);
  EXPECT_EQ(kind, Kind::kFile);

  Stat root = StatOf("/");
  EXPECT_EQ(root.cversion, 1);
  EXPECT_EQ(root.pzxid, 1);
  EXPECT_EQ(root.num_children, 2);
  EXPECT_EQ(root.mzxid, 0);  // a child does not touch the parent's data fields
  EXPECT_EQ(root.version, 0);

  ASSERT_EQ(r.changes.size(), 2u);
  EXPECT_EQ(r.changes[0].type, Change::kCreated);
  EXPECT_EQ(r.changes[0].path, "/a");
  EXPECT_EQ(r.changes[1].type, Change::kChildrenChanged);
  EXPECT_EQ(r.changes[1].path, "/");

  // The parent's create counter comes from the txn; its cversion counts.
  txn::Txn t = Next();
  FillCreate(t.mutable_create(), "/a/b", "", 0, Kind::kUnset, OpenAcl(), 7);
  r = Apply(t);
  Stat a = StatOf("/a");
  EXPECT_EQ(a.cversion, 1);
  EXPECT_EQ(CreatesOf("/a"), 7);
  EXPECT_EQ(a.pzxid, 2);
  EXPECT_EQ(a.num_children, 1);
  EXPECT_EQ(a.mzxid, 1);
  EXPECT_EQ(r.changes[1].path, "/a");
  NodeMeta meta;
  ASSERT_TRUE(tree_.GetMeta("/a/b", &meta));
  EXPECT_EQ(meta.stat.czxid, 2);
  EXPECT_EQ(meta.acl, OpenAcl());
  EXPECT_EQ(meta.kind, Kind::kUnset);
  EXPECT_FALSE(tree_.GetMeta("/a/c", &meta));
}

TEST_F(TreeTest, DeleteMovesParentPzxidAndCversionButNotCreateCounter) {
  Create("/p");
  Create("/p/x");
  Create("/p/y");
  Stat before = StatOf("/p");
  EXPECT_EQ(before.cversion, 2);
  EXPECT_EQ(CreatesOf("/p"), 2);
  ApplyResult r = Delete("/p/x");
  Stat after = StatOf("/p");
  EXPECT_EQ(after.cversion, 3);   // ZooKeeper 3.8 counts child deletes in cversion
  EXPECT_EQ(CreatesOf("/p"), 2);  // but not in the sequential numbering
  EXPECT_EQ(after.pzxid, zxid_);
  EXPECT_EQ(after.num_children, 1);
  EXPECT_EQ(after.mzxid, before.mzxid);
  EXPECT_EQ(tree_.Exists("/p/x", nullptr), Err::kNoNode);
  ASSERT_EQ(r.results.size(), 1u);
  EXPECT_EQ(r.results[0].type, OpType::kDelete);
  EXPECT_EQ(r.results[0].path, "/p/x");
  ASSERT_EQ(r.changes.size(), 2u);
  EXPECT_EQ(r.changes[0].type, Change::kDeleted);
  EXPECT_EQ(r.changes[0].path, "/p/x");
  EXPECT_EQ(r.changes[1].type, Change::kChildrenChanged);
  EXPECT_EQ(r.changes[1].path, "/p");
  EXPECT_EQ(tree_.node_count(), 6u);
}

TEST_F(TreeTest, SetDataUpdatesVersionMzxidMtime) {
  now_ = 100;
  Create("/d", "v0");
  Create("/d/kid");
  now_ = 200;
  ApplyResult r = SetData("/d", std::string(300, 'x'));  // grows: the node moves
  Stat s = StatOf("/d");
  EXPECT_EQ(s.version, 1);
  EXPECT_EQ(s.mzxid, 3);
  EXPECT_EQ(s.mtime, 200);
  EXPECT_EQ(s.ctime, 100);
  EXPECT_EQ(s.czxid, 1);
  EXPECT_EQ(s.data_length, 300);
  EXPECT_EQ(s.num_children, 1);
  EXPECT_EQ(s.pzxid, 2);
  ASSERT_EQ(r.results.size(), 1u);
  EXPECT_EQ(r.results[0].type, OpType::kSetData);
  EXPECT_EQ(r.results[0].stat, s);
  ASSERT_EQ(r.changes.size(), 1u);
  EXPECT_EQ(r.changes[0].type, Change::kDataChanged);
  EXPECT_EQ(r.changes[0].path, "/d");
  EXPECT_EQ(tree_.Exists("/d/kid", nullptr), Err::kOk);
  SetData("/d", "");
  std::string data = "junk";
  EXPECT_EQ(tree_.GetData("/d", &data, &s), Err::kOk);
  EXPECT_EQ(data, "");
  EXPECT_EQ(s.version, 2);
  // The root can move too.
  SetData("/", "root data");
  EXPECT_EQ(tree_.GetData("/", &data, &s), Err::kOk);
  EXPECT_EQ(data, "root data");
  EXPECT_EQ(s.version, 1);
  EXPECT_EQ(tree_.Exists("/d/kid", nullptr), Err::kOk);
}

// ZooKeeper keeps null data (length -1) apart from empty data; so does the tree, through
// setData, snapshots and the digest.
TEST_F(TreeTest, NullDataIsKeptApartFromEmptyData) {
  txn::Txn t = Next();
  FillCreate(t.mutable_create(), "/null", "", 0, Kind::kUnset, OpenAcl(), CreatesOf("/") + 1);
  t.mutable_create()->set_data_null(true);
  Apply(t);
  Create("/empty");
  std::string data = "junk";
  bool is_null = false;
  Stat st;
  EXPECT_EQ(tree_.GetData("/null", &data, &st, &is_null), Err::kOk);
  EXPECT_TRUE(is_null);
  EXPECT_EQ(data, "");
  EXPECT_EQ(st.data_length, 0);
  EXPECT_EQ(tree_.GetData("/empty", &data, &st, &is_null), Err::kOk);
  EXPECT_FALSE(is_null);
  Kind kind;
  EXPECT_EQ(tree_.GetKind("/null", &kind), Err::kOk);
  EXPECT_EQ(kind, Kind::kUnset) << "the null flag does not leak into the kind";

  auto loaded = Load(Snapshot(tree_));
  ASSERT_TRUE(loaded.ok()) << loaded.status().ToString();
  EXPECT_EQ((*loaded)->GetData("/null", &data, &st, &is_null), Err::kOk);
  EXPECT_TRUE(is_null) << "snapshots keep the null flag";
  EXPECT_EQ((*loaded)->digest(), tree_.digest());

  uint64_t before = tree_.digest();
  SetData("/null", "");  // empty, not null
  EXPECT_NE(tree_.digest(), before);
  EXPECT_EQ(tree_.digest(), tree_.ComputeDigest());
  EXPECT_EQ(tree_.GetData("/null", &data, &st, &is_null), Err::kOk);
  EXPECT_FALSE(is_null);
  t = Next();
  t.mutable_set_data()->set_path("/empty");
  t.mutable_set_data()->set_version(1);
  t.mutable_set_data()->set_data_null(true);
  Apply(t);
  EXPECT_EQ(tree_.GetData("/empty", &data, &st, &is_null), Err::kOk);
  EXPECT_TRUE(is_null);
  EXPECT_EQ(tree_.digest(), tree_.ComputeDigest());
}

TEST_F(TreeTest, SetAclUpdatesAversionOnly) {
  Create("/s", "x");
  ApplyResult r = SetAcl("/s", DigestAcl("bob"));
  std::vector<Acl> acl;
  Stat s;
  ASSERT_EQ(tree_.GetAcl("/s", &acl, &s), Err::kOk);
  EXPECT_EQ(acl, DigestAcl("bob"));
  EXPECT_EQ(s.aversion, 1);
  EXPECT_EQ(s.mzxid, 1);
  EXPECT_EQ(s.version, 0);
  ASSERT_EQ(r.results.size(), 1u);
  EXPECT_EQ(r.results[0].type, OpType::kSetAcl);
  EXPECT_EQ(r.results[0].stat, s);
  ASSERT_EQ(r.changes.size(), 1u);
  EXPECT_EQ(r.changes[0].type, Change::kAclChanged);
  EXPECT_EQ(r.changes[0].path, "/s");
}

TEST_F(TreeTest, MultiAppliesOpsInOrder) {
  Create("/m", "old");
  Create("/m/gone");
  now_ = 777;
  txn::Txn t = Next();
  auto* ops = t.mutable_multi();
  ops->add_ops()->mutable_check()->set_path("/m");
  ops->mutable_ops(0)->mutable_check()->set_version(0);
  FillCreate(ops->add_ops()->mutable_create(), "/m/new", "n", 0, Kind::kDirectory, OpenAcl(), 2);
  auto* sd = ops->add_ops()->mutable_set_data();
  sd->set_path("/m");
  sd->set_data("new");
  sd->set_version(1);
  ops->add_ops()->mutable_delete_()->set_path("/m/gone");
  FillCreate(ops->add_ops()->mutable_create(), "/m/new/deep", "", 0, Kind::kFile, OpenAcl(), 1);
  ApplyResult r = Apply(t);
  ASSERT_EQ(r.results.size(), 5u);
  EXPECT_EQ(r.results[0].type, OpType::kCheck);
  EXPECT_EQ(r.results[0].path, "/m");
  EXPECT_EQ(r.results[1].type, OpType::kCreate);
  EXPECT_EQ(r.results[1].path, "/m/new");
  EXPECT_EQ(r.results[1].stat.czxid, 3);
  EXPECT_EQ(r.results[1].stat.ctime, 777);
  EXPECT_EQ(r.results[2].type, OpType::kSetData);
  EXPECT_EQ(r.results[2].stat.version, 1);
  EXPECT_EQ(r.results[2].stat.mzxid, 3);
  EXPECT_EQ(r.results[3].type, OpType::kDelete);
  EXPECT_EQ(r.results[4].path, "/m/new/deep");
  for (const OpResult& o : r.results) EXPECT_EQ(o.err, Err::kOk);
  std::vector<std::pair<Change::Type, std::string>> got;
  for (const Change& c : r.changes) got.push_back({c.type, c.path});
  std::vector<std::pair<Change::Type, std::string>> want = {
      {Change::kCreated, "/m/new"},        {Change::kChildrenChanged, "/m"},
      {Change::kDataChanged, "/m"},        {Change::kDeleted, "/m/gone"},
      {Change::kChildrenChanged, "/m"},    {Change::kCreated, "/m/new/deep"},
      {Change::kChildrenChanged, "/m/new"}};
  EXPECT_EQ(got, want);
  Stat m = StatOf("/m");
  EXPECT_EQ(m.cversion, 3);  // two creates and a delete
  EXPECT_EQ(CreatesOf("/m"), 2);
  EXPECT_EQ(m.pzxid, 3);
  EXPECT_EQ(m.num_children, 1);
  EXPECT_EQ(m.version, 1);
  EXPECT_EQ(tree_.last_zxid(), 3);

  // An empty multi changes nothing but the zxid.
  uint64_t d = tree_.digest();
  txn::Txn empty = Next();
  empty.mutable_multi();
  r = Apply(empty);
  EXPECT_TRUE(r.results.empty());
  EXPECT_EQ(tree_.digest(), d);
}

TEST_F(TreeTest, SessionsAndEphemerals) {
  const int64_t s1 = 0x100000001, s2 = 0x100000002;
  CreateSession(s1, 5000);
  CreateSession(s2, 9000);
  EXPECT_EQ(tree_.sessions(), (std::map<int64_t, int32_t>{{s1, 5000}, {s2, 9000}}));
  Create("/e");
  Create("/e/z", "", s1);
  Create("/e/a", "", s1);
  Create("/eb", "", s1);
  Create("/other", "", s2);
  EXPECT_EQ(StatOf("/e/z").ephemeral_owner, s1);
  EXPECT_EQ(tree_.GetEphemerals(s1, "/"), (std::vector<std::string>{"/e/a", "/e/z", "/eb"}));
  // A plain string prefix, as ZooKeeper's.
  EXPECT_EQ(tree_.GetEphemerals(s1, "/e"), (std::vector<std::string>{"/e/a", "/e/z", "/eb"}));
  EXPECT_EQ(tree_.GetEphemerals(s1, "/e/"), (std::vector<std::string>{"/e/a", "/e/z"}));
  EXPECT_EQ(tree_.GetEphemerals(s1, "/x"), std::vector<std::string>{});
  EXPECT_EQ(tree_.GetEphemerals(42, "/"), std::vector<std::string>{});
  Delete("/e/z");
  EXPECT_EQ(tree_.GetEphemerals(s1, "/"), (std::vector<std::string>{"/e/a", "/eb"}));

  ApplyResult r = CloseSession(s1);
  EXPECT_EQ(tree_.Exists("/e/a", nullptr), Err::kNoNode);
  EXPECT_EQ(tree_.Exists("/eb", nullptr), Err::kNoNode);
  EXPECT_EQ(tree_.Exists("/other", nullptr), Err::kOk);
  EXPECT_EQ(tree_.GetEphemerals(s1, "/"), std::vector<std::string>{});
  EXPECT_EQ(tree_.sessions(), (std::map<int64_t, int32_t>{{s2, 9000}}));
  ASSERT_EQ(r.changes.size(), 4u);
  EXPECT_EQ(r.changes[0].type, Change::kDeleted);
  EXPECT_EQ(r.changes[0].path, "/e/a");
  EXPECT_EQ(r.changes[1].path, "/e");
  EXPECT_EQ(r.changes[3].path, "/");
  EXPECT_EQ(StatOf("/e").pzxid, zxid_);
  // Containers and TTL nodes are not session-owned.
  Create("/c", "", kContainerOwner);
  Create("/t", "", TtlOwner(100));
  EXPECT_EQ(tree_.GetEphemerals(kContainerOwner, "/"), std::vector<std::string>{});
  EXPECT_EQ(tree_.GetEphemerals(TtlOwner(100), "/"), std::vector<std::string>{});
}

TEST_F(TreeTest, ContainerCandidates) {
  Create("/c", "", kContainerOwner);
  EXPECT_TRUE(tree_.ExpiryCandidates(1 << 30).empty());  // never had a child
  Create("/c/kid");
  EXPECT_TRUE(tree_.ExpiryCandidates(1 << 30).empty());
  Delete("/c/kid");
  EXPECT_EQ(tree_.ExpiryCandidates(0), std::vector<std::string>{"/c"});
  Delete("/c");
  EXPECT_TRUE(tree_.ExpiryCandidates(1 << 30).empty());
}

TEST_F(TreeTest, TtlCandidates) {
  now_ = 1000;
  Create("/t1", "", TtlOwner(500));
  Create("/t2", "", TtlOwner(100));
  Create("/plain");
  EXPECT_TRUE(tree_.ExpiryCandidates(1100).empty());  // 1000 + 100 == 1100: not yet
  EXPECT_EQ(tree_.ExpiryCandidates(1101), std::vector<std::string>{"/t2"});
  EXPECT_EQ(tree_.ExpiryCandidates(1501), (std::vector<std::string>{"/t1", "/t2"}));
  now_ = 1450;
  SetData("/t2", "touch");  // mtime moves the deadline
  EXPECT_EQ(tree_.ExpiryCandidates(1501), std::vector<std::string>{"/t1"});
  Create("/t1/kid");
  EXPECT_TRUE(tree_.ExpiryCandidates(1501).empty());
  EXPECT_EQ(tree_.ExpiryCandidates(1000000), std::vector<std::string>{"/t2"});
  Create("/c", "", kContainerOwner);
  Create("/c/x");
  Delete("/c/x");
  EXPECT_EQ(tree_.ExpiryCandidates(1000000), (std::vector<std::string>{"/c", "/t2"}));
}

TEST_F(TreeTest, GetChildrenSortedAndDescendantCount) {
  Create("/g");
  for (const char* n : {"b", "a", "c10", "c2"}) Create(std::string("/g/") + n);
  Create("/g/a/x");
  Create("/g/a/x/y");
  std::vector<std::string> names;
  ASSERT_EQ(tree_.GetChildren("/g", &names, nullptr), Err::kOk);
  EXPECT_EQ(names, (std::vector<std::string>{"a", "b", "c10", "c2"}));
  int32_t n = -1;
  EXPECT_EQ(tree_.GetAllChildrenNumber("/g", &n), Err::kOk);
  EXPECT_EQ(n, 6);
  EXPECT_EQ(tree_.GetAllChildrenNumber("/g/b", &n), Err::kOk);
  EXPECT_EQ(n, 0);
  EXPECT_EQ(tree_.GetAllChildrenNumber("/", &n), Err::kOk);
  EXPECT_EQ(n, 10);
  EXPECT_EQ(tree_.GetAllChildrenNumber("/nope", &n), Err::kNoNode);
  EXPECT_EQ(tree_.GetChildren("/nope", &names, nullptr), Err::kNoNode);
}

TEST_F(TreeTest, ManyChildrenGrowAndShrink) {
  Create("/big");
  std::mt19937 rng(7);
  std::vector<int> ids(1200);
  for (int i = 0; i < 1200; i++) ids[i] = i;
  std::shuffle(ids.begin(), ids.end(), rng);
  std::set<std::string> live;
  for (int i : ids) {
    std::string name = "n" + std::to_string(i);
    Create("/big/" + name, std::to_string(i));
    live.insert(name);
  }
  std::shuffle(ids.begin(), ids.end(), rng);
  for (size_t k = 0; k < ids.size(); k++) {
    std::string name = "n" + std::to_string(ids[k]);
    Delete("/big/" + name);
    live.erase(name);
    if (k % 97 == 0 || live.size() < 20) {
      std::vector<std::string> names;
      Stat s;
      ASSERT_EQ(tree_.GetChildren("/big", &names, &s), Err::kOk);
      ASSERT_EQ(std::set<std::string>(names.begin(), names.end()), live);
      ASSERT_EQ(s.num_children, static_cast<int32_t>(live.size()));
      for (const std::string& l : live) {
        std::string data;
        ASSERT_EQ(tree_.GetData("/big/" + l, &data, nullptr), Err::kOk);
        ASSERT_EQ("n" + data, l);
      }
    }
  }
  EXPECT_EQ(StatOf("/big").num_children, 0);
}

TEST_F(TreeTest, DigestCoversEveryField) {
  // Each tree differs from the base in one respect; all digests must differ.
  auto build = [](int variant) {
    DataTree t;
    txn::Txn c;
    c.set_zxid(variant == 1 ? 2 : 1);
    c.set_time_ms(variant == 2 ? 11 : 10);
    auto* cr = c.mutable_create();
    cr->set_path(variant == 3 ? "/b" : "/a");
    cr->set_data(variant == 4 ? "y" : "x");
    cr->set_kind(variant == 5 ? 1 : 0);
    cr->set_ephemeral_owner(variant == 6 ? kContainerOwner : 0);
    cr->set_parent_cversion(variant == 7 ? 5 : 1);  // only the root's create counter differs
    SetAclField(cr, variant == 8 ? ReadAcl() : OpenAcl());
    t.Apply(c);
    if (variant == 9) {
      txn::Txn s;
      s.set_zxid(3);
      s.mutable_set_data()->set_path("/a");
      s.mutable_set_data()->set_data("x");
      s.mutable_set_data()->set_version(0);
      s.set_time_ms(10);
      t.Apply(s);  // same data and version: only mzxid differs
    }
    if (variant == 10) {
      txn::Txn s;
      s.set_zxid(3);
      s.mutable_set_acl()->set_path("/a");
      SetAclField(s.mutable_set_acl(), OpenAcl());
      s.mutable_set_acl()->set_aversion(1);
      t.Apply(s);  // same ACL content: only aversion differs
    }
    EXPECT_EQ(t.digest(), t.ComputeDigest());
    return t.digest();
  };
  std::set<uint64_t> seen;
  for (int v = 0; v <= 10; v++) EXPECT_TRUE(seen.insert(build(v)).second) << "variant " << v;
  EXPECT_EQ(build(0), build(0));
  EXPECT_FALSE(seen.count(DataTree().digest()));
}

TEST_F(TreeTest, AclTableSharesEntriesAndReusesIds) {
  auto acl_records = [&](const DataTree& t) {
    std::map<uint32_t, std::vector<Acl>> out;
    for (const std::string& r : Snapshot(t)) {
      txn::SnapRecord rec;
      EXPECT_TRUE(rec.ParseFromString(r));
      if (rec.has_acl()) {
        std::vector<Acl> v;
        for (const auto& a : rec.acl().acl()) v.push_back({a.perms(), {a.scheme(), a.id()}});
        out[rec.acl().id()] = v;
      }
    }
    return out;
  };
  // Initial: open (0) and read-only (1).
  EXPECT_EQ(acl_records(tree_).size(), 2u);
  Create("/x1", "", 0, Kind::kUnset, DigestAcl("a"));
  Create("/x2", "", 0, Kind::kUnset, DigestAcl("a"));
  Create("/y", "", 0, Kind::kUnset, DigestAcl("b"));
  auto recs = acl_records(tree_);
  ASSERT_EQ(recs.size(), 4u);
  EXPECT_EQ(recs[2], DigestAcl("a"));
  EXPECT_EQ(recs[3], DigestAcl("b"));
  Delete("/x1");
  EXPECT_EQ(acl_records(tree_).size(), 4u);  // still used by /x2
  SetAcl("/x2", OpenAcl());
  recs = acl_records(tree_);
  EXPECT_EQ(recs.size(), 3u);
  EXPECT_FALSE(recs.count(2));
  Create("/z", "", 0, Kind::kUnset, DigestAcl("c"));  // takes the smallest free id
  EXPECT_EQ(acl_records(tree_)[2], DigestAcl("c"));
  Delete("/y");
  Delete("/z");
  EXPECT_EQ(acl_records(tree_).size(), 2u);
}

TEST_F(TreeTest, SnapshotRoundTrip) {
  const int64_t s1 = 0x200000001;
  CreateSession(s1);
  CreateSession(0x200000002, 1234);
  Create("/app", "cfg", 0, Kind::kDirectory);
  Create("/app/b", std::string("\0\1\2", 3), 0, Kind::kFile, DigestAcl("u"));
  Create("/app/a", "", s1);
  Create("/c", "", kContainerOwner);
  Create("/c/k");
  Delete("/c/k");
  Create("/t", "", TtlOwner(10));
  SetData("/app", "cfg2");
  SetAcl("/app", ReadAcl());
  Create("/tmp1", "", 0, Kind::kUnset, DigestAcl("gone"));
  Delete("/tmp1");  // leaves a free ACL id below live ones

  std::vector<std::string> recs = Snapshot(tree_);
  // The child deletes are recorded where there were any.
  for (const std::string& r : recs) {
    txn::SnapRecord rec;
    ASSERT_TRUE(rec.ParseFromString(r));
    if (!rec.has_node()) continue;
    const std::string& p = rec.node().path();
    EXPECT_EQ(rec.node().child_deletes(), p == "/c" || p == "/" ? 1 : 0) << p;
  }
  auto loaded = Load(recs);
  ASSERT_TRUE(loaded.ok()) << loaded.status().ToString();
  DataTree& t2 = **loaded;
  EXPECT_EQ(t2.digest(), tree_.digest());
  EXPECT_EQ(t2.node_count(), tree_.node_count());
  EXPECT_EQ(t2.last_zxid(), tree_.last_zxid());
  EXPECT_EQ(t2.sessions(), tree_.sessions());
  EXPECT_EQ(Snapshot(t2), recs);
  EXPECT_EQ(t2.GetEphemerals(s1, "/"), std::vector<std::string>{"/app/a"});
  EXPECT_EQ(t2.ExpiryCandidates(1 << 30), tree_.ExpiryCandidates(1 << 30));
  EXPECT_EQ(t2.ExpiryCandidates(1 << 30), (std::vector<std::string>{"/c", "/t"}));
  for (const char* p : {"/", "/zookeeper/config", "/app", "/app/a", "/app/b", "/c", "/t"}) {
    NodeMeta m1, m2;
    ASSERT_TRUE(tree_.GetMeta(p, &m1));
    ASSERT_TRUE(t2.GetMeta(p, &m2)) << p;
    EXPECT_EQ(m1.stat, m2.stat) << p;
    EXPECT_EQ(m1.child_creates, m2.child_creates) << p;
    EXPECT_EQ(m1.acl, m2.acl) << p;
    EXPECT_EQ(m1.kind, m2.kind) << p;
    std::string d1, d2;
    tree_.GetData(p, &d1, nullptr);
    t2.GetData(p, &d2, nullptr);
    EXPECT_EQ(d1, d2);
  }

  // Both continue identically, ACL ids included.
  std::vector<txn::Txn> more;
  {
    txn::Txn t = Next();
    FillCreate(t.mutable_create(), "/app/n", "", 0, Kind::kUnset, DigestAcl("new"), 3);
    more.push_back(t);
    txn::Txn c = Next();
    c.set_session_id(s1);
    c.mutable_close_session()->add_paths_to_delete("/app/a");
    more.push_back(c);
  }
  for (const txn::Txn& t : more) {
    Apply(t);
    t2.Apply(t);
  }
  EXPECT_EQ(t2.digest(), tree_.digest());
  EXPECT_EQ(t2.digest(), t2.ComputeDigest());
  EXPECT_EQ(Snapshot(t2), Snapshot(tree_));
}

TEST_F(TreeTest, CorruptSnapshotsAreRejected) {
  Create("/a", "1");
  Create("/a/b", "2");
  Create("/c", "3");
  std::vector<std::string> recs = Snapshot(tree_);
  ASSERT_TRUE(Load(recs).ok());

  auto expect_corrupt = [](const std::vector<std::string>& r, const char* what) {
    auto l = Load(r);
    ASSERT_FALSE(l.ok()) << what;
    EXPECT_EQ(l.status().code(), Code::kCorruption) << what;
  };
  {
    std::vector<std::string> r = recs;
    txn::SnapRecord h;
    ASSERT_TRUE(h.ParseFromString(r[0]));
    ASSERT_TRUE(h.has_header());
    h.mutable_header()->set_digest(h.header().digest() + 1);
    r[0] = h.SerializeAsString();
    expect_corrupt(r, "digest");
  }
  {
    // A node whose data changed: the recomputed digest differs.
    std::vector<std::string> r = recs;
    txn::SnapRecord n;
    ASSERT_TRUE(n.ParseFromString(r.back()));
    ASSERT_TRUE(n.has_node());
    n.mutable_node()->set_data("tampered");
    r.back() = n.SerializeAsString();
    expect_corrupt(r, "data");
  }
  {
    std::vector<std::string> r = recs;
    r.pop_back();
    expect_corrupt(r, "truncated");
  }
  {
    // /c before /a/b: not a preorder.
    std::vector<std::string> r = recs;
    auto index_of = [&](const std::string& path) {
      for (size_t i = 0; i < r.size(); i++) {
        txn::SnapRecord n;
        if (n.ParseFromString(r[i]) && n.has_node() && n.node().path() == path) return i;
      }
      ADD_FAILURE() << path;
      return size_t{0};
    };
    std::swap(r[index_of("/a/b")], r[index_of("/c")]);
    expect_corrupt(r, "order");
  }
  {
    std::vector<std::string> r = recs;
    r.erase(r.begin());
    expect_corrupt(r, "no header");
  }
  {
    std::vector<std::string> r = recs;
    r[2] = "\xff\xff\xff";
    expect_corrupt(r, "garbage");
  }
  {
    std::vector<std::string> r = recs;
    txn::SnapRecord n;
    ASSERT_TRUE(n.ParseFromString(r.back()));
    n.mutable_node()->set_acl_id(99);
    r.back() = n.SerializeAsString();
    expect_corrupt(r, "acl id");
  }
  {
    // The digest covers the child create counter.
    std::vector<std::string> r = recs;
    txn::SnapRecord n;
    ASSERT_TRUE(n.ParseFromString(r.back()));
    n.mutable_node()->set_child_deletes(1);
    r.back() = n.SerializeAsString();
    expect_corrupt(r, "child deletes");
  }
  expect_corrupt({}, "empty");
}

// Random txns over a small namespace, checked against a plain model after every apply.
TEST_F(TreeTest, RandomOpsMatchModel) {
  struct M {
    std::string data;
    Stat stat;
  };
  std::map<std::string, M> model;
  for (const char* p : {"/", "/zookeeper", "/zookeeper/quota", "/zookeeper/config"}) {
    model[p].stat = StatOf(p);
  }
  auto children_of = [&](const std::string& p) {
    int n = 0;
    for (auto& [k, v] : model) {
      if (k != "/" && ParentOf(k) == p) n++;
    }
    return n;
  };
  std::mt19937 rng(12345);
  const char* names[] = {"a", "b", "c", "dd"};
  uint64_t first_digest = tree_.digest();
  for (int step = 0; step < 3000; step++) {
    now_ += rng() % 50;
    // A random path of depth 1..3.
    std::string path;
    int depth = 1 + rng() % 3;
    for (int d = 0; d < depth; d++) path += std::string("/") + names[rng() % 4];
    std::string parent = ParentOf(path);
    int what = rng() % 5;
    if (!model.count(path) && model.count(parent) && what < 2) {
      std::string data(rng() % 20, static_cast<char>('a' + rng() % 26));
      Create(path, data, 0, Kind::kUnset, rng() % 2 ? OpenAcl() : DigestAcl("r"));
      M& m = model[path];
      m.data = data;
      m.stat.czxid = m.stat.mzxid = m.stat.pzxid = zxid_;
      m.stat.ctime = m.stat.mtime = now_;
      model[parent].stat.cversion++;
      model[parent].stat.pzxid = zxid_;
    } else if (model.count(path) && children_of(path) == 0 && what == 2) {
      Delete(path);
      model.erase(path);
      model[parent].stat.cversion++;
      model[parent].stat.pzxid = zxid_;
    } else if (model.count(path) && what == 3) {
      SetAcl(path, rng() % 2 ? ReadAcl() : DigestAcl(names[rng() % 4]));
      model[path].stat.aversion++;
    } else if (model.count(path)) {
      std::string data(rng() % 200, static_cast<char>('a' + rng() % 26));
      SetData(path, data);
      M& m = model[path];
      m.data = data;
      m.stat.version++;
      m.stat.mzxid = zxid_;
      m.stat.mtime = now_;
    } else {
      continue;
    }
    ASSERT_EQ(tree_.node_count(), model.size());
    if (step % 10 == 0) {
      for (auto& [p, m] : model) {
        Stat want = m.stat;
        want.data_length = static_cast<int32_t>(m.data.size());
        want.num_children = children_of(p);
        std::string data;
        Stat got;
        ASSERT_EQ(tree_.GetData(p, &data, &got), Err::kOk) << p;
        ASSERT_EQ(got, want) << p;
        ASSERT_EQ(data, m.data) << p;
      }
    }
  }
  EXPECT_NE(tree_.digest(), first_digest);
  // Replaying the same history through a snapshot gives the same bytes.
  auto loaded = Load(Snapshot(tree_));
  ASSERT_TRUE(loaded.ok());
  EXPECT_EQ(Snapshot(**loaded), Snapshot(tree_));
}

// --- Invalid txns are invariant failures: prepare must never produce them. ---

using TreeDeathTest = TreeTest;

TEST_F(TreeDeathTest, InvalidTxnsCheckFail) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  Create("/a");
  Create("/a/b");
  CreateSession(0x300000001);
  Create("/eph", "", 0x300000001);
  auto create = [&](const std::string& path, int64_t owner = 0) {
    txn::Txn t = Next();
    FillCreate(t.mutable_create(), path, "", owner, Kind::kUnset, OpenAcl(), 1);
    return t;
  };
  EXPECT_DEATH(tree_.Apply(create("/missing/x")), "CHECK failed");
  EXPECT_DEATH(tree_.Apply(create("/a")), "CHECK failed");
  EXPECT_DEATH(tree_.Apply(create("/eph/x")), "CHECK failed");
  EXPECT_DEATH(tree_.Apply(create("/s", 0x999)), "CHECK failed");  // unknown session
  EXPECT_DEATH(tree_.Apply(create("relative")), "CHECK failed");
  {
    txn::Txn t = create("/z");
    t.set_zxid(tree_.last_zxid());  // zxid must grow
    EXPECT_DEATH(tree_.Apply(t), "CHECK failed");
  }
  {
    txn::Txn t = Next();
    t.mutable_delete_()->set_path("/a");  // not empty
    EXPECT_DEATH(tree_.Apply(t), "CHECK failed");
    t.mutable_delete_()->set_path("/nope");
    EXPECT_DEATH(tree_.Apply(t), "CHECK failed");
    t.mutable_delete_()->set_path("/");
    EXPECT_DEATH(tree_.Apply(t), "CHECK failed");
  }
  {
    txn::Txn t = Next();
    t.mutable_set_data()->set_path("/nope");
    EXPECT_DEATH(tree_.Apply(t), "CHECK failed");
  }
  {
    txn::Txn t = Next();
    t.mutable_multi()->add_ops()->mutable_check()->set_path("/a");
    t.mutable_multi()->mutable_ops(0)->mutable_check()->set_version(5);
    EXPECT_DEATH(tree_.Apply(t), "CHECK failed");
  }
  {
    txn::Txn t = Next();
    t.set_session_id(0x300000001);
    t.mutable_close_session();  // leaves /eph behind
    EXPECT_DEATH(tree_.Apply(t), "CHECK failed");
    t.mutable_close_session()->add_paths_to_delete("/a/b");  // not its node
    EXPECT_DEATH(tree_.Apply(t), "CHECK failed");
  }
  {
    txn::Txn t = Next();
    t.set_session_id(0x300000001);
    t.mutable_create_session()->set_timeout_ms(1);  // exists already
    EXPECT_DEATH(tree_.Apply(t), "CHECK failed");
  }
  EXPECT_DEATH(tree_.Apply(Next()), "CHECK failed");  // no op
}

}  // namespace
