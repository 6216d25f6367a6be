#include "fusefs/guard.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>

#include "consensus/util/log.h"

namespace qfs::fusefs {
namespace {

using Clock = std::chrono::steady_clock;

// The kernel's PF_EXITING task flag (field 9 of /proc/PID/stat): the thread is in do_exit.
constexpr unsigned long kPfExiting = 0x4;

// The state letter, flags (field 9) and start time (field 22) of /proc/PID/stat; false if there
// is no such process.
bool ReadProcStat(pid_t pid, char* state, unsigned long long* start,
                  unsigned long* flags = nullptr) {
  std::ifstream f("/proc/" + std::to_string(pid) + "/stat");
  std::string s;
  if (!f || !std::getline(f, s)) return false;
  size_t close = s.rfind(')');  // the command name may hold spaces and parentheses
  if (close == std::string::npos) return false;
  std::istringstream rest(s.substr(close + 1));
  std::string field;
  for (int i = 3; i <= 22 && rest >> field; i++) {
    if (i == 3) *state = field.empty() ? '?' : field[0];
    if (i == 9 && flags) *flags = std::strtoul(field.c_str(), nullptr, 10);
    if (i == 22) *start = std::strtoull(field.c_str(), nullptr, 10);
  }
  return true;
}

}  // namespace

bool AbortFuseConnection(unsigned conn_minor) {
  const std::string dir = "/sys/fs/fuse/connections";
  const std::string abort = dir + "/" + std::to_string(conn_minor) + "/abort";
  if (access(abort.c_str(), F_OK) != 0) mount("fusectl", dir.c_str(), "fusectl", 0, nullptr);
  std::ofstream f(abort);
  if (!f) return false;
  f << "1";
  f.flush();
  return static_cast<bool>(f);
}

MountGuard StartMountGuard(unsigned conn_minor, const std::string& mountpoint) {
  char state = 0;
  unsigned long long start = 0;
  if (!ReadProcStat(getpid(), &state, &start)) {
    QLOG_WARN("mount %s: no guard (cannot read /proc/self/stat)", mountpoint.c_str());
    return {};
  }
  int p[2];
  if (pipe2(p, O_CLOEXEC) != 0) {
    QLOG_WARN("mount %s: no guard (pipe: %s)", mountpoint.c_str(), strerror(errno));
    return {};
  }
  const std::string pid_s = std::to_string(getpid()), start_s = std::to_string(start),
                    minor_s = std::to_string(conn_minor);
  const char* args[] = {"quorumfsd",     "--mount-guard",    pid_s.c_str(), start_s.c_str(),
                        minor_s.c_str(), mountpoint.c_str(), nullptr};
  pid_t c = fork();
  if (c == 0) {
    // A threaded parent: only async-signal-safe calls from here to exec. The guard gets the read
    // end as fd 3 and no other descriptor beyond stdio (not the write end, /dev/fuse or LOCK).
    if (p[0] == 3) {
      if (fcntl(3, F_SETFD, 0) != 0) _exit(127);
    } else if (dup2(p[0], 3) != 3) {
      _exit(127);
    }
    syscall(SYS_close_range, 4U, ~0U, 0U);
    setsid();  // out of the terminal's process group: a Ctrl-C meant for the daemon is not ours
    execv("/proc/self/exe", const_cast<char**>(args));
    _exit(127);
  }
  close(p[0]);
  if (c < 0) {
    QLOG_WARN("mount %s: no guard (fork: %s)", mountpoint.c_str(), strerror(errno));
    close(p[1]);
    return {};
  }
  return {p[1], c};
}

void DismissMountGuard(MountGuard* g) {
  if (g->fd < 0) return;
  ssize_t ignored = write(g->fd, "q", 1);  // EPIPE if it is gone already: SIGPIPE is ignored
  (void)ignored;
  close(g->fd);
  // Reap it (bounded: it exits as soon as it reads the byte).
  for (int i = 0; i < 200; i++) {
    pid_t r = waitpid(g->pid, nullptr, WNOHANG);
    if (r == g->pid || (r < 0 && errno == ECHILD)) break;
    usleep(5000);
  }
  *g = MountGuard{};
}

int RunMountGuard(int argc, char** argv) {
  if (argc != 6) {
    fprintf(stderr, "usage: quorumfsd --mount-guard PID START_TIME MINOR MOUNTPOINT\n");
    return 2;
  }
  const pid_t pid = static_cast<pid_t>(std::atoi(argv[2]));
  const unsigned long long start = std::strtoull(argv[3], nullptr, 10);
  const unsigned conn_minor = static_cast<unsigned>(std::strtoul(argv[4], nullptr, 10));
  const char* mountpoint = argv[5];
  sigset_t all;
  sigfillset(&all);
  sigprocmask(SIG_UNBLOCK, &all, nullptr);  // the daemon's main thread blocks TERM and INT
  signal(SIGPIPE, SIG_IGN);
  signal(SIGINT, SIG_IGN);
  signal(SIGHUP, SIG_IGN);
  Clock::time_point dying_since{}, aborted_at{};
  bool dying = false, aborted = false;
  for (;;) {
    pollfd pf{3, POLLIN, 0};
    if (poll(&pf, 1, 50) > 0) {
      char b[16];
      ssize_t n = read(3, b, sizeof b);
      // The dismissal byte, or EOF: the daemon's descriptors are gone, it exited unwedged.
      if (n >= 0) return 0;
      if (errno != EINTR && errno != EAGAIN) return 1;
    }
    char state = 0;
    unsigned long long st = 0;
    unsigned long flags = 0;
    bool exists = ReadProcStat(pid, &state, &st, &flags) && st == start;
    // Its main thread has exited, or is exiting (the last thread out closes the descriptors, and
    // a close of a file on the mount waits for a FLUSH reply nobody is left to send), or the
    // whole process is gone, but the pipe is still open.
    bool now_dying = !exists || state == 'Z' || state == 'X' || (flags & kPfExiting) != 0;
    if (!now_dying) {
      dying = false;
      continue;
    }
    const auto now = Clock::now();
    if (!dying) {
      dying = true;
      dying_since = now;
    }
    if (!aborted && now - dying_since >= std::chrono::milliseconds(200)) {
      aborted = true;
      aborted_at = now;
      if (AbortFuseConnection(conn_minor)) {
        QLOG_WARN(
            "mount guard: quorumfsd (pid %d) was killed while a request to its own mount %s "
            "was in flight and could not exit; aborted its FUSE connection (%u)",
            static_cast<int>(pid), mountpoint, conn_minor);
      } else {
        QLOG_ERROR(
            "mount guard: quorumfsd (pid %d) cannot exit, and aborting its FUSE connection "
            "(/sys/fs/fuse/connections/%u/abort) failed: %s",
            static_cast<int>(pid), conn_minor, strerror(errno));
      }
    }
    if (aborted && now - aborted_at > std::chrono::seconds(10)) return 0;
  }
}

}  // namespace qfs::fusefs
