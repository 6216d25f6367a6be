// Peer transport on loopback: one-way throughput and round-trip latency of 1 KiB messages.
//   transport_bench [messages] [payload_bytes]
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <mutex>
#include <thread>

#include "consensus/transport/peer_transport.h"
#include "consensus/util/log.h"

using namespace qfs;
using Clock = std::chrono::steady_clock;

namespace {

struct Counter : transport::Handler {
  std::mutex mu;
  std::condition_variable cv;
  uint64_t received = 0;
  uint64_t target = ~0ull;
  // When set, answers every message to member 1.
  std::atomic<transport::PeerTransport*> echo_to{nullptr};
  const peer::PeerMessage* echo_msg = nullptr;
  void OnMessage(uint64_t, peer::PeerMessage&&) override {
    if (auto* t = echo_to.load()) t->Send(1, *echo_msg);
    std::lock_guard<std::mutex> g(mu);
    if (++received >= target) cv.notify_all();
  }
  std::atomic<bool> closing{false};  // disconnects are expected while the members stop
  void OnDisconnected(uint64_t peer) override {
    if (closing) return;
    fprintf(stderr, "unexpected disconnect from %llu\n", static_cast<unsigned long long>(peer));
  }
  void WaitFor(uint64_t n) {
    std::unique_lock<std::mutex> l(mu);
    target = n;
    cv.wait(l, [&] { return received >= n; });
    target = ~0ull;
  }
};

int PickPort() {
  static int next = 0;
  if (!next) next = 20000 + static_cast<int>(getpid() % 20000);
  return next++;
}

}  // namespace

int main(int argc, char** argv) {
  const uint64_t n = argc > 1 ? strtoull(argv[1], nullptr, 10) : 1000000;
  const size_t size = argc > 2 ? strtoull(argv[2], nullptr, 10) : 1024;
  SetLogLevel(LogLevel::kWarn);

  const int ports[4] = {0, PickPort(), PickPort(), PickPort()};
  Counter h[4];
  std::unique_ptr<transport::PeerTransport> t[4];
  for (uint64_t id = 1; id <= 3; ++id) {
    transport::Options o;
    o.self_id = id;
    o.listen_host = "127.0.0.1";
    o.listen_port = ports[id];
    for (uint64_t p = 1; p <= 3; ++p) {
      if (p != id) o.peers.push_back({p, "127.0.0.1", ports[p]});
    }
    o.secret = "bench";
    auto r = transport::PeerTransport::Start(o, &h[id]);
    if (!r.ok()) {
      fprintf(stderr, "%s\n", r.status().ToString().c_str());
      return 1;
    }
    t[id] = std::move(r).value();
  }
  for (uint64_t id = 1; id <= 3; ++id) {
    while (t[id]->stats().connects < 2) std::this_thread::sleep_for(std::chrono::milliseconds(1));
    for (uint64_t p = 1; p <= 3; ++p) {
      if (p != id) t[id]->Reopen(p);
    }
  }

  peer::PeerMessage m;
  m.set_app(std::string(size, 'x'));
  auto pace = [&](uint64_t to) {
    while (t[1]->queued_bytes(to) > (8u << 20)) std::this_thread::yield();
  };

  // 1 -> 2, one way.
  auto t0 = Clock::now();
  for (uint64_t i = 0; i < n; ++i) {
    t[1]->Send(2, m);
    if (i % 1024 == 0) pace(2);
  }
  h[2].WaitFor(n);
  double s = std::chrono::duration<double>(Clock::now() - t0).count();
  printf("one way, %zu B: %llu msgs in %.2f s: %.0f msgs/s, %.0f MiB/s\n", size,
         static_cast<unsigned long long>(n), s, n / s, n * double(size) / s / (1 << 20));

  // 1 -> {2, 3}, serialized once.
  const std::vector<uint64_t> both = {2, 3};
  t0 = Clock::now();
  for (uint64_t i = 0; i < n; ++i) {
    t[1]->Send(both, m);
    if (i % 1024 == 0) {
      pace(2);
      pace(3);
    }
  }
  h[2].WaitFor(2 * n);
  h[3].WaitFor(n);
  s = std::chrono::duration<double>(Clock::now() - t0).count();
  printf("to two peers, %zu B: %.0f msgs/s per peer\n", size, n / s);

  // Round trips 1 -> 2 -> 1.
  h[2].echo_msg = &m;
  h[2].echo_to = t[2].get();
  const int rounds = 20000;
  std::vector<double> us;
  us.reserve(rounds);
  uint64_t base;
  {
    std::lock_guard<std::mutex> g(h[1].mu);
    base = h[1].received;
  }
  for (int i = 0; i < rounds; ++i) {
    auto a = Clock::now();
    t[1]->Send(2, m);
    h[1].WaitFor(base + i + 1);
    us.push_back(std::chrono::duration<double, std::micro>(Clock::now() - a).count());
  }
  std::sort(us.begin(), us.end());
  printf("round trip, %zu B: p50 %.0f us, p99 %.0f us, p99.9 %.0f us\n", size, us[rounds / 2],
         us[rounds * 99 / 100], us[rounds * 999 / 1000]);
  auto st = t[1]->stats();
  printf("member 1: %llu frames sent, %llu bytes written\n",
         static_cast<unsigned long long>(st.frames_sent),
         static_cast<unsigned long long>(st.bytes_sent));
  h[2].echo_to = nullptr;
  for (auto& x : h) x.closing = true;
  SetLogLevel(LogLevel::kError);
  for (auto& x : t) {
    if (x) x->Stop();
  }
  return 0;
}
