// Randomized property test of Preparer + DataTree against a reference model.
//
// Random requests of every type (multi, sequential, ephemerals with sessions, TTL and containers,
// versions, ACLs) are prepared in batches of random depth, as the leader pipelines them, and
// then applied. A plain std::map model, written here from ZooKeeper's rules, predicts every
// error, per-op multi result, apply result and the whole tree after each txn. After every apply
// the tree must equal the model and its incremental digest must equal a recomputation.
// Snapshots are taken along the way, loaded into fresh trees that then apply the remaining txns;
// at the end they, and a tree replaying every txn from scratch, must have the same digest and
// byte-identical snapshots. The model reuses FixupAcl/AclAllows (tested in prepare_test) but
// decides everything else on its own.
//
// QFS_PROPERTY_SEED=<n> runs one seed only (to reproduce a failure).
#include <gtest/gtest.h>

#include <cstdio>
#include <cstdlib>
#include <deque>
#include <map>
#include <memory>
#include <random>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "daemon/tree/data_tree.h"
#include "daemon/tree/prepare.h"

namespace qfs::tree {
namespace {

constexpr size_t kMaxData = 16;

struct MNode {
  std::string data;
  Stat stat;
  int32_t child_creates = 0;  // numbers sequential children; stat.cversion counts deletes too
  std::vector<Acl> acl;
  Kind kind = Kind::kUnset;
  bool operator==(const MNode&) const = default;
};
using Nodes = std::map<std::string, MNode>;

std::string Describe(const std::string& path, const MNode& n) {
  std::ostringstream o;
  const Stat& s = n.stat;
  o << path << " data=" << n.data.size() << "B czxid=" << s.czxid << " mzxid=" << s.mzxid
    << " ctime=" << s.ctime << " mtime=" << s.mtime << " v=" << s.version << " cv=" << s.cversion
    << " creates=" << n.child_creates << " av=" << s.aversion << " owner=" << s.ephemeral_owner
    << " len=" << s.data_length << " kids=" << s.num_children << " pzxid=" << s.pzxid
    << " kind=" << int(n.kind) << " acl=" << n.acl.size();
  return o.str();
}

// What one request should do.
struct Expect {
  Err err = Err::kOk;
  std::vector<Err> multi_errs;    // a failed multi's per-op codes
  std::vector<OpResult> results;  // what Apply returns on success
  bool session_txn = false;
};

// --- the reference model ---

std::string ParentOf(const std::string& p) {
  const size_t slash = p.rfind('/');
  return slash == 0 ? "/" : p.substr(0, slash);
}

// The path rules for the ASCII paths the generator makes.
bool ModelValid(std::string p, bool sequential) {
  if (sequential) p += "1";
  if (p.empty() || p[0] != '/') return false;
  if (p == "/") return true;
  if (p.back() == '/') return false;
  size_t start = 1;
  while (start <= p.size()) {
    size_t end = p.find('/', start);
    if (end == std::string::npos) end = p.size();
    const std::string c = p.substr(start, end - start);
    if (c.empty() || c == "." || c == "..") return false;
    start = end + 1;
  }
  return true;
}

bool Special(const std::string& p) {
  return p == "/" || p == "/zookeeper" || p == "/zookeeper/quota" || p == "/zookeeper/config";
}

class Model {
 public:
  Nodes nodes;
  std::map<int64_t, int32_t> sessions;

  Expect Run(const Request& r, int64_t zxid, int64_t time) {
    Expect e;
    switch (r.type) {
      case RequestType::kOp: {
        if (r.ops.size() != 1) {
          e.err = Err::kBadArguments;
          break;
        }
        OpResult res;
        Nodes saved = nodes;
        e.err = DoOp(r, r.ops[0], false, zxid, time, &res);
        if (e.err == Err::kOk) {
          e.results.push_back(res);
        } else {
          nodes = std::move(saved);
        }
        break;
      }
      case RequestType::kMulti: {
        Nodes saved = nodes;
        for (size_t i = 0; i < r.ops.size(); ++i) {
          OpResult res;
          const Err err = DoOp(r, r.ops[i], true, zxid, time, &res);
          if (err != Err::kOk) {
            e.err = err;
            for (size_t j = 0; j < r.ops.size(); ++j) {
              e.multi_errs.push_back(j < i ? Err::kOk : j == i ? err : Err::kRuntimeInconsistency);
            }
            nodes = std::move(saved);
            e.results.clear();
            return e;
          }
          e.results.push_back(res);
        }
        break;
      }
      case RequestType::kCreateSession:
        e.session_txn = true;
        if (!IsSessionOwner(r.session_id) || r.session_timeout_ms <= 0) {
          e.err = Err::kBadArguments;
        } else if (sessions.count(r.session_id)) {
          e.err = Err::kSessionExpired;
        } else {
          sessions[r.session_id] = r.session_timeout_ms;
          e.results.emplace_back();
        }
        break;
      case RequestType::kCloseSession:
        e.session_txn = true;
        if (!sessions.count(r.session_id)) {
          e.err = Err::kSessionExpired;
          break;
        }
        for (const std::string& p : Ephemerals(r.session_id)) Remove(p, zxid);
        sessions.erase(r.session_id);
        e.results.emplace_back();
        break;
      case RequestType::kReconfig:  // never generated: the model has no configuration
        e.err = Err::kUnimplemented;
        break;
    }
    return e;
  }

