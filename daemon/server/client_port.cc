#include "daemon/server/client_port.h"

#include <pthread.h>

#include <asio.hpp>
#include <asio/ssl.hpp>
#include <atomic>
#include <chrono>
#include <cinttypes>
#include <deque>
#include <future>
#include <map>
#include <mutex>
#include <sstream>
#include <thread>
#include <unordered_map>

#include "consensus/util/log.h"
#include "consensus/util/tls.h"
#include "daemon/server/auth.h"
#include "daemon/server/four_letter.h"
#include "daemon/server/metrics.h"
#include "daemon/server/protocol.h"
#include "daemon/server/sasl.h"
#include "daemon/server/watch_manager.h"
#include "daemon/service/reads.h"
#include "daemon/service/sessions.h"
#include "daemon/tree/prepare.h"
#include "daemon/tree/quota.h"

namespace qfs {
namespace {

using asio::ip::tcp;
using server::WatchKind;
using tree::Err;

// Requests a connection may have queued before we stop reading from it (back-pressure).
constexpr size_t kMaxQueuedPerConnection = 1000;
// What one read of a connection takes at most (see Conn::Drain).
constexpr size_t kReadChunk = 32 << 10;
// Replies may exceed jute.maxbuffer by a record header or two (a 1 MiB znode plus its Stat).
constexpr size_t kPacketSlack = 64 << 10;
// A TLS client must finish its handshake within this (ZooKeeper's Netty server allows 5 s).
constexpr auto kTlsHandshakeTimeout = std::chrono::seconds(10);

bool IsFourLetterPrefix(const char* b) {
  return IsFourLetterWord(std::string(b, 4)) || std::string(b, 4) == "cons" ||
         std::string(b, 4) == "wchs" || std::string(b, 4) == "wchc" || std::string(b, 4) == "wchp";
}

std::string Hex(int64_t v) {
  char b[24];
  snprintf(b, sizeof b, "0x%" PRIx64, static_cast<uint64_t>(v));
  return b;
}

}  // namespace

struct Conn;

// Opens, binds and listens; returns the bound port.
static Result<int> Listen(tcp::acceptor& acc, const std::string& host, int port_no,
                          const char* key) {
  std::error_code ec;
  auto addr = asio::ip::make_address(host, ec);
  if (ec) return InvalidArgument(std::string(key) + " '" + host + "': " + ec.message());
  tcp::endpoint ep(addr, static_cast<uint16_t>(port_no));
  acc.open(ep.protocol(), ec);
  if (!ec) acc.set_option(asio::socket_base::reuse_address(true), ec);
  if (!ec) acc.bind(ep, ec);
  if (!ec) acc.listen(asio::socket_base::max_listen_connections, ec);
  if (ec)
    return IoError("cannot listen on " + host + ":" + std::to_string(port_no) + ": " +
                   ec.message());
  return static_cast<int>(acc.local_endpoint().port());
}

// Shared by the connections (and the handlers queued for them), so that it outlives the last
// of them: they live on the member's loop, which goes on after Stop().
struct ClientPort::Impl : std::enable_shared_from_this<ClientPort::Impl> {
  explicit Impl(asio::io_context& loop) : io(loop) {}
  Config config;
  Pipeline* pipeline = nullptr;
  service::Sessions* sessions = nullptr;
  asio::io_context& io;  // the member's loop (Pipeline::loop())
  tcp::acceptor acceptor{io};
  tcp::acceptor secure_acceptor{io};        // secureClientPort (docs/tls.md)
  std::shared_ptr<asio::ssl::context> tls;  // its context, built at Start
  bool started = false;
  size_t max_packet = 0;

  server::WatchManager watches;
  server::Metrics metrics;
  tcp::acceptor metrics_acceptor{io};

  std::mutex mu;  // the maps below
  std::unordered_map<uint64_t, std::weak_ptr<Conn>> conns;
  std::unordered_map<int64_t, uint64_t> by_session;
  std::unordered_map<std::string, int> per_ip;
  std::atomic<uint64_t> next_conn_id{1};
  std::atomic<bool> stopping{false};
  // Client packets in and out since start (srvr's Received/Sent), four-letter words included.
  std::atomic<uint64_t> packets_received{0}, packets_sent{0};
  const std::chrono::steady_clock::time_point start_time = std::chrono::steady_clock::now();
  int listener = 0, role_listener = 0;

  void OnRoleChange(const MemberStatus& m);
  void CloseAll(const char* why);
  // Moves the plain listener to host:port (a reconfig changed this member's client address);
  // on the loop. Open connections stay, as ZooKeeper's.
  void Rebind(const std::string& host, int port);

  void Accept(tcp::acceptor& acc, bool secure);
  void OnApply(int64_t zxid, const std::vector<tree::Change>& changes);
  void Deliver(const std::vector<server::Delivery>& ds);
  std::shared_ptr<Conn> Find(uint64_t conn_id);
  void BindSession(int64_t session, uint64_t conn_id);
  void OpenSessions(SessionTouches* out);
  void CloseExpired(int64_t sid);
  std::string FourLetter(const std::string& word);
  PortStats Stats();
  void AcceptMetrics();
  std::string MetricsText();
};

struct Conn : std::enable_shared_from_this<Conn> {
  struct Slot {
    zk::ClientRequest req;
    bool is_write = false;
    bool is_sync = false;        // answered after the pipeline's sync barrier
    bool needs_barrier = false;  // a read in linearizable mode, before its quorum round
    bool barrier_pending = false;
    bool submitted = false;
    bool done = false;
    bool close_after = false;
    tree::Request treq;
    std::string packet;  // the client's bytes of treq, kept while this member forwards writes
    std::string frame;
    std::chrono::steady_clock::time_point arrived = std::chrono::steady_clock::now();
  };

  std::shared_ptr<ClientPort::Impl> srv;
  tcp::socket sock;
  // On the secure port: the TLS layer over `sock` (every read and write goes through it).
  std::unique_ptr<asio::ssl::stream<tcp::socket&>> tls;
  asio::strand<asio::io_context::executor_type> strand;
  uint64_t id;
  std::string ip;
  int port = 0;
  // Read from other threads by stat and cons.
  std::atomic<uint64_t> recved{0}, sent{0};
  std::atomic<size_t> queued{0};       // requests read and not yet answered
  std::atomic<bool> reading{false};    // ZooKeeper's interest ops [1]: a session's connection
  std::atomic<bool> read_only{false};  // a read-only session (docs/read-only.md)

  // Strand state.
  std::string rbuf;  // bytes read, [rhead, rtail) not yet handled
  size_t rhead = 0, rtail = 0;
  std::string_view body;  // the frame being handled (in rbuf)
  bool read_in_flight = false, draining = false;
  bool handshaken = false;
  bool closed = false;
  bool finishing = false;  // answer what is queued, then close
  bool read_paused = false;
  bool connecting = false;
  bool tls_done = false;     // the TLS handshake ended (either way)
  bool tls_closing = false;  // close_notify sent or being sent
  std::string x509_subject;  // the verified client certificate's subject ("": none)
  int64_t session_id = 0;
  int32_t timeout_ms = 0;
  std::vector<tree::Id> auth;
  std::unique_ptr<server::DigestMd5Server> sasl;  // this connection's SASL exchange
  std::deque<std::shared_ptr<Slot>> slots;
  asio::steady_timer retry_timer;

  // Output, filled from any thread.
  std::mutex out_mu;
  std::deque<std::string> outq;
  std::string writing_buf;
  bool writing = false;
  bool close_when_flushed = false;

