// Facts about this process and host that ZooKeeper's envi and mntr report (there from the JVM,
// here from the kernel). Read on demand; nothing is cached.
#pragma once

#include <cstdint>
#include <string>

namespace qfs::server {

struct ProcessInfo {
  std::string host_name, os_name, os_arch, os_version;  // os.arch uses Java's names (amd64)
  std::string user_name, user_home, user_dir;
  // The JVM reports its heap; a native process has none, so (docs/four-letter-words.md):
  // total = resident set, max = the most it may use (RLIMIT_AS or physical memory), free = the
  // rest.
  uint64_t mem_total_mb = 0, mem_max_mb = 0, mem_free_mb = 0;
};
ProcessInfo GetProcessInfo();

// Open descriptors of this process, and its soft RLIMIT_NOFILE (mntr's zk_*_file_descriptor_count).
uint64_t OpenFileDescriptors();
uint64_t MaxFileDescriptors();

// Allocations (operator new) made by this process since it started, every thread; -1 where
// quorumfsd runs without jemalloc (sanitizer builds, which keep their own operator new). The bench divides its growth by
// the ops measured (docs/four-letter-words.md, qfs_allocations).
int64_t Allocations();

}  // namespace qfs::server
