#include "fusefs/names.h"

namespace qfs::fusefs {

CreateName ParseCreateName(std::string_view name) {
  CreateName out;
  // Two rounds so that either order works; each suffix counts once.
  for (int i = 0; i < 2; i++) {
    if (!out.ephemeral && name.ends_with("@eph")) {
      out.ephemeral = true;
      name.remove_suffix(4);
    } else if (!out.sequential && name.ends_with("@seq")) {
      out.sequential = true;
      name.remove_suffix(4);
    }
  }
  out.base = std::string(name);
  return out;
}

std::string JoinPath(std::string_view parent, std::string_view name) {
  std::string p(parent);
  if (p != "/") p += '/';
  p += name;
  return p;
}

bool IsReserved(std::string_view path) {
  return path == "/zookeeper" || path.starts_with("/zookeeper/");
}

}  // namespace qfs::fusefs
