#include "daemon/cli/import_zookeeper.h"

#include <dirent.h>
#include <sys/stat.h>

#include <cerrno>
#include <cinttypes>
#include <cstdio>
#include <cstring>
#include <map>
#include <memory>
#include <set>
#include <unordered_map>
#include <utility>

#include "consensus/storage/epoch_file.h"
#include "consensus/storage/file_util.h"
#include "consensus/storage/snapshot_file.h"
#include "daemon/cli/zk_format.h"
#include "daemon/proto/txn.pb.h"
#include "daemon/tree/data_tree.h"

namespace qfs::zkimport {

namespace {

std::string Hex(uint64_t v) {
  char buf[32];
  snprintf(buf, sizeof buf, "0x%" PRIx64, v);
  return buf;
}

std::string ParentOf(const std::string& path) {
  size_t slash = path.rfind('/');
  return slash == 0 ? "/" : path.substr(0, slash);
}

std::string NameOf(const std::string& path) {
  return path.substr(path.rfind('/') + 1);
}

// ZooKeeper's DataTree, as much of it as replaying a log on a snapshot needs. ZooKeeper's
// snapshots are fuzzy (taken while txns apply), so replay follows its rules: a create of an
// existing node or a change to a missing one does nothing, and a parent's cversion and pzxid
// only move forward.
class ZkTree {
 public:
  struct Node {
    std::string data;
    bool data_null = false;
    uint32_t acl = 0;  // index into acl_lists_
    ZkStat stat;
    std::set<std::string> children;  // names, byte order
  };

  uint32_t InternAcl(const std::vector<tree::Acl>& acl) {
    std::string key;
    for (const auto& a : acl) {
      key += std::to_string(a.perms) + '\0' + a.id.scheme + '\0' + a.id.id + '\0';
    }
    auto [it, added] = acl_index_.emplace(key, static_cast<uint32_t>(acl_lists_.size()));
    if (added) acl_lists_.push_back(acl);
    return it->second;
  }

  // A node read from the snapshot; its parent came before it.
  Status AddSnapshotNode(const std::string& path, Node n) {
    if (path != "/") {
      auto parent = nodes_.find(ParentOf(path));
      if (parent == nodes_.end()) return Corruption("node " + path + " has no parent");
      if (!parent->second.children.insert(NameOf(path)).second)
        return Corruption("node " + path + " appears twice");
    }
    IndexOwner(path, n.stat.ephemeral_owner);
    if (!nodes_.emplace(path, std::move(n)).second)
      return Corruption("node " + path + " appears twice");
    return Status::Ok();
  }

  // The parent's stored cversion counts child creates; it only moves forward.
  static void AdvanceParent(Node* p, int32_t parent_cversion, int64_t zxid) {
    if (parent_cversion == -1) parent_cversion = p->stat.cversion + 1;
    if (parent_cversion > p->stat.cversion) {
      p->stat.cversion = parent_cversion;
      p->stat.pzxid = zxid;
    }
  }

  // Returns false if the txn could not apply (ZooKeeper ignores those in replay too).
  bool Create(const std::string& path, const ZkTxn& t, int64_t owner, int64_t zxid, int64_t time) {
    if (path == "/") return false;
    auto parent = nodes_.find(ParentOf(path));
    if (parent == nodes_.end()) return false;
    Node& p = parent->second;
    if (p.children.count(NameOf(path))) {
      // A create replayed on a fuzzy snapshot that already holds the node still moves the
      // parent's counter forward (ZooKeeper's setCversionPzxid); create2 and the others do not.
      if (t.type == op::kCreate) AdvanceParent(&p, t.parent_cversion, zxid);
      return false;
    }
    AdvanceParent(&p, t.parent_cversion, zxid);
    p.children.insert(NameOf(path));
    Node n;
    n.data = t.data;
    n.data_null = t.data_null;
    n.acl = InternAcl(t.acl);
    n.stat.czxid = n.stat.mzxid = n.stat.pzxid = zxid;
    n.stat.ctime = n.stat.mtime = time;
    n.stat.ephemeral_owner = owner;
    IndexOwner(path, owner);
    nodes_.emplace(path, std::move(n));
    return true;
  }

