#include "daemon/server/watch_manager.h"

#include <algorithm>
#include <bit>
#include <cinttypes>
#include <cstdio>
#include <utility>

namespace qfs::server {

namespace {

constexpr uint8_t kBitData = 1;  // standard getData/exists watch
constexpr uint8_t kBitChild = 2;
constexpr uint8_t kBitPersistent = 4;
constexpr uint8_t kBitRecursive = 8;
constexpr uint8_t kAllBits = kBitData | kBitChild | kBitPersistent | kBitRecursive;

constexpr int32_t kNodeCreated = 1;
constexpr int32_t kNodeDeleted = 2;
constexpr int32_t kNodeDataChanged = 3;
constexpr int32_t kNodeChildrenChanged = 4;

uint8_t BitOf(WatchKind k) {
  switch (k) {
    case WatchKind::kData:
    case WatchKind::kExist:
      return kBitData;
    case WatchKind::kChild:
      return kBitChild;
    case WatchKind::kPersistent:
      return kBitPersistent;
    case WatchKind::kPersistentRecursive:
      return kBitRecursive;
  }
  return 0;
}

size_t Bits(uint8_t f) {
  return static_cast<size_t>(std::popcount(f));
}

// "/a/b" -> "/a" -> "/"; "/" has no parent.
bool ToParent(std::string* p) {
  if (*p == "/" || p->empty()) return false;
  size_t slash = p->rfind('/');
  p->resize(slash == 0 ? 1 : slash);
  return true;
}

std::string Hex(int64_t session) {
  char buf[24];
  std::snprintf(buf, sizeof(buf), "0x%" PRIx64, static_cast<uint64_t>(session));
  return buf;
}

}  // namespace

WatchManager::WatchManager(WatchLimits limits) : limits_(limits) {}

uint8_t WatchManager::FlagsLocked(WatcherId w, const std::string& path) const {
  auto p = by_path_.find(path);
  if (p == by_path_.end()) return 0;
  auto it = p->second.find(w);
  return it == p->second.end() ? 0 : it->second;
}

void WatchManager::SetFlagsLocked(WatcherId w, const std::string& path, uint8_t flags) {
  uint8_t old = FlagsLocked(w, path);
  if (old == flags) return;
  total_ = total_ - Bits(old) + Bits(flags);
  if (old & kBitRecursive) --recursive_;
  if (flags & kBitRecursive) ++recursive_;
  if (flags == 0) {
    auto p = by_path_.find(path);
    p->second.erase(w);
    if (p->second.empty()) by_path_.erase(p);
    auto pw = by_watcher_.find(w);
    pw->second.paths.erase(path);
    pw->second.count -= Bits(old);
    if (pw->second.paths.empty()) by_watcher_.erase(pw);
    return;
  }
  by_path_[path][w] = flags;
  PerWatcher& pw = by_watcher_[w];
  if (old == 0) pw.paths.insert(path);
  pw.count = pw.count - Bits(old) + Bits(flags);
}

bool WatchManager::TryAddLocked(WatcherId w, const std::string& path, uint8_t bits) {
  uint8_t old = FlagsLocked(w, path);
  size_t added = Bits(bits & ~old);
  if (added == 0) return true;
  if (total_ + added > limits_.max_total) return false;
  if (limits_.max_per_watcher != 0) {
    auto pw = by_watcher_.find(w);
    size_t mine = pw == by_watcher_.end() ? 0 : pw->second.count;
    if (mine + added > limits_.max_per_watcher) return false;
  }
  SetFlagsLocked(w, path, old | bits);
  return true;
}

bool WatchManager::Add(WatcherId w, const std::string& path, WatchKind k) {
  std::lock_guard<std::mutex> lock(mu_);
  return TryAddLocked(w, path, BitOf(k));
}

void WatchManager::Trigger(const tree::Change& c, int64_t zxid, std::vector<Delivery>* out,
                           const WatcherFilter& visible) {
  int32_t type;
  uint8_t match;    // bits on the path itself that receive the event
  uint8_t consume;  // of those, the one-shot ones
  bool ancestors;   // whether recursive watches above the path receive it
  switch (c.type) {
    case tree::Change::kCreated:
      type = kNodeCreated;
      match = kBitData | kBitPersistent | kBitRecursive;
      consume = kBitData;
      ancestors = true;
      break;
    case tree::Change::kDeleted:
      type = kNodeDeleted;
      match = kAllBits;
      consume = kBitData | kBitChild;
      ancestors = true;
      break;
    case tree::Change::kDataChanged:
      type = kNodeDataChanged;
      match = kBitData | kBitPersistent | kBitRecursive;
      consume = kBitData;
      ancestors = true;
      break;
    case tree::Change::kChildrenChanged:
      type = kNodeChildrenChanged;
      match = kBitChild | kBitPersistent;
      consume = kBitChild;
      ancestors = false;
      break;
    default:
      return;
  }

  std::vector<WatcherId> hits;
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto p = by_path_.find(c.path);
    if (p != by_path_.end()) {
      std::vector<std::pair<WatcherId, uint8_t>> updates;
      for (const auto& [w, flags] : p->second) {
        if ((flags & match) == 0) continue;
        hits.push_back(w);
        if (flags & consume) updates.emplace_back(w, flags & ~consume);
      }
      for (const auto& [w, flags] : updates) SetFlagsLocked(w, c.path, flags);
    }
    if (ancestors && recursive_ > 0) {
      std::string a = c.path;
      while (ToParent(&a)) {
        auto ap = by_path_.find(a);
        if (ap == by_path_.end()) continue;
        for (const auto& [w, flags] : ap->second) {
          if (flags & kBitRecursive) hits.push_back(w);
        }
      }
    }
  }
  std::sort(hits.begin(), hits.end());
  hits.erase(std::unique(hits.begin(), hits.end()), hits.end());
  for (WatcherId w : hits) {
    if (visible && !visible(w)) continue;
    out->push_back({w, WatchEvent{type, 3, c.path, zxid}});
  }
}

