#include "daemon/tree/quota.h"

#include <charconv>
#include <vector>

#include "daemon/tree/data_tree.h"

namespace qfs::tree {
namespace {

// Java's String.split: the pieces between separators, trailing empty pieces dropped.
std::vector<std::string_view> Split(std::string_view s, char sep) {
  std::vector<std::string_view> out;
  size_t start = 0;
  for (size_t i = 0; i <= s.size(); ++i) {
    if (i < s.size() && s[i] != sep) continue;
    out.push_back(s.substr(start, i - start));
    start = i + 1;
  }
  while (!out.empty() && out.back().empty()) out.pop_back();
  return out;
}

// Java's Long.parseLong on ASCII: an optional sign, then digits, in range.
std::optional<int64_t> ParseLong(std::string_view s) {
  if (!s.empty() && s[0] == '+') {
    s.remove_prefix(1);
    if (!s.empty() && (s[0] == '-' || s[0] == '+')) return std::nullopt;
  }
  if (s.empty()) return std::nullopt;
  int64_t v = 0;
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || end != s.data() + s.size()) return std::nullopt;
  return v;
}

}  // namespace

std::string LimitPath(std::string_view path) {
  std::string p(kQuotaTree);
  p.append(path).append("/").append(kLimitNode);
  return p;
}

std::string StatPath(std::string_view path) {
  std::string p(kQuotaTree);
  p.append(path).append("/").append(kStatNode);
  return p;
}

std::optional<std::string> QuotaPathOf(std::string_view parent) {
  if (parent == kQuotaTree) return std::string();
  if (parent.size() > kQuotaTree.size() && parent.starts_with(kQuotaTree) &&
      parent[kQuotaTree.size()] == '/') {
    return std::string(parent.substr(kQuotaTree.size()));
  }
  return std::nullopt;
}

std::optional<StatsTrack> StatsTrack::Parse(std::string_view text) {
  StatsTrack t;
  auto pair_sep = [](char c) { return c == ',' || c == ';'; };
  // Pairs are split on the pattern "[,;]+": a run of separators splits once.
  std::vector<std::string_view> pairs;
  {
    size_t start = 0, i = 0;
    while (i <= text.size()) {
      if (i == text.size() || pair_sep(text[i])) {
        pairs.push_back(text.substr(start, i - start));
        while (i < text.size() && pair_sep(text[i])) ++i;
        start = i;
        if (i == text.size()) {
          pairs.push_back({});
          break;
        }
      } else {
        ++i;
      }
    }
    while (!pairs.empty() && pairs.back().empty()) pairs.pop_back();
  }
  for (std::string_view kv : pairs) {
    std::vector<std::string_view> parts = Split(kv, '=');
    if (parts.size() < 2) return std::nullopt;  // ZooKeeper: index out of bounds
    int64_t v = -1;
    if (!parts[1].empty()) {
      std::optional<int64_t> n = ParseLong(parts[1]);
      if (!n) return std::nullopt;  // NumberFormatException
      v = *n;
    }
    t.values_[std::string(parts[0])] = v;
  }
  return t;
}

std::string StatsTrack::ToString() const {
  std::string s = "count=" + std::to_string(count()) + ",bytes=" + std::to_string(bytes());
  bool first = true;
  for (const auto& [k, v] : values_) {
    if (k == kCount || k == kBytes) continue;
    if (first) s += "=";  // keeps ZooKeeper 3.4's parser reading only count and bytes
    first = false;
    s += ";" + k + "=" + std::to_string(v);
  }
  return s;
}

int64_t StatsTrack::Get(std::string_view key) const {
  auto it = values_.find(key);
  return it == values_.end() ? -1 : it->second;
}

void StatsTrack::Set(std::string_view key, int64_t value) {
  values_[std::string(key)] = value;
}

Err CheckQuotaLimits(const StatsTrack& limits, const StatsTrack& usage, QuotaDelta d) {
  struct Dim {
    int64_t diff, soft, hard, used;
  };
  for (Dim x : {Dim{d.count, limits.count(), limits.Get(StatsTrack::kCountHard), usage.count()},
                Dim{d.bytes, limits.bytes(), limits.Get(StatsTrack::kBytesHard), usage.bytes()}}) {
    if (x.diff == 0 || x.hard < 0) continue;  // unchanged, or no hard limit (soft: never refused)
    if (x.used + x.diff > x.hard) return Err::kQuotaExceeded;
  }
  return Err::kOk;
}

Err CheckQuota(const DataTree& t, const std::string& qpath, QuotaDelta d, QuotaDelta pending) {
  if (!t.options().enforce_quota) return Err::kOk;
  std::string text;
  if (t.GetData(LimitPath(qpath), &text, nullptr) != Err::kOk) return Err::kOk;
  std::optional<StatsTrack> limits = StatsTrack::Parse(text);
  if (t.GetData(StatPath(qpath), &text, nullptr) != Err::kOk) return Err::kOk;
  std::optional<StatsTrack> usage = StatsTrack::Parse(text);
  if (!limits || !usage) return Err::kOk;
  usage->Set(StatsTrack::kCount, usage->count() + pending.count);
  usage->Set(StatsTrack::kBytes, usage->bytes() + pending.bytes);
  return CheckQuotaLimits(*limits, *usage, d);
}

std::map<std::string, NamespaceQuota> QuotaByNamespace(const DataTree& t) {
  std::map<std::string, NamespaceQuota> out;
  for (const std::string& q : t.QuotaPaths()) {
    if (q.size() < 2) continue;
    NamespaceQuota v;
    bool any = false;
    std::string text;
    if (t.GetData(LimitPath(q), &text, nullptr) == Err::kOk) {
      if (auto l = StatsTrack::Parse(text)) {
        const int64_t ch = l->Get(StatsTrack::kCountHard);
        const int64_t bh = l->Get(StatsTrack::kBytesHard);
        v.count_limit = ch > -1 ? ch : l->count();
        v.bytes_limit = bh > -1 ? bh : l->bytes();
        any = true;
      }
    }
    if (t.GetData(StatPath(q), &text, nullptr) == Err::kOk) {
      if (auto u = StatsTrack::Parse(text)) {
        v.count_usage = u->count();
        v.bytes_usage = u->bytes();
        any = true;
      }
    }
    if (!any) continue;
    NamespaceQuota& sum = out[q.substr(1, q.find('/', 1) - 1)];
    sum.count_limit += v.count_limit;
    sum.bytes_limit += v.bytes_limit;
    sum.count_usage += v.count_usage;
    sum.bytes_usage += v.bytes_usage;
  }
  return out;
}

}  // namespace qfs::tree