  Status Delete(const std::string& path, int64_t zxid) {
    auto it = nodes_.find(path);
    if (it == nodes_.end() || path == "/") return Status::Ok();
    if (!it->second.children.empty())
      return Corruption("delete of " + path + " at zxid " + Hex(static_cast<uint64_t>(zxid)) +
                        ", which has children");
    int64_t owner = it->second.stat.ephemeral_owner;
    if (tree::IsSessionOwner(owner)) {
      auto e = ephemerals_.find(owner);
      if (e != ephemerals_.end()) {
        e->second.erase(path);
        if (e->second.empty()) ephemerals_.erase(e);
      }
    }
    nodes_.erase(it);
    Node& p = nodes_.at(ParentOf(path));
    p.children.erase(NameOf(path));
    if (zxid > p.stat.pzxid) p.stat.pzxid = zxid;
    return Status::Ok();
  }

  Status Apply(const ZkTxnHeader& h, const ZkTxn& t) {
    switch (t.type) {
      case op::kCreate:
      case op::kCreate2:
        Create(t.path, t, t.ephemeral ? h.client_id : 0, h.zxid, h.time);
        return Status::Ok();
      case op::kCreateContainer:
        Create(t.path, t, tree::kContainerOwner, h.zxid, h.time);
        return Status::Ok();
      case op::kCreateTtl:
        if (t.ttl <= 0 || t.ttl > tree::kMaxTtlMs)
          return Corruption("createTTL with ttl " + std::to_string(t.ttl));
        Create(t.path, t, tree::TtlOwner(t.ttl), h.zxid, h.time);
        return Status::Ok();
      case op::kDelete:
      case op::kDeleteContainer:
        return Delete(t.path, h.zxid);
      case op::kSetData: {
        auto it = nodes_.find(t.path);
        if (it == nodes_.end()) return Status::Ok();
        Node& n = it->second;
        n.data = t.data;
        n.data_null = t.data_null;
        n.stat.mtime = h.time;
        n.stat.mzxid = h.zxid;
        n.stat.version = t.version;
        return Status::Ok();
      }
      case op::kSetAcl: {
        auto it = nodes_.find(t.path);
        if (it == nodes_.end()) return Status::Ok();
        it->second.acl = InternAcl(t.acl);
        it->second.stat.aversion = t.version;
        return Status::Ok();
      }
      case op::kCreateSession:
        sessions_[h.client_id] = t.timeout;
        return Status::Ok();
      case op::kCloseSession: {
        sessions_.erase(h.client_id);
        // ZooKeeper deletes the paths the txn lists and whatever ephemerals it still has.
        std::set<std::string> paths(t.paths_to_delete.begin(), t.paths_to_delete.end());
        if (auto e = ephemerals_.find(h.client_id); e != ephemerals_.end())
          paths.insert(e->second.begin(), e->second.end());
        // Deepest first, so that a listed parent goes after its children.
        for (auto p = paths.rbegin(); p != paths.rend(); ++p)
          QFS_RETURN_IF_ERROR(Delete(*p, h.zxid));
        return Status::Ok();
      }
      case op::kMulti: {
        // A multi that failed was logged with an error txn in place of every op: no effect.
        for (const ZkTxn& s : t.sub)
          if (s.type == op::kError) return Status::Ok();
        for (const ZkTxn& s : t.sub) QFS_RETURN_IF_ERROR(Apply(h, s));
        return Status::Ok();
      }
      case op::kError:
      case op::kCheck:
        return Status::Ok();
      default:
        return InvalidArgument("unsupported txn type: " + OpName(t.type));
    }
  }

  // Ephemerals whose session is gone: ZooKeeper deletes them when it loads its database.
  Result<size_t> DropOrphanEphemerals(int64_t zxid) {
    std::vector<std::string> orphans;
    for (const auto& [sid, paths] : ephemerals_)
      if (!sessions_.count(sid)) orphans.insert(orphans.end(), paths.begin(), paths.end());
    for (const auto& p : orphans) QFS_RETURN_IF_ERROR(Delete(p, zxid));
    return orphans.size();
  }

  std::unordered_map<std::string, Node>& nodes() { return nodes_; }
  std::map<int64_t, int32_t>& sessions() { return sessions_; }
  const std::vector<std::vector<tree::Acl>>& acl_lists() const { return acl_lists_; }

 private:
  void IndexOwner(const std::string& path, int64_t owner) {
    if (tree::IsSessionOwner(owner)) ephemerals_[owner].insert(path);
  }

