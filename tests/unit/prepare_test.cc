// Prepare (validation + txn building) against ZooKeeper 3.8's semantics: every request type, create
// mode, error code and Stat field, ACL schemes, multi, pipelining and the path rules. Txns are
// applied to a real DataTree to check the outcome.
#include "daemon/tree/prepare.h"

#include <gtest/gtest.h>

#include <climits>
#include <deque>
#include <memory>
#include <string>
#include <vector>

namespace qfs::tree {
namespace {

// --- request builders ---

Op CreateOp(std::string path, std::string data = "", CreateMode mode = CreateMode::kPersistent,
            std::vector<Acl> acl = OpenAcl()) {
  Op op;
  op.type = OpType::kCreate;
  op.path = std::move(path);
  op.data = std::move(data);
  op.mode = mode;
  op.acl = std::move(acl);
  return op;
}
Op DeleteOp(std::string path, int32_t version = -1) {
  Op op;
  op.type = OpType::kDelete;
  op.path = std::move(path);
  op.version = version;
  return op;
}
Op SetDataOp(std::string path, std::string data, int32_t version = -1) {
  Op op;
  op.type = OpType::kSetData;
  op.path = std::move(path);
  op.data = std::move(data);
  op.version = version;
  return op;
}
Op SetAclOp(std::string path, std::vector<Acl> acl, int32_t version = -1) {
  Op op;
  op.type = OpType::kSetAcl;
  op.path = std::move(path);
  op.acl = std::move(acl);
  op.version = version;
  return op;
}
Op AppendOp(std::string path, std::string data, int32_t version = -1) {
  Op op = SetDataOp(std::move(path), std::move(data), version);
  op.type = OpType::kAppend;
  return op;
}
Op CheckOp(std::string path, int32_t version) {
  Op op;
  op.type = OpType::kCheck;
  op.path = std::move(path);
  op.version = version;
  return op;
}
Op DeleteContainerOp(std::string path) {
  Op op;
  op.type = OpType::kDeleteContainer;
  op.path = std::move(path);
  return op;
}
Op TtlOp(std::string path, int64_t ttl, CreateMode mode = CreateMode::kPersistentWithTtl) {
  Op op = CreateOp(std::move(path), "", mode);
  op.ttl_ms = ttl;
  return op;
}

Request Single(Op op, int64_t session = 0, std::vector<Id> auth = {}) {
  Request r;
  r.type = RequestType::kOp;
  r.session_id = session;
  r.ops.push_back(std::move(op));
  r.auth = std::move(auth);
  return r;
}
Request Multi(std::vector<Op> ops, int64_t session = 0, std::vector<Id> auth = {}) {
  Request r;
  r.type = RequestType::kMulti;
  r.session_id = session;
  r.ops = std::move(ops);
  r.auth = std::move(auth);
  return r;
}
Request CreateSession(int64_t id, int32_t timeout_ms = 30000) {
  Request r;
  r.type = RequestType::kCreateSession;
  r.session_id = id;
  r.session_timeout_ms = timeout_ms;
  return r;
}
Request CloseSession(int64_t id) {
  Request r;
  r.type = RequestType::kCloseSession;
  r.session_id = id;
  return r;
}

const Id kAlice{"digest", "alice:aGFzaGFsaWNl"};
const Id kBob{"digest", "bob:aGFzaGJvYg=="};
const Id kSuper{"super", ""};
const Id kWorld{"world", "anyone"};

std::vector<Acl> Only(int32_t perms, Id id) {
  return {Acl{perms, std::move(id)}};
}

class PrepareTest : public ::testing::Test {
 protected:
  PrepareTest() { Reinit({}); }

  void Reinit(TreeOptions options) {
    prep_.reset();
    tree_ = std::make_unique<DataTree>(options);
    prep_ = std::make_unique<Preparer>(*tree_);
    queued_.clear();
  }

  // Prepares without applying (the txn stays in flight); a success takes the next zxid.
  Prepared Prep(const Request& r) {
    Prepared p = prep_->Prepare(r, next_zxid_, now_);
    EXPECT_EQ(p.err == Err::kOk, p.txn.has_value());
    if (p.err == Err::kOk) {
      EXPECT_EQ(p.txn->zxid(), next_zxid_);
      EXPECT_TRUE(p.multi_results.empty());
      queued_.push_back(*p.txn);
      ++next_zxid_;
    }
    return p;
  }

  // Applies every in-flight txn in order.
  std::vector<ApplyResult> ApplyAll() {
    std::vector<ApplyResult> out;
    while (!queued_.empty()) {
      out.push_back(tree_->Apply(queued_.front()));
      EXPECT_EQ(out.back().err, Err::kOk);
      prep_->Applied(queued_.front().zxid());
      queued_.pop_front();
      EXPECT_EQ(tree_->digest(), tree_->ComputeDigest());
    }
    return out;
  }

  // Prepare and apply one request; returns the prepare error and, on success, the apply results.
  Err Run(const Request& r, std::vector<OpResult>* results = nullptr) {
    EXPECT_TRUE(queued_.empty());
    Prepared p = Prep(r);
    if (p.err != Err::kOk) return p.err;
    std::vector<ApplyResult> a = ApplyAll();
    if (results) *results = a.back().results;
    return Err::kOk;
  }
  Err Run(const Op& op, int64_t session = 0, std::vector<Id> auth = {}) {
    return Run(Single(op, session, std::move(auth)));
  }

  Stat StatOf(std::string_view path) {
    Stat s;
    EXPECT_EQ(tree_->Exists(path, &s), Err::kOk) << path;
    return s;
  }
  bool Exists(std::string_view path) { return tree_->Exists(path, nullptr) == Err::kOk; }
  int64_t last_zxid() const { return next_zxid_ - 1; }

