// Watches of client connections, delivered with ZooKeeper's rules (server/DataTree.java and
// server/watch/WatchManager.java). Internally locked: Trigger runs on the apply thread while
// I/O threads add and remove watches.
//
// ZooKeeper keeps two tables, data (getData/exists watches, persistent, persistent-recursive)
// and child (getChildren watches, persistent). Here each (watcher, path) holds bits for the
// same four things: a standard data watch (getData and exists are indistinguishable on the
// server), a standard child watch, persistent (in both of ZooKeeper's tables) and recursive.
// size() and the limit count those bits.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "daemon/tree/types.h"

namespace qfs::server {

// One client connection; the caller maps it to its session for dumps.
using WatcherId = uint64_t;

enum class WatchKind : uint8_t {
  kData,                 // getData(watch)
  kExist,                // exists(watch), on an existing node or not
  kChild,                // getChildren(watch)
  kPersistent,           // addWatch mode 0
  kPersistentRecursive,  // addWatch mode 1
};

// Watcher.WatcherType, as in checkWatches (17) and removeWatches (18).
namespace watcher_type {
inline constexpr int32_t kChildren = 1;
inline constexpr int32_t kData = 2;
inline constexpr int32_t kAny = 3;
inline constexpr int32_t kPersistent = 4;
inline constexpr int32_t kPersistentRecursive = 5;
}  // namespace watcher_type

// A WatcherEvent notification. zxid is the changing txn's (the notification's ReplyHeader zxid
// since ZooKeeper 3.9), -1 for events that are not a txn's (setWatches), as WatchedEvent.NO_ZXID.
struct WatchEvent {
  int32_t type = 0;   // Watcher.Event.EventType: 1 created, 2 deleted, 3 data, 4 children
  int32_t state = 3;  // Watcher.Event.KeeperState.SyncConnected
  std::string path;
  int64_t zxid = -1;
  bool operator==(const WatchEvent&) const = default;
};

struct Delivery {
  WatcherId watcher = 0;
  WatchEvent event;
  bool operator==(const Delivery&) const = default;
};

// Bounds on armed watches (ZooKeeper has none). Counts are WatchManager::size() units.
struct WatchLimits {
  size_t max_total = 10'000'000;  // ~1 GB of small-path watches
  size_t max_per_watcher = 0;     // 0 = no per-connection bound
};

// What the server answers a request whose watch Add() refused: the request fails, since a
// silently missing watch would break the client (ZooKeeper clients register a watch only on
// success, so nothing dangles client-side). QuotaExceeded says a configured limit was hit and
// an immediate retry will not help; ThrottledOp would suggest a transient overload.
inline constexpr tree::Err kWatchLimitErr = tree::Err::kQuotaExceeded;

// A SetWatches / SetWatches2 request (opcodes 101/105).
struct SetWatchLists {
  std::vector<std::string> data;
  std::vector<std::string> exist;
  std::vector<std::string> child;
  std::vector<std::string> persistent;
  std::vector<std::string> persistent_recursive;
};

// A node's Stat, or nullopt if it does not exist.
using StatLookup = std::function<std::optional<tree::Stat>(const std::string& path)>;
// Whether a notification may reach a watcher; see Trigger.
using WatcherFilter = std::function<bool(WatcherId)>;
// The session id of a connection, for the dumps.
using SessionOf = std::function<int64_t(WatcherId)>;

class WatchManager {
 public:
  explicit WatchManager(WatchLimits limits = {});
  WatchManager(const WatchManager&) = delete;
  WatchManager& operator=(const WatchManager&) = delete;

  // Arms a watch. Re-arming an armed one is a no-op that succeeds. False, and nothing armed,
  // when the limits would be exceeded (answer kWatchLimitErr).
  // For getData/exists/getChildren, Add before reading the node (as DataTree.statNode) so a
  // change applied in between fires it rather than being missed.
  bool Add(WatcherId w, const std::string& path, WatchKind k);