  std::vector<std::string> Ephemerals(int64_t session) const {
    std::vector<std::string> out;
    for (const auto& [p, n] : nodes) {
      if (n.stat.ephemeral_owner == session) out.push_back(p);
    }
    return out;
  }

 private:
  const MNode* Find(const std::string& p) const {
    auto it = nodes.find(p);
    return it == nodes.end() ? nullptr : &it->second;
  }

  void Remove(const std::string& p, int64_t zxid) {
    nodes.erase(p);
    MNode& parent = nodes.at(ParentOf(p));
    parent.stat.num_children--;
    parent.stat.cversion++;  // ZooKeeper 3.8 counts deletes in cversion, not in sequence numbers
    parent.stat.pzxid = zxid;
  }

  static int32_t Next(int32_t v) { return v + 1 == -1 ? 0 : v + 1; }

  Err DoOp(const Request& r, const Op& op, bool in_multi, int64_t zxid, int64_t time,
           OpResult* res) {
    res->type = op.type;
    res->path = op.path;
    switch (op.type) {
      case OpType::kCreate:
        return Create(r, op, zxid, time, res);
      case OpType::kDelete: {
        if (!ModelValid(op.path, false) || Special(op.path)) return Err::kBadArguments;
        const MNode* parent = Find(ParentOf(op.path));
        if (!parent) return Err::kNoNode;
        if (!AclAllows(parent->acl, perm::kDelete, r.auth)) return Err::kNoAuth;
        const MNode* n = Find(op.path);
        if (!n) return Err::kNoNode;
        if (op.version != -1 && op.version != n->stat.version) return Err::kBadVersion;
        if (n->stat.num_children > 0) return Err::kNotEmpty;
        Remove(op.path, zxid);
        return Err::kOk;
      }
      case OpType::kSetData: {
        if (!ModelValid(op.path, false)) return Err::kBadArguments;
        if (op.data.size() > kMaxData) return Err::kBadArguments;
        auto it = nodes.find(op.path);
        if (it == nodes.end()) return Err::kNoNode;
        MNode& n = it->second;
        if (!AclAllows(n.acl, perm::kWrite, r.auth)) return Err::kNoAuth;
        if (op.version != -1 && op.version != n.stat.version) return Err::kBadVersion;
        n.data = op.data;
        n.stat.version = Next(n.stat.version);
        n.stat.mzxid = zxid;
        n.stat.mtime = time;
        n.stat.data_length = static_cast<int32_t>(op.data.size());
        res->stat = n.stat;
        return Err::kOk;
      }
      case OpType::kSetAcl: {
        if (in_multi) return Err::kUnimplemented;
        if (!ModelValid(op.path, false)) return Err::kBadArguments;
        std::vector<Acl> acl;
        if (Err e = FixupAcl(op.acl, r.auth, &acl); e != Err::kOk) return e;
        auto it = nodes.find(op.path);
        if (it == nodes.end()) return Err::kNoNode;
        MNode& n = it->second;
        if (!AclAllows(n.acl, perm::kAdmin, r.auth)) return Err::kNoAuth;
        if (op.version != -1 && op.version != n.stat.aversion) return Err::kBadVersion;
        n.acl = acl;
        n.stat.aversion = Next(n.stat.aversion);
        res->stat = n.stat;
        return Err::kOk;
      }
      case OpType::kCheck: {
        if (!in_multi) return Err::kUnimplemented;
        if (!ModelValid(op.path, false)) return Err::kBadArguments;
        const MNode* n = Find(op.path);
        if (!n) return Err::kNoNode;
        if (!AclAllows(n->acl, perm::kRead, r.auth)) return Err::kNoAuth;
        if (op.version != -1 && op.version != n->stat.version) return Err::kBadVersion;
        return Err::kOk;
      }
      case OpType::kAppend: {
        if (in_multi) return Err::kUnimplemented;
        if (!ModelValid(op.path, false) || op.version != -1) return Err::kBadArguments;
        auto it = nodes.find(op.path);
        if (it == nodes.end()) return Err::kNoNode;
        MNode& n = it->second;
        if (!AclAllows(n.acl, perm::kWrite, r.auth)) return Err::kNoAuth;
        if (n.data.size() + op.data.size() > kMaxData) return Err::kMarshallingError;
        n.data += op.data;
        n.stat.version = Next(n.stat.version);
        n.stat.mzxid = zxid;
        n.stat.mtime = time;
        n.stat.data_length = static_cast<int32_t>(n.data.size());
        res->stat = n.stat;
        return Err::kOk;
      }
      case OpType::kDeleteContainer: {
        if (in_multi) return Err::kUnimplemented;
        if (!ModelValid(op.path, false) || Special(op.path)) return Err::kBadArguments;
        const MNode* n = Find(op.path);
        if (!n) return Err::kNoNode;
        if (n->stat.num_children > 0) return Err::kNotEmpty;
        const int64_t owner = n->stat.ephemeral_owner;
        const bool expired = owner == kContainerOwner ? n->stat.cversion > 0
                             : IsTtlOwner(owner)      ? n->stat.mtime + TtlOf(owner) < time
                                                      : false;
        if (!expired) return Err::kBadVersion;
        res->type = OpType::kDelete;
        Remove(op.path, zxid);
        return Err::kOk;
      }
    }
    return Err::kUnimplemented;
  }

