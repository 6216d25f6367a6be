// The client port: ZooKeeper's wire protocol (and its four-letter words) on Asio, served by a
// small thread pool. Writes go through the pipeline; reads are answered from the local tree in
// the order the session sent them; watch events are queued while the tree lock of the apply
// that caused them is held, so no later reply can overtake them.
#pragma once

#include <memory>

#include "consensus/util/result.h"
#include "daemon/config.h"
#include "daemon/replica/pipeline.h"

namespace qfs {

class ClientPort {
 public:
  ClientPort(const Config& config, Pipeline* pipeline);
  ~ClientPort();
  // Binds, re-arms the sessions found in the tree, and starts `threads` I/O threads.
  // Returns the bound port (useful with clientPort=0).
  Result<int> Start(int threads);
  void Stop();

  // Sessions of in-process clients (the FUSE mount). Created and closed by txns like a network
  // client's, and kept alive (touched every tick) while this daemon runs; so their ephemerals
  // go when the daemon dies or is cut off for longer than the timeout. Blocking; call after
  // Start() and never from an apply listener.
  Result<int64_t> OpenLocalSession(int32_t timeout_ms);
  Status CloseLocalSession(int64_t session_id);

  struct Impl;

 private:
  std::unique_ptr<Impl> impl_;
};

}  // namespace qfs
