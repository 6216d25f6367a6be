// The leader's session expiry tracker, with ZooKeeper's tick-rounded buckets (ExpiryQueue):
// a session's deadline is rounded up to the next tick boundary, so expiry is checked once per
// tick for a whole bucket instead of per session. Sessions are created and closed by txns
// elsewhere; this only says when one has gone quiet for too long. Internally locked.
#pragma once

#include <cstdint>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace qfs::service {

class SessionTracker {
 public:
  // `tick_ms` > 0 is the bucket width (ZooKeeper's tickTime). The id counter starts at
  // InitialSessionId(server_id, now_ms).
  SessionTracker(int64_t tick_ms, int64_t server_id, int64_t now_ms);

  // The deadline for activity at now_ms: the first tick boundary strictly after now + timeout
  // (ExpiryQueue.roundToNextInterval).
  int64_t RoundUp(int64_t t) const;

  // Starts tracking `id` (a session the leader learned was created or revalidated), or moves
  // its deadline if already tracked.
  void Track(int64_t id, int32_t timeout_ms, int64_t now_ms);
  // Moves the deadline of a tracked session to RoundUp(now + timeout). False, and nothing
  // tracked, for an unknown id: a late ping must not revive a session already expired or
  // closed (SessionTrackerImpl.touchSession).
  bool Touch(int64_t id, int32_t timeout_ms, int64_t now_ms);
  // Stops tracking (session closed). False if it was not tracked.
  bool Remove(int64_t id);
  bool Contains(int64_t id) const;
  std::optional<int64_t> Deadline(int64_t id) const;
  size_t size() const;

  // Removes and returns every session whose deadline is <= now_ms, earliest deadline first,
  // ascending id within a deadline. The caller submits their closeSession txns.
  std::vector<int64_t> PopExpired(int64_t now_ms);
  // The earliest deadline of any tracked session, or nullopt: when to call PopExpired next.
  std::optional<int64_t> NextDeadline() const;

  // A new session id: the counter, then incremented (SessionTrackerImpl.createSession).
  int64_t NextSessionId();

  // ZooKeeper's SessionTrackerImpl.initializeNextSessionId: the server id in the top byte, the
  // low 40 bits of now_ms in the next five bytes, zero in the low two, leaving 65536 ids per
  // restart. Pass wall-clock ms so ids do not repeat across restarts. server_id must be in
  // [0, 254] (255 would make ids look like TTL owners). Never returns 0 or the container owner.
  static int64_t InitialSessionId(int64_t server_id, int64_t now_ms);

  // The session password: the first 16 bytes of HMAC-SHA1(secret, big-endian session id).
  // Deterministic, so any member holding `secret` can check a reconnecting client. ZooKeeper
  // uses java.util.Random seeded by id ^ a constant; clients treat the bytes as opaque.
  static std::string Password(int64_t session_id, uint64_t secret);
  // Constant-time comparison with Password(); false for session 0 (ZooKeeper's checkPasswd).
  static bool CheckPassword(int64_t session_id, uint64_t secret, std::string_view password);

 private:
  void SetDeadlineLocked(int64_t id, int64_t deadline);

  const int64_t tick_ms_;
  mutable std::mutex mu_;
  std::unordered_map<int64_t, int64_t> deadline_;  // id -> bucket
  std::map<int64_t, std::set<int64_t>> buckets_;   // bucket -> ids
  int64_t next_id_;
};

}  // namespace qfs::service