  // Appends the notifications for one applied change, at most one per watcher, ordered by
  // watcher id. Standard watches that match are consumed; persistent ones stay.
  //   kCreated P:         NodeCreated to data/exist and persistent watches on P.
  //   kDeleted P:         NodeDeleted to data/exist, child and persistent watches on P.
  //   kDataChanged P:     NodeDataChanged to data/exist and persistent watches on P.
  //   kChildrenChanged P: NodeChildrenChanged to child and persistent watches on P.
  //   kAclChanged:        nothing.
  // The first three also reach recursive watches on P and on every ancestor of P; children
  // changes never do (ZooKeeper keeps recursive watches only in its data table).
  // `visible`, when given, drops the notification (the watch is still consumed) for watchers
  // that may not read the node: ZooKeeper since ZOOKEEPER-4799 (CVE-2024-23944) checks READ on
  // the node's ACL (the parent's for children changes) at delivery. Called without the lock.
  void Trigger(const tree::Change& c, int64_t zxid, std::vector<Delivery>* out,
               const WatcherFilter& visible = nullptr);

  // checkWatches (check_only) / removeWatches for `watcher_type`:
  //   Children -> the standard child watch; Data -> the standard data/exist watch;
  //   Persistent; PersistentRecursive; Any -> every watch of w on path.
  // kOk if one exists (and, unless check_only, was removed); kNoWatcher if none; an unknown
  // type is kMarshallingError (ZooKeeper's WatcherType.fromInt throws, which FinalRequest-
  // Processor answers with MARSHALLINGERROR).
  // The server sends no DataWatchRemoved/ChildWatchRemoved/PersistentWatchRemoved events: the
  // client library raises those itself on a successful reply (ZKWatchManager.removeWatcher);
  // FinalRequestProcessor only answers the request.
  tree::Err Remove(WatcherId w, const std::string& path, int32_t watcher_type, bool check_only);

  // Drops every watch of a closed connection.
  void RemoveWatcher(WatcherId w);

  // setWatches after a reconnect, as DataTree.setWatches, against the client's last zxid:
  //   data:  node gone -> NodeDeleted; mzxid > relative_zxid -> NodeDataChanged; else armed.
  //   exist: node exists -> NodeCreated; else armed.
  //   child: node gone -> NodeDeleted; pzxid > relative_zxid -> NodeChildrenChanged; else armed.
  //   persistent, persistent_recursive: armed, no event.
  // Events have zxid -1 and are appended in that list order. A one-shot watch is armed before
  // its node is looked up, so a change applied meanwhile is not missed; if such a change fired
  // it, the client already has its one notification and none is added here. `lookup` runs
  // without the lock. kWatchLimitErr if some watch that needed arming was dropped by the
  // limits (the rest are armed); ZooKeeper clients ignore setWatches errors, so log it.
  tree::Err ReArm(WatcherId w, int64_t relative_zxid, const SetWatchLists& lists,
                  const StatLookup& lookup, std::vector<Delivery>* out);

  // Whether w has that watch on path (kData and kExist are the same watch).
  bool Has(WatcherId w, const std::string& path, WatchKind k) const;
  size_t size() const;                                 // armed watches, all kinds
  size_t CountForPath(const std::string& path) const;  // armed watches on path
  size_t CountForWatcher(WatcherId w) const;           // armed watches of w

  // wchs: "N connections watching M paths\nTotal watches:K", K counting (connection, path)
  // pairs as ZooKeeper does. Unlike ZooKeeper, whose dumps cover only its data table, the dumps
  // include child watches.
  std::string Summary() const;
  // wchc: per connection "0x<session hex>\n" then "\t<path>\n" per watched path.
  std::string DumpByWatcher(const SessionOf& session_of) const;
  // wchp: per path "<path>\n" then "\t0x<session hex>\n" per watching connection.
  std::string DumpByPath(const SessionOf& session_of) const;

 private:
  struct PerWatcher {
    std::unordered_set<std::string> paths;
    size_t count = 0;  // armed bits over all paths
  };

  uint8_t FlagsLocked(WatcherId w, const std::string& path) const;
  void SetFlagsLocked(WatcherId w, const std::string& path, uint8_t flags);
  bool TryAddLocked(WatcherId w, const std::string& path, uint8_t bits);

  const WatchLimits limits_;
  mutable std::mutex mu_;
  std::unordered_map<std::string, std::unordered_map<WatcherId, uint8_t>> by_path_;
  std::unordered_map<WatcherId, PerWatcher> by_watcher_;
  size_t total_ = 0;
  size_t recursive_ = 0;  // recursive watches armed; 0 skips the ancestor walk
};

}  // namespace qfs::server
