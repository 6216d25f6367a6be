// DataTree apply throughput, memory per znode and snapshot cost.
//   tree_bench [--dirs N] [--per-dir N] [--data-bytes N]
// Default: 1000 directories x 1000 znodes of 100 bytes (/bench/dNNN/nNNNNNN). Build without
// sanitizers (-DCMAKE_BUILD_TYPE=Release) for meaningful figures.
#include <malloc.h>
#include <time.h>
#include <unistd.h>

#include <chrono>
#include <cinttypes>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

#include "daemon/tree/data_tree.h"

using namespace qfs;
using namespace qfs::tree;
using Clock = std::chrono::steady_clock;

namespace {

double Seconds(Clock::duration d) {
  return std::chrono::duration<double>(d).count();
}

// CPU time of this thread: steadier than wall time on a shared machine.
double CpuSeconds() {
  timespec ts;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) * 1e-9;
}

size_t RssBytes() {
  FILE* f = std::fopen("/proc/self/statm", "r");
  if (!f) return 0;
  unsigned long size = 0, resident = 0;
  int n = std::fscanf(f, "%lu %lu", &size, &resident);
  std::fclose(f);
  return n == 2 ? resident * static_cast<size_t>(sysconf(_SC_PAGESIZE)) : 0;
}

size_t HeapBytes() {
  return mallinfo2().uordblks;
}

void SetAcl(txn::CreateTxn* c) {
  txn::Acl* a = c->add_acl();
  a->set_perms(perm::kAll);
  a->set_scheme("world");
  a->set_id("anyone");
}

}  // namespace

