// The TLS helpers (docs/tls.md): the x509 id of a certificate subject, the store types and
// client-auth values of the ssl.* keys, x509 ACL ids and the ids a TLS client gets.
#include "consensus/util/tls.h"

#include <gtest/gtest.h>
#include <openssl/x509.h>

#include <memory>

#include "daemon/config.h"
#include "daemon/server/auth.h"
#include "daemon/tree/prepare.h"
#include "daemon/tree/types.h"

namespace qfs {
namespace {

struct X509Deleter {
  void operator()(X509* x) const { X509_free(x); }
};

// A certificate (unsigned: only its subject matters here) with entries in the given order,
// first = least specific, as openssl -subj "/O=.../OU=.../CN=..." writes them.
std::unique_ptr<X509, X509Deleter> WithSubject(
    const std::vector<std::pair<std::string, std::string>>& entries, bool multi_last = false) {
  std::unique_ptr<X509, X509Deleter> x(X509_new());
  X509_NAME* n = X509_get_subject_name(x.get());
  for (size_t i = 0; i < entries.size(); i++) {
    const bool join = multi_last && i + 1 == entries.size();
    EXPECT_EQ(1, X509_NAME_add_entry_by_txt(
                     n, entries[i].first.c_str(), MBSTRING_UTF8,
                     reinterpret_cast<const unsigned char*>(entries[i].second.c_str()), -1,
                     join ? X509_NAME_entry_count(n) - 1 : -1, join ? 1 : 0));
  }
  return x;
}

TEST(TlsTest, SubjectIsJavaRfc2253) {
  auto c = WithSubject({{"O", "qfs"}, {"OU", "dev"}, {"CN", "client1"}});
  EXPECT_EQ("CN=client1,OU=dev,O=qfs", tls::SubjectRfc2253(c.get()));
  auto all = WithSubject({{"C", "DE"},
                          {"ST", "Bavaria"},
                          {"L", "Munich"},
                          {"DC", "example"},
                          {"O", "qfs"},
                          {"CN", "x"}});
  EXPECT_EQ("CN=x,O=qfs,DC=example,L=Munich,ST=Bavaria,C=DE", tls::SubjectRfc2253(all.get()));
}

TEST(TlsTest, SubjectEscapesAndMultiValuedRdns) {
  auto c = WithSubject({{"O", "a,b+c"}, {"CN", " lead\"q\\;<>"}});
  EXPECT_EQ("CN=\\ lead\\\"q\\\\\\;\\<\\>,O=a\\,b\\+c", tls::SubjectRfc2253(c.get()));
  // A multi-valued RDN as a certificate carries it: DER sorts the set (CN's OID before OU's).
  auto m = WithSubject({{"O", "qfs"}, {"OU", "b"}, {"CN", "a"}}, /*multi_last=*/true);
  unsigned char* der = nullptr;
  const int len = i2d_X509_NAME(X509_get_subject_name(m.get()), &der);
  ASSERT_GT(len, 0);
  const unsigned char* p = der;
  X509_NAME* parsed = d2i_X509_NAME(nullptr, &p, len);
  OPENSSL_free(der);
  ASSERT_NE(nullptr, parsed);
  ASSERT_EQ(1, X509_set_subject_name(m.get(), parsed));
  X509_NAME_free(parsed);
  EXPECT_EQ("CN=a+OU=b,O=qfs", tls::SubjectRfc2253(m.get()));
}

TEST(TlsTest, UnknownAttributesAreOidsWithHexDer) {
  auto c = WithSubject({{"emailAddress", "a@b"}, {"CN", "x"}});
  // IA5String (0x16), length 3, "a@b"
  EXPECT_EQ("CN=x,1.2.840.113549.1.9.1=#1603614062", tls::SubjectRfc2253(c.get()));
}

TEST(TlsTest, OnlyPemStores) {
  EXPECT_TRUE(tls::CheckStoreType("k", "", "/etc/a.pem").ok());
  EXPECT_TRUE(tls::CheckStoreType("k", "PEM", "/etc/a.jks").ok());
  EXPECT_TRUE(tls::CheckStoreType("k", "pem", "/etc/a").ok());
  for (const char* t : {"JKS", "PKCS12", "BCFKS"}) {
    Status st = tls::CheckStoreType("k", t, "/etc/a.pem");
    EXPECT_FALSE(st.ok());
    EXPECT_NE(st.message().find("only PEM"), std::string::npos);
  }
  for (const char* p : {"/etc/a.jks", "/etc/A.P12", "/etc/a.pfx", "/etc/a.bcfks"})
    EXPECT_FALSE(tls::CheckStoreType("k", "", p).ok()) << p;
}

TEST(TlsTest, ClientAuth) {
  tls::ClientAuth a;
  ASSERT_TRUE(tls::ParseClientAuth("NEED", &a));
  EXPECT_EQ(tls::ClientAuth::kNeed, a);
  ASSERT_TRUE(tls::ParseClientAuth("want", &a));
  EXPECT_EQ(tls::ClientAuth::kWant, a);
  ASSERT_TRUE(tls::ParseClientAuth("none", &a));
  EXPECT_EQ(tls::ClientAuth::kNone, a);
  EXPECT_FALSE(tls::ParseClientAuth("required", &a));
}

TEST(TlsTest, MissingStoresAreErrorsAtContextBuild) {
  tls::Options o;
  EXPECT_FALSE(tls::MakeContext(o, tls::Role::kServer).ok());
  o.key_store = "/nonexistent/key.pem";
  auto r = tls::MakeContext(o, tls::Role::kServer);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("/nonexistent/key.pem"), std::string::npos);
  o.protocol = "SSLv3";
  EXPECT_FALSE(tls::MakeContext(o, tls::Role::kServer).ok());
}

TEST(TlsTest, X509IdsAndAuthPacket) {
  std::vector<tree::Id> ids = {{"ip", "127.0.0.1"}};
  server::X509Ids("CN=a,O=q", "CN=admin,O=q", &ids);
  EXPECT_EQ((std::vector<tree::Id>{{"ip", "127.0.0.1"}, {"x509", "CN=a,O=q"}}), ids);
  std::vector<tree::Id> su;
  server::X509Ids("CN=admin,O=q", "CN=admin,O=q", &su);
  EXPECT_EQ((std::vector<tree::Id>{{"super", "CN=admin,O=q"}, {"x509", "CN=admin,O=q"}}), su);
  // addauth x509: only with a certificate; it adds nothing new.
  std::vector<tree::Id> none;
  EXPECT_EQ(tree::Err::kAuthFailed, server::Authenticate("x509", "", "1.2.3.4", "", &none));
  EXPECT_TRUE(none.empty());
  EXPECT_EQ(tree::Err::kOk, server::Authenticate("x509", "x", "127.0.0.1", "", &ids, "CN=a,O=q"));
  EXPECT_EQ(2u, ids.size());
}

TEST(TlsTest, X509AclIds) {
  using tree::Acl;
  using tree::Id;
  std::vector<Acl> out;
  for (const char* good : {"CN=a", "CN=a,OU=b,O=c", "CN=a\\,b,O=c", "OU=b+CN=a,O=c"}) {
    EXPECT_EQ(tree::Err::kOk, tree::FixupAcl({Acl{31, Id{"x509", good}}}, {}, &out)) << good;
  }
  for (const char* bad : {"", "nonsense", "CN=a,", "=a", "CN=a,,O=b"}) {
    EXPECT_EQ(tree::Err::kInvalidAcl, tree::FixupAcl({Acl{31, Id{"x509", bad}}}, {}, &out)) << bad;
  }
  // auth expands to the x509 id; the ACL matches that exact subject only.
  std::vector<Id> me = {{"ip", "127.0.0.1"}, {"x509", "CN=a,O=q"}};
  ASSERT_EQ(tree::Err::kOk, tree::FixupAcl({Acl{31, Id{"auth", ""}}}, me, &out));
  EXPECT_EQ((std::vector<Acl>{Acl{31, Id{"x509", "CN=a,O=q"}}}), out);
  EXPECT_TRUE(tree::AclAllows(out, 1, me));
  EXPECT_FALSE(tree::AclAllows(out, 1, {{"x509", "CN=a,O=q2"}}));
  EXPECT_FALSE(tree::AclAllows(out, 1, {{"unix", "0"}, {"ip", "127.0.0.1"}}));
}

TEST(TlsTest, ConfigKeys) {
  auto c = ParseConfig(
      "dataDir=/tmp/x\nsecureClientPort=2281\nssl.keyStore.location=/k.pem\n"
      "ssl.trustStore.location=/t.pem\nssl.clientAuth=want\nssl.protocol=TLSv1.3\n"
      "serverCnxnFactory=org.apache.zookeeper.server.NettyServerCnxnFactory\n"
      "authProvider.x509=org.apache.zookeeper.server.auth.X509AuthenticationProvider\n"
      "X509AuthenticationProvider.superUser=CN=admin\nsslQuorum=true\n"
      "ssl.quorum.keyStore.location=/qk.pem\nssl.quorum.trustStore.location=/qt.pem\n"
      "ssl.quorum.hostnameVerification=false\n");
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(2281, c->secure_client_port);
  EXPECT_FALSE(c->plain_client_port());  // no clientPort key: TLS only
  EXPECT_EQ(tls::ClientAuth::kWant, c->client_tls.client_auth);
  EXPECT_EQ("TLSv1.3", c->client_tls.protocol);
  EXPECT_EQ("CN=admin", c->x509_super_user);
  EXPECT_TRUE(c->ssl_quorum);
  EXPECT_EQ("/qk.pem", c->quorum_tls.key_store);
  EXPECT_FALSE(c->quorum_hostname_verification);

  auto bad = [](const std::string& extra) {
    return ParseConfig("dataDir=/tmp/x\n" + extra).status().message();
  };
  EXPECT_NE(std::string::npos, bad("secureClientPort=2281\n").find("keyStore.location"));
  EXPECT_NE(std::string::npos,
            bad("secureClientPort=2281\nssl.keyStore.location=/k.jks\nssl.trustStore.location=/t\n")
                .find("only PEM"));
  EXPECT_NE(std::string::npos, bad("ssl.clientAuth=maybe\n").find("need, want or none"));
  EXPECT_NE(std::string::npos, bad("ssl.protocol=TLSv1.1\n").find("TLSv1.2"));
  EXPECT_NE(std::string::npos, bad("ssl.quorum.clientAuth=need\n").find("unknown key"));
  EXPECT_NE(std::string::npos, bad("sslQuorum=true\n").find("ssl.quorum.keyStore"));
}

TEST(TlsTest, SecureOnlyWhenClientPortAbsentOrZero) {
  const std::string base =
      "dataDir=/tmp/x\nsecureClientPort=2281\nssl.keyStore.location=/k.pem\n"
      "ssl.trustStore.location=/t.pem\n";
  auto absent = ParseConfig(base);
  ASSERT_TRUE(absent.ok());
  EXPECT_FALSE(absent->plain_client_port());
  auto zero = ParseConfig(base + "clientPort=0\n");
  ASSERT_TRUE(zero.ok());
  EXPECT_FALSE(zero->plain_client_port());
  auto both = ParseConfig(base + "clientPort=2181\n");
  ASSERT_TRUE(both.ok());
  EXPECT_TRUE(both->plain_client_port());
}

}  // namespace
}  // namespace qfs
