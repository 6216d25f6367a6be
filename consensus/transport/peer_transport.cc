#include "consensus/transport/peer_transport.h"

#include <pthread.h>

#include <algorithm>
#include <asio.hpp>
#include <asio/ssl.hpp>
#include <atomic>
#include <chrono>
#include <cinttypes>
#include <cstring>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <shared_mutex>
#include <thread>

#include "consensus/proto/transport.pb.h"
#include "consensus/transport/frame.h"
#include "consensus/transport/frame_mac.h"
#include "consensus/transport/handshake.h"
#include "consensus/util/log.h"
#include "consensus/util/sha256.h"

namespace qfs::transport {
namespace {

using asio::ip::tcp;

constexpr size_t kReadChunk = 256 << 10;  // read syscalls take at least this much room
// Buffers that grew past this for a large message are released once idle.
constexpr size_t kKeepBuffer = 4 << 20;
// Connections still in the handshake beyond this are closed at once, so strangers cannot hold
// many descriptors (a member needs one at a time).
constexpr int kMaxHandshaking = 64;

// A peer connection's byte stream: the TCP socket, or TLS over it (sslQuorum). It is an Asio
// stream, so asio::async_read/async_write compose over either.
class PeerStream {
 public:
  using executor_type = tcp::socket::executor_type;
  explicit PeerStream(asio::io_context& io) : sock_(io) {}
  explicit PeerStream(tcp::socket&& s) : sock_(std::move(s)) {}
  tcp::socket& socket() { return sock_; }
  const tcp::socket& socket() const { return sock_; }
  executor_type get_executor() { return sock_.get_executor(); }
  asio::ssl::stream<tcp::socket&>& UseTls(asio::ssl::context& ctx) {
    tls_ = std::make_unique<asio::ssl::stream<tcp::socket&>>(sock_, ctx);
    return *tls_;
  }
  asio::ssl::stream<tcp::socket&>* tls() { return tls_.get(); }
  template <typename Buffers, typename Handler>
  void async_read_some(const Buffers& b, Handler&& h) {
    if (tls_) {
      tls_->async_read_some(b, std::forward<Handler>(h));
    } else {
      sock_.async_read_some(b, std::forward<Handler>(h));
    }
  }
  template <typename Buffers, typename Handler>
  void async_write_some(const Buffers& b, Handler&& h) {
    if (tls_) {
      tls_->async_write_some(b, std::forward<Handler>(h));
    } else {
      sock_.async_write_some(b, std::forward<Handler>(h));
    }
  }
  void close(std::error_code& ec) { sock_.close(ec); }
  template <typename Option>
  void set_option(const Option& o, std::error_code& ec) {
    sock_.set_option(o, ec);
  }

 private:
  tcp::socket sock_;  // declared first: the TLS layer refers to it and goes first
  std::unique_ptr<asio::ssl::stream<tcp::socket&>> tls_;
};

// Whether a peer's certificate names `host` (an IP SAN for an address, else a DNS SAN or CN).
bool CertNamesHost(X509* cert, const std::string& host) {
  if (!cert) return false;
  std::error_code ec;
  asio::ip::make_address(host, ec);
  if (!ec) return X509_check_ip_asc(cert, host.c_str(), 0) == 1;
  return X509_check_host(cert, host.c_str(), host.size(), 0, nullptr) == 1;
}

std::string EndpointText(const PeerStream& s) {
  std::error_code ec;
  auto ep = s.socket().remote_endpoint(ec);
  if (ec) return "?";
  return ep.address().to_string() + ":" + std::to_string(ep.port());
}

void ReleaseIfLarge(std::string* s) {
  if (s->capacity() > kKeepBuffer) {
    std::string().swap(*s);
  } else {
    s->clear();
  }
}

// Reads one handshake frame (bounded by kMaxHandshakeFrame) into *buf, then calls
// done(error, payload); error is empty on success.
void AsyncReadSmallFrame(PeerStream& sock, std::string* buf,
                         std::function<void(std::string, std::string_view)> done) {
  buf->assign(kFrameHeader, '\0');
  asio::async_read(
      sock, asio::buffer(buf->data(), kFrameHeader),
      [&sock, buf, done = std::move(done)](std::error_code ec, size_t) mutable {
        if (ec) return done(ec == asio::error::eof ? "closed by the peer" : ec.message(), {});
        std::string_view payload;
        size_t frame_size = 0;
        if (DecodeFrame(*buf, kMaxHandshakeFrame, &payload, &frame_size) ==
            FrameStatus::kTooLarge) {
          return done("handshake frame of " + std::to_string(frame_size) + " bytes", {});
        }
        buf->resize(frame_size);
        asio::async_read(
            sock, asio::buffer(buf->data() + kFrameHeader, frame_size - kFrameHeader),
            [buf, done = std::move(done)](std::error_code ec2, size_t) {
              if (ec2) {
                return done(ec2 == asio::error::eof ? "closed by the peer" : ec2.message(), {});
              }
              std::string_view p;
              size_t fs = 0;
              if (DecodeFrame(*buf, kMaxHandshakeFrame, &p, &fs) != FrameStatus::kOk) {
                return done("handshake frame with a bad checksum", {});
              }
              done("", p);
            });
      });
}

std::string FrameOf(const google::protobuf::MessageLite& m) {
  std::string out;
  AppendFrame(&out, m.SerializeAsString());
  return out;
}

// Serializes into a per-thread buffer reused across sends, so steady sending does not allocate.
std::string& Scratch() {
  thread_local std::string scratch;
  return scratch;
}

}  // namespace

// Our outgoing connection to a peer.
struct OutConn {
  explicit OutConn(asio::io_context& io) : sock(io), resolver(io), timer(io) {}
  void Close() {
    closed = true;
    std::error_code ec;
    sock.close(ec);
    resolver.cancel();
    timer.cancel();
  }
  PeerStream sock;
  tcp::resolver resolver;
  asio::steady_timer timer;
  std::string hbuf;   // handshake frames
  std::string nonce;  // ours, for the Welcome's proof
  std::string wbuf;   // the batch being written: its frames, each followed by its MAC tag
  std::unique_ptr<FrameMac> mac;  // set when the handshake succeeds
  char eof_probe[1];  // the acceptor never speaks after Welcome: any read ends the connection
  bool closed = false;
  bool ready = false;  // handshake done
};

// A connection a peer (or a stranger) dialed to us.
struct InConn {
  explicit InConn(tcp::socket&& s, asio::io_context& io) : sock(std::move(s)), timer(io) {}
  void Close() {
    closed = true;
    LeaveHandshake();
    std::error_code ec;
    sock.close(ec);
    timer.cancel();
  }
  void LeaveHandshake() {
    if (handshaking) --*handshaking;
    handshaking = nullptr;
  }
  PeerStream sock;
  asio::steady_timer timer;
  std::string remote;
  std::string nonce;
  std::string hbuf;
  uint64_t from = 0;              // set once authenticated
  std::unique_ptr<FrameMac> mac;  // set when the dialer is authenticated
  std::string buf;                // received bytes; [head, tail) not yet decoded
  size_t head = 0;
  size_t tail = 0;
  size_t want = 0;  // size of the frame being received, once its header is in
  bool closed = false;
  int* handshaking = nullptr;  // the transport's count of connections in the handshake
};

struct Link {
  Link(PeerAddress a, asio::io_context& io) : addr(std::move(a)), retry_timer(io) {}
  const PeerAddress addr;
  // RemovePeer, or AddPeer with a new address, took it out of the transport (I/O thread): it
  // dials no more. The object lives on until the transport ends (handlers may still hold it).
  bool retired = false;

