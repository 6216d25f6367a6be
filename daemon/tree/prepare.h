// Prepare: turns a client request into a txn, validating everything against the tree plus the
// effects of txns prepared earlier but not applied yet (they are in flight in the log / ZAB).
// Only the leader prepares. A request that fails validation gets an error and no txn.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "daemon/proto/txn.pb.h"
#include "daemon/tree/data_tree.h"
#include "daemon/tree/reconfig.h"
#include "daemon/tree/types.h"

namespace qfs::tree {

struct Prepared {
  Err err = Err::kOk;  // kOk: `txn` is set
  std::optional<txn::Txn> txn;
  // For a multi that failed: one result per op, as ZooKeeper reports them (kOk for the ops before
  // the failing one, its error, then kRuntimeInconsistency for the rest).
  std::vector<OpResult> multi_results;
};

// What a reconfig request is checked against (docs/reconfig.md); the leader fills it in.
struct ReconfigContext {
  bool enabled = false;  // reconfigEnabled
  bool standalone =
      false;             // no server.N lines: ZooKeeper's standalone server answers UNIMPLEMENTED
  ServerList current;    // the leader's newest configuration (maybe not committed yet)
  uint64_t version = 0;  // its version (the zxid of its reconfig entry; 0: the static one)
  bool in_progress = false;  // a reconfig entry is not committed yet
  // The ZAB core's CheckReconfig for the new configuration: kOk, kReconfigInProgress or
  // kNewConfigNoQuorum.
  std::function<Err(const ServerList&)> check_quorum;
};

class Preparer {
 public:
  explicit Preparer(const DataTree& tree);
  ~Preparer();

  // Validates `req` and builds its txn with the given zxid and time. The txn's effects become
  // visible to later Prepare calls immediately.
  // A kReconfig request needs `reconfig` (without it: kUnimplemented).
  Prepared Prepare(const Request& req, int64_t zxid, int64_t time_ms,
                   const ReconfigContext* reconfig = nullptr);
  // The tree has applied every txn up to `zxid`: drop pending state that is now in the tree.
  void Applied(int64_t zxid);
  // Drops every pending change (after prepared txns were abandoned). The caller guarantees that
  // every txn that will ever be applied has been applied.
  void Reset();
  size_t pending_count() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// ZooKeeper's path rules (PathUtils.validatePath). For a sequential create the path may end
// with '/' (the suffix is appended to it).
Err ValidatePath(std::string_view path, bool sequential = false);
std::string_view ParentPath(std::string_view path);  // "/" for "/a"
std::string_view BaseName(std::string_view path);

// ACL helpers (ZooKeeper's rules).
// True if `acl` grants `perm` to any of `auth` (world:anyone, auth ids, digest, ip, unix,
// super). A unix id ("1000" = uid 1000, "g:100" = gid 100) is only ever held by the FUSE
// mount's requests (docs/fuse.md, "Identities and ACLs on the mount").
bool AclAllows(const std::vector<Acl>& acl, int32_t perm, const std::vector<Id>& auth);
// Validates an ACL for create/setAcl and expands the "auth" scheme to the session's ids.
// Returns kInvalidAcl for an empty or malformed list or "auth" with no authenticated ids.
Err FixupAcl(const std::vector<Acl>& in, const std::vector<Id>& auth, std::vector<Acl>* out);

}  // namespace qfs::tree
