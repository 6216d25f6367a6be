#include "daemon/tree/data_tree.h"

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <set>
#include <utility>

#include "consensus/util/result.h"
#include "daemon/tree/digest.h"
#include "daemon/tree/node_acl.h"
#include "daemon/tree/node_store.h"

namespace qfs::tree {

using internal::AclTable;
using internal::DataPart;
using internal::GetStat;
using internal::NameHash;
using internal::Node;
using internal::PathHash;
using internal::StatPart;

// The node's kind byte also carries whether its data is null (ZooKeeper keeps null data apart
// from empty data). Snapshots and the digest see the whole byte.
constexpr uint8_t kNullDataBit = kSnapNullDataBit;

namespace {

// ACL ids are the smallest free ones, so they stay below the most lists ever live at once.
constexpr uint32_t kMaxSnapAclId = 1u << 26;

// Enough structure to walk: absolute, no empty component, no trailing '/'. The full rules are
// ValidatePath's, applied by prepare.
bool Walkable(std::string_view path) {
  if (path.empty() || path[0] != '/') return false;
  if (path.size() == 1) return true;
  return path.back() != '/' && path.find("//") == std::string_view::npos;
}

// "/a/b" -> "/a", "b"; "/a" -> "/", "a".
void SplitPath(std::string_view path, std::string_view* parent, std::string_view* name) {
  size_t slash = path.rfind('/');
  *parent = slash == 0 ? path.substr(0, 1) : path.substr(0, slash);
  *name = path.substr(slash + 1);
}

void AppendChildPath(std::string* path, size_t parent_len, std::string_view name) {
  path->resize(parent_len);
  if (parent_len > 1) path->push_back('/');
  path->append(name);
}

std::vector<const Node*> SortedChildren(const Node* n) {
  std::vector<const Node*> v;
  v.reserve(n->num_children());
  internal::ForEachChild(n, [&](const Node* c) { v.push_back(c); });
  std::sort(v.begin(), v.end(), [](const Node* a, const Node* b) { return a->name() < b->name(); });
  return v;
}

// Counters wrap like Java ints.
int32_t WrapInc(int32_t v) {
  return static_cast<int32_t>(static_cast<uint32_t>(v) + 1u);
}
int32_t WrapSub(int32_t a, int32_t b) {
  return static_cast<int32_t>(static_cast<uint32_t>(a) - static_cast<uint32_t>(b));
}

size_t MallocChunk(size_t n) {
  return (n + 8 + 15) & ~size_t{15};
}

}  // namespace

struct DataTree::Impl {
  ~Impl() { Clear(); }

  Node* root = nullptr;
  size_t node_count = 0;
  int64_t last_zxid = 0;
  uint64_t digest = 0;
  AclTable acls;
  std::map<int64_t, int32_t> sessions;
  // Paths by owner; only the small populations of ephemerals, containers and TTL nodes are
  // indexed by path, never the whole tree.
  std::map<int64_t, std::set<std::string, std::less<>>> ephemerals;
  std::set<std::string, std::less<>> containers;
  std::set<std::string, std::less<>> ttls;
  // Quota'd paths: those with a limit node, as ZooKeeper's path trie (docs/quotas.md).
  std::set<std::string, std::less<>> quota_paths;
  std::vector<QuotaCrossing> crossings;  // of the txn being applied

  void Clear() {
    if (root) {
      // Iterative: a chain of single children can be far deeper than the stack.
      std::vector<Node*> stack{root};
      while (!stack.empty()) {
        Node* n = stack.back();
        stack.pop_back();
        internal::ForEachChild(n, [&](Node* c) { stack.push_back(c); });
        std::free(n->children);
        n->children = nullptr;
        internal::FreeNode(n);
      }
    }
    root = nullptr;
    node_count = 0;
    last_zxid = 0;
    digest = 0;
    acls = AclTable();
    sessions.clear();
    ephemerals.clear();
    containers.clear();
    ttls.clear();
    quota_paths.clear();
    crossings.clear();
  }

  // The node at `path` (nullptr if absent); *parent gets its parent (nullptr for the root).
  Node* Lookup(std::string_view path, Node** parent = nullptr) const {
    Node* up = nullptr;
    Node* n = root;
    for (size_t i = 1; i < path.size() && n;) {
      size_t j = path.find('/', i);
      if (j == std::string_view::npos) j = path.size();
      std::string_view name = path.substr(i, j - i);
      up = n;
      n = internal::FindChild(n, name, NameHash(name));
      i = j + 1;
    }
    if (parent) *parent = up;
    return n;
  }
  const Node* Find(std::string_view path) const { return Walkable(path) ? Lookup(path) : nullptr; }

  // `s` and `creates` are GetStat(n, &creates), passed in because callers have them at hand.
  uint64_t StatDigest(uint64_t ph, const Node* n, const Stat& s, int32_t creates) const {
    return StatPart(ph, s, creates, n->kind, acls.HashOf(n->acl_id));
  }
  uint64_t NodeDigest(uint64_t ph, const Node* n, const Stat& s, int32_t creates) const {
    return DataPart(ph, n->data()) + StatDigest(ph, n, s, creates);
  }