  std::unordered_map<std::string, Node> nodes_;
  std::map<int64_t, int32_t> sessions_;
  std::map<int64_t, std::set<std::string>> ephemerals_;
  std::vector<std::vector<tree::Acl>> acl_lists_;
  std::map<std::string, uint32_t> acl_index_;
};

struct Summary {
  std::string snapshot_path;
  uint64_t snapshot_zxid = 0;
  size_t logs_read = 0;
  uint64_t txns_applied = 0;
  uint64_t last_zxid = 0;
  size_t nodes = 0, sessions = 0;
  std::string output_path;
  std::vector<std::string> warnings;
};

// ZK_DIR itself if it is a version-2 directory, else ZK_DIR/version-2.
Result<std::string> Version2Dir(const std::string& dir) {
  struct stat st;
  std::string v2 = dir + "/version-2";
  if (stat(v2.c_str(), &st) == 0 && S_ISDIR(st.st_mode)) return v2;
  if (stat(dir.c_str(), &st) != 0) return ErrnoStatus(dir, errno);
  if (!S_ISDIR(st.st_mode)) return InvalidArgument(dir + ": not a directory");
  size_t slash = dir.find_last_not_of('/');
  std::string base = dir.substr(0, slash + 1);
  base = base.substr(base.rfind('/') + 1);
  if (base == "version-2") return dir;
  return InvalidArgument(dir + ": not a ZooKeeper data directory (it has no version-2 directory)");
}

// The target must be a new or empty directory (a lone myid file is allowed: ensembles keep the
// member's id there).
Status CheckTarget(const std::string& dir) {
  DIR* d = opendir(dir.c_str());
  if (!d) {
    if (errno == ENOENT) return Status::Ok();  // made once the input has been read
    return ErrnoStatus(dir, errno);
  }
  std::string found;
  while (struct dirent* e = readdir(d)) {
    std::string name = e->d_name;
    if (name == "." || name == ".." || name == "myid") continue;
    found = name;
    break;
  }
  closedir(d);
  if (!found.empty())
    return InvalidArgument(dir + " is not empty (it holds " + found +
                           "); import only into a new or empty directory");
  return Status::Ok();
}

Status ApplyLogs(ZkTree* zt, const std::string& log_dir, uint64_t snap_zxid, Summary* sum) {
  auto logs = ListZkFiles(log_dir, "log");
  if (!logs.ok()) return logs.status();
  sum->last_zxid = snap_zxid;
  if (logs->empty()) {
    // Legitimate for a ZooKeeper that never logged a txn, but usually a dataLogDir elsewhere.
    sum->warnings.push_back("no txn log (log.*) in " + log_dir +
                            ": only the snapshot is imported (is ZooKeeper's dataLogDir "
                            "elsewhere? see --log-dir)");
    return Status::Ok();
  }
  // The newest log that starts at or before the snapshot holds the txns right after it.
  size_t first = 0;
  for (size_t i = 0; i < logs->size(); i++)
    if ((*logs)[i].zxid <= snap_zxid) first = i;
  uint64_t last = snap_zxid;
  for (size_t i = first; i < logs->size(); i++) {
    const ZkFile& f = (*logs)[i];
    auto st = ReadZkLog(f, [&](const ZkTxnHeader& h, std::string_view body) -> Status {
      uint64_t zxid = static_cast<uint64_t>(h.zxid);
      std::string where = f.path + ": txn " + Hex(zxid);
      if (zxid <= snap_zxid) return Status::Ok();  // in the snapshot already
      if (zxid <= last) return Corruption(where + " is not after the previous txn " + Hex(last));
      // Within an epoch zxids are consecutive: a jump means txns are missing.
      if ((zxid >> 32) == (last >> 32) && zxid != last + 1)
        return Corruption(where + " follows " + Hex(last) + ": the txns in between are missing");
      auto txn = DecodeZkTxn(h.type, body, true);
      if (!txn.ok()) return Status(txn.status().code(), where + ": " + txn.status().message());
      Status applied = zt->Apply(h, *txn);
      if (!applied.ok()) return Status(applied.code(), where + ": " + applied.message());
      last = zxid;
      sum->txns_applied++;
      return Status::Ok();
    });
    if (!st.ok()) return st.status();
    if (st->torn_tail)
      sum->warnings.push_back(f.path + " ends inside a record (a write cut short by a crash); " +
                              "the txns before it were imported");
    sum->logs_read++;
  }
  sum->last_zxid = last;
  return Status::Ok();
}

// quorumfs's initial /zookeeper nodes (docs/tree.md), from a fresh tree.
ZkTree::Node InitialNode(ZkTree* zt, const char* path) {
  tree::DataTree fresh;
  tree::NodeMeta meta;
  QFS_CHECK(fresh.GetMeta(path, &meta));
  std::string data;
  bool null = false;
  tree::Stat st;
  QFS_CHECK(fresh.GetData(path, &data, &st, &null) == tree::Err::kOk);
  ZkTree::Node n;
  n.data = data;
  n.data_null = null;
  n.acl = zt->InternAcl(meta.acl);
  n.stat = ZkStat{st.czxid,    st.mzxid,    st.ctime,           st.mtime, st.version,
                  st.cversion, st.aversion, st.ephemeral_owner, st.pzxid};
  return n;
}

// The tree as snapshot records for the daemon's loader: header, ACLs, sessions, nodes in
// preorder with siblings in byte order (docs/tree.md, "Snapshots").
Result<std::unique_ptr<tree::DataTree>> BuildTree(ZkTree* zt, uint64_t last_zxid) {
  auto& nodes = zt->nodes();
  std::vector<std::string> records;
  std::map<uint32_t, uint32_t> acl_ids;  // ZkTree's index -> snapshot id, in first-use order
  std::vector<uint32_t> acl_order;
  std::vector<std::string> node_records;
  txn::SnapRecord rec;
  // Iterative preorder: a deep chain must not exhaust the stack.
  std::vector<std::string> todo{"/"};
  while (!todo.empty()) {
    std::string path = std::move(todo.back());
    todo.pop_back();
    const ZkTree::Node& n = nodes.at(path);
    auto [it, added] = acl_ids.emplace(n.acl, static_cast<uint32_t>(acl_ids.size()));
    if (added) acl_order.push_back(n.acl);
    txn::SnapNode* sn = rec.mutable_node();
    sn->Clear();
    sn->set_path(path);
    sn->set_data(n.data);
    sn->set_czxid(n.stat.czxid);
    sn->set_mzxid(n.stat.mzxid);
    sn->set_ctime(n.stat.ctime);
    sn->set_mtime(n.stat.mtime);
    sn->set_version(n.stat.version);
    // ZooKeeper stores the count of child creates and shows clients creates + deletes, computed
    // as 2 * creates - children. quorumfs stores what clients see and the deletes apart, so the
    // next sequential suffix (the creates) is the one ZooKeeper would have given.
    const uint32_t creates = static_cast<uint32_t>(n.stat.cversion);
    const uint32_t children = static_cast<uint32_t>(n.children.size());
    sn->set_cversion(static_cast<int32_t>(2 * creates - children));
    sn->set_child_deletes(static_cast<int32_t>(creates - children));
    sn->set_aversion(n.stat.aversion);
    sn->set_ephemeral_owner(n.stat.ephemeral_owner);
    sn->set_pzxid(n.stat.pzxid);
    sn->set_acl_id(it->second);
    sn->set_kind(n.data_null ? tree::kSnapNullDataBit : 0);
    node_records.push_back(rec.SerializeAsString());
    for (auto c = n.children.rbegin(); c != n.children.rend(); ++c)
      todo.push_back(path == "/" ? "/" + *c : path + "/" + *c);
  }
  if (node_records.size() != nodes.size())
    return Corruption("the tree has " + std::to_string(nodes.size() - node_records.size()) +
                      " nodes not reachable from the root");

  txn::SnapHeader* h = rec.mutable_header();
  h->set_format(tree::kSnapFormat);
  h->set_last_zxid(static_cast<int64_t>(last_zxid));
  h->set_node_count(node_records.size());
  h->set_acl_count(acl_order.size());
  h->set_session_count(zt->sessions().size());
  records.push_back(rec.SerializeAsString());
  for (size_t i = 0; i < acl_order.size(); i++) {
    txn::SnapAcl* a = rec.mutable_acl();
    a->Clear();
    a->set_id(static_cast<uint32_t>(i));
    for (const tree::Acl& x : zt->acl_lists()[acl_order[i]]) {
      txn::Acl* p = a->add_acl();
      p->set_perms(x.perms);
      p->set_scheme(x.id.scheme);
      p->set_id(x.id.id);
    }
    records.push_back(rec.SerializeAsString());
  }
  for (const auto& [id, timeout] : zt->sessions()) {
    txn::SnapSession* s = rec.mutable_session();
    s->set_id(id);
    s->set_timeout_ms(timeout);
    records.push_back(rec.SerializeAsString());
  }
  size_t i = 0, j = 0;
  tree::TreeOptions topts;
  auto t = tree::DataTree::LoadForeignRecords(topts, [&](std::string_view* r) {
    if (i < records.size()) {
      *r = records[i++];
      return true;
    }
    if (j < node_records.size()) {
      *r = node_records[j++];
      return true;
    }
    return false;
  });
  if (!t.ok())
    return Status(t.status().code(),
                  "the imported tree is not a valid quorumfs tree: " + t.status().message());
  return t;
}

Result<Summary> Import(const std::string& zk_data, const std::string& zk_log,
                       const std::string& qfs_dir) {
  Summary sum;
  auto snap_dir = Version2Dir(zk_data);
  if (!snap_dir.ok()) return snap_dir.status();
  auto log_dir = Version2Dir(zk_log);
  if (!log_dir.ok()) return log_dir.status();
  QFS_RETURN_IF_ERROR(CheckTarget(qfs_dir));

  auto snaps = ListZkFiles(*snap_dir, "snapshot");
  if (!snaps.ok()) return snaps.status();
  if (snaps->empty()) return NotFound(*snap_dir + ": no ZooKeeper snapshot (snapshot.*) found");
  // The newest snapshot only: a damaged one is refused, never skipped (docs/migration.md).
  const ZkFile& newest = snaps->back();
  auto snap = ReadZkSnapshot(newest);
  if (!snap.ok()) return snap.status();
  sum.snapshot_path = newest.path;
  sum.snapshot_zxid = newest.zxid;

  ZkTree zt;
  zt.sessions() = snap->sessions;
  for (const ZkSnapNode& sn : snap->nodes) {
    ZkTree::Node n;
    n.data = sn.data;
    n.data_null = sn.data_null;
    n.stat = sn.stat;
    if (sn.acl_ref == -1) {  // ZooKeeper's OPEN_ACL_UNSAFE
      n.acl = zt.InternAcl(tree::OpenAcl());
    } else {
      auto a = snap->acls.find(sn.acl_ref);
      if (a == snap->acls.end() || a->second.empty())
        return Corruption(newest.path + ": node " + sn.path + " refers to ACL list " +
                          std::to_string(sn.acl_ref) + ", which the snapshot does not hold");
      n.acl = zt.InternAcl(a->second);
    }
    Status st = zt.AddSnapshotNode(sn.path, std::move(n));
    if (!st.ok()) return Corruption(newest.path + ": " + st.message());
  }
  snap->nodes.clear();
  snap->nodes.shrink_to_fit();
  QFS_RETURN_IF_ERROR(ApplyLogs(&zt, *log_dir, newest.zxid, &sum));

  auto orphans = zt.DropOrphanEphemerals(static_cast<int64_t>(sum.last_zxid));
  if (!orphans.ok()) return orphans.status();
  if (*orphans > 0)
    sum.warnings.push_back(std::to_string(*orphans) +
                           " ephemeral nodes of sessions that no longer exist were dropped, as "
                           "ZooKeeper drops them when it starts");
  // /zookeeper/config describes the ZooKeeper ensemble's membership, which means nothing to
  // quorumfs: it gets quorumfs's own. /zookeeper and /zookeeper/quota are kept (and created if
  // missing).
  auto& nodes = zt.nodes();
  for (const char* p : {"/zookeeper", "/zookeeper/quota", "/zookeeper/config"}) {
    auto it = nodes.find(p);
    if (it != nodes.end() && std::string(p) != "/zookeeper/config") continue;
    if (it != nodes.end()) {
      if (!it->second.children.empty())
        return Corruption(newest.path + ": /zookeeper/config has children");
      ZkTree::Node n = InitialNode(&zt, p);
      it->second = std::move(n);
      continue;
    }
    QFS_RETURN_IF_ERROR(zt.AddSnapshotNode(p, InitialNode(&zt, p)));
  }

  auto tree = BuildTree(&zt, sum.last_zxid);
  if (!tree.ok()) return tree.status();
  sum.nodes = (*tree)->node_count();
  sum.sessions = (*tree)->sessions().size();

  // The daemon's own writer: the member loads this file as it loads any snapshot of its own.
  QFS_RETURN_IF_ERROR(storage::EnsureDir(qfs_dir));
  auto w = storage::SnapshotWriter::Create(qfs_dir, sum.last_zxid);
  if (!w.ok()) return w.status();
  QFS_RETURN_IF_ERROR((*tree)->WriteSnapshot([&](std::string_view r) { return (*w)->Add(r); }));
  QFS_RETURN_IF_ERROR((*w)->Finish());
  sum.output_path = (*w)->final_path();
  // The member holds history up to last_zxid in its epoch: it has accepted and joined that
  // epoch (docs/migration.md, "Zxids and epochs").
  uint64_t epoch = sum.last_zxid >> 32;
  storage::WriteEpoch(qfs_dir, storage::kAcceptedEpochFile, epoch);
  storage::WriteEpoch(qfs_dir, storage::kCurrentEpochFile, epoch);

  // Read it back as the daemon will.
  auto reader = storage::SnapshotReader::Open(sum.output_path);
  if (!reader.ok()) return reader.status();
  auto loaded = tree::DataTree::LoadSnapshot(
      tree::TreeOptions{}, [&](std::string_view* r) { return (*reader)->Next(r); });
  if (!loaded.ok()) return loaded.status();
  if ((*loaded)->digest() != (*tree)->digest() || (*loaded)->node_count() != sum.nodes)
    return Internal(sum.output_path + " does not read back as the tree written");
  return sum;
}

const char* kUsage =
    "usage: quorumfs import-zookeeper [--log-dir ZK_DATALOG_DIR] ZK_DATA_DIR QFS_DATA_DIR\n";
const char* kHelp =
    "Converts an Apache ZooKeeper 3.8 data directory (stopped) into a quorumfs member's data\n"
    "directory: the newest snapshot plus the txn logs after it, checksums checked. Every\n"
    "node's data, Stat, ACL and kind (ephemeral, container, TTL) and the open sessions carry\n"
    "over; zxids are kept. QFS_DATA_DIR must be new or empty (a myid file is allowed).\n"
    "  --log-dir DIR  ZooKeeper's dataLogDir, when it is not ZK_DATA_DIR\n"
    "See docs/migration.md.\n";

}  // namespace

int RunImportZookeeper(const std::vector<std::string>& args) {
  std::vector<std::string> pos;
  std::string zk_log;
  for (size_t i = 0; i < args.size(); i++) {
    const std::string& a = args[i];
    if (a == "-h" || a == "--help") {
      printf("%s\n%s", kUsage, kHelp);
      return 0;
    } else if (a == "--log-dir" && i + 1 < args.size()) {
      zk_log = args[++i];
    } else if (a.rfind("--log-dir=", 0) == 0) {
      zk_log = a.substr(10);
    } else if (a == "--") {
      pos.insert(pos.end(), args.begin() + static_cast<long>(i) + 1, args.end());
      break;
    } else if (!a.empty() && a[0] == '-') {
      fprintf(stderr, "quorumfs: import-zookeeper: unknown option '%s'\n%s", a.c_str(), kUsage);
      return 2;
    } else {
      pos.push_back(a);
    }
  }
  if (pos.size() != 2) {
    fprintf(stderr, "quorumfs: import-zookeeper: expected ZK_DATA_DIR and QFS_DATA_DIR\n%s",
            kUsage);
    return 2;
  }
  if (zk_log.empty()) zk_log = pos[0];
  auto sum = Import(pos[0], zk_log, pos[1]);
  if (!sum.ok()) {
    fprintf(stderr, "quorumfs: import-zookeeper: %s\n", sum.status().message().c_str());
    return 1;
  }
  for (const auto& w : sum->warnings)
    fprintf(stderr, "quorumfs: import-zookeeper: warning: %s\n", w.c_str());
  printf("read %s (zxid %s) and %" PRIu64 " txns after it from %zu log file(s)\n",
         sum->snapshot_path.c_str(), Hex(sum->snapshot_zxid).c_str(), sum->txns_applied,
         sum->logs_read);
  printf("wrote %s: %zu znodes, %zu sessions, last zxid %s, epoch %" PRIu64 "\n",
         sum->output_path.c_str(), sum->nodes, sum->sessions, Hex(sum->last_zxid).c_str(),
         sum->last_zxid >> 32);
  return 0;
}

}  // namespace qfs::zkimport
