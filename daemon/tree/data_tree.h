// The znode tree as a deterministic state machine. Not thread-safe: the owner serializes access
// (applies exclusive, reads shared).
//
// Apply() never fails for a txn that Preparer accepted: violated preconditions are invariant
// failures (QFS_CHECK), because they mean members would diverge.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "consensus/util/result.h"
#include "daemon/proto/txn.pb.h"
#include "daemon/tree/quota.h"
#include "daemon/tree/types.h"

namespace qfs::tree {

// SnapHeader.format of the records WriteSnapshot emits (daemon/proto/txn.proto).
inline constexpr uint32_t kSnapFormat = 1;
// In a snapshot node record's `kind`: the node's data is null, not empty.
inline constexpr uint32_t kSnapNullDataBit = 0x80;

struct TreeOptions {
  size_t max_data_bytes = 1 << 20;  // jute.maxbuffer
  bool enforce_quota = false;       // enforceQuota: prepare refuses writes over a hard limit
  // An ensemble member's static configuration as ZooKeeper's text (docs/reconfig.md): until a
  // reconfig txn sets /zookeeper/config (its mzxid is 0), GetData and Exists show this as its
  // data (version -1), as ZooKeeper shows its configuration. Not part of the tree (digests,
  // snapshots): members whose server lines differ (a proxy's ports) keep equal trees.
  std::string static_config{};
};

struct ApplyResult {
  Err err = Err::kOk;                          // kOk for every txn Preparer accepted
  std::vector<OpResult> results;               // one per op; one entry for non-multi txns
  std::vector<Change> changes;                 // in the order they happened
  std::vector<QuotaCrossing> quota_crossings;  // soft limits this txn took usage over
};

// What prepare needs to know about an existing node.
struct NodeMeta {
  Stat stat;
  // Child creates so far (ZooKeeper's parentCVersion): the next sequential suffix. stat.cversion
  // counts child deletes too.
  int32_t child_creates = 0;
  std::vector<Acl> acl;
  Kind kind = Kind::kUnset;
};

class DataTree {
 public:
  explicit DataTree(TreeOptions options = {});
  ~DataTree();
  DataTree(const DataTree&) = delete;
  DataTree& operator=(const DataTree&) = delete;

  const TreeOptions& options() const { return options_; }

  // --- apply ---
  ApplyResult Apply(const txn::Txn& t);
  int64_t last_zxid() const;

  // Incremental digest of the whole tree (every node's path, data, Stat, ACL and kind).
  uint64_t digest() const;
  // Digest recomputed from scratch; equals digest() unless there is a bug.
  uint64_t ComputeDigest() const;
  size_t node_count() const;

  // --- reads (ZooKeeper semantics; paths must be valid) ---
  // `data_null` (optional) tells whether the data was set as null rather than empty.
  Err GetData(std::string_view path, std::string* data, Stat* stat,
              bool* data_null = nullptr) const;
  Err Exists(std::string_view path, Stat* stat) const;
  Err GetChildren(std::string_view path, std::vector<std::string>* names, Stat* stat) const;
  // Number of descendants (not counting the node itself).
  Err GetAllChildrenNumber(std::string_view path, int32_t* count) const;
  // Paths of the session's ephemerals that start with `prefix` ("/" for all), sorted.
  std::vector<std::string> GetEphemerals(int64_t session_id, std::string_view prefix) const;
  Err GetAcl(std::string_view path, std::vector<Acl>* acl, Stat* stat) const;
  Err GetKind(std::string_view path, Kind* kind) const;
  bool GetMeta(std::string_view path, NodeMeta* out) const;

  // --- quotas (docs/quotas.md) ---
  // The deepest quota'd path (one with a limit node) at or above `path`; never "/".
  std::optional<std::string> QuotaRootOf(std::string_view path) const;
  // Every quota'd path, sorted ("" for a limit node directly under /zookeeper/quota).
  std::vector<std::string> QuotaPaths() const;

  // --- sessions (replicated state: created/closed by txns) ---
  const std::map<int64_t, int32_t>& sessions() const;  // id -> timeout ms

  // Containers that had children and now have none, and TTL nodes without children whose
  // mtime + ttl < now_ms. The leader turns these into kDeleteContainer requests.
  std::vector<std::string> ExpiryCandidates(int64_t now_ms) const;

  // --- snapshots ---
  // Emits the whole tree as records (deterministic order and bytes for equal trees).
  Status WriteSnapshot(const std::function<Status(std::string_view record)>& sink) const;
  // Rebuilds a tree from records produced by WriteSnapshot. `next` returns false at the end.
  static Result<std::unique_ptr<DataTree>> LoadSnapshot(
      TreeOptions options, const std::function<bool(std::string_view* record)>& next);
  // As LoadSnapshot, with every check but the digest's: the header's digest is ignored and the
  // tree's own is computed. For records built outside the daemon (the ZooKeeper importer,
  // docs/migration.md), which has no digest to give.
  static Result<std::unique_ptr<DataTree>> LoadForeignRecords(
      TreeOptions options, const std::function<bool(std::string_view* record)>& next);

  // Memory used by nodes, names, data, child sets and ACLs (bytes), for reporting.
  size_t ApproxMemoryBytes() const;
  // Sum of path and data lengths over all nodes: ZooKeeper's approximateDataSize (mntr).
  size_t ApproxDataBytes() const;

 private:
  struct Impl;
  TreeOptions options_;
  std::unique_ptr<Impl> impl_;
  static Result<std::unique_ptr<DataTree>> Load(
      TreeOptions options, const std::function<bool(std::string_view* record)>& next,
      bool check_digest);
};

}  // namespace qfs::tree