  Conn(std::shared_ptr<ClientPort::Impl> s, tcp::socket&& so, uint64_t cid, bool secure)
      : srv(std::move(s)),
        sock(std::move(so)),
        tls(secure ? std::make_unique<asio::ssl::stream<tcp::socket&>>(sock, *srv->tls) : nullptr),
        strand(asio::make_strand(srv->io)),
        id(cid),
        retry_timer(srv->io) {
    std::error_code ec;
    auto remote = sock.remote_endpoint(ec);
    ip = remote.address().to_string();
    port = remote.port();
    auth.push_back({"ip", ip});
    sock.set_option(tcp::no_delay(true), ec);
  }
  ~Conn() {
    std::lock_guard<std::mutex> l(srv->mu);
    if (--srv->per_ip[ip] <= 0) srv->per_ip.erase(ip);
    srv->conns.erase(id);
    auto it = srv->by_session.find(session_id);
    if (it != srv->by_session.end() && it->second == id) srv->by_session.erase(it);
  }

  void Start() {
    if (tls) return asio::dispatch(strand, [self = shared_from_this()] { self->TlsHandshake(); });
    asio::dispatch(strand, [self = shared_from_this()] { self->Drain(); });
  }

  // The TLS handshake, then the ZooKeeper protocol inside it. A verified client certificate
  // authenticates the connection as its subject (docs/tls.md, "The x509 scheme").
  void TlsHandshake() {
    retry_timer.expires_after(kTlsHandshakeTimeout);
    retry_timer.async_wait(
        asio::bind_executor(strand, [self = shared_from_this()](std::error_code ec) {
          if (!ec && !self->tls_done) {
            QLOG_WARN("TLS client %s:%d did not finish its handshake in time; closing it",
                      self->ip.c_str(), self->port);
            self->Close(nullptr);
          }
        }));
    tls->async_handshake(
        asio::ssl::stream_base::server,
        asio::bind_executor(strand, [self = shared_from_this()](std::error_code ec) {
          self->tls_done = true;
          self->retry_timer.cancel();
          if (self->closed) return;
          if (ec) {
            QLOG_WARN("TLS handshake with %s:%d failed: %s; closing it", self->ip.c_str(),
                      self->port, ec.message().c_str());
            return self->Close(nullptr);
          }
          SSL* ssl = self->tls->native_handle();
          if (X509* cert = SSL_get0_peer_certificate(ssl);
              cert && SSL_get_verify_result(ssl) == X509_V_OK) {
            self->x509_subject = tls::SubjectRfc2253(cert);
            server::X509Ids(self->x509_subject, self->srv->config.x509_super_user, &self->auth);
            QLOG_DEBUG("TLS client %s:%d is x509:%s", self->ip.c_str(), self->port,
                       self->x509_subject.c_str());
          }
          self->Drain();
        }));
  }

  void Close(const char* why) {
    if (closed) return;
    closed = true;
    reading = false;
    if (why) QLOG_DEBUG("closing connection %" PRIu64 " from %s: %s", id, ip.c_str(), why);
    srv->watches.RemoveWatcher(id);
    std::error_code ec;
    sock.shutdown(tcp::socket::shutdown_both, ec);
    sock.close(ec);
    retry_timer.cancel();
  }

  void CloseAfterFlush() {
    std::lock_guard<std::mutex> l(out_mu);
    close_when_flushed = true;
    if (!writing) asio::post(strand, [self = shared_from_this()] { self->WriteNext(); });
  }

  // Stops reading; what is queued is still written, then the connection closes.
  void Finish() {
    finishing = true;
    CloseAfterFlush();
  }

  // ---- Input ----
  // One read takes whatever the socket has (up to kReadChunk), and every complete frame in it is
  // handled before the next read: one recvmsg for many pipelined requests. The chunk bounds the
  // work one connection gets per turn of the loop, so a busy client cannot starve the others.

  void Drain() {
    if (draining) return;  // a handler below re-entered (Established, Pump): the loop goes on
    draining = true;
    for (;;) {
      // Paused while the session is being created (Established drains again), while too many
      // requests wait for their replies (Pump drains again), or for good.
      if (closed || finishing || connecting) break;
      if (slots.size() >= kMaxQueuedPerConnection) {
        read_paused = true;
        break;
      }
      std::string_view avail(rbuf.data() + rhead, rtail - rhead);
      if (avail.size() < 4) {
        ReadMore(4);
        break;
      }
      if (!handshaken && IsFourLetterPrefix(avail.data())) {
        // ZooKeeper counts the word and its answer as packets; its answer shows the word only.
        CountReceived();
        Send(srv->FourLetter(std::string(avail.substr(0, 4))));
        Finish();
        break;
      }
      auto len = zk::DecodeFrameLength(avail.substr(0, 4), srv->max_packet);
      if (!len.ok()) {
        QLOG_WARN("connection from %s: %s; closing it", ip.c_str(), len.status().message().c_str());
        Close(nullptr);
        break;
      }
      const size_t need = 4 + static_cast<size_t>(*len);
      if (avail.size() < need) {
        ReadMore(need);
        break;
      }
      body = avail.substr(4, need - 4);
      rhead += need;
      CountReceived();
      if (!handshaken) {
        HandleConnect();  // reading resumes once the session is established
      } else {
        HandleRequest();
      }
      body = {};
    }
    draining = false;
  }

  // Reads at least until `need` bytes are buffered from rhead (one read; Drain asks again).
  void ReadMore(size_t need) {
    if (read_in_flight) return;
    if (rhead > 0) {  // keep the unread part at the front
      rbuf.erase(0, rhead);
      rtail -= rhead;
      rhead = 0;
    }
    if (rbuf.size() > kReadChunk && rtail < kReadChunk && need <= kReadChunk) {
      rbuf.resize(kReadChunk);  // a large request passed: give its memory back
      rbuf.shrink_to_fit();
    }
    rbuf.resize(std::max({rbuf.size(), need, rtail + kReadChunk / 2, kReadChunk}));
    read_in_flight = true;
    auto buf = asio::buffer(rbuf.data() + rtail, std::min(rbuf.size() - rtail, kReadChunk));
    auto done =
        asio::bind_executor(strand, [self = shared_from_this()](std::error_code ec, size_t n) {
          self->read_in_flight = false;
          if (ec) return self->Close(nullptr);
          self->rtail += n;
          self->Drain();
        });
    if (tls) {
      tls->async_read_some(buf, std::move(done));
    } else {
      sock.async_read_some(buf, std::move(done));
    }
  }

  // ---- Output ----

  void CountReceived() {
    recved.fetch_add(1, std::memory_order_relaxed);
    srv->packets_received.fetch_add(1, std::memory_order_relaxed);
  }

  // A packet to the client: counted in srvr's Sent.
  void Send(std::string frame) {
    sent.fetch_add(1, std::memory_order_relaxed);
    srv->packets_sent.fetch_add(1, std::memory_order_relaxed);
    std::lock_guard<std::mutex> l(out_mu);
    outq.push_back(std::move(frame));
    if (writing) return;
    writing = true;
    asio::post(strand, [self = shared_from_this()] { self->WriteNext(); });
  }

