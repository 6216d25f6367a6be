#define FUSE_USE_VERSION 314
#include "fusefs/mount.h"

#include <fuse_lowlevel.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <chrono>
#include <condition_variable>
#include <cstring>
#include <mutex>
#include <thread>

#include "consensus/util/log.h"
#include "fusefs/fs.h"
#include "fusefs/guard.h"
#include "fusefs/inode_table.h"
#include "fusefs/mountpoint.h"
#include "fusefs/notifier.h"

namespace qfs::fusefs {

namespace {
constexpr int kSessionWaitS = 60;  // at start, for a member that does not serve yet
}  // namespace

struct Mount::Impl {
  MountOptions o;
  Pipeline* pipeline = nullptr;
  std::string abs;
  InodeTable table;
  OwnChanges own;
  EchoState echo;
  std::unique_ptr<Notifier> notifier;
  std::unique_ptr<Fs> fs;
  int listener = 0;
  int role_listener = 0;
  bool was_serving = false;    // pipeline thread only
  bool was_read_only = false;  // pipeline thread only
  fuse_session* se = nullptr;
  dev_t dev = 0;
  std::thread loop;
  std::mutex mu;
  std::condition_variable cv;
  bool loop_done = false;
  bool stopped = false;
  MountGuard guard;  // fusefs/guard.h
  std::mutex session_mu;

  void ReopenSession(int64_t lost) {
    std::lock_guard<std::mutex> l(session_mu);
    if (fs->session() != lost) return;
    auto s = o.sessions->OpenLocal(o.session_timeout_ms);
    if (s.ok()) {
      fs->set_session(*s);
      QLOG_WARN("mount %s: session 0x%llx was lost; now using 0x%llx (its ephemerals are gone)",
                abs.c_str(), static_cast<unsigned long long>(lost),
                static_cast<unsigned long long>(*s));
    } else {
      QLOG_ERROR("mount %s: cannot open a new session: %s", abs.c_str(),
                 s.status().ToString().c_str());
    }
  }