int main(int argc, char** argv) {
  int dirs = 1000, per_dir = 1000, data_bytes = 100;
  for (int i = 1; i + 1 < argc; i += 2) {
    if (!std::strcmp(argv[i], "--dirs")) dirs = std::atoi(argv[i + 1]);
    if (!std::strcmp(argv[i], "--per-dir")) per_dir = std::atoi(argv[i + 1]);
    if (!std::strcmp(argv[i], "--data-bytes")) data_bytes = std::atoi(argv[i + 1]);
  }
  const std::string data(data_bytes, 'x');
  malloc_trim(0);
  const size_t rss0 = RssBytes(), heap0 = HeapBytes();

  auto tree = std::make_unique<DataTree>();
  int64_t zxid = 0;
  txn::Txn t;
  t.set_time_ms(1700000000000);
  auto create = [&](const std::string& path, const std::string& d, int32_t parent_cversion) {
    t.set_zxid(++zxid);
    txn::CreateTxn* c = t.mutable_create();
    c->set_path(path);
    c->set_data(d);
    c->set_parent_cversion(parent_cversion);
    if (c->acl_size() == 0) SetAcl(c);
    auto start = Clock::now();
    tree->Apply(t);
    return Clock::now() - start;
  };

  // Creates.
  Clock::duration apply_time{};
  double cpu0 = CpuSeconds();
  create("/bench", "", 2);
  char path[64];
  for (int d = 0; d < dirs; d++) {
    std::snprintf(path, sizeof path, "/bench/d%03d", d);
    apply_time += create(path, "", d + 1);
  }
  for (int d = 0; d < dirs; d++) {
    for (int k = 0; k < per_dir; k++) {
      std::snprintf(path, sizeof path, "/bench/d%03d/n%06d", d, k);
      apply_time += create(path, data, k + 1);
    }
  }
  const size_t znodes = static_cast<size_t>(dirs) * per_dir + dirs + 1;
  double create_cpu = CpuSeconds() - cpu0;
  const size_t rss1 = RssBytes(), heap1 = HeapBytes();
  std::printf("znodes created:        %zu (%d dirs x %d, %d-byte data)\n", znodes, dirs, per_dir,
              data_bytes);
  std::printf(
      "create apply:          %.0f txns/s (%.3f s wall in Apply; whole loop %.0f txns/s "
      "of thread CPU time)\n",
      znodes / Seconds(apply_time), Seconds(apply_time), znodes / create_cpu);
  double heap_per = static_cast<double>(heap1 - heap0) / znodes;
  double rss_per = static_cast<double>(rss1 - rss0) / znodes;
  std::printf(
      "memory per znode:      heap %.1f B, RSS %.1f B (overhead beyond data: heap %.1f B, "
      "RSS %.1f B)\n",
      heap_per, rss_per, heap_per - data_bytes, rss_per - data_bytes);
  std::printf("ApproxMemoryBytes:     %.1f B per znode\n",
              static_cast<double>(tree->ApproxMemoryBytes()) / znodes);

  // setData, same size (in place) and a different size (the node moves).
  for (int pass = 0; pass < 2; pass++) {
    const std::string d2(pass == 0 ? data_bytes : data_bytes + 20, 'y');
    Clock::duration set_time{};
    size_t n = 0;
    double c0 = CpuSeconds();
    for (int k = 0; k < per_dir; k++) {
      for (int d = 0; d < dirs; d++) {
        std::snprintf(path, sizeof path, "/bench/d%03d/n%06d", d, k);
        t.set_zxid(++zxid);
        txn::SetDataTxn* s = t.mutable_set_data();
        s->set_path(path);
        s->set_data(d2);
        s->set_version(pass + 1);
        auto start = Clock::now();
        tree->Apply(t);
        set_time += Clock::now() - start;
        n++;
      }
    }
    std::printf("setData apply (%s): %.0f txns/s (whole loop %.0f txns/s of CPU time)\n",
                pass == 0 ? "same size" : "+20 bytes", n / Seconds(set_time),
                n / (CpuSeconds() - c0));
  }

  auto start = Clock::now();
  uint64_t full = tree->ComputeDigest();
  std::printf("ComputeDigest:         %.3f s (%s incremental)\n", Seconds(Clock::now() - start),
              full == tree->digest() ? "equals" : "DIFFERS FROM");

  // Snapshot to memory, each record with a 4-byte length as a file would frame it.
  std::string snap;
  snap.reserve(znodes * (data_bytes + 120));
  size_t records = 0;
  start = Clock::now();
  double c1 = CpuSeconds();
  Status st = tree->WriteSnapshot([&](std::string_view r) {
    uint32_t len = static_cast<uint32_t>(r.size());
    snap.append(reinterpret_cast<const char*>(&len), 4);
    snap.append(r);
    records++;
    return Status::Ok();
  });
  double write_s = Seconds(Clock::now() - start), write_cpu = CpuSeconds() - c1;
  if (!st.ok()) {
    std::fprintf(stderr, "snapshot failed: %s\n", st.ToString().c_str());
    return 1;
  }
  std::printf(
      "snapshot write:        %.3f s (%.3f s CPU), %zu records, %.1f MB (%.1f B per znode)\n",
      write_s, write_cpu, records, snap.size() / 1e6, static_cast<double>(snap.size()) / znodes);

  const uint64_t digest = tree->digest();
  tree.reset();
  size_t pos = 0;
  start = Clock::now();
  double c2 = CpuSeconds();
  auto loaded = DataTree::LoadSnapshot({}, [&](std::string_view* r) {
    if (pos + 4 > snap.size()) return false;
    uint32_t len;
    std::memcpy(&len, snap.data() + pos, 4);
    *r = std::string_view(snap.data() + pos + 4, len);
    pos += 4 + len;
    return true;
  });
  double load_s = Seconds(Clock::now() - start), load_cpu = CpuSeconds() - c2;
  if (!loaded.ok() || (*loaded)->digest() != digest) {
    std::fprintf(stderr, "snapshot load failed: %s\n", loaded.status().ToString().c_str());
    return 1;
  }
  std::printf("snapshot load:         %.3f s (%.3f s CPU; digest checked)\n", load_s, load_cpu);
  return 0;
}
