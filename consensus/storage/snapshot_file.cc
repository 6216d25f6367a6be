#include "consensus/storage/snapshot_file.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cinttypes>
#include <cstdio>

#include "consensus/proto/storage.pb.h"
#include "consensus/storage/file_util.h"
#include "consensus/util/checksum.h"
#include "consensus/util/log.h"

namespace qfs::storage {
namespace {

constexpr const char* kPrefix = "snapshot.";
constexpr const char* kTmpSuffix = ".tmp";
constexpr size_t kBufLimit = 1 << 20;
constexpr uint32_t kFormatVersion = 1;

// Parses "snapshot.<16 lowercase hex>" exactly; anything else (including *.tmp) is not a snapshot.
bool ParseSnapshotName(const std::string& name, uint64_t* zxid) {
  const size_t plen = std::char_traits<char>::length(kPrefix);
  if (name.size() != plen + 16 || name.compare(0, plen, kPrefix) != 0) return false;
  uint64_t v = 0;
  for (size_t i = plen; i < name.size(); i++) {
    char c = name[i];
    int d;
    if (c >= '0' && c <= '9') {
      d = c - '0';
    } else if (c >= 'a' && c <= 'f') {
      d = c - 'a' + 10;
    } else {
      return false;
    }
    v = (v << 4) | static_cast<uint64_t>(d);
  }
  *zxid = v;
  return true;
}

bool EndsWith(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() &&
         s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

const char* FrameError(FrameResult r) {
  switch (r) {
    case FrameResult::kOk:
      return "ok";
    case FrameResult::kZero:
      return "zero length";
    case FrameResult::kIncomplete:
      return "truncated record";
    case FrameResult::kBad:
      return "checksum mismatch or bad length";
  }
  return "?";
}

}  // namespace

std::string SnapshotName(uint64_t last_zxid) {
  char buf[64];
  snprintf(buf, sizeof buf, "%s%016" PRIx64, kPrefix, last_zxid);
  return buf;
}

Result<std::unique_ptr<SnapshotWriter>> SnapshotWriter::Create(const std::string& dir,
                                                               uint64_t last_zxid) {
  std::unique_ptr<SnapshotWriter> w(new SnapshotWriter());
  w->dir_ = dir;
  w->final_path_ = dir + "/" + SnapshotName(last_zxid);
  w->tmp_path_ = w->final_path_ + kTmpSuffix;
  w->fd_ = open(w->tmp_path_.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (w->fd_ < 0) return ErrnoStatus("create " + w->tmp_path_, errno);

  qfs::storage::SnapshotHeader hdr;
  hdr.set_format_version(kFormatVersion);
  hdr.set_last_zxid(last_zxid);
  hdr.set_created_unix_ms(
      static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                std::chrono::system_clock::now().time_since_epoch())
                                .count()));
  AppendFrame(&w->buf_, hdr.SerializeAsString());
  w->body_crc_ = Crc32c(0, w->buf_.data(), w->buf_.size());
  w->bytes_ = w->buf_.size();
  return w;
}

SnapshotWriter::~SnapshotWriter() {
  if (fd_ >= 0) close(fd_);
  if (!finished_) unlink(tmp_path_.c_str());
}

Status SnapshotWriter::FlushBuf() {
  if (fd_ < 0) return Internal(tmp_path_ + ": snapshot writer is closed");
  Status st = WriteAll(fd_, buf_.data(), buf_.size(), tmp_path_);
  buf_.clear();
  if (!st.ok()) failed_ = true;
  return st;
}

Status SnapshotWriter::Add(std::string_view record) {
  if (finished_) return Internal(final_path_ + ": Add after Finish");
  if (failed_) return Internal(tmp_path_ + ": an earlier write failed");
  const size_t start = buf_.size();
  AppendFrame(&buf_, record);
  body_crc_ = Crc32c(body_crc_, buf_.data() + start, buf_.size() - start);
  bytes_ += buf_.size() - start;
  records_++;
  if (buf_.size() >= kBufLimit) return FlushBuf();
  return Status::Ok();
}

Status SnapshotWriter::Finish() {
  if (finished_) return Status::Ok();
  if (failed_) return Internal(tmp_path_ + ": an earlier write failed");
  failed_ = true;  // cleared below once the file is in place
  qfs::storage::SnapshotFooter footer;
  footer.set_record_count(records_);
  footer.set_body_crc32c(body_crc_);
  const size_t start = buf_.size();
  AppendFrame(&buf_, footer.SerializeAsString());
  bytes_ += buf_.size() - start;
  QFS_RETURN_IF_ERROR(FlushBuf());
  if (fsync(fd_) != 0) return ErrnoStatus("fsync " + tmp_path_, errno);
  int rc = close(fd_);
  fd_ = -1;
  if (rc != 0) return ErrnoStatus("close " + tmp_path_, errno);
  if (rename(tmp_path_.c_str(), final_path_.c_str()) != 0) {
    return ErrnoStatus("rename " + tmp_path_ + " to " + final_path_, errno);
  }
  finished_ = true;
  failed_ = false;
  return FsyncDir(dir_);
}

Result<std::unique_ptr<SnapshotReader>> SnapshotReader::Open(const std::string& path) {
  Result<std::string> data = ReadFile(path);
  if (!data.ok()) return data.status();
  std::unique_ptr<SnapshotReader> r(new SnapshotReader());
  r->data_ = std::move(*data);
  const std::string_view buf = r->data_;
  auto bad = [&](size_t off, const std::string& why) {
    return Corruption(path + ": invalid snapshot at offset " + std::to_string(off) + " (" + why +
                      ")");
  };

  std::string_view payload;
  size_t frame = 0;
  FrameResult fr = DecodeFrame(buf, 0, buf.size(), &payload, &frame);
  if (fr != FrameResult::kOk) return bad(0, std::string("header: ") + FrameError(fr));
  qfs::storage::SnapshotHeader hdr;
  if (!hdr.ParseFromArray(payload.data(), static_cast<int>(payload.size()))) {
    return bad(0, "unparsable header");
  }
  if (hdr.format_version() != kFormatVersion) {
    return bad(0, "unknown format version " + std::to_string(hdr.format_version()));
  }
  uint32_t crc = Crc32c(0, buf.data(), frame);
  size_t pos = frame;
  const size_t first_record = pos;
  uint64_t count = 0;
  // The footer is the frame that ends exactly at the end of the file.
  for (;;) {
    if (pos >= buf.size()) return bad(pos, "missing footer");
    fr = DecodeFrame(buf, pos, buf.size(), &payload, &frame);
    if (fr != FrameResult::kOk) return bad(pos, FrameError(fr));
    if (pos + frame == buf.size()) break;
    crc = Crc32c(crc, buf.data() + pos, frame);
    count++;
    pos += frame;
  }
  qfs::storage::SnapshotFooter footer;
  if (!footer.ParseFromArray(payload.data(), static_cast<int>(payload.size()))) {
    return bad(pos, "unparsable footer");
  }
  if (footer.record_count() != count) {
    return bad(pos, "footer counts " + std::to_string(footer.record_count()) +
                        " records, file has " + std::to_string(count));
  }
  if (footer.body_crc32c() != crc) return bad(pos, "body checksum mismatch");
  r->last_zxid_ = hdr.last_zxid();
  r->created_unix_ms_ = hdr.created_unix_ms();
  r->count_ = count;
  r->pos_ = first_record;
  return r;
}

bool SnapshotReader::Next(std::string_view* record) {
  if (read_ >= count_) return false;
  size_t frame = 0;
  // Open() validated every frame, so this cannot fail.
  if (DecodeFrame(data_, pos_, data_.size(), record, &frame) != FrameResult::kOk) return false;
  pos_ += frame;
  read_++;
  return true;
}

Result<std::vector<SnapshotInfo>> ListSnapshots(const std::string& dir) {
  auto names = ListDir(dir, kPrefix);
  if (!names.ok()) {
    if (names.status().code() == Code::kNotFound) return std::vector<SnapshotInfo>{};
    return names.status();
  }
  std::vector<SnapshotInfo> out;
  for (const std::string& n : *names) {
    uint64_t zxid;
    if (!ParseSnapshotName(n, &zxid)) continue;
    SnapshotInfo info{zxid, dir + "/" + n, 0};
    struct stat st;
    if (stat(info.path.c_str(), &st) != 0) {
      if (errno == ENOENT) continue;  // removed concurrently
      return ErrnoStatus("stat " + info.path, errno);
    }
    info.size = static_cast<uint64_t>(st.st_size);
    out.push_back(std::move(info));
  }
  std::sort(out.begin(), out.end(),
            [](const SnapshotInfo& a, const SnapshotInfo& b) { return a.last_zxid > b.last_zxid; });
  return out;
}

Status RemoveTempSnapshots(const std::string& dir) {
  auto names = ListDir(dir, kPrefix);
  if (!names.ok()) {
    if (names.status().code() == Code::kNotFound) return Status::Ok();
    return names.status();
  }
  bool removed = false;
  for (const std::string& n : *names) {
    if (!EndsWith(n, kTmpSuffix)) continue;
    const std::string path = dir + "/" + n;
    if (unlink(path.c_str()) != 0 && errno != ENOENT) return ErrnoStatus("unlink " + path, errno);
    QLOG_INFO("removed unfinished snapshot %s", path.c_str());
    removed = true;
  }
  return removed ? FsyncDir(dir) : Status::Ok();
}

Result<uint64_t> PurgeSnapshots(const std::string& dir, size_t keep) {
  auto list = ListSnapshots(dir);
  if (!list.ok()) return list.status();
  bool removed = false;
  for (size_t i = keep; i < list->size(); i++) {
    const std::string& path = (*list)[i].path;
    if (unlink(path.c_str()) != 0 && errno != ENOENT) return ErrnoStatus("unlink " + path, errno);
    removed = true;
  }
  if (removed) QFS_RETURN_IF_ERROR(FsyncDir(dir));
  if (keep == 0 || list->empty()) return uint64_t{0};
  return (*list)[std::min(keep, list->size()) - 1].last_zxid;
}

}  // namespace qfs::storage
