#define FUSE_USE_VERSION 314
#include "fusefs/fs.h"

#include <dirent.h>
#include <fcntl.h>
#include <fuse_lowlevel.h>
#include <limits.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstring>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <thread>

#include "consensus/util/checksum.h"
#include "consensus/util/log.h"
#include "daemon/service/reads.h"
#include "daemon/tree/prepare.h"
#include "fusefs/errno_map.h"
#include "fusefs/names.h"
#include "fusefs/xattrs.h"

namespace qfs::fusefs {

using tree::Err;

namespace {

// Longest name component, as statfs reports (FUSE itself allows 1024).
constexpr size_t kNameMax = 255;

// fi->fh of the notifier's echo opens: they store nothing. Echo rules: docs/fuse-design.md.
constexpr uint64_t kEchoFh = 0;

// One open file: a private buffer committed as one update at flush/close/fsync.
struct Handle {
  std::mutex mu;
  uint64_t id = 0;
  std::string path;  // the znode; for a pending create the path to create (suffixes removed)
  bool is_data = false;
  bool writable = false;
  bool append = false;
  bool dirty = false;
  bool conditional = false;  // commit only if the node is still at `version`
  bool pending = false;      // the node is created by the commit
  bool eph = false, seq = false;
  int32_t version = -1;
  int64_t mzxid = 0;
  int error = 0;            // sticky: EFBIG poisons the handle, nothing is committed
  bool written = false;     // write() or ftruncate() since open
  bool registered = false;  // in the PendingCommits registry, under reg_path
  bool unlinked = false;    // its name was removed (or replaced): nothing is committed
  std::string reg_path;
  std::string data;
  std::vector<tree::Id> auth;  // the opener's ids: a commit at close/release is checked with them
  pid_t opener = 0;            // the thread that opened it
};

// Creates and truncations whose commit waits for the first write or the last close. A shell's
// `echo x > f` opens f, dup2()s the fd and closes the original before writing: that first close
// must not publish an empty file. Until such a handle commits, lookups and opens of its path
// (and listings of its directory) wait a little, so `touch f; ls f` still sees f.
class PendingCommits {
 public:
  void Add(const std::string& path) {
    std::lock_guard<std::mutex> l(mu_);
    paths_.insert(path);
    parents_.insert(std::string(tree::ParentPath(path)));
  }
  void Remove(const std::string& path) {
    {
      std::lock_guard<std::mutex> l(mu_);
      if (auto it = paths_.find(path); it != paths_.end()) paths_.erase(it);
      if (auto it = parents_.find(std::string(tree::ParentPath(path))); it != parents_.end())
        parents_.erase(it);
    }
    cv_.notify_all();
  }
  void WaitPath(const std::string& path) { Wait(paths_, path); }
  void WaitParent(const std::string& parent) { Wait(parents_, parent); }

 private:
  void Wait(const std::multiset<std::string>& set, const std::string& key) {
    std::unique_lock<std::mutex> l(mu_);
    if (set.empty()) return;
    cv_.wait_for(l, std::chrono::milliseconds(200), [&] { return !set.contains(key); });
  }
  std::mutex mu_;
  std::condition_variable cv_;
  std::multiset<std::string> paths_, parents_;
};

PendingCommits& Pending() {
  static PendingCommits p;
  return p;
}

// Fixed version for a handle whose node was renamed after someone else changed it: its
// conditional commit then fails with ESTALE, as it would have at the old name.
constexpr int32_t kStaleVersion = INT32_MAX;

}  // namespace

// Every open file handle of the mount, in open order; fi->fh points to one of them. The
// owning references live here: a handler that finds a handle through this list keeps its copy
// while it locks the handle, so a concurrent release cannot free it. Lock order: this list,
// then (after letting go of it) handle mutexes; never this list while holding a handle's mutex.
struct Fs::OpenFiles {
  std::mutex mu;
  std::vector<std::shared_ptr<Handle>> all;

  uint64_t Add(std::unique_ptr<Handle> h) {
    Handle* raw = h.get();
    std::lock_guard<std::mutex> l(mu);
    all.push_back(std::shared_ptr<Handle>(std::move(h)));
    return reinterpret_cast<uint64_t>(raw);
  }
  void Remove(Handle* h) {
    std::shared_ptr<Handle> last;  // freed after the lock is let go
    std::lock_guard<std::mutex> l(mu);
    for (auto it = all.begin(); it != all.end(); ++it) {
      if (it->get() != h) continue;
      last = std::move(*it);
      all.erase(it);
      break;
    }
  }
  std::vector<std::shared_ptr<Handle>> Snapshot() {
    std::lock_guard<std::mutex> l(mu);
    return all;
  }
};

namespace {

struct DirHandle {
  struct Ent {
    std::string name;
    uint64_t ino;
    bool dir;
  };
  std::vector<Ent> ents;
};

struct View {
  bool exists = false;
  tree::Stat stat;
  tree::Kind kind = tree::Kind::kUnset;
  bool is_dir = false;
};

struct Waiter {
  std::mutex mu;
  std::condition_variable cv;
  bool done = false;
  bool interrupted = false;
  Reply reply;
};

void OnInterrupt(fuse_req_t, void* data) {
  auto* w = static_cast<Waiter*>(data);
  {
    std::lock_guard<std::mutex> l(w->mu);
    w->interrupted = true;
  }
  w->cv.notify_all();
}

uint64_t InoOf(const Inode& in) {
  if (in.path == "/" && !in.is_data) return 1;
  // czxid-based: stable for the node's life, new for a re-created node; the path tells apart
  // nodes created by one multi (same czxid).
  uint64_t h = Hash64(in.path, static_cast<uint64_t>(in.czxid) * 2 + (in.is_data ? 1 : 0));
  h &= (1ull << 63) - 1;
  return h < 2 ? h + 2 : h;
}

Handle* H(fuse_file_info* fi) {
  return reinterpret_cast<Handle*>(fi->fh);
}

tree::CreateMode ModeOf(bool eph, bool seq) {
  if (eph && seq) return tree::CreateMode::kEphemeralSequential;
  if (eph) return tree::CreateMode::kEphemeral;
  if (seq) return tree::CreateMode::kPersistentSequential;
  return tree::CreateMode::kPersistent;
}

tree::Op CreateOp(const std::string& path, std::string data, tree::Kind kind, bool eph, bool seq) {
  tree::Op op;
  op.type = tree::OpType::kCreate;
  op.path = path;
  op.data = std::move(data);
  op.acl = tree::OpenAcl();
  op.mode = ModeOf(eph, seq);
  op.kind = kind;
  return op;
}

tree::Request One(tree::Op op) {
  tree::Request r;
  r.type = tree::RequestType::kOp;
  r.ops.push_back(std::move(op));
  return r;
}

}  // namespace

struct Fs::Impl {
  static Fs& F(fuse_req_t req) { return *static_cast<Fs*>(fuse_req_userdata(req)); }
  static bool FromNotifier(Fs& fs, fuse_req_t req) {
    return fs.echo_->IsNotifier(fuse_req_ctx(req)->pid);
  }

  // The caller's ids (docs/fuse.md, "Identities and ACLs on the mount"): the mount's address,
  // its uid and every group, mount.auth's ids, and super for root with mount.rootIsSuper.
  static std::vector<tree::Id> CallerIds(const Fs& fs, fuse_req_t req) {
    std::vector<tree::Id> ids = {{"ip", "127.0.0.1"}};
    const fuse_ctx* c = fuse_req_ctx(req);
    ids.push_back({"unix", std::to_string(c->uid)});
    ids.push_back({"unix", "g:" + std::to_string(c->gid)});
    gid_t groups[64];
    int n = fuse_req_getgroups(req, 64, groups);  // from /proc: fails if the caller is gone
    for (int i = 0; i < std::min(n, 64); i++) {
      tree::Id g{"unix", "g:" + std::to_string(groups[i])};
      if (std::find(ids.begin(), ids.end(), g) == ids.end()) ids.push_back(std::move(g));
    }
    for (const auto& id : fs.o_.extra_ids)
      if (std::find(ids.begin(), ids.end(), id) == ids.end()) ids.push_back(id);
    if (c->uid == 0 && fs.o_.root_is_super) ids.push_back({"super", ""});
    return ids;
  }

  static View Look(const Fs& fs, const std::string& path) {
    View v;
    if (tree::ValidatePath(path) != Err::kOk) return v;
    fs.pipeline_->Read([&](const tree::DataTree& t) {
      if (t.Exists(path, &v.stat) == Err::kOk) {
        v.exists = true;
        t.GetKind(path, &v.kind);
      }
    });
    v.is_dir = v.exists && IsDirView(path, v.kind, v.stat);
    return v;
  }

  // The node a name refers to: the exact name first, then (for "x@eph") the name without the
  // suffix, so that `rmdir lock@eph` releases what `mkdir lock@eph` took.
  static std::string Resolve(const Fs& fs, const std::string& parent, const char* name, View* v) {
    std::string path = JoinPath(parent, name);
    *v = Look(fs, path);
    if (v->exists) return path;
    CreateName cn = ParseCreateName(name);
    if (cn.ephemeral && !cn.sequential && !cn.base.empty()) {
      std::string p2 = JoinPath(parent, cn.base);
      View v2 = Look(fs, p2);
      if (v2.exists) {
        *v = v2;
        return p2;
      }
    }
    return path;
  }

  static void FillAttr(const Fs& fs, const Inode& in, const tree::Stat& st, struct stat* a) {
    memset(a, 0, sizeof *a);
    a->st_ino = InoOf(in);
    a->st_mode = in.is_dir ? (S_IFDIR | 0755) : (S_IFREG | 0644);
    a->st_nlink = 1;  // unknown subdirectory count: tools must not use the leaf optimization
    a->st_uid = fs.uid_;
    a->st_gid = fs.gid_;
    a->st_size = st.data_length;
    a->st_blksize = 4096;
    a->st_blocks = (st.data_length + 511) / 512;
    timespec m{st.mtime / 1000, (st.mtime % 1000) * 1000000};
    a->st_mtim = m;
    a->st_atim = m;
    a->st_ctim = m;
  }

  static void ReplyEntry(Fs& fs, fuse_req_t req, uint64_t id, const Inode& in, const tree::Stat& st,
                         bool volatile_name) {
    fuse_entry_param e;
    memset(&e, 0, sizeof e);
    e.ino = id;
    e.generation = 1;
    double t = volatile_name ? 0 : fs.o_.cache_timeout_s;
    e.entry_timeout = t;
    e.attr_timeout = in.pending || in.ghost ? 0 : fs.o_.cache_timeout_s;
    FillAttr(fs, in, st, &e.attr);
    if (fuse_reply_entry(req, &e) != 0) fs.table_->Forget(id, 1);
  }

