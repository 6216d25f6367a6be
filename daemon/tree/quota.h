// ZooKeeper's quotas (docs/quotas.md): the /zookeeper/quota subtree, the text format of its
// zookeeper_limits and zookeeper_stats nodes (ZooKeeper's StatsTrack), and the hard-limit rule.
#pragma once

#include <array>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

#include "daemon/tree/types.h"

namespace qfs::tree {

inline constexpr std::string_view kQuotaTree = "/zookeeper/quota";
inline constexpr std::string_view kLimitNode = "zookeeper_limits";
inline constexpr std::string_view kStatNode = "zookeeper_stats";

// "/zookeeper/quota" + path + "/zookeeper_limits" (and "_stats"), as ZooKeeper's Quotas.
std::string LimitPath(std::string_view path);
std::string StatPath(std::string_view path);
// For a node directly under /zookeeper/quota/...: the quota'd path its name refers to when it is
// a limit or stat node ("/zookeeper/quota/a/b" -> "/a/b"), nullopt if `parent` is not in the
// quota tree.
std::optional<std::string> QuotaPathOf(std::string_view parent);

// Key/value text "count=4,bytes=5=;byteHardLimit=-1;countHardLimit=10": count and bytes first,
// then, when other keys are present, "=" and ";key=value" in key order. Missing keys read as -1.
class StatsTrack {
 public:
  static constexpr std::string_view kCount = "count";
  static constexpr std::string_view kBytes = "bytes";
  static constexpr std::string_view kCountHard = "countHardLimit";
  static constexpr std::string_view kBytesHard = "byteHardLimit";

  // Accepts what ZooKeeper's parser accepts (pairs split on runs of ',' and ';', an empty value
  // reads as -1); nullopt for what makes it throw.
  static std::optional<StatsTrack> Parse(std::string_view text);
  std::string ToString() const;

  int64_t Get(std::string_view key) const;
  void Set(std::string_view key, int64_t value);
  int64_t count() const { return Get(kCount); }
  int64_t bytes() const { return Get(kBytes); }

 private:
  std::map<std::string, int64_t, std::less<>> values_;
};

// A change of the node count and data bytes under one quota'd path.
struct QuotaDelta {
  int64_t count = 0;
  int64_t bytes = 0;
};

// ZooKeeper's hard-limit rule (ZooKeeperServer.checkQuota): a write changing the usage by `d`
// is refused with kQuotaExceeded when a changed dimension would end above its hard limit. When
// a hard limit is set it alone counts; a soft limit never refuses.
Err CheckQuotaLimits(const StatsTrack& limits, const StatsTrack& usage, QuotaDelta d);

class DataTree;
// The hard-limit check of a write changing the usage under the quota'd path `qpath` by `d`, with
// `pending` the usage txns not yet applied add: reads the limit and stat nodes of `qpath` from
// the tree. kOk when quotas are not enforced (TreeOptions::enforce_quota) or a node is missing
// or unreadable (ZooKeeper logs those and lets the write through).
Err CheckQuota(const DataTree& t, const std::string& qpath, QuotaDelta d, QuotaDelta pending = {});

// One soft limit crossed upwards by an apply: usage went from <= limit to > limit.
struct QuotaCrossing {
  std::string path;    // the quota'd path
  bool bytes = false;  // the bytes limit, else the count limit
  int64_t usage = 0;
  int64_t limit = 0;
};

// ZooKeeper's quota gauges (QuotaMetricsUtils), summed over the quota'd paths of each top-level
// namespace ("a" for "/a/b"): the count and bytes limits (the hard one if set, else the soft
// one; -1 for none) and the count and bytes usage. Paths without a namespace ("/") are left out.
struct NamespaceQuota {
  int64_t count_limit = 0, bytes_limit = 0, count_usage = 0, bytes_usage = 0;
  // ZooKeeper's gauge names ("quota_count_limit_per_namespace", ...) with their values.
  std::array<std::pair<const char*, int64_t>, 4> Gauges() const {
    return {{{"quota_count_limit_per_namespace", count_limit},
             {"quota_bytes_limit_per_namespace", bytes_limit},
             {"quota_count_usage_per_namespace", count_usage},
             {"quota_bytes_usage_per_namespace", bytes_usage}}};
  }
};
std::map<std::string, NamespaceQuota> QuotaByNamespace(const DataTree& t);

}  // namespace qfs::tree
