// The ACL-checked reads of the tree: one set of rules for every front end (the client port and
// the FUSE mount), so that a front end cannot skip a READ check or show a digest hash. Each
// function runs under the tree's shared lock (call it inside Pipeline::Read) and answers an
// Err as ZooKeeper does: kNoNode before kNoAuth (ZooKeeper reads the node, then checks).
// Writes are checked where they are prepared (daemon/tree/prepare.cc).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "daemon/tree/data_tree.h"
#include "daemon/tree/types.h"

namespace qfs::service {

using Ids = std::vector<tree::Id>;

// kOk if `ids` hold `perm` on the node at `path`; kNoNode if there is none, else kNoAuth.
tree::Err Check(const tree::DataTree& t, const std::string& path, int32_t perm, const Ids& ids);

// getData: needs READ.
tree::Err GetData(const tree::DataTree& t, const std::string& path, const Ids& ids,
                  std::string* data, tree::Stat* st, bool* data_null = nullptr);
// getChildren / getChildren2: needs READ.
tree::Err GetChildren(const tree::DataTree& t, const std::string& path, const Ids& ids,
                      std::vector<std::string>* children, tree::Stat* st);
// getAllChildrenNumber: needs READ.
tree::Err GetAllChildrenNumber(const tree::DataTree& t, const std::string& path, const Ids& ids,
                               int32_t* n);
// A lone check (ZooKeeper 3.8): needs READ, then the version (-1 = any) must match.
tree::Err CheckVersion(const tree::DataTree& t, const std::string& path, int32_t version,
                       const Ids& ids, tree::Stat* st);
// getACL: needs READ or ADMIN; without ADMIN each digest id shows as "user:x" (as ZooKeeper).
tree::Err GetAcl(const tree::DataTree& t, const std::string& path, const Ids& ids,
                 std::vector<tree::Acl>* acl, tree::Stat* st);

// whoAmI's view of the ids: a digest id shows only its user name.
std::vector<tree::Id> WhoAmI(const Ids& ids);

}  // namespace qfs::service