  // Negative entries are not cached (docs/fuse.md, "Reading, caching, freshness"): a write
  // refused with EEXIST must leave the name visible at once, and the notifier that drops a
  // cached negative entry cannot run inside the refused mkdir/create, which holds the parent.
  static void ReplyNegative(fuse_req_t req) {
    fuse_entry_param e;
    memset(&e, 0, sizeof e);
    e.ino = 0;
    e.entry_timeout = 0;
    fuse_reply_entry(req, &e);
  }

  // Whether the mount's session is alive in this member's tree. The session expired (e.g.
  // while this member was cut off, the leader expired it): the replica says so once it has
  // caught up. Only ephemeral creates check the session when prepared, so without this other
  // writes would go on under a dead session and the mount would never get a new one.
  static bool SessionLive(Fs& fs) {
    int64_t sid = fs.session_;
    return fs.pipeline_->Read([&](const tree::DataTree& t) { return t.sessions().count(sid) > 0; });
  }

  // A lost session is reported once (docs/fuse.md, "Sessions and failures"): ECONNRESET at a call
  // the caller checks (a write(), mkdir, rm, ...), and the mount opens a new one. `what` names the
  // call in the log.
  static int ReportSessionLost(Fs& fs, const std::string& what) {
    QLOG_WARN("mount: %s: the mount's session 0x%llx has expired; opening a new one", what.c_str(),
              static_cast<unsigned long long>(fs.session_.load()));
    if (fs.on_session_lost_) fs.on_session_lost_();
    return ECONNRESET;
  }
  // 0, or ECONNRESET once for a session lost since the last report: dead now, or replaced by a
  // commit that carried on (below) without telling anyone.
  static int CheckSession(Fs& fs, const std::string& what) {
    if (!SessionLive(fs)) {
      fs.loss_unreported_ = false;
      return ReportSessionLost(fs, what);
    }
    return fs.loss_unreported_.exchange(false) ? ECONNRESET : 0;
  }

  // How Call treats a lost session. kReport: ECONNRESET (a syscall the caller checks).
  // kCarryOn: a commit at close() or fsync: a shell ignores close()'s result, and the commit
  // does not depend on the session, so the mount opens a new one and commits under it; an
  // ephemeral file is then owned by the new session. The loss is still reported, at the next
  // call that checks (docs/fuse.md, "Write errors").
  enum class OnSessionLost { kReport, kCarryOn };

  // Submits a write (or, with `sync`, a freshness barrier) and waits for its reply, at most
  // mount.writeTimeoutMs, and stops waiting on a FUSE interrupt (Ctrl-C). Returns 0 or an errno.
  static int Call(Fs& fs, fuse_req_t req, tree::Request r, std::vector<OwnChanges::Mark> marks,
                  Reply* out, bool sync = false, OnSessionLost on_lost = OnSessionLost::kReport) {
    const std::string first_path = r.ops.empty() ? "" : r.ops[0].path;
    if (!sync && on_lost == OnSessionLost::kReport) {
      if (int rc = CheckSession(fs, first_path)) return rc;
    } else if (!sync && !SessionLive(fs)) {
      ReportSessionLost(fs, first_path);
      if (!SessionLive(fs)) return ECONNRESET;
      fs.loss_unreported_ = true;
    }
    int rc = CallOnce(fs, req, r, marks, out, sync);
    if (rc == ECONNRESET && on_lost == OnSessionLost::kCarryOn && SessionLive(fs)) {
      // Refused for the old session (an ephemeral create prepared after it expired): nothing
      // was applied; once more under the new one.
      fs.loss_unreported_ = true;
      rc = CallOnce(fs, req, std::move(r), std::move(marks), out, sync);
    }
    return rc;
  }

  static int CallOnce(Fs& fs, fuse_req_t req, tree::Request r, std::vector<OwnChanges::Mark> marks,
                      Reply* out, bool sync) {
    auto w = std::make_shared<Waiter>();
    uint64_t token = marks.empty() ? 0 : fs.own_->Add(std::move(marks));
    OwnChanges* own = fs.own_;
    ReplyFn cb = [w, own, token](Reply&& rep) {
      if (token) own->Remove(token);
      {
        std::lock_guard<std::mutex> l(w->mu);
        w->reply = std::move(rep);
        w->done = true;
      }
      w->cv.notify_all();
    };
    if (req) fuse_req_interrupt_func(req, OnInterrupt, w.get());
    auto deadline =
        std::chrono::steady_clock::now() + std::chrono::milliseconds(fs.o_.write_timeout_ms);
    bool submitted = false;
    // docs/fuse.md, "Write errors": without a serving leader nothing is sent, so a write that
    // failed here never turns up once the quorum returns.
    const bool serving = WaitServing(fs, w.get(), deadline);
    if (!serving) {
      // falls through: not submitted, answered ETIMEDOUT (or EINTR) below
    } else if (sync) {
      fs.pipeline_->Sync(cb, /*linearizable=*/true);
      submitted = true;
    } else {
      r.session_id = fs.session_;
      if (r.auth.empty() && req) r.auth = CallerIds(fs, req);
      // TrySubmit, not Submit: a full pipeline must not make the wait uninterruptible.
      while (!(submitted = fs.pipeline_->TrySubmit(r, cb))) {
        {
          std::lock_guard<std::mutex> l(w->mu);
          if (w->interrupted || std::chrono::steady_clock::now() >= deadline) break;
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(1));
      }
    }
    if (!submitted && token) own->Remove(token);
    int rc;
    Err err = Err::kOk;
    {
      std::unique_lock<std::mutex> l(w->mu);
      w->cv.wait_until(l, deadline, [&] { return w->done || w->interrupted; });
      if (w->done) {
        err = w->reply.err;
        rc = ErrnoOf(err);
        if (out) *out = std::move(w->reply);
      } else {
        rc = w->interrupted ? EINTR : kNoQuorumErrno;
      }
    }
    if (req) fuse_req_interrupt_func(req, nullptr, nullptr);
    std::string what = sync ? std::string("sync") : (r.ops.empty() ? "" : r.ops[0].path);
    if (rc == kNoQuorumErrno && !serving) {
      QLOG_WARN(
          "mount: %s failed: no quorum: this member had no serving leader for "
          "mount.writeTimeoutMs=%d ms; nothing was sent",
          what.c_str(), fs.o_.write_timeout_ms);
    } else if (rc == kNoQuorumErrno) {
      if (w->done)
        QLOG_WARN("mount: %s failed: %s (this member has no quorum)", what.c_str(),
                  tree::ErrName(err));
      else
        QLOG_WARN(
            "mount: %s not answered within mount.writeTimeoutMs=%d ms (no quorum?); it may "
            "still be applied",
            what.c_str(), fs.o_.write_timeout_ms);
    } else if (rc == EINTR) {
      QLOG_DEBUG("mount: %s interrupted; it may still be applied", what.c_str());
    } else if (rc == EROFS) {
      // Said once for the whole mount when the member turned read-only (mount.cc).
      QLOG_DEBUG("mount: %s refused: this member is read-only", what.c_str());
    } else if (rc == ECONNRESET) {
      QLOG_WARN("mount: %s: the mount's session is gone (%s); opening a new one", what.c_str(),
                tree::ErrName(err));
      if (fs.on_session_lost_) fs.on_session_lost_();
    }
    return rc;
  }

  // Waits until this member serves (follows a leader with a quorum), polling: losing the quorum
  // is rare and the wait is bounded by the caller's deadline. False on the deadline or an
  // interrupt. A read-only member does not wait: the pipeline refuses the write at once.
  static bool WaitServing(Fs& fs, Waiter* w, std::chrono::steady_clock::time_point deadline) {
    for (MemberStatus m = fs.pipeline_->member(); !m.serving && !m.read_only;
         m = fs.pipeline_->member()) {
      {
        std::lock_guard<std::mutex> l(w->mu);
        if (w->interrupted || std::chrono::steady_clock::now() >= deadline) return false;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(2));
    }
    return true;
  }

  // A barrier for linearizable reads: every write committed before it is applied locally and
  // its kernel caches are dropped.
  // The mount's early report of a hard quota (docs/quotas.md): 0, or EDQUOT if committing
  // `size` bytes to `path` (created if absent) would exceed a hard limit, by the rule and the
  // tree prepare uses, so that `echo x > f` fails at the open() or write() a shell checks. The
  // leader's prepare still decides at the commit.
  static int QuotaErrno(Fs& fs, const std::string& path, size_t size) {
    Err e = fs.pipeline_->Read([&](const tree::DataTree& t) {
      std::optional<std::string> q = t.QuotaRootOf(path);
      if (!q) return Err::kOk;
      tree::QuotaDelta d{1, static_cast<int64_t>(size)};
      tree::Stat st;
      if (t.Exists(path, &st) == Err::kOk) d = {0, static_cast<int64_t>(size) - st.data_length};
      return tree::CheckQuota(t, *q, d);
    });
    return ErrnoOf(e);
  }

  static int SyncBarrier(Fs& fs, fuse_req_t req) {
    Reply rep;
    int rc = Call(fs, req, {}, {}, &rep, true);
    if (rc == 0) fs.notifier_->WaitProcessed(rep.zxid, 200);
    return rc;
  }

  static bool GetInode(Fs& fs, fuse_req_t req, fuse_ino_t ino, Inode* in) {
    if (fs.table_->Get(ino, in)) return true;
    fuse_reply_err(req, ESTALE);
    return false;
  }

  // ---- open files (docs/fuse.md, "Open files") ----

  // The pending create a name refers to on this mount (as Resolve: "x@eph" is also "x"),
  // or 0. With `ref`, +1 lookup.
  static uint64_t PendingName(Fs& fs, const std::string& parent, const char* name, bool ref) {
    std::string path = JoinPath(parent, name);
    CreateName cn = ParseCreateName(name);
    std::string base = cn.ephemeral && !cn.sequential && !cn.base.empty()
                           ? JoinPath(parent, cn.base)
                           : std::string();
    for (const std::string& p : {path, base}) {
      if (p.empty()) continue;
      if (uint64_t id = ref ? fs.table_->RefPending(p) : fs.table_->FindPending(p)) return id;
    }
    return 0;
  }
  static uint64_t RefPendingName(Fs& fs, const std::string& parent, const char* name) {
    return PendingName(fs, parent, name, true);
  }

