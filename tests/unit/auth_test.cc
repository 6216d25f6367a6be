#include "daemon/server/auth.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <string>

namespace qfs::server {
namespace {

std::string HexOf(const Sha1Digest& d) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string s;
  for (uint8_t b : d) {
    s += kHex[b >> 4];
    s += kHex[b & 15];
  }
  return s;
}

// FIPS 180-1 appendix vectors plus the empty message.
TEST(Sha1Test, StandardVectors) {
  EXPECT_EQ(HexOf(Sha1::Hash("abc")), "a9993e364706816aba3e25717850c26c9cd0d89d");
  EXPECT_EQ(HexOf(Sha1::Hash("")), "da39a3ee5e6b4b0d3255bfef95601890afd80709");
  EXPECT_EQ(HexOf(Sha1::Hash("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq")),
            "84983e441c3bd26ebaae4aa1f95129e5e54670f1");
  EXPECT_EQ(HexOf(Sha1::Hash(std::string(1000000, 'a'))),
            "34aa973cd4c4daa4f61eeb2bdbad27316534016f");
}

TEST(Sha1Test, IncrementalMatchesOneShotAcrossBlockBoundaries) {
  std::string msg;
  for (int i = 0; i < 300; ++i) msg += static_cast<char>(i * 7 + 3);
  for (size_t len : {0, 1, 55, 56, 57, 63, 64, 65, 119, 120, 128, 300}) {
    std::string m = msg.substr(0, len);
    for (size_t step : {1, 3, 63, 64, 100}) {
      Sha1 s;
      for (size_t off = 0; off < m.size(); off += step) s.Update(m.substr(off, step));
      EXPECT_EQ(s.Finish(), Sha1::Hash(m)) << "len " << len << " step " << step;
    }
  }
  // One million 'a' fed in uneven pieces.
  Sha1 s;
  std::string chunk(997, 'a');
  size_t left = 1000000;
  while (left > 0) {
    size_t n = std::min(left, chunk.size());
    s.Update(std::string_view(chunk).substr(0, n));
    left -= n;
  }
  EXPECT_EQ(HexOf(s.Finish()), "34aa973cd4c4daa4f61eeb2bdbad27316534016f");
}

// RFC 2202 test cases 1, 2 and 6 (key longer than a block).
TEST(HmacSha1Test, Rfc2202) {
  EXPECT_EQ(HexOf(HmacSha1(std::string(20, '\x0b'), "Hi There")),
            "b617318655057264e28bc0b6fb378c8ef146be00");
  EXPECT_EQ(HexOf(HmacSha1("Jefe", "what do ya want for nothing?")),
            "effcdf6ae5eb2fa2d27416d5f184df9c259a7c79");
  EXPECT_EQ(HexOf(HmacSha1(std::string(80, '\xaa'),
                           "Test Using Larger Than Block-Size Key - Hash Key First")),
            "aa4ae5e15272d00e95705637ce8a3b55ed402112");
}

// RFC 4648 section 10.
TEST(Base64Test, Rfc4648Vectors) {
  EXPECT_EQ(Base64Encode(""), "");
  EXPECT_EQ(Base64Encode("f"), "Zg==");
  EXPECT_EQ(Base64Encode("fo"), "Zm8=");
  EXPECT_EQ(Base64Encode("foo"), "Zm9v");
  EXPECT_EQ(Base64Encode("foob"), "Zm9vYg==");
  EXPECT_EQ(Base64Encode("fooba"), "Zm9vYmE=");
  EXPECT_EQ(Base64Encode("foobar"), "Zm9vYmFy");
  EXPECT_EQ(Base64Encode(std::string("\xff\xfe\x00", 3)), "//4A");
}

// Values computed with `printf 'user:pass' | openssl dgst -binary -sha1 | base64`;
// super:admin is also the example in ZooKeeper's administrator guide.
TEST(DigestIdTest, MatchesZooKeeperGenerateDigest) {
  EXPECT_EQ(DigestId("super:admin"), "super:xQJmxLMiHGwaqBvst5y6rkB6HQs=");
  EXPECT_EQ(DigestId("super:test"), "super:D/InIHSb7yEEbrWz8b9l71RjZJU=");
  EXPECT_EQ(DigestId("user:pass"), "user:smGaoVKd/cQkjm7b88GyorAUz20=");
  // Only the first ':' splits; the whole input is hashed.
  EXPECT_EQ(DigestId("u:p:q").substr(0, 2), "u:");
  EXPECT_NE(DigestId("u:p:q"), DigestId("u:p"));
  // No ':' at all: the whole input is the user (String.split(":", 2) gives one part).
  EXPECT_EQ(DigestId("nopassword"), "nopassword:0Ybo2sSKJNARW1aNCrLJ6Lguats=");
  EXPECT_EQ(DigestId(":x"), ":57b19mLA2vMhI/edHul/TytWqWE=");
  EXPECT_EQ(DigestId(""), ":2jmj7l5rSw0yVb/vlWAYkK/YBwk=");
}

TEST(AuthenticateTest, DigestAddsDigestId) {
  std::vector<tree::Id> ids;
  EXPECT_EQ(Authenticate("digest", "user:pass", "10.0.0.1", "", &ids), tree::Err::kOk);
  ASSERT_EQ(ids.size(), 1u);
  EXPECT_EQ(ids[0], (tree::Id{"digest", "user:smGaoVKd/cQkjm7b88GyorAUz20="}));
}

TEST(AuthenticateTest, DigestNeverFails) {
  std::vector<tree::Id> ids;
  EXPECT_EQ(Authenticate("digest", "", "127.0.0.1", "", &ids), tree::Err::kOk);
  ASSERT_EQ(ids.size(), 1u);
  EXPECT_EQ(ids[0].id, ":2jmj7l5rSw0yVb/vlWAYkK/YBwk=");
}

TEST(AuthenticateTest, SuperDigestAddsSuperThenDigest) {
  const std::string super = "super:xQJmxLMiHGwaqBvst5y6rkB6HQs=";
  std::vector<tree::Id> ids;
  EXPECT_EQ(Authenticate("digest", "super:admin", "127.0.0.1", super, &ids), tree::Err::kOk);
  ASSERT_EQ(ids.size(), 2u);
  EXPECT_EQ(ids[0], (tree::Id{"super", ""}));
  EXPECT_EQ(ids[1], (tree::Id{"digest", super}));

  ids.clear();
  EXPECT_EQ(Authenticate("digest", "super:wrong", "127.0.0.1", super, &ids), tree::Err::kOk);
  ASSERT_EQ(ids.size(), 1u);
  EXPECT_EQ(ids[0].scheme, "digest");
}

TEST(AuthenticateTest, NoSuperWhenNotConfigured) {
  std::vector<tree::Id> ids;
  EXPECT_EQ(Authenticate("digest", "super:admin", "127.0.0.1", "", &ids), tree::Err::kOk);
  ASSERT_EQ(ids.size(), 1u);
  EXPECT_EQ(ids[0].scheme, "digest");
}

TEST(AuthenticateTest, IpSchemeRepeatsTheConnectionAddress) {
  std::vector<tree::Id> ids = {{"ip", "192.168.1.5"}};
  EXPECT_EQ(Authenticate("ip", "10.9.9.9", "192.168.1.5", "", &ids), tree::Err::kOk);
  ASSERT_EQ(ids.size(), 1u);  // already held
  EXPECT_EQ(ids[0], (tree::Id{"ip", "192.168.1.5"}));

  std::vector<tree::Id> fresh;
  EXPECT_EQ(Authenticate("ip", "", "::1", "", &fresh), tree::Err::kOk);
  ASSERT_EQ(fresh.size(), 1u);
  EXPECT_EQ(fresh[0], (tree::Id{"ip", "::1"}));
}

TEST(AuthenticateTest, UnknownSchemeFailsAndAddsNothing) {
  for (const char* scheme : {"world", "sasl", "x509", "Digest", "", "super"}) {
    std::vector<tree::Id> ids;
    EXPECT_EQ(Authenticate(scheme, "user:pass", "127.0.0.1", "", &ids), tree::Err::kAuthFailed)
        << scheme;
    EXPECT_TRUE(ids.empty()) << scheme;
  }
}

TEST(AuthenticateTest, RepeatedAuthKeepsASet) {
  std::vector<tree::Id> ids = {{"ip", "127.0.0.1"}};
  ASSERT_EQ(Authenticate("digest", "a:b", "127.0.0.1", "", &ids), tree::Err::kOk);
  ASSERT_EQ(Authenticate("digest", "a:b", "127.0.0.1", "", &ids), tree::Err::kOk);
  ASSERT_EQ(Authenticate("digest", "c:d", "127.0.0.1", "", &ids), tree::Err::kOk);
  ASSERT_EQ(ids.size(), 3u);
  EXPECT_EQ(ids[1], (tree::Id{"digest", DigestId("a:b")}));
  EXPECT_EQ(ids[2], (tree::Id{"digest", DigestId("c:d")}));
}

}  // namespace
}  // namespace qfs::server