  void IndexAdd(std::string_view path, int64_t owner) {
    if (owner == kContainerOwner) {
      containers.emplace(path);
    } else if (IsTtlOwner(owner)) {
      ttls.emplace(path);
    } else if (owner != 0) {
      ephemerals[owner].emplace(path);
    }
  }
  void IndexRemove(std::string_view path, int64_t owner) {
    if (owner == kContainerOwner) {
      containers.erase(containers.find(path));
    } else if (IsTtlOwner(owner)) {
      ttls.erase(ttls.find(path));
    } else if (owner != 0) {
      auto it = ephemerals.find(owner);
      QFS_CHECK(it != ephemerals.end());
      auto p = it->second.find(path);
      QFS_CHECK(p != it->second.end());
      it->second.erase(p);
      if (it->second.empty()) ephemerals.erase(it);
    }
  }

  // --- quotas: effects as ZooKeeper's DataTree, kept in the stat nodes' data ---

  const std::string* QuotaRootOf(std::string_view path) const {
    if (quota_paths.empty()) return nullptr;
    for (std::string_view p = path; p.size() > 1; p = p.substr(0, p.rfind('/'))) {
      if (auto it = quota_paths.find(p); it != quota_paths.end()) return &*it;
    }
    return nullptr;
  }

  // Replaces a node's data without touching its version or mzxid, as ZooKeeper updates its
  // stat nodes (no watch fires either).
  void ReplaceQuietly(const std::string& path, std::string_view data) {
    Node* parent = nullptr;
    Node* n = Lookup(path, &parent);
    QFS_CHECK(n != nullptr);
    int32_t creates = 0;
    Stat st = GetStat(n, &creates);
    uint64_t ph = PathHash(path);
    digest -= NodeDigest(ph, n, st, creates);
    st.data_length = static_cast<int32_t>(data.size());
    n = internal::UpdateNode(parent, n, st, creates, &data);
    n->kind = static_cast<uint8_t>(n->kind & ~kNullDataBit);
    if (!parent) root = n;
    digest += NodeDigest(ph, n, st, creates);
  }

  // Nodes and data bytes of the subtree at `qpath` ("" is the root), the quota'd node included.
  StatsTrack CountSubtree(std::string_view qpath) const {
    int64_t count = 0, bytes = 0;
    const Node* top = qpath.empty() ? root : Find(qpath);
    std::vector<const Node*> stack;
    if (top) stack.push_back(top);
    while (!stack.empty()) {
      const Node* n = stack.back();
      stack.pop_back();
      count++;
      bytes += static_cast<int64_t>(n->data().size());
      internal::ForEachChild(n, [&](const Node* c) { stack.push_back(c); });
    }
    StatsTrack t;
    t.Set(StatsTrack::kCount, count);
    t.Set(StatsTrack::kBytes, bytes);
    return t;
  }

  // The stat node was just created: it gets the subtree's usage (ZooKeeper's updateQuotaForPath).
  void RecountQuota(const std::string& qpath) {
    ReplaceQuietly(StatPath(qpath), CountSubtree(qpath).ToString());
  }

  // Adds `d` to the usage in the stat node of `qpath` (ZooKeeper's updateQuotaStat).
  void AdjustQuota(const std::string& qpath, QuotaDelta d) {
    const std::string sp = StatPath(qpath);
    const Node* n = Find(sp);
    if (!n) return;  // a limit node without its stat node (yet): ZooKeeper skips it too
    std::optional<StatsTrack> old = StatsTrack::Parse(n->data());
    if (!old) {
      // A client wrote text ZooKeeper's parser throws on; recounting keeps apply total and
      // deterministic.
      RecountQuota(qpath);
      return;
    }
    StatsTrack now = *old;
    now.Set(StatsTrack::kCount, old->count() + d.count);
    now.Set(StatsTrack::kBytes, old->bytes() + d.bytes);
    ReplaceQuietly(sp, now.ToString());
    const Node* ln = Find(LimitPath(qpath));
    if (!ln) return;
    std::optional<StatsTrack> limits = StatsTrack::Parse(ln->data());
    if (!limits) return;
    auto note = [&](bool bytes, int64_t limit, int64_t before, int64_t after) {
      if (limit >= 0 && before <= limit && after > limit) {
        crossings.push_back({qpath, bytes, after, limit});
      }
    };
    note(false, limits->count(), old->count(), now.count());
    note(true, limits->bytes(), old->bytes(), now.bytes());
  }

  // Quota bookkeeping after a node was created or deleted (ZooKeeper's createNode/deleteNode).
  void QuotaNodeAdded(std::string_view path, int64_t data_bytes) {
    std::string_view parent_path, name;
    SplitPath(path, &parent_path, &name);
    if (auto q = QuotaPathOf(parent_path)) {
      if (name == kLimitNode) quota_paths.insert(*q);
      if (name == kStatNode) RecountQuota(*q);
    }
    if (const std::string* q = QuotaRootOf(path)) AdjustQuota(*q, {1, data_bytes});
  }
  void QuotaNodeRemoved(std::string_view path, int64_t data_bytes) {
    std::string_view parent_path, name;
    SplitPath(path, &parent_path, &name);
    if (name == kLimitNode) {
      if (auto q = QuotaPathOf(parent_path)) quota_paths.erase(*q);
    }
    if (const std::string* q = QuotaRootOf(path)) AdjustQuota(*q, {-1, -data_bytes});
  }

