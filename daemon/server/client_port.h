// The client port: an Asio acceptor served by a small thread pool. For now it answers
// ZooKeeper's four-letter words; the ZooKeeper wire protocol is added on the same port.
#pragma once

#include <memory>
#include <thread>
#include <vector>

#include "consensus/util/result.h"
#include "daemon/config.h"
#include "daemon/replica/pipeline.h"

namespace qfs {

class ClientPort {
 public:
  ClientPort(const Config& config, Pipeline* pipeline);
  ~ClientPort();
  // Binds and starts `threads` I/O threads. Returns the bound port (useful with clientPort=0).
  Result<int> Start(int threads);
  void Stop();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace qfs
