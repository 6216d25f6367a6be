#include "consensus/util/tls.h"

#include <openssl/err.h>
#include <openssl/objects.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include <algorithm>
#include <asio/ssl.hpp>
#include <cctype>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <vector>

namespace qfs::tls {
namespace {

std::string Lower(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

std::vector<std::string> SplitCommas(const std::string& s) {
  std::vector<std::string> out;
  size_t start = 0;
  while (start <= s.size()) {
    size_t comma = s.find(',', start);
    if (comma == std::string::npos) comma = s.size();
    std::string item = s.substr(start, comma - start);
    item.erase(0, item.find_first_not_of(" \t"));
    item.erase(item.find_last_not_of(" \t") + 1);
    if (!item.empty()) out.push_back(item);
    start = comma + 1;
  }
  return out;
}

// OpenSSL's queued errors as one line (they say which PEM block or file failed).
std::string SslErrors() {
  std::string out;
  while (unsigned long e = ERR_get_error()) {
    char buf[256];
    ERR_error_string_n(e, buf, sizeof buf);
    if (!out.empty()) out += "; ";
    out += buf;
  }
  return out.empty() ? "no detail from OpenSSL" : out;
}

int ProtocolVersion(const std::string& name) {
  if (name == "TLSv1.2") return TLS1_2_VERSION;
  if (name == "TLSv1.3") return TLS1_3_VERSION;
  return 0;
}

}  // namespace

Status CheckStoreType(const std::string& key, const std::string& type, const std::string& path) {
  std::string t = Lower(type);
  if (t.empty()) {
    // ZooKeeper infers the type from the extension when none is given.
    std::string p = Lower(path);
    for (const char* ext : {".jks", ".p12", ".pfx", ".bcfks"}) {
      if (p.size() >= strlen(ext) && p.compare(p.size() - strlen(ext), strlen(ext), ext) == 0)
        return InvalidArgument(key + " " + path +
                               ": only PEM stores are supported; convert it (docs/tls.md)");
    }
    return Status::Ok();
  }
  if (t == "pem") return Status::Ok();
  return InvalidArgument(key + ".type=" + type +
                         ": only PEM stores are supported; convert the store (docs/tls.md)");
}

bool ParseClientAuth(const std::string& text, ClientAuth* out) {
  std::string t = Lower(text);
  if (t == "need")
    *out = ClientAuth::kNeed;
  else if (t == "want")
    *out = ClientAuth::kWant;
  else if (t == "none")
    *out = ClientAuth::kNone;
  else
    return false;
  return true;
}

Result<std::shared_ptr<asio::ssl::context>> MakeContext(const Options& o, Role role) {
  ERR_clear_error();
  auto ctx = std::make_shared<asio::ssl::context>(
      role == Role::kServer ? asio::ssl::context::tls_server : asio::ssl::context::tls_client);
  SSL_CTX* c = ctx->native_handle();

  // Protocols: the enabled list, else ssl.protocol alone (as ZooKeeper's X509Util).
  std::vector<std::string> protos = o.enabled_protocols.empty()
                                        ? std::vector<std::string>{o.protocol}
                                        : SplitCommas(o.enabled_protocols);
  int lo = 0, hi = 0;
  for (const auto& p : protos) {
    int v = ProtocolVersion(p);
    if (v == 0) return InvalidArgument("TLS protocol '" + p + "': expected TLSv1.2 or TLSv1.3");
    lo = lo == 0 ? v : std::min(lo, v);
    hi = std::max(hi, v);
  }
  if (lo == 0) return InvalidArgument("no TLS protocol enabled");
  SSL_CTX_set_min_proto_version(c, lo);
  SSL_CTX_set_max_proto_version(c, hi);
  SSL_CTX_set_options(c, SSL_OP_NO_RENEGOTIATION);

  // Cipher suites: Java's (IANA) names are mapped to OpenSSL's; TLS 1.3 suites go apart.
  if (!o.ciphersuites.empty()) {
    std::string list12, list13;
    STACK_OF(SSL_CIPHER)* all = nullptr;
    SSL* probe = nullptr;
    if (SSL_CTX_set_cipher_list(c, "ALL:COMPLEMENTOFALL") == 1) probe = SSL_new(c);
    if (probe) all = SSL_get_ciphers(probe);
    for (const auto& name : SplitCommas(o.ciphersuites)) {
      if (name.rfind("TLS_AES_", 0) == 0 || name.rfind("TLS_CHACHA20_", 0) == 0) {
        list13 += (list13.empty() ? "" : ":") + name;
        continue;
      }
      std::string ossl = name;
      for (int i = 0; all && i < sk_SSL_CIPHER_num(all); i++) {
        const SSL_CIPHER* ci = sk_SSL_CIPHER_value(all, i);
        const char* std_name = SSL_CIPHER_standard_name(ci);
        if (std_name && name == std_name) ossl = SSL_CIPHER_get_name(ci);
      }
      list12 += (list12.empty() ? "" : ":") + ossl;
    }
    if (probe) SSL_free(probe);
    SSL_CTX_set_cipher_list(c, "DEFAULT");  // the probe's list is not for use
    ERR_clear_error();
    if (!list12.empty() && SSL_CTX_set_cipher_list(c, list12.c_str()) != 1)
      return InvalidArgument("ciphersuites '" + o.ciphersuites + "': none is known to OpenSSL");
    if (list12.empty() && hi < TLS1_3_VERSION)
      return InvalidArgument("ciphersuites '" + o.ciphersuites +
                             "': only TLS 1.3 suites, but TLS 1.3 is not enabled");
    if (!list13.empty() && SSL_CTX_set_ciphersuites(c, list13.c_str()) != 1)
      return InvalidArgument("ciphersuites '" + list13 + "': unknown TLS 1.3 suite");
    if (list13.empty() && hi >= TLS1_3_VERSION && lo >= TLS1_3_VERSION)
      return InvalidArgument("ciphersuites '" + o.ciphersuites +
                             "': no TLS 1.3 suite, but only TLS 1.3 is enabled");
  }

  // The key store: key and chain from one PEM file.
  if (o.key_store.empty())
    return InvalidArgument("TLS needs a key store (a PEM file with the key and certificate)");
  {
    std::ifstream probe(o.key_store);
    if (!probe) return InvalidArgument("cannot read the key store " + o.key_store);
  }
  if (!o.key_store_password.empty()) {
    // Decrypts an encrypted PEM key (PKCS#8 or traditional), as ZooKeeper's PEM loader.
    SSL_CTX_set_default_passwd_cb_userdata(c, const_cast<char*>(o.key_store_password.c_str()));
    SSL_CTX_set_default_passwd_cb(c, [](char* buf, int size, int, void* u) -> int {
      const char* pw = static_cast<const char*>(u);
      int n = static_cast<int>(strlen(pw));
      if (n > size) return 0;
      memcpy(buf, pw, static_cast<size_t>(n));
      return n;
    });
  }
  if (SSL_CTX_use_certificate_chain_file(c, o.key_store.c_str()) != 1)
    return InvalidArgument("key store " + o.key_store + ": no usable certificate chain (" +
                           SslErrors() + ")");
  if (SSL_CTX_use_PrivateKey_file(c, o.key_store.c_str(), SSL_FILETYPE_PEM) != 1)
    return InvalidArgument("key store " + o.key_store +
                           ": no usable private key (encrypted without the right "
                           "keyStore.password?) (" +
                           SslErrors() + ")");
  if (SSL_CTX_check_private_key(c) != 1)
    return InvalidArgument("key store " + o.key_store +
                           ": the private key does not match the certificate");
  // The password is not needed after loading; the callback must not outlive it.
  SSL_CTX_set_default_passwd_cb(c, nullptr);
  SSL_CTX_set_default_passwd_cb_userdata(c, nullptr);

  // The trust store: the only CAs accepted (no system CAs).
  if (o.trust_store.empty())
    return InvalidArgument("TLS needs a trust store (a PEM bundle of CA certificates)");
  if (SSL_CTX_load_verify_locations(c, o.trust_store.c_str(), nullptr) != 1)
    return InvalidArgument("trust store " + o.trust_store + ": " + SslErrors());
  if (role == Role::kServer) {
    // The client CA names sent in the request: the trust store's subjects.
    if (STACK_OF(X509_NAME)* names = SSL_load_client_CA_file(o.trust_store.c_str()))
      SSL_CTX_set_client_CA_list(c, names);
    int mode = SSL_VERIFY_NONE;
    if (o.client_auth == ClientAuth::kWant) mode = SSL_VERIFY_PEER;
    if (o.client_auth == ClientAuth::kNeed)
      mode = SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT;
    SSL_CTX_set_verify(c, mode, nullptr);
    // Sessions are not resumed: every connection shows its certificate (its x509 id).
    SSL_CTX_set_session_cache_mode(c, SSL_SESS_CACHE_OFF);
    SSL_CTX_set_num_tickets(c, 0);
    SSL_CTX_set_options(c, SSL_OP_NO_TICKET);
  } else {
    SSL_CTX_set_verify(c, SSL_VERIFY_PEER, nullptr);
  }
  ERR_clear_error();
  return ctx;
}

std::string SubjectRfc2253(X509* cert) {
  X509_NAME* name = X509_get_subject_name(cert);
  if (!name) return "";
  std::string out;
  const int n = X509_NAME_entry_count(name);
  // RFC 2253 lists the RDNs from the last (most specific) to the first; the values of a
  // multi-valued RDN in their encoded order, as Java does.
  std::vector<std::vector<int>> rdns;
  for (int i = 0; i < n; i++) {
    const int set = X509_NAME_ENTRY_set(X509_NAME_get_entry(name, i));
    if (rdns.empty() || X509_NAME_ENTRY_set(X509_NAME_get_entry(name, rdns.back()[0])) != set)
      rdns.emplace_back();
    rdns.back().push_back(i);
  }
  std::vector<std::pair<int, bool>> order;  // entry, first of its RDN
  for (auto r = rdns.rbegin(); r != rdns.rend(); ++r)
    for (size_t k = 0; k < r->size(); k++) order.emplace_back((*r)[k], k == 0);
  for (const auto& [i, first_of_rdn] : order) {
    X509_NAME_ENTRY* e = X509_NAME_get_entry(name, i);
    if (!out.empty()) out += first_of_rdn ? "," : "+";
    ASN1_OBJECT* obj = X509_NAME_ENTRY_get_object(e);
    ASN1_STRING* data = X509_NAME_ENTRY_get_data(e);
    const char* keyword = nullptr;
    // The keywords Java prints by name in RFC 2253 form; any other attribute is its OID.
    switch (OBJ_obj2nid(obj)) {
      case NID_commonName:
        keyword = "CN";
        break;
      case NID_countryName:
        keyword = "C";
        break;
      case NID_localityName:
        keyword = "L";
        break;
      case NID_stateOrProvinceName:
        keyword = "ST";
        break;
      case NID_organizationName:
        keyword = "O";
        break;
      case NID_organizationalUnitName:
        keyword = "OU";
        break;
      case NID_streetAddress:
        keyword = "STREET";
        break;
      case NID_domainComponent:
        keyword = "DC";
        break;
      case NID_userId:
        keyword = "UID";
        break;
      default:
        break;
    }
    if (!keyword) {
      char oid[128];
      OBJ_obj2txt(oid, sizeof oid, obj, 1);
      out += oid;
      out += "=#";
      // The value's DER encoding in hex.
      ASN1_TYPE* t = ASN1_TYPE_new();
      ASN1_STRING* copy = ASN1_STRING_dup(data);
      unsigned char* der = nullptr;
      int len = -1;
      if (t && copy) {
        ASN1_TYPE_set(t, ASN1_STRING_type(data), copy);
        copy = nullptr;
        len = i2d_ASN1_TYPE(t, &der);
      }
      if (copy) ASN1_STRING_free(copy);
      for (int k = 0; k < len; k++) {
        char hx[3];
        snprintf(hx, sizeof hx, "%02x", der[k]);
        out += hx;
      }
      OPENSSL_free(der);
      ASN1_TYPE_free(t);
      continue;
    }
    out += keyword;
    out += '=';
    unsigned char* utf8 = nullptr;
    int len = ASN1_STRING_to_UTF8(&utf8, data);
    std::string v = len > 0 ? std::string(reinterpret_cast<char*>(utf8), static_cast<size_t>(len))
                            : std::string();
    OPENSSL_free(utf8);
    for (size_t k = 0; k < v.size(); k++) {
      const char ch = v[k];
      const bool special = ch == ',' || ch == '+' || ch == '"' || ch == '\\' || ch == '<' ||
                           ch == '>' || ch == ';' || (k == 0 && (ch == '#' || ch == ' ')) ||
                           (k + 1 == v.size() && ch == ' ');
      if (special) out += '\\';
      out += ch;
    }
  }
  return out;
}

}  // namespace qfs::tls
