// The leader's prepare step, modelled on ZooKeeper's PrepRequestProcessor: every check runs
// against the tree as it will be once all earlier prepared txns are applied. That future state is
// kept as one record per touched path (like ZooKeeper's ChangeRecord), tagged with the zxid of
// the last txn that changed it. A request builds its changes in a private overlay first, so a
// failing op (or multi) leaves the pending view untouched.
#include "daemon/tree/prepare.h"

#include <cstdio>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "consensus/util/result.h"

namespace qfs::tree {
namespace {

struct NodeRec {
  bool exists = false;
  Stat stat;                  // num_children included
  int32_t child_creates = 0;  // numbers sequential children; stat.cversion counts deletes too
  std::vector<Acl> acl;
  Kind kind = Kind::kUnset;
  int64_t zxid = -1;  // the txn that last changed the node; -1 = read from the tree
};

struct SessionRec {
  bool live = false;
  int64_t zxid = -1;
};

// A change of quota usage made by a txn not applied yet.
struct QuotaRec {
  int64_t zxid = -1;
  std::string qpath;
  QuotaDelta d;
};

using NodeMap = std::map<std::string, NodeRec, std::less<>>;
using SessionMap = std::map<int64_t, SessionRec>;
using QuotaList = std::vector<QuotaRec>;

// ZooKeeper's checkAndIncVersion: -1 means "any"; the next version never becomes -1 (so it stays
// checkable, ZOOKEEPER-4743) and wraps like a Java int.
int32_t NextVersion(int32_t v) {
  const auto next = static_cast<int32_t>(static_cast<uint32_t>(v) + 1u);
  return next == -1 ? 0 : next;
}
bool VersionMatches(int32_t current, int32_t expected) {
  return expected == -1 || expected == current;
}
int32_t WrapInc(int32_t v) {
  return static_cast<int32_t>(static_cast<uint32_t>(v) + 1u);
}

// The nodes ZooKeeper refuses to delete (DataTree.isSpecialPath).
bool IsSpecialPath(std::string_view p) {
  return p == "/" || p == "/zookeeper" || p == "/zookeeper/quota" || p == "/zookeeper/config";
}

bool ValidMode(CreateMode m) {
  const auto v = static_cast<int32_t>(m);
  return v >= 0 && v <= static_cast<int32_t>(CreateMode::kPersistentSequentialWithTtl);
}

void ToProto(const std::vector<Acl>& in, google::protobuf::RepeatedPtrField<txn::Acl>* out) {
  for (const Acl& a : in) {
    txn::Acl* p = out->Add();
    p->set_perms(a.perms);
    p->set_scheme(a.id.scheme);
    p->set_id(a.id.id);
  }
}

}  // namespace

struct Preparer::Impl {
  const DataTree& tree;
  NodeMap nodes;
  SessionMap sessions;
  QuotaList quota;
  explicit Impl(const DataTree& t) : tree(t) {}
};

namespace {

// The view one request is prepared against: its own changes, then the pending ones, then the tree.
class View {
 public:
  View(const DataTree& tree, const NodeMap& pending, const SessionMap& pending_sessions,
       const QuotaList& pending_quota, int64_t zxid, int64_t time_ms)
      : tree_(tree),
        pending_(pending),
        pending_sessions_(pending_sessions),
        pending_quota_(pending_quota),
        zxid_(zxid),
        time_ms_(time_ms) {}

  // The node's current record, or nullptr if it does not exist.
  const NodeRec* Get(std::string_view path) {
    if (auto it = local_.find(path); it != local_.end()) {
      return it->second.exists ? &it->second : nullptr;
    }
    if (auto it = pending_.find(path); it != pending_.end()) {
      return it->second.exists ? &it->second : nullptr;
    }
    if (auto it = tree_cache_.find(path); it != tree_cache_.end()) return &it->second;
    NodeMeta meta;
    if (!tree_.GetMeta(path, &meta)) return nullptr;
    NodeRec rec{true, meta.stat, meta.child_creates, std::move(meta.acl), meta.kind, -1};
    return &tree_cache_.emplace(std::string(path), std::move(rec)).first->second;
  }
  void Put(std::string_view path, NodeRec rec) {
    rec.zxid = zxid_;
    local_[std::string(path)] = std::move(rec);
  }

  bool SessionLive(int64_t id) const {
    if (auto it = local_sessions_.find(id); it != local_sessions_.end()) return it->second.live;
    if (auto it = pending_sessions_.find(id); it != pending_sessions_.end()) return it->second.live;
    return tree_.sessions().count(id) > 0;
  }
  void PutSession(int64_t id, bool live) { local_sessions_[id] = SessionRec{live, zxid_}; }

