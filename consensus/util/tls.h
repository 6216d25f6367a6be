// TLS contexts for the client port and the peer links (docs/tls.md): the one place where
// ZooKeeper's ssl.* keys become an OpenSSL context for Asio's SSL streams. Only PEM stores are
// supported: a key store is a PEM file with the private key and the certificate chain, a trust
// store a PEM bundle of CA certificates.
#pragma once

#include <memory>
#include <string>

#include "consensus/util/result.h"

namespace asio::ssl {
class context;
}
typedef struct x509_st X509;

namespace qfs::tls {

enum class ClientAuth { kNeed, kWant, kNone };

struct Options {
  std::string key_store;             // ssl[.quorum].keyStore.location
  std::string key_store_password;    // ssl[.quorum].keyStore.password: decrypts the PEM key
  std::string key_store_type;        // ssl[.quorum].keyStore.type: "" or PEM
  std::string trust_store;           // ssl[.quorum].trustStore.location
  std::string trust_store_type;      // ssl[.quorum].trustStore.type: "" or PEM
  std::string protocol = "TLSv1.2";  // ssl[.quorum].protocol (ZooKeeper 3.8's default)
  std::string enabled_protocols;     // ssl[.quorum].enabledProtocols: "TLSv1.2,TLSv1.3"
  std::string ciphersuites;          // ssl[.quorum].ciphersuites: IANA (Java) or OpenSSL names
  ClientAuth client_auth = ClientAuth::kNeed;  // the accepting side: ssl.clientAuth
};

// A store type ZooKeeper knows but quorumfs does not read (JKS, PKCS12, BCFKS), by the type key
// or, without one, by the file's extension as ZooKeeper infers it: an error naming the key.
Status CheckStoreType(const std::string& key, const std::string& type, const std::string& path);
// "need", "want" or "none" (any case), as ssl.clientAuth.
bool ParseClientAuth(const std::string& text, ClientAuth* out);

enum class Role { kServer, kClient };
// Loads the stores and builds the context: the key store's key and chain, the trust store as the
// only CAs, the protocols and ciphers. A server requests a client certificate unless
// client_auth is kNone (and requires one with kNeed); a client always verifies the server.
Result<std::shared_ptr<asio::ssl::context>> MakeContext(const Options& o, Role role);

// The subject of a certificate as Java's X500Principal.getName() prints it (RFC 2253, most
// specific RDN first: "CN=client1,OU=dev,O=qfs"): ZooKeeper's x509 id of a client.
std::string SubjectRfc2253(X509* cert);

}  // namespace qfs::tls