  // Shared with senders.
  mutable std::mutex mu;
  bool open = false;        // the gate
  bool owe_notice = false;  // a sender closed the gate: the I/O thread owes an OnDisconnected
  bool connected = false;   // writes may go to `out`
  bool writing = false;     // a write is in flight
  bool flush_posted = false;
  bool reset_posted = false;  // Close() asked the I/O thread to drop the current connections
  std::string pending;
  size_t writing_bytes = 0;

  // I/O thread only.
  std::shared_ptr<OutConn> out;
  std::shared_ptr<InConn> in;
  asio::steady_timer retry_timer;
  bool retry_armed = false;
  int backoff_ms = 0;
  std::string last_failure;  // repeated identical dial failures are logged at debug level
};

struct PeerTransport::Impl {
  explicit Impl(asio::io_context* external) : io(external ? *external : own_io) {}
  Options opt;
  // The listen address when it is one specific IP: outgoing links start from it too, so that a
  // member's peer traffic carries its own address both ways (docs/faults.md filters per pair).
  std::optional<asio::ip::address> local_addr;
  Handler* handler = nullptr;
  asio::io_context own_io;  // unused with Options::io
  asio::io_context& io;
  tcp::acceptor acceptor{io};
  asio::steady_timer accept_retry{io};
  // sslQuorum: the contexts of accepted and dialed connections (docs/tls.md).
  std::shared_ptr<asio::ssl::context> tls_server, tls_client;
  int handshaking = 0;  // I/O thread
  // I/O thread: refused dialers are logged once a minute per reason, with how many were quiet
  // since (a removed member keeps asking its former members, docs/reconfig.md).
  std::map<std::string, std::pair<std::chrono::steady_clock::time_point, uint64_t>> refusals;
  int port = 0;
  // The current peers by id, and their ids (AddPeer / RemovePeer change them under links_mu);
  // every Link ever made is owned by all_links until the transport ends.
  mutable std::shared_mutex links_mu;
  std::map<uint64_t, Link*> links;
  std::vector<uint64_t> member_ids;
  std::vector<std::unique_ptr<Link>> all_links;
  std::thread thread;
  std::atomic<std::thread::id> io_thread_id{};
  std::atomic<bool> stopping{false};
  std::mutex stop_mu;
  bool cleaned_up = false;

  struct Counters {
    std::atomic<uint64_t> frames_sent{0}, frames_dropped{0}, bytes_sent{0}, frames_received{0},
        bytes_received{0}, connects{0}, accepts{0}, auth_failures{0}, bad_frames{0}, disconnects{0};
  } c;

  // The current link to `id`, or nullptr if it is not a peer (never was, or was removed).
  Link* Find(uint64_t id) const {
    std::shared_lock<std::shared_mutex> g(links_mu);
    auto it = links.find(id);
    return it == links.end() ? nullptr : it->second;
  }
  Link* MakeLink(const PeerAddress& p) {
    all_links.push_back(std::make_unique<Link>(p, io));
    Link* l = all_links.back().get();
    l->backoff_ms = opt.connect_retry_ms;
    links[p.id] = l;
    member_ids.clear();
    for (const auto& [id, x] : links) member_ids.push_back(id);
    return l;
  }
  void Retire(Link* l);
  // I/O thread: makes an accepted dialer that is not a peer one (Options::accept_guests).
  void AddGuest(const PeerAddress& at);

  // --- senders ---
  void SendMany(const uint64_t* to, size_t count, const peer::PeerMessage& msg);
  void Enqueue(Link* l, std::string_view frame);
  bool QueueRoom(Link* l, size_t bytes);
  void Queued(Link* l);
  void Seal(OutConn* oc);
  void CloseGateFromSender(Link* l, const char* why);

  // --- I/O thread ---
  void Accept();
  void StartIn(tcp::socket sock);
  void InHandshake(const std::shared_ptr<InConn>& ic, std::string_view payload);
  void InAuthenticated(const std::shared_ptr<InConn>& ic);
  void ReadIn(const std::shared_ptr<InConn>& ic);
  bool DecodeIn(const std::shared_ptr<InConn>& ic);
  void InFailed(const std::shared_ptr<InConn>& ic, const std::string& why);

  void Dial(Link* l);
  void OutConnected(Link* l, const std::shared_ptr<OutConn>& oc);
  void InChallenge(const std::shared_ptr<InConn>& ic);
  void ScheduleDial(Link* l);
  void OutHandshake(Link* l, const std::shared_ptr<OutConn>& oc, std::string_view payload);
  void OutReady(Link* l, const std::shared_ptr<OutConn>& oc);
  void OutFailed(Link* l, const std::shared_ptr<OutConn>& oc, const std::string& why);
  void Flush(Link* l);
  std::atomic<std::thread::id> flush_owner{};  // DeferFlushes' thread
  std::vector<Link*> deferred;                 // its links to flush (that thread only)
  void WriteBatch(Link* l, const std::shared_ptr<OutConn>& oc);

