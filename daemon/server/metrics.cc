#include "daemon/server/metrics.h"

#include <cstdio>
#include <sstream>

#include "daemon/server/protocol.h"

namespace qfs::server {

const char* OpName(int32_t op) {
  switch (op) {
    case zk::op::kCreate:
      return "create";
    case zk::op::kDelete:
      return "delete";
    case zk::op::kExists:
      return "exists";
    case zk::op::kGetData:
      return "getData";
    case zk::op::kSetData:
      return "setData";
    case zk::op::kGetAcl:
      return "getACL";
    case zk::op::kSetAcl:
      return "setACL";
    case zk::op::kGetChildren:
      return "getChildren";
    case zk::op::kSync:
      return "sync";
    case zk::op::kGetChildren2:
      return "getChildren2";
    case zk::op::kCheck:
      return "check";
    case zk::op::kMulti:
      return "multi";
    case zk::op::kCreate2:
      return "create2";
    case zk::op::kReconfig:
      return "reconfig";
    case zk::op::kCheckWatches:
      return "checkWatches";
    case zk::op::kRemoveWatches:
      return "removeWatches";
    case zk::op::kCreateContainer:
      return "createContainer";
    case zk::op::kCreateTtl:
      return "createTTL";
    case zk::op::kMultiRead:
      return "multiRead";
    case zk::op::kSetWatches:
      return "setWatches";
    case zk::op::kGetEphemerals:
      return "getEphemerals";
    case zk::op::kGetAllChildrenNumber:
      return "getAllChildrenNumber";
    case zk::op::kSetWatches2:
      return "setWatches2";
    case zk::op::kAddWatch:
      return "addWatch";
    case zk::op::kWhoAmI:
      return "whoAmI";
    case zk::op::kCreateSession:
      return "createSession";
    case zk::op::kCloseSession:
      return "closeSession";
    default:
      return nullptr;
  }
}

int Metrics::Slot(int32_t op) {
  if (op == zk::op::kCreateSession) return 120;
  if (op == zk::op::kCloseSession) return 121;
  if (op >= 0 && op < 110) return op;
  return 127;
}

void Metrics::Observe(int32_t opcode, double seconds, bool error) {
  PerOp& p = ops_[static_cast<size_t>(Slot(opcode))];
  p.count.fetch_add(1, std::memory_order_relaxed);
  if (error) p.errors.fetch_add(1, std::memory_order_relaxed);
  const auto ns = static_cast<uint64_t>(seconds * 1e9);
  p.sum_ns.fetch_add(ns, std::memory_order_relaxed);
  // ZooKeeper measures each request in whole milliseconds; min, avg and max agree that way.
  const uint64_t ms = ns / 1000000;
  all_count_.fetch_add(1, std::memory_order_relaxed);
  all_sum_ms_.fetch_add(ms, std::memory_order_relaxed);
  for (uint64_t m = all_min_ms_.load(std::memory_order_relaxed);
       ms < m && !all_min_ms_.compare_exchange_weak(m, ms, std::memory_order_relaxed);) {
  }
  for (uint64_t m = all_max_ms_.load(std::memory_order_relaxed);
       ms > m && !all_max_ms_.compare_exchange_weak(m, ms, std::memory_order_relaxed);) {
  }
  for (size_t i = 0; i < kBuckets.size(); i++) {
    if (seconds <= kBuckets[i]) {
      p.buckets[i].fetch_add(1, std::memory_order_relaxed);
      break;
    }
  }
}

Metrics::LatencySummary Metrics::Latency() const {
  LatencySummary l;
  l.count = all_count_.load(std::memory_order_relaxed);
  if (l.count == 0) return l;
  l.min_ms = all_min_ms_.load(std::memory_order_relaxed);
  l.max_ms = all_max_ms_.load(std::memory_order_relaxed);
  l.avg_ms = static_cast<double>(all_sum_ms_.load(std::memory_order_relaxed)) /
             static_cast<double>(l.count);
  return l;
}

std::string Metrics::Render(const std::vector<Gauge>& gauges) const {
  std::ostringstream o;
  o << "# HELP quorumfs_requests_total Requests answered, by opcode.\n"
       "# TYPE quorumfs_requests_total counter\n";
  std::vector<std::pair<int32_t, const PerOp*>> used;
  for (int32_t op : {1,  2,  3,  4,  5,  6,   7,   8,   9,   12,  13,  14,  15, 16,
                     17, 18, 19, 21, 22, 101, 103, 104, 105, 106, 107, -10, -11}) {
    const PerOp& p = ops_[static_cast<size_t>(Slot(op))];
    if (p.count.load() == 0) continue;
    used.emplace_back(op, &p);
    o << "quorumfs_requests_total{op=\"" << OpName(op) << "\"} " << p.count.load() << "\n";
  }
  o << "# HELP quorumfs_request_errors_total Requests answered with an error code.\n"
       "# TYPE quorumfs_request_errors_total counter\n";
  for (auto& [op, p] : used)
    o << "quorumfs_request_errors_total{op=\"" << OpName(op) << "\"} " << p->errors.load() << "\n";
  o << "# HELP quorumfs_request_seconds Time from a request's arrival to its reply.\n"
       "# TYPE quorumfs_request_seconds histogram\n";
  for (auto& [op, p] : used) {
    uint64_t cum = 0;
    for (size_t i = 0; i < kBuckets.size(); i++) {
      cum += p->buckets[i].load();
      o << "quorumfs_request_seconds_bucket{op=\"" << OpName(op) << "\",le=\"" << kBuckets[i]
        << "\"} " << cum << "\n";
    }
    o << "quorumfs_request_seconds_bucket{op=\"" << OpName(op) << "\",le=\"+Inf\"} "
      << p->count.load() << "\n";
    o << "quorumfs_request_seconds_sum{op=\"" << OpName(op) << "\"} "
      << static_cast<double>(p->sum_ns.load()) / 1e9 << "\n";
    o << "quorumfs_request_seconds_count{op=\"" << OpName(op) << "\"} " << p->count.load() << "\n";
  }
  const std::string* last = nullptr;
  for (const auto& g : gauges) {
    if (!last || *last != g.name)
      o << "# HELP " << g.name << " " << g.help << "\n# TYPE " << g.name << " gauge\n";
    last = &g.name;
    o << g.name;
    if (!g.labels.empty()) o << "{" << g.labels << "}";
    o << " " << g.value << "\n";
  }
  return o.str();
}

}  // namespace qfs::server