  // A lookup of a file this mount is creating: its pending inode, with its buffer's size.
  static void ReplyPending(Fs& fs, fuse_req_t req, uint64_t id, const char* name) {
    Inode in;
    struct stat a;
    if (!fs.table_->Get(id, &in) || AttrOf(fs, id, nullptr, &a) != 0) {
      fs.table_->Forget(id, 1);
      return ReplyNegative(req);
    }
    tree::Stat st;
    st.data_length = static_cast<int32_t>(a.st_size);
    ReplyEntry(fs, req, id, in, st, ParseCreateName(name).has_suffix());
  }

  // Registers a new handle with the mount's open files; the value for fi->fh.
  static uint64_t Track(Fs& fs, std::unique_ptr<Handle> h) {
    return fs.open_files_->Add(std::move(h));
  }
  static void Untrack(Fs& fs, fuse_file_info* fi) { fs.open_files_->Remove(H(fi)); }

  // The name of the handles of inode `id` (or, with id 0, at `path`) was removed or replaced:
  // they stay readable and writable, and commit nothing.
  static void MarkUnlinked(Fs& fs, uint64_t id, const std::string& path) {
    for (auto& sh : fs.open_files_->Snapshot()) {
      std::lock_guard<std::mutex> l(sh->mu);
      if (id ? sh->id == id : (sh->path == path && !sh->is_data)) sh->unlinked = true;
    }
  }

  // A pending create that will not be created (its commit failed): its name goes from this
  // mount, and the kernel's entry for it too.
  static void DropPendingName(Fs& fs, uint64_t id, const std::string& path) {
    fs.table_->DropPending(id);
    if (uint64_t parent = fs.table_->Find(std::string(tree::ParentPath(path))))
      fs.notifier_->InvalidateName(parent, std::string(tree::BaseName(path)));
  }

  // open() of a file this mount is creating. Read-only: a snapshot of the newest writable
  // handle's buffer (replied here; false). Writable: waits (at most 1 s) for the creator's
  // commit, then true (open it as committed, `in` is updated), else EBUSY (false).
  static bool OpenPending(Fs& fs, fuse_req_t req, fuse_ino_t ino, fuse_file_info* fi, Inode* in) {
    if ((fi->flags & O_ACCMODE) != O_RDONLY) {
      for (int i = 0; i < 100 && in->pending; i++) {
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
        if (!fs.table_->Get(ino, in)) break;
      }
      if (in->pending) fuse_reply_err(req, EBUSY);
      return !in->pending;
    }
    auto h = std::make_unique<Handle>();
    h->opener = fuse_req_ctx(req)->pid;
    bool found = false;
    auto hs = fs.open_files_->Snapshot();
    for (auto it = hs.rbegin(); it != hs.rend() && !found; ++it) {
      std::lock_guard<std::mutex> l((*it)->mu);
      if ((*it)->id != ino || !(*it)->writable) continue;
      h->data = (*it)->data;
      found = true;
    }
    if (!found) return fuse_reply_err(req, ENOENT), false;
    h->id = ino;
    h->path = in->path;
    h->mzxid = -1;
    fi->keep_cache = 0;
    AppendDirect(fi);
    fi->fh = Track(fs, std::move(h));
    if (fuse_reply_open(req, fi) != 0) Untrack(fs, fi);
    return false;
  }

  // ---- lookups and attributes ----

  static void Lookup(fuse_req_t req, fuse_ino_t parent, const char* name) {
    Fs& fs = F(req);
    Inode p;
    if (!GetInode(fs, req, parent, &p)) return;
    if (!p.is_dir || p.is_data) return (void)fuse_reply_err(req, ENOTDIR);
    if (strlen(name) > kNameMax) return (void)fuse_reply_err(req, ENAMETOOLONG);
    std::string path = JoinPath(p.path, name);
    if (FromNotifier(fs, req)) {
      EchoState::Op op;
      std::string epath;
      bool edir;
      fs.echo_->Get(&op, &epath, &edir);
      if (epath == path && op == EchoState::kCreate) return ReplyNegative(req);  // rule 4
      if (epath == path && op == EchoState::kDelete) {  // the node is gone: a ghost to unlink
        Inode g;
        g.path = path;
        g.is_dir = edir;
        g.ghost = true;
        uint64_t id = fs.table_->RefDetached(g);
        return ReplyEntry(fs, req, id, g, tree::Stat(), true);
      }
    }
    if (name == kDataName) {
      // `.data` exists while the directory has data, so that tools that create it with
      // O_EXCL (cp, mv, tar) work; writing it creates it, removing it empties the data.
      View v = Look(fs, p.path);
      if (!v.exists || v.stat.data_length == 0) return ReplyNegative(req);
      Inode in;
      in.path = p.path;
      in.czxid = v.stat.czxid;
      in.is_data = true;
      uint64_t id = fs.table_->Ref(p.path, v.stat.czxid, false, true);
      return ReplyEntry(fs, req, id, in, v.stat, false);
    }
    if (uint64_t id = RefPendingName(fs, p.path, name)) return ReplyPending(fs, req, id, name);
    Pending().WaitPath(path);
    View v;
    std::string real = Resolve(fs, p.path, name, &v);
    bool volatile_name = ParseCreateName(name).has_suffix();
    if (!v.exists) return ReplyNegative(req);
    Inode in;
    in.path = real;
    in.czxid = v.stat.czxid;
    in.is_dir = v.is_dir;
    uint64_t id = fs.table_->Ref(real, v.stat.czxid, v.is_dir, false);
    ReplyEntry(fs, req, id, in, v.stat, volatile_name);
  }

  static void Forget(fuse_req_t req, fuse_ino_t ino, uint64_t n) {
    F(req).table_->Forget(ino, n);
    fuse_reply_none(req);
  }

  static void ForgetMulti(fuse_req_t req, size_t count, fuse_forget_data* f) {
    for (size_t i = 0; i < count; i++) F(req).table_->Forget(f[i].ino, f[i].nlookup);
    fuse_reply_none(req);
  }

  // What the open handles of inode `id` say about its content (docs/fuse.md, "Writing"): the
  // newest writable handle with uncommitted writes is the file's content on this mount.
  struct OpenView {
    bool any = false;       // some handle is open
    bool dirty = false;     // `size` is a writable handle's uncommitted buffer
    size_t size = 0;        // that buffer's size, else the newest handle's
    bool unlinked = false;  // the handles' name was removed
  };
  static OpenView OpenViewOf(Fs& fs, uint64_t id) {
    OpenView ov;
    auto hs = fs.open_files_->Snapshot();
    for (auto it = hs.rbegin(); it != hs.rend(); ++it) {
      Handle* h = it->get();
      std::lock_guard<std::mutex> l(h->mu);
      if (h->id != id) continue;
      if (!ov.any) {
        ov.any = true;
        ov.size = h->data.size();
        ov.unlinked = h->unlinked;
      }
      if (h->writable && h->dirty && !h->error) {
        ov.dirty = true;
        ov.size = h->data.size();
        ov.unlinked = h->unlinked;
        break;
      }
    }
    return ov;
  }

  // Attributes of an inode now; 0 or an errno. `from_handle`: the size is an open handle's
  // (not to be cached by the kernel).
  static int AttrOf(Fs& fs, fuse_ino_t ino, fuse_file_info* fi, struct stat* a,
                    bool* from_handle = nullptr) {
    Inode in;
    if (!fs.table_->Get(ino, &in)) return ESTALE;
    tree::Stat st;
    if (in.ghost) {
      FillAttr(fs, in, st, a);
      return 0;
    }
    OpenView ov = OpenViewOf(fs, ino);
    if (Handle* h = fi && fi->fh != kEchoFh ? H(fi) : nullptr) {
      std::lock_guard<std::mutex> l(h->mu);  // ftruncate: the size of that handle
      if (h->dirty && !h->error) {
        ov.dirty = true;
        ov.size = h->data.size();
      }
    }
    bool gone = in.pending;
    if (!in.pending) {
      View v = Look(fs, in.path);
      gone = !v.exists || v.stat.czxid != in.czxid;
      if (!gone) st = v.stat;
    }
    // A node that is gone (unlinked, or never committed) lives on while a handle is open.
    if (gone && !ov.any) return ENOENT;
    if (gone || ov.dirty) st.data_length = static_cast<int32_t>(ov.size);
    FillAttr(fs, in, st, a);
    if ((gone && !in.pending) || ov.unlinked) a->st_nlink = 0;
    if (from_handle) *from_handle = gone || ov.dirty;
    return 0;
  }

  static void GetAttr(fuse_req_t req, fuse_ino_t ino, fuse_file_info* fi) {
    Fs& fs = F(req);
    struct stat a;
    bool from_handle = false;
    int rc = AttrOf(fs, ino, fi, &a, &from_handle);
    if (rc) return (void)fuse_reply_err(req, rc);
    Inode in;
    fs.table_->Get(ino, &in);
    fuse_reply_attr(req, &a, in.pending || in.ghost || from_handle ? 0 : fs.o_.cache_timeout_s);
  }

