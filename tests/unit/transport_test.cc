#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <asio.hpp>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstring>
#include <functional>
#include <map>
#include <mutex>
#include <thread>

#include "consensus/proto/transport.pb.h"
#include "consensus/transport/frame.h"
#include "consensus/transport/frame_mac.h"
#include "consensus/transport/handshake.h"
#include "consensus/transport/peer_transport.h"
#include "consensus/util/sha256.h"
#include "tests/unit/free_port.h"

namespace qfs::transport {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

constexpr auto kWait = 10s;  // upper bound of every wait; they return as soon as satisfied

std::string Hex(const Sha256Digest& d) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string s;
  for (uint8_t b : d) {
    s += kHex[b >> 4];
    s += kHex[b & 15];
  }
  return s;
}

TEST(Sha256Test, StandardVectors) {
  EXPECT_EQ(Hex(Sha256::Hash("abc")),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  EXPECT_EQ(Hex(Sha256::Hash("")),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  EXPECT_EQ(Hex(Sha256::Hash("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq")),
            "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
  EXPECT_EQ(Hex(Sha256::Hash(std::string(1000000, 'a'))),
            "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
}

TEST(Sha256Test, IncrementalMatchesOneShot) {
  std::string m;
  for (int i = 0; i < 300; ++i) m += static_cast<char>(i * 7);
  for (size_t step : {1, 3, 63, 64, 65, 200}) {
    Sha256 s;
    for (size_t i = 0; i < m.size(); i += step) s.Update(std::string_view(m).substr(i, step));
    EXPECT_EQ(s.Finish(), Sha256::Hash(m)) << step;
  }
}

TEST(Sha256Test, HmacRfc4231) {
  EXPECT_EQ(Hex(HmacSha256(std::string(20, '\x0b'), "Hi There")),
            "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7");
  EXPECT_EQ(Hex(HmacSha256("Jefe", "what do ya want for nothing?")),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
  // A key longer than the block is hashed first.
  EXPECT_EQ(Hex(HmacSha256(std::string(131, '\xaa'),
                           "Test Using Larger Than Block-Size Key - Hash Key First")),
            "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54");
  EXPECT_TRUE(ConstantTimeEqual("abc", "abc"));
  EXPECT_FALSE(ConstantTimeEqual("abc", "abd"));
  EXPECT_FALSE(ConstantTimeEqual("abc", "ab"));
}

TEST(Sha256Test, KeyedHmacMatchesOneShotAndIsReusable) {
  HmacSha256Key k("Jefe");
  for (int i = 0; i < 2; ++i) {
    EXPECT_EQ(Hex(k.Mac("what do ya want ", "for nothing?")),
              "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
  }
  HmacSha256Key empty("");
  EXPECT_EQ(empty.Mac("a", "b"), HmacSha256("", "ab"));
}

TEST(FrameMacTest, SequenceKeyAndBytesAllCount) {
  FrameMac tx("k1"), rx("k1"), other("k2");
  const std::string t0 = tx.NextTag("frame-a");
  const std::string t1 = tx.NextTag("frame-b");
  EXPECT_EQ(t0.size(), kFrameTagBytes);
  EXPECT_FALSE(rx.CheckNext("frame-b", t1));     // out of order
  EXPECT_FALSE(rx.CheckNext("frame-x", t0));     // altered
  EXPECT_FALSE(other.CheckNext("frame-a", t0));  // another connection's key
  EXPECT_TRUE(rx.CheckNext("frame-a", t0));
  EXPECT_FALSE(rx.CheckNext("frame-a", t0));  // replayed
  EXPECT_TRUE(rx.CheckNext("frame-b", t1));
}

TEST(FrameTest, RoundTripAndDamage) {
  std::string buf;
  AppendFrame(&buf, "hello");
  AppendFrame(&buf, "");
  std::string_view p;
  size_t size = 0;
  ASSERT_EQ(DecodeFrame(buf, 100, &p, &size), FrameStatus::kOk);
  EXPECT_EQ(p, "hello");
  ASSERT_EQ(size, kFrameHeader + 5);
  ASSERT_EQ(DecodeFrame(std::string_view(buf).substr(size), 100, &p, &size), FrameStatus::kOk);
  EXPECT_EQ(p, "");
  EXPECT_EQ(DecodeFrame(std::string_view(buf).substr(0, 10), 100, &p, &size),
            FrameStatus::kIncomplete);
  EXPECT_EQ(size, kFrameHeader + 5);
  EXPECT_EQ(DecodeFrame(std::string_view(buf).substr(0, 3), 100, &p, &size),
            FrameStatus::kIncomplete);
  EXPECT_EQ(DecodeFrame(buf, 4, &p, &size), FrameStatus::kTooLarge);
  std::string bad = buf;
  bad[kFrameHeader] ^= 1;
  EXPECT_EQ(DecodeFrame(bad, 100, &p, &size), FrameStatus::kBadChecksum);
}

// --- helpers for live transports ---

peer::PeerMessage Msg(uint64_t seq, size_t size = 16) {
  peer::PeerMessage m;
  std::string body(std::max<size_t>(size, 8), 'x');
  memcpy(body.data(), &seq, 8);
  for (size_t i = 8; i < body.size(); ++i) body[i] = static_cast<char>(seq * 31 + i);
  m.set_app(std::move(body));
  return m;
}
uint64_t SeqOf(const peer::PeerMessage& m) {
  uint64_t s = 0;
  if (m.app().size() >= 8) memcpy(&s, m.app().data(), 8);
  return s;
}

struct Event {
  uint64_t peer = 0;
  bool disconnect = false;
  uint64_t seq = 0;
  size_t size = 0;
  bool intact = true;  // the payload matches Msg(seq, size)
};

class Recorder : public Handler {
 public:
  void OnMessage(uint64_t from, peer::PeerMessage&& m) override {
    Event e{from, false, SeqOf(m), m.app().size(), true};
    if (check_payload) e.intact = m.app() == Msg(e.seq, e.size).app();
    std::function<void()> hook;
    {
      std::lock_guard<std::mutex> g(mu_);
      if (closed_) late_calls_++;
      events_.push_back(e);
      hook = on_message_;
    }
    cv_.notify_all();
    if (hook) hook();
  }
  void OnDisconnected(uint64_t peer) override {
    {
      std::lock_guard<std::mutex> g(mu_);
      if (closed_) late_calls_++;
      events_.push_back({peer, true, 0, 0, true});
    }
    cv_.notify_all();
  }
  void OnGuest(const PeerAddress& at) override {
    std::lock_guard<std::mutex> g(mu_);
    guests_.push_back(at);
  }
  std::vector<PeerAddress> guests() {
    std::lock_guard<std::mutex> g(mu_);
    return guests_;
  }

  // Waits until pred(events) holds; false after kWait.
  bool WaitFor(const std::function<bool(const std::vector<Event>&)>& pred) {
    std::unique_lock<std::mutex> l(mu_);
    return cv_.wait_for(l, kWait, [&] { return pred(events_); });
  }
  bool WaitMessages(uint64_t from, size_t n) {
    return WaitFor([&](const std::vector<Event>& ev) { return Messages(ev, from).size() >= n; });
  }
  bool WaitDisconnect(uint64_t peer, size_t n = 1) {
    return WaitFor([&](const std::vector<Event>& ev) {
      return static_cast<size_t>(std::count_if(ev.begin(), ev.end(), [&](const Event& e) {
               return e.disconnect && e.peer == peer;
             })) >= n;
    });
  }
  static std::vector<uint64_t> Messages(const std::vector<Event>& ev, uint64_t from) {
    std::vector<uint64_t> out;
    for (const Event& e : ev) {
      if (!e.disconnect && e.peer == from) out.push_back(e.seq);
    }
    return out;
  }
  std::vector<Event> events() {
    std::lock_guard<std::mutex> g(mu_);
    return events_;
  }
  size_t disconnects(uint64_t peer) {
    auto ev = events();
    return std::count_if(ev.begin(), ev.end(),
                         [&](const Event& e) { return e.disconnect && e.peer == peer; });
  }
  void MarkClosed() {
    std::lock_guard<std::mutex> g(mu_);
    closed_ = true;
  }
  int late_calls() {
    std::lock_guard<std::mutex> g(mu_);
    return late_calls_;
  }
  std::atomic<bool> check_payload{true};  // off when measuring throughput

  void SetOnMessage(std::function<void()> f) {
    std::lock_guard<std::mutex> g(mu_);
    on_message_ = std::move(f);
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<Event> events_;
  bool closed_ = false;
  int late_calls_ = 0;
  std::function<void()> on_message_;
  std::vector<PeerAddress> guests_;
};

bool Eventually(const std::function<bool()>& pred) {
  auto deadline = Clock::now() + kWait;
  while (Clock::now() < deadline) {
    if (pred()) return true;
    std::this_thread::sleep_for(2ms);
  }
  return pred();
}

using testing_util::FreePort;

// An ensemble of members 1..n on loopback; member i listens on ports[i].
struct Cluster {
  // Members 1..n get ports; the first `started` of them (all by default) are started.
  explicit Cluster(int n, size_t max_frame = 16 << 20, size_t max_queued = 512 << 20,
                   int started = -1)
      : max_frame(max_frame), max_queued(max_queued) {
    for (int i = 1; i <= n; ++i) ports[i] = FreePort();
    for (int i = 1; i <= n; ++i) {
      handlers[i] = std::make_unique<Recorder>();
      if (started < 0 || i <= started) Start(i);
    }
  }
  ~Cluster() {
    for (auto& [id, t] : members) {
      if (t) t->Stop();
    }
  }
  Options OptionsFor(uint64_t id) {
    Options o;
    o.self_id = id;
    o.listen_host = "127.0.0.1";
    o.listen_port = ports[id];
    for (auto& [pid, port] : ports) {
      if (pid != id) o.peers.push_back({pid, "127.0.0.1", port});
    }
    o.secret = "ensemble-secret";
    o.max_frame_bytes = max_frame;
    o.max_queued_bytes = max_queued;
    o.connect_retry_ms = 5;
    o.connect_retry_max_ms = 50;
    o.handshake_timeout_ms = 2000;
    return o;
  }
  void Start(uint64_t id) {
    auto t = PeerTransport::Start(OptionsFor(id), handlers[id].get());
    ASSERT_TRUE(t.ok()) << t.status().ToString();
    members[id] = std::move(t).value();
  }
  PeerTransport& operator[](uint64_t id) { return *members[id]; }
  Recorder& h(uint64_t id) { return *handlers[id]; }
  // Waits until every member has an outgoing connection to every other, then opens all links.
  void ConnectAll() {
    for (auto& [id, t] : members) {
      ASSERT_TRUE(Eventually([&] { return t->stats().connects >= members.size() - 1; })) << id;
    }
    for (auto& [id, t] : members) {
      for (auto& [pid, _] : members) {
        if (pid != id) t->Reopen(pid);
      }
    }
  }

  size_t max_frame;
  size_t max_queued;
  std::map<uint64_t, int> ports;
  std::map<uint64_t, std::unique_ptr<Recorder>> handlers;
  std::map<uint64_t, std::unique_ptr<PeerTransport>> members;
};

// --- a raw client speaking the protocol from a plain socket (blocking, with timeouts) ---

class RawPeer {
 public:
  explicit RawPeer(int port) {
    fd_ = socket(AF_INET, SOCK_STREAM, 0);
    timeval tv{5, 0};
    setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    setsockopt(fd_, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = htons(static_cast<uint16_t>(port));
    connected_ = connect(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0;
  }
  ~RawPeer() { close(fd_); }
  bool connected() const { return connected_; }

  bool WriteBytes(std::string_view b) {
    while (!b.empty()) {
      ssize_t n = send(fd_, b.data(), b.size(), MSG_NOSIGNAL);
      if (n <= 0) return false;
      b.remove_prefix(static_cast<size_t>(n));
    }
    return true;
  }
  // Returns false on EOF, error or timeout.
  bool ReadBytes(char* p, size_t n) {
    while (n > 0) {
      ssize_t r = recv(fd_, p, n, 0);
      if (r <= 0) return false;
      p += r;
      n -= static_cast<size_t>(r);
    }
    return true;
  }
  bool ReadFrame(std::string* payload) {
    std::string buf(kFrameHeader, '\0');
    if (!ReadBytes(buf.data(), kFrameHeader)) return false;
    std::string_view p;
    size_t size = 0;
    if (DecodeFrame(buf, kMaxHandshakeFrame, &p, &size) == FrameStatus::kTooLarge) return false;
    buf.resize(size);
    if (!ReadBytes(buf.data() + kFrameHeader, size - kFrameHeader)) return false;
    if (DecodeFrame(buf, kMaxHandshakeFrame, &p, &size) != FrameStatus::kOk) return false;
    payload->assign(p);
    return true;
  }
  // True once the acceptor closed the connection (EOF or reset) within the timeout.
  bool WaitClosed() {
    char c;
    for (;;) {
      ssize_t r = recv(fd_, &c, 1, 0);
      if (r == 0) return true;
      if (r < 0) return errno == ECONNRESET;
    }
  }
  // Runs the dialer's side of the handshake; returns the acceptor's Welcome.
  Welcome Handshake(const std::string& secret, uint64_t dialer, uint64_t acceptor,
                    uint32_t version = kProtocolVersion, int listen_port = 0) {
    Welcome w;
    std::string p;
    Challenge ch;
    if (!ReadFrame(&p) || !ch.ParseFromString(p)) {
      w.set_reason("no challenge");
      return w;
    }
    EXPECT_EQ(ch.magic(), kMagic);
    EXPECT_EQ(ch.nonce().size(), kNonceBytes);
    Hello h;
    h.set_version(version);
    h.set_dialer_id(dialer);
    h.set_acceptor_id(acceptor);
    h.set_nonce(std::string(kNonceBytes, 'n'));
    h.set_mac(DialerMac(secret, ch.nonce(), dialer, acceptor));
    h.set_listen_port(static_cast<uint32_t>(listen_port));
    std::string frame;
    AppendFrame(&frame, h.SerializeAsString());
    if (!WriteBytes(frame) || !ReadFrame(&p) || !w.ParseFromString(p)) {
      w.set_reason("no welcome");
      return w;
    }
    if (w.ok()) {
      EXPECT_EQ(w.mac(), AcceptorMac(secret, h.nonce(), acceptor, dialer));
      mac_ = std::make_unique<FrameMac>(FrameKey(secret, ch.nonce(), h.nonce(), dialer, acceptor));
    }
    return w;
  }
  // Appends its MAC tag after each whole frame of `frames`, as the transport's sender does.
  std::string Seal(std::string_view frames) {
    std::string out;
    while (frames.size() >= kFrameHeader) {
      uint32_t len = 0;
      for (int i = 0; i < 4; ++i)
        len |= static_cast<uint32_t>(static_cast<uint8_t>(frames[i])) << (8 * i);
      const std::string_view f = frames.substr(0, kFrameHeader + len);
      out.append(f).append(mac_->NextTag(f));
      frames.remove_prefix(f.size());
    }
    return out;
  }

 private:
  int fd_ = -1;
  bool connected_ = false;
  std::unique_ptr<FrameMac> mac_;
};

// --- tests ---

TEST(PeerTransportTest, StartValidatesOptions) {
  Recorder h;
  Options o;
  o.self_id = 1;
  o.listen_host = "127.0.0.1";
  EXPECT_FALSE(PeerTransport::Start(o, &h).ok());  // empty secret
  o.secret = "s";
  o.peers = {{1, "127.0.0.1", 1}};
  EXPECT_FALSE(PeerTransport::Start(o, &h).ok());  // self as a peer
  o.peers = {{2, "127.0.0.1", 1}, {2, "127.0.0.1", 2}};
  EXPECT_FALSE(PeerTransport::Start(o, &h).ok());  // duplicate
}

TEST(PeerTransportTest, ThreeMembersExchangeOrderedMessages) {
  Cluster c(3);
  c.ConnectAll();
  constexpr uint64_t kN = 2000;
  std::vector<std::thread> senders;
  for (uint64_t id = 1; id <= 3; ++id) {
    senders.emplace_back([&, id] {
      std::vector<uint64_t> others;
      for (uint64_t p = 1; p <= 3; ++p) {
        if (p != id) others.push_back(p);
      }
      for (uint64_t s = 0; s < kN; ++s) {
        if (s % 2) {
          c[id].Send(others, Msg(s, 100 + s % 300));  // serialized once for both
        } else {
          for (uint64_t p : others) c[id].Send(p, Msg(s, 100 + s % 300));
        }
      }
    });
  }
  for (auto& t : senders) t.join();
  for (uint64_t id = 1; id <= 3; ++id) {
    for (uint64_t from = 1; from <= 3; ++from) {
      if (from == id) continue;
      ASSERT_TRUE(c.h(id).WaitMessages(from, kN)) << id << " from " << from;
      auto got = Recorder::Messages(c.h(id).events(), from);
      ASSERT_EQ(got.size(), kN);
      for (uint64_t s = 0; s < kN; ++s) ASSERT_EQ(got[s], s) << id << " from " << from;
    }
    for (const Event& e : c.h(id).events()) {
      EXPECT_FALSE(e.disconnect);
      EXPECT_TRUE(e.intact);
    }
    auto st = c[id].stats();
    EXPECT_EQ(st.frames_sent, 2 * kN);
    EXPECT_EQ(st.frames_received, 2 * kN);
    EXPECT_EQ(st.frames_dropped, 0u);
    EXPECT_EQ(st.auth_failures, 0u);
  }
  EXPECT_TRUE(Eventually([&] { return c[1].queued_bytes(2) == 0; }));
}

TEST(PeerTransportTest, WrongSecretIsRefusedBothWays) {
  // Member 2 never runs with the right secret: had it started, member 1 could have counted a
  // good connection to it before the swap (a CI failure).
  Cluster c(2, 16 << 20, 512 << 20, /*started=*/1);
  Options o = c.OptionsFor(2);
  o.secret = "not-the-secret";
  Recorder h2;
  testing::internal::CaptureStderr();
  auto t2 = PeerTransport::Start(o, &h2);
  ASSERT_TRUE(t2.ok());
  EXPECT_TRUE(Eventually(
      [&] { return c[1].stats().auth_failures >= 1 && (*t2)->stats().auth_failures >= 1; }));
  (*t2)->Stop();
  c[1].Stop();
  std::string log = testing::internal::GetCapturedStderr();
  EXPECT_NE(log.find("refused: wrong secret (HMAC mismatch) from member 2"), std::string::npos)
      << log;
  EXPECT_NE(log.find("refused: wrong secret (HMAC mismatch) from member 1"), std::string::npos)
      << log;
  EXPECT_EQ(c[1].stats().accepts, 0u);
  EXPECT_EQ((*t2)->stats().accepts, 0u);
  EXPECT_EQ(c[1].stats().connects, 0u);
}

TEST(PeerTransportTest, UnknownMemberAndWrongVersionAreRefusedWithTheReason) {
  Cluster c(2);
  testing::internal::CaptureStderr();
  {
    RawPeer r(c.ports[1]);
    ASSERT_TRUE(r.connected());
    Welcome w = r.Handshake("ensemble-secret", 99, 1);
    EXPECT_FALSE(w.ok());
    EXPECT_EQ(w.reason(), "unknown member id 99");
    EXPECT_TRUE(r.WaitClosed());
  }
  {
    RawPeer r(c.ports[1]);
    // A member of the previous version (frames without MACs) is refused.
    Welcome w = r.Handshake("ensemble-secret", 2, 1, kProtocolVersion - 1);
    EXPECT_FALSE(w.ok());
    EXPECT_EQ(w.reason(), "protocol version 2 vs ours 3");
    EXPECT_TRUE(r.WaitClosed());
  }
  {
    RawPeer r(c.ports[1]);
    Welcome w = r.Handshake("ensemble-secret", 2, 7);  // meant to reach member 7
    EXPECT_FALSE(w.ok());
    EXPECT_EQ(w.reason(), "it expected member 7 at this address, this is member 1");
  }
  {
    RawPeer r(c.ports[1]);  // a stranger that speaks garbage
    EXPECT_TRUE(r.WriteBytes(std::string(64, 'G')));
    EXPECT_TRUE(r.WaitClosed());
  }
  ASSERT_TRUE(Eventually([&] { return c[1].stats().auth_failures >= 4; }));
  std::string log = testing::internal::GetCapturedStderr();
  EXPECT_NE(log.find("refused: unknown member id 99"), std::string::npos) << log;
  EXPECT_NE(log.find("refused: protocol version 2 vs ours 3"), std::string::npos) << log;
  EXPECT_NE(log.find("refused: handshake:"), std::string::npos) << log;
  EXPECT_NE(log.find("127.0.0.1:"), std::string::npos) << log;  // names the address
  EXPECT_EQ(c.h(1).events().size(), 0u);
}

TEST(PeerTransportTest, SilentStrangerIsDroppedAfterTheHandshakeTimeout) {
  Cluster c(1);
  c.members[1]->Stop();
  Options o = c.OptionsFor(1);
  o.handshake_timeout_ms = 100;
  auto t = PeerTransport::Start(o, &c.h(1));
  ASSERT_TRUE(t.ok());
  testing::internal::CaptureStderr();
  RawPeer r(c.ports[1]);
  std::string challenge;
  ASSERT_TRUE(r.ReadFrame(&challenge));
  auto start = Clock::now();
  EXPECT_TRUE(r.WaitClosed());  // we never answer
  EXPECT_LT(Clock::now() - start, 3s);
  (*t)->Stop();
  std::string log = testing::internal::GetCapturedStderr();
  EXPECT_NE(log.find("refused: handshake timed out"), std::string::npos) << log;
}

// A member whose frames are bad loses its connection; other members are not affected.
class BadFrameTest : public testing::TestWithParam<int> {};

TEST_P(BadFrameTest, ClosesOnlyThatConnection) {
  Cluster c(2);
  c.ConnectAll();
  // Member 3 is configured at member 1 (at an address nobody listens on) and speaks from a raw
  // socket.
  c.members[1]->Stop();
  c.members.erase(1);
  c.ports[3] = FreePort();
  auto connects_before = c[2].stats().connects;
  c.Start(1);
  ASSERT_TRUE(Eventually([&] { return c[2].stats().connects > connects_before; }));
  c.members[2]->Reopen(1);
  RawPeer r(c.ports[1]);
  ASSERT_TRUE(r.Handshake("ensemble-secret", 3, 1).ok());
  std::string frames;
  AppendFrame(&frames, Msg(7).SerializeAsString());
  const std::string good = r.Seal(frames);
  std::string bad;
  switch (GetParam()) {
    case 0:  // bad CRC
      AppendFrame(&bad, Msg(8).SerializeAsString());
      bad[kFrameHeader + 3] ^= 0x40;
      bad = r.Seal(bad);
      break;
    case 1:  // oversized: only the header is needed
      bad.assign(kFrameHeader, '\0');
      for (int i = 0; i < 4; ++i) bad[i] = static_cast<char>((c.max_frame + 1) >> (8 * i));
      break;
    case 2:  // a valid frame that is not a PeerMessage
      AppendFrame(&bad, std::string("\xff\xff\xff\xff", 4));
      bad = r.Seal(bad);
      break;
    case 3: {  // altered in flight with the CRC fixed up: only the MAC can tell
      std::string altered;
      AppendFrame(&altered, Msg(8).SerializeAsString());
      bad = r.Seal(altered);
      std::string payload = Msg(9).SerializeAsString();
      ASSERT_EQ(payload.size(), altered.size() - kFrameHeader);
      std::string refit;
      AppendFrame(&refit, payload);
      bad.replace(0, refit.size(), refit);
      break;
    }
    case 4:  // a replay of the good frame, MAC and all
      bad = good;
      break;
  }
  testing::internal::CaptureStderr();
  ASSERT_TRUE(r.WriteBytes(good + bad));
  EXPECT_TRUE(r.WaitClosed());
  ASSERT_TRUE(c.h(1).WaitDisconnect(3));
  std::string log = testing::internal::GetCapturedStderr();
  const char* expect[] = {"has a bad CRC", "exceeds max_frame_bytes", "is not a PeerMessage",
                          "has a bad MAC", "has a bad MAC"};
  EXPECT_NE(log.find(expect[GetParam()]), std::string::npos) << log;
  auto ev = c.h(1).events();
  ASSERT_EQ(ev.size(), 2u);
  EXPECT_EQ(ev[0].peer, 3u);  // the good frame first, then the break
  EXPECT_EQ(ev[0].seq, 7u);
  EXPECT_TRUE(ev[1].disconnect);
  EXPECT_EQ(c[1].stats().bad_frames, 1u);
  // Members 1 and 2 still talk.
  ASSERT_TRUE(Eventually([&] { return c[1].stats().connects >= 1; }));
  c[1].Reopen(2);
  c[1].Send(2, Msg(1));
  c[2].Send(1, Msg(2));
  EXPECT_TRUE(c.h(2).WaitMessages(1, 1));
  EXPECT_TRUE(c.h(1).WaitMessages(2, 1));
  EXPECT_EQ(c.h(1).disconnects(2), 0u);
}

INSTANTIATE_TEST_SUITE_P(Kinds, BadFrameTest, testing::Values(0, 1, 2, 3, 4));

TEST(PeerTransportTest, DropsUntilReopen) {
  Cluster c(2, 1 << 20);
  c.ConnectAll();
  c[1].Send(2, Msg(1));
  ASSERT_TRUE(c.h(2).WaitMessages(1, 1));
  // A message over max_frame_bytes breaks the link from the sender's side.
  testing::internal::CaptureStderr();
  c[1].Send(2, Msg(999, 2 << 20));
  ASSERT_TRUE(c.h(1).WaitDisconnect(2));
  ASSERT_TRUE(c.h(2).WaitDisconnect(1));  // the peer notices: both directions were closed
  std::string log = testing::internal::GetCapturedStderr();
  EXPECT_NE(log.find("exceeds max_frame_bytes"), std::string::npos) << log;
  EXPECT_FALSE(c[1].is_open(2));
  for (uint64_t s = 2; s < 10; ++s) c[1].Send(2, Msg(s));  // dropped
  EXPECT_EQ(c[1].stats().frames_dropped, 8u);
  c[1].Reopen(2);
  for (uint64_t s = 10; s < 20; ++s) c[1].Send(2, Msg(s));  // queued, then delivered
  ASSERT_TRUE(c.h(2).WaitMessages(1, 11));
  auto got = Recorder::Messages(c.h(2).events(), 1);
  std::vector<uint64_t> want = {1};
  for (uint64_t s = 10; s < 20; ++s) want.push_back(s);
  EXPECT_EQ(got, want);
  // The other direction is still broken for member 2 until it reopens.
  c[2].Send(1, Msg(5));
  EXPECT_EQ(c[2].stats().frames_dropped, 1u);
  c[2].Reopen(1);
  c[2].Send(1, Msg(6));
  ASSERT_TRUE(c.h(1).WaitMessages(2, 1));
  EXPECT_EQ(Recorder::Messages(c.h(1).events(), 2), std::vector<uint64_t>{6});
  EXPECT_EQ(c.h(1).disconnects(2), 1u);
  EXPECT_EQ(c.h(2).disconnects(1), 1u);
}

// Dynamic membership (docs/reconfig.md): a peer added while running is dialed and accepted; a
// removed one is refused and sends to it are dropped, without an OnDisconnected for it.
TEST(PeerTransportTest, AddAndRemovePeersWhileRunning) {
  Cluster c(3, 1 << 20, 512 << 20, /*started=*/0);
  auto opts = [&](uint64_t id, std::vector<uint64_t> peers) {
    Options o = c.OptionsFor(id);
    o.peers.clear();
    for (uint64_t p : peers) o.peers.push_back({p, "127.0.0.1", c.ports[p]});
    return o;
  };
  for (auto [id, peers] :
       std::vector<std::pair<uint64_t, std::vector<uint64_t>>>{{1, {2}}, {2, {1}}, {3, {1, 2}}}) {
    auto t = PeerTransport::Start(opts(id, peers), c.handlers[id].get());
    ASSERT_TRUE(t.ok()) << t.status().ToString();
    c.members[id] = std::move(t).value();
  }
  testing::internal::CaptureStderr();
  // Member 1 does not know 3 yet: 3's dials are refused.
  ASSERT_TRUE(Eventually([&] { return c[1].stats().auth_failures > 0; }));
  c[1].Send(3, Msg(1));  // not a peer: dropped, not a crash
  c[1].Reopen(3);
  c[1].Close(3);
  EXPECT_FALSE(c[1].is_open(3));
  EXPECT_EQ(c[1].queued_bytes(3), 0u);
  EXPECT_EQ(c[1].stats().frames_dropped, 1u);
  EXPECT_TRUE(c[1].AddPeer({3, "127.0.0.1", c.ports[3]}));
  EXPECT_FALSE(c[1].AddPeer({3, "127.0.0.1", c.ports[3]}));  // already, at that address
  EXPECT_EQ(c[1].peers(), (std::vector<uint64_t>{2, 3}));
  c[1].Send(3, Msg(2));  // the new link's gate is open
  ASSERT_TRUE(c.h(3).WaitMessages(1, 1));
  c[3].Reopen(1);
  ASSERT_TRUE(Eventually([&] {
    c[3].Send(1, Msg(7));
    return !Recorder::Messages(c.h(1).events(), 3).empty();
  }));
  // Removed: both connections end without an OnDisconnected here; 3's redials are refused.
  EXPECT_TRUE(c[1].RemovePeer(3));
  EXPECT_FALSE(c[1].RemovePeer(3));
  EXPECT_EQ(c[1].peers(), std::vector<uint64_t>{2});
  ASSERT_TRUE(c.h(3).WaitDisconnect(1));
  uint64_t failures = c[1].stats().auth_failures;
  ASSERT_TRUE(Eventually([&] { return c[1].stats().auth_failures > failures; }));
  const uint64_t dropped = c[1].stats().frames_dropped;
  c[1].Send(3, Msg(3));
  EXPECT_EQ(c[1].stats().frames_dropped, dropped + 1);
  EXPECT_EQ(c.h(1).disconnects(3), 0u);
  std::string log = testing::internal::GetCapturedStderr();
  EXPECT_NE(log.find("unknown member id 3"), std::string::npos) << log;
}

// Guests (docs/reconfig.md, "Joining servers"): a server that is not a peer of member 1 dials
// it; with accept_guests member 1 takes it as a peer at the address its Hello gave and dials it
// back, so messages flow both ways. Removed, it comes back as a guest when it redials.
TEST(PeerTransportTest, GuestIsAcceptedAndDialedBack) {
  Cluster c(2, 1 << 20, 512 << 20, /*started=*/0);
  Options o1 = c.OptionsFor(1);
  o1.peers.clear();
  o1.accept_guests = true;
  auto t1 = PeerTransport::Start(o1, c.handlers[1].get());
  ASSERT_TRUE(t1.ok()) << t1.status().ToString();
  c.members[1] = std::move(t1).value();
  c.Start(2);  // knows member 1
  c[2].Reopen(1);
  ASSERT_TRUE(Eventually([&] {
    c[2].Send(1, Msg(1));
    return !Recorder::Messages(c.h(1).events(), 2).empty();
  }));
  ASSERT_EQ(c.h(1).guests().size(), 1u);
  EXPECT_EQ(c.h(1).guests()[0].id, 2u);
  EXPECT_EQ(c.h(1).guests()[0].host, "127.0.0.1");
  EXPECT_EQ(c.h(1).guests()[0].port, c.ports[2]);
  EXPECT_EQ(c[1].peers(), std::vector<uint64_t>{2});
  EXPECT_TRUE(c[1].is_open(2));  // a new link: its gate is open, as after AddPeer
  c[1].Send(2, Msg(5));
  ASSERT_TRUE(c.h(2).WaitMessages(1, 1));
  EXPECT_EQ(Recorder::Messages(c.h(2).events(), 1), std::vector<uint64_t>{5});
  EXPECT_EQ(c[1].stats().auth_failures, 0u);
  // Removed by its owner: member 2's link breaks, it redials and is a guest again.
  EXPECT_TRUE(c[1].RemovePeer(2));
  ASSERT_TRUE(c.h(2).WaitDisconnect(1));
  c[2].Reopen(1);
  ASSERT_TRUE(Eventually([&] { return c.h(1).guests().size() == 2; }));
  EXPECT_EQ(c[1].peers(), std::vector<uint64_t>{2});
  EXPECT_EQ(c.h(1).disconnects(2), 0u);
}

// A guest needs the option, a listen port in its Hello and the secret; the reasons say which.
TEST(PeerTransportTest, GuestsNeedTheOptionAListenPortAndTheSecret) {
  Cluster c(1, 1 << 20, 512 << 20, /*started=*/0);
  Options o = c.OptionsFor(1);
  o.accept_guests = true;
  auto t = PeerTransport::Start(o, c.handlers[1].get());
  ASSERT_TRUE(t.ok()) << t.status().ToString();
  c.members[1] = std::move(t).value();
  testing::internal::CaptureStderr();
  {
    RawPeer r(c.ports[1]);  // an older member's Hello: no listen address
    Welcome w = r.Handshake("ensemble-secret", 99, 1);
    EXPECT_FALSE(w.ok());
    EXPECT_EQ(w.reason(),
              "unknown member id 99, and it gave no listen port to be taken as a guest");
  }
  {
    RawPeer r(c.ports[1]);
    Welcome w = r.Handshake("not-the-secret", 99, 1, kProtocolVersion, 4000);
    EXPECT_FALSE(w.ok());
    EXPECT_EQ(w.reason(), "wrong secret (HMAC mismatch) from member 99");
  }
  {
    RawPeer r(c.ports[1]);
    Welcome w = r.Handshake("ensemble-secret", 1, 1, kProtocolVersion, 4000);  // itself
    EXPECT_FALSE(w.ok());
    EXPECT_EQ(w.reason(), "unknown member id 1");
  }
  EXPECT_TRUE(c[1].peers().empty());
  EXPECT_TRUE(c.h(1).guests().empty());
  const int port = FreePort();  // nobody listens: member 1's dial-back fails quietly
  {
    RawPeer r(c.ports[1]);
    Welcome w = r.Handshake("ensemble-secret", 99, 1, kProtocolVersion, port);
    EXPECT_TRUE(w.ok()) << w.reason();
    ASSERT_TRUE(Eventually([&] { return c[1].peers() == std::vector<uint64_t>{99}; }));
  }
  ASSERT_EQ(c.h(1).guests().size(), 1u);
  EXPECT_EQ(c.h(1).guests()[0].host, "127.0.0.1");  // none given: where it came from
  EXPECT_EQ(c.h(1).guests()[0].port, port);
  EXPECT_EQ(c[1].stats().auth_failures, 3u);
  c[1].Stop();
  std::string log = testing::internal::GetCapturedStderr();
  EXPECT_NE(log.find("member 99 is not a peer: accepted as a guest, at 127.0.0.1:"),
            std::string::npos)
      << log;
}

TEST(PeerTransportTest, QueueOverCapBreaksTheLink) {
  // The cap is above what the socket buffers hold, so a write is in flight when it trips.
  Cluster c(2, 16 << 20, 32 << 20);
  c.ConnectAll();
  // Member 2's handler blocks, so it stops reading: the socket buffers fill, then 1's queue.
  std::mutex mu;
  std::condition_variable cv;
  bool release = false;
  c.h(2).SetOnMessage([&] {
    std::unique_lock<std::mutex> l(mu);
    cv.wait_for(l, kWait, [&] { return release; });
  });
  testing::internal::CaptureStderr();
  // Counted before the break: the redial after it may finish before the checks below.
  auto connects = c[1].stats().connects;
  for (int i = 0; i < 200000 && c.h(1).disconnects(2) == 0; ++i) c[1].Send(2, Msg(i, 1024));
  EXPECT_TRUE(c.h(1).WaitDisconnect(2));
  EXPECT_FALSE(c[1].is_open(2));
  EXPECT_EQ(c[1].queued_bytes(2), 0u);
  {
    std::lock_guard<std::mutex> g(mu);
    release = true;
  }
  cv.notify_all();
  ASSERT_TRUE(c.h(2).WaitDisconnect(1));
  std::string log = testing::internal::GetCapturedStderr();
  EXPECT_NE(log.find("more than max_queued_bytes (33554432) queued for it"), std::string::npos)
      << log;
  // Member 2 got a prefix of what was sent, in order, then the break.
  auto got = Recorder::Messages(c.h(2).events(), 1);
  for (size_t i = 0; i < got.size(); ++i) ASSERT_EQ(got[i], i);
  // The link works again once reopened (a write was in flight when it broke).
  c.h(2).SetOnMessage(nullptr);
  ASSERT_TRUE(Eventually([&] { return c[1].stats().connects > connects; }));
  c[1].Reopen(2);
  c[1].Send(2, Msg(1 << 30));
  ASSERT_TRUE(c.h(2).WaitFor([](const std::vector<Event>& ev) {
    return !ev.empty() && !ev.back().disconnect && ev.back().seq == (1 << 30);
  }));
}

TEST(PeerTransportTest, DisconnectThenDeliveryResumesAfterRestartAndReopen) {
  Cluster c(2);
  c.ConnectAll();
  c[1].Send(2, Msg(1));
  c[2].Send(1, Msg(1));
  ASSERT_TRUE(c.h(2).WaitMessages(1, 1));
  ASSERT_TRUE(c.h(1).WaitMessages(2, 1));
  c.members[2]->Stop();
  c.members.erase(2);
  ASSERT_TRUE(c.h(1).WaitDisconnect(2));
  EXPECT_EQ(c.h(1).disconnects(2), 1u);  // one break, though both directions went
  c[1].Send(2, Msg(2));                  // dropped
  EXPECT_EQ(c[1].stats().frames_dropped, 1u);

  auto connects_before = c[1].stats().connects;
  c.handlers[2] = std::make_unique<Recorder>();
  c.Start(2);  // same port
  ASSERT_TRUE(Eventually([&] { return c[1].stats().connects > connects_before; }));
  ASSERT_TRUE(Eventually([&] { return c[2].stats().connects >= 1; }));
  c[1].Reopen(2);
  c[2].Reopen(1);
  c[1].Send(2, Msg(3));
  c[2].Send(1, Msg(4));
  ASSERT_TRUE(c.h(2).WaitMessages(1, 1));
  ASSERT_TRUE(c.h(1).WaitMessages(2, 2));
  EXPECT_EQ(Recorder::Messages(c.h(2).events(), 1), std::vector<uint64_t>{3});
  EXPECT_EQ(Recorder::Messages(c.h(1).events(), 2), (std::vector<uint64_t>{1, 4}));
  EXPECT_EQ(c.h(1).disconnects(2), 1u);
}

TEST(PeerTransportTest, CloseStartsAFreshStreamWithoutReportingIt) {
  Cluster c(2);
  c.ConnectAll();
  c[1].Send(2, Msg(1));
  ASSERT_TRUE(c.h(2).WaitMessages(1, 1));
  c[1].Close(2);
  for (uint64_t s = 2; s <= 50; ++s) c[1].Send(2, Msg(s));  // on the next connection
  ASSERT_TRUE(c.h(2).WaitMessages(1, 50));
  auto ev = c.h(2).events();
  ASSERT_EQ(ev.size(), 51u);
  EXPECT_EQ(ev[0].seq, 1u);
  EXPECT_TRUE(ev[1].disconnect);  // the peer sees the old stream end before the new one
  for (uint64_t s = 2; s <= 50; ++s) EXPECT_EQ(ev[s].seq, s);
  EXPECT_EQ(c.h(1).disconnects(2), 0u);
  EXPECT_TRUE(c[1].is_open(2));
  c[2].Reopen(1);
  c[2].Send(1, Msg(7));
  ASSERT_TRUE(c.h(1).WaitMessages(2, 1));
  EXPECT_EQ(c.h(1).disconnects(2), 0u);
}

TEST(PeerTransportTest, ReopenWhileThePeerIsDownReportsItAgain) {
  Cluster c(2);
  c.ConnectAll();
  c.members[2]->Stop();
  c.members.erase(2);
  ASSERT_TRUE(c.h(1).WaitDisconnect(2));
  c[1].Reopen(2);
  c[1].Send(2, Msg(1));  // queued until the next dial attempt fails
  ASSERT_TRUE(c.h(1).WaitDisconnect(2, 2));
  EXPECT_FALSE(c[1].is_open(2));
}

TEST(PeerTransportTest, LargeMessages) {
  Cluster c(2, 9 << 20);
  c.ConnectAll();
  constexpr int kN = 6;
  for (int i = 0; i < kN; ++i) c[1].Send(2, Msg(i, (8 << 20) - i * 1000));
  c[1].Send(2, Msg(kN));  // a small one after them
  EXPECT_GT(c[1].queued_bytes(2), 0u);
  ASSERT_TRUE(c.h(2).WaitMessages(1, kN + 1));
  auto ev = c.h(2).events();
  ASSERT_EQ(ev.size(), static_cast<size_t>(kN + 1));
  for (int i = 0; i <= kN; ++i) {
    EXPECT_EQ(ev[i].seq, static_cast<uint64_t>(i));
    EXPECT_TRUE(ev[i].intact) << i;
  }
  EXPECT_EQ(ev[0].size, size_t{8 << 20});
  EXPECT_TRUE(Eventually([&] { return c[1].queued_bytes(2) == 0; }));
}

TEST(PeerTransportTest, StopIsCleanUnderTraffic) {
  Cluster c(2);
  c.ConnectAll();
  std::atomic<bool> run{true};
  std::thread sender([&] {
    for (uint64_t s = 0; run; ++s) {
      c[1].Send(2, Msg(s, 512));
      if (s % 64 == 0) std::this_thread::yield();
    }
  });
  ASSERT_TRUE(c.h(2).WaitMessages(1, 1000));
  c[2].Stop();
  c.h(2).MarkClosed();  // any handler call from now on is a bug
  c[2].Stop();          // idempotent
  std::this_thread::sleep_for(50ms);
  run = false;
  sender.join();
  c[2].Send(1, Msg(1));  // harmless after Stop
  EXPECT_EQ(c.h(2).late_calls(), 0);
}

TEST(PeerTransportTest, StopFromAHandler) {
  Cluster c(2);
  c.ConnectAll();
  PeerTransport* t2 = c.members[2].get();
  c.h(2).SetOnMessage([&] {
    t2->Stop();
    c.h(2).MarkClosed();
  });
  for (int i = 0; i < 100; ++i) c[1].Send(2, Msg(i));
  ASSERT_TRUE(c.h(2).WaitMessages(1, 1));
  std::this_thread::sleep_for(20ms);
  c.members[2].reset();  // joins the I/O thread
  EXPECT_EQ(c.h(2).late_calls(), 0);
  EXPECT_EQ(Recorder::Messages(c.h(2).events(), 1).size(), 1u);
}

TEST(PeerTransportTest, ThroughputAndLatencyOfOneKiBMessages) {
  Cluster c(2);
  c.ConnectAll();
  c.h(2).check_payload = false;
  // One-way throughput, 1 -> 2.
#if defined(__SANITIZE_THREAD__) || defined(__SANITIZE_ADDRESS__)
  constexpr uint64_t kN = 20000;  // sanitizers are several times slower: keep the test short
#else
  constexpr uint64_t kN = 200000;
#endif
  const peer::PeerMessage m = Msg(0, 1024);
  auto t0 = Clock::now();
  for (uint64_t s = 0; s < kN; ++s) {
    c[1].Send(2, m);
    // Pace the sender a little so the test measures the link, not an ever-growing queue.
    if (s % 4096 == 0) {
      while (c[1].queued_bytes(2) > (8 << 20)) std::this_thread::yield();
    }
  }
  ASSERT_TRUE(c.h(2).WaitMessages(1, kN));
  double secs = std::chrono::duration<double>(Clock::now() - t0).count();
  printf("[ transport ] %llu x 1 KiB one way: %.0f msgs/s, %.1f MiB/s\n",
         static_cast<unsigned long long>(kN), kN / secs, kN * 1024.0 / secs / (1 << 20));

  // Round trips: 2 echoes each message back.
  std::mutex mu;
  std::condition_variable cv;
  uint64_t echoed = 0;
  PeerTransport* t2 = c.members[2].get();
  c.h(2).SetOnMessage([&] { t2->Send(1, m); });
  c.h(1).SetOnMessage([&] {
    std::lock_guard<std::mutex> g(mu);
    echoed++;
    cv.notify_all();
  });
  constexpr int kRounds = 2000;
  std::vector<double> us;
  for (int i = 0; i < kRounds; ++i) {
    auto s = Clock::now();
    c[1].Send(2, m);
    std::unique_lock<std::mutex> l(mu);
    ASSERT_TRUE(cv.wait_for(l, kWait, [&] { return echoed > static_cast<uint64_t>(i); }));
    us.push_back(std::chrono::duration<double, std::micro>(Clock::now() - s).count());
  }
  std::sort(us.begin(), us.end());
  printf("[ transport ] 1 KiB round trip: p50 %.0f us, p99 %.0f us\n", us[us.size() / 2],
         us[us.size() * 99 / 100]);
}

// Options::io: the transport runs on its owner's loop. Every handler call happens on the thread
// that runs it, messages flow in order both ways, and Stop() after the loop ended makes no late
// call.
TEST(PeerTransportTest, RunsOnTheOwnersLoop) {
  asio::io_context io;
  auto work = asio::make_work_guard(io);
  std::atomic<std::thread::id> loop_id{};
  std::thread loop([&] {
    loop_id = std::this_thread::get_id();
    io.run();
  });
  int ports[3] = {0, FreePort(), FreePort()};
  Recorder h[3];
  std::atomic<int> off_loop{0};
  for (int i = 1; i <= 2; ++i)
    h[i].SetOnMessage([&] {
      if (std::this_thread::get_id() != loop_id.load()) off_loop++;
    });
  std::unique_ptr<PeerTransport> t[3];
  for (int i = 1; i <= 2; ++i) {
    Options o;
    o.self_id = i;
    o.listen_host = "127.0.0.1";
    o.listen_port = ports[i];
    o.peers.push_back({static_cast<uint64_t>(3 - i), "127.0.0.1", ports[3 - i]});
    o.secret = "ensemble-secret";
    o.connect_retry_ms = 5;
    o.connect_retry_max_ms = 50;
    o.io = &io;
    auto r = PeerTransport::Start(o, &h[i]);
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    t[i] = std::move(r).value();
  }
  for (int i = 1; i <= 2; ++i)
    ASSERT_TRUE(Eventually([&] { return t[i]->stats().connects >= 1; })) << i;
  t[1]->Reopen(2);
  t[2]->Reopen(1);
  constexpr uint64_t kN = 500;
  for (uint64_t s = 1; s <= kN; ++s) {
    t[1]->Send(2, Msg(s, 100));
    t[2]->Send(1, Msg(s, 100));
  }
  ASSERT_TRUE(h[2].WaitMessages(1, kN));
  ASSERT_TRUE(h[1].WaitMessages(2, kN));
  for (int i = 1; i <= 2; ++i) {
    auto got = Recorder::Messages(h[i].events(), 3 - i);
    ASSERT_EQ(got.size(), kN);
    for (uint64_t s = 1; s <= kN; ++s) EXPECT_EQ(got[s - 1], s);
  }
  EXPECT_EQ(off_loop.load(), 0);
  work.reset();
  io.stop();
  loop.join();
  for (int i = 1; i <= 2; ++i) {
    h[i].MarkClosed();
    t[i]->Stop();
  }
  t[1].reset();
  t[2].reset();
  EXPECT_EQ(h[1].late_calls() + h[2].late_calls(), 0);
}

}  // namespace
}  // namespace qfs::transport
