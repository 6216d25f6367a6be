#include "daemon/server/auth.h"

#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/sha.h>

#include <algorithm>
#include <cstdlib>

namespace qfs::server {

namespace {

void AppendUnique(tree::Id id, std::vector<tree::Id>* ids) {
  if (std::find(ids->begin(), ids->end(), id) == ids->end()) ids->push_back(std::move(id));
}

}  // namespace

// These calls fail only on allocation failure or a broken libcrypto; like a failed new, abort.
struct Sha1::Ctx {
  EVP_MD_CTX* md = EVP_MD_CTX_new();
  ~Ctx() { EVP_MD_CTX_free(md); }
};

Sha1::Sha1() : ctx_(std::make_unique<Ctx>()) {
  if (ctx_->md == nullptr || EVP_DigestInit_ex(ctx_->md, EVP_sha1(), nullptr) != 1) std::abort();
}

Sha1::~Sha1() = default;
Sha1::Sha1(Sha1&&) noexcept = default;
Sha1& Sha1::operator=(Sha1&&) noexcept = default;

void Sha1::Update(std::string_view data) {
  if (EVP_DigestUpdate(ctx_->md, data.data(), data.size()) != 1) std::abort();
}

Sha1Digest Sha1::Finish() {
  Sha1Digest out;
  if (EVP_DigestFinal_ex(ctx_->md, out.data(), nullptr) != 1) std::abort();
  return out;
}

Sha1Digest Sha1::Hash(std::string_view data) {
  Sha1Digest out;
  SHA1(reinterpret_cast<const unsigned char*>(data.data()), data.size(), out.data());
  return out;
}

Sha1Digest HmacSha1(std::string_view key, std::string_view message) {
  Sha1Digest out;
  unsigned int len = 0;
  // HMAC() rejects a null key pointer; an empty key is valid HMAC (zero padded).
  static const unsigned char kEmpty = 0;
  const void* k = key.empty() ? static_cast<const void*>(&kEmpty) : key.data();
  if (HMAC(EVP_sha1(), k, static_cast<int>(key.size()),
           reinterpret_cast<const unsigned char*>(message.data()), message.size(), out.data(),
           &len) == nullptr ||
      len != out.size()) {
    std::abort();
  }
  return out;
}

std::string Base64Encode(std::string_view bytes) {
  // EVP_EncodeBlock writes 4 characters per started 3 bytes, '=' padded, then a NUL; no newlines.
  std::string out((bytes.size() + 2) / 3 * 4 + 1, '\0');
  int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                          reinterpret_cast<const unsigned char*>(bytes.data()),
                          static_cast<int>(bytes.size()));
  out.resize(static_cast<size_t>(n));
  return out;
}

std::string DigestId(std::string_view user_password) {
  Sha1Digest d = Sha1::Hash(user_password);
  std::string_view user = user_password.substr(0, user_password.find(':'));
  std::string id(user);
  id += ':';
  id += Base64Encode(std::string_view(reinterpret_cast<const char*>(d.data()), d.size()));
  return id;
}

void X509Ids(std::string_view subject, std::string_view super_user,
             std::vector<tree::Id>* ids_out) {
  if (!super_user.empty() && subject == super_user)
    AppendUnique({"super", std::string(subject)}, ids_out);
  AppendUnique({"x509", std::string(subject)}, ids_out);
}

tree::Err Authenticate(std::string_view scheme, std::string_view auth_bytes,
                       std::string_view client_ip, std::string_view super_digest,
                       std::vector<tree::Id>* ids_out, std::string_view x509_subject,
                       std::string_view x509_super_user) {
  if (scheme == "x509") {
    if (x509_subject.empty()) return tree::Err::kAuthFailed;
    X509Ids(x509_subject, x509_super_user, ids_out);
    return tree::Err::kOk;
  }
  if (scheme == "digest") {
    std::string id = DigestId(auth_bytes);
    if (!super_digest.empty() && id == super_digest) AppendUnique({"super", ""}, ids_out);
    AppendUnique({"digest", std::move(id)}, ids_out);
    return tree::Err::kOk;
  }
  if (scheme == "ip") {
    AppendUnique({"ip", std::string(client_ip)}, ids_out);
    return tree::Err::kOk;
  }
  return tree::Err::kAuthFailed;
}

}  // namespace qfs::server
