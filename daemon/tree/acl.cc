// ACL checks and fixup with ZooKeeper's rules (ZooKeeperServer.checkACL,
// PrepRequestProcessor.fixupACL and the digest / ip authentication providers).
#include <arpa/inet.h>

#include <algorithm>
#include <array>
#include <cstdint>
#include <cstring>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "daemon/tree/prepare.h"

namespace qfs::tree {
namespace {

// Java's Integer.parseInt for ASCII input: optional sign, at least one digit, fits in an int.
std::optional<int64_t> ParseJavaInt(std::string_view s) {
  size_t i = 0;
  bool neg = false;
  if (!s.empty() && (s[0] == '+' || s[0] == '-')) {
    neg = s[0] == '-';
    i = 1;
  }
  if (i == s.size()) return std::nullopt;
  int64_t v = 0;
  for (; i < s.size(); ++i) {
    if (s[i] < '0' || s[i] > '9') return std::nullopt;
    v = v * 10 + (s[i] - '0');
    if (v > (int64_t{1} << 31)) return std::nullopt;
  }
  v = neg ? -v : v;
  if (v > INT32_MAX || v < INT32_MIN) return std::nullopt;
  return v;
}

struct Addr {
  std::array<uint8_t, 16> bytes{};
  size_t len = 0;  // 4 or 16
};

// IPv4 as ZooKeeper parses it (four dot-separated Java ints in 0..255); IPv6 in any textual form
// inet_pton accepts.
std::optional<Addr> ParseAddr(std::string_view s) {
  Addr a;
  if (s.find(':') != std::string_view::npos) {
    const std::string z(s);
    if (inet_pton(AF_INET6, z.c_str(), a.bytes.data()) != 1) return std::nullopt;
    a.len = 16;
    return a;
  }
  size_t start = 0;
  for (int part = 0; part < 4; ++part) {
    const size_t dot = s.find('.', start);
    if ((part < 3) == (dot == std::string_view::npos)) return std::nullopt;
    const std::string_view p =
        s.substr(start, dot == std::string_view::npos ? std::string_view::npos : dot - start);
    const auto v = ParseJavaInt(p);
    if (!v || *v < 0 || *v > 255) return std::nullopt;
    a.bytes[part] = static_cast<uint8_t>(*v);
    start = dot + 1;
  }
  a.len = 4;
  return a;
}

// "addr" or "addr/bits".
struct Cidr {
  Addr addr;
  int bits = 0;
};
std::optional<Cidr> ParseCidr(std::string_view s) {
  const size_t slash = s.find('/');
  const auto addr = ParseAddr(s.substr(0, slash));
  if (!addr) return std::nullopt;
  Cidr c{*addr, static_cast<int>(addr->len * 8)};
  if (slash != std::string_view::npos) {
    const auto bits = ParseJavaInt(s.substr(slash + 1));
    if (!bits || *bits < 0 || *bits > static_cast<int64_t>(addr->len * 8)) return std::nullopt;
    c.bits = static_cast<int>(*bits);
  }
  return c;
}

bool IpMatches(std::string_view session_addr, std::string_view acl_expr) {
  const auto cidr = ParseCidr(acl_expr);
  const auto remote = ParseAddr(session_addr);
  if (!cidr || !remote || remote->len != cidr->addr.len) return false;
  for (size_t i = 0; i < remote->len; ++i) {
    const int bits_here = std::min(8, std::max(0, cidr->bits - static_cast<int>(i * 8)));
    const auto mask = static_cast<uint8_t>(0xff00 >> bits_here);
    if ((remote->bytes[i] & mask) != (cidr->addr.bytes[i] & mask)) return false;
  }
  return true;
}

// Java's id.split(":").length == 2: trailing empty pieces do not count.
bool ValidDigestId(std::string_view id) {
  if (id.find(':') == std::string_view::npos) return false;
  std::vector<std::string_view> parts;
  size_t start = 0;
  while (true) {
    const size_t colon = id.find(':', start);
    parts.push_back(id.substr(start, colon == std::string_view::npos ? colon : colon - start));
    if (colon == std::string_view::npos) break;
    start = colon + 1;
  }
  while (!parts.empty() && parts.back().empty()) parts.pop_back();
  return parts.size() == 2;
}

// A unix id (docs/fuse.md, "Identities and ACLs on the mount"): "<uid>" or "g:<gid>", the
// number in canonical decimal (no sign, no leading zero) so that ids compare as strings.
bool ValidUnixId(std::string_view id) {
  std::string_view n = id.starts_with("g:") ? id.substr(2) : id;
  if (n.empty() || n.size() > 10 || (n.size() > 1 && n[0] == '0')) return false;
  uint64_t v = 0;
  for (char c : n) {
    if (c < '0' || c > '9') return false;
    v = v * 10 + static_cast<uint64_t>(c - '0');
  }
  return v < 0xffffffffull;  // (uid_t)-1 means "no id" to the kernel
}

// A sasl id (docs/sasl.md): what ZooKeeper's provider accepts, a Kerberos name: a plain name
// ("bob", "zookeeper/host"), or primary[/instance]@REALM with no other '/' or '@'. Matched as
// an exact string.
bool ValidSaslId(std::string_view id) {
  if (id.empty()) return false;
  size_t at = id.find('@');
  if (at == std::string_view::npos) return true;
  std::string_view name = id.substr(0, at), realm = id.substr(at + 1);
  if (realm.find_first_of("/@") != std::string_view::npos) return false;
  size_t slash = name.find('/');
  return slash == std::string_view::npos || name.find('/', slash + 1) == std::string_view::npos;
}

// An x509 id (docs/tls.md): a distinguished name as type=value RDNs ("CN=a,OU=b"), which is
// what ZooKeeper's provider accepts (X500Principal parses it). Matched as an exact string.
bool ValidX509Id(std::string_view id) {
  if (id.empty()) return false;
  size_t start = 0;
  while (start <= id.size()) {
    // An unescaped ',' or '+' ends an RDN; each must hold a '=' with a non-empty type.
    size_t end = start;
    bool esc = false;
    for (; end < id.size(); end++) {
      if (esc) {
        esc = false;
      } else if (id[end] == '\\') {
        esc = true;
      } else if (id[end] == ',' || id[end] == '+') {
        break;
      }
    }
    std::string_view rdn = id.substr(start, end - start);
    const size_t eq = rdn.find('=');
    if (eq == std::string_view::npos || rdn.find_first_not_of(' ') == eq) return false;
    if (end >= id.size()) break;
    start = end + 1;
  }
  return true;
}

// Identities that "auth" expands to: those of authenticating schemes. ip is not one (as in
// ZooKeeper), and world / super have no provider there.
bool IsAuthenticatedScheme(std::string_view scheme) {
  return scheme != "ip" && scheme != "world" && scheme != "super" && scheme != "auth";
}

}  // namespace

bool AclAllows(const std::vector<Acl>& acl, int32_t perm, const std::vector<Id>& auth) {
  // As ZooKeeper: an empty ACL allows everything.
  if (acl.empty()) return true;
  for (const Id& a : auth) {
    if (a.scheme == "super") return true;
  }
  for (const Acl& entry : acl) {
    if ((entry.perms & perm) == 0) continue;
    const Id& id = entry.id;
    if (id.scheme == "world") {
      if (id.id == "anyone") return true;
      continue;
    }
    if (id.scheme == "super" || id.scheme == "auth") continue;  // no provider matches these
    for (const Id& a : auth) {
      if (a.scheme != id.scheme) continue;
      if (id.scheme == "ip" ? IpMatches(a.id, id.id) : a.id == id.id) return true;
      // ZooKeeper's SASLAuthenticationProvider: the SASL user "super" matches every sasl id.
      if (id.scheme == "sasl" && a.id == "super") return true;
    }
  }
  return false;
}

Err FixupAcl(const std::vector<Acl>& in, const std::vector<Id>& auth, std::vector<Acl>* out) {
  std::vector<Acl> uniq;
  for (const Acl& a : in) {
    bool dup = false;
    for (const Acl& u : uniq) dup = dup || u == a;
    if (!dup) uniq.push_back(a);
  }
  if (uniq.empty()) return Err::kInvalidAcl;
  std::vector<Acl> rv;
  for (const Acl& a : uniq) {
    // ZooKeeper does not check perms; bits outside ALL can only be client bugs.
    if ((a.perms & ~perm::kAll) != 0) return Err::kInvalidAcl;
    const Id& id = a.id;
    if (id.scheme == "world" && id.id == "anyone") {
      rv.push_back(a);
    } else if (id.scheme == "auth") {
      bool any = false;
      for (const Id& cid : auth) {
        if (!IsAuthenticatedScheme(cid.scheme)) continue;
        any = true;
        rv.push_back(Acl{a.perms, cid});
      }
      if (!any) return Err::kInvalidAcl;
    } else if (id.scheme == "digest") {
      if (!ValidDigestId(id.id)) return Err::kInvalidAcl;
      rv.push_back(a);
    } else if (id.scheme == "ip") {
      if (!ParseCidr(id.id)) return Err::kInvalidAcl;
      rv.push_back(a);
    } else if (id.scheme == "unix") {
      if (!ValidUnixId(id.id)) return Err::kInvalidAcl;
      rv.push_back(a);
    } else if (id.scheme == "x509") {
      if (!ValidX509Id(id.id)) return Err::kInvalidAcl;
      rv.push_back(a);
    } else if (id.scheme == "sasl") {
      if (!ValidSaslId(id.id)) return Err::kInvalidAcl;
      rv.push_back(a);
    } else {
      return Err::kInvalidAcl;  // unknown scheme (including world:<not anyone> and super)
    }
  }
  *out = std::move(rv);
  return Err::kOk;
}

}  // namespace qfs::tree
