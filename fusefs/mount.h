// quorumfsd's FUSE mount of the local replica: `quorumfsd --mount DIR` or `mount=DIR`.
// See docs/fuse.md for what a user can rely on.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "consensus/util/result.h"
#include "daemon/replica/pipeline.h"
#include "daemon/service/sessions.h"

namespace qfs::fusefs {

struct MountOptions {
  std::string dir;
  int write_timeout_ms = 10000;     // mount.writeTimeoutMs
  int session_timeout_ms = 10000;   // mount.sessionTimeoutMs (clamped to the session bounds)
  size_t max_data_bytes = 1 << 20;  // jute.maxbuffer
  bool echo = true;                 // surface remote changes to inotify
  // Ids every request of the mount carries besides the caller's own (mount.auth).
  std::vector<tree::Id> extra_ids;
  bool root_is_super = false;  // mount.rootIsSuper
  // Where the mount's session comes from (a local session: kept alive while the daemon runs).
  service::Sessions* sessions = nullptr;
};

class Mount {
 public:
  // Cleans up a stale mount at `dir`, opens the session, mounts and starts serving.
  static Result<std::unique_ptr<Mount>> Start(MountOptions options, Pipeline* pipeline);
  ~Mount();  // Stop()
  // Unmounts (lazily if busy), then closes the session so its ephemerals go at once.
  void Stop();
  const std::string& mountpoint() const;

  struct Impl;

 private:
  std::unique_ptr<Impl> impl_;
};

}  // namespace qfs::fusefs
