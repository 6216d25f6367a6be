#include "consensus/storage/epoch_file.h"

#include <cstring>

#include "consensus/storage/file_util.h"
#include "consensus/util/log.h"

namespace qfs::storage {

Result<uint64_t> ReadEpoch(const std::string& dir, const char* name, uint64_t missing_value) {
  const std::string path = dir + "/" + name;
  Result<std::string> data = ReadFile(path);
  if (!data.ok()) {
    if (data.status().code() == Code::kNotFound) return missing_value;
    return data.status();
  }
  std::string_view s = *data;
  if (!s.empty() && s.back() == '\n') s.remove_suffix(1);
  if (s.empty() || s.size() > 20) return Corruption(path + ": malformed epoch file");
  uint64_t v = 0;
  for (char c : s) {
    if (c < '0' || c > '9') return Corruption(path + ": malformed epoch file");
    const uint64_t d = static_cast<uint64_t>(c - '0');
    if (v > (UINT64_MAX - d) / 10) return Corruption(path + ": epoch out of range");
    v = v * 10 + d;
  }
  return v;
}

void WriteEpoch(const std::string& dir, const char* name, uint64_t value) {
  Status st = WriteFileAtomic(dir, name, std::to_string(value) + "\n");
  if (!st.ok()) {
    QFS_FATAL("cannot persist %s=%llu in %s: %s", name, static_cast<unsigned long long>(value),
              dir.c_str(), st.ToString().c_str());
  }
}

}  // namespace qfs::storage
