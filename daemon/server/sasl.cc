#include "daemon/server/sasl.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include <array>
#include <cctype>
#include <cstdlib>

#include "daemon/server/auth.h"

namespace qfs::server {

namespace {

std::array<unsigned char, 16> Md5(std::string_view data) {
  std::array<unsigned char, 16> out{};
  unsigned int n = 0;
  // Fails only on a broken libcrypto, like a failed new.
  if (EVP_Digest(data.data(), data.size(), out.data(), &n, EVP_md5(), nullptr) != 1 || n != 16)
    std::abort();
  return out;
}

std::string Hex(const unsigned char* p, size_t n) {
  static const char* kDigits = "0123456789abcdef";
  std::string s;
  for (size_t i = 0; i < n; i++) {
    s += kDigits[p[i] >> 4];
    s += kDigits[p[i] & 15];
  }
  return s;
}

// RFC 2831 2.1.1 and 2.1.2: comma-separated key=value, values quoted (with \ escapes) or not.
Result<std::map<std::string, std::string>> ParseDirectives(std::string_view s) {
  std::map<std::string, std::string> out;
  size_t i = 0;
  auto skip_ws = [&] {
    while (i < s.size() && (s[i] == ' ' || s[i] == '\t' || s[i] == '\r' || s[i] == '\n')) i++;
  };
  while (true) {
    skip_ws();
    while (i < s.size() && s[i] == ',') {
      i++;
      skip_ws();
    }
    if (i >= s.size()) break;
    size_t k = i;
    while (i < s.size() && s[i] != '=' && s[i] != ',') i++;
    if (i >= s.size() || s[i] != '=') return InvalidArgument("SASL: a directive without a value");
    std::string key(s.substr(k, i - k));
    while (!key.empty() && std::isspace(static_cast<unsigned char>(key.back()))) key.pop_back();
    for (char& c : key) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    i++;
    skip_ws();
    std::string val;
    if (i < s.size() && s[i] == '"') {
      i++;
      bool closed = false;
      while (i < s.size()) {
        char c = s[i++];
        if (c == '\\' && i < s.size()) {
          val += s[i++];
        } else if (c == '"') {
          closed = true;
          break;
        } else {
          val += c;
        }
      }
      if (!closed) return InvalidArgument("SASL: an unterminated quoted value");
    } else {
      size_t v = i;
      while (i < s.size() && s[i] != ',') i++;
      val = std::string(s.substr(v, i - v));
      while (!val.empty() && std::isspace(static_cast<unsigned char>(val.back()))) val.pop_back();
    }
    if (key.empty()) return InvalidArgument("SASL: an empty directive name");
    if (out.count(key)) return InvalidArgument("SASL: directive '" + key + "' given twice");
    out[key] = std::move(val);
  }
  return out;
}

bool SameSecret(const std::string& a, const std::string& b) {
  return a.size() == b.size() && CRYPTO_memcmp(a.data(), b.data(), a.size()) == 0;
}

}  // namespace

std::string Md5Hex(std::string_view data) {
  auto d = Md5(data);
  return Hex(d.data(), d.size());
}

DigestMd5Server::DigestMd5Server(const SaslUsers* users, Options options, std::string nonce)
    : users_(users), opt_(std::move(options)), nonce_(std::move(nonce)) {
  if (nonce_.empty()) {
    unsigned char b[16];
    if (RAND_bytes(b, sizeof b) != 1) std::abort();
    nonce_ = Base64Encode(std::string_view(reinterpret_cast<const char*>(b), sizeof b));
  }
}

Result<std::string> DigestMd5Server::Step(std::string_view token) {
  auto fail = [&](std::string why) -> Result<std::string> {
    stage_ = Stage::kFailed;
    return InvalidArgument(std::move(why));
  };
  switch (stage_) {
    case Stage::kStart:
      // DIGEST-MD5 is server-first: the client's initial token is empty.
      if (!token.empty()) return fail("SASL: DIGEST-MD5 starts with an empty client token");
      stage_ = Stage::kChallenged;
      return "realm=\"" + opt_.realm + "\",nonce=\"" + nonce_ +
             "\",qop=\"auth\",charset=utf-8,algorithm=md5-sess";
    case Stage::kChallenged:
      break;
    case Stage::kDone:
    case Stage::kFailed:
      return fail("SASL: the exchange is over");
  }
  auto d = ParseDirectives(token);
  if (!d.ok()) return fail(d.status().message());
  auto get = [&](const char* k) -> std::string {
    auto it = d->find(k);
    return it == d->end() ? std::string() : it->second;
  };
  std::string user = get("username"), realm = get("realm"), nonce = get("nonce"),
              cnonce = get("cnonce"), nc = get("nc"), qop = get("qop"), uri = get("digest-uri"),
              response = get("response"), authzid = get("authzid");
  if (user.empty() || nonce.empty() || cnonce.empty() || nc.empty() || uri.empty() ||
      response.empty())
    return fail("SASL: the digest response lacks a required directive");
  if (!realm.empty() && realm != opt_.realm) return fail("SASL: unknown realm '" + realm + "'");
  if (nonce != nonce_) return fail("SASL: the response answers another nonce");
  if (nc != "00000001") return fail("SASL: unexpected nonce count " + nc);
  if (!qop.empty() && qop != "auth")
    return fail("SASL: quality of protection '" + qop + "' is not offered (only auth)");
  if (uri != opt_.service + "/" + opt_.server_name)
    return fail("SASL: digest-uri '" + uri + "' is not " + opt_.service + "/" + opt_.server_name);
  if (!authzid.empty() && authzid != user)
    return fail("SASL: user '" + user + "' may not act as '" + authzid + "'");
  auto it = users_->find(user);
  if (it == users_->end()) return fail("SASL: unknown user '" + user + "'");
  // RFC 2831 2.1.2.1: A1 = H(user:realm:password):nonce:cnonce[:authzid]; A2 =
  // "AUTHENTICATE:" digest-uri (and ":" digest-uri for rspauth, 2.1.3).
  auto inner = Md5(user + ":" + realm + ":" + it->second);
  std::string a1(reinterpret_cast<const char*>(inner.data()), inner.size());
  a1 += ":" + nonce + ":" + cnonce;
  if (!authzid.empty()) a1 += ":" + authzid;
  std::string ha1 = Md5Hex(a1);
  auto kd = [&](const std::string& a2) {
    return Md5Hex(ha1 + ":" + nonce + ":" + nc + ":" + cnonce + ":auth:" + Md5Hex(a2));
  };
  if (!SameSecret(kd("AUTHENTICATE:" + uri), response))
    return fail("SASL: wrong password for user '" + user + "'");
  user_ = user;
  stage_ = Stage::kDone;
  return "rspauth=" + kd(":" + uri);
}

Result<SaslUsers> ParseJaasUsers(std::string_view text, std::string_view section) {
  // Comments (// and /* */) out; then find `section {` ... `};`.
  std::string t;
  for (size_t i = 0; i < text.size(); i++) {
    if (text.compare(i, 2, "//") == 0) {
      while (i < text.size() && text[i] != '\n') i++;
      t += '\n';
    } else if (text.compare(i, 2, "/*") == 0) {
      size_t e = text.find("*/", i + 2);
      if (e == std::string_view::npos) return InvalidArgument("JAAS: an unterminated comment");
      i = e + 1;
      t += ' ';
    } else {
      t += text[i];
    }
  }
  size_t pos = 0;
  while (true) {
    pos = t.find(section, pos);
    if (pos == std::string::npos)
      return InvalidArgument("JAAS: no section '" + std::string(section) + "'");
    bool starts = pos == 0 || std::isspace(static_cast<unsigned char>(t[pos - 1])) ||
                  t[pos - 1] == ';' || t[pos - 1] == '}';
    size_t b = pos + section.size();
    while (b < t.size() && std::isspace(static_cast<unsigned char>(t[b]))) b++;
    if (starts && b < t.size() && t[b] == '{') {
      pos = b + 1;
      break;
    }
    pos += section.size();
  }
  size_t end = t.find('}', pos);
  if (end == std::string::npos) return InvalidArgument("JAAS: section without its closing '}'");
  std::string_view body(t.data() + pos, end - pos);
  if (body.find("DigestLoginModule") == std::string_view::npos)
    return InvalidArgument("JAAS: section '" + std::string(section) +
                           "' has no DigestLoginModule (only DIGEST-MD5 is served)");
  SaslUsers users;
  size_t i = 0;
  while ((i = body.find("user_", i)) != std::string_view::npos) {
    if (i > 0 && !std::isspace(static_cast<unsigned char>(body[i - 1]))) {
      i += 5;
      continue;
    }
    size_t eq = body.find('=', i);
    if (eq == std::string_view::npos) return InvalidArgument("JAAS: user_ without a value");
    std::string name(body.substr(i + 5, eq - i - 5));
    while (!name.empty() && std::isspace(static_cast<unsigned char>(name.back()))) name.pop_back();
    size_t q = eq + 1;
    while (q < body.size() && std::isspace(static_cast<unsigned char>(body[q]))) q++;
    if (q >= body.size() || body[q] != '"')
      return InvalidArgument("JAAS: the password of user '" + name + "' is not quoted");
    size_t qe = body.find('"', q + 1);
    if (qe == std::string_view::npos)
      return InvalidArgument("JAAS: the password of user '" + name + "' is not closed");
    if (name.empty()) return InvalidArgument("JAAS: user_ without a name");
    users[name] = std::string(body.substr(q + 1, qe - q - 1));
    i = qe + 1;
  }
  if (users.empty())
    return InvalidArgument("JAAS: section '" + std::string(section) + "' names no user_ option");
  return users;
}

}  // namespace qfs::server