  static void SetAttr(fuse_req_t req, fuse_ino_t ino, struct stat* attr, int to_set,
                      fuse_file_info* fi) {
    Fs& fs = F(req);
    Inode in;
    if (!GetInode(fs, req, ino, &in)) return;
    if (!FromNotifier(fs, req)) {
      // Modes and owners are fixed (access is ZooKeeper's ACL, user.zk.acl): setting them to
      // what they are is a no-op, so cp -r and tar work; changing them is EPERM.
      if ((to_set & FUSE_SET_ATTR_MODE) &&
          (attr->st_mode & 07777) != static_cast<mode_t>(in.is_dir ? 0755 : 0644))
        return (void)fuse_reply_err(req, EPERM);
      if ((to_set & FUSE_SET_ATTR_UID) && attr->st_uid != fs.uid_)
        return (void)fuse_reply_err(req, EPERM);
      if ((to_set & FUSE_SET_ATTR_GID) && attr->st_gid != fs.gid_)
        return (void)fuse_reply_err(req, EPERM);
      if (to_set & FUSE_SET_ATTR_SIZE) {
        if (in.is_dir) return (void)fuse_reply_err(req, EISDIR);
        if (static_cast<uint64_t>(attr->st_size) > fs.o_.max_data_bytes)
          return (void)fuse_reply_err(req, EFBIG);
        size_t size = static_cast<size_t>(attr->st_size);
        Handle* h = fi && fi->fh != kEchoFh ? H(fi) : nullptr;
        if (h) {
          std::lock_guard<std::mutex> l(h->mu);
          h->data.resize(size);
          h->dirty = true;
          h->written = true;
        } else {
          // truncate(2) without an open file: one conditional update now.
          if (IsReserved(in.path)) return (void)fuse_reply_err(req, EPERM);
          std::string data;
          tree::Stat st;
          Err e = fs.pipeline_->Read(
              [&](const tree::DataTree& t) { return t.GetData(in.path, &data, &st); });
          if (e != Err::kOk) return (void)fuse_reply_err(req, ErrnoOf(e));
          data.resize(size);
          tree::Op op;
          op.type = tree::OpType::kSetData;
          op.path = in.path;
          op.data = std::move(data);
          op.version = st.version;
          int rc = Call(fs, req, One(std::move(op)), {{in.path, Bit(tree::Change::kDataChanged)}},
                        nullptr);
          if (rc) return (void)fuse_reply_err(req, rc);
        }
      }
      // Times are the node's own (mtime is set by each update): setting them is a no-op.
    }
    GetAttr(req, ino, fi);
  }

  // ---- creating and deleting ----

  static int PrepareCreate(const Inode& parent, const char* name, CreateName* cn,
                           std::string* path) {
    if (!parent.is_dir || parent.is_data) return ENOTDIR;
    if (strlen(name) > kNameMax) return ENAMETOOLONG;
    *cn = ParseCreateName(name);
    if (cn->base.empty() && !cn->sequential) return EINVAL;
    if (cn->base == kDataName) return EEXIST;
    *path = JoinPath(parent.path, cn->base);
    if (IsReserved(*path)) return EPERM;
    if (tree::ValidatePath(*path, cn->sequential) != Err::kOk) return EINVAL;
    return 0;
  }

  // The notifier's mknod/mkdir echo: the node exists already; answer with it.
  static void EchoCreate(Fs& fs, fuse_req_t req, const Inode& p, const char* name) {
    std::string path = JoinPath(p.path, name);
    View v = Look(fs, path);
    if (!v.exists) return (void)fuse_reply_err(req, ENOENT);
    Inode in;
    in.path = path;
    in.czxid = v.stat.czxid;
    in.is_dir = v.is_dir;
    uint64_t id = fs.table_->Ref(path, v.stat.czxid, v.is_dir, false);
    ReplyEntry(fs, req, id, in, v.stat, false);
  }

  static void MakeNode(fuse_req_t req, fuse_ino_t parent, const char* name, bool dir) {
    Fs& fs = F(req);
    Inode p;
    if (!GetInode(fs, req, parent, &p)) return;
    if (FromNotifier(fs, req)) return EchoCreate(fs, req, p, name);
    CreateName cn;
    std::string path;
    if (int rc = PrepareCreate(p, name, &cn, &path)) return (void)fuse_reply_err(req, rc);
    Reply rep;
    tree::Request r = One(CreateOp(path, "", dir ? tree::Kind::kDirectory : tree::Kind::kFile,
                                   cn.ephemeral, cn.sequential));
    int rc =
        Call(fs, req, std::move(r), {{path, Bit(tree::Change::kCreated), cn.sequential}}, &rep);
    if (rc) return (void)fuse_reply_err(req, rc);
    const tree::OpResult& res = rep.results.at(0);
    Inode in;
    in.path = res.path;
    in.czxid = res.stat.czxid;
    in.is_dir = dir;
    uint64_t id = fs.table_->Ref(res.path, res.stat.czxid, dir, false);
    ReplyEntry(fs, req, id, in, res.stat, cn.has_suffix());
  }

  static void Mkdir(fuse_req_t req, fuse_ino_t parent, const char* name, mode_t) {
    MakeNode(req, parent, name, true);
  }

  static void Mknod(fuse_req_t req, fuse_ino_t parent, const char* name, mode_t mode, dev_t) {
    if (!S_ISREG(mode)) return (void)fuse_reply_err(req, EPERM);
    MakeNode(req, parent, name, false);
  }

  static void Remove(fuse_req_t req, fuse_ino_t parent, const char* name, bool dir) {
    Fs& fs = F(req);
    if (FromNotifier(fs, req)) return (void)fuse_reply_err(req, 0);  // rule 5: already gone
    Inode p;
    if (!GetInode(fs, req, parent, &p)) return;
    if (!p.is_dir || p.is_data) return (void)fuse_reply_err(req, ENOTDIR);
    tree::Op op;
    std::vector<OwnChanges::Mark> marks;
    if (!dir && name == kDataName) {
      // Removing a directory's .data empties its data.
      if (IsReserved(p.path)) return (void)fuse_reply_err(req, EPERM);
      op.type = tree::OpType::kSetData;
      op.path = p.path;
      marks.push_back({p.path, Bit(tree::Change::kDataChanged)});
    } else {
      if (!dir) {
        if (uint64_t id = PendingName(fs, p.path, name, false)) {
          // A file this mount is creating: its name goes for good, its handles stay open.
          fs.table_->DropPending(id);
          MarkUnlinked(fs, id, "");
          return (void)fuse_reply_err(req, 0);
        }
      }
      View v;
      std::string path = Resolve(fs, p.path, name, &v);
      if (!v.exists) return (void)fuse_reply_err(req, ENOENT);
      if (IsReserved(path) || path == "/") return (void)fuse_reply_err(req, EPERM);
      if (dir && !v.is_dir) return (void)fuse_reply_err(req, ENOTDIR);
      if (!dir && v.is_dir) return (void)fuse_reply_err(req, EISDIR);
      op.type = tree::OpType::kDelete;
      op.path = path;
      marks.push_back({path, Bit(tree::Change::kDeleted)});
    }
    std::string removed = op.type == tree::OpType::kDelete && !dir ? op.path : "";
    int rc = Call(fs, req, One(std::move(op)), std::move(marks), nullptr);
    if (rc == 0 && !removed.empty()) MarkUnlinked(fs, 0, removed);  // open handles commit nothing
    fuse_reply_err(req, rc);
  }

  static void Unlink(fuse_req_t req, fuse_ino_t parent, const char* name) {
    Remove(req, parent, name, false);
  }
  static void Rmdir(fuse_req_t req, fuse_ino_t parent, const char* name) {
    Remove(req, parent, name, true);
  }

  // rename of a file this mount is creating: the create moves to the new name (an existing
  // target is deleted now, as a rename replaces it); other mounts see it at its commit.
  static void RenamePending(Fs& fs, fuse_req_t req, uint64_t id, const Inode& np,
                            fuse_ino_t newparent, const char* newname, unsigned int flags) {
    CreateName cn;
    std::string dst;
    if (int rc = PrepareCreate(np, newname, &cn, &dst)) return (void)fuse_reply_err(req, rc);
    Inode in;
    if (!fs.table_->Get(id, &in)) return (void)fuse_reply_err(req, ENOENT);
    if (dst == in.path) return (void)fuse_reply_err(req, 0);
    View tv = Look(fs, dst);
    if (tv.exists && tv.is_dir) return (void)fuse_reply_err(req, EISDIR);
    uint64_t other = fs.table_->FindPending(dst);
    if ((tv.exists || other) && (flags & RENAME_NOREPLACE))
      return (void)fuse_reply_err(req, EEXIST);
    if (tv.exists && !cn.sequential) {
      tree::Op del;
      del.type = tree::OpType::kDelete;
      del.path = dst;
      del.version = tv.stat.version;
      int rc = Call(fs, req, One(std::move(del)), {{dst, Bit(tree::Change::kDeleted)}}, nullptr);
      if (rc) return (void)fuse_reply_err(req, rc);
      MarkUnlinked(fs, 0, dst);
    }
    if (other && !cn.sequential) {
      fs.table_->DropPending(other);
      MarkUnlinked(fs, other, "");
    }
    for (auto& sh : fs.open_files_->Snapshot()) {
      std::lock_guard<std::mutex> l(sh->mu);
      if (sh->id != id) continue;
      sh->path = dst;
      if (sh->pending) {
        sh->eph = sh->eph || cn.ephemeral;
        sh->seq = cn.sequential;
      }
    }
    if (cn.sequential) {
      fs.table_->DropPending(id);  // the name is known at the commit only
    } else {
      fs.table_->MovePending(id, dst);
    }
    if (cn.has_suffix()) fs.notifier_->InvalidateName(newparent, newname);
    fuse_reply_err(req, 0);
  }