  Err Create(const Request& r, const Op& op, int64_t zxid, int64_t time, OpResult* res) {
    const auto mode = static_cast<int32_t>(op.mode);
    if (mode < 0 || mode > 6) return Err::kBadArguments;
    if (IsTtl(op.mode) ? (op.ttl_ms <= 0 || op.ttl_ms > kMaxTtlMs) : op.ttl_ms > 0) {
      return Err::kBadArguments;
    }
    if (IsEphemeral(op.mode) && !(IsSessionOwner(r.session_id) && sessions.count(r.session_id))) {
      return Err::kSessionExpired;
    }
    const bool seq = IsSequential(op.mode);
    if (!ModelValid(op.path, seq)) return Err::kBadArguments;
    if (op.data.size() > kMaxData) return Err::kBadArguments;
    std::vector<Acl> acl;
    if (Err e = FixupAcl(op.acl, r.auth, &acl); e != Err::kOk) return e;
    auto pit = nodes.find(ParentOf(op.path));
    if (pit == nodes.end()) return Err::kNoNode;
    MNode& parent = pit->second;
    if (!AclAllows(parent.acl, perm::kCreate, r.auth)) return Err::kNoAuth;
    std::string path = op.path;
    if (seq) {
      char buf[16];
      std::snprintf(buf, sizeof(buf), "%010d", parent.child_creates);
      path += buf;
    }
    if (nodes.count(path)) return Err::kNodeExists;
    if (IsSessionOwner(parent.stat.ephemeral_owner)) return Err::kNoChildrenForEphemerals;
    int64_t owner = 0;
    if (op.mode == CreateMode::kContainer) {
      owner = kContainerOwner;
    } else if (IsTtl(op.mode)) {
      owner = TtlOwner(op.ttl_ms);
    } else if (IsEphemeral(op.mode)) {
      owner = r.session_id;
    }
    parent.stat.cversion++;
    parent.child_creates++;
    parent.stat.num_children++;
    parent.stat.pzxid = zxid;
    MNode n;
    n.data = op.data;
    n.stat.czxid = n.stat.mzxid = n.stat.pzxid = zxid;
    n.stat.ctime = n.stat.mtime = time;
    n.stat.ephemeral_owner = owner;
    n.stat.data_length = static_cast<int32_t>(op.data.size());
    n.acl = acl;
    n.kind = op.kind;
    res->path = path;
    res->stat = n.stat;
    nodes[path] = std::move(n);
    return Err::kOk;
  }
};

// Reads the whole tree through its public API.
Nodes ReadTree(const DataTree& t) {
  Nodes out;
  std::vector<std::string> stack{"/"};
  while (!stack.empty()) {
    const std::string p = stack.back();
    stack.pop_back();
    MNode n;
    std::vector<std::string> kids;
    EXPECT_EQ(t.GetData(p, &n.data, &n.stat), Err::kOk) << p;
    NodeMeta meta;
    EXPECT_TRUE(t.GetMeta(p, &meta)) << p;
    n.child_creates = meta.child_creates;
    EXPECT_EQ(t.GetAcl(p, &n.acl, nullptr), Err::kOk) << p;
    EXPECT_EQ(t.GetKind(p, &n.kind), Err::kOk) << p;
    EXPECT_EQ(t.GetChildren(p, &kids, nullptr), Err::kOk) << p;
    for (const std::string& k : kids) stack.push_back(p == "/" ? "/" + k : p + "/" + k);
    out[p] = std::move(n);
  }
  return out;
}

std::string Snapshot(const DataTree& t) {
  std::string out;
  Status st = t.WriteSnapshot([&](std::string_view rec) {
    out += std::to_string(rec.size());
    out += ':';
    out.append(rec);
    return Status::Ok();
  });
  EXPECT_TRUE(st.ok()) << st.ToString();
  return out;
}

std::unique_ptr<DataTree> Load(const DataTree& t) {
  std::vector<std::string> recs;
  EXPECT_TRUE(t.WriteSnapshot([&](std::string_view r) {
                 recs.emplace_back(r);
                 return Status::Ok();
               }).ok());
  size_t i = 0;
  auto loaded = DataTree::LoadSnapshot(TreeOptions{kMaxData}, [&](std::string_view* r) {
    if (i == recs.size()) return false;
    *r = recs[i++];
    return true;
  });
  EXPECT_TRUE(loaded.ok()) << loaded.status().ToString();
  return loaded.ok() ? std::move(loaded).value() : nullptr;
}

// --- the random workload ---

const std::vector<Id> kIds = {Id{"digest", "alice:YWxpY2U="}, Id{"digest", "bob:Ym9i"},
                              Id{"ip", "10.0.0.5"}, Id{"ip", "192.168.1.7"}};

class Workload {
 public:
  explicit Workload(uint64_t seed) : rng_(seed) {}

