#include "consensus/transport/handshake.h"

#include <sys/random.h>

#include <cerrno>
#include <cinttypes>
#include <cstdio>

#include "consensus/util/sha256.h"

namespace qfs::transport {
namespace {

void AppendLe64(std::string* out, uint64_t v) {
  for (int i = 0; i < 8; ++i) out->push_back(static_cast<char>(v >> (8 * i)));
}

std::string Mac(std::string_view secret, std::string_view label, std::string_view nonce, uint64_t a,
                uint64_t b) {
  std::string m(label);
  m.append(nonce);
  AppendLe64(&m, a);
  AppendLe64(&m, b);
  Sha256Digest d = HmacSha256(secret, m);
  return std::string(reinterpret_cast<const char*>(d.data()), d.size());
}

}  // namespace

std::string FrameKey(std::string_view secret, std::string_view challenge_nonce,
                     std::string_view hello_nonce, uint64_t dialer, uint64_t acceptor) {
  std::string nonces(challenge_nonce);
  nonces.append(hello_nonce);
  return Mac(secret, "qfs-frames", nonces, dialer, acceptor);
}

Result<std::string> RandomBytes(size_t n) {
  std::string out(n, '\0');
  size_t got = 0;
  while (got < n) {
    ssize_t r = getrandom(out.data() + got, n - got, 0);
    if (r < 0) {
      if (errno == EINTR) continue;
      return ErrnoStatus("getrandom", errno);
    }
    got += static_cast<size_t>(r);
  }
  return out;
}

std::string DialerMac(std::string_view secret, std::string_view challenge_nonce, uint64_t dialer,
                      uint64_t acceptor) {
  return Mac(secret, "qfs-dial", challenge_nonce, dialer, acceptor);
}

std::string AcceptorMac(std::string_view secret, std::string_view hello_nonce, uint64_t acceptor,
                        uint64_t dialer) {
  return Mac(secret, "qfs-accept", hello_nonce, acceptor, dialer);
}

std::string CheckHello(const Hello& hello, std::string_view challenge_nonce, uint64_t self,
                       const std::vector<uint64_t>& members, std::string_view secret,
                       bool accept_guests) {
  char buf[160];
  if (hello.version() != kProtocolVersion) {
    snprintf(buf, sizeof buf, "protocol version %u vs ours %u", hello.version(), kProtocolVersion);
    return buf;
  }
  if (hello.acceptor_id() != self) {
    snprintf(buf, sizeof buf,
             "it expected member %" PRIu64 " at this address, this is member %" PRIu64,
             hello.acceptor_id(), self);
    return buf;
  }
  bool known = false;
  for (uint64_t m : members) known = known || (m == hello.dialer_id() && m != self);
  if (!known && hello.dialer_id() != self && accept_guests) {
    if (hello.dialer_id() == 0 || hello.listen_port() == 0 || hello.listen_port() > 65535) {
      snprintf(buf, sizeof buf,
               "unknown member id %" PRIu64 ", and it gave no listen port to be taken as a guest",
               hello.dialer_id());
      return buf;
    }
    known = true;  // a guest: the secret decides, below
  }
  if (!known) {
    snprintf(buf, sizeof buf, "unknown member id %" PRIu64, hello.dialer_id());
    return buf;
  }
  // Checked last: a wrong secret is reported only for an otherwise plausible member.
  if (!ConstantTimeEqual(hello.mac(),
                         DialerMac(secret, challenge_nonce, hello.dialer_id(), self))) {
    snprintf(buf, sizeof buf, "wrong secret (HMAC mismatch) from member %" PRIu64,
             hello.dialer_id());
    return buf;
  }
  return "";
}

}  // namespace qfs::transport
