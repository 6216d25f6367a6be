#include "fusefs/xattrs.h"

#include <cinttypes>
#include <cstdio>
#include <cstring>

namespace qfs::fusefs {
namespace {

std::string Hex(int64_t v) {
  char b[32];
  snprintf(b, sizeof b, "0x%" PRIx64, static_cast<uint64_t>(v));
  return b;
}

const char kPermLetters[] = "cdrwa";
const int32_t kPermBits[] = {tree::perm::kCreate, tree::perm::kDelete, tree::perm::kRead,
                             tree::perm::kWrite, tree::perm::kAdmin};

}  // namespace

const std::vector<std::string>& XattrNames() {
  static const std::vector<std::string> names = {
      "user.zk.czxid",          "user.zk.mzxid",      "user.zk.pzxid",       "user.zk.ctime",
      "user.zk.mtime",          "user.zk.version",    "user.zk.cversion",    "user.zk.aversion",
      "user.zk.ephemeralOwner", "user.zk.dataLength", "user.zk.numChildren", kAclXattr};
  return names;
}

bool XattrValue(const std::string& name, const tree::Stat& st, const std::vector<tree::Acl>& acl,
                std::string* out) {
  if (name == "user.zk.czxid")
    *out = Hex(st.czxid);
  else if (name == "user.zk.mzxid")
    *out = Hex(st.mzxid);
  else if (name == "user.zk.pzxid")
    *out = Hex(st.pzxid);
  else if (name == "user.zk.ctime")
    *out = std::to_string(st.ctime);
  else if (name == "user.zk.mtime")
    *out = std::to_string(st.mtime);
  else if (name == "user.zk.version")
    *out = std::to_string(st.version);
  else if (name == "user.zk.cversion")
    *out = std::to_string(st.cversion);
  else if (name == "user.zk.aversion")
    *out = std::to_string(st.aversion);
  else if (name == "user.zk.ephemeralOwner")
    *out = Hex(st.ephemeral_owner);
  else if (name == "user.zk.dataLength")
    *out = std::to_string(st.data_length);
  else if (name == "user.zk.numChildren")
    *out = std::to_string(st.num_children);
  else if (name == kAclXattr)
    *out = FormatAcl(acl);
  else
    return false;
  return true;
}

std::string FormatAcl(const std::vector<tree::Acl>& acl) {
  std::string s;
  for (const auto& a : acl) {
    if (!s.empty()) s += ',';
    s += a.id.scheme + ':' + a.id.id + ':';
    for (int i = 0; i < 5; i++)
      if (a.perms & kPermBits[i]) s += kPermLetters[i];
  }
  return s;
}

Result<std::vector<tree::Acl>> ParseAcl(const std::string& text) {
  std::vector<tree::Acl> out;
  size_t pos = 0;
  std::string t = text;
  while (!t.empty() && (t.back() == '\n' || t.back() == ' ')) t.pop_back();
  while (pos <= t.size()) {
    size_t end = t.find(',', pos);
    if (end == std::string::npos) end = t.size();
    std::string item = t.substr(pos, end - pos);
    size_t first = item.find(':');
    size_t last = item.rfind(':');
    if (first == std::string::npos || first == last)
      return InvalidArgument("ACL entry '" + item + "': expected scheme:id:perms");
    tree::Acl a;
    a.id.scheme = item.substr(0, first);
    a.id.id = item.substr(first + 1, last - first - 1);
    for (char c : item.substr(last + 1)) {
      const char* p = strchr(kPermLetters, c);
      if (!p || !*p) return InvalidArgument(std::string("ACL permission letter '") + c + "'");
      a.perms |= kPermBits[p - kPermLetters];
    }
    out.push_back(std::move(a));
    pos = end + 1;
  }
  return out;
}

}  // namespace qfs::fusefs