  void WriteNext() {
    {
      std::lock_guard<std::mutex> l(out_mu);
      if (outq.empty() || closed) {
        writing = false;
        if (close_when_flushed && !closed) {
          // Not while a read is in flight: the shutdown reads too, and a TLS stream takes one
          // read at a time (then the socket just closes).
          if (tls && tls_done && !tls_closing && !read_in_flight) return TlsClose();
          Close(nullptr);
        }
        return;
      }
      writing = true;
      writing_buf.clear();
      while (!outq.empty() && writing_buf.size() < (256 << 10)) {
        writing_buf += outq.front();
        outq.pop_front();
      }
    }
    auto done =
        asio::bind_executor(strand, [self = shared_from_this()](std::error_code ec, size_t) {
          if (ec) {
            std::lock_guard<std::mutex> l(self->out_mu);
            self->writing = false;
            self->Close(nullptr);
            return;
          }
          self->WriteNext();
        });
    if (tls) {
      asio::async_write(*tls, asio::buffer(writing_buf), std::move(done));
    } else {
      asio::async_write(sock, asio::buffer(writing_buf), std::move(done));
    }
  }

  // A graceful end of a TLS connection: close_notify (so that clients see a clean end after a
  // four-letter word's answer), then the socket; at most a second for the peer's answer.
  // Called with out_mu held, from WriteNext.
  void TlsClose() {
    tls_closing = true;
    retry_timer.expires_after(std::chrono::seconds(1));
    retry_timer.async_wait(
        asio::bind_executor(strand, [self = shared_from_this()](std::error_code ec) {
          if (!ec) self->Close(nullptr);
        }));
    tls->async_shutdown(asio::bind_executor(
        strand, [self = shared_from_this()](std::error_code) { self->Close(nullptr); }));
  }

  // ---- Handshake ----

  void SendConnectResponse(const zk::ConnectRequest& cr, int32_t timeout, int64_t sid,
                           const std::string& passwd) {
    zk::ConnectResponse resp;
    resp.protocol_version = 0;
    resp.timeout_ms = timeout;
    resp.session_id = sid;
    resp.passwd = passwd;
    resp.read_only = read_only;
    Send(zk::EncodeConnectResponse(resp, cr.has_read_only));
  }

  void HandleConnect() {
    auto cr = zk::DecodeConnect(body, srv->max_packet);
    if (!cr.ok()) {
      QLOG_WARN("connection from %s: bad connect request (%s); closing it", ip.c_str(),
                cr.status().message().c_str());
      return Close(nullptr);
    }
    const MemberStatus member = srv->pipeline->member();
    if (member.read_only && !cr->read_only) {
      // As ZooKeeper: only clients that asked for a read-only session get one here.
      QLOG_INFO(
          "refusing a client from %s: this member is read-only and the client did not ask "
          "for a read-only session",
          ip.c_str());
      return Close(nullptr);
    }
    if (!member.serving && !member.read_only) {
      // As ZooKeeper: a member without a leader takes no sessions; the client tries another.
      QLOG_DEBUG("refusing a client from %s: this member is not serving", ip.c_str());
      return Close(nullptr);
    }
    int64_t last = srv->pipeline->Read([](const tree::DataTree& t) { return t.last_zxid(); });
    if (cr->last_zxid_seen > last) {
      // The client has seen a newer state than ours: it must find a member that has it.
      QLOG_WARN("refusing a client from %s: it has seen zxid %s, this member only %s", ip.c_str(),
                Hex(cr->last_zxid_seen).c_str(), Hex(last).c_str());
      return Close(nullptr);
    }
    int32_t timeout = srv->sessions->ClampTimeout(cr->timeout_ms);
    if (member.read_only) return ConnectReadOnly(*cr, timeout);
    if (cr->session_id != 0) {
      if (srv->sessions->Resume(cr->session_id, cr->passwd, timeout)) {
        Established(*cr, cr->session_id, timeout);
        return;
      }
      // Expired or wrong password: a zero timeout tells the client its session is gone.
      QLOG_INFO("client from %s asked for session %s, which is expired or not its own", ip.c_str(),
                Hex(cr->session_id).c_str());
      SendConnectResponse(*cr, 0, 0, std::string(16, '\0'));
      Finish();
      return;
    }
    connecting = true;
    auto self = shared_from_this();
    zk::ConnectRequest req = *cr;
    bool ok = srv->sessions->Create(timeout, [self, req, timeout](Err err, int64_t sid) {
      asio::post(self->strand, [self, req, sid, timeout, err] {
        self->connecting = false;
        if (err != Err::kOk) {
          QLOG_WARN("creating a session for %s failed: %s", self->ip.c_str(), tree::ErrName(err));
          return self->Close(nullptr);
        }
        if (self->closed) return;  // the session expires on its own
        self->Established(req, sid, timeout);
      });
    });
    if (!ok) {
      QLOG_WARN("too many writes in flight: refusing a new session from %s", ip.c_str());
      Close(nullptr);
    }
  }

  // A read-only member's sessions are the service's read-only ones: no txn (docs/read-only.md).
  void ConnectReadOnly(const zk::ConnectRequest& cr, int32_t timeout) {
    read_only = true;
    if (cr.session_id == 0) {
      int64_t sid = srv->sessions->CreateReadOnly(timeout);
      QLOG_INFO("read-only session %s for %s", Hex(sid).c_str(), ip.c_str());
      return Established(cr, sid, timeout);
    }
    if (srv->sessions->ResumeReadOnly(cr.session_id, cr.passwd, timeout))
      return Established(cr, cr.session_id, timeout);
    QLOG_INFO(
        "client from %s asked this read-only member for session %s, which is expired or "
        "not its own",
        ip.c_str(), Hex(cr.session_id).c_str());
    SendConnectResponse(cr, 0, 0, std::string(16, '\0'));
    Finish();
  }

  void Established(const zk::ConnectRequest& cr, int64_t sid, int32_t timeout) {
    session_id = sid;
    timeout_ms = timeout;
    handshaken = true;
    reading = true;
    srv->BindSession(sid, id);
    SendConnectResponse(cr, timeout, sid, srv->sessions->Password(sid));
    QLOG_DEBUG("session %s established for %s (timeout %d ms)", Hex(sid).c_str(), ip.c_str(),
               timeout);
    Drain();
  }

  // ---- Requests ----

  void SendReply(int32_t xid, int64_t zxid, Err err) {
    Send(zk::EncodeReply(zk::ReplyHeader{xid, zxid, static_cast<int32_t>(err)}));
  }

