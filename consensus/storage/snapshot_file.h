// Snapshot files: <dir>/snapshot.<last zxid, 16 hex digits>.
// Layout: framed records (file_util.h): SnapshotHeader, the caller's records, SnapshotFooter.
// Written to <name>.tmp, fsync'ed, renamed, then the directory is fsync'ed. A file whose footer is
// missing or whose checksums fail is invalid; loaders fall back to the next older one.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "consensus/util/result.h"

namespace qfs::storage {

std::string SnapshotName(uint64_t last_zxid);

class SnapshotWriter {
 public:
  // Opens <dir>/snapshot.<zxid>.tmp and writes the header.
  static Result<std::unique_ptr<SnapshotWriter>> Create(const std::string& dir, uint64_t last_zxid);
  ~SnapshotWriter();  // removes the temp file unless Finish() succeeded
  // Buffers and writes one record.
  Status Add(std::string_view record);
  // Writes the footer, fsyncs, renames into place and fsyncs the directory.
  Status Finish();
  uint64_t bytes_written() const { return bytes_; }
  const std::string& final_path() const { return final_path_; }

 private:
  SnapshotWriter() = default;
  Status FlushBuf();
  std::string dir_, tmp_path_, final_path_, buf_;
  int fd_ = -1;
  uint64_t records_ = 0, bytes_ = 0;
  uint32_t body_crc_ = 0;
  bool finished_ = false;
  bool failed_ = false;  // a write failed; the file can never be finished
};

class SnapshotReader {
 public:
  // Opens and fully validates a snapshot file (footer, every record's CRC, body CRC).
  static Result<std::unique_ptr<SnapshotReader>> Open(const std::string& path);
  uint64_t last_zxid() const { return last_zxid_; }
  uint64_t record_count() const { return count_; }
  uint64_t created_unix_ms() const { return created_unix_ms_; }
  // Next caller record; false at the end.
  bool Next(std::string_view* record);

 private:
  SnapshotReader() = default;
  std::string data_;
  size_t pos_ = 0;
  uint64_t last_zxid_ = 0, count_ = 0, read_ = 0, created_unix_ms_ = 0;
};

struct SnapshotInfo {
  uint64_t last_zxid;
  std::string path;
  uint64_t size;
};
// Finished snapshot files in `dir`, newest (highest zxid) first. Ignores *.tmp.
Result<std::vector<SnapshotInfo>> ListSnapshots(const std::string& dir);
// Removes leftover *.tmp files (from a crash mid-snapshot).
Status RemoveTempSnapshots(const std::string& dir);
// Keeps the newest `keep` snapshots and removes the rest. Returns the oldest kept zxid (0 if none).
Result<uint64_t> PurgeSnapshots(const std::string& dir, size_t keep);

}  // namespace qfs::storage