  Request Next(const Model& m) {
    const int k = Pick(100);
    if (k < 40) return Single(RandomCreate(m), m);
    if (k < 57) return Single(RandomDelete(m), m);
    if (k < 64) return Single(RandomSetData(m), m);
    if (k < 68) return Single(RandomAppend(m), m);
    if (k < 74) return Single(RandomSetAcl(m), m);
    if (k < 86) return RandomMulti(m);
    if (k < 90) return Single(RandomDeleteContainer(m), m);
    if (k < 95) {
      Request r;
      r.type = RequestType::kCreateSession;
      r.session_id = Pick(20) == 0 ? 0 : 1 + Pick(4);
      r.session_timeout_ms = Pick(30) == 0 ? 0 : 1000 + Pick(5000);
      return r;
    }
    if (k < 98) {
      Request r;
      r.type = RequestType::kCloseSession;
      r.session_id = 1 + Pick(5);
      return r;
    }
    Op check;
    check.type = OpType::kCheck;
    check.path = RandomPath(m);
    return Single(check, m);  // a lone check: UNIMPLEMENTED
  }

  int Pick(int n) { return std::uniform_int_distribution<int>(0, n - 1)(rng_); }

 private:
  Request Single(Op op, const Model& m) {
    Request r;
    r.type = RequestType::kOp;
    r.ops.push_back(std::move(op));
    Decorate(&r, m);
    return r;
  }

  void Decorate(Request* r, const Model& m) {
    // Mostly a live session, so ephemerals get created.
    if (!m.sessions.empty() && Pick(5) != 0) {
      auto it = m.sessions.begin();
      std::advance(it, Pick(static_cast<int>(m.sessions.size())));
      r->session_id = it->first;
    } else {
      r->session_id = Pick(4) == 0 ? 0 : 1 + Pick(4);
    }
    r->cxid = Pick(1000);
    for (const Id& id : kIds) {
      if (Pick(3) == 0) r->auth.push_back(id);
    }
    if (Pick(25) == 0) r->auth.push_back(Id{"super", ""});
  }

  std::string RandomData() {
    std::string d(Pick(40) == 0 ? kMaxData + 1 : Pick(kMaxData + 1), 'x');
    for (char& c : d) c = static_cast<char>('a' + Pick(26));
    return d;
  }

  std::string Existing(const Model& m) {
    auto it = m.nodes.begin();
    std::advance(it, Pick(static_cast<int>(m.nodes.size())));
    return it->first;
  }

  std::string RandomPath(const Model& m) {
    const int k = Pick(100);
    if (k < 50) return Existing(m);
    if (k < 95) {
      static const char* kNames[] = {"a", "b", "c", "d"};
      std::string p;
      const int depth = 1 + Pick(3);
      for (int i = 0; i < depth; ++i) p += std::string("/") + kNames[Pick(4)];
      return p;
    }
    static const char* kBad[] = {"", "a", "/a/", "/a//b", "/a/.", "/..", "/b/../c"};
    return kBad[Pick(7)];
  }

  std::vector<Acl> RandomAcl() {
    switch (Pick(24)) {
      case 0:
        return {Acl{perm::kRead | perm::kCreate, Id{"world", "anyone"}}, Acl{perm::kAll, kIds[0]}};
      case 1:
        return {Acl{perm::kAll, Id{"ip", "10.0.0.0/8"}}};
      case 2:
        return {Acl{perm::kAll, Id{"auth", ""}}};
      case 3:
        return {Acl{Pick(32), Id{"world", "anyone"}}};
      case 4:
        return {Acl{perm::kAll & ~perm::kDelete, Id{"world", "anyone"}}, Acl{perm::kAll, kIds[1]}};
      case 5:
        if (Pick(4) == 0) return {};                        // invalid
        return {Acl{perm::kAll, Id{"digest", "nocolon"}}};  // invalid
      default:
        return OpenAcl();
    }
  }

