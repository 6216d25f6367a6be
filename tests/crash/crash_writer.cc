// A process that owns a store and writes to it as fast as it can through the real pipeline.
// For every acknowledged write it prints "ack <zxid> <summary>" on stdout (one write() per line),
// so a parent that kills it with SIGKILL knows exactly what was acknowledged.
#include <unistd.h>

#include <atomic>
#include <condition_variable>
#include <cstdio>
#include <cstring>
#include <mutex>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "consensus/util/log.h"
#include "daemon/replica/pipeline.h"
#include "tests/crash/txn_summary.h"

using namespace qfs;
using tree::Err;
using tree::Op;
using tree::OpType;
using tree::Request;
using tree::RequestType;

namespace {

void EmitAck(int64_t zxid, const std::string& summary) {
  std::string line = "ack " + std::to_string(zxid) + " " + summary + "\n";
  ssize_t n = write(STDOUT_FILENO, line.data(), line.size());
  if (n != static_cast<ssize_t>(line.size())) _exit(5);
}

struct Sync {
  std::mutex mu;
  std::condition_variable cv;
  bool done = false;
  Reply reply;
};

Reply Call(Pipeline& p, Request req) {
  Sync s;
  p.Submit(std::move(req), [&s](Reply&& r) {
    std::lock_guard<std::mutex> l(s.mu);
    s.reply = std::move(r);
    s.done = true;
    s.cv.notify_one();
  });
  std::unique_lock<std::mutex> l(s.mu);
  s.cv.wait(l, [&] { return s.done; });
  return std::move(s.reply);
}

Op MakeOp(OpType type, std::string path, std::string data = "", int32_t version = -1) {
  Op op;
  op.type = type;
  op.path = std::move(path);
  op.data = std::move(data);
  op.version = version;
  op.acl = tree::OpenAcl();
  return op;
}

std::string RandomData(std::mt19937_64& rng) {
  std::string d(rng() % 300, '\0');
  for (auto& c : d) c = static_cast<char>(rng());
  return d;
}

void Worker(Pipeline& p, int id, uint64_t seed, std::atomic<bool>& stop) {
  std::mt19937_64 rng(seed * 1000 + id);
  std::string base = "/w/s" + std::to_string(seed) + "t" + std::to_string(id);
  std::vector<std::string> mine;
  Request mk;
  mk.ops.push_back(MakeOp(OpType::kCreate, base));
  Reply r = Call(p, mk);
  if (r.err == Err::kOk) EmitAck(r.zxid, crashtest::CreateSummary(base, ""));
  int n = 0;
  while (!stop.load()) {
    int dice = static_cast<int>(rng() % 10);
    Request req;
    if (dice < 5 || mine.empty()) {
      std::string data = RandomData(rng);
      Op op = MakeOp(OpType::kCreate, base + "/n" + std::to_string(n++), data);
      if (rng() % 4 == 0) op.mode = tree::CreateMode::kPersistentSequential;
      req.ops.push_back(op);
      r = Call(p, req);
      if (r.err != Err::kOk) continue;
      mine.push_back(r.results.at(0).path);
      EmitAck(r.zxid, crashtest::CreateSummary(r.results[0].path, data));
    } else if (dice < 8) {
      const std::string& path = mine[rng() % mine.size()];
      std::string data = RandomData(rng);
      req.ops.push_back(MakeOp(OpType::kSetData, path, data));
      r = Call(p, req);
      if (r.err != Err::kOk) continue;
      EmitAck(r.zxid, crashtest::SetSummary(path, r.results.at(0).stat.version, data));
    } else if (dice < 9) {
      size_t i = rng() % mine.size();
      std::string path = mine[i];
      req.ops.push_back(MakeOp(OpType::kDelete, path));
      r = Call(p, req);
      if (r.err != Err::kOk) continue;
      mine.erase(mine.begin() + static_cast<long>(i));
      EmitAck(r.zxid, crashtest::DeleteSummary(path));
    } else {
      // A multi: create two nodes and check the base.
      req.type = RequestType::kMulti;
      std::string a = base + "/m" + std::to_string(n++), b = base + "/m" + std::to_string(n++);
      std::string da = RandomData(rng), db = RandomData(rng);
      req.ops.push_back(MakeOp(OpType::kCreate, a, da));
      req.ops.push_back(MakeOp(OpType::kCheck, base));
      req.ops.push_back(MakeOp(OpType::kCreate, b, db));
      r = Call(p, req);
      if (r.err != Err::kOk) continue;
      mine.push_back(a);
      mine.push_back(b);
      EmitAck(r.zxid, "m [" + crashtest::CreateSummary(a, da) + "] [" +
                          crashtest::CheckSummary(base) + "] [" + crashtest::CreateSummary(b, db) +
                          "]");
    }
  }
}

}  // namespace

int main(int argc, char** argv) {
  std::string dir;
  uint64_t seed = 1, snap_count = 2000, segment_bytes = 1 << 20;
  int threads = 8;
  double seconds = 1e9;
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string a = argv[i];
    if (a == "--dir")
      dir = argv[i + 1];
    else if (a == "--seed")
      seed = strtoull(argv[i + 1], nullptr, 10);
    else if (a == "--snap-count")
      snap_count = strtoull(argv[i + 1], nullptr, 10);
    else if (a == "--segment-bytes")
      segment_bytes = strtoull(argv[i + 1], nullptr, 10);
    else if (a == "--threads")
      threads = atoi(argv[i + 1]);
    else if (a == "--seconds")
      seconds = atof(argv[i + 1]);
  }
  if (dir.empty()) {
    fprintf(stderr,
            "usage: crash_writer --dir DIR [--seed N] [--snap-count N] "
            "[--segment-bytes N] [--threads N] [--seconds S]\n");
    return 2;
  }
  SetLogLevel(LogLevel::kWarn);
  StoreOptions so;
  so.data_dir = dir + "/data";
  so.log_dir = dir + "/log";
  so.segment_bytes = segment_bytes;
  so.snap_retain_count = 0;  // keep the whole log so the test can replay it from scratch
  Pipeline::Options po;
  po.snap_count = snap_count;
  Status st;
  auto p = Pipeline::Start(so, po, &st);
  if (!p) {
    fprintf(stderr, "crash_writer: cannot open the store: %s\n", st.ToString().c_str());
    return 1;
  }
  Request root;
  root.ops.push_back(MakeOp(OpType::kCreate, "/w"));
  Reply r = Call(*p, root);
  if (r.err == Err::kOk) EmitAck(r.zxid, crashtest::CreateSummary("/w", ""));
  EmitAck(0, "ready");
  std::atomic<bool> stop{false};
  std::vector<std::thread> ts;
  for (int i = 0; i < threads; i++) ts.emplace_back(Worker, std::ref(*p), i, seed, std::ref(stop));
  std::this_thread::sleep_for(std::chrono::duration<double>(seconds));
  stop = true;
  for (auto& t : ts) t.join();
  p->Stop();
  return 0;
}
