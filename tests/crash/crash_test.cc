// kill -9 a real writer process at random moments, many times, and check after recovery that
// every acknowledged txn is in the log and that snapshot + log recovery equals a clean replay.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <random>
#include <sstream>
#include <string>

#include "consensus/storage/txn_log.h"
#include "daemon/replica/store.h"
#include "tests/crash/txn_summary.h"

using namespace qfs;

namespace {

std::string WriterPath() {
  const char* p = getenv("QFS_CRASH_WRITER");
  return p ? p : CRASH_WRITER_PATH;
}

struct Child {
  pid_t pid = -1;
  int out = -1;
  std::string buf;
};

Child Spawn(const std::vector<std::string>& args) {
  int fds[2];
  EXPECT_EQ(pipe(fds), 0);
  Child c;
  c.pid = fork();
  if (c.pid == 0) {
    dup2(fds[1], STDOUT_FILENO);
    close(fds[0]);
    close(fds[1]);
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    execv(argv[0], argv.data());
    _exit(127);
  }
  close(fds[1]);
  c.out = fds[0];
  return c;
}

// Reads what is available (waiting up to timeout_ms); returns false at EOF.
bool Pump(Child& c, int timeout_ms, std::map<int64_t, std::string>* acked, bool* ready) {
  pollfd p{c.out, POLLIN, 0};
  if (poll(&p, 1, timeout_ms) <= 0) return true;
  char tmp[65536];
  ssize_t n = read(c.out, tmp, sizeof tmp);
  if (n <= 0) return false;
  c.buf.append(tmp, static_cast<size_t>(n));
  size_t nl;
  while ((nl = c.buf.find('\n')) != std::string::npos) {
    std::string line = c.buf.substr(0, nl);
    c.buf.erase(0, nl + 1);
    std::istringstream in(line);
    std::string word;
    int64_t zxid;
    in >> word >> zxid;
    std::string summary;
    std::getline(in, summary);
    if (!summary.empty() && summary[0] == ' ') summary.erase(0, 1);
    if (summary == "ready") {
      *ready = true;
      continue;
    }
    auto [it, fresh] = acked->emplace(zxid, summary);
    EXPECT_TRUE(fresh || it->second == summary) << "zxid " << zxid << " acknowledged twice";
  }
  return true;
}

void Verify(const std::string& dir, const std::map<int64_t, std::string>& acked) {
  StoreOptions so;
  so.data_dir = dir + "/data";
  so.log_dir = dir + "/log";
  so.segment_bytes = 256 << 10;
  so.snap_retain_count = 0;
  auto store = Store::Open(so);
  ASSERT_TRUE(store.ok()) << store.status().ToString();
  const tree::DataTree& recovered = (*store)->tree();
  (*store)->log().Close();

  auto replayed = ReplayLogFromScratch(so.log_dir, so.max_data_bytes);
  ASSERT_TRUE(replayed.ok()) << replayed.status().ToString();
  EXPECT_EQ(recovered.last_zxid(), (*replayed)->last_zxid());
  EXPECT_EQ(recovered.digest(), (*replayed)->digest());
  EXPECT_EQ(recovered.digest(), recovered.ComputeDigest());
  std::string a, b;
  ASSERT_TRUE(recovered
                  .WriteSnapshot([&](std::string_view r) {
                    a.append(r);
                    return Status::Ok();
                  })
                  .ok());
  ASSERT_TRUE((*replayed)
                  ->WriteSnapshot([&](std::string_view r) {
                    b.append(r);
                    return Status::Ok();
                  })
                  .ok());
  EXPECT_TRUE(a == b) << "snapshot+log recovery and a clean replay built different trees";

  std::map<int64_t, std::string> logged;
  storage::TxnLog::Options lo;
  lo.dir = so.log_dir;
  auto log = storage::TxnLog::Open(lo, 0, [&](const storage::LogEntry& e) {
    txn::Txn t;
    ASSERT_TRUE(t.ParseFromString(e.payload));
    logged[static_cast<int64_t>(e.zxid)] = crashtest::Summarize(t);
  });
  ASSERT_TRUE(log.ok()) << log.status().ToString();
  size_t missing = 0;
  for (const auto& [zxid, summary] : acked) {
    auto it = logged.find(zxid);
    if (it == logged.end() || it->second != summary) {
      if (missing++ < 5)
        ADD_FAILURE() << "acknowledged txn lost: zxid " << zxid << " " << summary
                      << " (log has: " << (it == logged.end() ? "nothing" : it->second) << ")";
    }
  }
  EXPECT_EQ(missing, 0u) << "of " << acked.size() << " acknowledged txns";
}

TEST(CrashTest, KillNineAtRandomMoments) {
  int iterations = 60;
  if (const char* e = getenv("QFS_CRASH_ITERATIONS")) iterations = atoi(e);
  uint64_t seed = static_cast<uint64_t>(time(nullptr));
  if (const char* e = getenv("QFS_CRASH_SEED")) seed = strtoull(e, nullptr, 10);
  printf("crash test: %d kills, seed %llu (QFS_CRASH_SEED to repeat)\n", iterations,
         static_cast<unsigned long long>(seed));
  std::mt19937_64 rng(seed);
  char tmpl[] = "/tmp/qfs-crash-XXXXXX";
  ASSERT_NE(mkdtemp(tmpl), nullptr);
  std::string dir = tmpl;
  std::map<int64_t, std::string> acked;
  for (int i = 0; i < iterations && !HasFailure(); i++) {
    Child c = Spawn({WriterPath(), "--dir", dir, "--seed", std::to_string(seed + i), "--snap-count",
                     "1500", "--segment-bytes", std::to_string(256 << 10), "--threads", "8"});
    bool ready = false, open = true;
    auto t0 = std::chrono::steady_clock::now();
    while (open && !ready && std::chrono::steady_clock::now() - t0 < std::chrono::seconds(60))
      open = Pump(c, 100, &acked, &ready);
    ASSERT_TRUE(ready) << "the writer did not start (iteration " << i << ")";
    // Kill at a random moment: sometimes at once, mostly under load, sometimes mid-snapshot.
    int run_ms = static_cast<int>(rng() % 400);
    auto until = std::chrono::steady_clock::now() + std::chrono::milliseconds(run_ms);
    while (open && std::chrono::steady_clock::now() < until) open = Pump(c, 5, &acked, &ready);
    kill(c.pid, SIGKILL);
    while (open) open = Pump(c, 1000, &acked, &ready);
    int status = 0;
    waitpid(c.pid, &status, 0);
    close(c.out);
    ASSERT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL)
        << "the writer ended on its own (status " << status << ") in iteration " << i;
    if (i % 10 == 9 || i == iterations - 1) Verify(dir, acked);
  }
  printf("crash test: %zu acknowledged txns checked after %d kills\n", acked.size(), iterations);
  if (!HasFailure())
    std::filesystem::remove_all(dir);
  else
    printf("data left in %s for inspection\n", dir.c_str());
}

}  // namespace