  // A file moves by one multi: [delete the target,] create the target with the source's data,
  // ACL and kind, delete the source; versions are checked, so a concurrent change fails it.
  static void Rename(fuse_req_t req, fuse_ino_t parent, const char* name, fuse_ino_t newparent,
                     const char* newname, unsigned int flags) {
    Fs& fs = F(req);
    if (flags & RENAME_EXCHANGE) return (void)fuse_reply_err(req, EINVAL);
    Inode p, np;
    if (!GetInode(fs, req, parent, &p) || !GetInode(fs, req, newparent, &np)) return;
    if (!np.is_dir || np.is_data || !p.is_dir || p.is_data)
      return (void)fuse_reply_err(req, ENOTDIR);
    // A directory's data moves by copy (mv falls back to copying on EXDEV).
    if (name == kDataName || newname == kDataName) return (void)fuse_reply_err(req, EXDEV);
    if (uint64_t id = PendingName(fs, p.path, name, false))
      return RenamePending(fs, req, id, np, newparent, newname, flags);
    View sv;
    std::string src = Resolve(fs, p.path, name, &sv);
    if (!sv.exists) return (void)fuse_reply_err(req, ENOENT);
    if (sv.is_dir) return (void)fuse_reply_err(req, EXDEV);  // mv copies, then removes
    CreateName cn;
    std::string dst = JoinPath(np.path, newname);
    View tv = Look(fs, dst);
    if (!tv.exists) {
      if (int rc = PrepareCreate(np, newname, &cn, &dst)) return (void)fuse_reply_err(req, rc);
      if (cn.ephemeral && !cn.sequential) tv = Look(fs, dst);
    }
    if (IsReserved(src) || IsReserved(dst)) return (void)fuse_reply_err(req, EPERM);
    if (dst == src) return (void)fuse_reply_err(req, 0);
    if (tv.exists && tv.is_dir) return (void)fuse_reply_err(req, EISDIR);
    if (tv.exists && (flags & RENAME_NOREPLACE)) return (void)fuse_reply_err(req, EEXIST);
    std::string data;
    tree::Stat st;
    std::vector<tree::Acl> acl;
    bool data_null = false;
    Err e = fs.pipeline_->Read([&](const tree::DataTree& t) {
      Err r = t.GetData(src, &data, &st, &data_null);
      if (r == Err::kOk) r = t.GetAcl(src, &acl, nullptr);
      return r;
    });
    if (e != Err::kOk) return (void)fuse_reply_err(req, ErrnoOf(e));
    if (st.czxid != sv.stat.czxid) return (void)fuse_reply_err(req, kConflictErrno);
    // The handles open on the source follow it (docs/fuse.md, "Open files"); held across the
    // multi so that none of them commits to the old name meanwhile.
    std::vector<std::shared_ptr<Handle>> moving;
    std::vector<std::unique_lock<std::mutex>> held;
    for (auto& sh : fs.open_files_->Snapshot()) {
      std::unique_lock<std::mutex> l(sh->mu);
      if (sh->path != src || sh->is_data || sh->pending) continue;
      moving.push_back(sh);
      held.push_back(std::move(l));
    }
    tree::Request r;
    r.type = tree::RequestType::kMulti;
    if (tv.exists) {
      tree::Op del;
      del.type = tree::OpType::kDelete;
      del.path = dst;
      del.version = tv.stat.version;
      r.ops.push_back(std::move(del));
    }
    bool eph = cn.ephemeral || (st.ephemeral_owner != 0 && st.ephemeral_owner == fs.session_);
    tree::Op create = CreateOp(dst, std::move(data), tree::Kind::kFile, eph, cn.sequential);
    create.acl = acl;
    create.data_null = data_null;
    r.ops.push_back(std::move(create));
    tree::Op del;
    del.type = tree::OpType::kDelete;
    del.path = src;
    del.version = st.version;
    r.ops.push_back(std::move(del));
    Reply rep;
    int rc = Call(fs, req, std::move(r),
                  {{src, Bit(tree::Change::kDeleted)},
                   {dst, Bit(tree::Change::kCreated) | Bit(tree::Change::kDeleted), cn.sequential}},
                  &rep);
    if (rc) return (void)fuse_reply_err(req, rc);
    const tree::OpResult& res = rep.results.at(tv.exists ? 1 : 0);
    for (auto& h : moving) {
      h->path = res.path;
      h->mzxid = res.stat.mzxid;
      h->version = h->version == st.version ? res.stat.version : kStaleVersion;
    }
    held.clear();
    if (tv.exists) MarkUnlinked(fs, 0, dst);  // the replaced file's handles: as after an unlink
    if (uint64_t id = fs.table_->FindPending(dst)) {
      fs.table_->DropPending(id);
      MarkUnlinked(fs, id, "");
    }
    // The kernel moves the source's inode to the new name: it is the new node now.
    if (uint64_t id = fs.table_->Find(src)) fs.table_->Rebind(id, res.path, res.stat.czxid);
    if (cn.has_suffix()) fs.notifier_->InvalidateName(newparent, newname);
    fuse_reply_err(req, 0);
  }

  static void Link(fuse_req_t req, fuse_ino_t, fuse_ino_t, const char*) {
    fuse_reply_err(req, EPERM);  // no hard links: a znode has one path
  }
  static void Symlink(fuse_req_t req, const char*, fuse_ino_t, const char*) {
    fuse_reply_err(req, EPERM);  // znodes are files or directories only
  }
  static void Readlink(fuse_req_t req, fuse_ino_t) { fuse_reply_err(req, EINVAL); }

  // ---- files ----

  // open(O_RDONLY|O_TRUNC) of a committed file: one unconditional update to empty data, with
  // the opener's WRITE permission. 0 or an errno.
  static int TruncateAtOpen(Fs& fs, fuse_req_t req, const Inode& in) {
    std::vector<tree::Id> ids = CallerIds(fs, req);
    tree::Stat st;
    Err e = fs.pipeline_->Read([&](const tree::DataTree& t) {
      Err r = t.Exists(in.path, &st);
      if (r == Err::kOk) r = service::Check(t, in.path, tree::perm::kWrite, ids);
      return r;
    });
    if (e != Err::kOk) return ErrnoOf(e);
    if (st.czxid != in.czxid) return ENOENT;
    if (st.data_length == 0) return 0;
    tree::Op op;
    op.type = tree::OpType::kSetData;
    op.path = in.path;
    op.version = -1;
    tree::Request r = One(std::move(op));
    r.auth = std::move(ids);
    return Call(fs, req, std::move(r), {{in.path, Bit(tree::Change::kDataChanged)}}, nullptr);
  }

  // An O_APPEND handle for writing does direct I/O: through the page cache the kernel splits a
  // write() that crosses into a page it does not hold up to date into two WRITE requests, which
  // would be two appends with another writer's between them (docs/fuse.md, "Appends"). Direct
  // I/O hands the mount the whole write() in one request, up to max_write.
  static void AppendDirect(fuse_file_info* fi) {
    if ((fi->flags & O_APPEND) && (fi->flags & O_ACCMODE) != O_RDONLY) fi->direct_io = 1;
  }

  static void Open(fuse_req_t req, fuse_ino_t ino, fuse_file_info* fi) {
    Fs& fs = F(req);
    Inode in;
    if (!GetInode(fs, req, ino, &in)) return;
    if (FromNotifier(fs, req)) {  // rule 3: echo writes go straight to us and store nothing
      fi->fh = kEchoFh;
      fi->direct_io = 1;
      return (void)fuse_reply_open(req, fi);
    }
    if (in.is_dir) return (void)fuse_reply_err(req, EISDIR);
    if (in.ghost) return (void)fuse_reply_err(req, ENOENT);
    if (in.pending && !OpenPending(fs, req, ino, fi, &in)) return;
    Pending().WaitPath(in.path);
    int acc = fi->flags & O_ACCMODE;
    bool writable = acc != O_RDONLY;
    bool trunc = fi->flags & O_TRUNC;
    if ((writable || trunc) && IsReserved(in.path)) return (void)fuse_reply_err(req, EPERM);
    // O_RDONLY|O_TRUNC truncates at once, as Linux file systems do (docs/fuse.md, "Writing").
    if (trunc && !writable) {
      if (int rc = TruncateAtOpen(fs, req, in)) return (void)fuse_reply_err(req, rc);
    }
    auto h = std::make_unique<Handle>();
    h->opener = fuse_req_ctx(req)->pid;
    h->auth = CallerIds(fs, req);
    tree::Stat st;
    // open() always reaches us (the kernel keeps no open permission), so checking here keeps
    // the page cache of a reader from serving another user.
    Err e = fs.pipeline_->Read([&](const tree::DataTree& t) {
      Err r = acc == O_WRONLY ? t.GetData(in.path, trunc ? nullptr : &h->data, &st)
                              : service::GetData(t, in.path, h->auth, &h->data, &st);
      if (r == Err::kOk && writable) r = service::Check(t, in.path, tree::perm::kWrite, h->auth);
      return r;
    });
    if (e != Err::kOk) return (void)fuse_reply_err(req, ErrnoOf(e));
    if (st.czxid != in.czxid) return (void)fuse_reply_err(req, ENOENT);  // re-created since
    if (trunc) h->data.clear();  // O_RDWR read the old data above
    h->id = ino;
    h->path = in.path;
    h->is_data = in.is_data;
    h->writable = writable;
    h->append = fi->flags & O_APPEND;
    h->version = st.version;
    h->mzxid = st.mzxid;
    if (trunc && writable) {
      h->dirty = true;  // `> file` empties it even if nothing is written
      h->conditional = false;
    } else {
      h->conditional = writable;
    }
    fi->keep_cache = !trunc && in.page_mzxid == st.mzxid;
    AppendDirect(fi);
    fi->fh = Track(fs, std::move(h));
    if (fuse_reply_open(req, fi) != 0) Untrack(fs, fi);
  }

  static void Create(fuse_req_t req, fuse_ino_t parent, const char* name, mode_t mode,
                     fuse_file_info* fi) {
    Fs& fs = F(req);
    Inode p;
    if (!GetInode(fs, req, parent, &p)) return;
    if (!S_ISREG(mode)) return (void)fuse_reply_err(req, EPERM);
    CreateName cn;
    std::string path;
    if (name == kDataName && p.is_dir && !p.is_data) return CreateData(fs, req, p, fi);
    if (int rc = PrepareCreate(p, name, &cn, &path)) return (void)fuse_reply_err(req, rc);
    if (!cn.sequential) {
      View v = Look(fs, path);
      if (v.exists) {
        // Created elsewhere since the kernel's lookup.
        if (fi->flags & O_EXCL) return (void)fuse_reply_err(req, EEXIST);
        if (v.is_dir) return (void)fuse_reply_err(req, EISDIR);
        Inode in;
        in.path = path;
        in.czxid = v.stat.czxid;
        uint64_t id = fs.table_->Ref(path, v.stat.czxid, false, false);
        fuse_entry_param e;
        memset(&e, 0, sizeof e);
        e.ino = id;
        e.generation = 1;
        FillAttr(fs, in, v.stat, &e.attr);
        auto h = std::make_unique<Handle>();
        h->opener = fuse_req_ctx(req)->pid;
        h->auth = CallerIds(fs, req);
        std::string data;
        tree::Stat st;
        Err err = fs.pipeline_->Read([&](const tree::DataTree& t) {
          Err r = (fi->flags & O_ACCMODE) == O_WRONLY
                      ? t.GetData(path, &h->data, &st)
                      : service::GetData(t, path, h->auth, &h->data, &st);
          if (r == Err::kOk) r = service::Check(t, path, tree::perm::kWrite, h->auth);
          return r;
        });
        if (err != Err::kOk) {
          fs.table_->Forget(id, 1);
          return (void)fuse_reply_err(req, ErrnoOf(err));
        }
        h->id = id;
        h->path = path;
        h->writable = true;
        h->append = fi->flags & O_APPEND;
        h->version = st.version;
        h->mzxid = st.mzxid;
        h->conditional = true;
        if (fi->flags & O_TRUNC) {
          h->data.clear();
          h->dirty = true;
          h->conditional = false;
        }
        AppendDirect(fi);
        fi->fh = Track(fs, std::move(h));
        if (fuse_reply_create(req, &e, fi) != 0) {
          Untrack(fs, fi);
          fs.table_->Forget(id, 1);
        }
        return;
      }
    }
    // The node is created at the first flush/close/fsync, with its full content; CREATE is
    // checked now too, so that `echo x > new` fails at open(), which the shell reports.
    std::vector<tree::Id> ids = CallerIds(fs, req);
    Err ce = fs.pipeline_->Read([&](const tree::DataTree& t) {
      return service::Check(t, p.path, tree::perm::kCreate, ids);
    });
    if (ce != Err::kOk) return (void)fuse_reply_err(req, ErrnoOf(ce));
    if (int rc = QuotaErrno(fs, path, 0)) return (void)fuse_reply_err(req, rc);
    Inode in;
    in.path = path;
    in.pending = true;
    uint64_t id = fs.table_->RefDetached(in);
    if (!cn.sequential) fs.table_->AddPending(id);  // visible here from now on
    auto h = std::make_unique<Handle>();
    h->opener = fuse_req_ctx(req)->pid;
    h->id = id;
    h->path = path;
    h->writable = true;
    h->append = fi->flags & O_APPEND;
    h->pending = true;
    h->dirty = true;
    h->eph = cn.ephemeral;
    h->seq = cn.sequential;
    h->auth = std::move(ids);
    fuse_entry_param e;
    memset(&e, 0, sizeof e);
    e.ino = id;
    e.generation = 1;
    FillAttr(fs, in, tree::Stat(), &e.attr);
    AppendDirect(fi);
    fi->fh = Track(fs, std::move(h));
    if (fuse_reply_create(req, &e, fi) != 0) {
      Untrack(fs, fi);
      fs.table_->Forget(id, 1);
    }
  }

