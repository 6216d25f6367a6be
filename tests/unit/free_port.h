// A loopback port for a test member that no other process takes in the meantime: the C++ twin
// of tests/clients/ports.py (same range, same reservation directory), for the same reason.
// Binding port 0 hands out an ephemeral port, which the kernel also gives to outgoing
// connections of tests running in parallel, so a member restarted on "its" port could find it
// taken. These ports come from outside the ephemeral range, at random, and each one is recorded
// in /tmp/qfs-ports-UID for six hours so that a parallel test does not pick it either.
#pragma once

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <fstream>
#include <random>
#include <string>
#include <utility>
#include <vector>

namespace qfs::testing_util {

inline bool PortBindable(int port) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return false;
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = htons(static_cast<uint16_t>(port));
  bool ok = bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0;
  close(fd);
  return ok;
}

// True if `port` was not handed out in the last six hours and is now ours.
inline bool ReservePort(const std::string& dir, int port) {
  const std::string path = dir + "/" + std::to_string(port);
  for (int attempt = 0; attempt < 2; ++attempt) {
    int fd = open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL, 0600);
    if (fd >= 0) {
      close(fd);
      return true;
    }
    struct stat st {};
    if (stat(path.c_str(), &st) != 0) continue;  // gone meanwhile: try again
    if (time(nullptr) - st.st_mtime < 6 * 3600) return false;
    unlink(path.c_str());  // stale: reclaim once
  }
  return false;
}

inline int FreePort() {
  int lo = 32768, hi = 60999;
  std::ifstream("/proc/sys/net/ipv4/ip_local_port_range") >> lo >> hi;
  std::vector<std::pair<int, int>> ranges;
  constexpr int kFloor = 10000;
  if (lo - 1 >= kFloor) ranges.emplace_back(kFloor, lo - 1);
  if (hi + 1 <= 65535) ranges.emplace_back(std::max(hi + 1, kFloor), 65535);
  if (ranges.empty()) {
    std::fprintf(stderr, "FreePort: no range outside the ephemeral range %d-%d\n", lo, hi);
    std::abort();
  }
  const char* tmp = std::getenv("TMPDIR");
  const std::string dir =
      std::string(tmp && *tmp ? tmp : "/tmp") + "/qfs-ports-" + std::to_string(getuid());
  mkdir(dir.c_str(), 0700);
  std::random_device rd;
  std::mt19937 rng(rd());
  int total = 0;
  for (auto& [a, b] : ranges) total += b - a + 1;
  for (int i = 0; i < 2000; ++i) {
    int k = std::uniform_int_distribution<int>(0, total - 1)(rng);
    int port = 0;
    for (auto& [a, b] : ranges) {
      if (k < b - a + 1) {
        port = a + k;
        break;
      }
      k -= b - a + 1;
    }
    if (ReservePort(dir, port) && PortBindable(port)) return port;
  }
  std::fprintf(stderr, "FreePort: no free loopback port found\n");
  std::abort();
}

}  // namespace qfs::testing_util