  // Rebuilds quota_paths from the tree (after a snapshot load).
  void IndexQuotas() {
    const Node* top = Find(kQuotaTree);
    if (!top) return;
    std::vector<std::pair<const Node*, std::string>> stack{{top, std::string(kQuotaTree)}};
    while (!stack.empty()) {
      // Not a structured binding: clang 14 (the fuzz build) cannot capture one in a lambda.
      const Node* n = stack.back().first;
      const std::string path = std::move(stack.back().second);
      stack.pop_back();
      internal::ForEachChild(n, [&](const Node* c) {
        if (c->name() == kLimitNode) quota_paths.insert(*QuotaPathOf(path));
        stack.push_back({c, path + "/" + std::string(c->name())});
      });
    }
  }

  Node* AddInitial(Node* parent, std::string_view name, const std::vector<Acl>& acl,
                   const Stat& stat = {}) {
    Node* n = internal::NewNode(name, {}, stat, stat.cversion, acls.Ref(acl), Kind::kUnset);
    if (parent) internal::AddChild(parent, n, NameHash(name));
    node_count++;
    return n;
  }

  OpResult Create(const txn::CreateTxn& c, int64_t zxid, int64_t time_ms,
                  std::vector<Change>* changes) {
    const std::string& path = c.path();
    QFS_CHECK(Walkable(path) && path.size() > 1);
    QFS_CHECK(c.acl_size() > 0);
    QFS_CHECK(c.kind() <= static_cast<uint32_t>(Kind::kDirectory));
    int64_t owner = c.ephemeral_owner();
    QFS_CHECK(!IsSessionOwner(owner) || sessions.count(owner));
    std::string_view parent_path, name;
    SplitPath(path, &parent_path, &name);
    Node* grandparent = nullptr;
    Node* parent = Lookup(parent_path, &grandparent);
    QFS_CHECK(parent != nullptr);
    int32_t pcreates = 0;
    Stat ps = GetStat(parent, &pcreates);
    QFS_CHECK(!IsSessionOwner(ps.ephemeral_owner));  // no children for ephemerals
    uint64_t h = NameHash(name);
    QFS_CHECK(internal::FindChild(parent, name, h) == nullptr);

    Stat s;
    s.czxid = s.mzxid = s.pzxid = zxid;
    s.ctime = s.mtime = time_ms;
    s.ephemeral_owner = owner;
    s.data_length = static_cast<int32_t>(c.data().size());
    Node* n = internal::NewNode(name, c.data(), s, 0, acls.Ref(c.acl()),
                                static_cast<Kind>(c.kind() | (c.data_null() ? kNullDataBit : 0)));

    uint64_t pph = PathHash(parent_path);
    digest -= StatDigest(pph, parent, ps, pcreates);
    internal::AddChild(parent, n, h);
    pcreates = c.parent_cversion();
    ps.cversion = WrapInc(ps.cversion);
    ps.pzxid = zxid;
    ps.num_children = parent->num_children();
    parent = internal::UpdateNode(grandparent, parent, ps, pcreates, nullptr);
    if (!grandparent) root = parent;
    digest += StatDigest(pph, parent, ps, pcreates);
    digest += NodeDigest(PathHash(path), n, s, 0);
    node_count++;
    IndexAdd(path, owner);

    changes->push_back({Change::kCreated, path});
    changes->push_back({Change::kChildrenChanged, std::string(parent_path)});
    QuotaNodeAdded(path, s.data_length);
    return {Err::kOk, OpType::kCreate, path, s, {}};
  }

  OpResult Delete(std::string_view path, int64_t zxid, std::vector<Change>* changes) {
    QFS_CHECK(Walkable(path) && path.size() > 1);
    std::string_view parent_path, name;
    SplitPath(path, &parent_path, &name);
    Node* grandparent = nullptr;
    Node* parent = Lookup(parent_path, &grandparent);
    QFS_CHECK(parent != nullptr);
    uint64_t h = NameHash(name);
    Node* n = internal::FindChild(parent, name, h);
    QFS_CHECK(n != nullptr);
    QFS_CHECK(n->children == nullptr);
    int32_t pcreates = 0, creates = 0;
    Stat ps = GetStat(parent, &pcreates);
    Stat s = GetStat(n, &creates);

    uint64_t pph = PathHash(parent_path);
    digest -= StatDigest(pph, parent, ps, pcreates);
    digest -= NodeDigest(PathHash(path), n, s, creates);
    internal::RemoveChild(parent, name, h);
    // As ZooKeeper 3.8: a delete bumps the parent's cversion but not its create counter.
    ps.cversion = WrapInc(ps.cversion);
    ps.pzxid = std::max(ps.pzxid, zxid);
    ps.num_children = parent->num_children();
    parent = internal::UpdateNode(grandparent, parent, ps, pcreates, nullptr);
    if (!grandparent) root = parent;
    digest += StatDigest(pph, parent, ps, pcreates);
    IndexRemove(path, s.ephemeral_owner);
    acls.Unref(n->acl_id);
    internal::FreeNode(n);
    node_count--;

    changes->push_back({Change::kDeleted, std::string(path)});
    changes->push_back({Change::kChildrenChanged, std::string(parent_path)});
    QuotaNodeRemoved(path, s.data_length);
    OpResult r;
    r.type = OpType::kDelete;
    r.path = path;
    return r;
  }