  void HandleRequest() {
    auto hdr = zk::DecodeRequestHeader(body);
    if (!hdr.ok()) return Close("malformed request header");
    srv->sessions->Touch(session_id, timeout_ms);
    auto req = zk::DecodeRequest(body, srv->max_packet);
    if (!req.ok()) {
      QLOG_WARN("session %s from %s sent a malformed request (%s); closing its connection",
                Hex(session_id).c_str(), ip.c_str(), req.status().message().c_str());
      return Close(nullptr);
    }
    int32_t type = req->type();
    if (type == zk::op::kPing) {
      // Pings are answered at once: clients match them by xid, outside the request order.
      // ZooKeeper counts them in its latency figures; here they take no measurable time.
      int64_t z = srv->pipeline->Read([](const tree::DataTree& t) { return t.last_zxid(); });
      srv->metrics.Observe(type, 0, false);
      return SendReply(zk::xid::kPing, z, Err::kOk);
    }
    if (req->unimplemented) {
      SendReply(req->xid(), 0, Err::kUnimplemented);
      Finish();
      return;
    }
    if (type == zk::op::kAuth) return HandleAuth(std::get<zk::AuthPacket>(req->body));
    if (type == zk::op::kSasl) return HandleSasl(std::move(*req));
    auto slot = std::make_shared<Slot>();
    slot->req = std::move(*req);
    if (read_only &&
        ((zk::IsWriteRequest(type) && type != zk::op::kCheck) || type == zk::op::kSync)) {
      // A read-only session never writes, even once this member serves again (its connection
      // is being closed then): ZooKeeper's ReadOnlyRequestProcessor. Its closeSession only
      // forgets it here.
      const bool close = type == zk::op::kCloseSession;
      if (close) srv->sessions->ClosedReadOnly(session_id);
      slot->done = true;
      slot->close_after = close;
      slot->frame = zk::EncodeReply(zk::ReplyHeader{
          slot->req.xid(), LastZxid(), static_cast<int32_t>(close ? Err::kOk : Err::kNotReadOnly)});
      slots.push_back(std::move(slot));
      queued.fetch_add(1, std::memory_order_relaxed);
      Pump();
      return;
    }
    if (type == zk::op::kSync) {
      const auto& r = std::get<zk::PathRequest>(slot->req.body);
      if (tree::ValidatePath(r.path) == Err::kOk) slot->is_write = slot->is_sync = true;
    } else if (!zk::IsWriteRequest(type) || type == zk::op::kCheck) {
      // A read-only session reads the local tree: it asked for stale reads.
      slot->needs_barrier = srv->config.linearizable_reads && !read_only;
    }
    if (zk::IsWriteRequest(type) && type != zk::op::kCheck) {
      slot->is_write = true;
      if (type == zk::op::kCloseSession) {
        slot->treq.type = tree::RequestType::kCloseSession;
        slot->treq.session_id = session_id;
        slot->close_after = true;
      } else {
        Err e = zk::ToTreeRequest(slot->req, session_id, auth, &slot->treq);
        if (e != Err::kOk) {
          slot->done = true;
          slot->frame = zk::EncodeReply(
              zk::ReplyHeader{slot->req.xid(), LastZxid(), static_cast<int32_t>(e)});
        } else if (srv->pipeline->forwarding()) {
          slot->packet.assign(body.data(), body.size());  // what a learner forwards
        }
      }
    }
    slots.push_back(std::move(slot));
    queued.fetch_add(1, std::memory_order_relaxed);
    Pump();
  }

  int64_t LastZxid() {
    return srv->pipeline->Read([](const tree::DataTree& t) { return t.last_zxid(); });
  }

  void HandleAuth(const zk::AuthPacket& a) {
    Err e = server::Authenticate(a.scheme, a.auth, ip, srv->config.super_digest, &auth,
                                 x509_subject, srv->config.x509_super_user);
    if (e != Err::kOk) {
      QLOG_INFO("session %s: authentication with scheme '%s' failed", Hex(session_id).c_str(),
                a.scheme.c_str());
      SendReply(zk::xid::kAuth, 0, Err::kAuthFailed);
      Finish();
      return;
    }
    SendReply(zk::xid::kAuth, 0, Err::kOk);
  }

  // One SASL token (docs/sasl.md), answered in order with the requests before it. On success
  // the connection gains ("sasl", user), and ("super", "") for superUser, as ZooKeeper's
  // processSasl; on failure it is answered ZAUTHFAILED and closed.
  void HandleSasl(zk::ClientRequest req) {
    auto slot = std::make_shared<Slot>();
    slot->done = true;
    const auto& cfg = srv->config;
    Result<std::string> token = InvalidArgument("SASL is not configured (jaasLoginConfig)");
    if (!cfg.sasl_users.empty()) {
      if (!sasl)
        sasl = std::make_unique<server::DigestMd5Server>(&cfg.sasl_users,
                                                         server::DigestMd5Server::Options{});
      token = sasl->Step(std::get<zk::SaslToken>(req.body).token);
    }
    if (!token.ok()) {
      QLOG_WARN("session %s from %s failed to SASL authenticate: %s", Hex(session_id).c_str(),
                ip.c_str(), token.status().message().c_str());
      slot->frame = zk::EncodeReply(
          zk::ReplyHeader{req.xid(), LastZxid(), static_cast<int32_t>(Err::kAuthFailed)});
      slot->close_after = true;
    } else {
      if (sasl->complete()) {
        const std::string& user = sasl->user();
        if (!cfg.sasl_super_user.empty() && user == cfg.sasl_super_user &&
            std::find(auth.begin(), auth.end(), tree::Id{"super", ""}) == auth.end())
          auth.push_back(tree::Id{"super", ""});
        if (std::find(auth.begin(), auth.end(), tree::Id{"sasl", user}) == auth.end())
          auth.push_back(tree::Id{"sasl", user});
        QLOG_INFO("session %s: SASL DIGEST-MD5 authenticated as '%s'%s", Hex(session_id).c_str(),
                  user.c_str(), user == cfg.sasl_super_user ? " (superUser)" : "");
      }
      slot->frame =
          zk::EncodeReply(zk::ReplyHeader{req.xid(), LastZxid(), 0}, zk::SaslToken{*token});
    }
    slot->req = std::move(req);
    slots.push_back(std::move(slot));
    queued.fetch_add(1, std::memory_order_relaxed);
    Pump();
  }

  // Answers what can be answered in order: completed writes, then reads at the head; submits
  // writes that have no unanswered read ahead of them (a read must not see a later write).
  void Pump() {
    while (!slots.empty() && !closed && !finishing) {
      auto s = slots.front();
      if (!s->done && !s->is_write && s->needs_barrier) {
        if (!s->barrier_pending) StartBarrier();
        break;
      }
      if (!s->done && !s->is_write) {
        s->frame = ExecuteRead(s->req);
        s->done = true;
      }
      if (!s->done) break;
      if (s->frame.size() >= 20) {
        // The reply header's err field sits after length, xid and zxid.
        const auto* b = reinterpret_cast<const unsigned char*>(s->frame.data());
        int32_t e = static_cast<int32_t>((uint32_t{b[16]} << 24) | (uint32_t{b[17]} << 16) |
                                         (uint32_t{b[18]} << 8) | b[19]);
        srv->metrics.Observe(
            s->req.type(),
            std::chrono::duration<double>(std::chrono::steady_clock::now() - s->arrived).count(),
            e != 0);
      }
      if (!s->frame.empty()) Send(std::move(s->frame));
      slots.pop_front();
      queued.fetch_sub(1, std::memory_order_relaxed);
      if (s->close_after) {
        Finish();
        return;
      }
    }
    for (auto& s : slots) {
      if (!s->is_write) break;
      if (s->submitted || s->done) continue;
      if (!Submit(s)) {
        retry_timer.expires_after(std::chrono::milliseconds(2));
        retry_timer.async_wait(
            asio::bind_executor(strand, [self = shared_from_this()](std::error_code ec) {
              if (!ec) self->Pump();
            }));
        break;
      }
    }
    if (read_paused && slots.size() < kMaxQueuedPerConnection / 2 && !closed && !finishing) {
      read_paused = false;
      Drain();
    }
  }

  // Linearizable reads: one quorum round for every read queued now, started after they arrived.
  void StartBarrier() {
    std::vector<std::shared_ptr<Slot>> batch;
    for (auto& s : slots)
      if (!s->is_write && s->needs_barrier && !s->barrier_pending) {
        s->barrier_pending = true;
        batch.push_back(s);
      }
    auto self = shared_from_this();
    srv->pipeline->Sync(
        [self, batch](qfs::Reply&& r) {
          asio::post(self->strand, [self, batch, err = r.err] {
            for (auto& s : batch) {
              s->needs_barrier = false;
              if (err != Err::kOk) {
                s->done = true;
                s->frame = zk::EncodeReply(
                    zk::ReplyHeader{s->req.xid(), self->LastZxid(), static_cast<int32_t>(err)});
              }
            }
            self->Pump();
          });
        },
        true);
  }

