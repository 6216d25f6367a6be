// The mount's guard: a small process that frees a killed daemon's FUSE connection.
//
// The notifier surfaces remote changes by making syscalls on the daemon's own mount (the echo,
// docs/fuse.md). If the daemon is killed after a FUSE worker read such a request and before it
// replied, the notifier thread waits for the reply uninterruptibly, and the process, which
// holds the /dev/fuse descriptor itself, can never finish exiting: the mount hangs whoever
// touches it and the data directory stays locked. (An invalidation waiting for a directory lock
// that a hung request holds wedges it the same way.) Only aborting the connection through
// fusectl frees it, and no thread of the dying process can do that.
//
// So the mount starts a guard: a child of the daemon's main thread running this binary with
// --mount-guard. It holds the read end of a pipe whose write end only the daemon holds:
//   - a clean unmount first dismisses it (one byte, then close);
//   - EOF means the daemon's descriptors are gone, so it exited without wedging;
//   - if the daemon's main thread has exited (zombie) or is exiting (PF_EXITING: the last thread
//     out closes the descriptors, and closing a file on the mount waits for a FLUSH reply) and
//     the pipe is still open 200 ms later, some thread is wedged: the guard aborts the connection
//     (its minor was passed at start, and it cannot have been reused while the daemon still
//     holds the descriptor), logs it, and waits for the EOF.
#pragma once

#include <sys/types.h>

#include <string>

namespace qfs::fusefs {

struct MountGuard {
  int fd = -1;  // the pipe's write end (close-on-exec)
  pid_t pid = 0;
};
// Starts the guard for the connection `conn_minor` of the mount at `mountpoint`; fd is -1
// (logged) if it could not be started. Call it from the thread that lives as long as the
// process (main).
MountGuard StartMountGuard(unsigned conn_minor, const std::string& mountpoint);
// A clean unmount follows: the guard exits without acting. Closes the pipe and reaps it.
void DismissMountGuard(MountGuard* g);
// The guard process: quorumfsd --mount-guard PID START_TIME MINOR MOUNTPOINT (fd 3 is the pipe).
int RunMountGuard(int argc, char** argv);
// Writes 1 to /sys/fs/fuse/connections/MINOR/abort (mounting fusectl there if needed).
bool AbortFuseConnection(unsigned conn_minor);

}  // namespace qfs::fusefs
