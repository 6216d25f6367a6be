#include "daemon/service/reaper.h"

#include <pthread.h>

#include <algorithm>
#include <chrono>

#include "consensus/util/log.h"

namespace qfs::service {

namespace {
int64_t WallMs() {
  using namespace std::chrono;
  return duration_cast<milliseconds>(system_clock::now().time_since_epoch()).count();
}
}  // namespace

Reaper::Reaper(const Config& config, Pipeline* pipeline)
    : interval_ms_(std::max(10, config.container_check_interval_ms)), pipeline_(pipeline) {}

Reaper::~Reaper() {
  Stop();
}

void Reaper::Start() {
  thread_ = std::thread([this] {
    pthread_setname_np(pthread_self(), "qfs-reaper");
    Run();
  });
}

void Reaper::Stop() {
  {
    std::lock_guard<std::mutex> l(mu_);
    if (stopping_ || !thread_.joinable()) return;
    stopping_ = true;
  }
  wake_.notify_all();
  thread_.join();
}

void Reaper::Run() {
  std::unique_lock<std::mutex> l(mu_);
  while (
      !wake_.wait_for(l, std::chrono::milliseconds(interval_ms_), [this] { return stopping_; })) {
    l.unlock();
    ReapOnce();
    l.lock();
  }
}

size_t Reaper::ReapOnce() {
  MemberStatus ms = pipeline_->member();
  if (!ms.serving || ms.role != zab::Role::kLeading) return 0;
  auto paths =
      pipeline_->Read([](const tree::DataTree& t) { return t.ExpiryCandidates(WallMs()); });
  size_t n = 0;
  for (auto& p : paths) {
    tree::Request r;
    tree::Op op;
    op.type = tree::OpType::kDeleteContainer;
    op.path = p;
    r.ops.push_back(std::move(op));
    // TrySubmit: a full pipeline skips this round's rest; the next round lists them again.
    if (!pipeline_->TrySubmit(std::move(r), [p](Reply&& rep) {
          if (rep.err == tree::Err::kOk) QLOG_DEBUG("reaped %s", p.c_str());
        }))
      break;
    n++;
  }
  return n;
}

}  // namespace qfs::service
