// libFuzzer target for the mount's ACL text (the user.zk.acl xattr, docs/fuse.md): any text
// parses or is refused; what parses formats back to text that parses to the same ACL.
#include <cstdint>
#include <string>

#include "fusefs/xattrs.h"
#include "tests/fuzz/fuzz_util.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using qfs::fuzz::Check;
  const std::string text(reinterpret_cast<const char*>(data), size);
  auto acl = qfs::fusefs::ParseAcl(text);
  if (!acl.ok()) return 0;
  const std::string formatted = qfs::fusefs::FormatAcl(*acl);
  auto again = qfs::fusefs::ParseAcl(formatted);
  Check(again.ok());
  Check(*again == *acl);
  Check(qfs::fusefs::FormatAcl(*again) == formatted);
  return 0;
}
