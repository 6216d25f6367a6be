// The txn log: segments of framed LogRecords, group-committed by a writer thread.
//
// Files: <dir>/log.<first zxid, 16 hex digits>. Each segment starts with a 16-byte header
// ("QFSLOG01" + 8 reserved bytes) followed by frames (see file_util.h). A segment is
// preallocated with zeros so that appends never extend the file (fast fdatasync, and ENOSPC can
// only happen when a new segment is created). A zero length word marks the end of the data.
//
// Recovery (Open): segments are read in order. A frame that is incomplete or fails its checksum
// is a torn tail only if it is in the last segment and no valid frame follows it there: then the
// segment is truncated at that offset (logged at WARN). Anything else is corruption: Open fails
// with kCorruption naming the file and offset. A zero length word (end of data) followed by valid
// records is refused the same way. zxids must increase strictly across the log.
//
// Durability: Append only queues; the writer thread writes a batch with one write() and one
// fdatasync(), then reports the highest durable zxid through Options::on_durable. A failed
// write or fdatasync of an existing segment is fatal (QFS_FATAL). Running out of space while
// creating a new segment is not: the partial segment is removed, the queued entries are
// dropped and reported through Options::on_failed, and later Appends retry segment creation.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "consensus/util/result.h"
#include "consensus/util/shared_bytes.h"

namespace qfs::storage {

struct LogEntry {
  uint64_t zxid = 0;
  SharedBytes payload;
};

// Read-only inspection (quorumfs log-dump, docs/tools.md): the checks Open's recovery makes,
// without its repairs.
struct LogScanSegment {
  std::string path;
  uint64_t first_zxid = 0;  // from the file name
  uint64_t size = 0;        // file size, preallocated zeros included
  uint64_t end = 0;         // offset where the records end
  uint64_t records = 0;
  std::string tail;     // why the records stop, when that is not a clean end
  bool torn = false;    // last segment: bytes after `end` that recovery zeroes (a torn write)
  bool stray = false;   // earlier segment: non-zero bytes after its end of data (ignored)
  bool remove = false;  // last segment too short for its header or without records: removed
};
struct LogScanRecord {
  uint64_t offset = 0;  // of the record's frame in its segment
  uint64_t zxid = 0;
  std::string_view payload;
};
// Visits the records of `path` (a log directory, or one segment file taken as the last) in
// order, calling on_segment after each segment is checked. Returns kCorruption, naming the file
// and offset, exactly where Open would refuse to start; the records before it have been visited.
Status ScanLog(const std::string& path, const std::function<void(const LogScanRecord&)>& on_record,
               const std::function<void(const LogScanSegment&)>& on_segment);

class TxnLog {
 public:
  struct Options {
    std::string dir;
    uint64_t segment_bytes = 64ull << 20;  // roll to a new segment past this size
    // Called on the writer thread after fdatasync with the highest zxid now durable.
    std::function<void(uint64_t durable_zxid)> on_durable;
    // Called on the writer thread when queued entries could not be written (disk full).
    // `first_failed_zxid` and every later queued entry were dropped; nothing of them is on disk.
    // Dropped entries do not count as appended: last_zxid() falls back to durable_zxid().
    std::function<void(uint64_t first_failed_zxid, const Status& why)> on_failed;
    bool sync = true;  // false only for benchmarks of apply cost
  };

  // Opens (creating if needed) the log in options.dir, recovering as described above, and
  // calls `replay` for every entry with zxid > after_zxid, in order. Starts the writer thread.
  static Result<std::unique_ptr<TxnLog>> Open(const Options& options, uint64_t after_zxid,
                                              const std::function<void(const LogEntry&)>& replay);

  ~TxnLog();  // Close()

  // Queues an entry; zxid must be greater than every zxid appended before.
  // Returns kNoSpace/kUnavailable without queuing while the log cannot accept writes. While the
  // disk is full, an Append at least 100 ms after the previous attempt retries creating the
  // segment on the caller's thread and is queued if that succeeds.
  Status Append(LogEntry entry);
  // Blocks until every queued entry is durable (or failed). For tests and shutdown.
  void Flush();
  // Flushes and stops the writer thread. Idempotent.
  void Close();

  // Last zxid durable on disk (0 if none).
  uint64_t durable_zxid() const;
  // Last zxid appended (queued or durable).
  uint64_t last_zxid() const;

  // Removes whole segments whose every entry is <= zxid, keeping the segment that contains
  // zxid + 1 and later ones. Never removes the active segment.
  Status PurgeUpTo(uint64_t zxid);
  // Appends to *out the durable entries with zxid > `after`, in order, at most max_entries.
  // Returns false if entries right after `after` may have been purged (after is older than the
  // first segment): the caller needs a snapshot instead. Safe while the writer appends.
  bool ReadAfter(uint64_t after, size_t max_entries, std::vector<LogEntry>* out) const;
  // Drops every entry with zxid > `zxid` (ZAB TRUNC). Requires no queued entries.
  Status TruncateAfter(uint64_t zxid);

  struct Stats {
    uint64_t fsyncs = 0;
    uint64_t entries = 0;
    uint64_t bytes = 0;
    uint64_t last_fsync_us = 0;
    uint64_t max_fsync_us = 0;
    uint64_t segments = 0;
    uint64_t disk_bytes = 0;   // sum of segment file sizes
    uint64_t spares_used = 0;  // roll-overs that renamed a prepared segment into place
  };
  Stats stats() const;

 private:
  explicit TxnLog(Options o);
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace qfs::storage
