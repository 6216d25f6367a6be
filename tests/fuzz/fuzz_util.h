// Shared by the libFuzzer targets (docs/fuzzing.md).
#pragma once

#include <fcntl.h>
#include <stdlib.h>
#include <unistd.h>

#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

namespace qfs::fuzz {

// A failed property is a finding: abort so libFuzzer keeps the input.
inline void Check(bool cond) {
  if (!cond) abort();
}

// Structured inputs are records, each a little-endian u16 length and that many bytes; a short
// last record takes what is left. The harness frames them with valid checksums, so the fuzzer
// reaches the decoders behind the CRC instead of failing at it.
inline std::vector<std::string_view> SplitRecords(std::string_view in) {
  std::vector<std::string_view> out;
  while (in.size() >= 2) {
    const size_t n =
        static_cast<uint8_t>(in[0]) | (static_cast<size_t>(static_cast<uint8_t>(in[1])) << 8);
    in.remove_prefix(2);
    const size_t take = n < in.size() ? n : in.size();
    out.push_back(in.substr(0, take));
    in.remove_prefix(take);
  }
  return out;
}

// Framed-format inputs: the first byte picks the mode, the rest is the input (docs/fuzzing.md).
inline bool SplitMode(const uint8_t* data, size_t size, uint8_t* mode, std::string_view* rest) {
  if (size == 0) return false;
  *mode = data[0];
  *rest = std::string_view(reinterpret_cast<const char*>(data) + 1, size - 1);
  return true;
}

// A private scratch directory for the file-based readers, on tmpfs when there is one.
inline const std::string& ScratchDir() {
  static const std::string dir = [] {
    char tmpl[] = "/dev/shm/qfs-fuzz-XXXXXX";
    char tmpl2[] = "/tmp/qfs-fuzz-XXXXXX";
    const char* d = mkdtemp(tmpl);
    if (d == nullptr) d = mkdtemp(tmpl2);
    Check(d != nullptr);
    return std::string(d);
  }();
  return dir;
}

inline void WriteWholeFile(const std::string& path, std::string_view bytes) {
  const int fd = open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  Check(fd >= 0);
  size_t off = 0;
  while (off < bytes.size()) {
    const ssize_t w = write(fd, bytes.data() + off, bytes.size() - off);
    Check(w > 0);
    off += static_cast<size_t>(w);
  }
  close(fd);
}

}  // namespace qfs::fuzz
