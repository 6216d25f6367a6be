#include "consensus/storage/txn_log.h"

#include <fcntl.h>
#include <pthread.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cinttypes>
#include <cstdio>
#include <cstring>
#include <utility>
#include <vector>

#include "consensus/proto/storage.pb.h"
#include "consensus/storage/file_util.h"
#include "consensus/util/log.h"

namespace qfs::storage {
namespace {

using Clock = std::chrono::steady_clock;

constexpr const char* kLogPrefix = "log.";
constexpr const char* kSpareName = "spare.tmp";  // not a segment: never matches kLogPrefix
constexpr size_t kSegHeader = 16;
constexpr char kSegMagic[kSegHeader] = {'Q', 'F', 'S', 'L', 'O', 'G', '0', '1',
                                        0,   0,   0,   0,   0,   0,   0,   0};
constexpr auto kRetryInterval = std::chrono::milliseconds(100);
constexpr size_t kZeroChunk = 256 << 10;
constexpr size_t npos = std::string_view::npos;

const char* ZeroBlock() {
  static const std::string* zeros = new std::string(kZeroChunk, '\0');
  return zeros->data();
}

std::string Hex(uint64_t v) {
  char buf[32];
  snprintf(buf, sizeof buf, "%016" PRIx64, v);
  return buf;
}

std::string SegmentName(uint64_t first_zxid) {
  return kLogPrefix + Hex(first_zxid);
}

// "log.<16 lowercase hex digits>" exactly.
bool ParseSegmentName(const std::string& name, uint64_t* zxid) {
  const size_t plen = std::char_traits<char>::length(kLogPrefix);
  if (name.size() != plen + 16 || name.compare(0, plen, kLogPrefix) != 0) return false;
  uint64_t v = 0;
  for (size_t i = plen; i < name.size(); i++) {
    const char c = name[i];
    uint64_t d;
    if (c >= '0' && c <= '9') {
      d = static_cast<uint64_t>(c - '0');
    } else if (c >= 'a' && c <= 'f') {
      d = static_cast<uint64_t>(c - 'a' + 10);
    } else {
      return false;
    }
    v = (v << 4) | d;
  }
  *zxid = v;
  return true;
}

const char* FrameError(FrameResult r) {
  switch (r) {
    case FrameResult::kOk:
      return "ok";
    case FrameResult::kZero:
      return "zero length word";
    case FrameResult::kIncomplete:
      return "incomplete record";
    case FrameResult::kBad:
      return "checksum mismatch or bad length";
  }
  return "?";
}

size_t FirstNonZero(std::string_view buf, size_t from) {
  size_t i = from;
  while (i + 8 <= buf.size()) {
    uint64_t w;
    memcpy(&w, buf.data() + i, 8);
    if (w != 0) break;
    i += 8;
  }
  for (; i < buf.size(); i++) {
    if (buf[i] != 0) return i;
  }
  return npos;
}

// Offset of the first frame at or after `from` (at any byte offset) that decodes and holds a
// LogRecord with zxid > min_zxid, or npos. Such a record after a damaged one means the damage is
// not a torn tail.
size_t FindValidRecord(std::string_view buf, size_t from, uint64_t min_zxid, uint64_t* zxid) {
  size_t o = from;
  while (o + kFrameHeader < buf.size()) {
    if (buf[o] == 0 && buf[o + 1] == 0 && buf[o + 2] == 0 && buf[o + 3] == 0) {
      // A frame starting later needs a non-zero byte in its length word: skip the zero run.
      const size_t nz = FirstNonZero(buf, o + 4);
      if (nz == npos) return npos;
      o = std::max(o + 1, nz - 3);
      continue;
    }
    std::string_view payload;
    size_t frame = 0;
    if (DecodeFrame(buf, o, buf.size(), &payload, &frame) == FrameResult::kOk) {
      qfs::storage::LogRecord rec;
      if (rec.ParseFromArray(payload.data(), static_cast<int>(payload.size())) &&
          rec.zxid() > min_zxid) {
        *zxid = rec.zxid();
        return o;
      }
    }
    o++;
  }
  return npos;
}

// The segments of `dir`, by first zxid. Other files are ignored (with a warning).
Result<std::vector<std::pair<uint64_t, std::string>>> ListSegments(const std::string& dir) {
  auto names = ListDir(dir, kLogPrefix);
  if (!names.ok()) return names.status();
  std::vector<std::pair<uint64_t, std::string>> files;
  for (const std::string& n : *names) {
    uint64_t z;
    if (!ParseSegmentName(n, &z)) {
      QLOG_WARN("txn log: ignoring unexpected file %s/%s", dir.c_str(), n.c_str());
      continue;
    }
    files.emplace_back(z, dir + "/" + n);
  }
  std::sort(files.begin(), files.end());
  return files;
}

// Checks one segment as recovery does and reports its records; `last_good` is the last zxid of
// the segments before it, and is advanced. Recovery and ScanLog both go through here.
Status ScanSegment(std::string_view buf, bool is_last, uint64_t* last_good, LogScanSegment* seg,
                   const std::function<void(const LogScanRecord&)>& on_record) {
  const std::string& path = seg->path;
  if (buf.size() < kSegHeader) {
    if (!is_last) return Corruption(path + ": segment shorter than its header");
    seg->tail = "shorter than a segment header";
    seg->remove = true;
    return Status::Ok();
  }
  if (memcmp(buf.data(), kSegMagic, kSegHeader) != 0) {
    return Corruption(path + ": bad segment header");
  }
  size_t pos = kSegHeader;
  while (pos < buf.size()) {
    std::string_view payload;
    size_t frame = 0;
    const FrameResult fr = DecodeFrame(buf, pos, buf.size(), &payload, &frame);
    if (fr == FrameResult::kOk) {
      qfs::storage::LogRecord rec;
      if (!rec.ParseFromArray(payload.data(), static_cast<int>(payload.size()))) {
        return Corruption(path + ": unparsable record at offset " + std::to_string(pos));
      }
      if (rec.zxid() <= *last_good) {
        return Corruption(path + ": zxid 0x" + Hex(rec.zxid()) + " at offset " +
                          std::to_string(pos) + " does not follow 0x" + Hex(*last_good));
      }
      if (seg->records == 0 && rec.zxid() != seg->first_zxid) {
        return Corruption(path + ": first record has zxid 0x" + Hex(rec.zxid()) +
                          ", the file name says 0x" + Hex(seg->first_zxid));
      }
      *last_good = rec.zxid();
      seg->records++;
      on_record(LogScanRecord{pos, rec.zxid(), rec.payload()});
      pos += frame;
      continue;
    }

    // End of data, torn tail, or damage. Valid later records rule out a torn tail.
    uint64_t later_zxid = 0;
    const size_t later = FindValidRecord(buf, pos + 1, *last_good, &later_zxid);
    if (later != npos) {
      return Corruption(path + ": bad record at offset " + std::to_string(pos) + " (" +
                        FrameError(fr) + ") followed by valid records (zxid 0x" + Hex(later_zxid) +
                        " at offset " + std::to_string(later) +
                        "); refusing to start: the log is damaged before its tail and "
                        "truncating it could lose committed transactions");
    }
    if (fr != FrameResult::kZero && !is_last) {
      return Corruption(path + ": bad record at offset " + std::to_string(pos) + " (" +
                        FrameError(fr) + ") in a segment that is not the last; refusing to start");
    }
    if (FirstNonZero(buf, pos) != npos) {
      seg->tail = FrameError(fr);
      (is_last ? seg->torn : seg->stray) = true;
    }
    break;
  }
  seg->end = std::min(pos, buf.size());
  if (seg->records == 0) {
    if (!is_last) return Corruption(path + ": segment holds no records");
    seg->remove = true;
  }
  return Status::Ok();
}

Status PwriteAll(int fd, const char* data, size_t n, uint64_t off) {
  while (n > 0) {
    ssize_t w = pwrite(fd, data, n, static_cast<off_t>(off));
    if (w < 0) {
      if (errno == EINTR) continue;
      return ErrnoStatus("pwrite", errno);
    }
    data += w;
    n -= static_cast<size_t>(w);
    off += static_cast<uint64_t>(w);
  }
  return Status::Ok();
}

Status ZeroRange(int fd, uint64_t from, uint64_t to) {
  while (from < to) {
    const size_t n = static_cast<size_t>(std::min<uint64_t>(kZeroChunk, to - from));
    QFS_RETURN_IF_ERROR(PwriteAll(fd, ZeroBlock(), n, from));
    from += n;
  }
  return Status::Ok();
}

// Zeroes [from, to) of `path` and fsyncs it.
Status ZeroFileRange(const std::string& path, uint64_t from, uint64_t to) {
  int fd = open(path.c_str(), O_WRONLY | O_CLOEXEC);
  if (fd < 0) return ErrnoStatus("open " + path, errno);
  Status st = ZeroRange(fd, from, to);
  if (!st.ok()) st = Status(st.code(), path + ": " + st.message());
  if (st.ok() && fsync(fd) != 0) st = ErrnoStatus("fsync " + path, errno);
  close(fd);
  return st;
}

uint64_t ElapsedUs(Clock::time_point since) {
  return static_cast<uint64_t>(
      std::chrono::duration_cast<std::chrono::microseconds>(Clock::now() - since).count());
}

}  // namespace

struct TxnLog::Impl {
  struct Segment {
    uint64_t first_zxid;
    std::string path;
    uint64_t size;
  };

