#include "daemon/replica/store.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>

#include "consensus/storage/epoch_file.h"
#include "consensus/storage/file_util.h"
#include "consensus/storage/snapshot_file.h"
#include "consensus/util/log.h"

namespace qfs {

double NowMs() {
  using namespace std::chrono;
  return duration<double, std::milli>(steady_clock::now().time_since_epoch()).count();
}

namespace {

Status ApplyEntry(tree::DataTree* t, const storage::LogEntry& e) {
  txn::Txn txn;
  if (!txn.ParseFromString(e.payload))
    return Corruption("log entry " + std::to_string(e.zxid) + " is not a valid txn");
  if (static_cast<uint64_t>(txn.zxid()) != e.zxid)
    return Corruption("log entry " + std::to_string(e.zxid) + " carries zxid " +
                      std::to_string(txn.zxid()));
  if (txn.zxid() <= t->last_zxid())
    return Corruption("log entry " + std::to_string(e.zxid) + " is not after the tree's zxid " +
                      std::to_string(t->last_zxid()));
  t->Apply(txn);
  return Status::Ok();
}

Result<std::unique_ptr<tree::DataTree>> LoadNewestSnapshot(const std::string& dir,
                                                           const tree::TreeOptions& topts,
                                                           RecoveryInfo* info) {
  auto snaps = storage::ListSnapshots(dir);
  if (!snaps.ok()) return snaps.status();
  for (const auto& s : *snaps) {
    auto reader = storage::SnapshotReader::Open(s.path);
    if (!reader.ok()) {
      QLOG_WARN("snapshot %s is not usable (%s); trying an older one", s.path.c_str(),
                reader.status().ToString().c_str());
      continue;
    }
    auto& r = **reader;
    auto t =
        tree::DataTree::LoadSnapshot(topts, [&](std::string_view* rec) { return r.Next(rec); });
    if (!t.ok()) {
      QLOG_WARN("snapshot %s does not load (%s); trying an older one", s.path.c_str(),
                t.status().ToString().c_str());
      continue;
    }
    if (static_cast<uint64_t>((*t)->last_zxid()) != r.last_zxid()) {
      QLOG_WARN("snapshot %s: header zxid %llx but tree zxid %llx; trying an older one",
                s.path.c_str(), static_cast<unsigned long long>(r.last_zxid()),
                static_cast<unsigned long long>((*t)->last_zxid()));
      continue;
    }
    info->snapshot_zxid = r.last_zxid();
    info->snapshot_path = s.path;
    return std::move(*t);
  }
  return std::make_unique<tree::DataTree>(topts);
}

}  // namespace

Result<std::unique_ptr<Store>> Store::Open(const StoreOptions& options) {
  double t0 = NowMs();
  std::unique_ptr<Store> s(new Store());
  s->options_ = options;
  QFS_RETURN_IF_ERROR(storage::EnsureDir(options.data_dir));
  QFS_RETURN_IF_ERROR(storage::EnsureDir(options.log_dir));
  // One process per data directory: a second one would interleave writes into the same log.
  s->lock_fd_ = open((options.data_dir + "/LOCK").c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (s->lock_fd_ < 0) return ErrnoStatus("cannot open " + options.data_dir + "/LOCK", errno);
  // A killed predecessor may still be exiting (a large heap takes a moment to free; a mount's
  // guard may need 200 ms to unwedge it, fusefs/guard.h): wait a little before refusing.
  for (int waited_ms = 0; flock(s->lock_fd_, LOCK_EX | LOCK_NB) != 0; waited_ms += 50) {
    if (waited_ms == 0)
      QLOG_INFO("waiting for the process that holds %s/LOCK to exit", options.data_dir.c_str());
    if (waited_ms >= 3000)
      return Unavailable("data directory " + options.data_dir +
                         " is in use by another process (it holds " + options.data_dir + "/LOCK)");
    usleep(50000);
  }
  QFS_RETURN_IF_ERROR(storage::RemoveTempSnapshots(options.data_dir));

  tree::TreeOptions topts;
  topts.max_data_bytes = options.max_data_bytes;
  topts.enforce_quota = options.enforce_quota;
  topts.static_config = options.static_config;
  auto t = LoadNewestSnapshot(options.data_dir, topts, &s->recovery_);
  if (!t.ok()) return t.status();
  s->tree_ = std::move(*t);

  storage::TxnLog::Options lo;
  lo.dir = options.log_dir;
  lo.segment_bytes = options.segment_bytes;
  lo.sync = options.sync;
  lo.on_durable = options.on_durable;
  lo.on_failed = options.on_failed;
  Status replay_status;
  uint64_t first_replayed = 0;
  auto& ends = s->recovery_.epoch_ends;
  auto note_epoch = [&ends](uint64_t zxid) {
    if (zxid == 0) return;
    if (!ends.empty() && ends.back().first == (zxid >> 32)) {
      ends.back().second = zxid;
    } else {
      ends.emplace_back(zxid >> 32, zxid);
    }
  };
  note_epoch(static_cast<uint64_t>(s->tree_->last_zxid()));
  auto log = storage::TxnLog::Open(lo, s->tree_->last_zxid(), [&](const storage::LogEntry& e) {
    if (!replay_status.ok()) return;
    note_epoch(e.zxid);
    if (first_replayed == 0) first_replayed = e.zxid;
    replay_status = ApplyEntry(s->tree_.get(), e);
    s->recovery_.replayed_txns++;
  });
  if (!log.ok()) return log.status();
  QFS_RETURN_IF_ERROR(replay_status);
  s->log_ = std::move(*log);

  // A snapshot older than the oldest log entry it needs means txns are missing: refuse.
  uint64_t snap_zxid = s->recovery_.snapshot_zxid;
  if (first_replayed != 0 && (first_replayed >> 32) == (snap_zxid >> 32) &&
      first_replayed != snap_zxid + 1) {
    return Corruption("the log resumes at zxid " + std::to_string(first_replayed) +
                      " but the snapshot ends at " + std::to_string(snap_zxid) +
                      ": txns in between are missing; refusing to start");
  }

  auto accepted = storage::ReadEpoch(options.data_dir, storage::kAcceptedEpochFile);
  if (!accepted.ok()) return accepted.status();
  auto current = storage::ReadEpoch(options.data_dir, storage::kCurrentEpochFile);
  if (!current.ok()) return current.status();
  s->accepted_epoch_ = *accepted;
  s->current_epoch_ = *current;

  std::reverse(ends.begin(), ends.end());
  s->recovery_.last_zxid = s->tree_->last_zxid();
  s->recovery_.load_ms = NowMs() - t0;
  QLOG_INFO(
      "recovered: snapshot %s (zxid 0x%llx), %llu txns replayed from the log, last zxid "
      "0x%llx, %zu znodes, digest %016llx, in %.1f ms",
      s->recovery_.snapshot_path.empty() ? "(none)" : s->recovery_.snapshot_path.c_str(),
      static_cast<unsigned long long>(snap_zxid),
      static_cast<unsigned long long>(s->recovery_.replayed_txns),
      static_cast<unsigned long long>(s->recovery_.last_zxid), s->tree_->node_count(),
      static_cast<unsigned long long>(s->tree_->digest()), s->recovery_.load_ms);
  return s;
}

Store::~Store() {
  WaitSnapshot();
  if (log_) log_->Close();
  if (lock_fd_ >= 0) close(lock_fd_);
}

void Store::SetEpoch(uint64_t epoch) {
  // ZAB's order: acceptedEpoch first, then currentEpoch.
  storage::WriteEpoch(options_.data_dir, storage::kAcceptedEpochFile, epoch);
  accepted_epoch_ = epoch;
  storage::WriteEpoch(options_.data_dir, storage::kCurrentEpochFile, epoch);
  current_epoch_ = epoch;
}

void Store::SetAcceptedEpoch(uint64_t epoch) {
  storage::WriteEpoch(options_.data_dir, storage::kAcceptedEpochFile, epoch);
  accepted_epoch_ = epoch;
}

void Store::SetCurrentEpoch(uint64_t epoch) {
  storage::WriteEpoch(options_.data_dir, storage::kCurrentEpochFile, epoch);
  current_epoch_ = epoch;
}

Status RemoveSnapshotsAfter(const std::string& dir, uint64_t zxid) {
  auto snaps = storage::ListSnapshots(dir);
  if (!snaps.ok()) return snaps.status();
  bool removed = false;
  for (const auto& s : *snaps) {
    if (s.last_zxid <= zxid) continue;
    QLOG_WARN("removing snapshot %s: it is past zxid 0x%llx, where the leader truncated us",
              s.path.c_str(), static_cast<unsigned long long>(zxid));
    if (unlink(s.path.c_str()) != 0 && errno != ENOENT)
      return ErrnoStatus("unlink " + s.path, errno);
    removed = true;
  }
  return removed ? storage::FsyncDir(dir) : Status::Ok();
}

Status InstallReceivedSnapshot(Store* store, const std::string& received_path, uint64_t zxid) {
  storage::TxnLog& log = store->log();
  log.Flush();
  QFS_RETURN_IF_ERROR(log.TruncateAfter(zxid));
  QFS_RETURN_IF_ERROR(RemoveSnapshotsAfter(store->options().data_dir, zxid));
  const std::string& dir = store->options().data_dir;
  std::string final_path = dir + "/" + storage::SnapshotName(zxid);
  if (rename(received_path.c_str(), final_path.c_str()) != 0)
    return ErrnoStatus("rename " + received_path + " to " + final_path, errno);
  QFS_RETURN_IF_ERROR(storage::FsyncDir(dir));
  return log.TruncateAfter(0);
}

bool Store::StartSnapshot() {
  if (child_ > 0) return false;
  uint64_t zxid = tree_->last_zxid();
  double t0 = NowMs();
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
  // The sanitizers' allocators are not made safe across fork() in a threaded process: a child
  // can deadlock on an allocator lock another thread held at the fork (seen in the ASan test
  // run). Sanitized builds (tests only) write the snapshot in-process instead.
  {
    child_zxid_ = zxid;
    child_start_ms_ = t0;
    auto w = storage::SnapshotWriter::Create(options_.data_dir, zxid);
    Status st = w.ok() ? tree_->WriteSnapshot([&](std::string_view r) { return (*w)->Add(r); })
                       : w.status();
    if (st.ok()) st = (*w)->Finish();
    if (!st.ok())
      QLOG_WARN("snapshot at zxid 0x%llx abandoned: %s", static_cast<unsigned long long>(zxid),
                st.ToString().c_str());
    {
      std::lock_guard<std::mutex> l(stats_mu_);
      snap_stats_.last_fork_ms = NowMs() - t0;
      snap_stats_.max_fork_ms = std::max(snap_stats_.max_fork_ms, snap_stats_.last_fork_ms);
    }
    FinishSnapshot(st.ok() ? 0 : (1 << 8));  // as if a child had exited with 0 or 1
    return true;
  }
#endif
  pid_t parent = getpid();
  pid_t pid = fork();
  if (pid < 0) {
    QLOG_WARN("snapshot: fork failed: %s", strerror(errno));
    std::lock_guard<std::mutex> l(stats_mu_);
    snap_stats_.failed++;
    return false;
  }
  if (pid == 0) {
    // Child: one thread, a frozen copy of the tree. Dies with the parent.
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != parent) _exit(3);
    // The child competes with the member's loop for CPU and disk: it yields to both, so a
    // snapshot lengthens itself rather than the clients' tail latency (docs/ensemble.md
    // "Snapshots").
    (void)setpriority(PRIO_PROCESS, 0, 10);
    (void)syscall(SYS_ioprio_set, 1 /* IOPRIO_WHO_PROCESS */, 0, (3 << 13) /* IOPRIO_CLASS_IDLE */);
    close(lock_fd_);  // the lock belongs to the parent: it must go when the parent dies
    auto w = storage::SnapshotWriter::Create(options_.data_dir, zxid);
    if (!w.ok()) {
      QLOG_WARN("snapshot: %s", w.status().ToString().c_str());
      _exit(1);
    }
    Status st = tree_->WriteSnapshot([&](std::string_view r) { return (*w)->Add(r); });
    if (st.ok()) st = (*w)->Finish();
    if (!st.ok()) {
      QLOG_WARN("snapshot at zxid 0x%llx abandoned: %s", static_cast<unsigned long long>(zxid),
                st.ToString().c_str());
      _exit(1);
    }
    _exit(0);
  }
  double pause = NowMs() - t0;
  {
    std::lock_guard<std::mutex> l(stats_mu_);
    snap_stats_.last_fork_ms = pause;
    if (pause > snap_stats_.max_fork_ms) snap_stats_.max_fork_ms = pause;
  }
  child_ = pid;
  child_zxid_ = zxid;
  child_start_ms_ = t0;
  QLOG_INFO("snapshot of zxid 0x%llx started (pid %d, fork took %.2f ms)",
            static_cast<unsigned long long>(zxid), pid, pause);
  return true;
}

void Store::PollSnapshot() {
  if (child_ <= 0) return;
  int status = 0;
  pid_t r = waitpid(child_, &status, WNOHANG);
  if (r == child_) FinishSnapshot(status);
}

void Store::WaitSnapshot() {
  if (child_ <= 0) return;
  int status = 0;
  pid_t r;
  do {
    r = waitpid(child_, &status, 0);
  } while (r < 0 && errno == EINTR);
  if (r == child_) FinishSnapshot(status);
}

void Store::FinishSnapshot(int wait_status) {
  child_ = -1;
  std::unique_lock<std::mutex> l(stats_mu_);
  if (!WIFEXITED(wait_status) || WEXITSTATUS(wait_status) != 0) {
    snap_stats_.failed++;
    l.unlock();
    QLOG_WARN("snapshot of zxid 0x%llx failed (status %d); the log still holds every txn",
              static_cast<unsigned long long>(child_zxid_), wait_status);
    return;
  }
  snap_stats_.taken++;
  snap_stats_.last_zxid = child_zxid_;
  snap_stats_.last_ms = NowMs() - child_start_ms_;
  auto snaps = storage::ListSnapshots(options_.data_dir);
  if (snaps.ok() && !snaps->empty()) snap_stats_.last_bytes = snaps->front().size;
  const SnapshotStats done = snap_stats_;
  l.unlock();
  QLOG_INFO("snapshot of zxid 0x%llx written: %llu bytes in %.1f ms",
            static_cast<unsigned long long>(child_zxid_),
            static_cast<unsigned long long>(done.last_bytes), done.last_ms);
  if (options_.snap_retain_count == 0) return;  // keep everything (tests replay from scratch)
  auto oldest =
      storage::PurgeSnapshots(options_.data_dir, static_cast<size_t>(options_.snap_retain_count));
  if (!oldest.ok()) {
    QLOG_WARN("purging snapshots: %s", oldest.status().ToString().c_str());
    return;
  }
  // The log must still reach back to the oldest snapshot we keep.
  if (*oldest > 0) {
    Status st = log_->PurgeUpTo(*oldest);
    if (!st.ok()) QLOG_WARN("purging log segments: %s", st.ToString().c_str());
  }
}

Result<std::unique_ptr<tree::DataTree>> ReplayLogFromScratch(const std::string& log_dir,
                                                             size_t max_data_bytes) {
  tree::TreeOptions topts;
  topts.max_data_bytes = max_data_bytes;
  auto t = std::make_unique<tree::DataTree>(topts);
  storage::TxnLog::Options lo;
  lo.dir = log_dir;
  Status st;
  auto log = storage::TxnLog::Open(lo, 0, [&](const storage::LogEntry& e) {
    if (st.ok()) st = ApplyEntry(t.get(), e);
  });
  if (!log.ok()) return log.status();
  (*log)->Close();
  QFS_RETURN_IF_ERROR(st);
  return t;
}

}  // namespace qfs
