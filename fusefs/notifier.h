// The notifier thread: turns the local replica's applied changes into kernel cache invalidations
// (fuse_lowlevel_notify_inval_*) and, for changes this mount did not make itself, into "echo"
// syscalls on the mounted path so that inotify watchers see them (docs/fuse-design.md).
//
// OnApply runs on the apply thread under the tree's write lock: it only queues. Everything that
// touches the kernel runs here, never inside a FUSE handler (echo rule 1).
#pragma once

#include <sys/types.h>

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <unordered_set>
#include <vector>

#include "daemon/replica/pipeline.h"
#include "fusefs/inode_table.h"

struct fuse_session;

namespace qfs::fusefs {

// Changes this mount is making itself (the kernel already reported them to inotify): the
// handler marks them before submitting and unmarks on the reply; the apply listener, which runs
// before the reply, sees the mark and the notifier does not echo them (rule 7's spirit).
class OwnChanges {
 public:
  struct Mark {
    std::string path;    // for a sequential create: the prefix before the 10-digit counter
    uint32_t types = 0;  // bit per tree::Change::Type
    bool sequential = false;
  };
  uint64_t Add(std::vector<Mark> marks);
  void Remove(uint64_t token);
  bool Match(const tree::Change& c) const;

 private:
  mutable std::mutex mu_;
  uint64_t next_ = 1;
  std::vector<std::pair<uint64_t, std::vector<Mark>>> live_;
};

inline uint32_t Bit(tree::Change::Type t) {
  return 1u << t;
}

// What the notifier thread is doing right now, for the handlers that answer its syscalls.
struct EchoState {
  // kModify: open for writing, write 1 byte, close; kOpenClose: the same without the write (a
  // created empty file). The handlers treat both alike (echo rule 3).
  enum Op { kNone, kCreate, kDelete, kModify, kOpenClose, kAttrib };
  std::atomic<pid_t> tid{0};  // gettid() of the notifier thread (fuse_req_ctx()->pid is a tid)
  std::mutex mu;
  Op op = kNone;
  std::string path;  // the znode the current echo is about
  bool is_dir = false;
  bool IsNotifier(pid_t caller) const { return caller != 0 && caller == tid.load(); }
  void Get(Op* op_out, std::string* path_out, bool* dir_out) {
    std::lock_guard<std::mutex> l(mu);
    *op_out = op;
    *path_out = path;
    *dir_out = is_dir;
  }
};

class Notifier {
 public:
  struct Options {
    std::string mountpoint;  // absolute
    size_t max_queue = 100000;
    bool echo = true;
  };
  // `is_dir_now(path, &exists, &data_length)` tells the type the mount shows for a node now,
  // and its data length.
  using IsDirNow = std::function<bool(const std::string&, bool*, uint64_t*)>;
  Notifier(Options o, InodeTable* table, OwnChanges* own, EchoState* echo, IsDirNow is_dir_now);
  ~Notifier();
  void Start(fuse_session* se);
  void Stop();

  // Apply thread, under the tree lock: queue only.
  void OnApply(int64_t zxid, const std::vector<tree::Change>& changes);
  // A handler's request to drop the caches of an inode (e.g. a failed commit left data in the
  // page cache). Never blocks.
  void InvalidateInode(uint64_t id);
  // Drops the kernel's dentry `name` under directory inode `parent_id` (e.g. a rename to a
  // "x-@seq" name left a dentry under that name). Never blocks.
  void InvalidateName(uint64_t parent_id, std::string name);
  // The member serves again after it stopped serving: its tree may have been replaced wholesale
  // (truncated by the leader, or a snapshot) without apply listeners. Drops every cached entry,
  // negative ones included, and every inode's attributes and pages. Never blocks (queue only;
  // any thread, e.g. the pipeline's role listener).
  void DropAll();
  // `children_now(dir)`: the names under `dir` in the tree now (DropAll drops their negative
  // entries). Set before Start.
  void set_children_now(std::function<std::vector<std::string>(const std::string&)> fn) {
    children_now_ = std::move(fn);
  }
  // Waits until the changes of every zxid <= `zxid` are processed, at most `timeout_ms`.
  bool WaitProcessed(int64_t zxid, int timeout_ms);

  struct Stats {
    uint64_t changes = 0, echoes = 0, invalidations = 0, overflows = 0, drops = 0;
  };
  Stats stats() const;

 private:
  struct Item {
    int64_t zxid;
    tree::Change::Type type;
    std::string path;
    bool own;
    uint64_t inode;     // handler requests: the inode (InvalidateInode) or parent (InvalidateName)
    bool name = false;  // InvalidateName: `path` is the name under `inode`
  };
  void Run();
  void Process(const Item& it);
  void InvalAll();
  void Echo(EchoState::Op op, const std::string& path, bool is_dir);
  // The events a local create gives: IN_CREATE, then for a file IN_OPEN, IN_MODIFY (with data)
  // and IN_CLOSE_WRITE, for a directory with data the same on its `.data`.
  void EchoCreate(const std::string& path);
  void InvalEntry(const std::string& path);
  void InvalInode(uint64_t id, bool attrs_only = false);

  Options o_;
  InodeTable* table_;
  OwnChanges* own_;
  EchoState* echo_;
  IsDirNow is_dir_now_;
  std::function<std::vector<std::string>(const std::string&)> children_now_;
  fuse_session* se_ = nullptr;

  mutable std::mutex mu_;
  std::condition_variable cv_, done_cv_;
  std::deque<Item> q_;
  std::unordered_set<std::string> queued_data_;  // coalesces repeated data changes of a path
  bool overflow_ = false;
  bool drop_all_ = false;  // DropAll() asked
  bool stop_ = false;
  int64_t queued_zxid_ = 0, done_zxid_ = 0;
  std::atomic<uint64_t> n_changes_{0}, n_echoes_{0}, n_invals_{0}, n_overflows_{0}, n_drops_{0};
  std::thread thread_;
};

}  // namespace qfs::fusefs
