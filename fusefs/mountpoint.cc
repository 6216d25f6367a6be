#include "fusefs/mountpoint.h"

#include <dirent.h>
#include <limits.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "consensus/util/log.h"

namespace qfs::fusefs {
namespace {

// mountinfo escapes space, tab, newline and backslash as \ooo.
std::string Unescape(const std::string& s) {
  std::string out;
  for (size_t i = 0; i < s.size(); i++) {
    if (s[i] == '\\' && i + 3 < s.size()) {
      out += static_cast<char>(std::stoi(s.substr(i + 1, 3), nullptr, 8));
      i += 3;
    } else {
      out += s[i];
    }
  }
  return out;
}

Status Detach(const std::string& dir) {
  if (umount2(dir.c_str(), MNT_DETACH) == 0) return Status::Ok();
  int e = errno;
  // Not root: fusermount3 is setuid and may detach our own user's mounts.
  pid_t pid = fork();
  if (pid == 0) {
    execlp("fusermount3", "fusermount3", "-u", "-z", dir.c_str(), static_cast<char*>(nullptr));
    _exit(127);
  }
  int status = 0;
  if (pid > 0 && waitpid(pid, &status, 0) == pid && WIFEXITED(status) && WEXITSTATUS(status) == 0)
    return Status::Ok();
  return ErrnoStatus("cannot detach the stale mount at " + dir, e);
}

}  // namespace

std::string MountedFsType(const std::string& abs_dir) {
  std::ifstream f("/proc/self/mountinfo");
  std::string line, found;
  while (std::getline(f, line)) {
    // id parent major:minor root mountpoint options [optional...] - fstype source superopts
    std::istringstream in(line);
    std::string id, parent, dev, root, mp;
    in >> id >> parent >> dev >> root >> mp;
    size_t dash = line.find(" - ");
    if (dash == std::string::npos) continue;
    std::istringstream rest(line.substr(dash + 3));
    std::string type;
    rest >> type;
    if (Unescape(mp) == abs_dir) found = type;  // the last one is on top
  }
  return found;
}

Result<std::string> PrepareMountpoint(const std::string& dir) {
  if (dir.empty()) return InvalidArgument("mount: empty mount point");
  struct stat st;
  if (stat(dir.c_str(), &st) != 0) {
    int e = errno;
    if (e == ENOTCONN || e == ECONNABORTED) {
      QLOG_WARN(
          "mount point %s is a stale FUSE mount (%s), left by a daemon that died: detaching it",
          dir.c_str(), strerror(e));
      QFS_RETURN_IF_ERROR(Detach(dir));
    } else if (e == ENOENT) {
      // As `mkdir -p`: the parents too (scripts/ensemble's mount=/tmp/q/m{id} on a fresh /tmp).
      std::error_code ec;
      std::filesystem::create_directories(dir, ec);
      if (ec && ec != std::errc::file_exists)
        return ErrnoStatus("mount: cannot create the mount point " + dir, ec.value());
    } else {
      return ErrnoStatus("mount: cannot use the mount point " + dir, e);
    }
    if (stat(dir.c_str(), &st) != 0) return ErrnoStatus("mount: mount point " + dir, errno);
  }
  if (!S_ISDIR(st.st_mode)) return InvalidArgument("mount: " + dir + " is not a directory");
  char buf[PATH_MAX];
  if (!realpath(dir.c_str(), buf)) return ErrnoStatus("mount: realpath " + dir, errno);
  std::string abs = buf;
  std::string type = MountedFsType(abs);
  if (type == "fuse.quorumfs") {
    // stat() may answer from the kernel's attribute cache even when the daemon is gone;
    // opendir() always asks it.
    DIR* d = opendir(abs.c_str());
    int e = d ? 0 : errno;
    if (d) closedir(d);
    if (e != ENOTCONN && e != ECONNABORTED)
      return InvalidArgument("mount: " + abs + " is already mounted by a live quorumfsd");
    QLOG_WARN("mount point %s is a stale FUSE mount (%s), left by a daemon that died: detaching it",
              abs.c_str(), strerror(e));
    QFS_RETURN_IF_ERROR(Detach(abs));
  }
  return abs;
}

}  // namespace qfs::fusefs