  // open(O_CREAT) of a directory's `.data` while it has no data: replaces the data at commit.
  static void CreateData(Fs& fs, fuse_req_t req, const Inode& p, fuse_file_info* fi) {
    if (IsReserved(p.path)) return (void)fuse_reply_err(req, EPERM);
    View v = Look(fs, p.path);
    if (!v.exists) return (void)fuse_reply_err(req, ENOENT);
    std::vector<tree::Id> ids = CallerIds(fs, req);
    Err we = fs.pipeline_->Read([&](const tree::DataTree& t) {
      return service::Check(t, p.path, tree::perm::kWrite, ids);
    });
    if (we != Err::kOk) return (void)fuse_reply_err(req, ErrnoOf(we));
    Inode in;
    in.path = p.path;
    in.czxid = v.stat.czxid;
    in.is_data = true;
    uint64_t id = fs.table_->Ref(p.path, v.stat.czxid, false, true);
    auto h = std::make_unique<Handle>();
    h->opener = fuse_req_ctx(req)->pid;
    h->id = id;
    h->path = p.path;
    h->is_data = true;
    h->writable = true;
    h->append = fi->flags & O_APPEND;
    h->dirty = true;
    h->conditional = false;
    h->auth = std::move(ids);
    h->version = v.stat.version;
    h->mzxid = v.stat.mzxid;
    fuse_entry_param e;
    memset(&e, 0, sizeof e);
    e.ino = id;
    e.generation = 1;
    e.entry_timeout = fs.o_.cache_timeout_s;
    tree::Stat st = v.stat;
    st.data_length = 0;
    FillAttr(fs, in, st, &e.attr);
    AppendDirect(fi);
    fi->fh = Track(fs, std::move(h));
    if (fuse_reply_create(req, &e, fi) != 0) {
      Untrack(fs, fi);
      fs.table_->Forget(id, 1);
    }
  }

  // A handle without uncommitted writes reads the newest committed data of its node, as the
  // kernel's file size (changed by any commit) does (docs/fuse.md, "Reading, caching,
  // freshness"); a removed or re-created node keeps the data the handle had. Its version is
  // kept: a later write commits conditionally on the version seen at open. h->mu held.
  static void Refresh(Fs& fs, fuse_ino_t ino, Handle* h) {
    if (h->dirty || h->pending || h->unlinked || h->mzxid < 0) return;
    Inode in;
    if (!fs.table_->Get(ino, &in) || in.pending || in.ghost) return;
    fs.pipeline_->Read([&](const tree::DataTree& t) {
      tree::Stat st;
      if (t.Exists(h->path, &st) != Err::kOk || st.czxid != in.czxid || st.mzxid == h->mzxid)
        return;
      std::string data;
      if (t.GetData(h->path, &data, &st) != Err::kOk) return;
      h->data = std::move(data);
      h->mzxid = st.mzxid;
    });
  }

  static void Read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, fuse_file_info* fi) {
    Fs& fs = F(req);
    if (fi->fh == kEchoFh) return (void)fuse_reply_buf(req, nullptr, 0);
    Handle* h = H(fi);
    std::lock_guard<std::mutex> l(h->mu);
    Refresh(fs, ino, h);
    if (static_cast<size_t>(off) >= h->data.size()) return (void)fuse_reply_buf(req, nullptr, 0);
    size_t n = std::min(size, h->data.size() - static_cast<size_t>(off));
    if (!h->dirty && !h->pending) fs.table_->SetPageMzxid(ino, h->mzxid);
    fuse_reply_buf(req, h->data.data() + off, n);
  }

  static void Write(fuse_req_t req, fuse_ino_t, const char* buf, size_t size, off_t off,
                    fuse_file_info* fi) {
    Fs& fs = F(req);
    if (fi->fh == kEchoFh) return (void)fuse_reply_write(req, size);  // rule 3
    Handle* h = H(fi);
    std::lock_guard<std::mutex> l(h->mu);
    if (h->error) return (void)fuse_reply_err(req, h->error);
    if (h->append && !h->unlinked) return AppendWrite(fs, req, h, std::string(buf, size));
    size_t at = h->append ? h->data.size() : static_cast<size_t>(off);
    if (at >= fs.o_.max_data_bytes) {
      h->error = EFBIG;  // nothing of this handle will be committed
      return (void)fuse_reply_err(req, EFBIG);
    }
    if (!h->written && !h->unlinked) {
      // The handle's first write: confirm with a quorum round that this member can commit at
      // all, so that a cut-off member fails the write() a shell checks rather than only the
      // close() it ignores (docs/fuse.md, "Write errors"). The error is sticky: nothing of this
      // handle is committed. (No wait for the notifier here, unlike SyncBarrier: it may be
      // waiting for the page this write holds locked.)
      // A lost session is reported here, at a call a shell checks, not at the commit (which
      // carries on under a new session). Sticky like the errors below.
      if (int rc = CheckSession(fs, h->path)) {
        h->error = rc;
        return (void)fuse_reply_err(req, rc);
      }
      Reply rep;
      if (int rc = Call(fs, req, {}, {}, &rep, /*sync=*/true)) {
        if (rc != EINTR) h->error = rc;
        return (void)fuse_reply_err(req, rc);
      }
    }
    if (at + size > fs.o_.max_data_bytes) {
      // As a local file at its size limit: the write is short (up to the limit), the next one
      // fails; nothing of this handle will be committed (docs/fuse.md, "Writing").
      size = fs.o_.max_data_bytes - at;
      h->error = EFBIG;
    }
    if (at + size > h->data.size() && !h->unlinked) {
      if (int rc = QuotaErrno(fs, h->path, at + size)) {
        h->error = rc;  // as EFBIG: nothing of this handle will be committed
        return (void)fuse_reply_err(req, rc);
      }
    }
    if (h->data.size() < at + size) h->data.resize(at + size);
    memcpy(h->data.data() + at, buf, size);
    h->dirty = true;
    h->written = true;
    fuse_reply_write(req, size);
  }

  // One write() of an O_APPEND handle, committed by itself (docs/fuse.md, "Appends"): the bytes
  // go at the end of the node's data as the leader has it, whatever other mounts and clients
  // appended meanwhile. A new file is created with them, or appended to if another writer
  // created it first. A pending truncation (O_TRUNC, ftruncate) is committed with the bytes as
  // one update. The result is the write()'s: EFBIG, ETIMEDOUT, EACCES, ... Called with h->mu.
  static void AppendWrite(Fs& fs, fuse_req_t req, Handle* h, std::string bytes) {
    const size_t size = bytes.size();
    int rc = 0;
    if (h->pending && !h->seq) {
      rc = CommitCreateOrAppend(fs, req, h, h->data + bytes);
    } else if (h->dirty) {
      if (h->data.size() + size > fs.o_.max_data_bytes) {
        rc = EFBIG;
      } else {
        h->data += bytes;
        h->written = true;
        rc = CommitLocked(fs, req, h);
      }
    } else {
      rc = SubmitAppend(fs, req, h, std::move(bytes));
    }
    if (h->registered) {
      h->registered = false;
      Pending().Remove(h->reg_path);
    }
    if (rc) {
      // Nothing of this write is in the tree; later writes may still succeed (a shell loop
      // that appends again once the quorum is back), so the error is not sticky.
      h->dirty = false;
      return (void)fuse_reply_err(req, rc);
    }
    h->written = true;
    fuse_reply_write(req, size);
  }

  // A pending create of an append handle: create it with `data`; if someone created the name
  // first, append `data` to theirs (what `>>` does on a local disk). 0 or an errno.
  static int CommitCreateOrAppend(Fs& fs, fuse_req_t req, Handle* h, std::string data) {
    if (data.size() > fs.o_.max_data_bytes) return EFBIG;
    tree::Request r = One(CreateOp(h->path, data, tree::Kind::kFile, h->eph, false));
    r.auth = h->auth;
    Reply rep;
    int rc = Call(fs, req, std::move(r), {{h->path, Bit(tree::Change::kCreated)}}, &rep);
    if (rc == EEXIST) return SubmitAppend(fs, req, h, std::move(data));
    if (rc) {
      fs.notifier_->InvalidateInode(h->id);
      return rc;
    }
    h->data = std::move(data);
    h->dirty = false;
    Committed(fs, h, rep.results.at(0));
    return 0;
  }

