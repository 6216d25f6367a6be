#include "daemon/service/reads.h"

#include "daemon/tree/prepare.h"

namespace qfs::service {

using tree::Err;

namespace {

bool Allowed(const tree::DataTree& t, const std::string& path, int32_t perm, const Ids& ids) {
  std::vector<tree::Acl> acl;
  tree::Stat st;
  if (t.GetAcl(path, &acl, &st) != Err::kOk) return true;  // the read reports NONODE itself
  return tree::AclAllows(acl, perm, ids);
}

}  // namespace

Err Check(const tree::DataTree& t, const std::string& path, int32_t perm, const Ids& ids) {
  std::vector<tree::Acl> acl;
  tree::Stat st;
  if (Err e = t.GetAcl(path, &acl, &st); e != Err::kOk) return e;
  return tree::AclAllows(acl, perm, ids) ? Err::kOk : Err::kNoAuth;
}

Err GetData(const tree::DataTree& t, const std::string& path, const Ids& ids, std::string* data,
            tree::Stat* st, bool* data_null) {
  if (Err e = t.GetData(path, data, st, data_null); e != Err::kOk) return e;
  if (!Allowed(t, path, tree::perm::kRead, ids)) {
    if (data) data->clear();
    return Err::kNoAuth;
  }
  return Err::kOk;
}

Err GetChildren(const tree::DataTree& t, const std::string& path, const Ids& ids,
                std::vector<std::string>* children, tree::Stat* st) {
  if (Err e = t.GetChildren(path, children, st); e != Err::kOk) return e;
  if (!Allowed(t, path, tree::perm::kRead, ids)) {
    children->clear();
    return Err::kNoAuth;
  }
  return Err::kOk;
}

Err GetAllChildrenNumber(const tree::DataTree& t, const std::string& path, const Ids& ids,
                         int32_t* n) {
  if (Err e = t.GetAllChildrenNumber(path, n); e != Err::kOk) return e;
  if (!Allowed(t, path, tree::perm::kRead, ids)) return Err::kNoAuth;
  return Err::kOk;
}

Err CheckVersion(const tree::DataTree& t, const std::string& path, int32_t version, const Ids& ids,
                 tree::Stat* st) {
  if (Err e = t.Exists(path, st); e != Err::kOk) return e;
  if (!Allowed(t, path, tree::perm::kRead, ids)) return Err::kNoAuth;
  if (version != -1 && version != st->version) return Err::kBadVersion;
  return Err::kOk;
}

Err GetAcl(const tree::DataTree& t, const std::string& path, const Ids& ids,
           std::vector<tree::Acl>* acl, tree::Stat* st) {
  if (Err e = t.GetAcl(path, acl, st); e != Err::kOk) return e;
  bool admin = tree::AclAllows(*acl, tree::perm::kAdmin, ids);
  if (!admin && !tree::AclAllows(*acl, tree::perm::kRead, ids)) {
    acl->clear();
    return Err::kNoAuth;
  }
  if (!admin) {
    // Without ADMIN, digest hashes stay secret: ZooKeeper shows "user:x".
    for (auto& a : *acl) {
      if (a.id.scheme != "digest") continue;
      a.id.id = a.id.id.substr(0, a.id.id.find(':')) + ":x";
    }
  }
  return Err::kOk;
}

std::vector<tree::Id> WhoAmI(const Ids& ids) {
  std::vector<tree::Id> out;
  // As ZooKeeper's providers' getUserName: a digest id shows only its user name.
  for (const auto& a : ids)
    out.push_back({a.scheme, a.scheme == "digest" ? a.id.substr(0, a.id.find(':')) : a.id});
  return out;
}

}  // namespace qfs::service