  int32_t RandomVersion(const Model& m, const std::string& path, bool acl_version) {
    const int k = Pick(10);
    if (k < 4) return -1;
    auto it = m.nodes.find(path);
    if (k < 8 && it != m.nodes.end()) {
      return acl_version ? it->second.stat.aversion : it->second.stat.version;
    }
    return Pick(4);
  }

  Op RandomCreate(const Model& m) {
    Op op;
    op.type = OpType::kCreate;
    const int k = Pick(100);
    if (k < 45) {
      op.mode = CreateMode::kPersistent;
    } else if (k < 60) {
      op.mode = CreateMode::kPersistentSequential;
    } else if (k < 72) {
      op.mode = CreateMode::kEphemeral;
    } else if (k < 78) {
      op.mode = CreateMode::kEphemeralSequential;
    } else if (k < 86) {
      op.mode = CreateMode::kContainer;
    } else if (k < 93) {
      op.mode = CreateMode::kPersistentWithTtl;
    } else if (k < 98) {
      op.mode = CreateMode::kPersistentSequentialWithTtl;
    } else {
      op.mode = static_cast<CreateMode>(7);  // invalid
    }
    // Often a child of an existing node, so the tree grows deeper.
    const std::string base = Existing(m);
    static const char* kNames[] = {"a", "b", "c", "d", "e"};
    op.path = Pick(2) ? (base == "/" ? "" : base) + "/" + kNames[Pick(5)] : RandomPath(m);
    if (IsSequential(op.mode) && Pick(2) == 0) op.path = (base == "/" ? "" : base) + "/s-";
    if (IsSequential(op.mode) && Pick(10) == 0) op.path = base == "/" ? "/" : base + "/";
    if (IsTtl(op.mode)) op.ttl_ms = Pick(15) == 0 ? 0 : 1 + Pick(60);
    if (!IsTtl(op.mode) && Pick(40) == 0) op.ttl_ms = 5;  // invalid
    op.data = RandomData();
    op.acl = RandomAcl();
    op.kind = static_cast<Kind>(Pick(3));
    return op;
  }

  Op RandomDelete(const Model& m) {
    Op op;
    op.type = OpType::kDelete;
    op.path = Pick(3) ? Existing(m) : RandomPath(m);
    // Prefer leaves so the tree does not only grow.
    for (int tries = 0; tries < 4; ++tries) {
      auto it = m.nodes.find(op.path);
      if (it == m.nodes.end() || it->second.stat.num_children == 0) break;
      op.path = Existing(m);
    }
    op.version = RandomVersion(m, op.path, false);
    return op;
  }

  Op RandomSetData(const Model& m) {
    Op op;
    op.type = OpType::kSetData;
    op.path = RandomPath(m);
    op.data = RandomData();
    op.version = RandomVersion(m, op.path, false);
    return op;
  }

  // Mostly -1 (the only version an append takes); big enough now and then to cross the limit.
  Op RandomAppend(const Model& m) {
    Op op;
    op.type = OpType::kAppend;
    op.path = RandomPath(m);
    op.data = Pick(8) == 0 ? std::string(kMaxData / 2 + 1, 'a') : RandomData();
    op.version = Pick(10) == 0 ? 0 : -1;
    return op;
  }

  Op RandomSetAcl(const Model& m) {
    Op op;
    op.type = OpType::kSetAcl;
    op.path = RandomPath(m);
    op.acl = RandomAcl();
    op.version = RandomVersion(m, op.path, true);
    return op;
  }

  Op RandomCheck(const Model& m) {
    Op op;
    op.type = OpType::kCheck;
    op.path = RandomPath(m);
    op.version = RandomVersion(m, op.path, false);
    return op;
  }

  Op RandomDeleteContainer(const Model& m) {
    Op op;
    op.type = OpType::kDeleteContainer;
    op.path = RandomPath(m);
    for (const auto& [p, n] : m.nodes) {
      const int64_t o = n.stat.ephemeral_owner;
      if ((o == kContainerOwner || IsTtlOwner(o)) && Pick(3) == 0) {
        op.path = p;
        break;
      }
    }
    return op;
  }

