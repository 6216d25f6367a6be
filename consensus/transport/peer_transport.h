// The peer transport: carries PeerMessages between the members of an ensemble over TCP.
//
// Connections. Each member dials every peer for its own outgoing messages and reads its peers'
// messages on the connections it accepted: two unidirectional connections per pair, so no
// tie-breaking. A connection starts with a handshake (consensus/proto/transport.proto) that
// checks the protocol version and proves, both ways, knowledge of the ensemble's shared secret
// with HMAC-SHA-256 over a fresh nonce; strangers are refused with a WARN naming the address and
// the reason. With Options::use_tls all of it runs inside TLS with certificates on both sides
// (docs/tls.md). Then only the dialer speaks: frames [u32 len][u32 crc32c][PeerMessage] (frame.h),
// each followed by a MAC tag under a key of that connection over the frame and its sequence
// number (frame_mac.h), so a frame altered, dropped, repeated or reordered in flight -- even
// with its CRC fixed up -- is detected. A bad CRC or MAC, an oversized frame or an unparsable
// payload closes that connection (WARN).
//
// FIFO or reset. To each peer the transport keeps a "link" with a gate:
//  - open: Send() queues; the queue is written to the peer in order on the current outgoing
//    connection (queued while it is being established);
//  - broken: Send() drops silently.
// The link breaks -- gate closed, queue and outgoing connection dropped, the accepted connection
// from that peer closed, then OnDisconnected(peer) once -- when, while it is in use:
//  - the outgoing connection fails or cannot be established while the gate is open (a dial
//    attempt fails, the handshake is refused, a write fails, the peer closes it);
//  - the accepted connection from that peer ends for any reason, or a new one from that peer
//    replaces it (the peer restarted its side: its old stream has ended);
//  - the queue exceeds Options::max_queued_bytes, or a message exceeds max_frame_bytes.
// The gate stays closed until the owner calls Reopen(peer), after its state machine has
// processed the disconnect; so a message sent before the owner knew of the break is never
// delivered after a gap. Closing both directions makes the peer notice the break too.
// Close(peer) is the owner's own reset: it ends both connections with the peer without an
// OnDisconnected, keeps the gate open, and later sends go on a new connection; the peer sees
// its link break.
// Messages a peer sends us are delivered in order; OnMessage for frames of an accepted
// connection comes before the OnDisconnected of its break. The transport keeps dialing each
// peer in the background (every connect_retry_ms, doubling up to connect_retry_max_ms) whatever
// the gate, so Reopen usually finds a connection ready.
//
// Guests (docs/reconfig.md, "Joining servers"). Every Hello carries the dialer's own listen
// address. With Options::accept_guests, a dialer whose id is not a peer is accepted if it
// proves the secret (and, with TLS, its certificate names the host it gave) and gave a listen
// port: the transport makes it a peer at that address at once (gate open, as AddPeer), so the
// other direction works too, and tells the owner through Handler::OnGuest. From then on it is
// a peer like any other until the owner removes it (RemovePeer). Without the option, or if the
// dialer gave no address (a member of an older version), it is refused as an unknown member.
// The address is not covered by the dialer's MAC: a man in the middle who rewrites it can only
// make us dial an address where the handshake (which needs the secret) then fails.
//
// Start. Every link starts broken (sends drop, no OnDisconnected owed): the owner calls Reopen()
// for each peer it wants to talk to. If the peer is not reachable then, the next dial attempt
// fails and the link breaks (OnDisconnected); an owner that reopens at once sees at most one
// OnDisconnected per retry interval for a member that is down.
//
// Threads. One I/O thread does all socket work and makes every handler call, in event order:
// the transport's own, or the owner's loop (Options::io).
// Send, Reopen, queued_bytes and stats are thread-safe and may be called from handlers; Send
// never blocks on the network. Liveness of a silent peer (a partition without RST) is not
// detected here: the core's heartbeats do that.
//
// Memory. Each link's queue is bounded by max_queued_bytes (the link breaks beyond it); owners
// streaming snapshots pace themselves with queued_bytes().
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "consensus/proto/peer.pb.h"
#include "consensus/util/result.h"
#include "consensus/util/tls.h"

namespace asio {
class io_context;
}