  OpResult SetData(const txn::SetDataTxn& s, int64_t zxid, int64_t time_ms,
                   std::vector<Change>* changes) {
    return ReplaceData(s.path(), OpType::kSetData, s.version(), zxid, time_ms, changes,
                       [&](std::string_view) {
                         return std::pair<std::string_view, bool>{s.data(), s.data_null()};
                       });
  }

  // An append is a data change to the node's data plus the txn's bytes.
  OpResult Append(const txn::AppendTxn& a, int64_t zxid, int64_t time_ms,
                  std::vector<Change>* changes) {
    return ReplaceData(a.path(), OpType::kAppend, a.version(), zxid, time_ms, changes,
                       [&](std::string_view old) {
                         std::string joined(old);
                         joined += a.data();
                         return std::pair{std::move(joined), false};
                       });
  }

  // Sets the node's data to what `make(old data)` returns (data, null flag).
  template <typename Make>
  OpResult ReplaceData(const std::string& path, OpType type, int32_t version, int64_t zxid,
                       int64_t time_ms, std::vector<Change>* changes, Make&& make) {
    QFS_CHECK(Walkable(path));
    Node* parent = nullptr;
    Node* n = Lookup(path, &parent);
    QFS_CHECK(n != nullptr);
    int32_t creates = 0;
    Stat st = GetStat(n, &creates);
    uint64_t ph = PathHash(path);
    digest -= NodeDigest(ph, n, st, creates);
    auto [bytes, null] = make(n->data());
    const int64_t diff = static_cast<int64_t>(bytes.size()) - st.data_length;
    st.version = version;
    st.mzxid = zxid;
    st.mtime = time_ms;
    st.data_length = static_cast<int32_t>(bytes.size());
    std::string_view data = bytes;
    n = internal::UpdateNode(parent, n, st, creates, &data);
    n->kind = static_cast<uint8_t>((n->kind & ~kNullDataBit) | (null ? kNullDataBit : 0));
    if (!parent) root = n;
    digest += NodeDigest(ph, n, st, creates);
    changes->push_back({Change::kDataChanged, path});
    // ZooKeeper rewrites the stat node even for a same-size update.
    if (const std::string* q = QuotaRootOf(path)) AdjustQuota(*q, {0, diff});
    return {Err::kOk, type, path, st, {}};
  }

  OpResult SetAcl(const txn::SetAclTxn& s, std::vector<Change>* changes) {
    QFS_CHECK(Walkable(s.path()));
    QFS_CHECK(s.acl_size() > 0);
    Node* parent = nullptr;
    Node* n = Lookup(s.path(), &parent);
    QFS_CHECK(n != nullptr);
    int32_t creates = 0;
    Stat st = GetStat(n, &creates);
    uint64_t ph = PathHash(s.path());
    digest -= StatDigest(ph, n, st, creates);
    uint32_t id = acls.Ref(s.acl());  // before Unref: an unchanged list keeps its id
    acls.Unref(n->acl_id);
    n->acl_id = id;
    st.aversion = s.aversion();
    n = internal::UpdateNode(parent, n, st, creates, nullptr);
    if (!parent) root = n;
    digest += StatDigest(ph, n, st, creates);
    changes->push_back({Change::kAclChanged, s.path()});
    return {Err::kOk, OpType::kSetAcl, s.path(), st, {}};
  }

  OpResult Check(const txn::CheckTxn& c) {
    QFS_CHECK(Walkable(c.path()));
    const Node* n = Lookup(c.path());
    QFS_CHECK(n != nullptr);
    QFS_CHECK(c.version() == -1 || c.version() == GetStat(n).version);
    OpResult r;
    r.type = OpType::kCheck;
    r.path = c.path();
    return r;
  }

  void CreateSession(int64_t id, const txn::CreateSessionTxn& s) {
    // An id that reads as a container or TTL marker could not own ephemerals.
    QFS_CHECK(IsSessionOwner(id));
    QFS_CHECK(sessions.emplace(id, s.timeout_ms()).second);
  }

  void CloseSession(int64_t id, const txn::CloseSessionTxn& s, int64_t zxid,
                    std::vector<Change>* changes) {
    QFS_CHECK(sessions.count(id));
    for (const std::string& path : s.paths_to_delete()) {
      QFS_CHECK(Walkable(path));
      const Node* n = Lookup(path);
      QFS_CHECK(n != nullptr && GetStat(n).ephemeral_owner == id);
      Delete(path, zxid, changes);
    }
    // Prepare lists every ephemeral of the session; one left over would never be deleted.
    QFS_CHECK(ephemerals.count(id) == 0);
    sessions.erase(id);
  }

