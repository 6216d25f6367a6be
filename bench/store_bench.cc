// Durable write throughput through the real pipeline (prepare -> group-committed log -> apply),
// and snapshot / recovery cost of a large tree.
//   store_bench --dir DIR [--seconds S] [--writers 1,16,256] [--data-bytes N] [--nodes N]
#include <sys/resource.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <filesystem>
#include <mutex>
#include <sstream>
#include <thread>
#include <vector>

#include "consensus/storage/snapshot_file.h"
#include "consensus/util/log.h"
#include "daemon/replica/pipeline.h"

using namespace qfs;

namespace {

tree::Request Create(const std::string& path, const std::string& data) {
  tree::Request r;
  tree::Op op;
  op.type = tree::OpType::kCreate;
  op.path = path;
  op.data = data;
  op.acl = tree::OpenAcl();
  r.ops.push_back(std::move(op));
  return r;
}

Reply Call(Pipeline& p, tree::Request req) {
  std::mutex mu;
  std::condition_variable cv;
  bool done = false;
  Reply out;
  p.Submit(std::move(req), [&](Reply&& r) {
    std::lock_guard<std::mutex> l(mu);
    out = std::move(r);
    done = true;
    cv.notify_one();
  });
  std::unique_lock<std::mutex> l(mu);
  cv.wait(l, [&] { return done; });
  return out;
}

double Pct(std::vector<double>& v, double p) {
  if (v.empty()) return 0;
  size_t i = std::min(v.size() - 1, static_cast<size_t>(p * static_cast<double>(v.size())));
  std::nth_element(v.begin(), v.begin() + static_cast<long>(i), v.end());
  return v[i];
}

void WriteBench(const std::string& dir, int writers, double seconds, size_t data_bytes) {
  std::filesystem::remove_all(dir);
  StoreOptions so;
  so.data_dir = dir + "/data";
  so.log_dir = dir + "/log";
  Pipeline::Options po;
  po.max_outstanding = 100000;
  po.snap_count = 0;
  Status st;
  auto p = Pipeline::Start(so, po, &st);
  if (!p) {
    fprintf(stderr, "store_bench: %s\n", st.ToString().c_str());
    exit(1);
  }
  Call(*p, Create("/b", ""));
  std::string data(data_bytes, 'v');
  std::atomic<bool> stop{false};
  std::vector<std::vector<double>> lat(static_cast<size_t>(writers));
  std::vector<std::thread> ts;
  auto t0 = std::chrono::steady_clock::now();
  uint64_t fsyncs0 = p->store().log().stats().fsyncs;
  for (int w = 0; w < writers; w++) {
    ts.emplace_back([&, w] {
      for (int i = 0; !stop; i++) {
        auto a = std::chrono::steady_clock::now();
        Reply r = Call(*p, Create("/b/w" + std::to_string(w) + "-" + std::to_string(i), data));
        auto b = std::chrono::steady_clock::now();
        if (r.err != tree::Err::kOk) {
          fprintf(stderr, "store_bench: write failed: %s\n", tree::ErrName(r.err));
          exit(1);
        }
        lat[static_cast<size_t>(w)].push_back(
            std::chrono::duration<double, std::milli>(b - a).count());
      }
    });
  }
  std::this_thread::sleep_for(std::chrono::duration<double>(seconds));
  stop = true;
  for (auto& t : ts) t.join();
  double el = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  std::vector<double> all;
  for (auto& l : lat) all.insert(all.end(), l.begin(), l.end());
  uint64_t fsyncs = p->store().log().stats().fsyncs - fsyncs0;
  printf(
      "writers=%-4d txns/s=%-9.0f p50=%.3fms p99=%.3fms p999=%.3fms txns/fsync=%.1f (%zu txns, "
      "%zu-byte data)\n",
      writers, static_cast<double>(all.size()) / el, Pct(all, 0.5), Pct(all, 0.99), Pct(all, 0.999),
      fsyncs ? static_cast<double>(all.size()) / static_cast<double>(fsyncs) : 0.0, all.size(),
      data_bytes);
  p->Stop();
  std::filesystem::remove_all(dir);
}

long RssKb() {
  FILE* f = fopen("/proc/self/statm", "r");
  long pages = 0, rss = 0;
  if (f) {
    if (fscanf(f, "%ld %ld", &pages, &rss) != 2) rss = 0;
    fclose(f);
  }
  return rss * (sysconf(_SC_PAGESIZE) / 1024);
}

void SnapshotBench(const std::string& dir, size_t nodes, size_t data_bytes) {
  std::filesystem::remove_all(dir);
  StoreOptions so;
  so.data_dir = dir + "/data";
  so.log_dir = dir + "/log";
  so.sync = true;
  uint64_t digest;
  {
    auto s = Store::Open(so);
    if (!s.ok()) {
      fprintf(stderr, "store_bench: %s\n", s.status().ToString().c_str());
      exit(1);
    }
    // Build the tree by applying txns directly (the log is not the point here).
    tree::DataTree& t = (*s)->tree();
    std::string data(data_bytes, 'v');
    int64_t zxid = int64_t{1} << 32;
    auto apply = [&](const std::string& path, const std::string& d, int32_t pcv) {
      txn::Txn x;
      x.set_zxid(++zxid);
      x.set_time_ms(1);
      auto* c = x.mutable_create();
      c->set_path(path);
      c->set_data(d);
      auto* a = c->add_acl();
      a->set_perms(31);
      a->set_scheme("world");
      a->set_id("anyone");
      c->set_parent_cversion(pcv);
      t.Apply(x);
    };
    apply("/bench", "", 1);
    size_t per_dir = 1000;
    for (size_t d = 0; d * per_dir < nodes; d++) {
      std::string dp = "/bench/d" + std::to_string(d);
      apply(dp, "", static_cast<int32_t>(d + 1));
      for (size_t i = 0; i < per_dir && d * per_dir + i < nodes; i++)
        apply(dp + "/n" + std::to_string(i), data, static_cast<int32_t>(i + 1));
    }
    digest = t.digest();
    (*s)->StartSnapshot();
    (*s)->WaitSnapshot();
    const auto& sn = (*s)->snapshot_stats();
    printf("snapshot of %zu znodes (%zu-byte data): %.0f ms, %.1f MiB, fork pause %.2f ms\n",
           t.node_count(), data_bytes, sn.last_ms, static_cast<double>(sn.last_bytes) / (1 << 20),
           sn.last_fork_ms);
  }
  long rss0 = RssKb();
  auto t0 = std::chrono::steady_clock::now();
  auto s = Store::Open(so);
  double ms =
      std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
  if (!s.ok() || (*s)->tree().digest() != digest) {
    fprintf(stderr, "store_bench: reload failed or digest differs\n");
    exit(1);
  }
  printf("load (recovery from that snapshot): %.0f ms; RSS grew %.0f MiB\n", ms,
         static_cast<double>(RssKb() - rss0) / 1024);
  s->reset();
  std::filesystem::remove_all(dir);
}

std::vector<int> ParseList(const std::string& s) {
  std::vector<int> v;
  std::stringstream in(s);
  std::string x;
  while (std::getline(in, x, ',')) v.push_back(atoi(x.c_str()));
  return v;
}

}  // namespace

int main(int argc, char** argv) {
  std::string dir = "/tmp/qfs-store-bench";
  double seconds = 5;
  std::vector<int> writers = {1, 16, 256};
  size_t data_bytes = 1024, nodes = 1000000;
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string a = argv[i];
    if (a == "--dir")
      dir = argv[i + 1];
    else if (a == "--seconds")
      seconds = atof(argv[i + 1]);
    else if (a == "--writers")
      writers = ParseList(argv[i + 1]);
    else if (a == "--data-bytes")
      data_bytes = strtoul(argv[i + 1], nullptr, 10);
    else if (a == "--nodes")
      nodes = strtoul(argv[i + 1], nullptr, 10);
    else {
      fprintf(stderr,
              "usage: store_bench [--dir D] [--seconds S] [--writers 1,16,256] "
              "[--data-bytes N] [--nodes N]\n");
      return 2;
    }
  }
  SetLogLevel(LogLevel::kWarn);
  printf("# durable creates through the pipeline (fdatasync per batch), dir %s\n", dir.c_str());
  for (int w : writers) WriteBench(dir, w, seconds, data_bytes);
  if (nodes > 0) {
    printf("# snapshot and recovery\n");
    SnapshotBench(dir, nodes, 100);
  }
  return 0;
}