namespace qfs::transport {

struct PeerAddress {
  uint64_t id = 0;
  std::string host;
  int port = 0;
};

struct Options {
  uint64_t self_id = 0;
  std::string listen_host = "0.0.0.0";
  int listen_port = 0;             // 0: the kernel picks one (tests); see listen_port()
  std::vector<PeerAddress> peers;  // the other members (never self)
  std::string secret;              // shared by the ensemble; must be non-empty
  // sslQuorum (docs/tls.md): every connection runs inside TLS, both sides presenting a
  // certificate that chains to the trust store (client_auth is forced to need). The handshake
  // and frame MACs above run inside it unchanged.
  bool use_tls = false;
  tls::Options tls;
  // The certificate of a peer must name the host of its server.N line (IP or DNS SAN, or CN):
  // checked by the dialer against the host it dials, and by the acceptor against the line of
  // the member the dialer proves to be.
  bool tls_verify_host = true;
  // Accept dialers that are not peers as guests (see "Guests" above).
  bool accept_guests = false;
  size_t max_frame_bytes = 64 << 20;     // a larger frame closes its connection
  size_t max_queued_bytes = 512u << 20;  // per peer; beyond it the link breaks (0: unbounded)
  int connect_retry_ms = 20;             // first redial delay after a failure
  int connect_retry_max_ms = 500;        // the delay doubles up to this
  int handshake_timeout_ms = 5000;       // connect + handshake must finish within this
  // The owner's event loop. Null: the transport runs an I/O thread of its own. Otherwise every
  // socket operation and handler call happens on the thread that runs `io` (the owner's), the
  // transport starts no thread, and Stop() must be called while nobody runs `io` (after the
  // owner's loop has ended); `io` must outlive the transport.
  asio::io_context* io = nullptr;
};

class Handler {
 public:
  virtual ~Handler() = default;
  // Called on the transport's I/O thread; should be quick (hand the message to the owner's loop).
  virtual void OnMessage(uint64_t from, peer::PeerMessage&& msg) = 0;
  virtual void OnDisconnected(uint64_t peer) = 0;
  // A dialer that was not a peer was accepted as a guest and is now a peer at `at` (its link
  // open). Called before its first OnMessage.
  virtual void OnGuest(const PeerAddress& at) { (void)at; }
};

class PeerTransport {
 public:
  // Binds the listening socket (errors come back here), then starts the I/O thread. `handler`
  // must outlive the transport (or Stop()).
  static Result<std::unique_ptr<PeerTransport>> Start(Options options, Handler* handler);
  ~PeerTransport();  // Stop()s; must not run on the I/O thread

  PeerTransport(const PeerTransport&) = delete;
  PeerTransport& operator=(const PeerTransport&) = delete;

  // Queues `msg` for `to` if it is a peer and its link is open, else drops it.
  void Send(uint64_t to, const peer::PeerMessage& msg);
  // The same to several peers, serialized once.
  void Send(const std::vector<uint64_t>& to, const peer::PeerMessage& msg);
  // For an owner that runs the I/O thread's io_context itself, in a loop of its own: from the
  // calling thread on, what that thread sends is written when it calls FlushDeferred(), not
  // by a handler posted per link. That spares the io_context a round of handlers, and with it
  // an epoll_wait, per batch. The owner must call FlushDeferred() before it waits.
  void DeferFlushes();
  void FlushDeferred();
  // Opens the gate of a broken link (no-op if open): later sends are queued and delivered.
  void Reopen(uint64_t peer);
  // Ends the current connections with `peer` in both directions without reporting it through
  // OnDisconnected (the owner ended the session with that peer on purpose); queued messages are
  // dropped, the gate stays open and later sends go on a new connection. The peer sees its
  // link break.
  void Close(uint64_t peer);
  bool is_open(uint64_t peer) const;
  // Membership changes while running (docs/reconfig.md). AddPeer makes `peer` a peer (or moves
  // it to a new address: the old link's connections end without an OnDisconnected) with its
  // gate open, and dials it; false if it already was one at that address. RemovePeer ends both
  // connections with the peer, without an OnDisconnected, and forgets it: its dials are
  // refused, and Send/Reopen/Close for an id that is not a peer do nothing.
  bool AddPeer(const PeerAddress& peer);
  bool RemovePeer(uint64_t id);
  std::vector<uint64_t> peers() const;
  // Bytes queued for `peer` and not yet known written to its socket.
  size_t queued_bytes(uint64_t peer) const;
  int listen_port() const;

  // Closes everything. Idempotent; no handler call happens after it returns. May be called
  // from a handler (then the thread is joined by the destructor).
  void Stop();

  struct Stats {
    uint64_t frames_sent = 0;      // messages queued on an open link (per destination)
    uint64_t frames_dropped = 0;   // messages dropped because the link was broken
    uint64_t bytes_sent = 0;       // bytes written to peer sockets (headers included)
    uint64_t frames_received = 0;  // messages delivered to the handler
    uint64_t bytes_received = 0;   // bytes read from authenticated peer connections
    uint64_t connects = 0;         // outgoing connections established (handshake done)
    uint64_t accepts = 0;          // incoming connections authenticated
    uint64_t auth_failures = 0;    // incoming handshakes refused
    uint64_t bad_frames = 0;       // incoming frames with a bad CRC, oversized or unparsable
    uint64_t disconnects = 0;      // OnDisconnected calls
  };
  Stats stats() const;

 private:
  struct Impl;
  explicit PeerTransport(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace qfs::transport