  Request RandomMulti(const Model& m) {
    Request r;
    r.type = RequestType::kMulti;
    const int n = Pick(5);
    for (int i = 0; i < n; ++i) {
      switch (Pick(9)) {
        case 0:
        case 1:
        case 2:
          r.ops.push_back(RandomCreate(m));
          break;
        case 3:
        case 4:
          r.ops.push_back(RandomDelete(m));
          break;
        case 5:
        case 6:
          r.ops.push_back(RandomSetData(m));
          break;
        case 7:
          r.ops.push_back(RandomCheck(m));
          break;
        default:
          r.ops.push_back(Pick(10) == 0 ? RandomSetAcl(m) : RandomCheck(m));  // setAcl: invalid
      }
    }
    Decorate(&r, m);
    return r;
  }

  std::mt19937_64 rng_;
};

// A prepared txn waiting to be applied, with what applying it must produce.
struct InFlight {
  txn::Txn txn;
  Expect expect;
  Nodes nodes_after;
  std::map<int64_t, int32_t> sessions_after;
};

void CheckResults(const ApplyResult& got, const Expect& want) {
  ASSERT_EQ(got.err, Err::kOk);
  ASSERT_EQ(got.results.size(), want.results.size());
  for (size_t i = 0; i < want.results.size(); ++i) {
    const OpResult& g = got.results[i];
    const OpResult& w = want.results[i];
    EXPECT_EQ(g.err, Err::kOk) << i;
    if (want.session_txn) continue;
    EXPECT_EQ(g.type, w.type) << i;
    EXPECT_EQ(g.path, w.path) << i;
    if (w.type == OpType::kCreate || w.type == OpType::kSetData || w.type == OpType::kSetAcl) {
      EXPECT_EQ(g.stat, w.stat) << i << " " << w.path;
    }
  }
}

void CheckTree(const DataTree& t, const InFlight& f) {
  ASSERT_EQ(t.digest(), t.ComputeDigest()) << "after " << f.txn.ShortDebugString();
  const Nodes got = ReadTree(t);
  if (got != f.nodes_after) {
    for (const auto& [p, n] : f.nodes_after) {
      auto it = got.find(p);
      if (it == got.end()) {
        ADD_FAILURE() << "missing in tree: " << Describe(p, n);
      } else if (!(it->second == n)) {
        ADD_FAILURE() << "tree:  " << Describe(p, it->second) << "\nmodel: " << Describe(p, n);
      }
    }
    for (const auto& [p, n] : got) {
      if (!f.nodes_after.count(p)) ADD_FAILURE() << "extra in tree: " << Describe(p, n);
    }
    FAIL() << "tree differs from the model after zxid " << f.txn.zxid();
  }
  ASSERT_EQ(t.sessions(), f.sessions_after);
  for (const auto& [id, timeout] : f.sessions_after) {
    std::vector<std::string> want;
    for (const auto& [p, n] : f.nodes_after) {
      if (n.stat.ephemeral_owner == id) want.push_back(p);
    }
    EXPECT_EQ(t.GetEphemerals(id, "/"), want) << id;
  }
  ASSERT_EQ(t.node_count(), f.nodes_after.size());
}

void RunSeed(uint64_t seed, int requests) {
  SCOPED_TRACE("seed " + std::to_string(seed));
  std::printf("tree_property_test: seed %llu, %d requests\n", static_cast<unsigned long long>(seed),
              requests);
  Workload w(seed);
  DataTree tree(TreeOptions{kMaxData});
  Preparer prep(tree);
  Model model;
  model.nodes = ReadTree(tree);
  model.sessions = tree.sessions();

  std::vector<std::unique_ptr<DataTree>> loaded;  // from snapshots, then fed the later txns
  std::vector<txn::Txn> history;
  int64_t zxid = 0;
  int64_t now = 1'000'000;
  int64_t unreported = 0;  // applied but not yet passed to Applied()
  int done = 0;
  std::map<Err, int> outcomes;
  std::map<std::string, int> kinds;  // successful txns by kind

  while (done < requests) {
    // Prepare a batch without applying, as a pipelining leader does.
    std::deque<InFlight> batch;
    const int depth = 1 + w.Pick(6);
    for (int i = 0; i < depth && done < requests; ++i, ++done) {
      const Request req = w.Next(model);
      now += w.Pick(25);
      const Expect want = model.Run(req, zxid + 1, now);
      Prepared p = prep.Prepare(req, zxid + 1, now);
      outcomes[p.err]++;
      ASSERT_EQ(p.err, want.err) << "request " << done << " type " << int(req.type)
                                 << (req.ops.empty() ? "" : " path " + req.ops[0].path);
      if (want.err != Err::kOk) {
        ASSERT_FALSE(p.txn.has_value());
        if (req.type == RequestType::kMulti) {
          ASSERT_EQ(p.multi_results.size(), want.multi_errs.size());
          for (size_t j = 0; j < want.multi_errs.size(); ++j) {
            EXPECT_EQ(p.multi_results[j].err, want.multi_errs[j]) << j;
          }
        }
        continue;
      }
      ASSERT_TRUE(p.txn.has_value());
      ++zxid;
      const txn::Txn& t = *p.txn;
      if (t.has_multi() && t.multi().ops_size() > 1) kinds["multi"]++;
      if (t.has_close_session() && t.close_session().paths_to_delete_size() > 0) {
        kinds["close_with_ephemerals"]++;
      }
      if (req.type == RequestType::kOp && req.ops[0].type == OpType::kDeleteContainer) {
        kinds["delete_container"]++;
      }
      if (t.has_create()) kinds[IsSequential(req.ops[0].mode) ? "sequential" : "create"]++;
      if (t.has_create() && IsTtl(req.ops[0].mode)) kinds["ttl"]++;
      if (t.has_create() && IsEphemeral(req.ops[0].mode)) kinds["ephemeral"]++;
      if (t.has_delete_()) kinds["delete"]++;
      if (t.has_set_data()) kinds["set_data"]++;
      if (t.has_set_acl()) kinds["set_acl"]++;
      if (t.has_append()) kinds["append"]++;
      if (t.has_create_session()) kinds["create_session"]++;
      batch.push_back(InFlight{std::move(*p.txn), want, model.nodes, model.sessions});
    }

    // Apply the batch, checking the tree against the model after every txn.
    while (!batch.empty()) {
      const InFlight& f = batch.front();
      const ApplyResult res = tree.Apply(f.txn);
      ASSERT_NO_FATAL_FAILURE(CheckResults(res, f.expect));
      ASSERT_NO_FATAL_FAILURE(CheckTree(tree, f));
      for (auto& t : loaded) t->Apply(f.txn);
      history.push_back(f.txn);
      unreported = f.txn.zxid();
      // Report applies at random granularity; late reports are legal.
      if (w.Pick(3) != 0) {
        prep.Applied(unreported);
        unreported = 0;
      }
      batch.pop_front();

      if (history.size() % 250 == 0 && loaded.size() < 4) {
        std::unique_ptr<DataTree> t = Load(tree);
        ASSERT_NE(t, nullptr);
        ASSERT_EQ(t->digest(), tree.digest());
        ASSERT_EQ(Snapshot(*t), Snapshot(tree));
        loaded.push_back(std::move(t));
      }
    }
    if (unreported != 0 && w.Pick(2) == 0) {
      prep.Applied(unreported);
      unreported = 0;
    }
    if (unreported == 0) {
      EXPECT_EQ(prep.pending_count(), 0u);
      // Everything is applied: a reset must change nothing.
      if (w.Pick(10) == 0) prep.Reset();
    }
  }

  const std::string snap = Snapshot(tree);
  for (const auto& t : loaded) {
    EXPECT_EQ(t->digest(), tree.digest());
    EXPECT_EQ(t->digest(), t->ComputeDigest());
    EXPECT_EQ(Snapshot(*t), snap);
  }
  DataTree replay(TreeOptions{kMaxData});
  for (const txn::Txn& t : history) {
    txn::Txn copy;  // through the wire format, as the log stores it
    ASSERT_TRUE(copy.ParseFromString(t.SerializeAsString()));
    replay.Apply(copy);
  }
  EXPECT_EQ(replay.digest(), tree.digest());
  EXPECT_EQ(Snapshot(replay), snap);
  EXPECT_EQ(replay.last_zxid(), tree.last_zxid());

  // The workload must reach the interesting outcomes, or the test proves little.
  for (Err e : {Err::kOk, Err::kNoNode, Err::kNodeExists, Err::kBadVersion, Err::kNotEmpty,
                Err::kNoAuth, Err::kBadArguments, Err::kInvalidAcl, Err::kSessionExpired,
                Err::kNoChildrenForEphemerals, Err::kUnimplemented, Err::kMarshallingError}) {
    EXPECT_GT(outcomes[e], 0) << ErrName(e);
  }
  for (const char* k :
       {"multi", "close_with_ephemerals", "delete_container", "sequential", "create", "ttl",
        "ephemeral", "delete", "set_data", "set_acl", "create_session", "append"}) {
    EXPECT_GT(kinds[k], 0) << k;
  }
  std::printf("tree_property_test: seed %llu: %zu txns, %zu nodes, %zu snapshot trees;",
              static_cast<unsigned long long>(seed), history.size(), tree.node_count(),
              loaded.size());
  for (const auto& [e, n] : outcomes) std::printf(" %s=%d", ErrName(e), n);
  std::printf(";");
  for (const auto& [k, n] : kinds) std::printf(" %s=%d", k.c_str(), n);
  std::printf("\n");
}

TEST(TreePropertyTest, RandomPipelinedWorkloadsMatchTheModel) {
  if (const char* s = std::getenv("QFS_PROPERTY_SEED")) {
    RunSeed(std::strtoull(s, nullptr, 10), 3000);
    return;
  }
  for (uint64_t seed : {1u, 2u, 3u, 20240607u}) {
    RunSeed(seed, 2500);
    if (HasFatalFailure()) return;
  }
}

// The sequences measured on ZooKeeper 3.8 (with kazoo), through the model and through prepare
// and apply: cversion counts child creates and deletes (closeSession's included), sequential
// suffixes count creates only.
TEST(TreePropertyTest, ModelAndTreeMatchMeasuredZooKeeper) {
  DataTree tree;
  Preparer prep(tree);
  Model model;
  model.nodes = ReadTree(tree);
  int64_t zxid = 0;
  auto op = [](OpType type, std::string path, CreateMode mode = CreateMode::kPersistent) {
    Op o;
    o.type = type;
    o.path = std::move(path);
    o.mode = mode;
    o.acl = OpenAcl();
    return o;
  };
  // Runs a request through both; returns the paths it created.
  auto run = [&](std::vector<Op> ops, RequestType type = RequestType::kOp, int64_t session = 0) {
    Request r;
    r.type = type;
    r.session_id = session;
    r.session_timeout_ms = 1000;
    r.ops = std::move(ops);
    const Expect want = model.Run(r, zxid + 1, 1000);
    Prepared p = prep.Prepare(r, zxid + 1, 1000);
    EXPECT_EQ(want.err, Err::kOk);
    EXPECT_EQ(p.err, want.err);
    std::vector<std::string> paths;
    if (!p.txn) return paths;
    const ApplyResult res = tree.Apply(*p.txn);
    prep.Applied(++zxid);
    CheckResults(res, want);
    EXPECT_EQ(ReadTree(tree), model.nodes);
    for (const OpResult& o : res.results) {
      if (o.type == OpType::kCreate) paths.push_back(o.path);
    }
    return paths;
  };
  auto create = [&](const std::string& path, CreateMode mode = CreateMode::kPersistent,
                    int64_t session = 0) {
    std::vector<std::string> paths =
        run({op(OpType::kCreate, path, mode)}, RequestType::kOp, session);
    return paths.empty() ? std::string() : paths[0];
  };
  auto remove = [&](const std::string& path) { run({op(OpType::kDelete, path)}); };
  auto cversion = [&](const std::string& path) { return model.nodes.at(path).stat.cversion; };
  const CreateMode kSeq = CreateMode::kPersistentSequential;

  create("/cw");
  EXPECT_EQ(create("/cw/s-", kSeq), "/cw/s-0000000000");
  EXPECT_EQ(cversion("/cw"), 1);
  create("/cw/a");
  EXPECT_EQ(cversion("/cw"), 2);
  remove("/cw/a");
  EXPECT_EQ(cversion("/cw"), 3);
  EXPECT_EQ(create("/cw/s-", kSeq), "/cw/s-0000000002");
  EXPECT_EQ(cversion("/cw"), 4);
  remove("/cw/s-0000000000");
  EXPECT_EQ(cversion("/cw"), 5);
  EXPECT_EQ(create("/cw/s-", kSeq), "/cw/s-0000000003");
  EXPECT_EQ(cversion("/cw"), 6);

  create("/c2");
  for (const char* n : {"/c2/a", "/c2/b", "/c2/c"}) create(n);
  for (const char* n : {"/c2/a", "/c2/b", "/c2/c"}) remove(n);
  EXPECT_EQ(cversion("/c2"), 6);
  EXPECT_EQ(model.nodes.at("/c2").stat.num_children, 0);
  EXPECT_EQ(create("/c2/s-", kSeq), "/c2/s-0000000003");
  EXPECT_EQ(cversion("/c2"), 7);
  EXPECT_EQ(run({op(OpType::kCreate, "/c2/x"), op(OpType::kDelete, "/c2/x"),
                 op(OpType::kCreate, "/c2/q-", kSeq)},
                RequestType::kMulti),
            (std::vector<std::string>{"/c2/x", "/c2/q-0000000005"}));
  EXPECT_EQ(cversion("/c2"), 10);

  run({}, RequestType::kCreateSession, 9);
  create("/c3");
  create("/c3/e", CreateMode::kEphemeral, 9);
  create("/c3/f", CreateMode::kEphemeral, 9);
  EXPECT_EQ(cversion("/c3"), 2);
  run({}, RequestType::kCloseSession, 9);
  EXPECT_EQ(cversion("/c3"), 4);
  EXPECT_EQ(create("/c3/s-", kSeq), "/c3/s-0000000002");
  EXPECT_EQ(cversion("/c3"), 5);
}

}  // namespace
}  // namespace qfs::tree