  explicit Impl(Options o) : opt(std::move(o)) {}

  Status Recover(uint64_t after_zxid, const std::function<void(const LogEntry&)>& replay);
  void WriterLoop();
  void WriteBatch(std::vector<LogEntry>* batch);
  void WriteBuffered(size_t entries);
  void DropFrom(uint64_t first_failed, uint64_t durable, const Status& why);
  Status EnsureRoom(uint64_t zxid, size_t frame);
  Status CreateSegment(uint64_t first_zxid, size_t frame);
  bool AdoptSpare(uint64_t first_zxid, const std::string& path);
  void MakeActive(int nfd, const std::string& path, uint64_t first_zxid, uint64_t size);
  void SpareLoop();
  void DropSpare();
  std::string SparePath() const { return opt.dir + "/" + kSpareName; }
  Status Truncate(uint64_t zxid);
  bool IdleLocked() const { return queue.empty() && !writing && !probing; }
  Status FullStatusLocked() const {
    const std::string m = "txn log cannot create a new segment: " + full_cause.message();
    return full_cause.code() == Code::kNoSpace ? NoSpace(m) : Unavailable(m);
  }

  const Options opt;

  // Guards the queue, the flags, the zxids and the counters in `stats`.
  mutable std::mutex mu;
  std::condition_variable work_cv;  // writer waits for entries
  std::condition_variable idle_cv;  // Flush/Close/TruncateAfter wait for the writer
  std::vector<LogEntry> queue;      // swapped with the writer's batch: both keep their capacity
  std::vector<LogEntry> batch;      // the writer thread's
  bool writing = false;             // a batch (and its callbacks) is in progress
  bool probing = false;             // an Append is retrying segment creation
  bool closing = false;
  bool disk_full = false;
  Status full_cause;
  Clock::time_point last_attempt;
  uint64_t last_zxid = 0;
  uint64_t durable_zxid = 0;
  Stats stats;