  // Preorder walk with full paths; children in no particular order.
  template <typename F>
  void Walk(F&& f) const {
    std::string path;
    std::vector<std::pair<const Node*, size_t>> stack{{root, 0}};
    while (!stack.empty()) {
      auto [n, parent_len] = stack.back();
      stack.pop_back();
      if (n == root) {
        path = "/";
      } else {
        AppendChildPath(&path, parent_len, n->name());
      }
      f(path, n);
      size_t len = path.size();
      internal::ForEachChild(n, [&](const Node* c) { stack.push_back({c, len}); });
    }
  }
};

DataTree::DataTree(TreeOptions options) : options_(options), impl_(std::make_unique<Impl>()) {
  Impl& im = *impl_;
  // ZooKeeper 3.8's initial tree: every stat zero; /zookeeper/config is world-readable only,
  // with the aversion -1 left by the setACL that made it so (ZOOKEEPER-2014).
  std::vector<Acl> open = OpenAcl();
  im.root = im.AddInitial(nullptr, "", open);
  Node* zk = im.AddInitial(im.root, "zookeeper", open);
  im.AddInitial(zk, "quota", open);
  Stat config;
  config.aversion = -1;
  im.AddInitial(zk, "config", {Acl{perm::kRead, Id{"world", "anyone"}}}, config);
  im.digest = ComputeDigest();
}

DataTree::~DataTree() = default;

ApplyResult DataTree::Apply(const txn::Txn& t) {
  Impl& im = *impl_;
  QFS_CHECK(t.zxid() > im.last_zxid);
  ApplyResult r;
  const int64_t zxid = t.zxid();
  const int64_t time = t.time_ms();
  switch (t.op_case()) {
    case txn::Txn::kCreate:
      r.results.push_back(im.Create(t.create(), zxid, time, &r.changes));
      break;
    case txn::Txn::kDelete:
      r.results.push_back(im.Delete(t.delete_().path(), zxid, &r.changes));
      break;
    case txn::Txn::kSetData:
      r.results.push_back(im.SetData(t.set_data(), zxid, time, &r.changes));
      break;
    case txn::Txn::kSetAcl:
      r.results.push_back(im.SetAcl(t.set_acl(), &r.changes));
      break;
    case txn::Txn::kAppend:
      r.results.push_back(im.Append(t.append(), zxid, time, &r.changes));
      break;
    case txn::Txn::kMulti:
      r.results.reserve(t.multi().ops_size());
      for (const txn::MultiOp& op : t.multi().ops()) {
        switch (op.op_case()) {
          case txn::MultiOp::kCreate:
            r.results.push_back(im.Create(op.create(), zxid, time, &r.changes));
            break;
          case txn::MultiOp::kDelete:
            r.results.push_back(im.Delete(op.delete_().path(), zxid, &r.changes));
            break;
          case txn::MultiOp::kSetData:
            r.results.push_back(im.SetData(op.set_data(), zxid, time, &r.changes));
            break;
          case txn::MultiOp::kCheck:
            r.results.push_back(im.Check(op.check()));
            break;
          case txn::MultiOp::OP_NOT_SET:
            QFS_CHECK(false);
        }
      }
      break;
    case txn::Txn::kReconfig:
      // /zookeeper/config takes the new configuration's text (docs/reconfig.md).
      r.results.push_back(im.SetData(t.reconfig().node(), zxid, time, &r.changes));
      r.results.back().data = t.reconfig().node().data();
      break;
    case txn::Txn::kCreateSession:
      // Session txns have no op type of their own: one bare kOk result.
      im.CreateSession(t.session_id(), t.create_session());
      r.results.emplace_back();
      break;
    case txn::Txn::kCloseSession:
      im.CloseSession(t.session_id(), t.close_session(), zxid, &r.changes);
      r.results.emplace_back();
      break;
    case txn::Txn::OP_NOT_SET:
      QFS_CHECK(false);
  }
  im.last_zxid = zxid;
  r.quota_crossings = std::move(im.crossings);
  im.crossings.clear();
  return r;
}

int64_t DataTree::last_zxid() const {
  return impl_->last_zxid;
}
uint64_t DataTree::digest() const {
  return impl_->digest;
}
size_t DataTree::node_count() const {
  return impl_->node_count;
}

uint64_t DataTree::ComputeDigest() const {
  uint64_t sum = 0;
  impl_->Walk([&](const std::string& path, const Node* n) {
    int32_t creates = 0;
    Stat s = GetStat(n, &creates);
    sum += impl_->NodeDigest(PathHash(path), n, s, creates);
  });
  return sum;
}

namespace {
// TreeOptions::static_config: /zookeeper/config before any reconfig txn set it.
bool ShowsStaticConfig(const TreeOptions& o, std::string_view path, const Stat& st) {
  return !o.static_config.empty() && st.mzxid == 0 && path == "/zookeeper/config";
}
}  // namespace

Err DataTree::GetData(std::string_view path, std::string* data, Stat* stat, bool* data_null) const {
  const Node* n = impl_->Find(path);
  if (!n) return Err::kNoNode;
  Stat st = GetStat(n);
  if (ShowsStaticConfig(options_, path, st)) {
    if (data) *data = options_.static_config;
    if (data_null) *data_null = false;
    st.version = -1;
    st.data_length = static_cast<int32_t>(options_.static_config.size());
    if (stat) *stat = st;
    return Err::kOk;
  }
  if (data) data->assign(n->data());
  if (data_null) *data_null = (n->kind & kNullDataBit) != 0;
  if (stat) *stat = st;
  return Err::kOk;
}

Err DataTree::Exists(std::string_view path, Stat* stat) const {
  const Node* n = impl_->Find(path);
  if (!n) return Err::kNoNode;
  if (stat) {
    *stat = GetStat(n);
    if (ShowsStaticConfig(options_, path, *stat)) {
      stat->version = -1;
      stat->data_length = static_cast<int32_t>(options_.static_config.size());
    }
  }
  return Err::kOk;
}

Err DataTree::GetChildren(std::string_view path, std::vector<std::string>* names,
                          Stat* stat) const {
  const Node* n = impl_->Find(path);
  if (!n) return Err::kNoNode;
  if (names) {
    names->clear();
    for (const Node* c : SortedChildren(n)) names->emplace_back(c->name());
  }
  if (stat) *stat = GetStat(n);
  return Err::kOk;
}

Err DataTree::GetAllChildrenNumber(std::string_view path, int32_t* count) const {
  const Node* n = impl_->Find(path);
  if (!n) return Err::kNoNode;
  size_t total = 0;
  if (n == impl_->root) {
    total = impl_->node_count - 1;
  } else {
    std::vector<const Node*> stack{n};
    while (!stack.empty()) {
      const Node* x = stack.back();
      stack.pop_back();
      total += x->num_children();
      internal::ForEachChild(x, [&](const Node* c) {
        if (c->children) stack.push_back(c);
      });
    }
  }
  if (count) *count = static_cast<int32_t>(std::min<size_t>(total, INT32_MAX));
  return Err::kOk;
}

std::vector<std::string> DataTree::GetEphemerals(int64_t session_id,
                                                 std::string_view prefix) const {
  std::vector<std::string> out;
  auto it = impl_->ephemerals.find(session_id);
  if (it == impl_->ephemerals.end()) return out;
  // A plain string prefix, as ZooKeeper's getEphemerals: "/a" also matches "/ab".
  for (auto p = it->second.lower_bound(prefix);
       p != it->second.end() && std::string_view(*p).substr(0, prefix.size()) == prefix; ++p) {
    out.push_back(*p);
  }
  return out;
}

Err DataTree::GetAcl(std::string_view path, std::vector<Acl>* acl, Stat* stat) const {
  const Node* n = impl_->Find(path);
  if (!n) return Err::kNoNode;
  if (acl) *acl = impl_->acls.Get(n->acl_id).acl;
  if (stat) *stat = GetStat(n);
  return Err::kOk;
}

Err DataTree::GetKind(std::string_view path, Kind* kind) const {
  const Node* n = impl_->Find(path);
  if (!n) return Err::kNoNode;
  if (kind) *kind = static_cast<Kind>(n->kind & ~kNullDataBit);
  return Err::kOk;
}

bool DataTree::GetMeta(std::string_view path, NodeMeta* out) const {
  const Node* n = impl_->Find(path);
  if (!n) return false;
  if (out) {
    out->stat = GetStat(n, &out->child_creates);
    out->acl = impl_->acls.Get(n->acl_id).acl;
    out->kind = static_cast<Kind>(n->kind & ~kNullDataBit);
  }
  return true;
}

std::optional<std::string> DataTree::QuotaRootOf(std::string_view path) const {
  if (!Walkable(path)) return std::nullopt;
  const std::string* q = impl_->QuotaRootOf(path);
  if (!q) return std::nullopt;
  return *q;
}

std::vector<std::string> DataTree::QuotaPaths() const {
  return {impl_->quota_paths.begin(), impl_->quota_paths.end()};
}

const std::map<int64_t, int32_t>& DataTree::sessions() const {
  return impl_->sessions;
}

std::vector<std::string> DataTree::ExpiryCandidates(int64_t now_ms) const {
  std::vector<std::string> out;
  // As ZooKeeper's ContainerManager: cversion > 0 keeps a new container that never had a child.
  for (const std::string& path : impl_->containers) {
    const Node* n = impl_->Lookup(path);
    if (n && !n->children && GetStat(n).cversion > 0) out.push_back(path);
  }
  for (const std::string& path : impl_->ttls) {
    const Node* n = impl_->Lookup(path);
    if (!n || n->children) continue;
    Stat s = GetStat(n);
    int64_t ttl = TtlOf(s.ephemeral_owner);
    if (ttl != 0 && now_ms - s.mtime > ttl) out.push_back(path);
  }
  std::sort(out.begin(), out.end());
  return out;
}

// Runs in a fork()ed child: no locks and no logging here.
Status DataTree::WriteSnapshot(const std::function<Status(std::string_view record)>& sink) const {
  const Impl& im = *impl_;
  txn::SnapRecord rec;
  std::string buf;
  auto emit = [&]() {
    buf.clear();
    if (!rec.SerializeToString(&buf)) return Internal("snapshot record serialization failed");
    return sink(buf);
  };

  txn::SnapHeader* h = rec.mutable_header();
  h->set_format(kSnapFormat);
  h->set_last_zxid(im.last_zxid);
  h->set_digest(im.digest);
  h->set_node_count(im.node_count);
  h->set_acl_count(im.acls.live_count());
  h->set_session_count(im.sessions.size());
  QFS_RETURN_IF_ERROR(emit());

  Status st;
  im.acls.ForEach([&](uint32_t id, const AclTable::Entry& e) {
    if (!st.ok()) return;
    txn::SnapAcl* a = rec.mutable_acl();
    a->Clear();
    a->set_id(id);
    for (const Acl& x : e.acl) {
      txn::Acl* p = a->add_acl();
      p->set_perms(x.perms);
      p->set_scheme(x.id.scheme);
      p->set_id(x.id.id);
    }
    st = emit();
  });
  QFS_RETURN_IF_ERROR(st);

  for (const auto& [id, timeout] : im.sessions) {
    txn::SnapSession* s = rec.mutable_session();
    s->set_id(id);
    s->set_timeout_ms(timeout);
    QFS_RETURN_IF_ERROR(emit());
  }

  // Preorder, siblings sorted by name: equal trees give equal bytes.
  std::string path;
  std::vector<std::pair<const Node*, size_t>> stack{{im.root, 0}};
  while (!stack.empty()) {
    auto [n, parent_len] = stack.back();
    stack.pop_back();
    if (n == im.root) {
      path = "/";
    } else {
      AppendChildPath(&path, parent_len, n->name());
    }
    txn::SnapNode* sn = rec.mutable_node();
    sn->set_path(path);
    sn->set_data(n->data().data(), n->data().size());
    int32_t creates = 0;
    Stat s = GetStat(n, &creates);
    sn->set_czxid(s.czxid);
    sn->set_mzxid(s.mzxid);
    sn->set_ctime(s.ctime);
    sn->set_mtime(s.mtime);
    sn->set_version(s.version);
    sn->set_cversion(s.cversion);
    sn->set_child_deletes(WrapSub(s.cversion, creates));
    sn->set_aversion(s.aversion);
    sn->set_ephemeral_owner(s.ephemeral_owner);
    sn->set_pzxid(s.pzxid);
    sn->set_acl_id(n->acl_id);
    sn->set_kind(n->kind);
    QFS_RETURN_IF_ERROR(emit());
    if (n->children) {
      std::vector<const Node*> kids = SortedChildren(n);
      for (auto it = kids.rbegin(); it != kids.rend(); ++it) stack.push_back({*it, path.size()});
    }
  }
  return Status::Ok();
}

Result<std::unique_ptr<DataTree>> DataTree::LoadSnapshot(
    TreeOptions options, const std::function<bool(std::string_view* record)>& next) {
  return Load(options, next, true);
}

Result<std::unique_ptr<DataTree>> DataTree::LoadForeignRecords(
    TreeOptions options, const std::function<bool(std::string_view* record)>& next) {
  return Load(options, next, false);
}

Result<std::unique_ptr<DataTree>> DataTree::Load(
    TreeOptions options, const std::function<bool(std::string_view* record)>& next,
    bool check_digest) {
  auto tree = std::make_unique<DataTree>(options);
  Impl& im = *tree->impl_;
  im.Clear();

  enum Phase { kHeader, kAcls, kSessions, kNodes };
  Phase phase = kHeader;
  txn::SnapHeader header;
  txn::SnapRecord rec;
  // The current preorder chain: path lengths of the last node's ancestors (and itself) in `cur`.
  std::string cur;
  std::vector<std::pair<size_t, Node*>> chain;
  std::string_view bytes;
  while (next(&bytes)) {
    if (!rec.ParseFromArray(bytes.data(), static_cast<int>(bytes.size()))) {
      return Corruption("snapshot: unparsable record");
    }
    switch (rec.rec_case()) {
      case txn::SnapRecord::kHeader:
        if (phase != kHeader) return Corruption("snapshot: second header");
        header = rec.header();
        if (header.format() != kSnapFormat) return Corruption("snapshot: unknown format");
        im.last_zxid = header.last_zxid();
        phase = kAcls;
        break;
      case txn::SnapRecord::kAcl: {
        if (phase != kAcls) return Corruption("snapshot: ACL record out of place");
        const txn::SnapAcl& a = rec.acl();
        if (a.id() >= kMaxSnapAclId || a.acl_size() == 0 ||
            !im.acls.Install(a.id(), internal::AclFromProto(a.acl()))) {
          return Corruption("snapshot: bad ACL record");
        }
        break;
      }
      case txn::SnapRecord::kSession: {
        if (phase == kHeader || phase == kNodes) {
          return Corruption("snapshot: session record out of place");
        }
        phase = kSessions;
        const txn::SnapSession& s = rec.session();
        if (!IsSessionOwner(s.id()) || !im.sessions.emplace(s.id(), s.timeout_ms()).second) {
          return Corruption("snapshot: bad session record");
        }
        break;
      }
      case txn::SnapRecord::kNode: {
        if (phase == kHeader) return Corruption("snapshot: node before header");
        phase = kNodes;
        const txn::SnapNode& sn = rec.node();
        const std::string& path = sn.path();
        if (!Walkable(path)) return Corruption("snapshot: bad node path");
        if ((sn.kind() & ~kNullDataBit) > static_cast<uint32_t>(Kind::kDirectory)) {
          return Corruption("snapshot: bad node kind");
        }
        int64_t owner = sn.ephemeral_owner();
        if (IsSessionOwner(owner) && !im.sessions.count(owner)) {
          return Corruption("snapshot: ephemeral of an unknown session");
        }
        if (!im.acls.RefInstalled(sn.acl_id())) {
          return Corruption("snapshot: node with unknown ACL id");
        }
        Stat st;
        st.czxid = sn.czxid();
        st.mzxid = sn.mzxid();
        st.ctime = sn.ctime();
        st.mtime = sn.mtime();
        st.version = sn.version();
        st.cversion = sn.cversion();
        st.aversion = sn.aversion();
        st.ephemeral_owner = owner;
        st.pzxid = sn.pzxid();
        const int32_t creates = WrapSub(st.cversion, sn.child_deletes());
        Node* n;
        if (!im.root) {
          if (path != "/") return Corruption("snapshot: first node is not the root");
          n = internal::NewNode("", sn.data(), st, creates, sn.acl_id(),
                                static_cast<Kind>(sn.kind()));
          im.root = n;
        } else {
          std::string_view parent_path, name;
          if (path.size() == 1) return Corruption("snapshot: second root");
          SplitPath(path, &parent_path, &name);
          while (!chain.empty() && chain.back().first > parent_path.size()) chain.pop_back();
          if (chain.empty() || chain.back().first != parent_path.size() ||
              std::string_view(cur).substr(0, parent_path.size()) != parent_path) {
            return Corruption("snapshot: node out of order");
          }
          Node* parent = chain.back().second;
          if (IsSessionOwner(GetStat(parent).ephemeral_owner)) {
            return Corruption("snapshot: child of an ephemeral");
          }
          uint64_t h = NameHash(name);
          if (internal::FindChild(parent, name, h)) return Corruption("snapshot: duplicate node");
          n = internal::NewNode(name, sn.data(), st, creates, sn.acl_id(),
                                static_cast<Kind>(sn.kind()));
          internal::AddChild(parent, n, h);
        }
        im.node_count++;
        im.IndexAdd(path, owner);
        cur = path;
        chain.push_back({path.size(), n});
        break;
      }
      case txn::SnapRecord::REC_NOT_SET:
        return Corruption("snapshot: empty record");
    }
  }
  if (phase == kHeader || !im.root) return Corruption("snapshot: truncated (no header or root)");
  if (im.node_count != header.node_count() || im.acls.live_count() != header.acl_count() ||
      im.sessions.size() != header.session_count()) {
    return Corruption("snapshot: record counts differ from the header");
  }
  if (!im.acls.AllReferenced()) return Corruption("snapshot: unreferenced ACL entry");
  // Quota usage is in the stat nodes' data, as written; only the index is rebuilt.
  im.IndexQuotas();
  im.digest = tree->ComputeDigest();
  if (check_digest && im.digest != header.digest()) {
    return Corruption("snapshot: digest mismatch");
  }
  return tree;
}

size_t DataTree::ApproxDataBytes() const {
  size_t total = 0;
  // ZooKeeper keys the root as "", so it adds nothing for its path.
  impl_->Walk([&](const std::string& path, const Node* n) {
    total += (path.size() > 1 ? path.size() : 0) + n->data().size();
  });
  return total;
}

size_t DataTree::ApproxMemoryBytes() const {
  size_t total = 0;
  impl_->Walk([&](const std::string&, const Node* n) {
    total += MallocChunk(internal::NodeAllocBytes(n));
    if (n->children) total += MallocChunk(internal::ChildSetAllocBytes(n));
  });
  total += impl_->acls.ApproxBytes();
  auto set_bytes = [](const std::set<std::string, std::less<>>& s) {
    size_t b = 0;
    for (const std::string& p : s) b += 48 + sizeof(std::string) + p.capacity();
    return b;
  };
  for (const auto& [id, paths] : impl_->ephemerals) total += 64 + set_bytes(paths);
  total += set_bytes(impl_->containers) + set_bytes(impl_->ttls);
  total += impl_->sessions.size() * 48;
  return total;
}

}  // namespace qfs::tree