  // The session's ephemerals as they will be: the tree's, minus pending deletes, plus pending
  // creates.
  std::set<std::string> Ephemerals(int64_t session) const {
    std::set<std::string> out;
    for (std::string& p : tree_.GetEphemerals(session, "/")) out.insert(std::move(p));
    for (const NodeMap* m : {&pending_, &local_}) {
      for (const auto& [path, rec] : *m) {
        if (rec.exists && rec.stat.ephemeral_owner == session) {
          out.insert(path);
        } else {
          out.erase(path);  // deleted, or recreated by someone else
        }
      }
    }
    return out;
  }

  // Usage under `qpath` that txns not yet applied (and this request) add.
  QuotaDelta QuotaPending(const std::string& qpath) const {
    QuotaDelta sum;
    for (const QuotaList* l : {&pending_quota_, &local_quota_}) {
      for (const QuotaRec& r : *l) {
        if (r.qpath != qpath) continue;
        sum.count += r.d.count;
        sum.bytes += r.d.bytes;
      }
    }
    return sum;
  }
  void AddQuota(std::string qpath, QuotaDelta d) {
    local_quota_.push_back({zxid_, std::move(qpath), d});
  }

  int64_t zxid() const { return zxid_; }
  int64_t time_ms() const { return time_ms_; }
  const DataTree& tree() const { return tree_; }

  void CommitTo(NodeMap* nodes, SessionMap* sessions, QuotaList* quota) {
    for (auto& [path, rec] : local_) (*nodes)[path] = std::move(rec);
    for (auto& [id, rec] : local_sessions_) (*sessions)[id] = rec;
    for (QuotaRec& r : local_quota_) quota->push_back(std::move(r));
  }