tree::Err WatchManager::Remove(WatcherId w, const std::string& path, int32_t watcher_type,
                               bool check_only) {
  uint8_t mask;
  switch (watcher_type) {
    case watcher_type::kChildren:
      mask = kBitChild;
      break;
    case watcher_type::kData:
      mask = kBitData;
      break;
    case watcher_type::kAny:
      mask = kAllBits;
      break;
    case watcher_type::kPersistent:
      mask = kBitPersistent;
      break;
    case watcher_type::kPersistentRecursive:
      mask = kBitRecursive;
      break;
    default:
      return tree::Err::kMarshallingError;
  }
  // checkWatches looks through ZooKeeper's tables: persistent watches sit in both the data and
  // the child table, recursive ones in the data table. removeWatches removes one kind only.
  if (check_only && watcher_type == watcher_type::kData) mask |= kBitPersistent | kBitRecursive;
  if (check_only && watcher_type == watcher_type::kChildren) mask |= kBitPersistent;
  std::lock_guard<std::mutex> lock(mu_);
  uint8_t flags = FlagsLocked(w, path);
  if ((flags & mask) == 0) return tree::Err::kNoWatcher;
  if (!check_only) SetFlagsLocked(w, path, flags & ~mask);
  return tree::Err::kOk;
}

void WatchManager::RemoveWatcher(WatcherId w) {
  std::lock_guard<std::mutex> lock(mu_);
  auto pw = by_watcher_.find(w);
  if (pw == by_watcher_.end()) return;
  std::vector<std::string> paths(pw->second.paths.begin(), pw->second.paths.end());
  for (const std::string& p : paths) SetFlagsLocked(w, p, 0);
}

tree::Err WatchManager::ReArm(WatcherId w, int64_t relative_zxid, const SetWatchLists& lists,
                              const StatLookup& lookup, std::vector<Delivery>* out) {
  struct Pending {
    const std::string* path;
    uint8_t bit;
    bool had = false;    // armed before this call
    bool added = false;  // armed by this call
    int32_t event = 0;
  };
  std::vector<Pending> pending;
  pending.reserve(lists.data.size() + lists.exist.size() + lists.child.size());
  for (const auto& p : lists.data) pending.push_back({&p, kBitData});
  for (const auto& p : lists.exist) pending.push_back({&p, kBitData});
  const size_t child_begin = pending.size();
  for (const auto& p : lists.child) pending.push_back({&p, kBitChild});
  const size_t exist_begin = lists.data.size();

  // Persistent watches refused now get another try once fired one-shots free their slots.
  std::vector<std::pair<const std::string*, uint8_t>> retry;
  {
    std::lock_guard<std::mutex> lock(mu_);
    for (Pending& pd : pending) {
      pd.had = (FlagsLocked(w, *pd.path) & pd.bit) != 0;
      if (!pd.had) pd.added = TryAddLocked(w, *pd.path, pd.bit);
    }
    for (const auto& p : lists.persistent) {
      if (!TryAddLocked(w, p, kBitPersistent)) retry.emplace_back(&p, kBitPersistent);
    }
    for (const auto& p : lists.persistent_recursive) {
      if (!TryAddLocked(w, p, kBitRecursive)) retry.emplace_back(&p, kBitRecursive);
    }
  }

  for (size_t i = 0; i < pending.size(); ++i) {
    Pending& pd = pending[i];
    std::optional<tree::Stat> st = lookup(*pd.path);
    if (i >= child_begin) {
      if (!st) {
        pd.event = kNodeDeleted;
      } else if (st->pzxid > relative_zxid) {
        pd.event = kNodeChildrenChanged;
      }
    } else if (i >= exist_begin) {
      if (st) pd.event = kNodeCreated;
    } else if (!st) {
      pd.event = kNodeDeleted;
    } else if (st->mzxid > relative_zxid) {
      pd.event = kNodeDataChanged;
    }
  }

  bool dropped = false;
  std::lock_guard<std::mutex> lock(mu_);
  for (const Pending& pd : pending) {
    if (pd.event == 0) {
      dropped |= !pd.had && !pd.added;
      continue;
    }
    if (pd.added) {
      uint8_t flags = FlagsLocked(w, *pd.path);
      // Cleared meanwhile: a Trigger already notified this watcher.
      if ((flags & pd.bit) == 0) continue;
      SetFlagsLocked(w, *pd.path, flags & ~pd.bit);
    }
    out->push_back({w, WatchEvent{pd.event, 3, *pd.path, -1}});
  }
  for (const auto& [path, bit] : retry) dropped |= !TryAddLocked(w, *path, bit);
  return dropped ? kWatchLimitErr : tree::Err::kOk;
}