  void Break(Link* l, const std::string& why);
  void Reset(Link* l);
  void CloseConns(Link* l);
  void CleanUp();
};

PeerTransport::PeerTransport(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

PeerTransport::~PeerTransport() {
  Stop();
  QFS_CHECK(std::this_thread::get_id() != impl_->io_thread_id);
  std::lock_guard<std::mutex> g(impl_->stop_mu);
  if (impl_->thread.joinable()) impl_->thread.join();
  impl_->CleanUp();
}

Result<std::unique_ptr<PeerTransport>> PeerTransport::Start(Options options, Handler* handler) {
  if (options.self_id == 0) return InvalidArgument("transport: self_id must be non-zero");
  if (options.secret.empty()) return InvalidArgument("transport: the shared secret is empty");
  if (options.max_frame_bytes == 0 || options.max_frame_bytes > 0xffffffffu) {
    return InvalidArgument("transport: max_frame_bytes out of range");
  }
  if (options.connect_retry_ms <= 0 || options.handshake_timeout_ms <= 0) {
    return InvalidArgument("transport: retry and handshake timeouts must be positive");
  }
  options.connect_retry_max_ms = std::max(options.connect_retry_max_ms, options.connect_retry_ms);
  QFS_CHECK(handler != nullptr);

  auto impl = std::make_unique<Impl>(options.io);
  impl->handler = handler;
  impl->opt = options;
  for (const PeerAddress& p : options.peers) {
    if (p.id == 0 || p.id == options.self_id || impl->links.count(p.id)) {
      return InvalidArgument("transport: bad or duplicate peer id " + std::to_string(p.id));
    }
    impl->MakeLink(p);
  }
  if (impl->opt.use_tls) {
    tls::Options to = impl->opt.tls;
    to.client_auth = tls::ClientAuth::kNeed;  // both sides authenticate
    auto server = tls::MakeContext(to, tls::Role::kServer);
    if (!server.ok())
      return Status(server.status().code(), "sslQuorum: " + server.status().message());
    auto client = tls::MakeContext(to, tls::Role::kClient);
    if (!client.ok())
      return Status(client.status().code(), "sslQuorum: " + client.status().message());
    impl->tls_server = *server;
    impl->tls_client = *client;
  }

  std::error_code ec;
  tcp::resolver resolver(impl->io);
  auto eps = resolver.resolve(impl->opt.listen_host, std::to_string(impl->opt.listen_port),
                              tcp::resolver::passive, ec);
  if (ec || eps.empty()) {
    return InvalidArgument("transport: cannot resolve listen address " + impl->opt.listen_host +
                           ": " + ec.message());
  }
  tcp::endpoint ep = eps.begin()->endpoint();
  impl->acceptor.open(ep.protocol(), ec);
  if (!ec) impl->acceptor.set_option(tcp::acceptor::reuse_address(true), ec);
  if (!ec) impl->acceptor.bind(ep, ec);
  if (!ec) impl->acceptor.listen(asio::socket_base::max_listen_connections, ec);
  if (ec) {
    return Unavailable("transport: cannot listen on " + impl->opt.listen_host + ":" +
                       std::to_string(impl->opt.listen_port) + ": " + ec.message());
  }
  impl->port = impl->acceptor.local_endpoint().port();
  if (!ep.address().is_unspecified()) impl->local_addr = ep.address();
  QLOG_INFO("peer transport of member %" PRIu64 " listening on %s:%d", impl->opt.self_id,
            impl->opt.listen_host.c_str(), impl->port);

  Impl* raw = impl.get();
  asio::post(raw->io, [raw] {
    raw->Accept();
    std::vector<Link*> ls;
    {
      std::shared_lock<std::shared_mutex> g(raw->links_mu);
      for (auto& [id, l] : raw->links) ls.push_back(l);
    }
    for (Link* l : ls) raw->Dial(l);
  });
  if (raw->opt.io) return std::unique_ptr<PeerTransport>(new PeerTransport(std::move(impl)));
  raw->thread = std::thread([raw] {
    pthread_setname_np(pthread_self(), "qfs-peers");
    raw->io_thread_id = std::this_thread::get_id();
    raw->io.run();
  });
  return std::unique_ptr<PeerTransport>(new PeerTransport(std::move(impl)));
}

// ---------------------------------------------------------------------------------------------
// Sending

void PeerTransport::Send(uint64_t to, const peer::PeerMessage& msg) {
  impl_->SendMany(&to, 1, msg);
}

void PeerTransport::Send(const std::vector<uint64_t>& to, const peer::PeerMessage& msg) {
  impl_->SendMany(to.data(), to.size(), msg);
}

void PeerTransport::Impl::SendMany(const uint64_t* to, size_t count, const peer::PeerMessage& msg) {
  if (stopping.load(std::memory_order_relaxed)) return;
  const size_t n = msg.ByteSizeLong();
  if (n > opt.max_frame_bytes) {
    QLOG_ERROR("peer message of %zu bytes exceeds max_frame_bytes %zu; breaking the link", n,
               opt.max_frame_bytes);
    for (size_t i = 0; i < count; ++i) {
      if (Link* l = Find(to[i])) CloseGateFromSender(l, "a message exceeded max_frame_bytes");
    }
    return;
  }
  if (count == 1) {  // the common case: serialized straight into the link's queue
    Link* l = Find(to[0]);
    if (!l) {
      c.frames_dropped.fetch_add(1, std::memory_order_relaxed);
      return;
    }
    std::lock_guard<std::mutex> g(l->mu);
    if (!QueueRoom(l, kFrameHeader + n + kFrameTagBytes)) return;
    const size_t old_size = l->pending.size();
    l->pending.resize(old_size + kFrameHeader + n + kFrameTagBytes);
    char* at = l->pending.data() + old_size;
    msg.SerializeWithCachedSizesToArray(reinterpret_cast<uint8_t*>(at + kFrameHeader));
    WriteFrameHeader(at, static_cast<uint32_t>(n));
    Queued(l);
    return;
  }
  std::string& frame = Scratch();
  frame.resize(kFrameHeader + n);
  msg.SerializeWithCachedSizesToArray(reinterpret_cast<uint8_t*>(frame.data() + kFrameHeader));
  WriteFrameHeader(frame.data(), static_cast<uint32_t>(n));
  for (size_t i = 0; i < count; ++i) {
    if (Link* l = Find(to[i])) {
      Enqueue(l, frame);
    } else {
      c.frames_dropped.fetch_add(1, std::memory_order_relaxed);  // not a peer (any more)
    }
  }
  if (frame.capacity() > kKeepBuffer) std::string().swap(frame);
}

void PeerTransport::Impl::Enqueue(Link* l, std::string_view frame) {
  std::lock_guard<std::mutex> g(l->mu);
  if (!QueueRoom(l, frame.size() + kFrameTagBytes)) return;
  l->pending.append(frame);
  l->pending.append(kFrameTagBytes, '\0');
  Queued(l);
}

// Whether l->pending may take `bytes` more: one frame and the room for its MAC tag, which Seal
// fills in place (no copy of the batch). False, and nothing may be queued, if the link is
// closed or over its limit (then it breaks). Under l->mu.
bool PeerTransport::Impl::QueueRoom(Link* l, size_t bytes) {
  if (!l->open) {
    c.frames_dropped.fetch_add(1, std::memory_order_relaxed);
    return false;
  }
  if (opt.max_queued_bytes && l->pending.size() + bytes + l->writing_bytes > opt.max_queued_bytes) {
    l->open = false;
    l->owe_notice = true;
    l->connected = false;  // nothing more goes on this connection: it would follow a gap
    l->pending.clear();
    asio::post(io, [this, l] {
      Break(l, "more than max_queued_bytes (" + std::to_string(opt.max_queued_bytes) +
                   ") queued for it");
    });
    return false;
  }
  c.frames_sent.fetch_add(1, std::memory_order_relaxed);
  return true;
}

// A frame was queued: make sure a flush is coming. Under l->mu.
void PeerTransport::Impl::Queued(Link* l) {
  if (l->connected && !l->writing && !l->flush_posted) {
    l->flush_posted = true;
    if (std::this_thread::get_id() == flush_owner.load(std::memory_order_relaxed)) {
      deferred.push_back(l);
    } else {
      asio::post(io, [this, l] { Flush(l); });
    }
  }
}

void PeerTransport::DeferFlushes() {
  impl_->flush_owner.store(std::this_thread::get_id(), std::memory_order_relaxed);
}

void PeerTransport::FlushDeferred() {
  Impl& m = *impl_;
  QFS_CHECK(std::this_thread::get_id() == m.flush_owner.load(std::memory_order_relaxed));
  // Flush may queue nothing new for the owner, but read the list afresh each time anyway.
  for (size_t i = 0; i < m.deferred.size(); ++i) m.Flush(m.deferred[i]);
  m.deferred.clear();
}

void PeerTransport::Impl::CloseGateFromSender(Link* l, const char* why) {
  std::lock_guard<std::mutex> g(l->mu);
  if (!l->open) return;
  l->open = false;
  l->owe_notice = true;
  l->connected = false;
  l->pending.clear();
  std::string reason = why;
  asio::post(io, [this, l, reason] { Break(l, reason); });
}

void PeerTransport::Reopen(uint64_t peer) {
  Link* l = impl_->Find(peer);
  if (l == nullptr) return;
  std::lock_guard<std::mutex> g(l->mu);
  if (l->open) return;
  l->open = true;
  l->pending.clear();
}

void PeerTransport::Close(uint64_t peer) {
  Impl* im = impl_.get();
  Link* l = im->Find(peer);
  if (l == nullptr) return;
  {
    std::lock_guard<std::mutex> g(l->mu);
    l->open = true;
    l->owe_notice = false;
    l->connected = false;  // nothing more on the old connection
    l->pending.clear();
    l->reset_posted = true;
  }
  asio::post(im->io, [im, l] { im->Reset(l); });
}

// Closes and forgets both of the link's connections (io thread).
void PeerTransport::Impl::CloseConns(Link* l) {
  if (l->in) {
    l->in->Close();
    l->in.reset();
  }
  if (l->out) {
    l->out->Close();
    l->out.reset();
  }
}

void PeerTransport::Impl::Reset(Link* l) {
  CloseConns(l);
  {
    std::lock_guard<std::mutex> g(l->mu);
    l->connected = false;
    l->writing = false;  // a write in flight on the closed connection completes as aborted
    l->writing_bytes = 0;
    l->reset_posted = false;
  }
  QLOG_INFO("closed the link to member %" PRIu64 " on request", l->addr.id);
  ScheduleDial(l);
}

bool PeerTransport::is_open(uint64_t peer) const {
  Link* l = impl_->Find(peer);
  if (l == nullptr) return false;
  std::lock_guard<std::mutex> g(l->mu);
  return l->open;
}

size_t PeerTransport::queued_bytes(uint64_t peer) const {
  Link* l = impl_->Find(peer);
  if (l == nullptr) return 0;
  std::lock_guard<std::mutex> g(l->mu);
  return l->pending.size() + l->writing_bytes;
}

bool PeerTransport::AddPeer(const PeerAddress& peer) {
  Impl* im = impl_.get();
  if (peer.id == 0 || peer.id == im->opt.self_id || im->stopping) return false;
  Link* old = nullptr;
  Link* l = nullptr;
  {
    std::unique_lock<std::shared_mutex> g(im->links_mu);
    auto it = im->links.find(peer.id);
    if (it != im->links.end()) {
      if (it->second->addr.host == peer.host && it->second->addr.port == peer.port) return false;
      old = it->second;
    }
    l = im->MakeLink(peer);
  }
  {
    std::lock_guard<std::mutex> g(l->mu);
    l->open = true;  // a new link: nothing was sent on it before, so no gap to guard against
  }
  QLOG_INFO("peer transport: member %" PRIu64 " at %s:%d added", peer.id, peer.host.c_str(),
            peer.port);
  asio::post(im->io, [im, old, l] {
    if (old) im->Retire(old);
    im->Dial(l);
  });
  return true;
}

bool PeerTransport::RemovePeer(uint64_t id) {
  Impl* im = impl_.get();
  Link* l = nullptr;
  {
    std::unique_lock<std::shared_mutex> g(im->links_mu);
    auto it = im->links.find(id);
    if (it == im->links.end()) return false;
    l = it->second;
    im->links.erase(it);
    std::erase(im->member_ids, id);
  }
  {
    std::lock_guard<std::mutex> g(l->mu);
    l->open = false;
    l->owe_notice = false;
    l->connected = false;
    l->pending.clear();
  }
  QLOG_INFO("peer transport: member %" PRIu64 " removed", id);
  asio::post(im->io, [im, l] { im->Retire(l); });
  return true;
}

std::vector<uint64_t> PeerTransport::peers() const {
  std::shared_lock<std::shared_mutex> g(impl_->links_mu);
  return impl_->member_ids;
}

void PeerTransport::Impl::AddGuest(const PeerAddress& at) {
  if (stopping) return;
  Link* l = nullptr;
  {
    std::unique_lock<std::shared_mutex> g(links_mu);
    if (links.count(at.id)) return;  // the owner added it meanwhile
    l = MakeLink(at);
  }
  {
    std::lock_guard<std::mutex> g(l->mu);
    l->open = true;  // a new link: nothing was sent on it before
  }
  QLOG_INFO("peer transport: member %" PRIu64 " is not a peer: accepted as a guest, at %s:%d",
            at.id, at.host.c_str(), at.port);
  handler->OnGuest(at);
  Dial(l);
}

// I/O thread: a link taken out of the transport ends its connections and dials no more.
void PeerTransport::Impl::Retire(Link* l) {
  l->retired = true;
  CloseConns(l);
  l->retry_timer.cancel();
  std::lock_guard<std::mutex> g(l->mu);
  l->open = false;
  l->owe_notice = false;
  l->connected = false;
  l->pending.clear();
}

int PeerTransport::listen_port() const {
  return impl_->port;
}

void PeerTransport::Impl::Flush(Link* l) {
  {
    std::lock_guard<std::mutex> g(l->mu);
    l->flush_posted = false;
  }
  if (l->out && l->out->ready) WriteBatch(l, l->out);
}

// Writes everything queued as one batch; on completion, the next batch.
void PeerTransport::Impl::WriteBatch(Link* l, const std::shared_ptr<OutConn>& oc) {
  {
    std::lock_guard<std::mutex> g(l->mu);
    if (!l->connected || l->writing || l->pending.empty()) return;
    oc->wbuf.swap(l->pending);
    l->writing = true;
    l->writing_bytes = oc->wbuf.size();
  }
  Seal(oc.get());
  asio::async_write(oc->sock, asio::buffer(oc->wbuf), [this, l, oc](std::error_code ec, size_t n) {
    if (oc->closed) return;
    c.bytes_sent.fetch_add(n, std::memory_order_relaxed);
    {
      std::lock_guard<std::mutex> g(l->mu);
      l->writing = false;
      l->writing_bytes = 0;
    }
    ReleaseIfLarge(&oc->wbuf);
    if (ec) return OutFailed(l, oc, "write failed: " + ec.message());
    WriteBatch(l, oc);
  });
}

// Writes each frame's MAC tag (frame_mac.h) into the room queued after it. Senders queue
// frames without tags because the key and sequence numbers belong to the connection they end
// up on; sealing in place spares a copy of every byte sent.
void PeerTransport::Impl::Seal(OutConn* oc) {
  size_t pos = 0;
  while (pos < oc->wbuf.size()) {
    QFS_CHECK(oc->wbuf.size() - pos >= kFrameHeader + kFrameTagBytes);
    uint32_t len = 0;
    for (int i = 0; i < 4; ++i)
      len |= static_cast<uint32_t>(static_cast<uint8_t>(oc->wbuf[pos + i])) << (8 * i);
    const std::string_view frame(oc->wbuf.data() + pos, kFrameHeader + len);
    QFS_CHECK(pos + frame.size() + kFrameTagBytes <= oc->wbuf.size());
    oc->mac->NextTagInto(frame, oc->wbuf.data() + pos + frame.size());
    pos += frame.size() + kFrameTagBytes;
  }
}

// ---------------------------------------------------------------------------------------------
// Outgoing connections

void PeerTransport::Impl::ScheduleDial(Link* l) {
  if (stopping || l->retired || l->out || l->retry_armed) return;
  l->retry_armed = true;
  l->retry_timer.expires_after(std::chrono::milliseconds(l->backoff_ms));
  l->retry_timer.async_wait([this, l](std::error_code ec) {
    l->retry_armed = false;
    if (!ec) Dial(l);
  });
  l->backoff_ms = std::min(l->backoff_ms * 2, opt.connect_retry_max_ms);
}

void PeerTransport::Impl::Dial(Link* l) {
  if (stopping || l->retired || l->out) return;
  auto oc = std::make_shared<OutConn>(io);
  l->out = oc;
  oc->timer.expires_after(std::chrono::milliseconds(opt.handshake_timeout_ms));
  oc->timer.async_wait([this, l, oc](std::error_code ec) {
    if (!ec && !oc->closed && !oc->ready) OutFailed(l, oc, "timed out connecting");
  });
  oc->resolver.async_resolve(
      l->addr.host, std::to_string(l->addr.port),
      [this, l, oc](std::error_code ec, tcp::resolver::results_type eps) {
        if (oc->closed) return;
        if (ec) return OutFailed(l, oc, "cannot resolve: " + ec.message());
        auto connected = [this, l, oc](std::error_code ec2) {
          if (oc->closed) return;
          if (ec2) return OutFailed(l, oc, "cannot connect: " + ec2.message());
          std::error_code ignored;
          oc->sock.set_option(tcp::no_delay(true), ignored);
          if (!tls_client) return OutConnected(l, oc);
          auto& t = oc->sock.UseTls(*tls_client);
          if (opt.tls_verify_host) {
            t.set_verify_callback(asio::ssl::host_name_verification(l->addr.host));
          }
          t.async_handshake(asio::ssl::stream_base::client, [this, l, oc](std::error_code e3) {
            if (oc->closed) return;
            if (e3) return OutFailed(l, oc, "TLS handshake: " + e3.message());
            OutConnected(l, oc);
          });
        };
        if (!local_addr) {
          asio::async_connect(
              oc->sock.socket(), eps,
              [connected](std::error_code ec2, const tcp::endpoint&) { connected(ec2); });
          return;
        }
        // Bound to our own address: the first resolved address of its family.
        const tcp::endpoint local(*local_addr, 0);
        for (const auto& e : eps) {
          if (e.endpoint().protocol() != local.protocol()) continue;
          std::error_code bec;
          oc->sock.socket().open(local.protocol(), bec);
          if (!bec) oc->sock.socket().bind(local, bec);
          if (bec) return OutFailed(l, oc, "cannot bind to our address: " + bec.message());
          oc->sock.socket().async_connect(e.endpoint(), connected);
          return;
        }
        OutFailed(l, oc, "no address of our own address's family");
      });
}

// TCP connected (and TLS established): the transport's own handshake.
void PeerTransport::Impl::OutConnected(Link* l, const std::shared_ptr<OutConn>& oc) {
  AsyncReadSmallFrame(oc->sock, &oc->hbuf,
                      [this, l, oc](std::string err, std::string_view payload) {
                        if (oc->closed) return;
                        if (!err.empty()) return OutFailed(l, oc, "handshake: " + err);
                        OutHandshake(l, oc, payload);
                      });
}

void PeerTransport::Impl::OutHandshake(Link* l, const std::shared_ptr<OutConn>& oc,
                                       std::string_view payload) {
  Challenge ch;
  if (!ch.ParseFromArray(payload.data(), static_cast<int>(payload.size())) ||
      ch.magic() != kMagic) {
    return OutFailed(l, oc, "not a quorumfs peer port");
  }
  if (ch.version() != kProtocolVersion) {
    // Still answer: the acceptor logs the mismatch on its side too.
    QLOG_WARN("member %" PRIu64 " at %s:%d speaks peer protocol version %u vs ours %u", l->addr.id,
              l->addr.host.c_str(), l->addr.port, ch.version(), kProtocolVersion);
  }
  if (ch.acceptor_id() != l->addr.id) {
    return OutFailed(l, oc,
                     "found member " + std::to_string(ch.acceptor_id()) + " there, expected " +
                         std::to_string(l->addr.id));
  }
  auto nonce = RandomBytes(kNonceBytes);
  if (!nonce.ok()) return OutFailed(l, oc, nonce.status().ToString());
  oc->nonce = *nonce;
  Hello h;
  h.set_version(kProtocolVersion);
  h.set_dialer_id(opt.self_id);
  h.set_acceptor_id(l->addr.id);
  h.set_nonce(oc->nonce);
  h.set_mac(DialerMac(opt.secret, ch.nonce(), opt.self_id, l->addr.id));
  h.set_listen_host(opt.listen_host);
  h.set_listen_port(static_cast<uint32_t>(port));
  oc->hbuf = FrameOf(h);
  std::string key = FrameKey(opt.secret, ch.nonce(), oc->nonce, opt.self_id, l->addr.id);
  asio::async_write(
      oc->sock, asio::buffer(oc->hbuf), [this, l, oc, key](std::error_code ec, size_t) {
        if (oc->closed) return;
        if (ec) return OutFailed(l, oc, "handshake: " + ec.message());
        AsyncReadSmallFrame(
            oc->sock, &oc->hbuf, [this, l, oc, key](std::string err, std::string_view p) {
              if (oc->closed) return;
              if (!err.empty()) return OutFailed(l, oc, "handshake: " + err);
              Welcome w;
              if (!w.ParseFromArray(p.data(), static_cast<int>(p.size()))) {
                return OutFailed(l, oc, "handshake: unparsable welcome");
              }
              if (!w.ok()) return OutFailed(l, oc, "refused by the peer: " + w.reason());
              if (!ConstantTimeEqual(w.mac(),
                                     AcceptorMac(opt.secret, oc->nonce, l->addr.id, opt.self_id))) {
                return OutFailed(l, oc, "it did not prove the shared secret (wrong secret)");
              }
              oc->mac = std::make_unique<FrameMac>(key);
              OutReady(l, oc);
            });
      });
}

void PeerTransport::Impl::OutReady(Link* l, const std::shared_ptr<OutConn>& oc) {
  oc->ready = true;
  oc->timer.cancel();
  ReleaseIfLarge(&oc->hbuf);
  l->backoff_ms = opt.connect_retry_ms;
  l->last_failure.clear();
  c.connects.fetch_add(1, std::memory_order_relaxed);
  QLOG_INFO("connected to member %" PRIu64 " at %s:%d", l->addr.id, l->addr.host.c_str(),
            l->addr.port);
  {
    std::lock_guard<std::mutex> g(l->mu);
    // A connection made between Close() and its Reset() is about to be closed: messages sent
    // after Close() must not go on it.
    l->connected = !l->reset_posted;
  }
  WriteBatch(l, oc);
  oc->sock.async_read_some(asio::buffer(oc->eof_probe), [this, l, oc](std::error_code ec, size_t) {
    if (oc->closed) return;
    OutFailed(l, oc,
              ec ? (ec == asio::error::eof ? "closed by the peer" : ec.message())
                 : "unexpected bytes from the acceptor");
  });
}

void PeerTransport::Impl::OutFailed(Link* l, const std::shared_ptr<OutConn>& oc,
                                    const std::string& why) {
  if (oc->closed) return;
  const bool was_ready = oc->ready;
  bool gate_open;
  {
    std::lock_guard<std::mutex> g(l->mu);
    gate_open = l->open || l->owe_notice;
  }
  if (gate_open) {
    Break(l, (was_ready ? "connection lost: " : "cannot reach it: ") + why);
    return;
  }
  // The gate is closed: nothing was in flight, so just redial quietly.
  oc->Close();
  if (l->out == oc) l->out.reset();
  {
    std::lock_guard<std::mutex> g(l->mu);
    l->connected = false;
    l->writing = false;
    l->writing_bytes = 0;
  }
  if (why != l->last_failure) {
    QLOG_INFO("link to member %" PRIu64 " (%s:%d): %s; redialing", l->addr.id, l->addr.host.c_str(),
              l->addr.port, why.c_str());
    l->last_failure = why;
  } else {
    QLOG_DEBUG("link to member %" PRIu64 ": %s", l->addr.id, why.c_str());
  }
  ScheduleDial(l);
}

// ---------------------------------------------------------------------------------------------
// Breaking a link

void PeerTransport::Impl::Break(Link* l, const std::string& why) {
  const bool had_in = l->in != nullptr;
  CloseConns(l);
  bool was_open;
  {
    std::lock_guard<std::mutex> g(l->mu);
    was_open = l->open || l->owe_notice;
    l->open = false;
    l->owe_notice = false;
    l->connected = false;
    l->pending.clear();
    // A write in flight on the closed connection completes as aborted and touches nothing.
    l->writing = false;
    l->writing_bytes = 0;
  }
  ScheduleDial(l);
  if (l->retired || (!was_open && !had_in)) return;
  // Identical failures while the peer stays down are logged once.
  if (why != l->last_failure) {
    QLOG_WARN("link to member %" PRIu64 " (%s:%d) broken: %s", l->addr.id, l->addr.host.c_str(),
              l->addr.port, why.c_str());
    l->last_failure = why;
  } else {
    QLOG_DEBUG("link to member %" PRIu64 " broken: %s", l->addr.id, why.c_str());
  }
  if (stopping) return;
  c.disconnects.fetch_add(1, std::memory_order_relaxed);
  handler->OnDisconnected(l->addr.id);
}

// ---------------------------------------------------------------------------------------------
// Incoming connections

void PeerTransport::Impl::Accept() {
  acceptor.async_accept([this](std::error_code ec, tcp::socket sock) {
    if (stopping) return;
    if (!ec) {
      StartIn(std::move(sock));
      return Accept();
    }
    if (ec == asio::error::operation_aborted) return;
    // Out of descriptors, say: pause rather than spin.
    QLOG_WARN("peer port: accept failed: %s", ec.message().c_str());
    accept_retry.expires_after(std::chrono::milliseconds(100));
    accept_retry.async_wait([this](std::error_code e) {
      if (!e) Accept();
    });
  });
}

void PeerTransport::Impl::StartIn(tcp::socket sock) {
  auto ic = std::make_shared<InConn>(std::move(sock), io);
  ic->remote = EndpointText(ic->sock);
  if (handshaking >= kMaxHandshaking) {
    QLOG_WARN("peer connection from %s refused: %d connections already in the handshake",
              ic->remote.c_str(), handshaking);
    return ic->Close();
  }
  ++handshaking;
  ic->handshaking = &handshaking;
  std::error_code ignored;
  ic->sock.set_option(tcp::no_delay(true), ignored);
  auto nonce = RandomBytes(kNonceBytes);
  if (!nonce.ok()) {
    QLOG_ERROR("peer connection from %s: %s", ic->remote.c_str(),
               nonce.status().ToString().c_str());
    return ic->Close();
  }
  ic->nonce = *nonce;
  ic->timer.expires_after(std::chrono::milliseconds(opt.handshake_timeout_ms));
  ic->timer.async_wait([ic](std::error_code ec) {
    if (ec || ic->closed || ic->from != 0) return;
    QLOG_WARN("peer connection from %s refused: handshake timed out", ic->remote.c_str());
    ic->Close();
  });
  if (!tls_server) return InChallenge(ic);
  ic->sock.UseTls(*tls_server)
      .async_handshake(asio::ssl::stream_base::server, [this, ic](std::error_code ec) {
        if (ic->closed) return;
        if (ec) {
          // A stranger's certificate (or none) ends here: nothing it sends is read.
          QLOG_WARN("peer connection from %s refused: TLS handshake: %s", ic->remote.c_str(),
                    ec.message().c_str());
          c.auth_failures.fetch_add(1, std::memory_order_relaxed);
          return ic->Close();
        }
        InChallenge(ic);
      });
}

// The transport's handshake on an accepted connection (inside TLS with sslQuorum).
void PeerTransport::Impl::InChallenge(const std::shared_ptr<InConn>& ic) {
  Challenge ch;
  ch.set_magic(kMagic);
  ch.set_version(kProtocolVersion);
  ch.set_acceptor_id(opt.self_id);
  ch.set_nonce(ic->nonce);
  ic->hbuf = FrameOf(ch);
  asio::async_write(ic->sock, asio::buffer(ic->hbuf), [this, ic](std::error_code ec, size_t) {
    if (ic->closed) return;
    if (ec) {
      QLOG_WARN("peer connection from %s: handshake: %s", ic->remote.c_str(), ec.message().c_str());
      return ic->Close();
    }
    AsyncReadSmallFrame(ic->sock, &ic->hbuf, [this, ic](std::string err, std::string_view p) {
      if (ic->closed) return;
      if (!err.empty()) {
        QLOG_WARN("peer connection from %s refused: handshake: %s", ic->remote.c_str(),
                  err.c_str());
        c.auth_failures.fetch_add(1, std::memory_order_relaxed);
        return ic->Close();
      }
      InHandshake(ic, p);
    });
  });
}

void PeerTransport::Impl::InHandshake(const std::shared_ptr<InConn>& ic, std::string_view payload) {
  Hello h;
  std::string reason;
  if (!h.ParseFromArray(payload.data(), static_cast<int>(payload.size()))) {
    reason = "unparsable hello";
  } else {
    std::vector<uint64_t> members;
    {
      std::shared_lock<std::shared_mutex> g(links_mu);
      members = member_ids;
    }
    reason = CheckHello(h, ic->nonce, opt.self_id, members, opt.secret, opt.accept_guests);
  }
  // A dialer that is not a peer, accepted by CheckHello only with accept_guests: a guest, made
  // a peer at the listen address it gave (the address it comes from when it gave none).
  std::optional<PeerAddress> guest;
  if (reason.empty() && opt.accept_guests && Find(h.dialer_id()) == nullptr) {
    guest = PeerAddress{h.dialer_id(), h.listen_host(), static_cast<int>(h.listen_port())};
    // (A peer removed since CheckHello looked, from a member that gives no address.)
    if (guest->port == 0) reason = "member " + std::to_string(h.dialer_id()) + " was removed";
    std::error_code ec;
    const auto a = asio::ip::make_address(guest->host, ec);
    if (reason.empty() && (guest->host.empty() || (!ec && a.is_unspecified()))) {
      guest->host = ic->sock.socket().remote_endpoint(ec).address().to_string();
      if (ec) reason = "its address is unknown: " + ec.message();
    }
  }
  if (reason.empty() && guest && tls_server && opt.tls_verify_host &&
      !CertNamesHost(SSL_get0_peer_certificate(ic->sock.tls()->native_handle()), guest->host)) {
    reason = "its certificate does not name " + guest->host + ", the host it gave as a guest";
  }
  if (reason.empty() && !guest && tls_server && opt.tls_verify_host) {
    // The certificate must be one for the host of the member the dialer claims to be.
    const Link* claimed = Find(h.dialer_id());
    if (claimed == nullptr) {
      reason = "member " + std::to_string(h.dialer_id()) + " was removed";
    } else if (!CertNamesHost(SSL_get0_peer_certificate(ic->sock.tls()->native_handle()),
                              claimed->addr.host)) {
      reason = "its certificate does not name " + claimed->addr.host + ", the host of server." +
               std::to_string(h.dialer_id());
    }
  }
  Welcome w;
  if (reason.empty()) {
    w.set_ok(true);
    w.set_mac(AcceptorMac(opt.secret, h.nonce(), opt.self_id, h.dialer_id()));
  } else {
    const auto now = std::chrono::steady_clock::now();
    if (refusals.size() > 64) refusals.clear();  // reasons name the dialer's claimed id
    auto [it, fresh] = refusals.try_emplace(reason, now, 0);
    if (fresh || now - it->second.first >= std::chrono::minutes(1)) {
      std::string more =
          it->second.second == 0 ? "" : " (" + std::to_string(it->second.second) + " more since)";
      QLOG_WARN("peer connection from %s refused: %s%s", ic->remote.c_str(), reason.c_str(),
                more.c_str());
      it->second = {now, 0};
    } else {
      it->second.second++;
    }
    c.auth_failures.fetch_add(1, std::memory_order_relaxed);
    w.set_ok(false);
    w.set_reason(reason);
  }
  ic->hbuf = FrameOf(w);
  const uint64_t from = reason.empty() ? h.dialer_id() : 0;
  if (from != 0) {
    ic->mac =
        std::make_unique<FrameMac>(FrameKey(opt.secret, ic->nonce, h.nonce(), from, opt.self_id));
  }
  asio::async_write(ic->sock, asio::buffer(ic->hbuf),
                    [this, ic, from, guest](std::error_code ec, size_t) {
                      if (ic->closed) return;
                      // Refused: the Welcome says why, then we hang up.
                      if (ec || from == 0) return ic->Close();
                      ic->from = from;
                      if (guest) AddGuest(*guest);
                      InAuthenticated(ic);
                    });
}

void PeerTransport::Impl::InAuthenticated(const std::shared_ptr<InConn>& ic) {
  ic->LeaveHandshake();
  ic->timer.cancel();
  ReleaseIfLarge(&ic->hbuf);
  Link* l = Find(ic->from);
  if (l == nullptr) return ic->Close();  // removed during the handshake
  // A new stream from the peer means its previous one ended, maybe with a gap.
  if (l->in) Break(l, "it connected again, replacing its previous connection");
  l->in = ic;
  l->last_failure.clear();
  c.accepts.fetch_add(1, std::memory_order_relaxed);
  QLOG_INFO("accepted member %" PRIu64 " from %s", ic->from, ic->remote.c_str());
  ic->buf.resize(kReadChunk);
  ReadIn(ic);
}

void PeerTransport::Impl::ReadIn(const std::shared_ptr<InConn>& ic) {
  // Make room: at least kReadChunk, or the whole of a large frame being received.
  const size_t need = std::max(kReadChunk, ic->want);
  if (ic->buf.size() - ic->tail < kReadChunk || ic->buf.size() - ic->head < need) {
    if (ic->head > 0) {
      std::memmove(ic->buf.data(), ic->buf.data() + ic->head, ic->tail - ic->head);
      ic->tail -= ic->head;
      ic->head = 0;
    }
    if (ic->buf.size() - ic->tail < kReadChunk || ic->buf.size() < need) {
      ic->buf.resize(std::max(need, ic->tail + kReadChunk));
    }
  }
  ic->sock.async_read_some(
      asio::buffer(ic->buf.data() + ic->tail, ic->buf.size() - ic->tail),
      [this, ic](std::error_code ec, size_t n) {
        if (ic->closed) return;
        if (ec) return InFailed(ic, ec == asio::error::eof ? "closed by the peer" : ec.message());
        ic->tail += n;
        c.bytes_received.fetch_add(n, std::memory_order_relaxed);
        if (!DecodeIn(ic)) return;
        ReadIn(ic);
      });
}

// Delivers every complete frame; false if the connection was closed (or we are stopping).
bool PeerTransport::Impl::DecodeIn(const std::shared_ptr<InConn>& ic) {
  for (;;) {
    std::string_view payload;
    size_t size = 0;
    std::string_view avail(ic->buf.data() + ic->head, ic->tail - ic->head);
    FrameStatus st = DecodeFrame(avail, opt.max_frame_bytes, &payload, &size);
    if (st == FrameStatus::kIncomplete ||
        (st == FrameStatus::kOk && avail.size() < size + kFrameTagBytes)) {
      ic->want = size == 0 ? 0 : size + kFrameTagBytes;  // the frame and its MAC tag
      break;
    }
    char why[160] = "";
    if (st == FrameStatus::kTooLarge) {
      snprintf(why, sizeof why, "a frame of %zu bytes exceeds max_frame_bytes %zu", size,
               opt.max_frame_bytes);
    } else if (st == FrameStatus::kBadChecksum) {
      snprintf(why, sizeof why, "a frame of %zu bytes has a bad CRC", size - kFrameHeader);
    }
    if (st == FrameStatus::kOk &&
        !ic->mac->CheckNext(avail.substr(0, size), avail.substr(size, kFrameTagBytes))) {
      snprintf(why, sizeof why,
               "a frame of %zu bytes has a bad MAC (altered, replayed or out of order)",
               payload.size());
      st = FrameStatus::kBadChecksum;
    }
    peer::PeerMessage msg;
    if (st == FrameStatus::kOk &&
        !msg.ParseFromArray(payload.data(), static_cast<int>(payload.size()))) {
      snprintf(why, sizeof why, "a frame of %zu bytes is not a PeerMessage", payload.size());
      st = FrameStatus::kBadChecksum;
    }
    if (st != FrameStatus::kOk) {
      QLOG_WARN("connection from member %" PRIu64 " (%s): %s; closing it", ic->from,
                ic->remote.c_str(), why);
      c.bad_frames.fetch_add(1, std::memory_order_relaxed);
      InFailed(ic, why);
      return false;
    }
    ic->head += size + kFrameTagBytes;
    ic->want = 0;
    if (stopping) return false;
    c.frames_received.fetch_add(1, std::memory_order_relaxed);
    handler->OnMessage(ic->from, std::move(msg));
    if (ic->closed || stopping) return false;
  }
  if (ic->head == ic->tail) {
    ic->head = ic->tail = 0;
    if (ic->buf.size() > kKeepBuffer) {
      std::string small(kReadChunk, '\0');
      ic->buf.swap(small);
    }
  }
  return true;
}

void PeerTransport::Impl::InFailed(const std::shared_ptr<InConn>& ic, const std::string& why) {
  if (ic->closed) return;
  Link* l = Find(ic->from);
  if (l != nullptr && l->in == ic) return Break(l, "its connection to us ended: " + why);
  ic->Close();
}

// ---------------------------------------------------------------------------------------------
// Stopping

void PeerTransport::Stop() {
  Impl* im = impl_.get();
  im->stopping = true;
  if (im->opt.io) {
    // The owner's loop has ended (Options::io): nothing runs handlers while we close.
    std::lock_guard<std::mutex> g(im->stop_mu);
    im->CleanUp();
    return;
  }
  im->io.stop();
  // From a handler we cannot join our own thread: the destructor does.
  if (std::this_thread::get_id() == im->io_thread_id) return;
  std::lock_guard<std::mutex> g(im->stop_mu);
  if (im->thread.joinable()) im->thread.join();
  im->CleanUp();
}

// After the I/O thread ended: close the sockets; handlers still queued in the io_context own
// their connections and go with it.
void PeerTransport::Impl::CleanUp() {
  if (cleaned_up) return;
  cleaned_up = true;
  std::error_code ec;
  acceptor.close(ec);
  accept_retry.cancel();
  for (auto& l : all_links) {
    if (l->out) l->out->Close();
    if (l->in) l->in->Close();
    l->out.reset();
    l->in.reset();
    l->retry_timer.cancel();
    std::lock_guard<std::mutex> g(l->mu);
    l->open = false;
    l->connected = false;
    l->pending.clear();
  }
}

PeerTransport::Stats PeerTransport::stats() const {
  const auto& c = impl_->c;
  Stats s;
  s.frames_sent = c.frames_sent.load(std::memory_order_relaxed);
  s.frames_dropped = c.frames_dropped.load(std::memory_order_relaxed);
  s.bytes_sent = c.bytes_sent.load(std::memory_order_relaxed);
  s.frames_received = c.frames_received.load(std::memory_order_relaxed);
  s.bytes_received = c.bytes_received.load(std::memory_order_relaxed);
  s.connects = c.connects.load(std::memory_order_relaxed);
  s.accepts = c.accepts.load(std::memory_order_relaxed);
  s.auth_failures = c.auth_failures.load(std::memory_order_relaxed);
  s.bad_frames = c.bad_frames.load(std::memory_order_relaxed);
  s.disconnects = c.disconnects.load(std::memory_order_relaxed);
  return s;
}

}  // namespace qfs::transport