  std::unique_ptr<DataTree> tree_;
  std::unique_ptr<Preparer> prep_;
  std::deque<txn::Txn> queued_;
  int64_t next_zxid_ = 1;
  int64_t now_ = 1'700'000'000'000;
};

// --- txn header and create ---

TEST_F(PrepareTest, TxnCarriesRequestHeader) {
  Request r = Single(CreateOp("/a", "x"));
  r.session_id = 0x1234;
  r.cxid = 77;
  Prepared p = prep_->Prepare(r, 42, 9999);
  ASSERT_EQ(p.err, Err::kOk);
  EXPECT_EQ(p.txn->zxid(), 42);
  EXPECT_EQ(p.txn->time_ms(), 9999);
  EXPECT_EQ(p.txn->session_id(), 0x1234);
  EXPECT_EQ(p.txn->cxid(), 77);
  ASSERT_TRUE(p.txn->has_create());
  EXPECT_EQ(p.txn->create().path(), "/a");
  EXPECT_EQ(p.txn->create().data(), "x");
  EXPECT_EQ(p.txn->create().parent_cversion(), 1);
  EXPECT_EQ(p.txn->create().ephemeral_owner(), 0);
  ASSERT_EQ(p.txn->create().acl_size(), 1);
  EXPECT_EQ(p.txn->create().acl(0).scheme(), "world");
  EXPECT_EQ(p.txn->create().acl(0).id(), "anyone");
  EXPECT_EQ(p.txn->create().acl(0).perms(), perm::kAll);
}

TEST_F(PrepareTest, CreatePersistentStatFields) {
  const Stat root_before = StatOf("/");
  std::vector<OpResult> res;
  Op op = CreateOp("/a", "hello");
  op.kind = Kind::kFile;
  ASSERT_EQ(Run(Single(op), &res), Err::kOk);
  const int64_t z = last_zxid();
  ASSERT_EQ(res.size(), 1u);
  EXPECT_EQ(res[0].err, Err::kOk);
  EXPECT_EQ(res[0].path, "/a");
  Stat s = StatOf("/a");
  EXPECT_EQ(res[0].stat, s);
  EXPECT_EQ(s.czxid, z);
  EXPECT_EQ(s.mzxid, z);
  EXPECT_EQ(s.ctime, now_);
  EXPECT_EQ(s.mtime, now_);
  EXPECT_EQ(s.version, 0);
  EXPECT_EQ(s.cversion, 0);
  EXPECT_EQ(s.aversion, 0);
  EXPECT_EQ(s.ephemeral_owner, 0);
  EXPECT_EQ(s.data_length, 5);
  EXPECT_EQ(s.num_children, 0);
  EXPECT_EQ(s.pzxid, z);
  Kind k;
  ASSERT_EQ(tree_->GetKind("/a", &k), Err::kOk);
  EXPECT_EQ(k, Kind::kFile);

  // The parent: one more child, cversion + 1, pzxid moved; its data fields untouched.
  Stat r = StatOf("/");
  EXPECT_EQ(r.num_children, root_before.num_children + 1);
  EXPECT_EQ(r.cversion, root_before.cversion + 1);
  EXPECT_EQ(r.pzxid, z);
  EXPECT_EQ(r.mzxid, root_before.mzxid);
  EXPECT_EQ(r.version, root_before.version);

  // A child bumps only the parent's child fields.
  ++now_;
  ASSERT_EQ(Run(CreateOp("/a/b")), Err::kOk);
  Stat a = StatOf("/a");
  EXPECT_EQ(a.num_children, 1);
  EXPECT_EQ(a.cversion, 1);
  EXPECT_EQ(a.pzxid, last_zxid());
  EXPECT_EQ(a.mzxid, z);
  EXPECT_EQ(a.mtime, now_ - 1);
}

TEST_F(PrepareTest, CreateErrors) {
  EXPECT_EQ(Run(CreateOp("/")), Err::kNodeExists);  // the root always exists
  ASSERT_EQ(Run(CreateOp("/a")), Err::kOk);
  EXPECT_EQ(Run(CreateOp("/a")), Err::kNodeExists);
  EXPECT_EQ(Run(CreateOp("/x/y")), Err::kNoNode);
  EXPECT_EQ(Run(CreateOp("a")), Err::kBadArguments);
  EXPECT_EQ(Run(CreateOp("")), Err::kBadArguments);
  EXPECT_EQ(Run(CreateOp("/a/")), Err::kBadArguments);  // trailing '/' only when sequential
  EXPECT_EQ(Run(CreateOp("/a/./b")), Err::kBadArguments);
  // ZooKeeper's own nodes: /zookeeper exists and is open, /zookeeper/config is read-only.
  EXPECT_EQ(Run(CreateOp("/zookeeper")), Err::kNodeExists);
  EXPECT_EQ(Run(CreateOp("/zookeeper/config/x")), Err::kNoAuth);
  EXPECT_EQ(Run(CreateOp("/zookeeper/mine")), Err::kOk);
  // Invalid kind and mode values.
  Op bad_kind = CreateOp("/k");
  bad_kind.kind = static_cast<Kind>(3);
  EXPECT_EQ(Run(bad_kind), Err::kBadArguments);
  EXPECT_EQ(Run(CreateOp("/m", "", static_cast<CreateMode>(7))), Err::kBadArguments);
  EXPECT_EQ(Run(CreateOp("/m", "", static_cast<CreateMode>(-1))), Err::kBadArguments);
  EXPECT_FALSE(Exists("/m"));
}

TEST_F(PrepareTest, CreateCheckOrderMatchesZooKeeper) {
  // fixupACL runs before the parent lookup.
  EXPECT_EQ(Run(CreateOp("/nope/x", "", CreateMode::kPersistent, {})), Err::kInvalidAcl);
  // The CREATE check runs before the existence check.
  ASSERT_EQ(Run(CreateOp("/p", "", CreateMode::kPersistent, Only(perm::kRead, kWorld))), Err::kOk);
  ASSERT_EQ(Run(CreateOp("/p/c"), 0, {kSuper}), Err::kOk);
  EXPECT_EQ(Run(CreateOp("/p/c")), Err::kNoAuth);
  EXPECT_EQ(Run(CreateOp("/p/c"), 0, {kSuper}), Err::kNodeExists);
}

TEST_F(PrepareTest, SequentialNumbering) {
  ASSERT_EQ(Run(CreateOp("/s")), Err::kOk);
  std::vector<OpResult> res;
  ASSERT_EQ(Run(Single(CreateOp("/s/n-", "", CreateMode::kPersistentSequential)), &res), Err::kOk);
  EXPECT_EQ(res[0].path, "/s/n-0000000000");
  ASSERT_EQ(Run(Single(CreateOp("/s/n-", "", CreateMode::kPersistentSequential)), &res), Err::kOk);
  EXPECT_EQ(res[0].path, "/s/n-0000000001");
  // Any create advances the counter.
  ASSERT_EQ(Run(CreateOp("/s/plain")), Err::kOk);
  ASSERT_EQ(Run(Single(CreateOp("/s/n-", "", CreateMode::kPersistentSequential)), &res), Err::kOk);
  EXPECT_EQ(res[0].path, "/s/n-0000000003");
  // Deletes bump cversion but not the counter: numbers are never reused nor skipped.
  ASSERT_EQ(Run(DeleteOp("/s/n-0000000003")), Err::kOk);
  ASSERT_EQ(Run(DeleteOp("/s/n-0000000000")), Err::kOk);
  EXPECT_EQ(StatOf("/s").cversion, 6);
  ASSERT_EQ(Run(Single(CreateOp("/s/n-", "", CreateMode::kPersistentSequential)), &res), Err::kOk);
  EXPECT_EQ(res[0].path, "/s/n-0000000004");
  // A sequential prefix may end with '/'.
  ASSERT_EQ(Run(Single(CreateOp("/s/", "", CreateMode::kPersistentSequential)), &res), Err::kOk);
  EXPECT_EQ(res[0].path, "/s/0000000005");
  EXPECT_EQ(Run(CreateOp("/s//", "", CreateMode::kPersistentSequential)), Err::kBadArguments);
  // Under the root: the root's cversion (one create so far, of /s).
  ASSERT_EQ(Run(Single(CreateOp("/", "", CreateMode::kPersistentSequential)), &res), Err::kOk);
  EXPECT_EQ(res[0].path, "/0000000001");
  // A generated name can collide with an existing node.
  ASSERT_EQ(Run(CreateOp("/q")), Err::kOk);
  ASSERT_EQ(Run(CreateOp("/q/x0000000001")), Err::kOk);
  EXPECT_EQ(Run(CreateOp("/q/x", "", CreateMode::kPersistentSequential)), Err::kNodeExists);
}

// The sequences measured on ZooKeeper 3.8: cversion counts child creates and deletes (session
// closes included), sequential suffixes count creates only.
TEST_F(PrepareTest, CversionAndSequenceNumbersMatchZooKeeper) {
  auto seq = [&](const std::string& prefix, int64_t session = 0) {
    std::vector<OpResult> res;
    const CreateMode mode =
        session ? CreateMode::kEphemeralSequential : CreateMode::kPersistentSequential;
    EXPECT_EQ(Run(Single(CreateOp(prefix, "", mode), session), &res), Err::kOk);
    return res.empty() ? std::string() : res[0].path;
  };
  auto cversion = [&](const char* p) { return StatOf(p).cversion; };
  ASSERT_EQ(Run(CreateOp("/cw")), Err::kOk);
  EXPECT_EQ(seq("/cw/s-"), "/cw/s-0000000000");
  EXPECT_EQ(cversion("/cw"), 1);
  ASSERT_EQ(Run(CreateOp("/cw/a")), Err::kOk);
  EXPECT_EQ(cversion("/cw"), 2);
  ASSERT_EQ(Run(DeleteOp("/cw/a")), Err::kOk);
  EXPECT_EQ(cversion("/cw"), 3);
  EXPECT_EQ(seq("/cw/s-"), "/cw/s-0000000002");
  EXPECT_EQ(cversion("/cw"), 4);
  ASSERT_EQ(Run(DeleteOp("/cw/s-0000000000")), Err::kOk);
  EXPECT_EQ(cversion("/cw"), 5);
  EXPECT_EQ(seq("/cw/s-"), "/cw/s-0000000003");
  EXPECT_EQ(cversion("/cw"), 6);

  ASSERT_EQ(Run(CreateOp("/c2")), Err::kOk);
  for (const char* n : {"/c2/a", "/c2/b", "/c2/c"}) ASSERT_EQ(Run(CreateOp(n)), Err::kOk);
  for (const char* n : {"/c2/a", "/c2/b", "/c2/c"}) ASSERT_EQ(Run(DeleteOp(n)), Err::kOk);
  EXPECT_EQ(cversion("/c2"), 6);
  EXPECT_EQ(StatOf("/c2").num_children, 0);
  EXPECT_EQ(seq("/c2/s-"), "/c2/s-0000000003");
  EXPECT_EQ(cversion("/c2"), 7);
  std::vector<OpResult> res;
  ASSERT_EQ(Run(Multi({CreateOp("/c2/x"), DeleteOp("/c2/x"),
                       CreateOp("/c2/q-", "", CreateMode::kPersistentSequential)}),
                &res),
            Err::kOk);
  ASSERT_EQ(res.size(), 3u);
  EXPECT_EQ(res[2].path, "/c2/q-0000000005");
  EXPECT_EQ(cversion("/c2"), 10);

  // Ephemerals removed by closeSession count as deletes.
  ASSERT_EQ(Run(CreateSession(9)), Err::kOk);
  ASSERT_EQ(Run(CreateOp("/c3")), Err::kOk);
  ASSERT_EQ(Run(CreateOp("/c3/e", "", CreateMode::kEphemeral), 9), Err::kOk);
  EXPECT_EQ(seq("/c3/f-", 9), "/c3/f-0000000001");
  EXPECT_EQ(cversion("/c3"), 2);
  ASSERT_EQ(Run(CloseSession(9)), Err::kOk);
  EXPECT_EQ(cversion("/c3"), 4);
  EXPECT_EQ(seq("/c3/s-"), "/c3/s-0000000002");
  EXPECT_EQ(cversion("/c3"), 5);

  // The same when every request is prepared before any is applied.
  ASSERT_EQ(Prep(Single(CreateOp("/p"))).err, Err::kOk);
  ASSERT_EQ(Prep(Single(CreateOp("/p/a"))).err, Err::kOk);
  ASSERT_EQ(Prep(Single(DeleteOp("/p/a"))).err, Err::kOk);
  Prepared p = Prep(Single(CreateOp("/p/s-", "", CreateMode::kPersistentSequential)));
  ASSERT_EQ(p.err, Err::kOk);
  EXPECT_EQ(p.txn->create().path(), "/p/s-0000000001");
  EXPECT_EQ(p.txn->create().parent_cversion(), 2);  // the create counter, not cversion (3)
  ApplyAll();
  EXPECT_EQ(cversion("/p"), 3);
  EXPECT_EQ(seq("/p/s-"), "/p/s-0000000002");
}

TEST_F(PrepareTest, EphemeralNodes) {
  EXPECT_EQ(Run(CreateOp("/e", "", CreateMode::kEphemeral), 7), Err::kSessionExpired);
  ASSERT_EQ(Run(CreateSession(7)), Err::kOk);
  EXPECT_EQ(Run(CreateOp("/e", "", CreateMode::kEphemeral), 8), Err::kSessionExpired);
  EXPECT_EQ(Run(CreateOp("/e", "", CreateMode::kEphemeral), 0), Err::kSessionExpired);
  ASSERT_EQ(Run(CreateOp("/e", "", CreateMode::kEphemeral), 7), Err::kOk);
  EXPECT_EQ(StatOf("/e").ephemeral_owner, 7);
  std::vector<OpResult> res;
  ASSERT_EQ(Run(Single(CreateOp("/es-", "", CreateMode::kEphemeralSequential), 7), &res), Err::kOk);
  EXPECT_EQ(res[0].path, "/es-0000000001");
  EXPECT_EQ(StatOf(res[0].path).ephemeral_owner, 7);
  EXPECT_EQ(tree_->GetEphemerals(7, "/"), (std::vector<std::string>{"/e", "/es-0000000001"}));
  // Ephemerals cannot have children, whatever the child's mode or session.
  EXPECT_EQ(Run(CreateOp("/e/c")), Err::kNoChildrenForEphemerals);
  EXPECT_EQ(Run(CreateOp("/e/c", "", CreateMode::kEphemeral), 7), Err::kNoChildrenForEphemerals);
  EXPECT_EQ(Run(CreateOp("/e/c", "", CreateMode::kPersistentSequential)),
            Err::kNoChildrenForEphemerals);
  // NodeExists is checked before the ephemeral parent.
  EXPECT_EQ(Run(CreateOp("/e")), Err::kNodeExists);
}

TEST_F(PrepareTest, ContainerAndTtlNodes) {
  ASSERT_EQ(Run(CreateOp("/c", "", CreateMode::kContainer)), Err::kOk);
  EXPECT_EQ(StatOf("/c").ephemeral_owner, kContainerOwner);
  EXPECT_EQ(Run(CreateOp("/c/x")), Err::kOk);  // containers take children

  ASSERT_EQ(Run(TtlOp("/t", 100)), Err::kOk);
  const int64_t owner = StatOf("/t").ephemeral_owner;
  EXPECT_EQ(owner, TtlOwner(100));
  EXPECT_TRUE(IsTtlOwner(owner));
  EXPECT_EQ(TtlOf(owner), 100);
  EXPECT_EQ(Run(CreateOp("/t/x")), Err::kOk);
  std::vector<OpResult> res;
  ASSERT_EQ(Run(Single(TtlOp("/t/s-", 5, CreateMode::kPersistentSequentialWithTtl)), &res),
            Err::kOk);
  EXPECT_EQ(res[0].path, "/t/s-0000000001");
  EXPECT_EQ(StatOf(res[0].path).ephemeral_owner, TtlOwner(5));
  ASSERT_EQ(Run(TtlOp("/tmax", kMaxTtlMs)), Err::kOk);
  EXPECT_EQ(TtlOf(StatOf("/tmax").ephemeral_owner), kMaxTtlMs);

  // EphemeralType.validateTTL: TTL modes need 0 < ttl <= max; other modes take no ttl.
  EXPECT_EQ(Run(TtlOp("/bad", 0)), Err::kBadArguments);
  EXPECT_EQ(Run(TtlOp("/bad", -1)), Err::kBadArguments);
  EXPECT_EQ(Run(TtlOp("/bad", kMaxTtlMs + 1)), Err::kBadArguments);
  EXPECT_EQ(Run(TtlOp("/bad", 0, CreateMode::kPersistentSequentialWithTtl)), Err::kBadArguments);
  EXPECT_EQ(Run(TtlOp("/bad", 5, CreateMode::kPersistent)), Err::kBadArguments);
  EXPECT_EQ(Run(TtlOp("/bad", 5, CreateMode::kContainer)), Err::kBadArguments);
  EXPECT_EQ(Run(TtlOp("/bad", 5, CreateMode::kPersistentSequential)), Err::kBadArguments);
  ASSERT_EQ(Run(CreateSession(3)), Err::kOk);
  EXPECT_EQ(Run(TtlOp("/bad", 5, CreateMode::kEphemeral), 3), Err::kBadArguments);
  EXPECT_FALSE(Exists("/bad"));
}

TEST_F(PrepareTest, DataSizeLimit) {
  Reinit(TreeOptions{8});
  EXPECT_EQ(Run(CreateOp("/a", "123456789")), Err::kBadArguments);
  ASSERT_EQ(Run(CreateOp("/a", "12345678")), Err::kOk);
  EXPECT_EQ(Run(SetDataOp("/a", "123456789")), Err::kBadArguments);
  EXPECT_EQ(Run(SetDataOp("/a", "87654321")), Err::kOk);
  EXPECT_EQ(Run(Multi({SetDataOp("/a", ""), SetDataOp("/a", "123456789")})), Err::kBadArguments);
  std::string data;
  ASSERT_EQ(tree_->GetData("/a", &data, nullptr), Err::kOk);
  EXPECT_EQ(data, "87654321");
}

// --- append (the mount's O_APPEND writes) ---

TEST_F(PrepareTest, AppendGoesAtTheEndOfThePendingData) {
  Reinit(TreeOptions{8});
  ASSERT_EQ(Run(CreateOp("/a", "ab")), Err::kOk);
  // Three appends in flight at once: each lands after the one prepared before it, and the size
  // limit counts the pending ones.
  ASSERT_EQ(Prep(Single(AppendOp("/a", "cd"))).err, Err::kOk);
  ASSERT_EQ(Prep(Single(SetDataOp("/a", "xyz"))).err, Err::kOk);
  ASSERT_EQ(Prep(Single(AppendOp("/a", "12345"))).err, Err::kOk);
  EXPECT_EQ(Prep(Single(AppendOp("/a", "!"))).err, Err::kMarshallingError);
  std::vector<ApplyResult> a = ApplyAll();
  ASSERT_EQ(a.size(), 3u);
  std::string data;
  Stat st;
  ASSERT_EQ(tree_->GetData("/a", &data, &st), Err::kOk);
  EXPECT_EQ(data, "xyz12345");
  EXPECT_EQ(st.version, 3);
  EXPECT_EQ(st.data_length, 8);
  EXPECT_EQ(st.mzxid, last_zxid());
  EXPECT_EQ(a.back().results[0].stat, st);
  ASSERT_EQ(a.back().changes.size(), 1u);
  EXPECT_EQ(a.back().changes[0].type, Change::kDataChanged);
}

TEST_F(PrepareTest, AppendRules) {
  const std::vector<Id> alice{kAlice};
  ASSERT_EQ(Run(CreateOp("/r", "", CreateMode::kPersistent, Only(perm::kRead, kAlice))), Err::kOk);
  ASSERT_EQ(Run(CreateOp("/w", "", CreateMode::kPersistent, Only(perm::kWrite, kAlice))), Err::kOk);
  EXPECT_EQ(Run(AppendOp("/missing", "x")), Err::kNoNode);
  EXPECT_EQ(Run(AppendOp("/r", "x"), 0, alice), Err::kNoAuth);
  EXPECT_EQ(Run(AppendOp("/w", "x")), Err::kNoAuth);
  EXPECT_EQ(Run(AppendOp("/w", "x"), 0, alice), Err::kOk);
  EXPECT_EQ(Run(AppendOp("/w", "x", 1)), Err::kBadArguments);  // appends take no version
  EXPECT_EQ(Run(AppendOp("/w/", "x")), Err::kBadArguments);
  EXPECT_EQ(Run(Multi({AppendOp("/w", "x")}), nullptr), Err::kUnimplemented);
  std::string data;
  ASSERT_EQ(tree_->GetData("/w", &data, nullptr), Err::kOk);
  EXPECT_EQ(data, "x");
}

// --- delete ---

TEST_F(PrepareTest, DeleteRulesAndParentStat) {
  EXPECT_EQ(Run(DeleteOp("/")), Err::kBadArguments);
  EXPECT_EQ(Run(DeleteOp("/zookeeper")), Err::kBadArguments);
  EXPECT_EQ(Run(DeleteOp("/zookeeper/quota")), Err::kBadArguments);
  EXPECT_EQ(Run(DeleteOp("/zookeeper/config")), Err::kBadArguments);
  EXPECT_EQ(Run(DeleteOp("/a/")), Err::kBadArguments);
  EXPECT_EQ(Run(DeleteOp("/missing")), Err::kNoNode);
  EXPECT_EQ(Run(DeleteOp("/missing/child")), Err::kNoNode);

  ASSERT_EQ(Run(CreateOp("/a")), Err::kOk);
  ASSERT_EQ(Run(CreateOp("/a/b", "x")), Err::kOk);
  ASSERT_EQ(Run(SetDataOp("/a/b", "y")), Err::kOk);  // version 1
  EXPECT_EQ(Run(DeleteOp("/a")), Err::kNotEmpty);
  EXPECT_EQ(Run(DeleteOp("/a/b", 0)), Err::kBadVersion);
  EXPECT_EQ(Run(DeleteOp("/a/b", 2)), Err::kBadVersion);
  const Stat before = StatOf("/a");
  std::vector<OpResult> res;
  ASSERT_EQ(Run(Single(DeleteOp("/a/b", 1)), &res), Err::kOk);
  EXPECT_EQ(res[0].type, OpType::kDelete);
  EXPECT_FALSE(Exists("/a/b"));
  Stat after = StatOf("/a");
  EXPECT_EQ(after.num_children, 0);
  EXPECT_EQ(after.cversion, before.cversion + 1);  // ZooKeeper 3.8 counts deletes too
  EXPECT_EQ(after.pzxid, last_zxid());
  EXPECT_EQ(after.mzxid, before.mzxid);
  EXPECT_EQ(Run(DeleteOp("/a/b")), Err::kNoNode);
  EXPECT_EQ(Run(DeleteOp("/a", -1)), Err::kOk);
}

TEST_F(PrepareTest, DeleteNeedsDeleteOnTheParent) {
  // The node's own ACL does not matter; the parent's DELETE bit does.
  ASSERT_EQ(Run(CreateOp("/p", "", CreateMode::kPersistent,
                         {Acl{perm::kAll & ~perm::kDelete, kWorld}, Acl{perm::kDelete, kAlice}})),
            Err::kOk);
  ASSERT_EQ(Run(CreateOp("/p/c", "", CreateMode::kPersistent, Only(perm::kRead, kBob))), Err::kOk);
  EXPECT_EQ(Run(DeleteOp("/p/c")), Err::kNoAuth);
  EXPECT_EQ(Run(DeleteOp("/p/c"), 0, {kBob}), Err::kNoAuth);
  // The parent's ACL is checked before the node's existence.
  EXPECT_EQ(Run(DeleteOp("/p/missing")), Err::kNoAuth);
  EXPECT_EQ(Run(DeleteOp("/p/missing"), 0, {kAlice}), Err::kNoNode);
  EXPECT_EQ(Run(DeleteOp("/p/c"), 0, {kAlice}), Err::kOk);
}

// --- setData / setAcl / check ---

TEST_F(PrepareTest, SetDataStatAndVersions) {
  ASSERT_EQ(Run(CreateOp("/a", "x")), Err::kOk);
  const Stat created = StatOf("/a");
  const int64_t create_time = now_;
  now_ += 10;
  EXPECT_EQ(Run(SetDataOp("/a", "yy", 1)), Err::kBadVersion);
  std::vector<OpResult> res;
  ASSERT_EQ(Run(Single(SetDataOp("/a", "yy", 0)), &res), Err::kOk);
  Stat s = StatOf("/a");
  EXPECT_EQ(res[0].stat, s);
  EXPECT_EQ(s.version, 1);
  EXPECT_EQ(s.mzxid, last_zxid());
  EXPECT_EQ(s.mtime, now_);
  EXPECT_EQ(s.data_length, 2);
  EXPECT_EQ(s.czxid, created.czxid);
  EXPECT_EQ(s.ctime, create_time);
  EXPECT_EQ(s.cversion, 0);
  EXPECT_EQ(s.aversion, 0);
  EXPECT_EQ(s.pzxid, created.pzxid);
  ASSERT_EQ(Run(SetDataOp("/a", "")), Err::kOk);
  EXPECT_EQ(StatOf("/a").version, 2);
  EXPECT_EQ(StatOf("/a").data_length, 0);
  ASSERT_EQ(Run(Single(SetDataOp("/a", "z", 2))), Err::kOk);
  EXPECT_EQ(StatOf("/a").version, 3);
  EXPECT_EQ(Run(SetDataOp("/missing", "z")), Err::kNoNode);
  EXPECT_EQ(Run(SetDataOp("/a/", "z")), Err::kBadArguments);
  // setData on the root is allowed (its ACL is open).
  ASSERT_EQ(Run(SetDataOp("/", "root")), Err::kOk);
  EXPECT_EQ(StatOf("/").version, 1);
}

TEST_F(PrepareTest, SetAclVersionsAndChecks) {
  ASSERT_EQ(Run(CreateOp("/a")), Err::kOk);
  ASSERT_EQ(Run(SetDataOp("/a", "v")), Err::kOk);                  // version 1, aversion 0
  EXPECT_EQ(Run(SetAclOp("/a", OpenAcl(), 1)), Err::kBadVersion);  // checks aversion
  std::vector<OpResult> res;
  const std::vector<Acl> acl = {Acl{perm::kAll, kAlice}, Acl{perm::kRead, kWorld}};
  ASSERT_EQ(Run(Single(SetAclOp("/a", acl, 0)), &res), Err::kOk);
  Stat s = StatOf("/a");
  EXPECT_EQ(s.aversion, 1);
  EXPECT_EQ(s.version, 1);
  EXPECT_EQ(s.mzxid, 2);  // setAcl does not touch mzxid/mtime
  std::vector<Acl> got;
  ASSERT_EQ(tree_->GetAcl("/a", &got, nullptr), Err::kOk);
  EXPECT_EQ(got, acl);
  // Only ADMIN may change it now.
  EXPECT_EQ(Run(SetAclOp("/a", OpenAcl())), Err::kNoAuth);
  EXPECT_EQ(Run(SetAclOp("/a", OpenAcl()), 0, {kBob}), Err::kNoAuth);
  EXPECT_EQ(Run(SetAclOp("/a", OpenAcl(), 1), 0, {kAlice}), Err::kOk);
  EXPECT_EQ(StatOf("/a").aversion, 2);
  // fixupACL comes before the node lookup; NoNode before NoAuth.
  EXPECT_EQ(Run(SetAclOp("/missing", {})), Err::kInvalidAcl);
  EXPECT_EQ(Run(SetAclOp("/missing", OpenAcl())), Err::kNoNode);
  EXPECT_EQ(Run(SetAclOp("/a", {Acl{perm::kAll, Id{"world", "bob"}}})), Err::kInvalidAcl);
  // "auth" expands to the caller's authenticated ids.
  ASSERT_EQ(
      Run(SetAclOp("/a", {Acl{perm::kRead, Id{"auth", ""}}}), 0, {Id{"ip", "10.0.0.1"}, kBob}),
      Err::kOk);
  ASSERT_EQ(tree_->GetAcl("/a", &got, nullptr), Err::kOk);
  EXPECT_EQ(got, Only(perm::kRead, kBob));
  // /zookeeper/config starts with aversion -1.
  EXPECT_EQ(StatOf("/zookeeper/config").aversion, -1);
  ASSERT_EQ(Run(SetAclOp("/zookeeper/config", OpenAcl(), -1), 0, {kSuper}), Err::kOk);
  EXPECT_EQ(StatOf("/zookeeper/config").aversion, 0);
}

TEST_F(PrepareTest, CheckInsideMulti) {
  ASSERT_EQ(Run(CreateOp("/a", "", CreateMode::kPersistent,
                         {Acl{perm::kRead, kAlice}, Acl{perm::kAll & ~perm::kRead, kWorld}})),
            Err::kOk);
  ASSERT_EQ(Run(SetDataOp("/a", "x")), Err::kOk);
  std::vector<OpResult> res;
  ASSERT_EQ(Run(Multi({CheckOp("/a", 1)}, 0, {kAlice}), &res), Err::kOk);
  ASSERT_EQ(res.size(), 1u);
  EXPECT_EQ(res[0].type, OpType::kCheck);
  EXPECT_EQ(res[0].err, Err::kOk);
  ASSERT_EQ(Run(Multi({CheckOp("/a", -1)}, 0, {kAlice})), Err::kOk);
  EXPECT_EQ(Run(Multi({CheckOp("/a", 0)}, 0, {kAlice})), Err::kBadVersion);
  EXPECT_EQ(Run(Multi({CheckOp("/a", 1)})), Err::kNoAuth);  // needs READ
  EXPECT_EQ(Run(Multi({CheckOp("/b", -1)})), Err::kNoNode);
  EXPECT_EQ(Run(Multi({CheckOp("/b/", -1)})), Err::kBadArguments);
  // A lone check is not a request of its own (ZooKeeper 3.9: UNIMPLEMENTED).
  EXPECT_EQ(Run(CheckOp("/a", 1), 0, {kAlice}), Err::kUnimplemented);
}

// --- ACLs ---

TEST(AclTest, AllowsPerScheme) {
  const std::vector<Id> none;
  EXPECT_TRUE(AclAllows({}, perm::kAdmin, none));  // an empty ACL allows everything
  for (int32_t p : {perm::kRead, perm::kWrite, perm::kCreate, perm::kDelete, perm::kAdmin}) {
    EXPECT_TRUE(AclAllows(Only(p, kWorld), p, none));
    EXPECT_FALSE(AclAllows(Only(perm::kAll & ~p, kWorld), p, none));
    EXPECT_TRUE(AclAllows(Only(perm::kAll & ~p, kWorld), p, {kSuper}));
    EXPECT_TRUE(AclAllows(Only(p, kAlice), p, {kAlice}));
    EXPECT_FALSE(AclAllows(Only(p, kAlice), p, {kBob}));
    EXPECT_FALSE(AclAllows(Only(perm::kAll & ~p, kAlice), p, {kAlice}));
  }
  // world only as world:anyone.
  EXPECT_FALSE(AclAllows(Only(perm::kAll, Id{"world", "bob"}), perm::kRead, {Id{"world", "bob"}}));
  // The scheme must match too.
  EXPECT_FALSE(
      AclAllows(Only(perm::kAll, Id{"digest", "10.0.0.1"}), perm::kRead, {Id{"ip", "10.0.0.1"}}));
  // A "super" entry in an ACL grants nothing by itself; super in the session grants all.
  EXPECT_FALSE(AclAllows(Only(perm::kAll, kSuper), perm::kRead, {kAlice}));
  EXPECT_TRUE(AclAllows(Only(perm::kRead, kAlice), perm::kAdmin, {kBob, kSuper}));
  // Any of several entries / several ids.
  std::vector<Acl> acl = {Acl{perm::kRead, kAlice}, Acl{perm::kWrite, kBob}};
  EXPECT_TRUE(AclAllows(acl, perm::kWrite, {kAlice, kBob}));
  EXPECT_FALSE(AclAllows(acl, perm::kWrite, {kAlice}));
}

TEST(AclTest, IpMatching) {
  auto allows = [](const std::string& acl_id, const std::string& addr) {
    return AclAllows(Only(perm::kRead, Id{"ip", acl_id}), perm::kRead, {Id{"ip", addr}});
  };
  EXPECT_TRUE(allows("10.0.0.5", "10.0.0.5"));
  EXPECT_FALSE(allows("10.0.0.5", "10.0.0.6"));
  EXPECT_TRUE(allows("10.0.0.0/8", "10.200.3.4"));
  EXPECT_FALSE(allows("10.0.0.0/8", "11.0.0.1"));
  EXPECT_TRUE(allows("10.1.2.3/8", "10.9.9.9"));  // host bits of the ACL are masked
  EXPECT_TRUE(allows("192.168.1.128/25", "192.168.1.200"));
  EXPECT_FALSE(allows("192.168.1.128/25", "192.168.1.127"));
  EXPECT_TRUE(allows("192.168.1.0/23", "192.168.0.9"));
  EXPECT_FALSE(allows("192.168.2.0/23", "192.168.1.9"));
  EXPECT_TRUE(allows("0.0.0.0/0", "8.8.8.8"));
  EXPECT_TRUE(allows("1.2.3.4/32", "1.2.3.4"));
  EXPECT_FALSE(allows("1.2.3.4/32", "1.2.3.5"));
  EXPECT_TRUE(allows("::1", "0:0:0:0:0:0:0:1"));
  EXPECT_FALSE(allows("::1", "::2"));
  EXPECT_TRUE(allows("fe80::/10", "fe80::abcd"));
  EXPECT_FALSE(allows("fe80::/10", "fec0::1"));
  EXPECT_FALSE(allows("10.0.0.5", "::ffff:10.0.0.6"));
  EXPECT_FALSE(allows("0.0.0.0/0", "::1"));  // families never match each other
  EXPECT_FALSE(allows("10.0.0.5/33", "10.0.0.5"));
  EXPECT_FALSE(allows("10.0.0.5", "not-an-address"));
}

// The mount's unix scheme (docs/fuse.md, "Identities and ACLs on the mount"): "<uid>" names a
// user, "g:<gid>" a group; the mount's requests carry ("unix", uid) and ("unix", "g:" gid) for
// every group of the caller.
TEST(AclTest, UnixScheme) {
  std::vector<Acl> out;
  auto fix = [&](const char* id) {
    out.clear();
    return FixupAcl(Only(perm::kRead, Id{"unix", id}), {}, &out);
  };
  for (const char* ok : {"0", "1000", "4294967294", "g:0", "g:100", "g:4294967294"}) {
    EXPECT_EQ(fix(ok), Err::kOk) << ok;
    EXPECT_EQ(out, Only(perm::kRead, Id{"unix", ok}));
  }
  for (const char* bad : {"", "g:", "g", "-1", "+5", "01", "g:01", "1000 ", "4294967295",
                          "99999999999", "alice", "u:1000", "g:g:1", "1000:", "g:-1", "1.0"}) {
    EXPECT_EQ(fix(bad), Err::kInvalidAcl) << bad;
  }
  const std::vector<Id> alice = {Id{"unix", "1000"}, Id{"unix", "g:1000"}, Id{"unix", "g:27"}};
  auto allows = [&](const char* acl_id, int32_t acl_perms, int32_t want) {
    return AclAllows(Only(acl_perms, Id{"unix", acl_id}), want, alice);
  };
  EXPECT_TRUE(allows("1000", perm::kRead, perm::kRead));
  EXPECT_FALSE(allows("1000", perm::kRead, perm::kWrite));
  EXPECT_FALSE(allows("1001", perm::kAll, perm::kRead));
  EXPECT_TRUE(allows("g:27", perm::kWrite, perm::kWrite));  // a supplementary group
  EXPECT_FALSE(allows("g:28", perm::kAll, perm::kRead));
  // A uid never matches a gid of the same number, nor a digest/ip id of the same text.
  EXPECT_FALSE(allows("27", perm::kAll, perm::kRead));
  EXPECT_FALSE(
      AclAllows(Only(perm::kAll, Id{"unix", "g:1000"}), perm::kRead, {Id{"unix", "1000"}}));
  EXPECT_FALSE(
      AclAllows(Only(perm::kAll, Id{"unix", "1000"}), perm::kRead, {Id{"digest", "1000"}}));
  // auth expands to the mount caller's unix ids as to any authenticated id.
  EXPECT_EQ(FixupAcl(Only(perm::kAll, Id{"auth", ""}), {Id{"ip", "127.0.0.1"}, alice[0]}, &out),
            Err::kOk);
  EXPECT_EQ(out, Only(perm::kAll, alice[0]));
}

TEST(AclTest, FixupValidatesAndExpands) {
  std::vector<Acl> out;
  auto fix = [&](std::vector<Acl> in, std::vector<Id> auth = {}) {
    out.clear();
    return FixupAcl(in, auth, &out);
  };
  EXPECT_EQ(fix({}), Err::kInvalidAcl);
  EXPECT_EQ(fix(OpenAcl()), Err::kOk);
  EXPECT_EQ(out, OpenAcl());
  // Duplicates are dropped first (ZOOKEEPER-1877), order kept.
  EXPECT_EQ(fix({Acl{perm::kAll, kWorld}, Acl{perm::kRead, kAlice}, Acl{perm::kAll, kWorld}}),
            Err::kOk);
  EXPECT_EQ(out, (std::vector<Acl>{Acl{perm::kAll, kWorld}, Acl{perm::kRead, kAlice}}));
  // Schemes.
  EXPECT_EQ(fix(Only(perm::kAll, Id{"world", "bob"})), Err::kInvalidAcl);
  EXPECT_EQ(fix(Only(perm::kAll, Id{"super", ""})), Err::kInvalidAcl);
  EXPECT_EQ(fix(Only(perm::kAll, Id{"sasl", "bob"})), Err::kOk);  // docs/sasl.md
  EXPECT_EQ(fix(Only(perm::kAll, Id{"sasl", "a@b@c"})), Err::kInvalidAcl);
  EXPECT_EQ(fix(Only(perm::kAll, Id{"", ""})), Err::kInvalidAcl);
  // Perms must stay within ALL.
  EXPECT_EQ(fix(Only(32, kWorld)), Err::kInvalidAcl);
  EXPECT_EQ(fix(Only(-1, kWorld)), Err::kInvalidAcl);
  EXPECT_EQ(fix(Only(0, kWorld)), Err::kOk);
  // digest ids: exactly two ':'-separated pieces, trailing empty pieces not counted (Java split).
  for (const char* ok : {"user:hash", ":hash", "user:hash:", "user:hash::"}) {
    EXPECT_EQ(fix(Only(perm::kAll, Id{"digest", ok})), Err::kOk) << ok;
  }
  for (const char* bad : {"user", "user:", "user:a:b", "::", "", "a::b"}) {
    EXPECT_EQ(fix(Only(perm::kAll, Id{"digest", bad})), Err::kInvalidAcl) << bad;
  }
  // ip ids: address or address/bits.
  for (const char* ok : {"1.2.3.4", "1.2.3.4/0", "1.2.3.4/32", "10.0.0.0/8", "::1", "fe80::/10",
                         "2001:db8::/128", "001.002.003.004"}) {
    EXPECT_EQ(fix(Only(perm::kAll, Id{"ip", ok})), Err::kOk) << ok;
  }
  for (const char* bad : {"1.2.3", "1.2.3.4.5", "256.1.1.1", "1.2.3.4/33", "1.2.3.4/-1",
                          "1.2.3.4/x", "1.2.3.4/", "::1/129", "host.example", "", "1.2.3.-1"}) {
    EXPECT_EQ(fix(Only(perm::kAll, Id{"ip", bad})), Err::kInvalidAcl) << bad;
  }
  // auth: every authenticated id of the session (not ip, not super), each with the entry's perms.
  const std::vector<Id> auth = {Id{"ip", "1.2.3.4"}, kAlice, kSuper, kBob};
  EXPECT_EQ(fix({Acl{perm::kRead | perm::kWrite, Id{"auth", ""}}, Acl{perm::kAll, kWorld}}, auth),
            Err::kOk);
  EXPECT_EQ(out,
            (std::vector<Acl>{Acl{perm::kRead | perm::kWrite, kAlice},
                              Acl{perm::kRead | perm::kWrite, kBob}, Acl{perm::kAll, kWorld}}));
  EXPECT_EQ(fix(Only(perm::kAll, Id{"auth", ""})), Err::kInvalidAcl);
  EXPECT_EQ(fix(Only(perm::kAll, Id{"auth", ""}), {Id{"ip", "1.2.3.4"}, kSuper}), Err::kInvalidAcl);
}

// Each permission, end to end, for each scheme: allowed with it, denied without it.
TEST_F(PrepareTest, PermissionsEndToEnd) {
  const Id ip{"ip", "10.1.2.3"};
  struct Case {
    Id acl_id;
    std::vector<Id> good;
    std::vector<Id> bad;
  };
  const std::vector<Case> cases = {
      {kAlice, {kAlice}, {kBob}},
      {Id{"ip", "10.0.0.0/8"}, {ip}, {Id{"ip", "11.1.2.3"}}},
      {Id{"ip", "10.1.2.3"}, {ip}, {Id{"ip", "10.1.2.4"}}},
  };
  int n = 0;
  for (const Case& c : cases) {
    for (int32_t p : {perm::kRead, perm::kWrite, perm::kCreate, perm::kDelete, perm::kAdmin}) {
      const std::string node = "/n" + std::to_string(n++);
      // The node grants only `p` to the id; a child exists for the DELETE case.
      ASSERT_EQ(Run(CreateOp(node, "", CreateMode::kPersistent, Only(perm::kAll, kWorld))),
                Err::kOk);
      ASSERT_EQ(Run(CreateOp(node + "/child")), Err::kOk);
      ASSERT_EQ(Run(SetAclOp(node, Only(p, c.acl_id))), Err::kOk);
      auto attempt = [&](const std::vector<Id>& auth) -> Err {
        switch (p) {
          case perm::kRead:
            return Run(Multi({CheckOp(node, -1)}, 0, auth));
          case perm::kWrite:
            return Run(SetDataOp(node, "w"), 0, auth);
          case perm::kCreate:
            return Run(CreateOp(node + "/new"), 0, auth);
          case perm::kDelete:
            return Run(DeleteOp(node + "/child"), 0, auth);
          default:
            return Run(SetAclOp(node, Only(p, c.acl_id)), 0, auth);
        }
      };
      SCOPED_TRACE(node + " perm " + std::to_string(p) + " " + c.acl_id.scheme + ":" + c.acl_id.id);
      EXPECT_EQ(attempt({}), Err::kNoAuth);
      EXPECT_EQ(attempt(c.bad), Err::kNoAuth);
      EXPECT_EQ(attempt(c.good), Err::kOk);
      // Every other permission is denied to the good id.
      if (p != perm::kWrite) {
        EXPECT_EQ(Run(SetDataOp(node, "w"), 0, c.good), Err::kNoAuth);
      }
      if (p != perm::kAdmin) {
        EXPECT_EQ(Run(SetAclOp(node, OpenAcl()), 0, c.good), Err::kNoAuth);
      }
      // super passes everything.
      EXPECT_EQ(Run(SetDataOp(node, "s"), 0, {kSuper}), Err::kOk);
    }
  }
}

// --- multi ---

TEST_F(PrepareTest, MultiSuccessResults) {
  std::vector<OpResult> res;
  ASSERT_EQ(Run(Multi({CreateOp("/m", "a"), CreateOp("/m/c", "", CreateMode::kPersistentSequential),
                       SetDataOp("/m", "bb", 0), CheckOp("/m", 1), DeleteOp("/m/c0000000000", 0),
                       CreateOp("/m/d")}),
                &res),
            Err::kOk);
  ASSERT_EQ(res.size(), 6u);
  const int64_t z = last_zxid();
  EXPECT_EQ(res[0].type, OpType::kCreate);
  EXPECT_EQ(res[0].path, "/m");
  EXPECT_EQ(res[1].path, "/m/c0000000000");
  EXPECT_EQ(res[2].type, OpType::kSetData);
  EXPECT_EQ(res[2].stat.version, 1);
  EXPECT_EQ(res[3].type, OpType::kCheck);
  EXPECT_EQ(res[4].type, OpType::kDelete);
  EXPECT_EQ(res[5].path, "/m/d");
  for (const OpResult& r : res) EXPECT_EQ(r.err, Err::kOk);
  // All ops share one zxid.
  Stat s = StatOf("/m");
  EXPECT_EQ(s.czxid, z);
  EXPECT_EQ(s.mzxid, z);
  EXPECT_EQ(s.version, 1);
  EXPECT_EQ(s.cversion, 3);  // two creates and a delete
  EXPECT_EQ(s.num_children, 1);
  EXPECT_EQ(s.pzxid, z);
  EXPECT_EQ(s.data_length, 2);
  EXPECT_FALSE(Exists("/m/c0000000000"));
}

TEST_F(PrepareTest, MultiFailureResultsAndAtomicity) {
  ASSERT_EQ(Run(CreateOp("/s")), Err::kOk);
  const size_t pending = prep_->pending_count();
  Prepared p = Prep(Multi({CreateOp("/f"), CreateOp("/s/n-", "", CreateMode::kPersistentSequential),
                           CreateOp("/f"), SetDataOp("/f", "x"), DeleteOp("/s")}));
  EXPECT_EQ(p.err, Err::kNodeExists);
  EXPECT_FALSE(p.txn.has_value());
  ASSERT_EQ(p.multi_results.size(), 5u);
  const Err want[] = {Err::kOk, Err::kOk, Err::kNodeExists, Err::kRuntimeInconsistency,
                      Err::kRuntimeInconsistency};
  for (size_t i = 0; i < 5; ++i) EXPECT_EQ(p.multi_results[i].err, want[i]) << i;
  EXPECT_EQ(p.multi_results[2].type, OpType::kCreate);
  EXPECT_EQ(p.multi_results[3].type, OpType::kSetData);
  EXPECT_EQ(p.multi_results[4].type, OpType::kDelete);
  // Nothing of it is visible: no node, no cversion bump, nothing pending.
  EXPECT_EQ(prep_->pending_count(), pending);
  EXPECT_EQ(Run(SetDataOp("/f", "x")), Err::kNoNode);
  std::vector<OpResult> res;
  ASSERT_EQ(Run(Single(CreateOp("/s/n-", "", CreateMode::kPersistentSequential)), &res), Err::kOk);
  EXPECT_EQ(res[0].path, "/s/n-0000000000");

  // The first op failing: its error, then RUNTIMEINCONSISTENCY.
  p = Prep(Multi({DeleteOp("/nope"), CreateOp("/g")}));
  EXPECT_EQ(p.err, Err::kNoNode);
  ASSERT_EQ(p.multi_results.size(), 2u);
  EXPECT_EQ(p.multi_results[0].err, Err::kNoNode);
  EXPECT_EQ(p.multi_results[1].err, Err::kRuntimeInconsistency);
}

TEST_F(PrepareTest, FailedMultiLeavesPipelinedStateAlone) {
  ASSERT_EQ(Prep(Single(CreateOp("/p"))).err, Err::kOk);  // in flight
  Prepared p = Prep(Multi({SetDataOp("/p", "x", 0), CreateOp("/p/c"), DeleteOp("/nope")}));
  EXPECT_EQ(p.err, Err::kNoNode);
  // The failed multi's setData and create never happened.
  EXPECT_EQ(Prep(Single(SetDataOp("/p", "y", 0))).err, Err::kOk);
  EXPECT_EQ(Prep(Single(DeleteOp("/p", 1))).err, Err::kOk);
  ApplyAll();
  EXPECT_FALSE(Exists("/p"));
}

TEST_F(PrepareTest, EmptyMultiAndMalformedRequests) {
  Prepared p = Prep(Multi({}));
  ASSERT_EQ(p.err, Err::kOk);
  ASSERT_TRUE(p.txn->has_multi());
  EXPECT_EQ(p.txn->multi().ops_size(), 0);
  std::vector<ApplyResult> a = ApplyAll();
  EXPECT_TRUE(a[0].results.empty());
  // setACL and deleteContainer are not multi ops.
  ASSERT_EQ(Run(CreateOp("/a")), Err::kOk);
  p = Prep(Multi({CheckOp("/a", 0), SetAclOp("/a", OpenAcl())}));
  EXPECT_EQ(p.err, Err::kUnimplemented);
  ASSERT_EQ(p.multi_results.size(), 2u);
  EXPECT_EQ(p.multi_results[0].err, Err::kOk);
  EXPECT_EQ(p.multi_results[1].err, Err::kUnimplemented);
  EXPECT_EQ(Prep(Multi({DeleteContainerOp("/a")})).err, Err::kUnimplemented);
  // A single-op request carries exactly one op.
  Request r = Single(CreateOp("/b"));
  r.ops.push_back(CreateOp("/c"));
  EXPECT_EQ(Prep(r).err, Err::kBadArguments);
  r.ops.clear();
  EXPECT_EQ(Prep(r).err, Err::kBadArguments);
  EXPECT_TRUE(queued_.empty());
}

// --- pipelining: later prepares see earlier unapplied txns ---

TEST_F(PrepareTest, PipelinedCreatesAndDeletes) {
  ASSERT_EQ(Prep(Single(CreateOp("/p"))).err, Err::kOk);
  ASSERT_EQ(Prep(Single(CreateOp("/p/c"))).err, Err::kOk);
  EXPECT_EQ(Prep(Single(CreateOp("/p"))).err, Err::kNodeExists);
  EXPECT_EQ(Prep(Single(DeleteOp("/p"))).err, Err::kNotEmpty);
  ASSERT_EQ(Prep(Single(DeleteOp("/p/c"))).err, Err::kOk);
  EXPECT_EQ(Prep(Single(DeleteOp("/p/c"))).err, Err::kNoNode);
  EXPECT_EQ(Prep(Single(CreateOp("/p/c/d"))).err, Err::kNoNode);
  ASSERT_EQ(Prep(Single(DeleteOp("/p"))).err, Err::kOk);
  EXPECT_EQ(Prep(Single(CreateOp("/p/x"))).err, Err::kNoNode);
  EXPECT_FALSE(Exists("/p"));  // nothing applied yet
  EXPECT_EQ(queued_.size(), 4u);
  EXPECT_GT(prep_->pending_count(), 0u);
  const int32_t root_cversion = StatOf("/").cversion;
  ApplyAll();
  EXPECT_FALSE(Exists("/p"));
  EXPECT_EQ(StatOf("/").cversion, root_cversion + 2);  // /p created and deleted
  EXPECT_EQ(StatOf("/").pzxid, last_zxid());
  EXPECT_EQ(prep_->pending_count(), 0u);
}

TEST_F(PrepareTest, PipelinedVersionsSequencesAclsAndOwners) {
  ASSERT_EQ(Prep(Single(CreateOp("/v"))).err, Err::kOk);
  ASSERT_EQ(Prep(Single(SetDataOp("/v", "1", 0))).err, Err::kOk);
  EXPECT_EQ(Prep(Single(SetDataOp("/v", "x", 0))).err, Err::kBadVersion);
  ASSERT_EQ(Prep(Single(SetDataOp("/v", "2", 1))).err, Err::kOk);
  ASSERT_EQ(Prep(Single(SetAclOp("/v", Only(perm::kAll, kAlice), 0))).err, Err::kOk);
  // The new ACL is in force for later prepares although the tree still has the open one.
  EXPECT_EQ(Prep(Single(SetDataOp("/v", "3"), 0, {kBob})).err, Err::kNoAuth);
  EXPECT_EQ(Prep(Single(SetAclOp("/v", OpenAcl(), 0), 0, {kAlice})).err, Err::kBadVersion);
  ASSERT_EQ(Prep(Single(SetDataOp("/v", "3", 2), 0, {kAlice})).err, Err::kOk);
  for (int i = 0; i < 3; ++i) {
    Prepared p =
        Prep(Single(CreateOp("/v/s-", "", CreateMode::kPersistentSequential), 0, {kAlice}));
    ASSERT_EQ(p.err, Err::kOk);
    EXPECT_EQ(p.txn->create().path(), "/v/s-000000000" + std::to_string(i));
    EXPECT_EQ(p.txn->create().parent_cversion(), i + 1);
  }
  ASSERT_EQ(Prep(CreateSession(5)).err, Err::kOk);
  EXPECT_EQ(Prep(CreateSession(5)).err, Err::kSessionExpired);
  ASSERT_EQ(Prep(Single(CreateOp("/e", "", CreateMode::kEphemeral), 5)).err, Err::kOk);
  EXPECT_EQ(Prep(Single(CreateOp("/e/x"))).err, Err::kNoChildrenForEphemerals);
  ApplyAll();
  Stat v = StatOf("/v");
  EXPECT_EQ(v.version, 3);
  EXPECT_EQ(v.aversion, 1);
  EXPECT_EQ(v.cversion, 3);
  EXPECT_EQ(v.num_children, 3);
  EXPECT_EQ(StatOf("/e").ephemeral_owner, 5);
  std::string data;
  ASSERT_EQ(tree_->GetData("/v", &data, nullptr), Err::kOk);
  EXPECT_EQ(data, "3");
}

TEST_F(PrepareTest, PipelinedThenApplied) {
  ASSERT_EQ(Prep(Single(CreateOp("/v"))).err, Err::kOk);
  ASSERT_EQ(Prep(Single(SetDataOp("/v", "1", 0))).err, Err::kOk);
  ASSERT_EQ(Prep(Single(SetDataOp("/v", "2", 1))).err, Err::kOk);
  ASSERT_EQ(Prep(Single(SetAclOp("/v", Only(perm::kAll, kAlice), 0))).err, Err::kOk);
  ASSERT_EQ(Prep(Single(CreateOp("/v/c", "", CreateMode::kPersistentSequential), 0, {kAlice})).err,
            Err::kOk);
  // Apply one at a time; the view stays right while records are dropped.
  const size_t before = prep_->pending_count();
  ASSERT_EQ(tree_->Apply(queued_.front()).err, Err::kOk);
  prep_->Applied(queued_.front().zxid());
  queued_.pop_front();
  EXPECT_LE(prep_->pending_count(), before);
  EXPECT_EQ(Prep(Single(SetDataOp("/v", "x", 1), 0, {kAlice})).err, Err::kBadVersion);
  ApplyAll();
  EXPECT_EQ(prep_->pending_count(), 0u);
  Stat s = StatOf("/v");
  EXPECT_EQ(s.version, 2);
  EXPECT_EQ(s.aversion, 1);
  EXPECT_EQ(s.cversion, 1);
  EXPECT_EQ(s.num_children, 1);
  EXPECT_TRUE(Exists("/v/c0000000000"));
  EXPECT_EQ(Run(SetDataOp("/v", "x", 2), 0, {kBob}), Err::kNoAuth);
  EXPECT_EQ(Run(SetDataOp("/v", "x", 2), 0, {kAlice}), Err::kOk);
}

TEST_F(PrepareTest, ResetDropsEverythingPending) {
  ASSERT_EQ(Prep(Single(CreateOp("/gone"))).err, Err::kOk);
  ASSERT_EQ(Prep(CreateSession(4)).err, Err::kOk);
  EXPECT_EQ(prep_->pending_count(), 3u);  // /gone, its parent, the session
  // The txns are abandoned (never applied): after Reset the tree is the truth again.
  queued_.clear();
  prep_->Reset();
  EXPECT_EQ(prep_->pending_count(), 0u);
  EXPECT_EQ(Run(SetDataOp("/gone", "x")), Err::kNoNode);
  EXPECT_EQ(Run(CreateOp("/gone", "", CreateMode::kEphemeral), 4), Err::kSessionExpired);
  EXPECT_EQ(Run(CreateSession(4)), Err::kOk);
}

// --- sessions ---

TEST_F(PrepareTest, CreateSessionRules) {
  Prepared p = Prep(CreateSession(11, 4000));
  ASSERT_EQ(p.err, Err::kOk);
  ASSERT_TRUE(p.txn->has_create_session());
  EXPECT_EQ(p.txn->create_session().timeout_ms(), 4000);
  EXPECT_EQ(p.txn->session_id(), 11);
  ApplyAll();
  EXPECT_EQ(tree_->sessions().at(11), 4000);
  EXPECT_EQ(Run(CreateSession(11)), Err::kSessionExpired);
  EXPECT_EQ(Run(CreateSession(0)), Err::kBadArguments);
  EXPECT_EQ(Run(CreateSession(kContainerOwner)), Err::kBadArguments);
  EXPECT_EQ(Run(CreateSession(TtlOwner(5))), Err::kBadArguments);
  EXPECT_EQ(Run(CreateSession(12, 0)), Err::kBadArguments);
  EXPECT_EQ(Run(CreateSession(12, -5)), Err::kBadArguments);
  EXPECT_EQ(tree_->sessions().size(), 1u);
}

TEST_F(PrepareTest, CloseSessionListsTreeAndPendingEphemerals) {
  ASSERT_EQ(Run(CreateSession(9)), Err::kOk);
  ASSERT_EQ(Run(CreateSession(10)), Err::kOk);
  ASSERT_EQ(Run(CreateOp("/d")), Err::kOk);
  ASSERT_EQ(Run(CreateOp("/e1", "", CreateMode::kEphemeral), 9), Err::kOk);
  ASSERT_EQ(Run(CreateOp("/d/e2", "", CreateMode::kEphemeral), 9), Err::kOk);
  ASSERT_EQ(Run(CreateOp("/x", "", CreateMode::kEphemeral), 9), Err::kOk);
  ASSERT_EQ(Run(CreateOp("/other", "", CreateMode::kEphemeral), 10), Err::kOk);
  // In flight: one deleted, two created, one deleted and recreated by another session.
  ASSERT_EQ(Prep(Single(DeleteOp("/e1"))).err, Err::kOk);
  ASSERT_EQ(Prep(Single(CreateOp("/e3", "", CreateMode::kEphemeral), 9)).err, Err::kOk);
  ASSERT_EQ(Prep(Single(CreateOp("/d/e4", "", CreateMode::kEphemeralSequential), 9)).err, Err::kOk);
  ASSERT_EQ(Prep(Single(DeleteOp("/x"))).err, Err::kOk);
  ASSERT_EQ(Prep(Single(CreateOp("/x", "", CreateMode::kEphemeral), 10)).err, Err::kOk);
  Prepared p = Prep(CloseSession(9));
  ASSERT_EQ(p.err, Err::kOk);
  ASSERT_TRUE(p.txn->has_close_session());
  std::vector<std::string> paths(p.txn->close_session().paths_to_delete().begin(),
                                 p.txn->close_session().paths_to_delete().end());
  EXPECT_EQ(paths, (std::vector<std::string>{"/d/e2", "/d/e40000000001", "/e3"}));
  // The deletes are pending now: the parent can go, the session cannot be used.
  EXPECT_EQ(Prep(Single(CreateOp("/e5", "", CreateMode::kEphemeral), 9)).err, Err::kSessionExpired);
  EXPECT_EQ(Prep(CloseSession(9)).err, Err::kSessionExpired);
  EXPECT_EQ(Prep(Single(SetDataOp("/e3", "x"))).err, Err::kNoNode);
  ASSERT_EQ(Prep(Single(DeleteOp("/d"))).err, Err::kOk);
  ApplyAll();
  EXPECT_TRUE(tree_->GetEphemerals(9, "/").empty());
  EXPECT_EQ(tree_->GetEphemerals(10, "/"), (std::vector<std::string>{"/other", "/x"}));
  EXPECT_EQ(tree_->sessions().count(9), 0u);
  EXPECT_FALSE(Exists("/d"));
  EXPECT_EQ(StatOf("/").pzxid, last_zxid());
  EXPECT_EQ(Run(CloseSession(12345)), Err::kSessionExpired);
  // The id can be used again once closed.
  EXPECT_EQ(Run(CreateSession(9)), Err::kOk);
}

TEST_F(PrepareTest, CloseSessionParentStat) {
  ASSERT_EQ(Run(CreateSession(9)), Err::kOk);
  ASSERT_EQ(Run(CreateOp("/d")), Err::kOk);
  ASSERT_EQ(Run(CreateOp("/d/e", "", CreateMode::kEphemeral), 9), Err::kOk);
  const Stat before = StatOf("/d");
  ASSERT_EQ(Run(CloseSession(9)), Err::kOk);
  Stat after = StatOf("/d");
  EXPECT_EQ(after.num_children, 0);
  EXPECT_EQ(after.cversion, before.cversion + 1);
  EXPECT_EQ(after.pzxid, last_zxid());
  // A session without ephemerals closes with an empty list.
  ASSERT_EQ(Run(CreateSession(9)), Err::kOk);
  Prepared p = Prep(CloseSession(9));
  ASSERT_EQ(p.err, Err::kOk);
  EXPECT_EQ(p.txn->close_session().paths_to_delete_size(), 0);
  ApplyAll();
}

// --- deleteContainer (the reaper's request) ---

TEST_F(PrepareTest, DeleteContainer) {
  // Under a parent that grants DELETE to nobody: the reaper needs no permission.
  ASSERT_EQ(Run(CreateOp("/locked", "", CreateMode::kPersistent,
                         Only(perm::kAll & ~perm::kDelete, kWorld))),
            Err::kOk);
  ASSERT_EQ(Run(CreateOp("/locked/c", "", CreateMode::kContainer)), Err::kOk);
  EXPECT_EQ(Run(DeleteContainerOp("/locked/c")), Err::kBadVersion);  // never had a child
  ASSERT_EQ(Run(CreateOp("/locked/c/x")), Err::kOk);
  EXPECT_EQ(Run(DeleteContainerOp("/locked/c")), Err::kNotEmpty);
  ASSERT_EQ(Run(DeleteOp("/locked/c/x")), Err::kOk);
  EXPECT_EQ(tree_->ExpiryCandidates(now_), (std::vector<std::string>{"/locked/c"}));
  EXPECT_EQ(Run(DeleteOp("/locked/c")), Err::kNoAuth);
  const int32_t locked_cversion = StatOf("/locked").cversion;
  ASSERT_EQ(Run(DeleteContainerOp("/locked/c")), Err::kOk);
  EXPECT_FALSE(Exists("/locked/c"));
  EXPECT_EQ(StatOf("/locked").cversion, locked_cversion + 1);
  EXPECT_EQ(Run(DeleteContainerOp("/locked/c")), Err::kNoNode);

  // TTL: deletable once mtime + ttl < now.
  ASSERT_EQ(Run(TtlOp("/t", 1000)), Err::kOk);
  const int64_t created = now_;
  now_ = created + 1000;
  EXPECT_EQ(Run(DeleteContainerOp("/t")), Err::kBadVersion);
  ASSERT_EQ(Run(SetDataOp("/t", "touch")), Err::kOk);  // moves mtime
  now_ = created + 1001;
  EXPECT_EQ(Run(DeleteContainerOp("/t")), Err::kBadVersion);
  now_ = created + 2001;
  ASSERT_EQ(Run(CreateOp("/t/kid")), Err::kOk);
  EXPECT_EQ(Run(DeleteContainerOp("/t")), Err::kNotEmpty);
  ASSERT_EQ(Run(DeleteOp("/t/kid")), Err::kOk);
  EXPECT_EQ(tree_->ExpiryCandidates(now_), (std::vector<std::string>{"/t"}));
  ASSERT_EQ(Run(DeleteContainerOp("/t")), Err::kOk);

  // Anything else is refused.
  ASSERT_EQ(Run(CreateOp("/plain")), Err::kOk);
  EXPECT_EQ(Run(DeleteContainerOp("/plain")), Err::kBadVersion);
  ASSERT_EQ(Run(CreateSession(3)), Err::kOk);
  ASSERT_EQ(Run(CreateOp("/eph", "", CreateMode::kEphemeral), 3), Err::kOk);
  EXPECT_EQ(Run(DeleteContainerOp("/eph")), Err::kBadVersion);
  EXPECT_EQ(Run(DeleteContainerOp("/")), Err::kBadArguments);
  EXPECT_EQ(Run(DeleteContainerOp("/zookeeper")), Err::kBadArguments);
  EXPECT_EQ(Run(DeleteContainerOp("/bad/")), Err::kBadArguments);
}

TEST_F(PrepareTest, DeleteContainerSeesPendingChanges) {
  ASSERT_EQ(Run(CreateOp("/c", "", CreateMode::kContainer)), Err::kOk);
  ASSERT_EQ(Run(CreateOp("/c/x")), Err::kOk);
  ASSERT_EQ(Prep(Single(DeleteOp("/c/x"))).err, Err::kOk);
  ASSERT_EQ(Prep(Single(DeleteContainerOp("/c"))).err, Err::kOk);
  EXPECT_EQ(Prep(Single(CreateOp("/c/y"))).err, Err::kNoNode);
  // A TTL node created and touched in flight expires from its pending mtime.
  ASSERT_EQ(Prep(Single(TtlOp("/t", 50))).err, Err::kOk);
  now_ += 30;
  ASSERT_EQ(Prep(Single(SetDataOp("/t", "x"))).err, Err::kOk);
  const int64_t touched = now_;
  now_ = touched + 50;
  EXPECT_EQ(Prep(Single(DeleteContainerOp("/t"))).err, Err::kBadVersion);
  now_ = touched + 51;
  ASSERT_EQ(Prep(Single(DeleteContainerOp("/t"))).err, Err::kOk);
  ApplyAll();
  EXPECT_FALSE(Exists("/c"));
  EXPECT_FALSE(Exists("/t"));
}

// --- paths ---

TEST(PathTest, ValidatePathTable) {
  const std::vector<std::string> valid = {
      "/",
      "/a",
      "/a/b",
      "/a.b",
      "/...",
      "/a/.b",
      "/a/b.",
      "/.a",
      "/a..",
      "/..a",
      "/a b",
      "/~",
      "/zookeeper",
      "/\xc3\xa9",      // U+00E9
      "/\xe6\x97\xa5",  // U+65E5
      "/\xc2\xa0",      // U+00A0, just past the C1 controls
      "/\xed\x9f\xbf",  // U+D7FF, just below the surrogates
      "/\xef\xa4\x80",  // U+F900, just past the private use area
      "/\xef\xbf\xaf",  // U+FFEF, just below the specials
      std::string(1, '/') + std::string(1000, 'x'),
  };
  for (const std::string& p : valid) EXPECT_EQ(ValidatePath(p), Err::kOk) << p;

  const std::vector<std::string> invalid = {
      "",
      "a",
      "a/b",
      "/a/",
      "//",
      "/a//b",
      "/.",
      "/..",
      "/a/.",
      "/a/..",
      "/a/./b",
      "/a/../b",
      "/./a",
      "/../a",
      std::string("/a\0b", 4),
      std::string("/\0", 2),
      "/\x01",
      "/a\x1f",
      "/\x7f",
      "/\xc2\x80",          // U+0080
      "/\xc2\x9f",          // U+009F
      "/\xee\x80\x80",      // U+E000 (private use)
      "/\xef\xa3\xbf",      // U+F8FF
      "/\xef\xbf\xb0",      // U+FFF0
      "/\xef\xbf\xbf",      // U+FFFF
      "/\xf0\x9f\x98\x80",  // U+1F600: a surrogate pair in Java
      "/\xed\xa0\x80",      // an encoded surrogate (malformed UTF-8)
      "/\xff",
      "/a\xc3",
      "/\xc0\xaf",
      "/\xe0\x80\xaf",  // malformed / overlong
  };
  for (const std::string& p : invalid) EXPECT_EQ(ValidatePath(p), Err::kBadArguments) << p;

  // Sequential: checked as if a digit followed, so a trailing '/' is allowed.
  EXPECT_EQ(ValidatePath("/a/", true), Err::kOk);
  EXPECT_EQ(ValidatePath("/", true), Err::kOk);
  EXPECT_EQ(ValidatePath("/a/.", true), Err::kOk);  // becomes "/a/.1"
  EXPECT_EQ(ValidatePath("/a", true), Err::kOk);
  EXPECT_EQ(ValidatePath("/a//", true), Err::kBadArguments);
  EXPECT_EQ(ValidatePath("", true), Err::kBadArguments);
  EXPECT_EQ(ValidatePath("a/", true), Err::kBadArguments);
  EXPECT_EQ(ValidatePath("/..", true), Err::kOk);  // "/..1"
  EXPECT_EQ(ValidatePath("/../", true), Err::kBadArguments);
}

TEST(PathTest, ParentAndBaseName) {
  EXPECT_EQ(ParentPath("/a"), "/");
  EXPECT_EQ(ParentPath("/a/b"), "/a");
  EXPECT_EQ(ParentPath("/a/b/c"), "/a/b");
  EXPECT_EQ(ParentPath("/"), "");
  EXPECT_EQ(BaseName("/a/b"), "b");
  EXPECT_EQ(BaseName("/a"), "a");
  EXPECT_EQ(BaseName("/"), "");
}

TEST_F(PrepareTest, InvalidPathsRejectedByEveryOp) {
  ASSERT_EQ(Run(CreateOp("/a")), Err::kOk);
  for (const char* p : {"/a/", "a", "/a/..", "/\x01"}) {
    EXPECT_EQ(Run(CreateOp(p)), Err::kBadArguments) << p;
    EXPECT_EQ(Run(DeleteOp(p)), Err::kBadArguments) << p;
    EXPECT_EQ(Run(SetDataOp(p, "")), Err::kBadArguments) << p;
    EXPECT_EQ(Run(SetAclOp(p, OpenAcl())), Err::kBadArguments) << p;
    EXPECT_EQ(Run(Multi({CheckOp(p, -1)})), Err::kBadArguments) << p;
  }
}

}  // namespace
}  // namespace qfs::tree