bool WatchManager::Has(WatcherId w, const std::string& path, WatchKind k) const {
  std::lock_guard<std::mutex> lock(mu_);
  return (FlagsLocked(w, path) & BitOf(k)) != 0;
}

size_t WatchManager::size() const {
  std::lock_guard<std::mutex> lock(mu_);
  return total_;
}

size_t WatchManager::CountForPath(const std::string& path) const {
  std::lock_guard<std::mutex> lock(mu_);
  auto p = by_path_.find(path);
  if (p == by_path_.end()) return 0;
  size_t n = 0;
  for (const auto& [w, flags] : p->second) n += Bits(flags);
  return n;
}

size_t WatchManager::CountForWatcher(WatcherId w) const {
  std::lock_guard<std::mutex> lock(mu_);
  auto pw = by_watcher_.find(w);
  return pw == by_watcher_.end() ? 0 : pw->second.count;
}

std::string WatchManager::Summary() const {
  std::lock_guard<std::mutex> lock(mu_);
  size_t pairs = 0;
  for (const auto& [w, pw] : by_watcher_) pairs += pw.paths.size();
  return std::to_string(by_watcher_.size()) + " connections watching " +
         std::to_string(by_path_.size()) + " paths\nTotal watches:" + std::to_string(pairs);
}

std::string WatchManager::DumpByWatcher(const SessionOf& session_of) const {
  // Copy under the lock; session_of may take other locks.
  std::vector<std::pair<WatcherId, std::vector<std::string>>> rows;
  {
    std::lock_guard<std::mutex> lock(mu_);
    for (const auto& [w, pw] : by_watcher_) {
      rows.emplace_back(w, std::vector<std::string>(pw.paths.begin(), pw.paths.end()));
    }
  }
  std::vector<std::pair<int64_t, size_t>> order;
  for (size_t i = 0; i < rows.size(); ++i) order.emplace_back(session_of(rows[i].first), i);
  std::sort(order.begin(), order.end());
  std::string out;
  for (const auto& [session, i] : order) {
    out += Hex(session) + "\n";
    std::vector<std::string>& paths = rows[i].second;
    std::sort(paths.begin(), paths.end());
    for (const auto& p : paths) {
      out += '\t';
      out += p;
      out += '\n';
    }
  }
  return out;
}

std::string WatchManager::DumpByPath(const SessionOf& session_of) const {
  std::vector<std::pair<std::string, std::vector<WatcherId>>> rows;
  {
    std::lock_guard<std::mutex> lock(mu_);
    for (const auto& [path, watchers] : by_path_) {
      std::vector<WatcherId> ws;
      for (const auto& [w, flags] : watchers) ws.push_back(w);
      rows.emplace_back(path, std::move(ws));
    }
  }
  std::sort(rows.begin(), rows.end());
  std::string out;
  for (const auto& [path, ws] : rows) {
    out += path + "\n";
    std::vector<int64_t> sessions;
    for (WatcherId w : ws) sessions.push_back(session_of(w));
    std::sort(sessions.begin(), sessions.end());
    for (int64_t s : sessions) {
      out += '\t';
      out += Hex(s);
      out += '\n';
    }
  }
  return out;
}

}  // namespace qfs::server