  // Replies come from the pipeline on the loop (Release), where this connection's handlers run
  // too: handle them at once, without a post per reply. A reply from another thread (the
  // pipeline refusing work while it stops) is posted.
  template <typename F>
  void OnLoop(F&& fn) {
    if (srv->pipeline->on_loop()) {
      fn();
    } else {
      asio::post(strand, std::forward<F>(fn));
    }
  }

  bool Submit(const std::shared_ptr<Slot>& s) {
    auto self = shared_from_this();
    if (s->is_sync) {
      srv->pipeline->Sync([self, s](qfs::Reply&& r) {
        const auto& pr = std::get<zk::PathRequest>(s->req.body);
        std::string frame =
            zk::EncodeReply(zk::ReplyHeader{s->req.xid(), r.zxid, static_cast<int32_t>(r.err)},
                            zk::PathResponse{pr.path});
        if (r.err != Err::kOk)
          frame =
              zk::EncodeReply(zk::ReplyHeader{s->req.xid(), r.zxid, static_cast<int32_t>(r.err)});
        self->OnLoop([self, s, frame = std::move(frame)]() mutable {
          s->frame = std::move(frame);
          s->done = true;
          self->Pump();
        });
      });
      s->submitted = true;
      return true;
    }
    bool ok = srv->pipeline->TrySubmitPacket(
        std::move(s->treq), std::move(s->packet), [self, s](qfs::Reply&& r) {
          std::string frame = self->EncodeWriteReply(s->req, r);
          self->OnLoop([self, s, frame = std::move(frame)]() mutable {
            s->frame = std::move(frame);
            s->done = true;
            if (s->req.type() == zk::op::kCloseSession) {
              self->srv->sessions->Closed(self->session_id);
              QLOG_DEBUG("session %s closed by its client", Hex(self->session_id).c_str());
            }
            self->Pump();
          });
        });
    s->submitted = ok;
    return ok;
  }

  std::string EncodeWriteReply(const zk::ClientRequest& req, const qfs::Reply& r) {
    zk::ReplyHeader h{req.xid(), r.zxid, static_cast<int32_t>(r.err)};
    int32_t type = req.type();
    if (type == zk::op::kMulti) {
      if (r.err != Err::kOk && r.results.empty()) return zk::EncodeReply(h);
      h.err = 0;
      return zk::EncodeMultiResponse(h, std::get<zk::MultiRequest>(req.body), r.results);
    }
    if (r.err != Err::kOk || r.results.empty()) return zk::EncodeReply(h);
    const tree::OpResult& o = r.results[0];
    switch (type) {
      case zk::op::kCreate:
        return zk::EncodeReply(h, zk::PathResponse{o.path});
      case zk::op::kCreate2:
      case zk::op::kCreateContainer:
      case zk::op::kCreateTtl:
        return zk::EncodeReply(h, zk::Create2Response{o.path, o.stat});
      case zk::op::kSetData:
      case zk::op::kSetAcl:
        return zk::EncodeReply(h, zk::StatResponse{o.stat});
      case zk::op::kReconfig:  // as ZooKeeper: the new configuration, like a getData
        return zk::EncodeReply(h, zk::GetDataResponse{o.data, o.stat, false});
      default:
        return zk::EncodeReply(h);
    }
  }

  // ---- Reads (under the tree's shared lock, so watches are set atomically with the read) ----
  // The ACL rules of every read are the service layer's (daemon/service/reads.h).

  std::string Checked(std::string frame, int32_t xid, int64_t zxid) {
    if (frame.size() > srv->max_packet + 4) {
      QLOG_WARN(
          "session %s: a reply of %zu bytes is over jute.maxbuffer; answering "
          "ZMARSHALLINGERROR instead",
          Hex(session_id).c_str(), frame.size());
      return zk::EncodeReply(
          zk::ReplyHeader{xid, zxid, static_cast<int32_t>(Err::kMarshallingError)});
    }
    return frame;
  }

  std::string ExecuteRead(const zk::ClientRequest& req) {
    return srv->pipeline->Read([&](const tree::DataTree& t) { return ReadLocked(t, req); });
  }

