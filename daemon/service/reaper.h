// The container and TTL reaper (ZooKeeper's ContainerManager): every
// znode.container.checkIntervalMs the leader lists the containers that have had children and
// have none, and the TTL nodes whose ttl has run out since their last change, and proposes a
// deleteContainer for each. Prepare checks again that the node is still expired and empty
// (docs/ensemble.md), so a node changed meanwhile stays. Only a serving leader reaps: the txn
// is the same whoever proposes it, and one proposer is enough.
//
// Threading: a thread of its own; Start() after the pipeline, Stop() before it stops.
#pragma once

#include <condition_variable>
#include <mutex>
#include <thread>

#include "daemon/config.h"
#include "daemon/replica/pipeline.h"

namespace qfs::service {

class Reaper {
 public:
  Reaper(const Config& config, Pipeline* pipeline);
  ~Reaper();  // Stop()
  void Start();
  void Stop();
  // One round now (tests); returns how many deletes it proposed.
  size_t ReapOnce();

 private:
  void Run();

  const int interval_ms_;
  Pipeline* const pipeline_;
  std::mutex mu_;
  std::condition_variable wake_;
  bool stopping_ = false;
  std::thread thread_;
};

}  // namespace qfs::service
