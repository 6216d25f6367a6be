// Names on the mount: the @eph/@seq creation suffixes, path joining, and which paths are
// read-only to the mount (ZooKeeper's reserved /zookeeper subtree).
#pragma once

#include <string>
#include <string_view>

namespace qfs::fusefs {

// A last path component as asked for by a create (mkdir, open(O_CREAT), mknod, rename target).
struct CreateName {
  std::string base;  // the name with the suffixes removed (may be "" for "@seq")
  bool ephemeral = false;
  bool sequential = false;
  bool has_suffix() const { return ephemeral || sequential; }
};

// Strips trailing "@eph" and "@seq" (each at most once, in either order): "lock-@seq@eph" is
// {"lock-", eph, seq}. A name without suffixes comes back unchanged.
CreateName ParseCreateName(std::string_view name);

// "/" + "a" -> "/a"; "/a" + "b" -> "/a/b".
std::string JoinPath(std::string_view parent, std::string_view name);

// The mount never writes under /zookeeper (EPERM), as ZooKeeper reserves it.
bool IsReserved(std::string_view path);

// The synthetic file that holds a directory node's own data.
inline constexpr std::string_view kDataName = ".data";

}  // namespace qfs::fusefs