  // Sends one append txn of `bytes` for the handle's node; 0 or an errno.
  static int SubmitAppend(Fs& fs, fuse_req_t req, Handle* h, std::string bytes) {
    const size_t n = bytes.size();
    tree::Op op;
    op.type = tree::OpType::kAppend;
    op.path = h->path;
    op.data = std::move(bytes);
    tree::Request r = One(std::move(op));
    r.auth = h->auth;
    Reply rep;
    int rc = Call(fs, req, std::move(r), {{h->path, Bit(tree::Change::kDataChanged)}}, &rep);
    if (rc) {
      fs.notifier_->InvalidateInode(h->id);  // the page cache may hold the refused bytes
      return rc;
    }
    const tree::OpResult& res = rep.results.at(0);
    // The handle's copy: the node as this write left it, if nothing changed it since.
    std::string data;
    tree::Stat st;
    bool same = fs.pipeline_->Read([&](const tree::DataTree& t) {
      return t.GetData(res.path, &data, &st) == Err::kOk && st.mzxid == res.stat.mzxid;
    });
    if (same) {
      h->data = std::move(data);
    } else {
      h->data.resize(h->data.size() + n);  // a later change: reads show it after reopening
    }
    h->dirty = false;
    Committed(fs, h, res);
    return 0;
  }

  // The handle's node is at `res` now (created or updated by this handle).
  static void Committed(Fs& fs, Handle* h, const tree::OpResult& res) {
    h->version = res.stat.version;
    h->mzxid = res.stat.mzxid;
    // Later writes commit on this version, unless nothing was written yet (a create or `>`
    // committed early by a close): those still replace the data.
    if (h->written) h->conditional = true;
    if (h->pending) {
      h->pending = false;
      h->path = res.path;
      fs.table_->Rebind(h->id, res.path, res.stat.czxid);
      // A negative entry cached before the create must not hide it (docs/fuse.md).
      if (uint64_t parent = fs.table_->Find(std::string(tree::ParentPath(res.path))))
        fs.notifier_->InvalidateName(parent, std::string(tree::BaseName(res.path)));
    }
  }

  // Commits a handle's buffer as one update; 0 or an errno. Called with h->mu held.
  static int CommitLocked(Fs& fs, fuse_req_t req, Handle* h) {
    int rc = CommitInner(fs, req, h);
    if (h->registered) {
      h->registered = false;
      Pending().Remove(h->reg_path);
    }
    return rc;
  }

  static int CommitInner(Fs& fs, fuse_req_t req, Handle* h) {
    if (h->unlinked) {  // docs/fuse.md, "Open files": nothing to commit, close() returns 0
      h->dirty = false;
      return 0;
    }
    if (h->error) {
      h->dirty = false;
      return h->error;
    }
    if (!h->dirty) return 0;
    h->dirty = false;
    tree::Request r;
    std::vector<OwnChanges::Mark> marks;
    if (h->pending) {
      r = One(CreateOp(h->path, h->data, tree::Kind::kFile, h->eph, h->seq));
      marks.push_back({h->path, Bit(tree::Change::kCreated), h->seq});
    } else {
      // Its node was removed (or replaced) through another member or a network client: as
      // after an rm here, the handle's writes go with it (docs/fuse.md, "Open files").
      Inode in;
      View v = Look(fs, h->path);
      if (fs.table_->Get(h->id, &in) && !in.pending && (!v.exists || v.stat.czxid != in.czxid)) {
        h->unlinked = true;
        return 0;
      }
      tree::Op op;
      op.type = tree::OpType::kSetData;
      op.path = h->path;
      op.data = h->data;
      op.version = h->conditional ? h->version : -1;
      r = One(std::move(op));
      marks.push_back({h->path, Bit(tree::Change::kDataChanged)});
    }
    r.auth = h->auth;
    Reply rep;
    int rc = Call(fs, req, std::move(r), std::move(marks), &rep, /*sync=*/false,
                  OnSessionLost::kCarryOn);
    if (rc == EEXIST && h->pending && h->append && h->data.empty()) {
      // `: >> f` raced with another creator: f exists, and appending nothing to it is done.
      DropPendingName(fs, h->id, h->path);
      return 0;
    }
    if (rc == ENOENT && !h->pending) {  // removed elsewhere before the update: as above
      h->unlinked = true;
      return 0;
    }
    if (rc) {
      if (rc == kConflictErrno)
        QLOG_INFO("mount: write to %s refused: changed by another client since it was opened",
                  h->path.c_str());
      fs.notifier_->InvalidateInode(h->id);  // the page cache may hold the refused data
      if (h->pending) DropPendingName(fs, h->id, h->path);
      return rc;
    }
    Committed(fs, h, rep.results.at(0));
    return 0;
  }

  // Whether process `pid` has a descriptor open on the file at `path` on this mount, by its
  // name in /proc/PID/fd (the kernel's name: suffixes kept). At a FLUSH the closing descriptor
  // is gone already, so a shell's `> f` (open, dup2, close, then write) still holds it. A
  // process that is exiting, or that the daemon may not inspect, holds nothing.
  static bool StillOpenIn(const Fs& fs, pid_t pid, const std::string& path) {
    std::string dir = "/proc/" + std::to_string(pid) + "/fd";
    DIR* d = opendir(dir.c_str());
    if (!d) return false;
    std::string mnt = fs.o_.mountpoint == "/" ? "" : fs.o_.mountpoint;
    std::string parent = mnt + std::string(tree::ParentPath(path));
    if (parent.empty()) parent = "/";
    std::string base(tree::BaseName(path));
    bool held = false;
    while (dirent* e = readdir(d)) {
      if (e->d_name[0] == '.') continue;
      char buf[PATH_MAX];
      ssize_t n = readlinkat(dirfd(d), e->d_name, buf, sizeof buf);
      if (n <= 0 || static_cast<size_t>(n) >= sizeof buf) continue;
      std::string_view target(buf, static_cast<size_t>(n));
      size_t slash = target.rfind('/');
      if (slash == std::string_view::npos) continue;
      std::string_view tparent = slash == 0 ? std::string_view("/") : target.substr(0, slash);
      if (tparent == parent && ParseCreateName(target.substr(slash + 1)).base == base) {
        held = true;
        break;
      }
    }
    closedir(d);
    return held;
  }

  // Whether threads a and b are of one process (by /proc/TID/status; false if either is gone).
  static bool SameProcess(pid_t a, pid_t b) {
    if (a == b) return true;
    auto tgid = [](pid_t t) {
      FILE* f = fopen(("/proc/" + std::to_string(t) + "/status").c_str(), "r");
      if (!f) return -1L;
      char line[256];
      long id = -1;
      while (fgets(line, sizeof line, f))
        if (sscanf(line, "Tgid: %ld", &id) == 1) break;
      fclose(f);
      return id;
    };
    long ta = tgid(a);
    return ta >= 0 && ta == tgid(b);
  }

  static void Flush(fuse_req_t req, fuse_ino_t, fuse_file_info* fi) {
    Fs& fs = F(req);
    if (fi->fh == kEchoFh) return (void)fuse_reply_err(req, 0);
    Handle* h = H(fi);
    std::lock_guard<std::mutex> l(h->mu);
    pid_t pid = fuse_req_ctx(req)->pid;
    if (h->dirty && !h->written && !h->error && (h->pending || !h->conditional) &&
        (!SameProcess(pid, h->opener) || StillOpenIn(fs, pid, h->path))) {
      // Nothing written yet, and the close is another process's (a child's exit or exec) or
      // the opener holds a dup of this fd: either may write next (see PendingCommits), so the
      // commit happens at the next close after a write, or at the last close. Else it is
      // now: RELEASE comes after close() has returned.
      if (!h->registered) {
        h->registered = true;
        h->reg_path = h->path;  // for @seq the prefix: listings of the directory wait
        Pending().Add(h->reg_path);
      }
      return (void)fuse_reply_err(req, 0);
    }
    int rc = CommitLocked(fs, req, h);
    if (h->error) h->error = 0;  // reported once, by this close()
    fuse_reply_err(req, rc);
  }

  static void Release(fuse_req_t req, fuse_ino_t, fuse_file_info* fi) {
    Fs& fs = F(req);
    if (fi->fh == kEchoFh) return (void)fuse_reply_err(req, 0);
    Handle* h = H(fi);
    {
      std::lock_guard<std::mutex> l(h->mu);
      if (h->dirty && !h->error) {
        // Flush was not called (the fd was passed on and closed by a killed process): commit.
        int rc = CommitLocked(fs, nullptr, h);
        if (rc) QLOG_INFO("mount: commit at release of %s: %s", h->path.c_str(), strerror(rc));
      }
      if (h->registered) Pending().Remove(h->reg_path);
      if (h->pending && !h->unlinked) DropPendingName(fs, h->id, h->path);  // never created
    }
    fs.open_files_->Remove(h);
    fuse_reply_err(req, 0);
  }

  static void Fsync(fuse_req_t req, fuse_ino_t, int, fuse_file_info* fi) {
    Fs& fs = F(req);
    if (fi->fh == kEchoFh) return (void)fuse_reply_err(req, 0);
    Handle* h = H(fi);
    std::unique_lock<std::mutex> l(h->mu);
    if (h->dirty || h->error) {
      int rc = CommitLocked(fs, req, h);
      if (h->error) h->error = 0;
      return (void)fuse_reply_err(req, rc);
    }
    l.unlock();
    fuse_reply_err(req, SyncBarrier(fs, req));
  }

  // ---- directories ----

  static void OpenDir(fuse_req_t req, fuse_ino_t ino, fuse_file_info* fi) {
    Fs& fs = F(req);
    Inode in;
    if (!GetInode(fs, req, ino, &in)) return;
    if (!in.is_dir) return (void)fuse_reply_err(req, ENOTDIR);
    Pending().WaitParent(in.path);
    auto pending = fs.table_->PendingUnder(in.path);  // files this mount is creating there
    auto d = std::make_unique<DirHandle>();
    std::vector<tree::Id> ids = CallerIds(fs, req);
    Err e = fs.pipeline_->Read([&](const tree::DataTree& t) {
      std::vector<std::string> names;
      tree::Stat st;
      Err r = service::GetChildren(t, in.path, ids, &names, &st);
      if (r != Err::kOk) return r;
      if (st.czxid != in.czxid) return Err::kNoNode;
      std::sort(names.begin(), names.end());
      Inode self = in;
      d->ents.push_back({".", InoOf(self), true});
      d->ents.push_back({"..", 1, true});
      if (st.data_length > 0) {
        Inode data = in;
        data.is_data = true;
        data.is_dir = false;
        d->ents.push_back({std::string(kDataName), InoOf(data), false});
      }
      for (auto& [n, id] : pending) {
        if (std::binary_search(names.begin(), names.end(), n)) continue;
        Inode c;
        c.path = JoinPath(in.path, n);
        d->ents.push_back({n, InoOf(c), false});
      }
      for (auto& n : names) {
        Inode c;
        c.path = JoinPath(in.path, n);
        tree::Stat cs;
        tree::Kind k = tree::Kind::kUnset;
        if (t.Exists(c.path, &cs) != Err::kOk) continue;
        t.GetKind(c.path, &k);
        c.czxid = cs.czxid;
        c.is_dir = IsDirView(c.path, k, cs);
        d->ents.push_back({std::move(n), InoOf(c), c.is_dir});
      }
      return Err::kOk;
    });
    if (e != Err::kOk) return (void)fuse_reply_err(req, ErrnoOf(e));
    fi->fh = reinterpret_cast<uint64_t>(d.get());
    if (fuse_reply_open(req, fi) == 0) d.release();
  }

