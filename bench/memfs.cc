// memfs: a trivial in-memory filesystem on libfuse3's low-level API, one flat directory.
// It measures the FUSE round-trip limit of this machine (the same kernel path as quorumfs's
// mount, with nothing behind it), and with --hold-fsync FLAG it stalls every fsync while the
// file FLAG exists: a disk that stops answering, for the mount's no-progress tests.
//
//   memfs MOUNTPOINT [--hold-fsync FLAG] [--cache SECONDS]    (foreground; SIGTERM unmounts)
#define FUSE_USE_VERSION 314
#include <fuse_lowlevel.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstring>
#include <map>
#include <mutex>
#include <string>
#include <thread>

namespace {

struct File {
  std::string name;
  std::string data;
  uint64_t nlookup = 0;
  bool linked = true;
  bool dir = false;  // an (always empty) directory in the root
};

std::mutex mu;
std::map<uint64_t, File> files;         // by inode
std::map<std::string, uint64_t> names;  // the root directory
uint64_t next_ino = 2;
std::string hold_flag;
double cache_s = 3600;

void Attr(uint64_t ino, struct stat* st) {
  memset(st, 0, sizeof *st);
  st->st_ino = ino;
  if (ino == FUSE_ROOT_ID) {
    st->st_mode = S_IFDIR | 0755;
    st->st_nlink = 2;
    return;
  }
  st->st_mode = files[ino].dir ? (S_IFDIR | 0755) : (S_IFREG | 0644);
  st->st_nlink = 1;
  st->st_size = static_cast<off_t>(files[ino].data.size());
}

void Entry(fuse_req_t req, uint64_t ino) {
  fuse_entry_param e;
  memset(&e, 0, sizeof e);
  e.ino = ino;
  e.attr_timeout = e.entry_timeout = cache_s;
  Attr(ino, &e.attr);
  files[ino].nlookup++;
  fuse_reply_entry(req, &e);
}

void Lookup(fuse_req_t req, fuse_ino_t parent, const char* name) {
  std::lock_guard<std::mutex> l(mu);
  auto it = names.find(name);
  if (parent != FUSE_ROOT_ID || it == names.end()) return (void)fuse_reply_err(req, ENOENT);
  Entry(req, it->second);
}

void Forget(fuse_req_t req, fuse_ino_t ino, uint64_t n) {
  std::lock_guard<std::mutex> l(mu);
  auto it = files.find(ino);
  if (it != files.end()) {
    it->second.nlookup -= std::min(n, it->second.nlookup);
    if (!it->second.nlookup && !it->second.linked) files.erase(it);
  }
  fuse_reply_none(req);
}

void GetAttr(fuse_req_t req, fuse_ino_t ino, fuse_file_info*) {
  std::lock_guard<std::mutex> l(mu);
  if (ino != FUSE_ROOT_ID && !files.count(ino)) return (void)fuse_reply_err(req, ENOENT);
  struct stat st;
  Attr(ino, &st);
  fuse_reply_attr(req, &st, cache_s);
}

void SetAttr(fuse_req_t req, fuse_ino_t ino, struct stat* a, int to_set, fuse_file_info*) {
  std::lock_guard<std::mutex> l(mu);
  if (!files.count(ino)) return (void)fuse_reply_err(req, ENOENT);
  if (to_set & FUSE_SET_ATTR_SIZE) files[ino].data.resize(static_cast<size_t>(a->st_size));
  struct stat st;
  Attr(ino, &st);
  fuse_reply_attr(req, &st, cache_s);
}

uint64_t Make(const char* name) {
  uint64_t ino = next_ino++;
  files[ino].name = name;
  names[name] = ino;
  return ino;
}

void Create(fuse_req_t req, fuse_ino_t parent, const char* name, mode_t, fuse_file_info* fi) {
  std::lock_guard<std::mutex> l(mu);
  if (parent != FUSE_ROOT_ID) return (void)fuse_reply_err(req, ENOTDIR);
  auto it = names.find(name);
  uint64_t ino = it != names.end() ? it->second : Make(name);
  if (fi->flags & O_TRUNC) files[ino].data.clear();
  fuse_entry_param e;
  memset(&e, 0, sizeof e);
  e.ino = ino;
  e.attr_timeout = e.entry_timeout = cache_s;
  Attr(ino, &e.attr);
  files[ino].nlookup++;
  fi->keep_cache = 1;
  fuse_reply_create(req, &e, fi);
}

void Mknod(fuse_req_t req, fuse_ino_t parent, const char* name, mode_t mode, dev_t) {
  std::lock_guard<std::mutex> l(mu);
  if (parent != FUSE_ROOT_ID || !S_ISREG(mode)) return (void)fuse_reply_err(req, EPERM);
  if (names.count(name)) return (void)fuse_reply_err(req, EEXIST);
  Entry(req, Make(name));
}

void Mkdir(fuse_req_t req, fuse_ino_t parent, const char* name, mode_t) {
  std::lock_guard<std::mutex> l(mu);
  if (parent != FUSE_ROOT_ID) return (void)fuse_reply_err(req, EPERM);
  if (names.count(name)) return (void)fuse_reply_err(req, EEXIST);
  uint64_t ino = Make(name);
  files[ino].dir = true;
  Entry(req, ino);
}

void Unlink(fuse_req_t req, fuse_ino_t, const char* name) {
  std::lock_guard<std::mutex> l(mu);
  auto it = names.find(name);
  if (it == names.end()) return (void)fuse_reply_err(req, ENOENT);
  files[it->second].linked = false;
  names.erase(it);
  fuse_reply_err(req, 0);
}

void Rename(fuse_req_t req, fuse_ino_t, const char* name, fuse_ino_t, const char* newname,
            unsigned int) {
  std::lock_guard<std::mutex> l(mu);
  auto it = names.find(name);
  if (it == names.end()) return (void)fuse_reply_err(req, ENOENT);
  uint64_t ino = it->second;
  names.erase(it);
  if (auto t = names.find(newname); t != names.end()) files[t->second].linked = false;
  names[newname] = ino;
  files[ino].name = newname;
  fuse_reply_err(req, 0);
}

void Open(fuse_req_t req, fuse_ino_t ino, fuse_file_info* fi) {
  std::lock_guard<std::mutex> l(mu);
  if (!files.count(ino)) return (void)fuse_reply_err(req, ENOENT);
  if (fi->flags & O_TRUNC) files[ino].data.clear();
  fi->keep_cache = 1;
  fuse_reply_open(req, fi);
}

void Read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, fuse_file_info*) {
  std::lock_guard<std::mutex> l(mu);
  const std::string& d = files[ino].data;
  if (static_cast<size_t>(off) >= d.size()) return (void)fuse_reply_buf(req, nullptr, 0);
  fuse_reply_buf(req, d.data() + off, std::min(size, d.size() - static_cast<size_t>(off)));
}

