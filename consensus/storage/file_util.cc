#include "consensus/storage/file_util.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "consensus/util/checksum.h"
#include "consensus/util/result.h"

namespace qfs::storage {
namespace {

uint32_t LoadLe32(const char* p) {
  const auto* u = reinterpret_cast<const unsigned char*>(p);
  return static_cast<uint32_t>(u[0]) | static_cast<uint32_t>(u[1]) << 8 |
         static_cast<uint32_t>(u[2]) << 16 | static_cast<uint32_t>(u[3]) << 24;
}

void StoreLe32(char* p, uint32_t v) {
  for (int i = 0; i < 4; i++) p[i] = static_cast<char>((v >> (8 * i)) & 0xff);
}

}  // namespace

Status EnsureDir(const std::string& dir) {
  if (dir.empty()) return InvalidArgument("empty directory name");
  std::string path;
  size_t pos = 0;
  while (pos != std::string::npos) {
    pos = dir.find('/', pos + 1);
    path = dir.substr(0, pos);
    if (path.empty()) continue;
    if (mkdir(path.c_str(), 0755) != 0 && errno != EEXIST) {
      return ErrnoStatus("mkdir " + path, errno);
    }
  }
  struct stat st;
  if (stat(dir.c_str(), &st) != 0) return ErrnoStatus("stat " + dir, errno);
  if (!S_ISDIR(st.st_mode)) return InvalidArgument(dir + " is not a directory");
  return Status::Ok();
}

Status FsyncDir(const std::string& dir) {
  int fd = open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return ErrnoStatus("open directory " + dir, errno);
  Status st;
  if (fsync(fd) != 0) st = ErrnoStatus("fsync directory " + dir, errno);
  close(fd);
  return st;
}

Status WriteAll(int fd, const void* data, size_t n, const std::string& what) {
  const char* p = static_cast<const char*>(data);
  while (n > 0) {
    ssize_t w = write(fd, p, n);
    if (w < 0) {
      if (errno == EINTR) continue;
      return ErrnoStatus("write " + what, errno);
    }
    p += w;
    n -= static_cast<size_t>(w);
  }
  return Status::Ok();
}

Status WriteFileAtomic(const std::string& dir, const std::string& name, const std::string& data) {
  const std::string final_path = dir + "/" + name;
  const std::string tmp_path = final_path + ".tmp";
  int fd = open(tmp_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return ErrnoStatus("create " + tmp_path, errno);
  Status st = WriteAll(fd, data.data(), data.size(), tmp_path);
  if (st.ok() && fsync(fd) != 0) st = ErrnoStatus("fsync " + tmp_path, errno);
  if (close(fd) != 0 && st.ok()) st = ErrnoStatus("close " + tmp_path, errno);
  if (st.ok() && rename(tmp_path.c_str(), final_path.c_str()) != 0) {
    st = ErrnoStatus("rename " + tmp_path + " to " + final_path, errno);
  }
  if (!st.ok()) {
    unlink(tmp_path.c_str());
    return st;
  }
  return FsyncDir(dir);
}

Result<std::string> ReadFile(const std::string& path) {
  int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    int err = errno;
    if (err == ENOENT) return NotFound(path + ": no such file");
    return ErrnoStatus("open " + path, err);
  }
  std::string out;
  struct stat st;
  if (fstat(fd, &st) == 0 && st.st_size > 0) out.reserve(static_cast<size_t>(st.st_size));
  char buf[1 << 16];
  for (;;) {
    ssize_t r = read(fd, buf, sizeof buf);
    if (r < 0) {
      if (errno == EINTR) continue;
      int err = errno;
      close(fd);
      return ErrnoStatus("read " + path, err);
    }
    if (r == 0) break;
    out.append(buf, static_cast<size_t>(r));
  }
  close(fd);
  return out;
}

Result<std::vector<std::string>> ListDir(const std::string& dir, const std::string& prefix) {
  DIR* d = opendir(dir.c_str());
  if (d == nullptr) {
    int err = errno;
    if (err == ENOENT) return NotFound(dir + ": no such directory");
    return ErrnoStatus("opendir " + dir, err);
  }
  std::vector<std::string> names;
  errno = 0;
  while (dirent* e = readdir(d)) {
    std::string_view n(e->d_name);
    if (n == "." || n == "..") continue;
    if (n.substr(0, prefix.size()) == prefix) names.emplace_back(n);
  }
  int err = errno;
  closedir(d);
  if (err != 0) return ErrnoStatus("readdir " + dir, err);
  std::sort(names.begin(), names.end());
  return names;
}

void AppendFrame(std::string* out, std::string_view payload) {
  char hdr[kFrameHeader];
  StoreLe32(hdr, static_cast<uint32_t>(payload.size()));
  uint32_t crc = Crc32c(0, hdr, 4);
  crc = Crc32c(crc, payload.data(), payload.size());
  StoreLe32(hdr + 4, crc);
  out->append(hdr, kFrameHeader);
  out->append(payload.data(), payload.size());
}

namespace {
size_t VarintSize(uint64_t v) {
  size_t n = 1;
  while (v >= 0x80) {
    v >>= 7;
    n++;
  }
  return n;
}
void AppendVarint(std::string* out, uint64_t v) {
  while (v >= 0x80) {
    out->push_back(static_cast<char>((v & 0x7f) | 0x80));
    v >>= 7;
  }
  out->push_back(static_cast<char>(v));
}
// LogRecord (consensus/proto/storage.proto): zxid = 1 (varint), payload = 2 (bytes); proto3
// leaves out fields at their default.
size_t RecordSize(uint64_t zxid, size_t payload_size) {
  size_t n = 0;
  if (zxid != 0) n += 1 + VarintSize(zxid);
  if (payload_size != 0) n += 1 + VarintSize(payload_size) + payload_size;
  return n;
}
}  // namespace

size_t RecordFrameSize(uint64_t zxid, size_t payload_size) {
  return kFrameHeader + RecordSize(zxid, payload_size);
}

size_t AppendRecordFrame(std::string* out, uint64_t zxid, std::string_view payload) {
  const size_t at = out->size();
  const size_t len = RecordSize(zxid, payload.size());
  out->reserve(at + kFrameHeader + len);
  out->append(kFrameHeader, '\0');
  if (zxid != 0) {
    out->push_back(0x08);
    AppendVarint(out, zxid);
  }
  if (!payload.empty()) {
    out->push_back(0x12);
    AppendVarint(out, payload.size());
    out->append(payload.data(), payload.size());
  }
  QFS_CHECK(out->size() == at + kFrameHeader + len);
  char* hdr = out->data() + at;
  StoreLe32(hdr, static_cast<uint32_t>(len));
  uint32_t crc = Crc32c(0, hdr, 4);
  crc = Crc32c(crc, hdr + kFrameHeader, len);
  StoreLe32(hdr + 4, crc);
  return kFrameHeader + len;
}

FrameResult DecodeFrame(std::string_view buf, size_t pos, size_t max_len, std::string_view* payload,
                        size_t* frame_size) {
  if (pos >= buf.size()) return FrameResult::kIncomplete;
  const size_t avail = buf.size() - pos;
  const char* p = buf.data() + pos;
  if (avail < 4) {
    // A partial length word of zeros is still preallocated space.
    bool zero = std::all_of(p, p + avail, [](char c) { return c == 0; });
    return zero ? FrameResult::kZero : FrameResult::kIncomplete;
  }
  const uint32_t len = LoadLe32(p);
  if (len == 0) return FrameResult::kZero;
  if (len > max_len) return FrameResult::kBad;
  if (avail < kFrameHeader || avail - kFrameHeader < len) return FrameResult::kIncomplete;
  uint32_t crc = Crc32c(0, p, 4);
  crc = Crc32c(crc, p + kFrameHeader, len);
  if (crc != LoadLe32(p + 4)) return FrameResult::kBad;
  *payload = std::string_view(p + kFrameHeader, len);
  *frame_size = kFrameHeader + len;
  return FrameResult::kOk;
}

}  // namespace qfs::storage
