// Client authentication for the ZooKeeper port: the auth packet (opcode 100) with ZooKeeper's
// built-in schemes, and the hashing it needs (SHA-1, HMAC-SHA1, base64): thin wrappers over
// OpenSSL's libcrypto (README.md, "Dependencies").
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "daemon/tree/types.h"

namespace qfs::server {

using Sha1Digest = std::array<uint8_t, 20>;

// SHA-1, incremental.
class Sha1 {
 public:
  Sha1();
  ~Sha1();
  Sha1(Sha1&&) noexcept;
  Sha1& operator=(Sha1&&) noexcept;
  void Update(std::string_view data);
  // Returns the digest; the object must not be used afterwards.
  Sha1Digest Finish();

  static Sha1Digest Hash(std::string_view data);

 private:
  struct Ctx;
  std::unique_ptr<Ctx> ctx_;
};

// HMAC-SHA1 (RFC 2104).
Sha1Digest HmacSha1(std::string_view key, std::string_view message);

// Standard base64 (RFC 4648 alphabet, '=' padding), as ZooKeeper's digest ids use.
std::string Base64Encode(std::string_view bytes);

// The digest-scheme id for "user:password", as DigestAuthenticationProvider.generateDigest:
// the text before the first ':' (all of it if there is none), ':', base64(sha1(whole input)).
// The input bytes are hashed as they are (ZooKeeper decodes them as UTF-8 first; the same bytes
// for valid UTF-8).
std::string DigestId(std::string_view user_password);

// Handles an auth packet. Appends to *ids_out each resulting id it does not already hold, so
// passing the session's current auth list keeps it a set, as ZooKeeper's ServerCnxn.authInfo.
//  - "digest": ("digest", DigestId(auth)); before it ("super", "") when that id equals
//    `super_digest` ("super:<base64>", empty = disabled). Never fails, as in ZooKeeper.
//  - "ip": ("ip", client_ip), whatever the auth bytes; it succeeds in ZooKeeper
//    (IPAuthenticationProvider) and only repeats the id every connection already has.
//  - "x509": the connection's certificate identity (`x509_subject`, see X509Ids), whatever the
//    auth bytes; kAuthFailed when the connection showed no certificate (docs/tls.md).
//  - any other scheme: kAuthFailed and nothing appended (ZooKeeper then closes the connection).
tree::Err Authenticate(std::string_view scheme, std::string_view auth_bytes,
                       std::string_view client_ip, std::string_view super_digest,
                       std::vector<tree::Id>* ids_out, std::string_view x509_subject = {},
                       std::string_view x509_super_user = {});

// The ids of a TLS client whose certificate chain the trust store accepted, as ZooKeeper's
// X509AuthenticationProvider: ("super", subject) first when the subject is the configured super
// user (X509AuthenticationProvider.superUser), then ("x509", subject) -- the subject DN in RFC
// 2253 form (tls::SubjectRfc2253). Appended without duplicates.
void X509Ids(std::string_view subject, std::string_view super_user, std::vector<tree::Id>* ids_out);

}  // namespace qfs::server