  std::string ReadLocked(const tree::DataTree& t, const zk::ClientRequest& req) {
    int64_t z = t.last_zxid();
    int32_t xid = req.xid();
    auto err = [&](Err e) {
      return zk::EncodeReply(zk::ReplyHeader{xid, z, static_cast<int32_t>(e)});
    };
    auto watch = [&](const std::string& path, WatchKind k) -> bool {
      return srv->watches.Add(id, path, k);
    };
    zk::ReplyHeader ok{xid, z, 0};
    switch (req.type()) {
      case zk::op::kExists: {
        const auto& r = std::get<zk::PathWatchRequest>(req.body);
        if (Err v = tree::ValidatePath(r.path); v != Err::kOk) return err(v);
        tree::Stat st;
        Err e = t.Exists(r.path, &st);
        if (r.watch && !watch(r.path, WatchKind::kExist)) return err(server::kWatchLimitErr);
        if (e != Err::kOk) return err(e);
        return zk::EncodeReply(ok, zk::StatResponse{st});
      }
      case zk::op::kGetData: {
        const auto& r = std::get<zk::PathWatchRequest>(req.body);
        if (Err v = tree::ValidatePath(r.path); v != Err::kOk) return err(v);
        zk::GetDataResponse resp;
        Err e = service::GetData(t, r.path, auth, &resp.data, &resp.stat, &resp.data_null);
        if (e != Err::kOk) return err(e);
        if (r.watch && !watch(r.path, WatchKind::kData)) return err(server::kWatchLimitErr);
        return Checked(zk::EncodeReply(ok, resp), xid, z);
      }
      case zk::op::kGetChildren:
      case zk::op::kGetChildren2: {
        const auto& r = std::get<zk::PathWatchRequest>(req.body);
        if (Err v = tree::ValidatePath(r.path); v != Err::kOk) return err(v);
        zk::GetChildren2Response resp;
        Err e = service::GetChildren(t, r.path, auth, &resp.children, &resp.stat);
        if (e != Err::kOk) return err(e);
        if (r.watch && !watch(r.path, WatchKind::kChild)) return err(server::kWatchLimitErr);
        if (req.type() == zk::op::kGetChildren)
          return Checked(zk::EncodeReply(ok, zk::StringListResponse{resp.children}), xid, z);
        return Checked(zk::EncodeReply(ok, resp), xid, z);
      }
      case zk::op::kGetAcl: {
        const auto& r = std::get<zk::PathRequest>(req.body);
        if (Err v = tree::ValidatePath(r.path); v != Err::kOk) return err(v);
        zk::GetAclResponse resp;
        Err e = service::GetAcl(t, r.path, auth, &resp.acl, &resp.stat);
        if (e != Err::kOk) return err(e);
        return zk::EncodeReply(ok, resp);
      }
      case zk::op::kGetAllChildrenNumber: {
        const auto& r = std::get<zk::PathRequest>(req.body);
        if (Err v = tree::ValidatePath(r.path); v != Err::kOk) return err(v);
        int32_t n = 0;
        Err e = service::GetAllChildrenNumber(t, r.path, auth, &n);
        if (e != Err::kOk) return err(e);
        return zk::EncodeReply(ok, zk::IntResponse{n});
      }
      case zk::op::kGetEphemerals: {
        const auto& r = std::get<zk::PathRequest>(req.body);
        std::string prefix = r.path.empty() ? "/" : r.path;
        return Checked(
            zk::EncodeReply(ok, zk::StringListResponse{t.GetEphemerals(session_id, prefix)}), xid,
            z);
      }
      case zk::op::kSync: {
        const auto& r = std::get<zk::PathRequest>(req.body);
        if (Err v = tree::ValidatePath(r.path); v != Err::kOk) return err(v);
        return zk::EncodeReply(ok, zk::PathResponse{r.path});
      }
      case zk::op::kCheck: {
        // ZooKeeper 3.8 accepts a lone check: answer it from the tree, in order.
        const auto& r = std::get<zk::PathVersionRequest>(req.body);
        if (Err v = tree::ValidatePath(r.path); v != Err::kOk) return err(v);
        tree::Stat st;
        Err e = service::CheckVersion(t, r.path, r.version, auth, &st);
        if (e != Err::kOk) return err(e);
        return zk::EncodeReply(ok, zk::StatResponse{st});
      }
      case zk::op::kMultiRead: {
        const auto& m = std::get<zk::MultiRequest>(req.body);
        std::vector<zk::MultiReadResult> results;
        for (const auto& op : m.ops) {
          const auto& r = std::get<zk::PathWatchRequest>(op.body);
          zk::MultiReadResult res;
          Err e = tree::ValidatePath(r.path);
          if (e == Err::kOk) {
            if (op.type == zk::op::kGetChildren) {
              e = service::GetChildren(t, r.path, auth, &res.children, &res.stat);
            } else {
              e = service::GetData(t, r.path, auth, &res.data, &res.stat, &res.data_null);
            }
          }
          res.type = e == Err::kOk ? op.type : zk::op::kError;
          res.err = e;
          results.push_back(std::move(res));
        }
        return Checked(zk::EncodeMultiReadResponse(ok, results), xid, z);
      }
      case zk::op::kSetWatches:
      case zk::op::kSetWatches2: {
        const auto& r = std::get<zk::SetWatchesRequest>(req.body);
        server::SetWatchLists lists{r.data_watches, r.exist_watches, r.child_watches,
                                    r.persistent_watches, r.persistent_recursive_watches};
        std::vector<server::Delivery> out;
        Err e = srv->watches.ReArm(
            id, r.relative_zxid, lists,
            [&](const std::string& path) -> std::optional<tree::Stat> {
              tree::Stat st;
              if (tree::ValidatePath(path) != Err::kOk || t.Exists(path, &st) != Err::kOk)
                return std::nullopt;
              return st;
            },
            &out);
        if (e != Err::kOk)
          QLOG_WARN("session %s: re-arming watches: %s", Hex(session_id).c_str(), tree::ErrName(e));
        for (const auto& d : out)
          Send(zk::EncodeNotification(zk::WatcherEvent{d.event.type, d.event.state, d.event.path}));
        return zk::EncodeReply(zk::ReplyHeader{zk::xid::kSetWatches, z, 0});
      }
      case zk::op::kAddWatch: {
        const auto& r = std::get<zk::AddWatchRequest>(req.body);
        if (Err v = tree::ValidatePath(r.path); v != Err::kOk) return err(v);
        if (r.mode != 0 && r.mode != 1) return err(Err::kBadArguments);
        if (!watch(r.path, r.mode == 0 ? WatchKind::kPersistent : WatchKind::kPersistentRecursive))
          return err(server::kWatchLimitErr);
        return zk::EncodeReply(ok, zk::IntResponse{0});
      }
      case zk::op::kCheckWatches:
      case zk::op::kRemoveWatches: {
        const auto& r = std::get<zk::WatchTypeRequest>(req.body);
        Err e = srv->watches.Remove(id, r.path, r.type, req.type() == zk::op::kCheckWatches);
        return err(e);
      }
      case zk::op::kWhoAmI: {
        zk::WhoAmIResponse resp;
        for (const auto& a : service::WhoAmI(auth)) resp.client_info.push_back({a.scheme, a.id});
        return zk::EncodeReply(ok, resp);
      }
      default:  // SASL is answered by HandleSasl
        return err(Err::kUnimplemented);
    }
  }
};

void ClientPort::Impl::Accept(tcp::acceptor& acc, bool secure) {
  acc.async_accept(
      [this, &acc, secure, self = shared_from_this()](std::error_code ec, tcp::socket sock) {
        if (ec) {
          if (ec != asio::error::operation_aborted && !stopping) {
            QLOG_WARN("accept: %s", ec.message().c_str());
            Accept(acc, secure);
          }
          return;
        }
        std::error_code e2;
        std::string ip = sock.remote_endpoint(e2).address().to_string();
        uint64_t cid = next_conn_id++;
        {
          std::lock_guard<std::mutex> l(mu);
          if (config.max_client_cnxns > 0 && per_ip[ip] >= config.max_client_cnxns) {
            QLOG_WARN("too many connections from %s (maxClientCnxns=%d): refusing one", ip.c_str(),
                      config.max_client_cnxns);
            sock.close(e2);
            Accept(acc, secure);
            return;
          }
          per_ip[ip]++;
        }
        auto c = std::make_shared<Conn>(self, std::move(sock), cid, secure);
        {
          std::lock_guard<std::mutex> l(mu);
          conns[cid] = c;
        }
        c->Start();
        Accept(acc, secure);
      });
}

std::shared_ptr<Conn> ClientPort::Impl::Find(uint64_t conn_id) {
  std::lock_guard<std::mutex> l(mu);
  auto it = conns.find(conn_id);
  return it == conns.end() ? nullptr : it->second.lock();
}

void ClientPort::Impl::BindSession(int64_t session, uint64_t conn_id) {
  std::shared_ptr<Conn> old;
  {
    std::lock_guard<std::mutex> l(mu);
    auto it = by_session.find(session);
    if (it != by_session.end() && it->second != conn_id) {
      auto c = conns.find(it->second);
      if (c != conns.end()) old = c->second.lock();
    }
    by_session[session] = conn_id;
  }
  // The session moved to a new connection: the old one must not act for it any more.
  if (old)
    asio::post(old->strand, [old] { old->Close("its session moved to another connection"); });
}

void ClientPort::Impl::OnApply(int64_t zxid, const std::vector<tree::Change>& changes) {
  std::vector<server::Delivery> out;
  for (const auto& c : changes) watches.Trigger(c, zxid, &out);
  if (!out.empty()) Deliver(out);
}

void ClientPort::Impl::Deliver(const std::vector<server::Delivery>& ds) {
  for (const auto& d : ds) {
    auto c = Find(d.watcher);
    if (!c) continue;
    c->Send(zk::EncodeNotification(zk::WatcherEvent{d.event.type, d.event.state, d.event.path}));
  }
}

void ClientPort::Impl::OpenSessions(SessionTouches* out) {
  // Released after `mu`: the last reference to a connection that closed meanwhile runs ~Conn,
  // which takes `mu` (holding one under the lock deadlocked the sessions thread).
  std::vector<std::shared_ptr<Conn>> held;
  std::lock_guard<std::mutex> l(mu);
  for (auto& [sid, conn_id] : by_session) {
    auto c = conns.find(conn_id);
    auto conn = c == conns.end() ? nullptr : c->second.lock();
    // A read-only connection's session is not the leader's to keep (docs/read-only.md).
    if (conn && !conn->read_only) out->emplace_back(sid, conn->timeout_ms);
    if (conn) held.push_back(std::move(conn));
  }
}

void ClientPort::Impl::CloseExpired(int64_t sid) {
  std::shared_ptr<Conn> c;
  {
    std::lock_guard<std::mutex> l(mu);
    auto it = by_session.find(sid);
    if (it != by_session.end()) {
      auto ci = conns.find(it->second);
      if (ci != conns.end()) c = ci->second.lock();
    }
  }
  if (c) asio::post(c->strand, [c] { c->Close("its session expired"); });
}

std::string ClientPort::Impl::FourLetter(const std::string& w) {
  auto session_of = [this](server::WatcherId wid) -> int64_t {
    auto c = Find(wid);
    return c ? c->session_id : 0;
  };
  if (w == "wchs") return watches.Summary() + "\n";
  if (w == "wchc") return watches.DumpByWatcher(session_of);
  if (w == "wchp") return watches.DumpByPath(session_of);
  if (w == "cons") {
    std::vector<std::shared_ptr<Conn>> cs;
    {
      std::lock_guard<std::mutex> l(mu);
      for (auto& [id, wc] : conns)
        if (auto c = wc.lock()) cs.push_back(c);
    }
    std::ostringstream o;
    for (auto& c : cs) {
      o << " /" << c->ip << ":" << c->port << "[" << (c->reading ? 1 : 0)
        << "](queued=" << c->queued << ",recved=" << c->recved << ",sent=" << c->sent;
      if (c->reading) o << ",sid=" << Hex(c->session_id) << ",to=" << c->timeout_ms;
      o << ")\n";
    }
    return o.str() + "\n";
  }
  return AnswerFourLetterWord(w, config, *pipeline, Stats());
}

PortStats ClientPort::Impl::Stats() {
  std::vector<std::shared_ptr<Conn>> cs;
  {
    std::lock_guard<std::mutex> l(mu);
    for (auto& [id, wc] : conns)
      if (auto c = wc.lock()) cs.push_back(c);
  }
  PortStats ps;
  ps.connections = cs.size();
  ps.watches = watches.size();
  ps.packets_received = packets_received.load(std::memory_order_relaxed);
  ps.packets_sent = packets_sent.load(std::memory_order_relaxed);
  ps.read_only_sessions = sessions->ReadOnlyCount();
  const auto lat = metrics.Latency();
  ps.latency_min_ms = lat.min_ms;
  ps.latency_avg_ms = lat.avg_ms;
  ps.latency_max_ms = lat.max_ms;
  ps.uptime_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                     std::chrono::steady_clock::now() - start_time)
                     .count();
  std::ostringstream o;  // stat's client lines, as ZooKeeper prints them
  for (auto& c : cs)
    o << " /" << c->ip << ":" << c->port << "[" << (c->reading ? 1 : 0) << "](queued=" << c->queued
      << ",recved=" << c->recved << ",sent=" << c->sent << ")\n";
  ps.clients = o.str();
  return ps;
}