  static void ReadDir(fuse_req_t req, fuse_ino_t, size_t size, off_t off, fuse_file_info* fi) {
    auto* d = reinterpret_cast<DirHandle*>(fi->fh);
    std::string buf(size, '\0');
    size_t used = 0;
    for (size_t i = static_cast<size_t>(off); i < d->ents.size(); i++) {
      struct stat st;
      memset(&st, 0, sizeof st);
      st.st_ino = d->ents[i].ino;
      st.st_mode = d->ents[i].dir ? S_IFDIR : S_IFREG;
      size_t n = fuse_add_direntry(req, buf.data() + used, size - used, d->ents[i].name.c_str(),
                                   &st, static_cast<off_t>(i + 1));
      if (n > size - used) break;
      used += n;
    }
    fuse_reply_buf(req, buf.data(), used);
  }

  static void ReleaseDir(fuse_req_t req, fuse_ino_t, fuse_file_info* fi) {
    delete reinterpret_cast<DirHandle*>(fi->fh);
    fuse_reply_err(req, 0);
  }

  static void FsyncDir(fuse_req_t req, fuse_ino_t, int, fuse_file_info*) {
    fuse_reply_err(req, SyncBarrier(F(req), req));
  }

  // ---- extended attributes ----

  static void GetXattr(fuse_req_t req, fuse_ino_t ino, const char* name, size_t size) {
    Fs& fs = F(req);
    Inode in;
    if (!GetInode(fs, req, ino, &in)) return;
    if (in.pending || in.ghost) return (void)fuse_reply_err(req, ENODATA);
    tree::Stat st;
    std::vector<tree::Acl> acl;
    // The ACL needs READ or ADMIN and hides digest hashes without ADMIN, as getACL; the Stat
    // fields need nothing, as exists. (The kernel caches no xattr: every call reaches us.)
    bool want_acl = std::string(name) == kAclXattr;
    std::vector<tree::Id> ids = want_acl ? CallerIds(fs, req) : std::vector<tree::Id>{};
    Err e = fs.pipeline_->Read([&](const tree::DataTree& t) {
      return want_acl ? service::GetAcl(t, in.path, ids, &acl, &st) : t.Exists(in.path, &st);
    });
    if (e != Err::kOk) return (void)fuse_reply_err(req, ErrnoOf(e));
    std::string v;
    if (!XattrValue(name, st, acl, &v)) return (void)fuse_reply_err(req, ENODATA);
    if (size == 0) return (void)fuse_reply_xattr(req, v.size());
    if (size < v.size()) return (void)fuse_reply_err(req, ERANGE);
    fuse_reply_buf(req, v.data(), v.size());
  }

  // access(2) from the ACL, so that `test -r` tells the truth: R_OK needs READ, W_OK needs
  // WRITE (on a directory CREATE: making entries), X_OK is a directory's (nothing needed).
  static void Access(fuse_req_t req, fuse_ino_t ino, int mask) {
    Fs& fs = F(req);
    Inode in;
    if (!GetInode(fs, req, ino, &in)) return;
    if (in.ghost) return (void)fuse_reply_err(req, ENOENT);
    if (in.pending) return (void)fuse_reply_err(req, 0);  // its creator's until the commit
    bool dir = in.is_dir && !in.is_data;
    if ((mask & X_OK) && !dir) return (void)fuse_reply_err(req, EACCES);
    std::vector<tree::Id> ids = CallerIds(fs, req);
    Err e = fs.pipeline_->Read([&](const tree::DataTree& t) {
      tree::Stat st;
      Err r = t.Exists(in.path, &st);
      if (r == Err::kOk && (mask & R_OK)) r = service::Check(t, in.path, tree::perm::kRead, ids);
      if (r == Err::kOk && (mask & W_OK))
        r = service::Check(t, in.path, dir ? tree::perm::kCreate : tree::perm::kWrite, ids);
      return r;
    });
    fuse_reply_err(req, e == Err::kOk ? 0 : ErrnoOf(e));
  }

  static void ListXattr(fuse_req_t req, fuse_ino_t ino, size_t size) {
    Fs& fs = F(req);
    Inode in;
    if (!GetInode(fs, req, ino, &in)) return;
    std::string all;
    if (!in.pending && !in.ghost)
      for (const auto& n : XattrNames()) all.append(n).push_back('\0');
    if (size == 0) return (void)fuse_reply_xattr(req, all.size());
    if (size < all.size()) return (void)fuse_reply_err(req, ERANGE);
    fuse_reply_buf(req, all.data(), all.size());
  }

  static void SetXattr(fuse_req_t req, fuse_ino_t ino, const char* name, const char* value,
                       size_t size, int) {
    Fs& fs = F(req);
    Inode in;
    if (!GetInode(fs, req, ino, &in)) return;
    std::string n = name;
    // The Stat fields are read-only. EOPNOTSUPP (not EPERM) lets cp -a and mv, which copy
    // extended attributes, carry on silently.
    if (n != kAclXattr) return (void)fuse_reply_err(req, EOPNOTSUPP);
    // A file not committed yet has no ACL to set (set it after close).
    if (in.pending) return (void)fuse_reply_err(req, EOPNOTSUPP);
    if (IsReserved(in.path)) return (void)fuse_reply_err(req, EPERM);
    auto acl = ParseAcl(std::string(value, size));
    if (!acl.ok()) return (void)fuse_reply_err(req, EINVAL);
    tree::Op op;
    op.type = tree::OpType::kSetAcl;
    op.path = in.path;
    op.acl = *acl;
    int rc =
        Call(fs, req, One(std::move(op)), {{in.path, Bit(tree::Change::kAclChanged)}}, nullptr);
    fuse_reply_err(req, rc);
  }

  static void RemoveXattr(fuse_req_t req, fuse_ino_t, const char* name) {
    fuse_reply_err(req, std::string(name).starts_with("user.zk.") ? EPERM : ENODATA);
  }

  static void StatFs(fuse_req_t req, fuse_ino_t) {
    Fs& fs = F(req);
    struct statvfs s;
    memset(&s, 0, sizeof s);
    size_t nodes = fs.pipeline_->Read([](const tree::DataTree& t) { return t.node_count(); });
    s.f_bsize = 4096;
    s.f_frsize = 4096;
    s.f_namemax = 255;
    s.f_files = nodes;
    fuse_reply_statfs(req, &s);
  }

  static void Init(void*, fuse_conn_info* conn) {
    // O_TRUNC reaches open(), so `>` replaces the data unconditionally in one commit.
    if (conn->capable & FUSE_CAP_ATOMIC_O_TRUNC) conn->want |= FUSE_CAP_ATOMIC_O_TRUNC;
    // Write-through: every write reaches the open file's buffer.
    conn->want &= ~FUSE_CAP_WRITEBACK_CACHE;
  }
};

bool Fs::IsDirView(const std::string& path, tree::Kind kind, const tree::Stat& st) {
  if (path == "/" || st.num_children > 0) return true;
  if (kind == tree::Kind::kDirectory) return true;
  if (kind == tree::Kind::kFile) return false;
  return st.data_length == 0;  // a network client's node: a directory unless it has data
}

bool Fs::IsDirNow(const std::string& path, bool* exists, uint64_t* data_length) const {
  View v = Impl::Look(*this, path);
  *exists = v.exists;
  if (data_length) *data_length = v.exists ? v.stat.data_length : 0;
  return v.is_dir;
}

std::vector<std::string> Fs::ChildrenNow(const std::string& path) const {
  std::vector<std::string> names;
  pipeline_->Read([&](const tree::DataTree& t) {
    tree::Stat st;
    if (t.GetChildren(path, &names, &st) != Err::kOk) names.clear();
    return 0;
  });
  return names;
}

Fs::Fs(FsOptions o, Pipeline* pipeline, int64_t session_id, InodeTable* table, OwnChanges* own,
       EchoState* echo, Notifier* notifier)
    : o_(std::move(o)),
      pipeline_(pipeline),
      session_(session_id),
      table_(table),
      own_(own),
      echo_(echo),
      notifier_(notifier),
      uid_(geteuid()),
      gid_(getegid()),
      open_files_(std::make_unique<OpenFiles>()) {}

Fs::~Fs() = default;

const fuse_lowlevel_ops* Fs::Ops() {
  static const fuse_lowlevel_ops ops = [] {
    fuse_lowlevel_ops o;
    memset(&o, 0, sizeof o);
    o.init = Impl::Init;
    o.lookup = Impl::Lookup;
    o.forget = Impl::Forget;
    o.forget_multi = Impl::ForgetMulti;
    o.getattr = Impl::GetAttr;
    o.setattr = Impl::SetAttr;
    o.readlink = Impl::Readlink;
    o.mknod = Impl::Mknod;
    o.mkdir = Impl::Mkdir;
    o.unlink = Impl::Unlink;
    o.rmdir = Impl::Rmdir;
    o.symlink = Impl::Symlink;
    o.rename = Impl::Rename;
    o.link = Impl::Link;
    o.open = Impl::Open;
    o.read = Impl::Read;
    o.write = Impl::Write;
    o.flush = Impl::Flush;
    o.release = Impl::Release;
    o.fsync = Impl::Fsync;
    o.opendir = Impl::OpenDir;
    o.readdir = Impl::ReadDir;
    o.releasedir = Impl::ReleaseDir;
    o.fsyncdir = Impl::FsyncDir;
    o.statfs = Impl::StatFs;
    o.setxattr = Impl::SetXattr;
    o.getxattr = Impl::GetXattr;
    o.listxattr = Impl::ListXattr;
    o.access = Impl::Access;
    o.removexattr = Impl::RemoveXattr;
    o.create = Impl::Create;
    return o;
  }();
  return &ops;
}

}  // namespace qfs::fusefs
