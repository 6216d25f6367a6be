// SASL on the ZooKeeper port (opcode 102), as ZooKeeper's server does it with a JAAS "Server"
// section of DigestLoginModule users: the DIGEST-MD5 mechanism (RFC 2831, qop "auth" only),
// realm and server name "zk-sasl-md5", service "zookeeper". See docs/sasl.md.
#pragma once

#include <map>
#include <string>
#include <string_view>

#include "consensus/util/result.h"

namespace qfs::server {

// user -> password.
using SaslUsers = std::map<std::string, std::string>;

// The user_NAME="PASSWORD" options of the DigestLoginModule entry of `section` in a JAAS login
// configuration (ZooKeeper reads the section "Server"). Errors name what is wrong; a section
// without users is an error (no one could log in).
Result<SaslUsers> ParseJaasUsers(std::string_view text, std::string_view section = "Server");

// One connection's DIGEST-MD5 exchange, server side. The client starts with an empty token;
// the server answers with its challenge; the client sends its digest response; the server
// checks it and answers with rspauth. Then complete() and user() is the authenticated id.
class DigestMd5Server {
 public:
  struct Options {
    std::string service = "zookeeper";
    std::string server_name = "zk-sasl-md5";  // the host part of digest-uri
    std::string realm = "zk-sasl-md5";
  };
  // `users` must outlive this object. `nonce`: tests give one; empty draws 16 random bytes.
  DigestMd5Server(const SaslUsers* users, Options options, std::string nonce = {});

  // The token to send back, or why authentication failed (the connection then ends).
  Result<std::string> Step(std::string_view token);
  bool complete() const { return stage_ == Stage::kDone; }
  const std::string& user() const { return user_; }

 private:
  enum class Stage { kStart, kChallenged, kDone, kFailed };
  const SaslUsers* users_;
  Options opt_;
  std::string nonce_;
  Stage stage_ = Stage::kStart;
  std::string user_;
};

// Lower-case hex of MD5(data) (RFC 2831's HEX(H(...))).
std::string Md5Hex(std::string_view data);

}  // namespace qfs::server
