#define FUSE_USE_VERSION 314
#include "fusefs/notifier.h"

#include <fcntl.h>
#include <fuse_lowlevel.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>

#include "consensus/util/log.h"
#include "daemon/tree/prepare.h"
#include "fusefs/names.h"

namespace qfs::fusefs {

uint64_t OwnChanges::Add(std::vector<Mark> marks) {
  std::lock_guard<std::mutex> l(mu_);
  uint64_t t = next_++;
  live_.emplace_back(t, std::move(marks));
  return t;
}

void OwnChanges::Remove(uint64_t token) {
  std::lock_guard<std::mutex> l(mu_);
  std::erase_if(live_, [token](const auto& p) { return p.first == token; });
}

bool OwnChanges::Match(const tree::Change& c) const {
  std::lock_guard<std::mutex> l(mu_);
  for (const auto& [t, marks] : live_) {
    for (const Mark& m : marks) {
      if (!(m.types & Bit(c.type))) continue;
      if (m.sequential) {
        if (c.path.size() == m.path.size() + 10 && c.path.starts_with(m.path)) return true;
      } else if (c.path == m.path) {
        return true;
      }
    }
  }
  return false;
}

Notifier::Notifier(Options o, InodeTable* table, OwnChanges* own, EchoState* echo,
                   IsDirNow is_dir_now)
    : o_(std::move(o)), table_(table), own_(own), echo_(echo), is_dir_now_(std::move(is_dir_now)) {}

Notifier::~Notifier() {
  Stop();
}

void Notifier::Start(fuse_session* se) {
  se_ = se;
  thread_ = std::thread([this] { Run(); });
}

void Notifier::Stop() {
  {
    std::lock_guard<std::mutex> l(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  done_cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void Notifier::OnApply(int64_t zxid, const std::vector<tree::Change>& changes) {
  std::lock_guard<std::mutex> l(mu_);
  queued_zxid_ = zxid;
  if (stop_) {
    done_zxid_ = zxid;
    return;
  }
  for (const tree::Change& c : changes) {
    n_changes_++;
    bool own = own_->Match(c);
    if (c.type == tree::Change::kDataChanged && !own && !queued_data_.insert(c.path).second)
      continue;  // already queued: one echo and one invalidation cover both (rule 6)
    if (q_.size() >= o_.max_queue) {
      // Never block the apply thread: drop, and invalidate everything once the queue drains.
      overflow_ = true;
      continue;
    }
    q_.push_back({zxid, c.type, c.path, own, 0});
  }
  if (q_.empty() && !overflow_ && !drop_all_) done_zxid_ = zxid;
  cv_.notify_one();
}

void Notifier::DropAll() {
  std::lock_guard<std::mutex> l(mu_);
  if (stop_) return;
  drop_all_ = true;
  cv_.notify_one();
}

void Notifier::InvalidateInode(uint64_t id) {
  std::lock_guard<std::mutex> l(mu_);
  if (stop_) return;
  q_.push_back({queued_zxid_, tree::Change::kDataChanged, "", true, id});
  cv_.notify_one();
}

void Notifier::InvalidateName(uint64_t parent_id, std::string name) {
  std::lock_guard<std::mutex> l(mu_);
  if (stop_) return;
  q_.push_back({queued_zxid_, tree::Change::kCreated, std::move(name), true, parent_id, true});
  cv_.notify_one();
}

bool Notifier::WaitProcessed(int64_t zxid, int timeout_ms) {
  std::unique_lock<std::mutex> l(mu_);
  return done_cv_.wait_for(l, std::chrono::milliseconds(timeout_ms),
                           [&] { return stop_ || done_zxid_ >= zxid; });
}

Notifier::Stats Notifier::stats() const {
  return {n_changes_.load(), n_echoes_.load(), n_invals_.load(), n_overflows_.load(),
          n_drops_.load()};
}

void Notifier::Run() {
  echo_->tid = gettid();
  std::unique_lock<std::mutex> l(mu_);
  while (true) {
    cv_.wait(l, [&] { return stop_ || !q_.empty() || overflow_ || drop_all_; });
    if (stop_) break;
    if (q_.empty() && (overflow_ || drop_all_)) {
      bool overflow = overflow_;
      overflow_ = drop_all_ = false;
      (overflow ? n_overflows_ : n_drops_)++;
      int64_t z = queued_zxid_;
      l.unlock();
      if (overflow)
        QLOG_WARN("mount: change queue overflowed; dropping every cached entry (events were lost)");
      else
        QLOG_INFO(
            "mount: the member serves again (its tree may have been replaced); dropping "
            "every cached entry");
      InvalAll();
      l.lock();
      done_zxid_ = std::max(done_zxid_, z);
      done_cv_.notify_all();
      continue;
    }
    Item it = std::move(q_.front());
    q_.pop_front();
    if (it.type == tree::Change::kDataChanged && !it.own && it.inode == 0)
      queued_data_.erase(it.path);
    l.unlock();
    Process(it);
    l.lock();
    done_zxid_ =
        q_.empty() ? (overflow_ || drop_all_ ? done_zxid_ : queued_zxid_) : q_.front().zxid - 1;
    done_cv_.notify_all();
  }
  echo_->tid = 0;
}

void Notifier::InvalAll() {
  // Attributes and pages of every known inode, and its own entry (a node that is gone or was
  // replaced must be looked up again).
  std::vector<uint64_t> ids = table_->Ids();
  for (uint64_t id : ids) {
    Inode in;
    if (!table_->Get(id, &in)) continue;
    InvalInode(id);
    if (in.is_data) {
      if (uint64_t dir = table_->Find(in.path)) {
        n_invals_++;
        fuse_lowlevel_notify_inval_entry(se_, dir, kDataName.data(), kDataName.size());
      }
    } else {
      InvalEntry(in.path);
    }
  }
  // Negative entries: a known directory's names that exist now may be cached as absent.
  if (!children_now_) return;
  for (uint64_t id : ids) {
    Inode in;
    if (!table_->Get(id, &in) || !in.is_dir) continue;
    for (const std::string& n : children_now_(in.path)) {
      n_invals_++;
      fuse_lowlevel_notify_inval_entry(se_, id, n.c_str(), n.size());
    }
    n_invals_++;
    fuse_lowlevel_notify_inval_entry(se_, id, kDataName.data(), kDataName.size());
  }
}

void Notifier::InvalEntry(const std::string& path) {
  if (path == "/") return;
  std::string parent(tree::ParentPath(path));
  std::string base(tree::BaseName(path));
  uint64_t pid = table_->Find(parent);
  if (!pid) return;
  n_invals_++;
  fuse_lowlevel_notify_inval_entry(se_, pid, base.c_str(), base.size());
}

void Notifier::InvalInode(uint64_t id, bool attrs_only) {
  n_invals_++;
  fuse_lowlevel_notify_inval_inode(se_, id, attrs_only ? -1 : 0, 0);
}

void Notifier::Process(const Item& it) {
  if (it.inode && it.name) {
    n_invals_++;
    fuse_lowlevel_notify_inval_entry(se_, it.inode, it.path.c_str(), it.path.size());
    return;
  }
  if (it.inode) {
    InvalInode(it.inode);
    return;
  }
  const std::string& path = it.path;
  std::string parent = path == "/" ? "/" : std::string(tree::ParentPath(path));
  bool may_watch = table_->Held(parent) || table_->Held(path);
  bool echo = o_.echo && !it.own && may_watch;
  uint64_t id = table_->Find(path);
  // A node whose type as seen by the kernel no longer matches needs a fresh lookup (a file that
  // gained children is a directory now): drop its entry so the next lookup gets a new inode.
  auto drop_if_flipped = [&] {
    Inode in;
    bool exists = false;
    if (id && table_->Get(id, &in)) {
      bool d = is_dir_now_(path, &exists, nullptr);
      if (exists && d != in.is_dir) InvalEntry(path);
    }
  };
  switch (it.type) {
    case tree::Change::kCreated: {
      if (!it.own) InvalEntry(path);
      if (echo) EchoCreate(path);
      break;
    }
    case tree::Change::kDeleted: {
      bool was_dir = false;
      Inode in;
      if (id && table_->Get(id, &in)) was_dir = in.is_dir;
      if (!it.own) InvalEntry(path);
      if (id) InvalInode(id);
      if (uint64_t d = table_->Find(path, true)) InvalInode(d);
      if (echo) Echo(EchoState::kDelete, path, was_dir);
      break;
    }
    case tree::Change::kDataChanged: {
      if (id) {
        InvalInode(id);
        // `.data` appears or disappears with the data (a cached negative entry must go).
        Inode in;
        if (table_->Get(id, &in) && in.is_dir) {
          n_invals_++;
          fuse_lowlevel_notify_inval_entry(se_, id, kDataName.data(), kDataName.size());
        }
      }
      uint64_t did = table_->Find(path, true);
      if (did) InvalInode(did);
      drop_if_flipped();
      if (echo || (o_.echo && !it.own && did)) {
        bool exists = false;
        bool d = is_dir_now_(path, &exists, nullptr);
        if (exists) {
          Echo(EchoState::kModify, path, d);
          // Rule 3: the echo's write told the kernel about a 1-byte write; drop that too.
          if (id) InvalInode(id);
          if (did) InvalInode(did);
        }
      }
      break;
    }
    case tree::Change::kChildrenChanged:
      if (id) InvalInode(id);
      drop_if_flipped();
      break;
    case tree::Change::kAclChanged:
      if (id) InvalInode(id, true);
      if (echo) Echo(EchoState::kAttrib, path, false);
      break;
  }
}

void Notifier::EchoCreate(const std::string& path) {
  bool exists = false;
  uint64_t len = 0;
  bool d = is_dir_now_(path, &exists, &len);
  if (!exists) return;  // deleted meanwhile: its delete comes next
  Echo(EchoState::kCreate, path, d);
  if (d && len == 0) return;  // an empty directory: IN_CREATE|IN_ISDIR only, as mkdir
  // A file is written after it is created (`echo x > f`, `: > f`, `touch f` all end with
  // IN_CLOSE_WRITE), and a watcher waiting for IN_CLOSE_WRITE must see a file made elsewhere.
  Echo(len > 0 ? EchoState::kModify : EchoState::kOpenClose, path, d);
  // Echo rule 3: the echo's write reached the kernel as a 1-byte write; drop what it cached.
  if (uint64_t id = table_->Find(path)) InvalInode(id);
  if (uint64_t did = table_->Find(path, true)) InvalInode(did);
}

void Notifier::Echo(EchoState::Op op, const std::string& path, bool is_dir) {
  {
    std::lock_guard<std::mutex> l(echo_->mu);
    echo_->op = op;
    echo_->path = path;
    echo_->is_dir = is_dir;
  }
  std::string full = o_.mountpoint + (path == "/" ? "" : path);
  int rc = 0;
  switch (op) {
    case EchoState::kCreate:
      rc = is_dir ? mkdir(full.c_str(), 0755) : mknod(full.c_str(), S_IFREG | 0644, 0);
      break;
    case EchoState::kDelete:
      rc = is_dir ? rmdir(full.c_str()) : unlink(full.c_str());
      break;
    case EchoState::kModify:
    case EchoState::kOpenClose: {
      std::string target = is_dir ? full + "/" + std::string(kDataName) : full;
      int fd = open(target.c_str(), O_WRONLY | O_CLOEXEC);
      rc = fd;
      if (fd >= 0) {
        if (op == EchoState::kModify) rc = write(fd, "", 1) == 1 ? 0 : -1;
        close(fd);
      }
      break;
    }
    case EchoState::kAttrib:
      rc = utimensat(AT_FDCWD, full.c_str(), nullptr, AT_SYMLINK_NOFOLLOW);
      break;
    case EchoState::kNone:
      break;
  }
  if (rc < 0) QLOG_DEBUG("mount: echo %d on %s: %s", op, path.c_str(), strerror(errno));
  {
    std::lock_guard<std::mutex> l(echo_->mu);
    echo_->op = EchoState::kNone;
    echo_->path.clear();
  }
  n_echoes_++;
}

}  // namespace qfs::fusefs
