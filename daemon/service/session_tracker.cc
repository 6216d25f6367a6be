#include "daemon/service/session_tracker.h"

#include "consensus/util/sha256.h"
#include "daemon/server/auth.h"
#include "daemon/tree/types.h"

namespace qfs::service {

namespace {

// 0 means "no owner" in ephemeralOwner and the container marker is not a session.
bool UsableId(int64_t id) {
  return id != 0 && id != tree::kContainerOwner;
}

std::string BigEndian(uint64_t v) {
  std::string s(8, '\0');
  for (int i = 0; i < 8; ++i) s[i] = static_cast<char>(v >> (56 - 8 * i));
  return s;
}

}  // namespace

SessionTracker::SessionTracker(int64_t tick_ms, int64_t server_id, int64_t now_ms)
    : tick_ms_(tick_ms > 0 ? tick_ms : 1), next_id_(InitialSessionId(server_id, now_ms)) {}

int64_t SessionTracker::RoundUp(int64_t t) const {
  // Floor division so times before the epoch still land on the next boundary.
  int64_t q = t / tick_ms_;
  if (t % tick_ms_ != 0 && t < 0) --q;
  return (q + 1) * tick_ms_;
}

void SessionTracker::SetDeadlineLocked(int64_t id, int64_t deadline) {
  auto it = deadline_.find(id);
  if (it != deadline_.end()) {
    if (it->second == deadline) return;
    auto b = buckets_.find(it->second);
    b->second.erase(id);
    if (b->second.empty()) buckets_.erase(b);
    it->second = deadline;
  } else {
    deadline_.emplace(id, deadline);
  }
  buckets_[deadline].insert(id);
}

void SessionTracker::Track(int64_t id, int32_t timeout_ms, int64_t now_ms) {
  std::lock_guard<std::mutex> lock(mu_);
  SetDeadlineLocked(id, RoundUp(now_ms + timeout_ms));
}

bool SessionTracker::Touch(int64_t id, int32_t timeout_ms, int64_t now_ms) {
  std::lock_guard<std::mutex> lock(mu_);
  if (deadline_.find(id) == deadline_.end()) return false;
  SetDeadlineLocked(id, RoundUp(now_ms + timeout_ms));
  return true;
}

bool SessionTracker::Remove(int64_t id) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = deadline_.find(id);
  if (it == deadline_.end()) return false;
  auto b = buckets_.find(it->second);
  b->second.erase(id);
  if (b->second.empty()) buckets_.erase(b);
  deadline_.erase(it);
  return true;
}

bool SessionTracker::Contains(int64_t id) const {
  std::lock_guard<std::mutex> lock(mu_);
  return deadline_.count(id) != 0;
}

std::optional<int64_t> SessionTracker::Deadline(int64_t id) const {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = deadline_.find(id);
  if (it == deadline_.end()) return std::nullopt;
  return it->second;
}

size_t SessionTracker::size() const {
  std::lock_guard<std::mutex> lock(mu_);
  return deadline_.size();
}

std::vector<int64_t> SessionTracker::PopExpired(int64_t now_ms) {
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<int64_t> out;
  while (!buckets_.empty() && buckets_.begin()->first <= now_ms) {
    for (int64_t id : buckets_.begin()->second) {
      out.push_back(id);
      deadline_.erase(id);
    }
    buckets_.erase(buckets_.begin());
  }
  return out;
}

std::optional<int64_t> SessionTracker::NextDeadline() const {
  std::lock_guard<std::mutex> lock(mu_);
  if (buckets_.empty()) return std::nullopt;
  return buckets_.begin()->first;
}

int64_t SessionTracker::NextSessionId() {
  std::lock_guard<std::mutex> lock(mu_);
  while (!UsableId(next_id_)) ++next_id_;
  return next_id_++;
}

int64_t SessionTracker::InitialSessionId(int64_t server_id, int64_t now_ms) {
  uint64_t id = (static_cast<uint64_t>(now_ms) << 24) >> 8;
  id |= (static_cast<uint64_t>(server_id) & 0xff) << 56;
  auto sid = static_cast<int64_t>(id);
  while (!UsableId(sid)) ++sid;
  return sid;
}

std::string SessionTracker::Password(int64_t session_id, uint64_t secret) {
  server::Sha1Digest mac =
      server::HmacSha1(BigEndian(secret), BigEndian(static_cast<uint64_t>(session_id)));
  return std::string(reinterpret_cast<const char*>(mac.data()), 16);
}

bool SessionTracker::CheckPassword(int64_t session_id, uint64_t secret, std::string_view password) {
  if (session_id == 0) return false;
  std::string want = Password(session_id, secret);
  return ConstantTimeEqual(want, password);
}

}  // namespace qfs::service