std::string ClientPort::Impl::MetricsText() {
  auto st = pipeline->stats();
  auto log = pipeline->log_stats();
  const auto sn = pipeline->snapshot_stats();
  size_t nodes = 0, mem = 0, sessions = 0;
  int64_t zxid = 0;
  std::map<std::string, tree::NamespaceQuota> quota;
  pipeline->Read([&](const tree::DataTree& t) {
    quota = tree::QuotaByNamespace(t);
    nodes = t.node_count();
    mem = t.ApproxMemoryBytes();
    sessions = t.sessions().size();
    zxid = t.last_zxid();
    return 0;
  });
  size_t n_conns;
  {
    std::lock_guard<std::mutex> l(mu);
    n_conns = conns.size();
  }
  using G = server::Metrics::Gauge;
  std::vector<G> gauges = {
      G{"quorumfs_outstanding_requests", "Write requests submitted and not yet answered.",
        static_cast<double>(st.outstanding)},
      G{"quorumfs_znodes", "Znodes in the tree.", static_cast<double>(nodes)},
      G{"quorumfs_tree_bytes", "Approximate memory of the tree.", static_cast<double>(mem)},
      G{"quorumfs_watches", "Watches set by clients.", static_cast<double>(watches.size())},
      G{"quorumfs_sessions", "Live sessions.", static_cast<double>(sessions)},
      G{"quorumfs_connections", "Open client connections.", static_cast<double>(n_conns)},
      G{"quorumfs_last_zxid", "Last applied zxid.", static_cast<double>(zxid)},
      G{"quorumfs_writes_applied", "Writes applied since start.", static_cast<double>(st.applied)},
      G{"quorumfs_fsyncs", "Log fdatasync calls since start.", static_cast<double>(log.fsyncs)},
      G{"quorumfs_fsync_last_seconds", "Duration of the last log fdatasync.",
        static_cast<double>(log.last_fsync_us) / 1e6},
      G{"quorumfs_fsync_max_seconds", "Longest log fdatasync since start.",
        static_cast<double>(log.max_fsync_us) / 1e6},
      G{"quorumfs_log_bytes", "Bytes of txn log segments on disk.",
        static_cast<double>(log.disk_bytes)},
      G{"quorumfs_log_segments", "Txn log segments on disk.", static_cast<double>(log.segments)},
      G{"quorumfs_snapshot_bytes", "Size of the last snapshot.",
        static_cast<double>(sn.last_bytes)},
      G{"quorumfs_snapshots_taken", "Snapshots written since start.",
        static_cast<double>(sn.taken)},
      G{"quorumfs_snapshot_max_pause_seconds", "Longest write pause a snapshot caused (fork).",
        sn.max_fork_ms / 1e3},
      G{"quorumfs_quota_soft_crossings", "Soft quota limits crossed upwards since start.",
        static_cast<double>(st.quota_soft_crossings)},
  };
  // ZooKeeper's quota gauges, one series per top-level namespace (docs/quotas.md).
  for (size_t i = 0; i < 4; ++i) {
    for (const auto& [ns, q] : quota) {
      const auto [name, value] = q.Gauges()[i];
      gauges.push_back(G{std::string("quorumfs_") + name,
                         "ZooKeeper's " + std::string(name) + " (docs/quotas.md).",
                         static_cast<double>(value), "namespace=\"" + ns + "\""});
    }
  }
  for (const auto& [ns, n] : st.quota_exceeded) {
    gauges.push_back(G{"quorumfs_quota_exceeded_error_per_namespace",
                       "Writes refused over a hard quota limit as leader, since start.",
                       static_cast<double>(n), "namespace=\"" + ns + "\""});
  }
  return metrics.Render(gauges);
}

void ClientPort::Impl::AcceptMetrics() {
  metrics_acceptor.async_accept(
      [this, self = shared_from_this()](std::error_code ec, tcp::socket sock) {
        if (ec) return;
        auto so = std::make_shared<tcp::socket>(std::move(sock));
        auto buf = std::make_shared<std::array<char, 2048>>();
        // One request per connection; whatever is asked, the answer is the metrics page.
        so->async_read_some(asio::buffer(*buf), [this, self, so, buf](std::error_code ec2, size_t) {
          if (ec2) return;
          std::string body = MetricsText();
          auto out = std::make_shared<std::string>(
              "HTTP/1.1 200 OK\r\nContent-Type: text/plain; version=0.0.4\r\nContent-Length: " +
              std::to_string(body.size()) + "\r\nConnection: close\r\n\r\n" + body);
          asio::async_write(*so, asio::buffer(*out), [so, out](std::error_code, size_t) {
            std::error_code ignored;
            so->shutdown(tcp::socket::shutdown_both, ignored);
          });
        });
        AcceptMetrics();
      });
}