void Write(fuse_req_t req, fuse_ino_t ino, const char* buf, size_t size, off_t off,
           fuse_file_info*) {
  std::lock_guard<std::mutex> l(mu);
  std::string& d = files[ino].data;
  if (d.size() < off + size) d.resize(off + size);
  memcpy(d.data() + off, buf, size);
  fuse_reply_write(req, size);
}

void Fsync(fuse_req_t req, fuse_ino_t, int, fuse_file_info*) {
  // The stalled disk: hold while the flag file exists.
  while (!hold_flag.empty() && access(hold_flag.c_str(), F_OK) == 0)
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  fuse_reply_err(req, 0);
}

void ReadDir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, fuse_file_info*) {
  if (ino != FUSE_ROOT_ID) return (void)fuse_reply_err(req, ENOTDIR);
  std::lock_guard<std::mutex> l(mu);
  std::string buf(size, '\0');
  size_t used = 0;
  off_t i = 0;
  for (const auto& [name, fino] : names) {
    if (i++ < off) continue;
    struct stat st;
    memset(&st, 0, sizeof st);
    st.st_ino = fino;
    st.st_mode = S_IFREG;
    size_t n = fuse_add_direntry(req, buf.data() + used, size - used, name.c_str(), &st, i);
    if (n > size - used) break;
    used += n;
  }
  fuse_reply_buf(req, buf.data(), used);
}

void FsyncDir(fuse_req_t req, fuse_ino_t ino, int datasync, fuse_file_info* fi) {
  Fsync(req, ino, datasync, fi);
}

fuse_session* session = nullptr;

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    fprintf(stderr, "usage: memfs MOUNTPOINT [--hold-fsync FLAG] [--cache SECONDS]\n");
    return 2;
  }
  std::string mnt = argv[1];
  for (int i = 2; i + 1 < argc; i += 2) {
    std::string a = argv[i];
    if (a == "--hold-fsync")
      hold_flag = argv[i + 1];
    else if (a == "--cache")
      cache_s = atof(argv[i + 1]);
  }
  fuse_lowlevel_ops ops;
  memset(&ops, 0, sizeof ops);
  ops.lookup = Lookup;
  ops.forget = Forget;
  ops.getattr = GetAttr;
  ops.setattr = SetAttr;
  ops.mknod = Mknod;
  ops.create = Create;
  ops.unlink = Unlink;
  ops.mkdir = Mkdir;
  ops.rmdir = Unlink;
  ops.rename = Rename;
  ops.open = Open;
  ops.read = Read;
  ops.write = Write;
  ops.fsync = Fsync;
  ops.readdir = ReadDir;
  ops.fsyncdir = FsyncDir;
  const char* fargv[] = {"memfs", "-o", "fsname=memfs,subtype=memfs"};
  fuse_args args = FUSE_ARGS_INIT(3, const_cast<char**>(fargv));
  session = fuse_session_new(&args, &ops, sizeof ops, nullptr);
  fuse_opt_free_args(&args);
  if (!session || fuse_set_signal_handlers(session) != 0 ||
      fuse_session_mount(session, mnt.c_str()) != 0) {
    fprintf(stderr, "memfs: cannot mount on %s\n", mnt.c_str());
    return 1;
  }
  fuse_loop_config* cfg = fuse_loop_cfg_create();
  fuse_loop_cfg_set_max_threads(cfg, 64);
  int rc = fuse_session_loop_mt(session, cfg);
  fuse_loop_cfg_destroy(cfg);
  fuse_session_unmount(session);
  fuse_remove_signal_handlers(session);
  fuse_session_destroy(session);
  return rc ? 1 : 0;
}