  // A connection the kernel keeps (a shell's cwd inside the lazily detached mount) would keep
  // the loop's threads waiting: abort it through fusectl.
  void AbortConnection() {
    AbortFuseConnection(minor(dev));
    QLOG_WARN("mount %s: still in use after unmount; aborted its FUSE connection", abs.c_str());
  }
};

Result<std::unique_ptr<Mount>> Mount::Start(MountOptions options, Pipeline* pipeline) {
  auto m = std::unique_ptr<Mount>(new Mount());
  m->impl_ = std::make_unique<Impl>();
  Impl& s = *m->impl_;
  s.o = std::move(options);
  s.pipeline = pipeline;
  // The session first: opening it waits for a commit, and a stale mount's detach must come
  // right before the new mount, or meanwhile the path is the plain directory beneath it and a
  // shell's writes would land there.
  // A restarted member may still be syncing with its leader (a DIFF under load can outlast
  // writeWaitMs): wait for the ensemble rather than give up the whole start.
  auto session = s.o.sessions->OpenLocal(s.o.session_timeout_ms);
  for (int waited_s = 0;
       !session.ok() && session.status().code() == Code::kUnavailable && waited_s < kSessionWaitS;
       waited_s++) {
    if (waited_s == 0)
      QLOG_INFO("mount %s: waiting for the ensemble to open the mount's session (%s)",
                s.o.dir.c_str(), session.status().ToString().c_str());
    sleep(1);
    session = s.o.sessions->OpenLocal(s.o.session_timeout_ms);
  }
  if (!session.ok()) return session.status();
  auto abs = PrepareMountpoint(s.o.dir);
  if (!abs.ok()) {
    s.o.sessions->CloseLocal(*session);
    return abs.status();
  }
  s.abs = *abs;

  Notifier::Options no;
  no.mountpoint = s.abs;
  no.echo = s.o.echo;
  Impl* ip = &s;
  s.notifier = std::make_unique<Notifier>(no, &s.table, &s.own, &s.echo,
                                          [ip](const std::string& p, bool* exists, uint64_t* len) {
                                            return ip->fs->IsDirNow(p, exists, len);
                                          });
  FsOptions fo;
  fo.mountpoint = s.abs;
  fo.write_timeout_ms = s.o.write_timeout_ms;
  fo.max_data_bytes = s.o.max_data_bytes;
  fo.extra_ids = s.o.extra_ids;
  fo.root_is_super = s.o.root_is_super;
  s.fs = std::make_unique<Fs>(fo, pipeline, *session, &s.table, &s.own, &s.echo, s.notifier.get());
  s.fs->set_on_session_lost([ip] { ip->ReopenSession(ip->fs->session()); });
  s.notifier->set_children_now([ip](const std::string& p) { return ip->fs->ChildrenNow(p); });

  std::string opts = "fsname=quorumfs,subtype=quorumfs";
  if (geteuid() == 0) opts += ",allow_other";
  const char* argv[] = {"quorumfsd", "-o", opts.c_str()};
  fuse_args args = FUSE_ARGS_INIT(3, const_cast<char**>(argv));
  s.se = fuse_session_new(&args, Fs::Ops(), sizeof(fuse_lowlevel_ops), s.fs.get());
  fuse_opt_free_args(&args);
  if (!s.se) {
    s.o.sessions->CloseLocal(*session);
    return Internal("mount: fuse_session_new failed");
  }
  if (fuse_session_mount(s.se, s.abs.c_str()) != 0) {
    fuse_session_destroy(s.se);
    s.se = nullptr;
    s.o.sessions->CloseLocal(*session);
    return Unavailable("mount: cannot mount on " + s.abs + " (is /dev/fuse usable?)");
  }
  Notifier* n = s.notifier.get();
  s.listener = pipeline->AddApplyListener(
      [n](int64_t zxid, const std::vector<tree::Change>& c) { n->OnApply(zxid, c); });
  // Serving again after a gap: the tree may have been replaced without apply listeners (a
  // truncation or a snapshot from the leader), so every kernel cache goes. On the pipeline
  // thread: queue only, the notifier thread talks to the kernel.
  s.was_serving = pipeline->member().serving;
  s.was_read_only = pipeline->member().read_only;
  s.role_listener = pipeline->AddRoleListener([n, ip](const MemberStatus& m) {
    if (m.serving && !ip->was_serving) n->DropAll();
    ip->was_serving = m.serving;
    if (m.read_only && !ip->was_read_only)
      QLOG_WARN(
          "mount %s: read-only: this member has no quorum; reads are served from its own "
          "tree, writes fail with EROFS (docs/read-only.md)",
          ip->abs.c_str());
    else if (!m.read_only && ip->was_read_only)
      QLOG_INFO("mount %s: read-only mode ended; writes resume once this member serves",
                ip->abs.c_str());
    ip->was_read_only = m.read_only;
  });
  s.notifier->Start(s.se);
  s.loop = std::thread([ip] {
    fuse_loop_config* cfg = fuse_loop_cfg_create();
    fuse_loop_cfg_set_clone_fd(cfg, 0);
    fuse_loop_cfg_set_idle_threads(cfg, 8);
    // Handlers wait for write replies (up to mount.writeTimeoutMs): allow many at once.
    fuse_loop_cfg_set_max_threads(cfg, 256);
    int rc = fuse_session_loop_mt(ip->se, cfg);
    fuse_loop_cfg_destroy(cfg);
    if (rc != 0 && !fuse_session_exited(ip->se))
      QLOG_ERROR("mount %s: FUSE loop ended: %d", ip->abs.c_str(), rc);
    std::lock_guard<std::mutex> l(ip->mu);
    ip->loop_done = true;
    ip->cv.notify_all();
  });
  struct stat st;
  if (stat(s.abs.c_str(), &st) == 0) {
    s.dev = st.st_dev;
    s.guard = StartMountGuard(minor(s.dev), s.abs);
  }
  QLOG_INFO("mounted the tree on %s (session 0x%llx, writeTimeoutMs=%d)", s.abs.c_str(),
            static_cast<unsigned long long>(*session), s.o.write_timeout_ms);
  return m;
}

Mount::~Mount() {
  Stop();
}

const std::string& Mount::mountpoint() const {
  return impl_->abs;
}

void Mount::Stop() {
  if (!impl_) return;
  Impl& s = *impl_;
  if (s.stopped || !s.se) return;  // stopped, or Start failed before mounting
  s.stopped = true;
  DismissMountGuard(&s.guard);  // a clean unmount: nothing for it to free
  s.notifier->Stop();
  fuse_session_exit(s.se);
  fuse_session_unmount(s.se);  // lazy for root: a busy mount is detached
  {
    std::unique_lock<std::mutex> l(s.mu);
    if (!s.cv.wait_for(l, std::chrono::seconds(3), [&] { return s.loop_done; })) {
      l.unlock();
      s.AbortConnection();
    }
  }
  s.loop.join();
  s.pipeline->RemoveApplyListener(s.listener);
  s.pipeline->RemoveRoleListener(s.role_listener);
  Status st = s.o.sessions->CloseLocal(s.fs->session());
  if (!st.ok()) QLOG_WARN("mount %s: %s", s.abs.c_str(), st.ToString().c_str());
  fuse_session_destroy(s.se);
  s.se = nullptr;
  QLOG_INFO("unmounted %s", s.abs.c_str());
}

}  // namespace qfs::fusefs
