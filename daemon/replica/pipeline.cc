#include "daemon/replica/pipeline.h"

#include <chrono>

#include "consensus/util/log.h"

namespace qfs {
namespace {

int64_t WallMs() {
  using namespace std::chrono;
  return duration_cast<milliseconds>(system_clock::now().time_since_epoch()).count();
}

constexpr uint32_t kMaxCounter = 0xffffffffu;

}  // namespace

std::unique_ptr<Pipeline> Pipeline::Start(StoreOptions so, Options options, Status* error) {
  std::unique_ptr<Pipeline> p(new Pipeline());
  Pipeline* self = p.get();
  p->options_ = options;
  so.on_durable = [self](uint64_t z) {
    std::lock_guard<std::mutex> l(self->mu_);
    if (z > self->durable_) self->durable_ = z;
    self->cv_.notify_one();
  };
  so.on_failed = [self](uint64_t first, const Status& why) {
    std::lock_guard<std::mutex> l(self->mu_);
    if (!self->failed_ || first < self->failed_from_) self->failed_from_ = first;
    self->failed_ = true;
    self->failed_why_ = why;
    self->cv_.notify_one();
  };
  auto store = Store::Open(so);
  if (!store.ok()) {
    *error = store.status();
    return nullptr;
  }
  p->store_ = std::move(*store);
  Store& s = *p->store_;
  // A new leader starts a new epoch; zxid = epoch << 32 | counter.
  uint64_t last = static_cast<uint64_t>(s.tree().last_zxid());
  uint64_t epoch = std::max({s.accepted_epoch(), s.current_epoch(), last >> 32}) + 1;
  s.SetEpoch(epoch);
  p->epoch_ = epoch;
  p->counter_ = 0;
  p->durable_ = s.log().durable_zxid();
  p->stats_.last_zxid = s.tree().last_zxid();
  p->preparer_ = std::make_unique<tree::Preparer>(s.tree());
  QLOG_INFO("serving as the leader of an ensemble of one, epoch %llu",
            static_cast<unsigned long long>(epoch));
  p->thread_ = std::thread([self] { self->Run(); });
  *error = Status::Ok();
  return p;
}

Pipeline::~Pipeline() {
  Stop();
}

int Pipeline::AddApplyListener(ApplyListener l) {
  std::lock_guard<std::mutex> lock(mu_);
  int h = next_listener_++;
  listeners_.emplace_back(h, std::move(l));
  return h;
}

void Pipeline::RemoveApplyListener(int handle) {
  std::lock_guard<std::mutex> lock(mu_);
  std::erase_if(listeners_, [handle](const auto& p) { return p.first == handle; });
}

void Pipeline::Sync(ReplyFn done) {
  Enqueue(tree::Request(), std::move(done), true, true);
}

void Pipeline::Submit(tree::Request req, ReplyFn done) {
  Enqueue(std::move(req), std::move(done), true);
}

bool Pipeline::TrySubmit(tree::Request req, ReplyFn done) {
  return Enqueue(std::move(req), std::move(done), false);
}

bool Pipeline::Enqueue(tree::Request&& req, ReplyFn&& done, bool block, bool sync) {
  std::unique_lock<std::mutex> l(mu_);
  if (block) {
    space_cv_.wait(l, [&] { return outstanding_ < options_.max_outstanding || stopping_; });
  } else if (outstanding_ >= options_.max_outstanding && !stopping_) {
    return false;
  }
  if (stopping_) {
    l.unlock();
    Reply r;
    r.err = tree::Err::kConnectionLoss;
    done(std::move(r));
    return true;
  }
  outstanding_++;
  stats_.submitted++;
  incoming_.push_back({std::move(req), std::move(done), sync});
  cv_.notify_one();
  return true;
}

void Pipeline::RequestSnapshot() {
  std::lock_guard<std::mutex> l(mu_);
  snapshot_requested_ = true;
  cv_.notify_one();
}

void Pipeline::Stop() {
  {
    std::lock_guard<std::mutex> l(mu_);
    if (stopped_) return;
    stopping_ = true;
    cv_.notify_one();
    space_cv_.notify_all();
  }
  if (thread_.joinable()) thread_.join();
  if (store_) {  // null when Start() failed
    store_->log().Close();
    store_->WaitSnapshot();
  }
  std::lock_guard<std::mutex> l(mu_);
  stopped_ = true;
}

Pipeline::Stats Pipeline::stats() const {
  std::lock_guard<std::mutex> l(mu_);
  Stats s = stats_;
  s.outstanding = outstanding_;
  return s;
}

int64_t Pipeline::NextZxid() {
  if (counter_ == kMaxCounter) {
    // The counter would overflow into the epoch bits: move to a new epoch first.
    epoch_++;
    store_->SetEpoch(epoch_);
    counter_ = 0;
    QLOG_INFO("zxid counter exhausted: new epoch %llu", static_cast<unsigned long long>(epoch_));
  }
  return static_cast<int64_t>((epoch_ << 32) | (counter_ + 1));
}

void Pipeline::Run() {
  for (;;) {
    std::deque<Incoming> batch;
    uint64_t durable;
    bool failed, stopping, snap;
    uint64_t failed_from;
    Status why;
    {
      std::unique_lock<std::mutex> l(mu_);
      int64_t applied = stats_.last_zxid;
      cv_.wait_for(l, std::chrono::milliseconds(100), [&] {
        return (!incoming_.empty() && !draining_) || durable_ > static_cast<uint64_t>(applied) ||
               failed_ || stopping_ || snapshot_requested_;
      });
      durable = durable_;
      failed = failed_;
      failed_from = failed_from_;
      why = failed_why_;
      failed_ = false;
      if (!draining_) batch.swap(incoming_);
      stopping = stopping_;
      snap = snapshot_requested_;
      snapshot_requested_ = false;
    }
    ApplyDurable(durable);
    if (failed) FailFrom(failed_from, why);
    if (draining_ && inflight_.empty()) {
      // Every txn that will ever apply has applied: the tree is the whole truth again.
      preparer_->Reset();
      int64_t last = store_->tree().last_zxid();
      counter_ = (static_cast<uint64_t>(last) >> 32) == epoch_ ? static_cast<uint32_t>(last) : 0;
      draining_ = false;
    }
    while (!batch.empty()) {
      if (draining_) {
        std::lock_guard<std::mutex> l(mu_);
        while (!batch.empty()) {
          incoming_.push_front(std::move(batch.back()));
          batch.pop_back();
        }
        break;
      }
      PrepareOne(std::move(batch.front()));
      batch.pop_front();
    }
    ApplyDurable(durable);  // releases replies of requests that failed in prepare

    store_->PollSnapshot();
    if ((snap || (options_.snap_count > 0 && since_snapshot_ >= options_.snap_count)) &&
        !store_->snapshot_running()) {
      if (store_->StartSnapshot()) since_snapshot_ = 0;
    }
    if (stopping && inflight_.empty()) {
      std::lock_guard<std::mutex> l(mu_);
      if (incoming_.empty()) break;
    }
  }
}

void Pipeline::PrepareOne(Incoming&& in) {
  if (in.sync) {  // a reply-only entry: released after everything before it
    InFlight f;
    f.done = std::move(in.done);
    inflight_.push_back(std::move(f));
    return;
  }
  int64_t zxid = NextZxid();
  tree::Prepared p = preparer_->Prepare(in.req, zxid, WallMs());
  InFlight f;
  f.done = std::move(in.done);
  if (p.err != tree::Err::kOk) {
    f.reply.err = p.err;
    f.reply.results = std::move(p.multi_results);
    inflight_.push_back(std::move(f));
    return;
  }
  storage::LogEntry e;
  e.zxid = static_cast<uint64_t>(zxid);
  QFS_CHECK(p.txn->SerializeToString(&e.payload));
  Status st = store_->log().Append(std::move(e));
  if (!st.ok()) {
    // Not in the log, but already in the preparer's view: fail it, and rebuild the view once
    // nothing is in flight.
    QLOG_WARN("write refused: %s", st.ToString().c_str());
    f.reply.err = tree::Err::kSystemError;
    inflight_.push_back(std::move(f));
    draining_ = true;
    return;
  }
  counter_++;
  f.zxid = zxid;
  f.txn = std::move(*p.txn);
  inflight_.push_back(std::move(f));
}

void Pipeline::ApplyDurable(uint64_t durable) {
  std::vector<std::pair<ReplyFn, Reply>> replies;
  int64_t last_applied = 0;
  std::vector<std::pair<int, ApplyListener>> listeners;
  {
    std::lock_guard<std::mutex> l(mu_);
    listeners = listeners_;
  }
  {
    std::unique_lock<std::shared_mutex> wl(tree_mu_, std::defer_lock);
    tree::DataTree& t = store_->tree();
    while (!inflight_.empty()) {
      InFlight& f = inflight_.front();
      if (f.zxid == 0) {
        f.reply.zxid = t.last_zxid();
        replies.emplace_back(std::move(f.done), std::move(f.reply));
        inflight_.pop_front();
        continue;
      }
      if (static_cast<uint64_t>(f.zxid) > durable) break;
      if (!wl.owns_lock()) wl.lock();
      tree::ApplyResult r = t.Apply(f.txn);
      QFS_CHECK(r.err == tree::Err::kOk);
      Reply rep;
      rep.zxid = f.zxid;
      rep.results = std::move(r.results);
      // Under the lock: a reader must not see the change before its watch events are queued.
      for (auto& [h, listener] : listeners) listener(f.zxid, r.changes);
      replies.emplace_back(std::move(f.done), std::move(rep));
      last_applied = f.zxid;
      since_snapshot_++;
      inflight_.pop_front();
    }
  }
  if (last_applied) preparer_->Applied(last_applied);
  Release(&replies);
}

void Pipeline::FailFrom(uint64_t first_failed, const Status& why) {
  QLOG_ERROR("the log could not store txns from zxid 0x%llx on (%s): failing %zu in-flight writes",
             static_cast<unsigned long long>(first_failed), why.ToString().c_str(),
             inflight_.size());
  for (InFlight& f : inflight_) {
    QFS_CHECK(f.zxid == 0 || static_cast<uint64_t>(f.zxid) >= first_failed);
    f.zxid = 0;
    f.reply = Reply();
    f.reply.err = tree::Err::kSystemError;
  }
  draining_ = true;
  ApplyDurable(0);
}

void Pipeline::Release(std::vector<std::pair<ReplyFn, Reply>>* replies) {
  if (replies->empty()) return;
  uint64_t ok = 0, bad = 0;
  for (auto& [done, reply] : *replies) {
    (reply.err == tree::Err::kOk ? ok : bad)++;
    if (done) done(std::move(reply));
  }
  std::lock_guard<std::mutex> l(mu_);
  outstanding_ -= replies->size();
  stats_.applied += ok;
  stats_.failed += bad;
  stats_.last_zxid = store_->tree().last_zxid();
  space_cv_.notify_all();
}

}  // namespace qfs
