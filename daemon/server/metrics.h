// Request counters and latency histograms per ZooKeeper opcode, rendered in Prometheus' text
// format together with gauges the caller supplies. Lock-free on the request path.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace qfs::server {

class Metrics {
 public:
  // Latency of one answered request, from its arrival to its reply being queued.
  void Observe(int32_t opcode, double seconds, bool error);
  // `gauges`: (name, help, value) lines appended as Prometheus gauges. Gauges of one name with
  // labels (`namespace="a"`) come one after another; HELP and TYPE are printed for the first.
  struct Gauge {
    std::string name, help;
    double value;
    std::string labels = {};
  };
  std::string Render(const std::vector<Gauge>& gauges) const;
  // Every request so far (pings too), for srvr's and mntr's latency: ZooKeeper reports whole
  // milliseconds for min and max and their mean for avg.
  struct LatencySummary {
    uint64_t count = 0;
    uint64_t min_ms = 0, max_ms = 0;
    double avg_ms = 0;
  };
  LatencySummary Latency() const;

  static constexpr std::array<double, 12> kBuckets = {0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005,
                                                      0.01,   0.025,   0.05,   0.1,   0.5,    1.0};

 private:
  struct PerOp {
    std::atomic<uint64_t> count{0}, errors{0}, sum_ns{0};
    std::array<std::atomic<uint64_t>, kBuckets.size()> buckets{};
  };
  static constexpr int kSlots = 128;  // opcodes 0..107 and the session ops, folded below
  static int Slot(int32_t opcode);
  std::array<PerOp, kSlots> ops_;
  std::atomic<uint64_t> all_count_{0}, all_sum_ms_{0}, all_max_ms_{0};
  std::atomic<uint64_t> all_min_ms_{UINT64_MAX};
};

const char* OpName(int32_t opcode);

}  // namespace qfs::server