 private:
  const DataTree& tree_;
  const NodeMap& pending_;
  const SessionMap& pending_sessions_;
  const QuotaList& pending_quota_;
  const int64_t zxid_;
  const int64_t time_ms_;
  NodeMap local_;
  SessionMap local_sessions_;
  QuotaList local_quota_;
  NodeMap tree_cache_;
};

// Quotas (docs/quotas.md): records the usage change `d` a write makes under the quota'd path
// above `path`, after checking the hard limits if `check` (create, setData, append). The
// quota'd paths and limits are the tree's (applied) ones, as ZooKeeper's; the usage also counts
// every txn prepared but not applied yet. Nothing to track when quotas are not enforced.
Err TrackQuota(View& v, std::string_view path, QuotaDelta d, bool check) {
  if (!v.tree().options().enforce_quota) return Err::kOk;
  std::optional<std::string> qpath = v.tree().QuotaRootOf(path);
  if (!qpath) return Err::kOk;
  if (check) {
    if (Err e = CheckQuota(v.tree(), *qpath, d, v.QuotaPending(*qpath)); e != Err::kOk) return e;
  }
  v.AddQuota(std::move(*qpath), d);
  return Err::kOk;
}

// Mirrors ZooKeeper's checks and their order (pRequest2TxnCreate). Differences: the path is fully
// validated first (ZooKeeper's client does that before sending), and the data size limit
// (jute.maxbuffer, a connection-level check in ZooKeeper) comes right after.
Err PrepareCreate(View& v, const Request& req, const Op& op, txn::CreateTxn* out) {
  if (!ValidMode(op.mode)) return Err::kBadArguments;  // CreateMode.fromFlag
  // EphemeralType.validateTTL: TTL modes need 0 < ttl <= max; ttl_ms 0 stands for "no ttl" (the
  // -1 of a plain create), so only a positive ttl is rejected on other modes.
  if (IsTtl(op.mode)) {
    if (op.ttl_ms <= 0 || op.ttl_ms > kMaxTtlMs) return Err::kBadArguments;
  } else if (op.ttl_ms > 0) {
    return Err::kBadArguments;
  }
  // An ephemeral needs a live session (checkGlobalSession); otherwise it could never be removed.
  if (IsEphemeral(op.mode) && (!IsSessionOwner(req.session_id) || !v.SessionLive(req.session_id))) {
    return Err::kSessionExpired;
  }
  const bool sequential = IsSequential(op.mode);
  if (ValidatePath(op.path, sequential) != Err::kOk) return Err::kBadArguments;
  if (op.data.size() > v.tree().options().max_data_bytes) return Err::kBadArguments;
  if (static_cast<uint8_t>(op.kind) > static_cast<uint8_t>(Kind::kDirectory)) {
    return Err::kBadArguments;
  }
  std::vector<Acl> acl;
  if (Err e = FixupAcl(op.acl, req.auth, &acl); e != Err::kOk) return e;

  // The parent is everything before the last '/'; for "/" and "/x" that is the root.
  const size_t slash = op.path.rfind('/');
  const std::string parent_path = slash == 0 ? "/" : op.path.substr(0, slash);
  const NodeRec* parent = v.Get(parent_path);
  if (parent == nullptr) return Err::kNoNode;
  if (!AclAllows(parent->acl, perm::kCreate, req.auth)) return Err::kNoAuth;

  std::string path = op.path;
  if (sequential) {
    char suffix[16];
    std::snprintf(suffix, sizeof(suffix), "%010d", parent->child_creates);
    path += suffix;
  }
  if (v.Get(path) != nullptr) return Err::kNodeExists;
  // Only a session-owned parent refuses children; containers and TTL nodes take them.
  if (IsSessionOwner(parent->stat.ephemeral_owner)) return Err::kNoChildrenForEphemerals;
  const QuotaDelta added{1, static_cast<int64_t>(op.data.size())};
  if (Err e = TrackQuota(v, path, added, /*check=*/true); e != Err::kOk) return e;

  int64_t owner = 0;
  if (op.mode == CreateMode::kContainer) {
    owner = kContainerOwner;
  } else if (IsTtl(op.mode)) {
    owner = TtlOwner(op.ttl_ms);
  } else if (IsEphemeral(op.mode)) {
    owner = req.session_id;
  }

  NodeRec new_parent = *parent;
  new_parent.stat.num_children++;
  new_parent.stat.cversion = WrapInc(parent->stat.cversion);
  new_parent.child_creates = WrapInc(parent->child_creates);
  new_parent.stat.pzxid = v.zxid();

  out->set_path(path);
  out->set_data(op.data);
  out->set_data_null(op.data_null);
  ToProto(acl, out->mutable_acl());
  out->set_ephemeral_owner(owner);
  out->set_parent_cversion(new_parent.child_creates);
  out->set_kind(static_cast<uint32_t>(op.kind));

  NodeRec node;
  node.exists = true;
  node.stat.czxid = node.stat.mzxid = node.stat.pzxid = v.zxid();
  node.stat.ctime = node.stat.mtime = v.time_ms();
  node.stat.ephemeral_owner = owner;
  node.stat.data_length = static_cast<int32_t>(op.data.size());
  node.acl = std::move(acl);
  node.kind = op.kind;
  v.Put(parent_path, std::move(new_parent));
  v.Put(path, std::move(node));
  return Err::kOk;
}

// Removes `path` (known to exist under an existing parent) from the view.
void RemoveNode(View& v, const std::string& path) {
  const NodeRec* node = v.Get(path);
  QFS_CHECK(node != nullptr);
  (void)TrackQuota(v, path, {-1, -node->stat.data_length}, /*check=*/false);  // cannot fail
  const size_t slash = path.rfind('/');
  const std::string parent_path = slash == 0 ? "/" : path.substr(0, slash);
  const NodeRec* parent = v.Get(parent_path);
  QFS_CHECK(parent != nullptr);
  NodeRec new_parent = *parent;
  new_parent.stat.num_children--;
  // As ZooKeeper 3.8: cversion counts the delete, sequential numbering does not.
  new_parent.stat.cversion = WrapInc(parent->stat.cversion);
  new_parent.stat.pzxid = v.zxid();
  v.Put(parent_path, std::move(new_parent));
  v.Put(path, NodeRec{});
}

// ZooKeeper checks: special paths, parent, DELETE on the parent, node, version, children. The path
// is validated too (ZooKeeper's client does it; the tree's reads require valid paths).
Err PrepareDelete(View& v, const Request& req, const Op& op, txn::DeleteTxn* out) {
  if (ValidatePath(op.path) != Err::kOk || IsSpecialPath(op.path)) return Err::kBadArguments;
  const NodeRec* parent = v.Get(ParentPath(op.path));
  if (parent == nullptr) return Err::kNoNode;
  if (!AclAllows(parent->acl, perm::kDelete, req.auth)) return Err::kNoAuth;
  const NodeRec* node = v.Get(op.path);
  if (node == nullptr) return Err::kNoNode;
  if (!VersionMatches(node->stat.version, op.version)) return Err::kBadVersion;
  if (node->stat.num_children > 0) return Err::kNotEmpty;
  out->set_path(op.path);
  RemoveNode(v, op.path);
  return Err::kOk;
}

// The reaper's request: no permission check. ZooKeeper only refuses session ephemerals (with
// BADVERSION); we also refuse plain persistent nodes and nodes no longer expired, since a node
// may have been replaced or touched after the reaper picked it.
Err PrepareDeleteContainer(View& v, const Op& op, txn::DeleteTxn* out) {
  if (ValidatePath(op.path) != Err::kOk || IsSpecialPath(op.path)) return Err::kBadArguments;
  const NodeRec* node = v.Get(op.path);
  if (node == nullptr) return Err::kNoNode;
  if (node->stat.num_children > 0) return Err::kNotEmpty;
  const int64_t owner = node->stat.ephemeral_owner;
  if (owner == kContainerOwner) {
    if (node->stat.cversion <= 0) return Err::kBadVersion;  // never had children
  } else if (IsTtlOwner(owner)) {
    if (node->stat.mtime + TtlOf(owner) >= v.time_ms()) return Err::kBadVersion;  // not expired
  } else {
    return Err::kBadVersion;
  }
  out->set_path(op.path);
  RemoveNode(v, op.path);
  return Err::kOk;
}

// ZooKeeper order: path, node, WRITE, (quota / size), version.
Err PrepareSetData(View& v, const Request& req, const Op& op, txn::SetDataTxn* out) {
  if (ValidatePath(op.path) != Err::kOk) return Err::kBadArguments;
  if (op.data.size() > v.tree().options().max_data_bytes) return Err::kBadArguments;
  const NodeRec* node = v.Get(op.path);
  if (node == nullptr) return Err::kNoNode;
  if (!AclAllows(node->acl, perm::kWrite, req.auth)) return Err::kNoAuth;
  const QuotaDelta grown{0, static_cast<int64_t>(op.data.size()) - node->stat.data_length};
  if (Err e = TrackQuota(v, op.path, grown, /*check=*/true); e != Err::kOk) return e;
  if (!VersionMatches(node->stat.version, op.version)) return Err::kBadVersion;
  NodeRec rec = *node;
  rec.stat.version = NextVersion(node->stat.version);
  rec.stat.mtime = v.time_ms();
  rec.stat.mzxid = v.zxid();
  rec.stat.data_length = static_cast<int32_t>(op.data.size());
  out->set_path(op.path);
  out->set_data(op.data);
  out->set_data_null(op.data_null);
  out->set_version(rec.stat.version);
  v.Put(op.path, std::move(rec));
  return Err::kOk;
}

// As setData, but the size checked is the node's size once every earlier txn is applied plus the
// appended bytes; a limit crossed is MARSHALLINGERROR (the mount's EFBIG), a whole write refused.
// The version must be -1: an append never races on a version, that is its point.
Err PrepareAppend(View& v, const Request& req, const Op& op, txn::AppendTxn* out) {
  if (ValidatePath(op.path) != Err::kOk || op.version != -1) return Err::kBadArguments;
  const NodeRec* node = v.Get(op.path);
  if (node == nullptr) return Err::kNoNode;
  if (!AclAllows(node->acl, perm::kWrite, req.auth)) return Err::kNoAuth;
  const uint64_t size = static_cast<uint64_t>(node->stat.data_length) + op.data.size();
  if (size > v.tree().options().max_data_bytes) return Err::kMarshallingError;
  const QuotaDelta grown{0, static_cast<int64_t>(op.data.size())};
  if (Err e = TrackQuota(v, op.path, grown, /*check=*/true); e != Err::kOk) return e;
  NodeRec rec = *node;
  rec.stat.version = NextVersion(node->stat.version);
  rec.stat.mtime = v.time_ms();
  rec.stat.mzxid = v.zxid();
  rec.stat.data_length = static_cast<int32_t>(size);
  out->set_path(op.path);
  out->set_data(op.data);
  out->set_version(rec.stat.version);
  v.Put(op.path, std::move(rec));
  return Err::kOk;
}

// ZooKeeper order: path, ACL fixup, node, ADMIN, aversion.
Err PrepareSetAcl(View& v, const Request& req, const Op& op, txn::SetAclTxn* out) {
  if (ValidatePath(op.path) != Err::kOk) return Err::kBadArguments;
  std::vector<Acl> acl;
  if (Err e = FixupAcl(op.acl, req.auth, &acl); e != Err::kOk) return e;
  const NodeRec* node = v.Get(op.path);
  if (node == nullptr) return Err::kNoNode;
  if (!AclAllows(node->acl, perm::kAdmin, req.auth)) return Err::kNoAuth;
  if (!VersionMatches(node->stat.aversion, op.version)) return Err::kBadVersion;
  NodeRec rec = *node;
  rec.stat.aversion = NextVersion(node->stat.aversion);
  rec.acl = acl;
  out->set_path(op.path);
  ToProto(acl, out->mutable_acl());
  out->set_aversion(rec.stat.aversion);
  v.Put(op.path, std::move(rec));
  return Err::kOk;
}

// ZooKeeper order: path, node, READ, version. Changes nothing.
Err PrepareCheck(View& v, const Request& req, const Op& op, txn::CheckTxn* out) {
  if (ValidatePath(op.path) != Err::kOk) return Err::kBadArguments;
  const NodeRec* node = v.Get(op.path);
  if (node == nullptr) return Err::kNoNode;
  if (!AclAllows(node->acl, perm::kRead, req.auth)) return Err::kNoAuth;
  if (!VersionMatches(node->stat.version, op.version)) return Err::kBadVersion;
  out->set_path(op.path);
  out->set_version(node->stat.version);
  return Err::kOk;
}

Err PrepareSingle(View& v, const Request& req, const Op& op, txn::Txn* t) {
  switch (op.type) {
    case OpType::kCreate:
      return PrepareCreate(v, req, op, t->mutable_create());
    case OpType::kDelete:
      return PrepareDelete(v, req, op, t->mutable_delete_());
    case OpType::kSetData:
      return PrepareSetData(v, req, op, t->mutable_set_data());
    case OpType::kSetAcl:
      return PrepareSetAcl(v, req, op, t->mutable_set_acl());
    case OpType::kDeleteContainer:
      return PrepareDeleteContainer(v, op, t->mutable_delete_());
    case OpType::kAppend:
      return PrepareAppend(v, req, op, t->mutable_append());
    case OpType::kCheck:
      return Err::kUnimplemented;  // only inside a multi, as ZooKeeper 3.9
  }
  return Err::kUnimplemented;
}

Err PrepareMultiOp(View& v, const Request& req, const Op& op, txn::MultiOp* m) {
  switch (op.type) {
    case OpType::kCreate:
      return PrepareCreate(v, req, op, m->mutable_create());
    case OpType::kDelete:
      return PrepareDelete(v, req, op, m->mutable_delete_());
    case OpType::kSetData:
      return PrepareSetData(v, req, op, m->mutable_set_data());
    case OpType::kCheck:
      return PrepareCheck(v, req, op, m->mutable_check());
    case OpType::kSetAcl:
    case OpType::kDeleteContainer:
    case OpType::kAppend:
      return Err::kUnimplemented;  // not multi ops
  }
  return Err::kUnimplemented;
}

// ZooKeeper's checks for reconfig and their order (PrepRequestProcessor): reconfigEnabled,
// standalone, a reconfig in progress, fromConfig, the new configuration (parse, at least one
// voter), a synced quorum of it, and only then WRITE on /zookeeper/config. The txn sets
// /zookeeper/config to the new text with version -1, as ZooKeeper's SetDataTxn for it. There is no
// skipACL: super (or an identity an ACL set on /zookeeper/config grants WRITE) is needed.
Err PrepareReconfig(View& v, const Request& req, const ReconfigContext* rc, txn::ReconfigTxn* out) {
  if (rc == nullptr) return Err::kUnimplemented;
  if (!rc->enabled) return Err::kReconfigDisabled;
  static constexpr std::string_view kConfigNode = "/zookeeper/config";
  if (rc->standalone) return Err::kUnimplemented;
  if (rc->in_progress) return Err::kReconfigInProgress;
  const ReconfigSpec& spec = req.reconfig;
  if (spec.from_config != -1 && static_cast<uint64_t>(spec.from_config) != rc->version) {
    return Err::kBadVersion;
  }
  Result<ServerList> next =
      spec.new_members ? ParseServers(*spec.new_members)
                       : ApplyIncremental(rc->current, spec.joining ? &*spec.joining : nullptr,
                                          spec.leaving ? &*spec.leaving : nullptr);
  if (!next.ok()) return Err::kBadArguments;
  if (VoterCount(*next) < 1) return Err::kBadArguments;
  if (rc->check_quorum) {
    if (Err e = rc->check_quorum(*next); e != Err::kOk) return e;
  }
  const NodeRec* node = v.Get(kConfigNode);
  QFS_CHECK(node != nullptr);
  if (!AclAllows(node->acl, perm::kWrite, req.auth)) return Err::kNoAuth;
  const std::string text = ConfigText(*next, static_cast<uint64_t>(v.zxid()));
  for (const txn::ServerSpec& s : *next) *out->add_servers() = s;
  txn::SetDataTxn* set = out->mutable_node();
  set->set_path(std::string(kConfigNode));
  set->set_data(text);
  set->set_version(-1);
  NodeRec rec = *node;
  rec.stat.version = -1;
  rec.stat.mtime = v.time_ms();
  rec.stat.mzxid = v.zxid();
  rec.stat.data_length = static_cast<int32_t>(text.size());
  v.Put(kConfigNode, std::move(rec));
  return Err::kOk;
}

}  // namespace

Preparer::Preparer(const DataTree& tree) : impl_(std::make_unique<Impl>(tree)) {}
Preparer::~Preparer() = default;

Prepared Preparer::Prepare(const Request& req, int64_t zxid, int64_t time_ms,
                           const ReconfigContext* reconfig) {
  Prepared result;
  View v(impl_->tree, impl_->nodes, impl_->sessions, impl_->quota, zxid, time_ms);
  txn::Txn t;
  t.set_zxid(zxid);
  t.set_time_ms(time_ms);
  t.set_session_id(req.session_id);
  t.set_cxid(req.cxid);

  Err err = Err::kOk;
  switch (req.type) {
    case RequestType::kOp:
      err = req.ops.size() == 1 ? PrepareSingle(v, req, req.ops[0], &t) : Err::kBadArguments;
      break;
    case RequestType::kMulti: {
      txn::MultiTxn* multi = t.mutable_multi();
      size_t failed = req.ops.size();
      for (size_t i = 0; i < req.ops.size(); ++i) {
        err = PrepareMultiOp(v, req, req.ops[i], multi->add_ops());
        if (err != Err::kOk) {
          failed = i;
          break;
        }
      }
      if (err != Err::kOk) {
        // As ZooKeeper reports a failed multi: OK before the failing op, RUNTIMEINCONSISTENCY
        // after.
        for (size_t i = 0; i < req.ops.size(); ++i) {
          OpResult r;
          r.type = req.ops[i].type;
          r.err = i < failed ? Err::kOk : i == failed ? err : Err::kRuntimeInconsistency;
          result.multi_results.push_back(std::move(r));
        }
      }
      break;
    }
    case RequestType::kCreateSession:
      // ZooKeeper's leader allocates unique ids and does not check; here a reused live id is
      // refused, and ids that look like container / TTL owners are malformed.
      if (!IsSessionOwner(req.session_id) || req.session_timeout_ms <= 0) {
        err = Err::kBadArguments;
      } else if (v.SessionLive(req.session_id)) {
        err = Err::kSessionExpired;
      } else {
        t.mutable_create_session()->set_timeout_ms(req.session_timeout_ms);
        v.PutSession(req.session_id, true);
      }
      break;
    case RequestType::kReconfig:
      err = PrepareReconfig(v, req, reconfig, t.mutable_reconfig());
      break;
    case RequestType::kCloseSession:
      if (!v.SessionLive(req.session_id)) {
        err = Err::kSessionExpired;
      } else {
        txn::CloseSessionTxn* c = t.mutable_close_session();
        for (const std::string& path : v.Ephemerals(req.session_id)) {
          c->add_paths_to_delete(path);
          RemoveNode(v, path);
        }
        v.PutSession(req.session_id, false);
      }
      break;
  }

  result.err = err;
  if (err == Err::kOk) {
    v.CommitTo(&impl_->nodes, &impl_->sessions, &impl_->quota);
    result.txn = std::move(t);
  }
  return result;
}

void Preparer::Applied(int64_t zxid) {
  std::erase_if(impl_->nodes, [zxid](const auto& kv) { return kv.second.zxid <= zxid; });
  std::erase_if(impl_->sessions, [zxid](const auto& kv) { return kv.second.zxid <= zxid; });
  std::erase_if(impl_->quota, [zxid](const QuotaRec& r) { return r.zxid <= zxid; });
}

void Preparer::Reset() {
  impl_->nodes.clear();
  impl_->sessions.clear();
  impl_->quota.clear();
}

size_t Preparer::pending_count() const {
  return impl_->nodes.size() + impl_->sessions.size();
}

}  // namespace qfs::tree
