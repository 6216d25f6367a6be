#include "daemon/service/sessions.h"

#include <fcntl.h>
#include <pthread.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cinttypes>
#include <future>

#include "consensus/storage/file_util.h"
#include "consensus/util/checksum.h"
#include "consensus/util/log.h"

namespace qfs::service {

using tree::Err;

namespace {

int64_t WallMs() {
  using namespace std::chrono;
  return duration_cast<milliseconds>(system_clock::now().time_since_epoch()).count();
}

// Session deadlines run on the monotonic clock: a jump of the wall clock neither expires live
// sessions nor keeps dead ones (docs/faults.md, "clock jumps"). Only session ids use wall time.
int64_t MonoMs() {
  using namespace std::chrono;
  return duration_cast<milliseconds>(steady_clock::now().time_since_epoch()).count();
}

std::string Hex(int64_t v) {
  char b[24];
  snprintf(b, sizeof b, "0x%" PRIx64, static_cast<uint64_t>(v));
  return b;
}

// Submits `r` and waits for its reply.
Err Call(Pipeline* p, tree::Request r) {
  std::promise<Err> done;
  auto fut = done.get_future();
  p->Submit(std::move(r), [&done](Reply&& rep) { done.set_value(rep.err); });
  return fut.get();
}

}  // namespace

Sessions::Sessions(const Config& config, Pipeline* pipeline)
    : config_(config), pipeline_(pipeline) {}

void Sessions::SetHolder(SessionHolder holder) {
  holder_ = std::move(holder);
}

Sessions::~Sessions() {
  Stop();
}

Status Sessions::Start() {
  if (config_.ensemble()) {
    // Every member must check the passwords of sessions created on another: derive the
    // password secret from the ensemble's shared secret.
    secret_ = Hash64(config_.quorum_secret.data(), config_.quorum_secret.size()) | 1;
  } else {
    QFS_RETURN_IF_ERROR(LoadSecret());
  }
  tracker_ = std::make_unique<SessionTracker>(
      config_.tick_time_ms, static_cast<int64_t>(pipeline_->member().self), WallMs());
  // Sessions survive restarts in the tree; each gets a full timeout from now (as a new leader).
  pipeline_->Read([&](const tree::DataTree& t) {
    for (auto& [sid, to] : t.sessions()) tracker_->Track(sid, to, MonoMs());
    return 0;
  });
  role_listener_ = pipeline_->AddRoleListener([this](const MemberStatus& m) {
    if (!m.serving || m.role != zab::Role::kLeading) return;
    // A new leader gives every session a full timeout from now (ZooKeeper does the same).
    // (On the pipeline thread, the only writer of the tree: no lock needed to read it.)
    for (auto& [sid, to] : pipeline_->store().tree().sessions()) tracker_->Track(sid, to, MonoMs());
  });
  pipeline_->SetSessionTouchHandler([this](const SessionTouches& t) {
    for (auto& [sid, to] : t)
      if (!tracker_->Touch(sid, to, MonoMs())) tracker_->Track(sid, to, MonoMs());
  });
  thread_ = std::thread([this] {
    pthread_setname_np(pthread_self(), "qfs-sessions");
    Run();
  });
  return Status::Ok();
}

void Sessions::Stop() {
  {
    std::lock_guard<std::mutex> l(mu_);
    if (stopping_ || !thread_.joinable()) return;
    stopping_ = true;
  }
  wake_.notify_all();
  thread_.join();
  pipeline_->RemoveRoleListener(role_listener_);
  pipeline_->SetSessionTouchHandler(nullptr);
}

int32_t Sessions::ClampTimeout(int32_t ms) const {
  return std::clamp(ms, config_.min_session_timeout(), config_.max_session_timeout());
}

bool Sessions::Create(int32_t timeout_ms, std::function<void(Err, int64_t)> done) {
  int64_t sid = tracker_->NextSessionId();
  tree::Request r;
  r.type = tree::RequestType::kCreateSession;
  r.session_id = sid;
  r.session_timeout_ms = timeout_ms;
  return pipeline_->TrySubmit(std::move(r), [this, sid, timeout_ms, done](Reply&& rep) {
    // Tracked even if its client is gone by now: the session then expires on its own.
    if (rep.err == Err::kOk) tracker_->Track(sid, timeout_ms, MonoMs());
    done(rep.err, sid);
  });
}

bool Sessions::Resume(int64_t id, std::string_view password, int32_t timeout_ms) {
  bool known = pipeline_->Read([&](const tree::DataTree& t) { return t.sessions().count(id) > 0; });
  if (!known || !SessionTracker::CheckPassword(id, secret_, password)) return false;
  // Untracked here (a learner, or a session the leader has not heard of yet): track it; but a
  // session this tracker knows and that expired stays expired.
  if (tracker_->Touch(id, timeout_ms, MonoMs())) return true;
  if (tracker_->Contains(id)) return false;
  tracker_->Track(id, timeout_ms, MonoMs());
  return true;
}

std::string Sessions::Password(int64_t id) const {
  return SessionTracker::Password(id, secret_);
}

void Sessions::Touch(int64_t id, int32_t timeout_ms) {
  {
    std::lock_guard<std::mutex> l(mu_);
    auto it = read_only_.find(id);
    if (it != read_only_.end()) {
      if (it->second.deadline_ms > MonoMs()) it->second.deadline_ms = MonoMs() + timeout_ms;
      return;
    }
  }
  tracker_->Touch(id, timeout_ms, MonoMs());
}

int64_t Sessions::CreateReadOnly(int32_t timeout_ms) {
  int64_t sid = tracker_->NextSessionId();
  const int64_t now = MonoMs();
  std::lock_guard<std::mutex> l(mu_);
  std::erase_if(read_only_, [now](const auto& x) { return x.second.deadline_ms <= now; });
  read_only_[sid] = {timeout_ms, now + timeout_ms};
  return sid;
}

bool Sessions::ResumeReadOnly(int64_t id, std::string_view password, int32_t timeout_ms) {
  if (!SessionTracker::CheckPassword(id, secret_, password)) return false;
  {
    std::lock_guard<std::mutex> l(mu_);
    auto it = read_only_.find(id);
    if (it != read_only_.end()) {
      if (it->second.deadline_ms <= MonoMs()) return false;
      it->second = {timeout_ms, MonoMs() + timeout_ms};
      return true;
    }
  }
  return pipeline_->Read([&](const tree::DataTree& t) { return t.sessions().count(id) > 0; });
}

void Sessions::ClosedReadOnly(int64_t id) {
  std::lock_guard<std::mutex> l(mu_);
  read_only_.erase(id);
}

size_t Sessions::ReadOnlyCount() {
  const int64_t now = MonoMs();
  std::lock_guard<std::mutex> l(mu_);
  return static_cast<size_t>(
      std::count_if(read_only_.begin(), read_only_.end(),
                    [now](const auto& x) { return x.second.deadline_ms > now; }));
}

void Sessions::DropReadOnly() {
  size_t n;
  {
    std::lock_guard<std::mutex> l(mu_);
    n = read_only_.size();
    read_only_.clear();
  }
  if (n) QLOG_INFO("dropped %zu read-only sessions: this member left read-only mode", n);
}

void Sessions::Closed(int64_t id) {
  tracker_->Remove(id);
}

Result<int64_t> Sessions::OpenLocal(int32_t timeout_ms) {
  int32_t timeout = ClampTimeout(timeout_ms);
  int64_t sid = tracker_->NextSessionId();
  tree::Request r;
  r.type = tree::RequestType::kCreateSession;
  r.session_id = sid;
  r.session_timeout_ms = timeout;
  Err err = Call(pipeline_, std::move(r));
  if (err != Err::kOk)
    return Unavailable(std::string("cannot create a session: ") + tree::ErrName(err));
  {
    std::lock_guard<std::mutex> l(mu_);
    local_[sid] = timeout;
  }
  tracker_->Track(sid, timeout, MonoMs());
  QLOG_INFO("local session %s opened (timeout %d ms)", Hex(sid).c_str(), timeout);
  return sid;
}

Status Sessions::CloseLocal(int64_t id) {
  {
    std::lock_guard<std::mutex> l(mu_);
    local_.erase(id);
  }
  tree::Request r;
  r.type = tree::RequestType::kCloseSession;
  r.session_id = id;
  Err err = Call(pipeline_, std::move(r));
  if (err != Err::kOk && err != Err::kSessionExpired)
    return Unavailable(std::string("cannot close session: ") + tree::ErrName(err));
  QLOG_INFO("local session %s closed", Hex(id).c_str());
  return Status::Ok();
}

void Sessions::Run() {
  const auto period = std::chrono::milliseconds(std::max(10, config_.tick_time_ms / 2));
  std::unique_lock<std::mutex> l(mu_);
  while (!wake_.wait_for(l, period, [this] { return stopping_; })) {
    l.unlock();
    CheckExpiry();
    l.lock();
  }
}

void Sessions::CheckExpiry() {
  MemberStatus ms = pipeline_->member();
  SessionTouches alive;
  {
    std::lock_guard<std::mutex> l(mu_);
    for (auto& [sid, timeout] : local_) {
      tracker_->Touch(sid, timeout, MonoMs());
      alive.emplace_back(sid, timeout);
    }
  }
  if (holder_.open) holder_.open(&alive);
  if (!ms.serving || ms.role != zab::Role::kLeading) {
    // A learner: the leader's tracker decides expiry; tell it who is alive here.
    pipeline_->ForwardSessionTouches(std::move(alive));
    return;
  }
  // Sessions created through another member that never touched us yet get a full timeout.
  pipeline_->Read([&](const tree::DataTree& t) {
    for (auto& [sid, to] : t.sessions())
      if (!tracker_->Contains(sid)) tracker_->Track(sid, to, MonoMs());
    return 0;
  });
  for (int64_t sid : tracker_->PopExpired(MonoMs())) {
    QLOG_INFO("session %s expired", Hex(sid).c_str());
    tree::Request r;
    r.type = tree::RequestType::kCloseSession;
    r.session_id = sid;
    pipeline_->Submit(std::move(r), [this, sid](Reply&& rep) {
      if (rep.err != Err::kOk && rep.err != Err::kSessionExpired)
        QLOG_WARN("closing expired session %s: %s", Hex(sid).c_str(), tree::ErrName(rep.err));
      if (holder_.expired) holder_.expired(sid);
    });
  }
}

Status Sessions::LoadSecret() {
  // Session passwords are derived from this secret, so a member can check a password after a
  // restart. Random per data directory; the ensemble will replicate it.
  std::string path = config_.data_dir + "/sessionSecret";
  auto text = storage::ReadFile(path);
  if (text.ok() && !text->empty()) {
    secret_ = strtoull(text->c_str(), nullptr, 16);
    if (secret_ != 0) return Status::Ok();
  }
  int fd = open("/dev/urandom", O_RDONLY | O_CLOEXEC);
  if (fd < 0 || read(fd, &secret_, sizeof secret_) != static_cast<ssize_t>(sizeof secret_)) {
    if (fd >= 0) close(fd);
    return IoError("cannot read /dev/urandom for the session secret");
  }
  close(fd);
  char buf[32];
  snprintf(buf, sizeof buf, "%016" PRIx64 "\n", secret_);
  return storage::WriteFileAtomic(config_.data_dir, "sessionSecret", buf);
}

}  // namespace qfs::service
