// The replica's durable state: the znode tree, the txn log and the snapshots in one place.
//
// Open() recovers: the newest snapshot that validates is loaded (older ones are tried in turn),
// then the log after it is replayed. Snapshots are taken in a fork()ed child, which sees the tree
// frozen at a txn boundary while the parent keeps applying; the pause is the fork() itself.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include "consensus/storage/txn_log.h"
#include "consensus/util/result.h"
#include "daemon/tree/data_tree.h"

namespace qfs {

struct StoreOptions {
  std::string data_dir;  // snapshots, epoch files
  std::string log_dir;   // txn log segments
  uint64_t segment_bytes = 64ull << 20;
  size_t max_data_bytes = 1 << 20;
  bool enforce_quota = false;  // enforceQuota (docs/quotas.md)
  std::string static_config;   // tree::TreeOptions::static_config (docs/reconfig.md)
  int snap_retain_count = 3;   // 0: purge nothing
  bool sync = true;
  std::function<void(uint64_t durable_zxid)> on_durable;
  std::function<void(uint64_t first_failed_zxid, const Status& why)> on_failed;
};

struct RecoveryInfo {
  uint64_t snapshot_zxid = 0;  // 0: no snapshot was loaded
  std::string snapshot_path;
  uint64_t replayed_txns = 0;
  uint64_t last_zxid = 0;
  double load_ms = 0;
  // The newest epochs present (snapshot and log) and the last zxid of each, newest first.
  std::vector<std::pair<uint64_t, uint64_t>> epoch_ends;
};

struct SnapshotStats {
  uint64_t taken = 0;
  uint64_t failed = 0;
  uint64_t last_zxid = 0;
  uint64_t last_bytes = 0;
  double last_ms = 0;       // fork to finished file
  double last_fork_ms = 0;  // the pause the parent saw
  double max_fork_ms = 0;
};

class Store {
 public:
  static Result<std::unique_ptr<Store>> Open(const StoreOptions& options);
  ~Store();

  tree::DataTree& tree() { return *tree_; }
  const tree::DataTree& tree() const { return *tree_; }
  storage::TxnLog& log() { return *log_; }
  const RecoveryInfo& recovery() const { return recovery_; }
  const StoreOptions& options() const { return options_; }

  // Starts a snapshot of the tree as it is now, in a child process. False if one is running.
  // The caller must not be applying txns during this call.
  bool StartSnapshot();
  bool snapshot_running() const { return child_ > 0; }
  // Reaps a finished snapshot child (non-blocking) and purges old snapshots and log segments.
  void PollSnapshot();
  // Waits for a running snapshot to finish (shutdown, tests).
  void WaitSnapshot();
  // A copy: other threads read it (mntr, tests) while the loop updates it.
  SnapshotStats snapshot_stats() const {
    std::lock_guard<std::mutex> l(stats_mu_);
    return snap_stats_;
  }

  // ZAB epochs (acceptedEpoch, currentEpoch files in data_dir).
  uint64_t accepted_epoch() const { return accepted_epoch_; }
  uint64_t current_epoch() const { return current_epoch_; }
  // Persists acceptedEpoch then currentEpoch = epoch (fatal on I/O failure).
  void SetEpoch(uint64_t epoch);
  void SetAcceptedEpoch(uint64_t epoch);
  void SetCurrentEpoch(uint64_t epoch);
  // The last snapshot finished by a child (zxid, path), for streaming it to a learner.
  uint64_t last_snapshot_zxid() const { return snapshot_stats().last_zxid; }

 private:
  Store() = default;
  void FinishSnapshot(int wait_status);

  StoreOptions options_;
  std::unique_ptr<tree::DataTree> tree_;
  std::unique_ptr<storage::TxnLog> log_;
  RecoveryInfo recovery_;
  mutable std::mutex stats_mu_;
  SnapshotStats snap_stats_;  // written under stats_mu_
  uint64_t accepted_epoch_ = 0, current_epoch_ = 0;
  pid_t child_ = -1;
  int lock_fd_ = -1;
  uint64_t child_zxid_ = 0;
  double child_start_ms_ = 0;
};

// Reads every log entry (after any snapshot is ignored: from the first stored one) into a fresh
// tree; used to check that snapshot + log recovery and a clean replay agree.
Result<std::unique_ptr<tree::DataTree>> ReplayLogFromScratch(const std::string& log_dir,
                                                             size_t max_data_bytes);

// Makes a snapshot file received from the leader (complete and fsync'ed at `received_path`) the
// member's state at `zxid`: drops log entries after zxid, renames the file into place, then drops
// the rest of the log, so that a crash at any point leaves either the old state (a prefix of it)
// or the new one. The caller reopens the store afterwards.
// Removes snapshots newer than `zxid` (TRUNC).
Status RemoveSnapshotsAfter(const std::string& dir, uint64_t zxid);
Status InstallReceivedSnapshot(Store* store, const std::string& received_path, uint64_t zxid);

double NowMs();  // monotonic clock, milliseconds

}  // namespace qfs
