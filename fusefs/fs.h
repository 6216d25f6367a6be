// The FUSE low-level operations of the mounted tree. Reads come from the local replica under the
// tree's shared lock; writes go through the pipeline under the mount's session, like a network
// client's, and the handler waits (bounded, interruptible) for the reply.
#pragma once

#include <sys/types.h>

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "daemon/replica/pipeline.h"
#include "fusefs/inode_table.h"
#include "fusefs/notifier.h"

struct fuse_lowlevel_ops;

namespace qfs::fusefs {

struct FsOptions {
  std::string mountpoint;          // absolute
  int write_timeout_ms = 10000;    // mount.writeTimeoutMs: bounded wait for a write's reply
  double cache_timeout_s = 86400;  // entry/attr cache: long, changes are invalidated precisely
  size_t max_data_bytes = 1 << 20;
  std::vector<tree::Id> extra_ids;  // mount.auth's ids, carried by every caller's requests
  bool root_is_super = false;       // mount.rootIsSuper
};

class Fs {
 public:
  Fs(FsOptions o, Pipeline* pipeline, int64_t session_id, InodeTable* table, OwnChanges* own,
     EchoState* echo, Notifier* notifier);
  ~Fs();
  static const fuse_lowlevel_ops* Ops();

  // The view's rule for a node's type (see docs/fuse.md).
  static bool IsDirView(const std::string& path, tree::Kind kind, const tree::Stat& st);
  // The type the mount shows for `path` now (exists = false if there is no such node), and
  // optionally its data length.
  bool IsDirNow(const std::string& path, bool* exists, uint64_t* data_length = nullptr) const;
  // The names of the nodes under `path` in the tree now (none if it is gone).
  std::vector<std::string> ChildrenNow(const std::string& path) const;

  void set_session(int64_t id) { session_ = id; }
  int64_t session() const { return session_; }
  // Called with kSessionExpired from a write: the mount needs a new session.
  void set_on_session_lost(std::function<void()> fn) { on_session_lost_ = std::move(fn); }

  struct Impl;  // the handlers (fs.cc)
  // The open file handles, for stat, rename and unlink (fs.cc).
  struct OpenFiles;

 private:
  friend struct Impl;
  FsOptions o_;
  Pipeline* pipeline_;
  std::atomic<int64_t> session_;
  InodeTable* table_;
  OwnChanges* own_;
  EchoState* echo_;
  Notifier* notifier_;
  std::function<void()> on_session_lost_;
  // A commit at close() replaced a lost session; the next checked call reports it (fs.cc).
  std::atomic<bool> loss_unreported_{false};
  uid_t uid_;
  gid_t gid_;
  std::unique_ptr<OpenFiles> open_files_;
};

}  // namespace qfs::fusefs
