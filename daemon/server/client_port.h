// The client port: ZooKeeper's wire protocol (and its four-letter words) on Asio, served by a
// small thread pool. Writes go through the pipeline; reads are answered from the local tree in
// the order the session sent them; watch events are queued while the tree lock of the apply
// that caused them is held, so no later reply can overtake them. Only translation lives here:
// the session rules (timeouts, passwords, expiry) are the service's (daemon/service/sessions.h).
#pragma once

#include <memory>

#include "consensus/util/result.h"
#include "daemon/config.h"
#include "daemon/replica/pipeline.h"
#include "daemon/service/sessions.h"

namespace qfs {

class ClientPort {
 public:
  // Becomes `sessions`' holder: construct before sessions->Start(). Both must outlive the
  // pipeline's replies.
  ClientPort(const Config& config, Pipeline* pipeline, service::Sessions* sessions);
  ~ClientPort();
  // Binds and starts `threads` I/O threads; after sessions->Start().
  // Returns the bound port (useful with clientPort=0).
  Result<int> Start(int threads);
  void Stop();

  struct Impl;

 private:
  std::unique_ptr<Impl> impl_;
};

}  // namespace qfs
