// The client port: ZooKeeper's wire protocol (and its four-letter words) on Asio, served by the
// member's loop (Pipeline::loop()), the thread that also runs the ZAB core and the peer links.
// Writes go through the pipeline; reads are answered from the local tree in the order the session
// sent them; watch events are queued while the tree lock of the apply that caused them is held, so
// no later reply can overtake them. Only translation lives here: the session rules (timeouts,
// passwords, expiry) are the service's (daemon/service/sessions.h).
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
  // Binds and starts serving on the member's loop; after sessions->Start().
  // Returns the bound port (useful with clientPort=0).
  Result<int> Start();
  // Closes the listener and every connection; call while the pipeline still runs.
  void Stop();

  struct Impl;

 private:
  std::shared_ptr<Impl> impl_;
};

}  // namespace qfs
