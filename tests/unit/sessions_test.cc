// The session service (daemon/service/sessions.h) on a member of one: timeouts, passwords,
// expiry proposed by the service's own thread, local sessions kept alive, the secret kept.
#include "daemon/service/sessions.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <filesystem>
#include <functional>
#include <future>
#include <mutex>
#include <thread>

using namespace qfs;
using tree::Err;

namespace {

std::string TempDir() {
  char tmpl[] = "/tmp/qfs-sess-XXXXXX";
  EXPECT_NE(mkdtemp(tmpl), nullptr);
  return tmpl;
}

bool WaitFor(const std::function<bool()>& f, int ms) {
  auto end = std::chrono::steady_clock::now() + std::chrono::milliseconds(ms);
  while (std::chrono::steady_clock::now() < end) {
    if (f()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return f();
}

class SessionsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = TempDir();
    config_.data_dir = dir_ + "/data";
    config_.data_log_dir = dir_ + "/log";
    config_.tick_time_ms = 100;
    config_.min_session_timeout_ms = 200;
    config_.max_session_timeout_ms = 2000;
    std::filesystem::create_directories(config_.data_dir);
    Open();
  }
  void TearDown() override {
    Close();
    std::filesystem::remove_all(dir_);
  }
  void Open() {
    StoreOptions so;
    so.data_dir = config_.data_dir;
    so.log_dir = config_.data_log_dir;
    so.segment_bytes = 1 << 20;
    Pipeline::Options po;
    po.config = config_;
    Status st;
    pipeline_ = Pipeline::Start(so, po, &st);
    ASSERT_TRUE(pipeline_) << st.ToString();
    ASSERT_TRUE(WaitFor([&] { return pipeline_->member().serving; }, 10000));
    sessions_ = std::make_unique<service::Sessions>(config_, pipeline_.get());
    sessions_->SetHolder({[](SessionTouches*) {},
                          [this](int64_t id) {
                            std::lock_guard<std::mutex> l(mu_);
                            expired_.push_back(id);
                          }});
    ASSERT_TRUE(sessions_->Start().ok());
  }
  void Close() {
    if (sessions_) sessions_->Stop();
    if (pipeline_) pipeline_->Stop();
    sessions_.reset();
    pipeline_.reset();
  }
  bool InTree(int64_t id) {
    return pipeline_->Read([&](const tree::DataTree& t) { return t.sessions().count(id) > 0; });
  }
  bool Expired(int64_t id) {
    std::lock_guard<std::mutex> l(mu_);
    return std::find(expired_.begin(), expired_.end(), id) != expired_.end();
  }
  // A network session, as the client port makes one.
  int64_t Create(int32_t timeout_ms) {
    std::mutex mu;
    std::condition_variable cv;
    bool done = false;
    int64_t out = 0;
    EXPECT_TRUE(sessions_->Create(timeout_ms, [&](Err e, int64_t id) {
      EXPECT_EQ(e, Err::kOk);
      std::lock_guard<std::mutex> l(mu);
      out = id;
      done = true;
      cv.notify_one();
    }));
    std::unique_lock<std::mutex> l(mu);
    cv.wait(l, [&] { return done; });
    return out;
  }

  std::string dir_;
  Config config_;
  std::unique_ptr<Pipeline> pipeline_;
  std::unique_ptr<service::Sessions> sessions_;
  std::mutex mu_;
  std::vector<int64_t> expired_;
};

TEST_F(SessionsTest, TimeoutsAreClampedToTheBounds) {
  EXPECT_EQ(sessions_->ClampTimeout(1), 200);
  EXPECT_EQ(sessions_->ClampTimeout(500), 500);
  EXPECT_EQ(sessions_->ClampTimeout(100000), 2000);
}

TEST_F(SessionsTest, ResumeNeedsTheSessionsOwnPassword) {
  int64_t id = Create(1000);
  ASSERT_NE(id, 0);
  EXPECT_TRUE(InTree(id));
  std::string pw = sessions_->Password(id);
  EXPECT_EQ(pw.size(), 16u);
  EXPECT_TRUE(sessions_->Resume(id, pw, 1000));
  std::string wrong = pw;
  wrong[0] ^= 1;
  EXPECT_FALSE(sessions_->Resume(id, wrong, 1000));
  EXPECT_FALSE(sessions_->Resume(id, "", 1000));
  EXPECT_FALSE(sessions_->Resume(id + 1, sessions_->Password(id + 1), 1000)) << "not in the tree";
}

TEST_F(SessionsTest, AQuietSessionExpiresAndStaysExpired) {
  int64_t id = Create(200);
  std::string pw = sessions_->Password(id);
  ASSERT_TRUE(WaitFor([&] { return Expired(id); }, 5000)) << "the service proposed no close";
  EXPECT_FALSE(InTree(id));
  sessions_->Touch(id, 200);  // a late ping
  EXPECT_FALSE(sessions_->Resume(id, pw, 200));
}

TEST_F(SessionsTest, TouchesKeepASessionAlive) {
  int64_t id = Create(200);
  for (int i = 0; i < 20; i++) {  // 1 s, five timeouts
    sessions_->Touch(id, 200);
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  EXPECT_TRUE(InTree(id));
  EXPECT_FALSE(Expired(id));
  // Its client's closeSession, as the client port submits it: then the service forgets it.
  tree::Request r;
  r.type = tree::RequestType::kCloseSession;
  r.session_id = id;
  std::promise<Err> done;
  pipeline_->Submit(std::move(r), [&](Reply&& rep) { done.set_value(rep.err); });
  ASSERT_EQ(done.get_future().get(), Err::kOk);
  sessions_->Closed(id);
  EXPECT_FALSE(InTree(id));
  std::this_thread::sleep_for(std::chrono::milliseconds(600));
  EXPECT_FALSE(Expired(id)) << "a closed session is not expired again";
}

TEST_F(SessionsTest, LocalSessionsLiveUntilClosed) {
  auto id = sessions_->OpenLocal(1);
  ASSERT_TRUE(id.ok()) << id.status().ToString();
  EXPECT_TRUE(InTree(*id));
  std::this_thread::sleep_for(std::chrono::milliseconds(800));  // four timeouts, no touches
  EXPECT_TRUE(InTree(*id));
  EXPECT_FALSE(Expired(*id));
  ASSERT_TRUE(sessions_->CloseLocal(*id).ok());
  EXPECT_FALSE(InTree(*id));
  EXPECT_TRUE(sessions_->CloseLocal(*id).ok()) << "closing twice is not an error";
}

TEST_F(SessionsTest, TheSecretSurvivesARestart) {
  int64_t id = Create(2000);
  std::string pw = sessions_->Password(id);
  Close();
  Open();
  EXPECT_EQ(sessions_->Password(id), pw);
  EXPECT_TRUE(InTree(id));
  EXPECT_TRUE(sessions_->Resume(id, pw, 2000)) << "a session outlives a restart of its member";
}

}  // namespace

// Read-only sessions (docs/read-only.md): no txn, their own password, expiry after their
// timeout without touches, all gone with DropReadOnly; a session of the tree resumes too.
TEST_F(SessionsTest, ReadOnlySessions) {
  int64_t ro = sessions_->CreateReadOnly(300);
  ASSERT_NE(ro, 0);
  EXPECT_FALSE(InTree(ro)) << "a read-only session is no txn";
  std::string pw = sessions_->Password(ro);
  EXPECT_TRUE(sessions_->ResumeReadOnly(ro, pw, 300));
  std::string wrong = pw;
  wrong[0] ^= 1;
  EXPECT_FALSE(sessions_->ResumeReadOnly(ro, wrong, 300));
  EXPECT_FALSE(sessions_->Resume(ro, pw, 300)) << "a read-write member does not know it";
  int64_t other = sessions_->CreateReadOnly(300);
  EXPECT_NE(other, ro);
  // Touches keep it; without them it expires after its timeout.
  for (int i = 0; i < 10; i++) {  // 0.5 s
    sessions_->Touch(ro, 300);
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  EXPECT_TRUE(sessions_->ResumeReadOnly(ro, pw, 300));
  EXPECT_FALSE(sessions_->ResumeReadOnly(other, sessions_->Password(other), 300))
      << "untouched for longer than its timeout";
  // A session of the tree, created while the ensemble served, resumes on a read-only member.
  int64_t global = Create(1000);
  EXPECT_TRUE(sessions_->ResumeReadOnly(global, sessions_->Password(global), 1000));
  EXPECT_FALSE(sessions_->ResumeReadOnly(global + 1000, sessions_->Password(global + 1000), 1000));
  // Its client's closeSession, or leaving read-only mode, forgets it.
  sessions_->ClosedReadOnly(ro);
  EXPECT_FALSE(sessions_->ResumeReadOnly(ro, pw, 300));
  int64_t third = sessions_->CreateReadOnly(1000);
  sessions_->DropReadOnly();
  EXPECT_FALSE(sessions_->ResumeReadOnly(third, sessions_->Password(third), 1000));
  EXPECT_FALSE(Expired(ro)) << "no closeSession is ever proposed for a read-only session";
}
