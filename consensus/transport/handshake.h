// The members' handshake (consensus/proto/transport.proto): constants and the checks, kept apart
// from the sockets so tests can speak the protocol from a raw socket.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "consensus/proto/transport.pb.h"
#include "consensus/util/result.h"

namespace qfs::transport {

constexpr uint32_t kMagic = 0x50534651;  // "QFSP" as little-endian bytes
// Bump when frames or the handshake change incompatibly; members of different versions refuse
// each other.
// 2: every frame carries a MAC (frame_mac.h); 3: learners forward a client's write as its
// packet (member.proto ClientPacket).
constexpr uint32_t kProtocolVersion = 3;
constexpr size_t kNonceBytes = 32;
constexpr size_t kMaxHandshakeFrame = 4096;

// `n` bytes from the kernel's CSPRNG (getrandom).
Result<std::string> RandomBytes(size_t n);

// The dialer's proof: HMAC-SHA-256(secret, "qfs-dial" | challenge nonce | dialer | acceptor),
// ids as little-endian u64. Binding both ids stops a proof being replayed to another member or
// for another identity; the fresh nonce stops replay altogether.
std::string DialerMac(std::string_view secret, std::string_view challenge_nonce, uint64_t dialer,
                      uint64_t acceptor);
// The acceptor's proof back, over the dialer's nonce, with its own label so that one side's
// proof can never serve as the other's.
std::string AcceptorMac(std::string_view secret, std::string_view hello_nonce, uint64_t acceptor,
                        uint64_t dialer);

// The key of the frames' MACs on one connection (frame_mac.h): HMAC-SHA-256(secret,
// "qfs-frames" | challenge nonce | hello nonce | dialer | acceptor). Both nonces are fresh, so
// every connection has its own key and frames cannot be replayed from another one.
std::string FrameKey(std::string_view secret, std::string_view challenge_nonce,
                     std::string_view hello_nonce, uint64_t dialer, uint64_t acceptor);

// The acceptor's verdict on a Hello answering a Challenge with `challenge_nonce`: empty if the
// dialer is accepted, else why not (for the log and the Welcome). A dialer that is not one of
// `members` is accepted only with `accept_guests`, if its Hello gives its listen port (a guest,
// see peer_transport.h) and, like any dialer, proves the secret.
std::string CheckHello(const Hello& hello, std::string_view challenge_nonce, uint64_t self,
                       const std::vector<uint64_t>& members, std::string_view secret,
                       bool accept_guests = false);

}  // namespace qfs::transport
