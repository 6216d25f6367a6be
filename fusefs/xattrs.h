// Extended attributes: every field of ZooKeeper's Stat and the ACL, as user.zk.* text values.
#pragma once

#include <string>
#include <vector>

#include "consensus/util/result.h"
#include "daemon/tree/types.h"

namespace qfs::fusefs {

// Names in listxattr order.
const std::vector<std::string>& XattrNames();
// The value of one attribute; false if `name` is not one of ours.
bool XattrValue(const std::string& name, const tree::Stat& st, const std::vector<tree::Acl>& acl,
                std::string* out);
// "world:anyone:cdrwa,digest:u:hash=:r" (ZooKeeper's zkCli permission letters).
std::string FormatAcl(const std::vector<tree::Acl>& acl);
Result<std::vector<tree::Acl>> ParseAcl(const std::string& text);

inline constexpr const char* kAclXattr = "user.zk.acl";

}  // namespace qfs::fusefs