ClientPort::ClientPort(const Config& config, Pipeline* pipeline, service::Sessions* sessions)
    : impl_(std::make_shared<Impl>(pipeline->loop())) {
  impl_->config = config;
  impl_->pipeline = pipeline;
  impl_->sessions = sessions;
  impl_->max_packet = config.max_data_bytes + kPacketSlack;
  Impl* s = impl_.get();
  // A learner forwards a client's write as the packet the client sent; the leader decodes it
  // here, as its own client port would have (docs/ensemble.md, "Copies of a txn").
  pipeline->SetClientDecoder([max = impl_->max_packet](std::string_view packet, int64_t sid,
                                                       const std::vector<tree::Id>& auth,
                                                       tree::Request* out) {
    auto req = zk::DecodeRequest(packet, max);
    if (!req.ok() || !zk::IsWriteRequest(req->type()) || req->type() == zk::op::kCheck ||
        req->type() == zk::op::kCloseSession)
      return false;
    return zk::ToTreeRequest(*req, sid, auth, out) == Err::kOk;
  });
  sessions->SetHolder({[s](SessionTouches* out) { s->OpenSessions(out); },
                       [s](int64_t sid) { s->CloseExpired(sid); }});
}

ClientPort::~ClientPort() {
  Stop();
}

Result<int> ClientPort::Start() {
  Impl& s = *impl_;
  s.listener = s.pipeline->AddApplyListener(
      [&s](int64_t zxid, const std::vector<tree::Change>& c) { s.OnApply(zxid, c); });
  s.role_listener = s.pipeline->AddRoleListener([&s](const MemberStatus& m) { s.OnRoleChange(m); });

  std::error_code ec;
  int port = 0;
  if (s.config.plain_client_port()) {
    // A reconfig's client address for this member (zoo.cfg.dynamic) wins over zoo.cfg's.
    MemberStatus ms = s.pipeline->member();
    if (ms.client_port != 0) {
      s.config.client_address = ms.client_host;
      s.config.client_port = ms.client_port;
    }
    auto p = Listen(s.acceptor, s.config.client_address, s.config.client_port, "clientPortAddress");
    if (!p.ok()) return p.status();
    port = *p;
  }
  if (s.config.secure_client_port != 0) {
    auto ctx = tls::MakeContext(s.config.client_tls, tls::Role::kServer);
    if (!ctx.ok())
      return Status(ctx.status().code(), "secureClientPort: " + ctx.status().message());
    s.tls = *ctx;
    const std::string host = s.config.secure_client_address.empty()
                                 ? s.config.client_address
                                 : s.config.secure_client_address;
    auto p =
        Listen(s.secure_acceptor, host, s.config.secure_client_port, "secureClientPortAddress");
    if (!p.ok()) return p.status();
    QLOG_INFO("secure client port %s:%d (TLS, clientAuth=%s)", host.c_str(), *p,
              s.config.client_tls.client_auth == tls::ClientAuth::kNeed   ? "need"
              : s.config.client_tls.client_auth == tls::ClientAuth::kWant ? "want"
                                                                          : "none");
    if (port == 0) port = *p;
  }
  if (s.config.metrics_port > 0) {
    std::string host =
        s.config.metrics_address.empty() ? s.config.client_address : s.config.metrics_address;
    auto maddr = asio::ip::make_address(host, ec);
    tcp::endpoint mep(maddr, static_cast<uint16_t>(s.config.metrics_port));
    if (!ec) s.metrics_acceptor.open(mep.protocol(), ec);
    if (!ec) s.metrics_acceptor.set_option(asio::socket_base::reuse_address(true), ec);
    if (!ec) s.metrics_acceptor.bind(mep, ec);
    if (!ec) s.metrics_acceptor.listen(64, ec);
    if (ec)
      return IoError("cannot serve metrics on " + host + ":" +
                     std::to_string(s.config.metrics_port) + ": " + ec.message());
    s.AcceptMetrics();
    QLOG_INFO("Prometheus metrics on http://%s:%d/metrics", host.c_str(), s.config.metrics_port);
  }
  s.started = true;
  asio::post(s.io, [self = impl_] {
    if (self->acceptor.is_open()) self->Accept(self->acceptor, false);
    if (self->secure_acceptor.is_open()) self->Accept(self->secure_acceptor, true);
  });
  return port;
}

void ClientPort::Impl::Rebind(const std::string& host, int port) {
  if (stopping || !config.plain_client_port()) return;
  if (host == config.client_address && port == config.client_port) return;
  tcp::acceptor fresh(io);
  auto p = Listen(fresh, host, port, "client address");
  if (!p.ok()) {
    QLOG_WARN(
        "a reconfig gave this member the client address %s:%d, but %s; still serving on %s:%d",
        host.c_str(), port, p.status().message().c_str(), config.client_address.c_str(),
        config.client_port);
    return;
  }
  std::error_code ec;
  acceptor.close(ec);  // its pending accept ends with operation_aborted and is not renewed
  acceptor = std::move(fresh);
  QLOG_INFO("client port moved from %s:%d to %s:%d by a reconfig; open connections stay",
            config.client_address.c_str(), config.client_port, host.c_str(), port);
  config.client_address = host;
  config.client_port = port;
  Accept(acceptor, false);
}

void ClientPort::Impl::OnRoleChange(const MemberStatus& m) {
  if (m.client_port != 0)
    asio::post(io, [self = shared_from_this(), host = m.client_host, port = m.client_port] {
      self->Rebind(host, port);
    });
  // In read-only mode the connections are read-only ones, opened after every other was closed
  // (the member stopped serving before it turned read-only). Leaving it closes them all, as
  // ZooKeeper's ReadOnlyZooKeeperServer does; their clients go find a read-write member.
  if (!m.read_only) sessions->DropReadOnly();
  if (!m.serving && !m.read_only) CloseAll("this member has no leader");
}

void ClientPort::Impl::CloseAll(const char* why) {
  std::vector<std::shared_ptr<Conn>> all;
  {
    std::lock_guard<std::mutex> l(mu);
    for (auto& [id, w] : conns)
      if (auto c = w.lock()) all.push_back(std::move(c));
  }
  if (!all.empty()) QLOG_INFO("closing %zu client connections: %s", all.size(), why);
  // Replies already queued go out first (a removed leader's answer to the reconfig that
  // removed it, docs/reconfig.md); nothing more is read.
  for (auto& c : all) asio::post(c->strand, [c] { c->Finish(); });
}

void ClientPort::Stop() {
  if (!impl_ || !impl_->started) return;
  Impl& s = *impl_;
  s.started = false;
  s.stopping = true;
  s.pipeline->RemoveApplyListener(s.listener);
  s.pipeline->RemoveRoleListener(s.role_listener);
  // On the loop: no new connections, and every open one closed. What is still queued for them
  // runs later on the loop, or is dropped with it, and holds the Impl until then.
  auto closed = std::make_shared<std::promise<void>>();
  asio::post(s.io, [self = impl_, closed] {
    std::error_code ec;
    self->acceptor.close(ec);
    self->secure_acceptor.close(ec);
    self->metrics_acceptor.close(ec);
    std::vector<std::shared_ptr<Conn>> cs;
    {
      std::lock_guard<std::mutex> l(self->mu);
      for (auto& [id, w] : self->conns)
        if (auto c = w.lock()) cs.push_back(c);
    }
    for (auto& c : cs) c->Close(nullptr);
    closed->set_value();
  });
  if (closed->get_future().wait_for(std::chrono::seconds(10)) != std::future_status::ready)
    QLOG_WARN("the member's loop did not close the client connections within 10 s");
}

}  // namespace qfs
