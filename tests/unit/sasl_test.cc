// SASL DIGEST-MD5, server side (docs/sasl.md): RFC 2831's own example exchange, the checks
// that refuse, and the JAAS users file.
#include "daemon/server/sasl.h"

#include <gtest/gtest.h>

#include "daemon/tree/prepare.h"

namespace qfs::server {
namespace {

// RFC 2831, section 4: chris/secret against imap/elwood.innosoft.com.
TEST(SaslTest, Rfc2831Example) {
  SaslUsers users{{"chris", "secret"}};
  DigestMd5Server s(&users, {"imap", "elwood.innosoft.com", "elwood.innosoft.com"},
                    "OA6MG9tEQGm2hh");
  auto challenge = s.Step("");
  ASSERT_TRUE(challenge.ok());
  EXPECT_NE(challenge->find("nonce=\"OA6MG9tEQGm2hh\""), std::string::npos) << *challenge;
  EXPECT_NE(challenge->find("qop=\"auth\""), std::string::npos);
  auto r = s.Step(
      "charset=utf-8,username=\"chris\",realm=\"elwood.innosoft.com\",nonce=\"OA6MG9tEQGm2hh\","
      "nc=00000001,cnonce=\"OA6MHXh6VqTrRk\",digest-uri=\"imap/elwood.innosoft.com\","
      "response=d388dad90d4bbd760a152321f2143af7,qop=auth");
  ASSERT_TRUE(r.ok()) << r.status().message();
  EXPECT_EQ(*r, "rspauth=ea40f60335c427b5527b84dbabcdfffd");
  EXPECT_TRUE(s.complete());
  EXPECT_EQ(s.user(), "chris");
  EXPECT_FALSE(s.Step("").ok()) << "the exchange is over";
}

std::string Response(const std::string& user, const std::string& password, const std::string& nonce,
                     const std::string& uri) {
  std::string realm = "zk-sasl-md5", cnonce = "c0ffee", nc = "00000001";
  std::string h = Md5Hex(user + ":" + realm + ":" + password);
  // H(user:realm:password) is binary inside A1.
  std::string bin;
  for (size_t i = 0; i < h.size(); i += 2)
    bin += static_cast<char>(std::stoi(h.substr(i, 2), nullptr, 16));
  std::string ha1 = Md5Hex(bin + ":" + nonce + ":" + cnonce);
  std::string resp = Md5Hex(ha1 + ":" + nonce + ":" + nc + ":" + cnonce +
                            ":auth:" + Md5Hex("AUTHENTICATE:" + uri));
  return "username=\"" + user + "\",realm=\"" + realm + "\",nonce=\"" + nonce + "\",cnonce=\"" +
         cnonce + "\",nc=" + nc + ",qop=auth,digest-uri=\"" + uri + "\",response=" + resp;
}

TEST(SaslTest, RefusesWrongPasswordUnknownUserAndOtherServers) {
  SaslUsers users{{"bob", "bobsecret"}};
  const std::string uri = "zookeeper/zk-sasl-md5";
  struct Case {
    std::string token, why;
  } cases[] = {
      {Response("bob", "wrong", "n1", uri), "wrong password"},
      {Response("eve", "bobsecret", "n1", uri), "unknown user"},
      {Response("bob", "bobsecret", "n2", uri), "another nonce"},
      {Response("bob", "bobsecret", "n1", "ldap/zk-sasl-md5"), "digest-uri"},
      {"username=\"bob\",nonce=\"n1\"", "lacks a required directive"},
      {"username=\"bob", "unterminated quoted value"},
      {"username", "directive without a value"},
  };
  for (const auto& c : cases) {
    DigestMd5Server s(&users, {}, "n1");
    ASSERT_TRUE(s.Step("").ok());
    auto r = s.Step(c.token);
    ASSERT_FALSE(r.ok()) << c.why;
    EXPECT_NE(r.status().message().find(c.why), std::string::npos) << r.status().message();
    EXPECT_FALSE(s.complete());
  }
  DigestMd5Server ok(&users, {}, "n1");
  ASSERT_TRUE(ok.Step("").ok());
  auto r = ok.Step(Response("bob", "bobsecret", "n1", uri));
  ASSERT_TRUE(r.ok()) << r.status().message();
  EXPECT_EQ(ok.user(), "bob");
  // A client-first token is refused: DIGEST-MD5 is server-first.
  DigestMd5Server first(&users, {}, "n1");
  EXPECT_FALSE(first.Step("username=\"bob\"").ok());
}

TEST(SaslTest, RandomNoncesDiffer) {
  SaslUsers users{{"bob", "x"}};
  DigestMd5Server a(&users, {}), b(&users, {});
  EXPECT_NE(*a.Step(""), *b.Step(""));
}

TEST(SaslTest, JaasServerSection) {
  auto users = ParseJaasUsers(R"(
// the client's section is not ours
Client {
  org.apache.zookeeper.server.auth.DigestLoginModule required
  username="bob" password="bobsecret";
};
Server {
  /* ZooKeeper's server login */
  org.apache.zookeeper.server.auth.DigestLoginModule required
  user_super="adminsecret"
  user_bob="bob secret";
};
)");
  ASSERT_TRUE(users.ok()) << users.status().message();
  EXPECT_EQ(*users, (SaslUsers{{"bob", "bob secret"}, {"super", "adminsecret"}}));
  EXPECT_FALSE(ParseJaasUsers("Client { x required user_a=\"b\"; };").ok()) << "no Server";
  EXPECT_FALSE(
      ParseJaasUsers("Server { com.sun.security.auth.module.Krb5LoginModule required; };").ok())
      << "Kerberos is not served";
  EXPECT_FALSE(
      ParseJaasUsers("Server { org.apache.zookeeper.server.auth.DigestLoginModule required; };")
          .ok())
      << "no user";
  EXPECT_FALSE(ParseJaasUsers("Server { DigestLoginModule required user_a=b; };").ok());
}

// ACL ids of scheme sasl: Kerberos-style names, matched exactly; the SASL user "super" matches
// every sasl entry (ZooKeeper's SASLAuthenticationProvider).
TEST(SaslTest, SaslAclIds) {
  using tree::Acl;
  using tree::Id;
  std::vector<Acl> out;
  for (const char* good : {"bob", "zookeeper/host", "bob@EXAMPLE.COM", "bob/host@EXAMPLE.COM"})
    EXPECT_EQ(tree::Err::kOk, tree::FixupAcl({Acl{31, Id{"sasl", good}}}, {}, &out)) << good;
  for (const char* bad : {"", "a@b@c", "a/b/c@R", "a@R/x"})
    EXPECT_EQ(tree::Err::kInvalidAcl, tree::FixupAcl({Acl{31, Id{"sasl", bad}}}, {}, &out)) << bad;
  std::vector<Id> bob = {{"ip", "127.0.0.1"}, {"sasl", "bob"}};
  ASSERT_EQ(tree::Err::kOk, tree::FixupAcl({Acl{31, Id{"auth", ""}}}, bob, &out));
  EXPECT_EQ((std::vector<Acl>{Acl{31, Id{"sasl", "bob"}}}), out);
  EXPECT_TRUE(tree::AclAllows(out, 1, bob));
  EXPECT_FALSE(tree::AclAllows(out, 1, {{"sasl", "alice"}}));
  EXPECT_FALSE(tree::AclAllows(out, 1, {{"digest", "bob"}}));
  EXPECT_TRUE(tree::AclAllows(out, 1, {{"sasl", "super"}}));
}

}  // namespace
}  // namespace qfs::server
