#include "daemon/server/process_info.h"

#include <dirent.h>
#include <pwd.h>
#include <sys/resource.h>
#include <sys/utsname.h>
#include <unistd.h>

#include <algorithm>
#include <climits>
#include <cstdio>
#include <cstring>
#include <fstream>

namespace qfs::server {
namespace {

// A "Key:   N kB" line of a /proc file, in bytes (0 if absent).
uint64_t ProcKb(const char* file, const char* key) {
  std::ifstream in(file);
  std::string line;
  const size_t n = strlen(key);
  while (std::getline(in, line))
    if (line.compare(0, n, key) == 0 && line.size() > n && line[n] == ':')
      return strtoull(line.c_str() + n + 1, nullptr, 10) * 1024;
  return 0;
}

}  // namespace

ProcessInfo GetProcessInfo() {
  ProcessInfo p;
  char buf[PATH_MAX] = "";
  if (gethostname(buf, sizeof buf - 1) == 0) p.host_name = buf;
  struct utsname u {};
  if (uname(&u) == 0) {
    p.os_name = u.sysname;
    p.os_arch = strcmp(u.machine, "x86_64") == 0 ? "amd64" : u.machine;  // Java's os.arch
    p.os_version = u.release;
  }
  struct passwd pw {
  }, *found = nullptr;
  char pwbuf[4096];
  if (getpwuid_r(geteuid(), &pw, pwbuf, sizeof pwbuf, &found) == 0 && found) {
    p.user_name = pw.pw_name;
    p.user_home = pw.pw_dir;
  }
  if (getcwd(buf, sizeof buf)) p.user_dir = buf;

  constexpr uint64_t kMb = 1 << 20;
  uint64_t rss = ProcKb("/proc/self/status", "VmRSS");
  uint64_t max = ProcKb("/proc/meminfo", "MemTotal");
  struct rlimit rl {};
  if (getrlimit(RLIMIT_AS, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY)
    max = max ? std::min<uint64_t>(max, rl.rlim_cur) : rl.rlim_cur;
  p.mem_total_mb = rss / kMb;
  p.mem_max_mb = max / kMb;
  p.mem_free_mb = max > rss ? (max - rss) / kMb : 0;
  return p;
}

uint64_t OpenFileDescriptors() {
  DIR* d = opendir("/proc/self/fd");
  if (!d) return 0;
  uint64_t n = 0;
  while (const dirent* e = readdir(d))
    if (e->d_name[0] != '.') n++;
  closedir(d);
  return n > 0 ? n - 1 : 0;  // not the descriptor that lists them
}

uint64_t MaxFileDescriptors() {
  struct rlimit rl {};
  if (getrlimit(RLIMIT_NOFILE, &rl) != 0) return 0;
  return rl.rlim_cur == RLIM_INFINITY ? UINT64_MAX : rl.rlim_cur;
}

// Defined in daemon/alloc_count.cc, which only the jemalloc build of quorumfsd links.
extern "C" int64_t QfsAllocationCount() __attribute__((weak));

int64_t Allocations() {
  return QfsAllocationCount ? QfsAllocationCount() : -1;
}

}  // namespace qfs::server