  // Guards `segments` (read by PurgeUpTo/stats while the writer adds segments).
  mutable std::mutex seg_mu;
  std::vector<Segment> segments;

  // Owned by the writer thread; touched elsewhere only while the writer is idle (see IdleLocked).
  int fd = -1;
  std::string active_path;
  uint64_t write_off = 0;
  uint64_t active_size = 0;
  std::string buf;

  std::mutex close_mu;
  std::thread writer;

  // The next segment, zero-filled and fsynced ahead of time by its own thread, so a roll-over
  // is a rename rather than 64 MiB of zeros on the writer's path (docs/ensemble.md, log segments).
  std::mutex spare_mu;
  std::condition_variable spare_cv;
  bool spare_ready = false;   // kSpareName exists, whole and durable
  bool spare_wanted = false;  // the spare thread should make one
  bool spare_asked = false;   // writer: asked for a spare while filling the active segment
  bool spare_stop = false;
  std::thread spare_thread;
};

Status TxnLog::Impl::Recover(uint64_t after_zxid,
                             const std::function<void(const LogEntry&)>& replay) {
  QFS_RETURN_IF_ERROR(EnsureDir(opt.dir));
  unlink(SparePath().c_str());  // a spare from an earlier run may be partial
  auto files = ListSegments(opt.dir);
  if (!files.ok()) return files.status();

  uint64_t last_good = 0;
  uint64_t active_end = 0;
  bool active_stray = false;  // the active segment has non-zero bytes after its data
  bool dir_changed = false;
  for (size_t i = 0; i < files->size(); i++) {
    const bool is_last = i + 1 == files->size();
    const std::string& path = (*files)[i].second;
    auto data = ReadFile(path);
    if (!data.ok()) return data.status();
    const std::string_view buf = *data;

    LogScanSegment seg;
    seg.path = path;
    seg.first_zxid = (*files)[i].first;
    seg.size = buf.size();
    std::vector<LogEntry> entries;
    QFS_RETURN_IF_ERROR(ScanSegment(buf, is_last, &last_good, &seg, [&](const LogScanRecord& r) {
      entries.push_back(LogEntry{r.zxid, std::string(r.payload)});
    }));
    if (seg.torn) {
      // Appends will continue here, so whatever a torn write left must go.
      QLOG_WARN("txn log: torn tail in %s at offset %" PRIu64 " (%s); truncating the segment there",
                path.c_str(), seg.end, seg.tail.c_str());
      QFS_RETURN_IF_ERROR(ZeroFileRange(path, seg.end, buf.size()));
    } else if (seg.stray) {
      QLOG_WARN("txn log: %s has stray bytes after its end of data at offset %" PRIu64,
                path.c_str(), seg.end);
    }
    if (seg.remove) {
      // A segment is named after its first record, so one without records cannot stay.
      QLOG_WARN("txn log: removing %s, which %s", path.c_str(),
                buf.size() < kSegHeader
                    ? "is shorter than a segment header (crash while creating it)"
                    : "holds no records");
      if (unlink(path.c_str()) != 0) return ErrnoStatus("unlink " + path, errno);
      dir_changed = true;
      continue;
    }
    for (const LogEntry& e : entries) {
      if (e.zxid > after_zxid && replay) replay(e);
    }
    segments.push_back(Segment{seg.first_zxid, path, buf.size()});
    active_end = seg.end;
    active_stray = seg.stray;
  }
  if (dir_changed) QFS_RETURN_IF_ERROR(FsyncDir(opt.dir));
  if (active_stray) {
    // An empty last segment was removed and appends resume in this one: clear the way.
    QFS_RETURN_IF_ERROR(ZeroFileRange(segments.back().path, active_end, segments.back().size));
  }

  if (!segments.empty()) {
    const Segment& s = segments.back();
    fd = open(s.path.c_str(), O_WRONLY | O_CLOEXEC);
    if (fd < 0) return ErrnoStatus("open " + s.path, errno);
    // The segment may come from a process that died before making its size durable.
    if (fsync(fd) != 0) return ErrnoStatus("fsync " + s.path, errno);
    QFS_RETURN_IF_ERROR(FsyncDir(opt.dir));
    active_path = s.path;
    write_off = active_end;
    active_size = s.size;
  }
  last_zxid = durable_zxid = last_good;
  QLOG_INFO("txn log: opened %s: %zu segments, last zxid 0x%s", opt.dir.c_str(), segments.size(),
            Hex(last_good).c_str());
  return Status::Ok();
}

// Renames the spare into place as the segment at `path`; false if there is no spare (or it
// cannot be used), and the caller creates the segment the slow way.
bool TxnLog::Impl::AdoptSpare(uint64_t first_zxid, const std::string& path) {
  {
    std::lock_guard<std::mutex> g(spare_mu);
    if (!spare_ready) return false;
    spare_ready = false;
  }
  struct stat st {};
  if (stat(path.c_str(), &st) == 0) return false;  // the slow path reports EEXIST
  if (rename(SparePath().c_str(), path.c_str()) != 0) return false;
  int nfd = open(path.c_str(), O_WRONLY | O_CLOEXEC);
  bool ok = nfd >= 0 && PwriteAll(nfd, kSegMagic, kSegHeader, 0).ok() && fdatasync(nfd) == 0 &&
            FsyncDir(opt.dir).ok();
  if (!ok) {
    if (nfd >= 0) close(nfd);
    unlink(path.c_str());
    (void)FsyncDir(opt.dir);
    return false;
  }
  MakeActive(nfd, path, first_zxid, opt.segment_bytes);
  std::lock_guard<std::mutex> g(mu);
  stats.spares_used++;
  return true;
}

void TxnLog::Impl::SpareLoop() {
  std::unique_lock<std::mutex> l(spare_mu);
  for (;;) {
    spare_cv.wait(l, [&] { return spare_stop || (spare_wanted && !spare_ready); });
    if (spare_stop) return;
    spare_wanted = false;
    l.unlock();
    const std::string path = SparePath();
    int sfd = open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    Status st =
        sfd >= 0 ? ZeroRange(sfd, 0, opt.segment_bytes) : ErrnoStatus("create " + path, errno);
    if (st.ok() && fsync(sfd) != 0) st = ErrnoStatus("fsync " + path, errno);
    if (sfd >= 0) close(sfd);
    if (!st.ok()) {
      // No room for a spare is not an error: the next roll-over zero-fills in place.
      QLOG_DEBUG("txn log: no spare segment: %s", st.ToString().c_str());
      unlink(path.c_str());
    }
    l.lock();
    if (st.ok()) spare_ready = true;
  }
}

// Gives the spare's space back (the disk is full, or the log closes).
void TxnLog::Impl::DropSpare() {
  std::lock_guard<std::mutex> g(spare_mu);
  if (spare_ready) unlink(SparePath().c_str());
  spare_ready = false;
}

Status TxnLog::Impl::CreateSegment(uint64_t first_zxid, size_t frame) {
  const uint64_t size = std::max<uint64_t>(opt.segment_bytes, kSegHeader + frame);
  const std::string path = opt.dir + "/" + SegmentName(first_zxid);
  if (size == opt.segment_bytes && AdoptSpare(first_zxid, path)) return Status::Ok();
  int nfd = open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
  if (nfd < 0) return ErrnoStatus("create " + path, errno);
  // Real zeros rather than fallocate: writes into unwritten extents make fdatasync journal.
  Status st = PwriteAll(nfd, kSegMagic, kSegHeader, 0);
  if (st.ok()) st = ZeroRange(nfd, kSegHeader, size);
  if (!st.ok()) st = Status(st.code(), "preallocate " + path + ": " + st.message());
  if (st.ok() && fsync(nfd) != 0) st = ErrnoStatus("fsync " + path, errno);
  if (st.ok()) st = FsyncDir(opt.dir);
  if (!st.ok()) {
    close(nfd);
    if (unlink(path.c_str()) != 0) {
      QLOG_ERROR("txn log: cannot remove partial segment %s: %s", path.c_str(), strerror(errno));
    }
    Status ds = FsyncDir(opt.dir);
    if (!ds.ok()) QLOG_ERROR("txn log: %s", ds.ToString().c_str());
    return st;
  }
  MakeActive(nfd, path, first_zxid, size);
  return Status::Ok();
}

// The new segment (header written, durable) becomes the one appends go to.
void TxnLog::Impl::MakeActive(int nfd, const std::string& path, uint64_t first_zxid,
                              uint64_t size) {
  if (fd >= 0) close(fd);
  fd = nfd;
  active_path = path;
  spare_asked = false;
  write_off = kSegHeader;
  active_size = size;
  std::lock_guard<std::mutex> g(seg_mu);
  segments.push_back(Segment{first_zxid, path, size});
}

Status TxnLog::Impl::EnsureRoom(uint64_t zxid, size_t frame) {
  if (fd >= 0 && write_off + frame <= active_size) return Status::Ok();
  return CreateSegment(zxid, frame);
}

void TxnLog::Impl::WriterLoop() {
  std::unique_lock<std::mutex> l(mu);
  for (;;) {
    work_cv.wait(l, [&] { return closing || !queue.empty(); });
    if (queue.empty()) return;  // closing and drained
    batch.swap(queue);
    writing = true;
    l.unlock();
    WriteBatch(&batch);
    batch.clear();  // the payloads' last references, outside the lock
    l.lock();
    writing = false;
    idle_cv.notify_all();
  }
}

void TxnLog::Impl::WriteBuffered(size_t entries) {
  if (buf.empty()) return;
  Status st = PwriteAll(fd, buf.data(), buf.size(), write_off);
  if (!st.ok()) {
    QFS_FATAL("txn log: write of %zu bytes at offset %" PRIu64 " to %s failed: %s", buf.size(),
              write_off, active_path.c_str(), st.message().c_str());
  }
  uint64_t us = 0;
  if (opt.sync) {
    const auto t0 = Clock::now();
    if (fdatasync(fd) != 0) {
      QFS_FATAL("txn log: fdatasync of %s failed: %s", active_path.c_str(), strerror(errno));
    }
    us = ElapsedUs(t0);
  }
  write_off += buf.size();
  if (!spare_asked && write_off * 2 > active_size) {  // half full: prepare the next segment
    spare_asked = true;
    {
      std::lock_guard<std::mutex> g(spare_mu);
      spare_wanted = !spare_ready;
    }
    spare_cv.notify_one();
  }
  std::lock_guard<std::mutex> g(mu);
  if (opt.sync) {
    stats.fsyncs++;
    stats.last_fsync_us = us;
    stats.max_fsync_us = std::max(stats.max_fsync_us, us);
  }
  stats.entries += entries;
  stats.bytes += buf.size();
  buf.clear();
}

void TxnLog::Impl::WriteBatch(std::vector<LogEntry>* batch) {
  buf.clear();
  uint64_t buffered_last = 0;  // highest zxid in `buf`
  uint64_t written_last = 0;   // highest zxid of this batch on disk
  size_t buffered = 0;
  for (LogEntry& e : *batch) {
    const size_t frame = RecordFrameSize(e.zxid, e.payload.size());
    if (fd < 0 || write_off + buf.size() + frame > active_size) {
      // Roll over: what fits goes to the current segment, durably, before the next one exists.
      if (buffered > 0) {
        WriteBuffered(buffered);
        written_last = buffered_last;
        buffered = 0;
      }
      Status st = CreateSegment(e.zxid, frame);
      if (!st.ok()) {
        DropFrom(e.zxid, written_last, st);
        return;
      }
    }
    AppendRecordFrame(&buf, e.zxid, e.payload.view());
    buffered_last = e.zxid;
    buffered++;
  }
  if (buffered > 0) {
    WriteBuffered(buffered);
    written_last = buffered_last;
  }
  {
    std::lock_guard<std::mutex> g(mu);
    durable_zxid = written_last;
  }
  if (opt.on_durable) opt.on_durable(written_last);
}

void TxnLog::Impl::DropFrom(uint64_t first_failed, uint64_t durable, const Status& why) {
  QLOG_ERROR(
      "txn log: %s; dropping queued entries from zxid 0x%s; appends fail until a new "
      "segment can be created",
      why.ToString().c_str(), Hex(first_failed).c_str());
  DropSpare();
  {
    std::lock_guard<std::mutex> g(mu);
    if (durable > 0) durable_zxid = durable;
    queue.clear();
    // Dropped entries were never appended as far as callers can tell: they may be re-appended.
    last_zxid = durable_zxid;
    disk_full = true;
    full_cause = why;
    last_attempt = Clock::now();
  }
  if (durable > 0 && opt.on_durable) opt.on_durable(durable);
  if (opt.on_failed) opt.on_failed(first_failed, why);
}

TxnLog::TxnLog(Options o) : impl_(std::make_unique<Impl>(std::move(o))) {}

TxnLog::~TxnLog() {
  Close();
}

Result<std::unique_ptr<TxnLog>> TxnLog::Open(const Options& options, uint64_t after_zxid,
                                             const std::function<void(const LogEntry&)>& replay) {
  if (options.dir.empty()) return InvalidArgument("txn log: empty directory");
  std::unique_ptr<TxnLog> log(new TxnLog(options));
  QFS_RETURN_IF_ERROR(log->impl_->Recover(after_zxid, replay));
  Impl* m = log->impl_.get();
  m->writer = std::thread([m] {
    pthread_setname_np(pthread_self(), "qfs-logwriter");
    m->WriterLoop();
  });
  m->spare_thread = std::thread([m] {
    pthread_setname_np(pthread_self(), "qfs-logspare");
    m->SpareLoop();
  });
  return log;
}

Status TxnLog::Append(LogEntry entry) {
  Impl& m = *impl_;
  std::unique_lock<std::mutex> l(m.mu);
  if (m.closing) return Unavailable("txn log is closed");
  QFS_CHECK(entry.zxid > m.last_zxid);
  if (m.disk_full) {
    if (m.probing || m.writing || Clock::now() - m.last_attempt < kRetryInterval) {
      return m.FullStatusLocked();
    }
    // Retry on this thread: the writer is idle (nothing is queued while the disk is full).
    m.probing = true;
    l.unlock();
    const size_t frame = RecordFrameSize(entry.zxid, entry.payload.size());
    Status st = m.EnsureRoom(entry.zxid, frame);
    l.lock();
    m.probing = false;
    m.last_attempt = Clock::now();
    m.idle_cv.notify_all();
    if (!st.ok()) {
      m.full_cause = st;
      return m.FullStatusLocked();
    }
    QLOG_INFO("txn log: created a new segment; accepting appends again");
    m.disk_full = false;
    if (m.closing) return Unavailable("txn log is closed");
  }
  m.last_zxid = entry.zxid;
  m.queue.push_back(std::move(entry));
  m.work_cv.notify_one();
  return Status::Ok();
}

void TxnLog::Flush() {
  Impl& m = *impl_;
  std::unique_lock<std::mutex> l(m.mu);
  m.idle_cv.wait(l, [&] { return m.IdleLocked(); });
}

void TxnLog::Close() {
  Impl& m = *impl_;
  std::lock_guard<std::mutex> once(m.close_mu);
  {
    std::unique_lock<std::mutex> l(m.mu);
    m.idle_cv.wait(l, [&] { return !m.probing; });
    m.closing = true;
    m.work_cv.notify_all();
  }
  if (m.writer.joinable()) m.writer.join();
  {
    std::lock_guard<std::mutex> g(m.spare_mu);
    m.spare_stop = true;
  }
  m.spare_cv.notify_all();
  if (m.spare_thread.joinable()) m.spare_thread.join();
  m.DropSpare();
  if (m.fd >= 0) {
    close(m.fd);
    m.fd = -1;
  }
}

uint64_t TxnLog::durable_zxid() const {
  std::lock_guard<std::mutex> g(impl_->mu);
  return impl_->durable_zxid;
}

uint64_t TxnLog::last_zxid() const {
  std::lock_guard<std::mutex> g(impl_->mu);
  return impl_->last_zxid;
}

Status TxnLog::PurgeUpTo(uint64_t zxid) {
  Impl& m = *impl_;
  std::lock_guard<std::mutex> g(m.seg_mu);
  // Segment i holds [first_i, first_{i+1} - 1]; the last segment is never removed.
  size_t n = 0;
  while (n + 1 < m.segments.size() && m.segments[n + 1].first_zxid - 1 <= zxid) n++;
  if (n == 0) return Status::Ok();
  Status st;
  size_t removed = 0;
  for (; removed < n; removed++) {
    const std::string& path = m.segments[removed].path;
    if (unlink(path.c_str()) != 0 && errno != ENOENT) {
      st = ErrnoStatus("unlink " + path, errno);
      break;
    }
  }
  m.segments.erase(m.segments.begin(), m.segments.begin() + static_cast<ptrdiff_t>(removed));
  if (removed > 0) {
    Status ds = FsyncDir(m.opt.dir);
    if (st.ok()) st = ds;
  }
  return st;
}

bool TxnLog::ReadAfter(uint64_t after, size_t max_entries, std::vector<LogEntry>* out) const {
  const Impl& m = *impl_;
  std::vector<Impl::Segment> segs;
  {
    std::lock_guard<std::mutex> g(m.seg_mu);
    segs = m.segments;
  }
  uint64_t durable = durable_zxid();
  if (after >= durable) return true;
  if (segs.empty() || after + 1 < segs.front().first_zxid) return false;
  size_t first = 0;  // the last segment that starts at or before after + 1
  while (first + 1 < segs.size() && segs[first + 1].first_zxid <= after + 1) first++;
  size_t taken = 0;
  for (size_t i = first; i < segs.size() && taken < max_entries; i++) {
    auto data = ReadFile(segs[i].path);
    if (!data.ok()) {
      QLOG_WARN("txn log: cannot read %s for a follower: %s", segs[i].path.c_str(),
                data.status().ToString().c_str());
      return false;
    }
    const std::string_view buf = *data;
    size_t pos = kSegHeader;
    while (pos < buf.size() && taken < max_entries) {
      std::string_view payload;
      size_t frame = 0;
      if (DecodeFrame(buf, pos, buf.size(), &payload, &frame) != FrameResult::kOk) break;
      pos += frame;
      LogRecord rec;
      if (!rec.ParseFromArray(payload.data(), static_cast<int>(payload.size()))) break;
      if (rec.zxid() > durable) return true;
      if (rec.zxid() <= after) continue;
      out->push_back({rec.zxid(), std::move(*rec.mutable_payload())});
      taken++;
    }
  }
  return true;
}

Status TxnLog::TruncateAfter(uint64_t zxid) {
  Impl& m = *impl_;
  std::unique_lock<std::mutex> l(m.mu);
  m.idle_cv.wait(l, [&] { return m.IdleLocked(); });
  if (m.closing) return Unavailable("txn log is closed");
  if (zxid >= m.last_zxid) return Status::Ok();
  return m.Truncate(zxid);
}

// Called with `mu` held and the writer idle.
Status TxnLog::Impl::Truncate(uint64_t zxid) {
  std::lock_guard<std::mutex> g(seg_mu);
  // Newest segments go first so that a crash part way leaves a prefix of the old log.
  bool removed = false;
  while (!segments.empty() && segments.back().first_zxid > zxid) {
    const Segment& s = segments.back();
    if (s.path == active_path && fd >= 0) {
      close(fd);
      fd = -1;
      active_path.clear();
    }
    if (unlink(s.path.c_str()) != 0 && errno != ENOENT) {
      return ErrnoStatus("unlink " + s.path, errno);
    }
    segments.pop_back();
    removed = true;
  }
  if (removed) QFS_RETURN_IF_ERROR(FsyncDir(opt.dir));

  uint64_t new_last = 0;
  if (!segments.empty()) {
    const Segment& s = segments.back();
    auto data = ReadFile(s.path);
    if (!data.ok()) return data.status();
    const std::string_view buf = *data;
    size_t pos = kSegHeader;
    size_t cut = npos;
    while (pos < buf.size()) {
      std::string_view payload;
      size_t frame = 0;
      if (DecodeFrame(buf, pos, buf.size(), &payload, &frame) != FrameResult::kOk) break;
      qfs::storage::LogRecord rec;
      if (!rec.ParseFromArray(payload.data(), static_cast<int>(payload.size()))) break;
      if (rec.zxid() <= zxid) {
        new_last = rec.zxid();
      } else if (cut == npos) {
        cut = pos;
      }
      pos += frame;
    }
    const size_t end_of_data = std::min(pos, buf.size());
    if (cut != npos) {
      // Zero to the end of the file if anything non-zero lies beyond the data.
      const size_t zero_to = FirstNonZero(buf, end_of_data) == npos ? end_of_data : buf.size();
      QFS_RETURN_IF_ERROR(ZeroFileRange(s.path, cut, zero_to));
    }
    if (s.path != active_path) {
      if (fd >= 0) close(fd);
      fd = open(s.path.c_str(), O_WRONLY | O_CLOEXEC);
      if (fd < 0) {
        active_path.clear();
        return ErrnoStatus("open " + s.path, errno);
      }
      active_path = s.path;
      active_size = s.size;
    }
    write_off = cut != npos ? cut : end_of_data;
  }
  QLOG_INFO("txn log: truncated after zxid 0x%s; last zxid now 0x%s", Hex(zxid).c_str(),
            Hex(new_last).c_str());
  last_zxid = durable_zxid = new_last;
  disk_full = false;  // space may have been freed, and the active segment changed
  return Status::Ok();
}

Status ScanLog(const std::string& path, const std::function<void(const LogScanRecord&)>& on_record,
               const std::function<void(const LogScanSegment&)>& on_segment) {
  struct stat st {};
  if (stat(path.c_str(), &st) != 0) return ErrnoStatus("stat " + path, errno);
  std::vector<std::pair<uint64_t, std::string>> files;
  if (S_ISDIR(st.st_mode)) {
    auto list = ListSegments(path);
    if (!list.ok()) return list.status();
    files = std::move(*list);
  } else {
    const size_t slash = path.rfind('/');
    const std::string name = slash == std::string::npos ? path : path.substr(slash + 1);
    uint64_t z;
    if (!ParseSegmentName(name, &z)) {
      return InvalidArgument(path + ": not a log segment (the name must be log.<16 hex digits>)");
    }
    files.emplace_back(z, path);
  }
  uint64_t last_good = 0;
  for (size_t i = 0; i < files.size(); i++) {
    auto data = ReadFile(files[i].second);
    if (!data.ok()) return data.status();
    LogScanSegment seg;
    seg.path = files[i].second;
    seg.first_zxid = files[i].first;
    seg.size = data->size();
    QFS_RETURN_IF_ERROR(ScanSegment(*data, i + 1 == files.size(), &last_good, &seg, on_record));
    on_segment(seg);
  }
  return Status::Ok();
}

TxnLog::Stats TxnLog::stats() const {
  Stats s;
  {
    std::lock_guard<std::mutex> g(impl_->mu);
    s = impl_->stats;
  }
  std::lock_guard<std::mutex> g(impl_->seg_mu);
  s.segments = impl_->segments.size();
  for (const auto& seg : impl_->segments) s.disk_bytes += seg.size;
  return s;
}

}  // namespace qfs::storage
