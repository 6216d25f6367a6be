// The jute codec and the ZooKeeper client protocol: primitive encodings, round trips of every
// record, byte-exact packets as real clients send them (hand-computed from zookeeper.jute and
// kazoo's serializers), every class of malformed input, and conversion to tree requests.
#include "daemon/server/jute.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "daemon/server/protocol.h"

namespace qfs::zk {
namespace {

// "00 01 ff" -> bytes; spaces and '|' are separators for readability.
std::string Hex(std::string_view h) {
  std::string out;
  int nibbles = 0;
  unsigned cur = 0;
  for (char c : h) {
    unsigned v;
    if (c >= '0' && c <= '9') {
      v = static_cast<unsigned>(c - '0');
    } else if (c >= 'a' && c <= 'f') {
      v = static_cast<unsigned>(c - 'a' + 10);
    } else {
      continue;
    }
    cur = (cur << 4) | v;
    if (++nibbles == 2) {
      out.push_back(static_cast<char>(cur));
      nibbles = 0;
      cur = 0;
    }
  }
  EXPECT_EQ(nibbles, 0) << "odd hex digit count";
  return out;
}

std::string ToHex(std::string_view s) {
  static const char* d = "0123456789abcdef";
  std::string out;
  for (char c : s) {
    const auto b = static_cast<unsigned char>(c);
    out.push_back(d[b >> 4]);
    out.push_back(d[b & 15]);
  }
  return out;
}

// Drops and checks the 4-byte length prefix of a frame.
std::string Payload(const std::string& frame) {
  EXPECT_GE(frame.size(), 4u);
  Result<int32_t> len = DecodeFrameLength(std::string_view(frame).substr(0, 4));
  EXPECT_TRUE(len.ok());
  if (len.ok()) {
    EXPECT_EQ(static_cast<size_t>(*len), frame.size() - 4);
  }
  return frame.substr(4);
}

std::vector<tree::Acl> Open() {
  return {tree::Acl{31, tree::Id{"world", "anyone"}}};
}

tree::Stat SampleStat() {
  tree::Stat s;
  s.czxid = 0x0102030405060708;
  s.mzxid = -2;
  s.ctime = 1700000000000;
  s.mtime = 1700000000001;
  s.version = 7;
  s.cversion = -1;
  s.aversion = 3;
  s.ephemeral_owner = 0x01a216cd226f0001;  // a session id
  s.data_length = 5;
  s.num_children = 2;
  s.pzxid = 0x7fffffffffffffff;
  return s;
}

ClientRequest Req(int32_t xid, int32_t type, RequestBody body = {}) {
  ClientRequest r;
  r.header = {xid, type};
  r.body = std::move(body);
  return r;
}

CreateRequest Create(std::string path, std::string data, int32_t flags, int64_t ttl = -1) {
  CreateRequest c;
  c.path = std::move(path);
  c.data = std::move(data);
  c.acl = Open();
  c.flags = flags;
  c.ttl = ttl;
  return c;
}

MultiOp MOp(int32_t type, decltype(MultiOp::body) body) {
  MultiOp o;
  o.type = type;
  o.body = std::move(body);
  return o;
}

// One request of every opcode the decoder parses.
std::vector<ClientRequest> AllRequests() {
  std::vector<ClientRequest> v;
  v.push_back(Req(1, op::kCreate, Create("/a", "data", 0)));
  v.push_back(Req(2, op::kCreate2, Create("/b", "", 3)));
  v.push_back(Req(3, op::kCreateContainer, Create("/c", "x", 4)));
  v.push_back(Req(4, op::kCreateTtl, Create("/d", "y", 5, 60000)));
  v.push_back(Req(5, op::kDelete, PathVersionRequest{"/a", 3}));
  v.push_back(Req(6, op::kExists, PathWatchRequest{"/a", true}));
  v.push_back(Req(7, op::kGetData, PathWatchRequest{"/a", false}));
  v.push_back(Req(8, op::kSetData, SetDataRequest{"/a", std::string("\0\1\2", 3), -1}));
  v.push_back(Req(9, op::kGetAcl, PathRequest{"/a"}));
  v.push_back(Req(10, op::kSetAcl,
                  SetAclRequest{"/a", {{1, {"digest", "u:h"}}, {31, {"ip", "10.0.0.1"}}}, 2}));
  v.push_back(Req(11, op::kGetChildren, PathWatchRequest{"/", true}));
  v.push_back(Req(12, op::kSync, PathRequest{"/a"}));
  v.push_back(Req(xid::kPing, op::kPing));
  v.push_back(Req(13, op::kGetChildren2, PathWatchRequest{"/z", false}));
  v.push_back(Req(14, op::kCheck, PathVersionRequest{"/a", 0}));
  MultiRequest multi;
  multi.ops.push_back(MOp(op::kCreate, Create("/m", "1", 0)));
  multi.ops.push_back(MOp(op::kCreate2, Create("/m/s", "", 2)));
  multi.ops.push_back(MOp(op::kCreateContainer, Create("/m/c", "", 4)));
  multi.ops.push_back(MOp(op::kCreateTtl, Create("/m/t", "", 6, 1000)));
  multi.ops.push_back(MOp(op::kDelete, PathVersionRequest{"/m/x", 1}));
  multi.ops.push_back(MOp(op::kSetData, SetDataRequest{"/m", "2", 0}));
  multi.ops.push_back(MOp(op::kCheck, PathVersionRequest{"/m", 1}));
  v.push_back(Req(15, op::kMulti, multi));
  v.push_back(Req(16, op::kMulti, MultiRequest{}));
  v.push_back(Req(17, op::kReconfig, ReconfigRequest{"server.4=h:1:2", "", "", -1}));
  v.push_back(Req(18, op::kCheckWatches, WatchTypeRequest{"/a", 1}));
  v.push_back(Req(19, op::kRemoveWatches, WatchTypeRequest{"/a", 3}));
  MultiRequest reads;
  reads.ops.push_back(MOp(op::kGetChildren, PathWatchRequest{"/", false}));
  reads.ops.push_back(MOp(op::kGetData, PathWatchRequest{"/a", false}));
  v.push_back(Req(20, op::kMultiRead, reads));
  v.push_back(Req(xid::kAuth, op::kAuth, AuthPacket{0, "digest", "user:pw"}));
  SetWatchesRequest sw;
  sw.relative_zxid = 0x100;
  sw.data_watches = {"/a", "/b"};
  sw.exist_watches = {"/c"};
  sw.child_watches = {};
  v.push_back(Req(xid::kSetWatches, op::kSetWatches, sw));
  v.push_back(Req(21, op::kSasl, SaslToken{std::string("\x60\x82\0", 3)}));
  v.push_back(Req(22, op::kGetEphemerals, PathRequest{"/e"}));
  v.push_back(Req(23, op::kGetAllChildrenNumber, PathRequest{"/"}));
  SetWatchesRequest sw2 = sw;
  sw2.persistent_watches = {"/p"};
  sw2.persistent_recursive_watches = {"/r", "/s"};
  v.push_back(Req(xid::kSetWatches, op::kSetWatches2, sw2));
  v.push_back(Req(24, op::kAddWatch, AddWatchRequest{"/w", 1}));
  v.push_back(Req(25, op::kWhoAmI));
  v.push_back(Req(26, op::kCloseSession));
  return v;
}

// ---------------------------------------------------------------------------------------------
// Primitives.

TEST(JuteReader, ReadsBigEndianPrimitives) {
  const std::string r_in = Hex("01020304 fffffffe 0102030405060708 ffffffffffffffff 00 01 02");
  JuteReader r(r_in);
  int32_t i;
  int64_t l;
  bool b;
  ASSERT_TRUE(r.ReadInt(&i));
  EXPECT_EQ(i, 0x01020304);
  ASSERT_TRUE(r.ReadInt(&i));
  EXPECT_EQ(i, -2);
  ASSERT_TRUE(r.ReadLong(&l));
  EXPECT_EQ(l, 0x0102030405060708);
  ASSERT_TRUE(r.ReadLong(&l));
  EXPECT_EQ(l, -1);
  ASSERT_TRUE(r.ReadBool(&b));
  EXPECT_FALSE(b);
  ASSERT_TRUE(r.ReadBool(&b));
  EXPECT_TRUE(b);
  ASSERT_TRUE(r.ReadBool(&b));
  EXPECT_TRUE(b);  // non-zero is true, as DataInput.readBoolean
  EXPECT_TRUE(r.AtEnd());
}

TEST(JuteReader, BuffersAndNull) {
  const std::string r_in = Hex("00000003 616263 ffffffff 00000000");
  JuteReader r(r_in);
  std::string s = "junk";
  bool is_null = true;
  ASSERT_TRUE(r.ReadBuffer(&s, &is_null));
  EXPECT_EQ(s, "abc");
  EXPECT_FALSE(is_null);
  ASSERT_TRUE(r.ReadString(&s, &is_null));
  EXPECT_EQ(s, "");
  EXPECT_TRUE(is_null);
  ASSERT_TRUE(r.ReadBuffer(&s, &is_null));
  EXPECT_EQ(s, "");
  EXPECT_FALSE(is_null);
  EXPECT_TRUE(r.AtEnd());
}

TEST(JuteReader, RejectsBadLengths) {
  std::string s;
  {
    const std::string r_in = Hex("fffffffe");  // -2
    JuteReader r(r_in);
    EXPECT_FALSE(r.ReadBuffer(&s));
  }
  {
    const std::string r_in = Hex("80000000");  // INT32_MIN
    JuteReader r(r_in);
    EXPECT_FALSE(r.ReadBuffer(&s));
  }
  {
    const std::string r_in = Hex("00000004 616263");  // one byte short
    JuteReader r(r_in);
    EXPECT_FALSE(r.ReadBuffer(&s));
  }
  {
    const std::string r_in = Hex("00000004 61626364");
    JuteReader r(r_in, /*max_buffer=*/3);
    EXPECT_FALSE(r.ReadBuffer(&s));
  }
  {
    const std::string r_in = Hex("00000003 616263");
    JuteReader r(r_in, /*max_buffer=*/3);
    EXPECT_TRUE(r.ReadBuffer(&s));
  }
  {
    const std::string r_in = Hex("7fffffff 00");
    JuteReader r(r_in);
    EXPECT_FALSE(r.ReadBuffer(&s));
  }
}

TEST(JuteReader, UnderflowIsStickyAndNeverReadsPastTheEnd) {
  const std::string r_in = Hex("000000");
  JuteReader r(r_in);
  int32_t i = 42;
  EXPECT_FALSE(r.ReadInt(&i));
  EXPECT_EQ(i, 42);
  EXPECT_FALSE(r.ok());
  bool b;
  EXPECT_FALSE(r.ReadBool(&b));  // a byte is left, but the reader has failed
  EXPECT_FALSE(r.AtEnd());
  int64_t l;
  const std::string r2_in = Hex("00000000000000");
  JuteReader r2(r2_in);
  EXPECT_FALSE(r2.ReadLong(&l));
}

TEST(JuteReader, VectorCounts) {
  std::vector<std::string> v{"old"};
  {
    const std::string r_in = Hex("ffffffff");
    JuteReader r(r_in);
    ASSERT_TRUE(r.ReadStringVector(&v));
    EXPECT_TRUE(v.empty());
  }
  {
    const std::string r_in = Hex("fffffffe");
    JuteReader r(r_in);
    EXPECT_FALSE(r.ReadStringVector(&v));
  }
  {
    // Claims 2^31-1 strings in 4 bytes: refused before allocating.
    const std::string r_in = Hex("7fffffff 00000000");
    JuteReader r(r_in);
    EXPECT_FALSE(r.ReadStringVector(&v));
  }
  {
    const std::string r_in = Hex("00000002 00000001 61 ffffffff");
    JuteReader r(r_in);
    ASSERT_TRUE(r.ReadStringVector(&v));
    EXPECT_EQ(v, (std::vector<std::string>{"a", ""}));
  }
  std::vector<tree::Acl> acl;
  {
    const std::string r_in = Hex("00000002 0000001f 00000000 00000000");  // room for one ACL only
    JuteReader r(r_in);
    EXPECT_FALSE(r.ReadAclVector(&acl));
  }
}

TEST(JuteWriter, WritesBigEndianAndFrames) {
  JuteWriter w;
  w.WriteInt(0x01020304);
  w.WriteInt(-1);
  w.WriteLong(0x0102030405060708);
  w.WriteBool(true);
  w.WriteBool(false);
  w.WriteBuffer("ab");
  w.WriteNullBuffer();
  w.WriteStringVector({"x"});
  EXPECT_EQ(ToHex(w.data()),
            "01020304"
            "ffffffff"
            "0102030405060708"
            "01"
            "00"
            "00000002"
            "6162"
            "ffffffff"
            "00000001"
            "00000001"
            "78");

  JuteWriter f(JuteWriter::Framing::kLengthPrefixed);
  f.WriteInt(7);
  EXPECT_EQ(ToHex(std::move(f).Finish()), "0000000400000007");
  JuteWriter empty(JuteWriter::Framing::kLengthPrefixed);
  EXPECT_EQ(ToHex(std::move(empty).Finish()), "00000000");
}

TEST(JuteRecords, StatIdAclRoundTripAndSizes) {
  JuteWriter w;
  w.WriteStat(SampleStat());
  EXPECT_EQ(w.size(), kStatBytes);
  EXPECT_EQ(ToHex(w.data()),
            "0102030405060708"
            "fffffffffffffffe"
            "0000018bcfe56800"
            "0000018bcfe56801"
            "00000007"
            "ffffffff"
            "00000003"
            "01a216cd226f0001"
            "00000005"
            "00000002"
            "7fffffffffffffff");
  std::vector<tree::Acl> acl = {{31, {"world", "anyone"}}, {0, {"", ""}}, {5, {"x", "y"}}};
  w.WriteAclVector(acl);
  w.WriteId({"sasl", "bob"});

  JuteReader r(w.data());
  tree::Stat s;
  std::vector<tree::Acl> acl2;
  tree::Id id;
  ASSERT_TRUE(r.ReadStat(&s));
  ASSERT_TRUE(r.ReadAclVector(&acl2));
  ASSERT_TRUE(r.ReadId(&id));
  EXPECT_TRUE(r.AtEnd());
  EXPECT_EQ(s, SampleStat());
  EXPECT_EQ(acl2, acl);
  EXPECT_EQ(id, (tree::Id{"sasl", "bob"}));
}

// ---------------------------------------------------------------------------------------------
// Byte-exact packets.

TEST(Protocol, KazooCreateRequestBytes) {
  // kazoo: Create("/foo", b"bar", [ACL(31, Id("world", "anyone"))], 0) with xid 1.
  const std::string wire =
      Hex("00000036"               // frame length 54
          "00000001 00000001"      // xid 1, create
          "00000004 2f666f6f"      // "/foo"
          "00000003 626172"        // b"bar"
          "00000001"               // one ACL
          "0000001f"               // perms ALL
          "00000005 776f726c64"    // "world"
          "00000006 616e796f6e65"  // "anyone"
          "00000000");             // flags PERSISTENT
  ClientRequest expected = Req(1, op::kCreate, Create("/foo", "bar", 0));
  EXPECT_EQ(ToHex(EncodeRequest(expected)), ToHex(wire));
  Result<ClientRequest> got = DecodeRequest(std::string_view(wire).substr(4));
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  EXPECT_EQ(*got, expected);
  EXPECT_FALSE(got->unimplemented);
}

TEST(Protocol, KazooNullStringsDecodeAsEmpty) {
  // kazoo writes an empty string as -1 and data=None as -1.
  const std::string body = Hex("00000007 00000001 ffffffff ffffffff 00000000 00000000");
  Result<ClientRequest> got = DecodeRequest(body);
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  const auto& c = std::get<CreateRequest>(got->body);
  EXPECT_EQ(c.path, "");
  EXPECT_EQ(c.data, "");
  EXPECT_TRUE(c.acl.empty());
}

TEST(Protocol, ConnectRequestWithAndWithoutReadOnly) {
  const std::string fields =
      "00000000"                                    // protocolVersion
      "0000000000000abc"                            // lastZxidSeen
      "00002710"                                    // timeOut 10000
      "0123456789abcdef"                            // sessionId
      "00000010 000102030405060708090a0b0c0d0e0f";  // 16-byte passwd
  ConnectRequest c;
  c.last_zxid_seen = 0xabc;
  c.timeout_ms = 10000;
  c.session_id = 0x0123456789abcdef;
  c.passwd = Hex("000102030405060708090a0b0c0d0e0f");
  c.has_read_only = true;
  c.read_only = true;

  const std::string with = Hex("0000002d" + std::string(fields) + "01");
  EXPECT_EQ(ToHex(EncodeConnectRequest(c)), ToHex(with));
  Result<ConnectRequest> got = DecodeConnect(std::string_view(with).substr(4));
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  EXPECT_EQ(*got, c);

  // A 3.3 client stops after passwd.
  const std::string without = Hex("0000002c" + std::string(fields));
  c.has_read_only = false;
  c.read_only = false;
  EXPECT_EQ(ToHex(EncodeConnectRequest(c)), ToHex(without));
  got = DecodeConnect(std::string_view(without).substr(4));
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  EXPECT_EQ(*got, c);

  // Two bytes after passwd: neither form.
  EXPECT_FALSE(DecodeConnect(with.substr(4) + std::string(1, '\0')).ok());
}

TEST(Protocol, ConnectResponseBytes) {
  ConnectResponse r{0, 30000, 0x0123456789abcdef, std::string(16, '\x11'), false};
  const std::string fields =
      "00000000 00007530 0123456789abcdef 00000010 11111111111111111111111111111111";
  EXPECT_EQ(ToHex(EncodeConnectResponse(r, true)),
            ToHex(Hex("00000025" + std::string(fields) + "00")));
  EXPECT_EQ(ToHex(EncodeConnectResponse(r, false)), ToHex(Hex("00000024" + std::string(fields))));
  r.read_only = true;
  EXPECT_EQ(ToHex(EncodeConnectResponse(r, true)),
            ToHex(Hex("00000025" + std::string(fields) + "01")));
}

const char* kMultiHex =
    "00000069"                // frame length 105
    "00000005 0000000e"       // xid 5, multi
    "00000001 00 ffffffff"    // MultiHeader{create, false, -1}
    "00000002 2f61 00000000"  // "/a", b""
    "00000001 0000001f 00000005 776f726c64 00000006 616e796f6e65 00000000"  // open ACL, flags 0
    "00000002 00 ffffffff"                                                  // MultiHeader{delete}
    "00000002 2f62 00000003"                                                // "/b", version 3
    "0000000d 00 ffffffff"                                                  // MultiHeader{check}
    "00000002 2f63 ffffffff"                                                // "/c", version -1
    "ffffffff 01 ffffffff";  // terminator {-1, true, -1}

ClientRequest ThreeOpMulti() {
  MultiRequest m;
  m.ops.push_back(MOp(op::kCreate, Create("/a", "", 0)));
  m.ops.push_back(MOp(op::kDelete, PathVersionRequest{"/b", 3}));
  m.ops.push_back(MOp(op::kCheck, PathVersionRequest{"/c", -1}));
  return Req(5, op::kMulti, m);
}

TEST(Protocol, MultiRequestBytes) {
  const std::string wire = Hex(kMultiHex);
  EXPECT_EQ(ToHex(EncodeRequest(ThreeOpMulti())), ToHex(wire));
  Result<ClientRequest> got = DecodeRequest(std::string_view(wire).substr(4));
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  EXPECT_EQ(*got, ThreeOpMulti());
}

TEST(Protocol, MultiResponseBytes) {
  const ClientRequest req = ThreeOpMulti();
  const auto& m = std::get<MultiRequest>(req.body);
  std::vector<tree::OpResult> ok(3);
  ok[0].path = "/a";
  ok[0].stat = SampleStat();  // a plain create answers CreateResponse: no stat
  ok[1].type = tree::OpType::kDelete;
  ok[2].type = tree::OpType::kCheck;
  EXPECT_EQ(ToHex(EncodeMultiResponse({5, 0x10, 0}, m, ok)),
            ToHex(Hex("0000003a"
                      "00000005 0000000000000010 00000000"
                      "00000001 00 00000000 00000002 2f61"
                      "00000002 00 00000000"
                      "0000000d 00 00000000"
                      "ffffffff 01 ffffffff")));

  std::vector<tree::OpResult> failed = ok;
  failed[0].err = tree::Err::kOk;
  failed[1].err = tree::Err::kNoNode;
  failed[2].err = tree::Err::kRuntimeInconsistency;
  EXPECT_EQ(ToHex(EncodeMultiResponse({5, 0x10, 0}, m, failed)),
            ToHex(Hex("00000040"
                      "00000005 0000000000000010 00000000"
                      "ffffffff 00 00000000 00000000"
                      "ffffffff 00 ffffff9b ffffff9b"
                      "ffffffff 00 fffffffe fffffffe"
                      "ffffffff 01 ffffffff")));
}

TEST(Protocol, MultiResponseCreateTypesFollowTheFlags) {
  MultiRequest m;
  m.ops.push_back(MOp(op::kCreate2, Create("/p", "", 0)));         // plain: CreateResponse
  m.ops.push_back(MOp(op::kCreate, Create("/c", "", 4)));          // container: Create2Response
  m.ops.push_back(MOp(op::kCreateTtl, Create("/t", "", 5, 100)));  // TTL: Create2Response
  m.ops.push_back(MOp(op::kSetData, SetDataRequest{"/p", "v", -1}));
  EXPECT_EQ(MultiResultType(m.ops[0]), op::kCreate);
  EXPECT_EQ(MultiResultType(m.ops[1]), op::kCreate2);
  EXPECT_EQ(MultiResultType(m.ops[2]), op::kCreate2);
  EXPECT_EQ(MultiResultType(m.ops[3]), op::kSetData);

  std::vector<tree::OpResult> res(4);
  for (int i = 0; i < 3; ++i) res[i].path = std::get<CreateRequest>(m.ops[i].body).path;
  res[1].stat = SampleStat();
  res[2].stat.czxid = 9;
  res[3].type = tree::OpType::kSetData;
  res[3].stat.version = 4;
  const std::string frame = EncodeMultiResponse({1, 2, 0}, m, res);
  const std::string r_in = Payload(frame);
  JuteReader r(r_in);
  ReplyHeader h;
  ASSERT_TRUE(h.Read(r));
  EXPECT_EQ(h, (ReplyHeader{1, 2, 0}));
  MultiHeader mh;
  PathResponse p;
  Create2Response c2;
  StatResponse st;
  ASSERT_TRUE(mh.Read(r) && p.Read(r));
  EXPECT_EQ(mh, (MultiHeader{op::kCreate, false, 0}));
  EXPECT_EQ(p.path, "/p");
  ASSERT_TRUE(mh.Read(r) && c2.Read(r));
  EXPECT_EQ(mh.type, op::kCreate2);
  EXPECT_EQ(c2, (Create2Response{"/c", SampleStat()}));
  ASSERT_TRUE(mh.Read(r) && c2.Read(r));
  EXPECT_EQ(mh.type, op::kCreate2);
  EXPECT_EQ(c2.stat.czxid, 9);
  ASSERT_TRUE(mh.Read(r) && st.Read(r));
  EXPECT_EQ(mh.type, op::kSetData);
  EXPECT_EQ(st.stat.version, 4);
  ASSERT_TRUE(mh.Read(r));
  EXPECT_EQ(mh, (MultiHeader{-1, true, -1}));
  EXPECT_TRUE(r.AtEnd());
}

TEST(Protocol, MultiReadResponse) {
  std::vector<MultiReadResult> res(3);
  res[0].type = op::kGetChildren;
  res[0].children = {"a", "b"};
  res[1].type = op::kGetData;
  res[1].data = "xyz";
  res[1].stat = SampleStat();
  res[2].type = op::kError;
  res[2].err = tree::Err::kNoNode;
  const std::string r_in = Payload(EncodeMultiReadResponse({3, 4, 0}, res));
  JuteReader r(r_in);
  ReplyHeader h;
  MultiHeader mh;
  StringListResponse ch;
  GetDataResponse gd;
  IntResponse er;
  ASSERT_TRUE(h.Read(r));
  ASSERT_TRUE(mh.Read(r) && ch.Read(r));
  EXPECT_EQ(mh, (MultiHeader{op::kGetChildren, false, 0}));
  EXPECT_EQ(ch.strings, res[0].children);
  ASSERT_TRUE(mh.Read(r) && gd.Read(r));
  EXPECT_EQ(mh, (MultiHeader{op::kGetData, false, 0}));
  EXPECT_EQ(gd, (GetDataResponse{"xyz", SampleStat()}));
  ASSERT_TRUE(mh.Read(r) && er.Read(r));
  EXPECT_EQ(mh, (MultiHeader{op::kError, false, -101}));
  EXPECT_EQ(er.value, -101);
  ASSERT_TRUE(mh.Read(r));
  EXPECT_TRUE(mh.done);
  EXPECT_TRUE(r.AtEnd());
}

TEST(Protocol, NotificationAndHeaderOnlyReplies) {
  EXPECT_EQ(
      ToHex(EncodeNotification({event::kNodeDataChanged, state::kSyncConnected, "/a"})),
      ToHex(Hex("0000001e ffffffff ffffffffffffffff 00000000 00000003 00000003 00000002 2f61")));
  EXPECT_EQ(
      ToHex(EncodeNotification({event::kNodeCreated, state::kSyncConnected, "/b"}, 0x42)),
      ToHex(Hex("0000001e ffffffff 0000000000000042 00000000 00000001 00000003 00000002 2f62")));
  EXPECT_EQ(ToHex(EncodeReply({xid::kPing, 0x1234, 0})),
            ToHex(Hex("00000010 fffffffe 0000000000001234 00000000")));
  EXPECT_EQ(ToHex(EncodeReply({7, 1, static_cast<int32_t>(tree::Err::kNodeExists)})),
            ToHex(Hex("00000010 00000007 0000000000000001 ffffff92")));
  // addWatch answers an ErrorResponse{0} body.
  EXPECT_EQ(ToHex(EncodeReply({8, 2, 0}, IntResponse{0})),
            ToHex(Hex("00000014 00000008 0000000000000002 00000000 00000000")));
}

// ---------------------------------------------------------------------------------------------
// Round trips.

TEST(Protocol, EveryRequestRoundTrips) {
  for (const ClientRequest& req : AllRequests()) {
    SCOPED_TRACE("opcode " + std::to_string(req.type()));
    const std::string frame = EncodeRequest(req);
    const std::string payload = Payload(frame);
    Result<ClientRequest> got = DecodeRequest(payload);
    ASSERT_TRUE(got.ok()) << got.status().ToString();
    EXPECT_EQ(*got, req);
    EXPECT_EQ(EncodeRequest(*got), frame);
  }
}

template <typename T>
void ExpectRecordRoundTrip(const T& rec) {
  const std::string frame = EncodeReply(ReplyHeader{9, 99, 0}, rec);
  const std::string r_in = Payload(frame);
  JuteReader r(r_in);
  ReplyHeader h;
  T back;
  ASSERT_TRUE(h.Read(r));
  EXPECT_EQ(h, (ReplyHeader{9, 99, 0}));
  ASSERT_TRUE(back.Read(r));
  EXPECT_TRUE(r.AtEnd());
  EXPECT_EQ(back, rec);
}

TEST(Protocol, EveryResponseRecordRoundTrips) {
  ExpectRecordRoundTrip(PathResponse{"/created0000000001"});
  ExpectRecordRoundTrip(Create2Response{"/x", SampleStat()});
  ExpectRecordRoundTrip(StatResponse{SampleStat()});
  ExpectRecordRoundTrip(GetDataResponse{std::string("\0\xff", 2), SampleStat()});
  ExpectRecordRoundTrip(StringListResponse{{"a", "bb", ""}});
  ExpectRecordRoundTrip(StringListResponse{});
  ExpectRecordRoundTrip(GetChildren2Response{{"c"}, SampleStat()});
  ExpectRecordRoundTrip(GetAclResponse{Open(), SampleStat()});
  ExpectRecordRoundTrip(IntResponse{-101});
  ExpectRecordRoundTrip(WhoAmIResponse{{{"ip", "127.0.0.1"}, {"digest", "bob"}}});
  ExpectRecordRoundTrip(WatcherEvent{event::kNodeDeleted, state::kSyncConnected, "/gone"});
  ExpectRecordRoundTrip(SaslToken{"token"});
  ExpectRecordRoundTrip(MultiHeader{op::kCreate, false, -1});
  ExpectRecordRoundTrip(RequestHeader{3, op::kGetData});

  ConnectResponse cr{0, 4000, 77, std::string(16, 'p'), true};
  for (bool ro : {true, false}) {
    const std::string r_in = Payload(EncodeConnectResponse(cr, ro));
    JuteReader r(r_in);
    ConnectResponse back;
    ASSERT_TRUE(r.ReadInt(&back.protocol_version) && r.ReadInt(&back.timeout_ms) &&
                r.ReadLong(&back.session_id) && r.ReadBuffer(&back.passwd));
    if (ro) {
      ASSERT_TRUE(r.ReadBool(&back.read_only));
    }
    EXPECT_TRUE(r.AtEnd());
    EXPECT_EQ(back.passwd, cr.passwd);
    EXPECT_EQ(back.session_id, 77);
    EXPECT_EQ(back.read_only, ro);
  }
}

// ---------------------------------------------------------------------------------------------
// Malformed input.

TEST(ProtocolMalformed, EveryTruncationFails) {
  for (const ClientRequest& req : AllRequests()) {
    const std::string payload = Payload(EncodeRequest(req));
    for (size_t n = 0; n < payload.size(); ++n) {
      EXPECT_FALSE(DecodeRequest(std::string_view(payload).substr(0, n)).ok())
          << "opcode " << req.type() << " cut at " << n << " of " << payload.size();
    }
  }
  ConnectRequest c;
  c.passwd = std::string(16, '\0');
  const std::string connect = Payload(EncodeConnectRequest(c));
  // Only the readOnly byte is optional.
  for (size_t n = 0; n + 1 < connect.size(); ++n) {
    EXPECT_FALSE(DecodeConnect(std::string_view(connect).substr(0, n)).ok()) << n;
  }
  EXPECT_TRUE(DecodeConnect(std::string_view(connect).substr(0, connect.size() - 1)).ok());
}

TEST(ProtocolMalformed, TrailingBytesFail) {
  for (const ClientRequest& req : AllRequests()) {
    const std::string payload = Payload(EncodeRequest(req)) + std::string(1, '\0');
    Result<ClientRequest> got = DecodeRequest(payload);
    EXPECT_FALSE(got.ok()) << "opcode " << req.type();
    if (!got.ok()) {
      EXPECT_EQ(got.status().code(), Code::kInvalidArgument);
    }
  }
}

TEST(ProtocolMalformed, NegativeAndOversizedLengths) {
  // create with path length -2.
  EXPECT_FALSE(DecodeRequest(Hex("00000001 00000001 fffffffe")).ok());
  // setData whose data claims 2 GiB.
  EXPECT_FALSE(DecodeRequest(Hex("00000001 00000005 00000002 2f61 7fffffff 00000000")).ok());
  // A 5-byte buffer is fine with max 5 and refused with max 4.
  const std::string set_data = Hex("00000001 00000005 00000002 2f61 00000005 6162636465 ffffffff");
  EXPECT_TRUE(DecodeRequest(set_data, 5).ok());
  EXPECT_FALSE(DecodeRequest(set_data, 4).ok());
  // ACL vector counts: -2 and more than the input holds.
  EXPECT_FALSE(DecodeRequest(Hex("00000001 00000007 00000002 2f61 fffffffe 00000000")).ok());
  EXPECT_FALSE(DecodeRequest(Hex("00000001 00000007 00000002 2f61 01000000 00000000")).ok());
  // A null ACL vector is accepted (as Java's -1) and left for the tree to reject.
  Result<ClientRequest> null_acl =
      DecodeRequest(Hex("00000001 00000007 00000002 2f61 ffffffff 00000000"));
  ASSERT_TRUE(null_acl.ok());
  EXPECT_TRUE(std::get<SetAclRequest>(null_acl->body).acl.empty());
  // Connect with a negative passwd length.
  EXPECT_FALSE(
      DecodeConnect(Hex("00000000 0000000000000000 00002710 0000000000000000 fffffff0")).ok());
}

TEST(ProtocolMalformed, FrameLength) {
  EXPECT_EQ(*DecodeFrameLength(Hex("00000010")), 16);
  EXPECT_EQ(*DecodeFrameLength(Hex("00100000")), 1 << 20);
  EXPECT_FALSE(DecodeFrameLength(Hex("00100001")).ok());
  EXPECT_FALSE(DecodeFrameLength(Hex("ffffffff")).ok());
  EXPECT_FALSE(DecodeFrameLength(Hex("000010")).ok());
  EXPECT_TRUE(DecodeFrameLength(Hex("00000400"), 1024).ok());
  EXPECT_FALSE(DecodeFrameLength(Hex("00000401"), 1024).ok());
}

TEST(ProtocolMalformed, UnknownOpcodesAreFlaggedNotFailed) {
  for (int32_t type : {op::kNotification, op::kError, op::kCreateSession, op::kDeleteContainer, 10,
                       23, 99, 108, 12345, -3}) {
    const std::string payload =
        Hex("0000002a") + Payload(EncodeRequest(Req(42, type))).substr(4) + "arbitrary body";
    Result<ClientRequest> got = DecodeRequest(payload);
    ASSERT_TRUE(got.ok()) << type;
    EXPECT_TRUE(got->unimplemented) << type;
    EXPECT_EQ(got->xid(), 42);
    EXPECT_EQ(got->type(), type);
    tree::Request tr;
    EXPECT_EQ(ToTreeRequest(*got, 1, {}, &tr), tree::Err::kUnimplemented);
  }
  // Known opcodes are not flagged.
  Result<ClientRequest> ping = DecodeRequest(Hex("fffffffe 0000000b"));
  ASSERT_TRUE(ping.ok());
  EXPECT_FALSE(ping->unimplemented);
  // The header alone is readable for a marshalling-error reply.
  Result<RequestHeader> h = DecodeRequestHeader(Hex("00000009 00000001 ff"));
  ASSERT_TRUE(h.ok());
  EXPECT_EQ(*h, (RequestHeader{9, op::kCreate}));
  EXPECT_FALSE(DecodeRequestHeader(Hex("00000009 000000")).ok());
}

TEST(ProtocolMalformed, BadMultis) {
  const std::string good = Payload(EncodeRequest(ThreeOpMulti()));
  ASSERT_TRUE(DecodeRequest(good).ok());
  // Terminator with done set but type 5.
  std::string bad_end = good;
  bad_end.replace(bad_end.size() - 9, 9, Hex("00000005 01 ffffffff"));
  EXPECT_FALSE(DecodeRequest(bad_end).ok());
  // Terminator type -1 without done: not an op type.
  std::string not_done = good;
  not_done.replace(not_done.size() - 9, 9, Hex("ffffffff 00 ffffffff"));
  EXPECT_FALSE(DecodeRequest(not_done).ok());
  // No terminator at all.
  EXPECT_FALSE(DecodeRequest(good.substr(0, good.size() - 9)).ok());
  // Ops that a multi cannot carry.
  EXPECT_FALSE(DecodeRequest(Hex("00000001 0000000e 00000004 00 ffffffff 00000002 2f61 00"
                                 "ffffffff 01 ffffffff"))
                   .ok());  // getData in a multi
  EXPECT_FALSE(DecodeRequest(Hex("00000001 00000016 00000002 00 ffffffff 00000002 2f61 ffffffff"
                                 "ffffffff 01 ffffffff"))
                   .ok());  // delete in a multiRead
  EXPECT_FALSE(DecodeRequest(Hex("00000001 0000000e 00000007 00 ffffffff 00000002 2f61 ffffffff"
                                 "00000000 ffffffff 01 ffffffff"))
                   .ok());  // setACL in a multi
  // Only the terminator's done flag and type matter; err is not checked (clients send -1).
  Result<ClientRequest> empty = DecodeRequest(Hex("00000001 0000000e ffffffff 01 00000000"));
  ASSERT_TRUE(empty.ok());
  EXPECT_TRUE(std::get<MultiRequest>(empty->body).ops.empty());
}

// Single-byte corruptions of valid packets: decoding must not crash, and whatever decodes must
// re-encode to a fixed point.
TEST(ProtocolMalformed, ByteCorruptionsNeverCrash) {
  int decoded = 0;
  for (const ClientRequest& req : AllRequests()) {
    const std::string payload = Payload(EncodeRequest(req));
    for (size_t i = 0; i < payload.size(); ++i) {
      for (unsigned char v : {0x00, 0x01, 0x7f, 0x80, 0xff}) {
        std::string p = payload;
        p[i] = static_cast<char>(v);
        for (size_t max : {kDefaultMaxBuffer, size_t{3}}) {
          Result<ClientRequest> got = DecodeRequest(p, max);
          if (!got.ok()) continue;
          ++decoded;
          const std::string again = EncodeRequest(*got);
          Result<ClientRequest> got2 = DecodeRequest(Payload(again));
          ASSERT_TRUE(got2.ok());
          EXPECT_EQ(*got2, *got);
          tree::Request tr;
          (void)ToTreeRequest(*got, 1, {}, &tr);
        }
        (void)DecodeConnect(p);
      }
    }
  }
  EXPECT_GT(decoded, 0);
}

// ---------------------------------------------------------------------------------------------
// Conversion into tree requests.

tree::Err Convert(const ClientRequest& req, tree::Request* out) {
  return ToTreeRequest(req, 0x1234, {tree::Id{"ip", "127.0.0.1"}}, out);
}

TEST(ToTree, CreateModesAndCommonFields) {
  struct Case {
    int32_t type;
    int32_t flags;
    int64_t ttl;
    tree::Err err;
    tree::CreateMode mode;
    int64_t ttl_ms;
  };
  using M = tree::CreateMode;
  using E = tree::Err;
  const Case cases[] = {
      {op::kCreate, 0, -1, E::kOk, M::kPersistent, 0},
      {op::kCreate, 1, -1, E::kOk, M::kEphemeral, 0},
      {op::kCreate2, 2, -1, E::kOk, M::kPersistentSequential, 0},
      {op::kCreate2, 3, -1, E::kOk, M::kEphemeralSequential, 0},
      // create/create2 apply a CreateTxn: a container flag gives a persistent node.
      {op::kCreate, 4, -1, E::kOk, M::kPersistent, 0},
      // TTL modes need createTTL (validateTTL with ttl -1 fails).
      {op::kCreate, 5, -1, E::kBadArguments, M::kPersistent, 0},
      {op::kCreate2, 6, -1, E::kBadArguments, M::kPersistent, 0},
      // Unknown flags: CreateMode.fromFlag.
      {op::kCreate, 7, -1, E::kBadArguments, M::kPersistent, 0},
      {op::kCreate2, -1, -1, E::kBadArguments, M::kPersistent, 0},
      {op::kCreateContainer, 99, -1, E::kBadArguments, M::kPersistent, 0},
      {op::kCreateTtl, 8, 100, E::kBadArguments, M::kPersistent, 0},
      // createContainer makes a container for any non-TTL flags.
      {op::kCreateContainer, 4, -1, E::kOk, M::kContainer, 0},
      {op::kCreateContainer, 0, -1, E::kOk, M::kContainer, 0},
      {op::kCreateContainer, 5, -1, E::kBadArguments, M::kPersistent, 0},
      // createTTL: the ttl goes to TTL modes (the tree checks its range) ...
      {op::kCreateTtl, 5, 60000, E::kOk, M::kPersistentWithTtl, 60000},
      {op::kCreateTtl, 6, 1, E::kOk, M::kPersistentSequentialWithTtl, 1},
      {op::kCreateTtl, 5, 0, E::kOk, M::kPersistentWithTtl, 0},
      // ... and must be negative for the others.
      {op::kCreateTtl, 0, 0, E::kBadArguments, M::kPersistent, 0},
      {op::kCreateTtl, 1, 5, E::kBadArguments, M::kPersistent, 0},
      {op::kCreateTtl, 0, -1, E::kOk, M::kPersistent, 0},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE("type " + std::to_string(c.type) + " flags " + std::to_string(c.flags) + " ttl " +
                 std::to_string(c.ttl));
    tree::Request tr;
    ASSERT_EQ(Convert(Req(77, c.type, Create("/n", "d", c.flags, c.ttl)), &tr), c.err);
    if (c.err != E::kOk) continue;
    EXPECT_EQ(tr.type, tree::RequestType::kOp);
    EXPECT_EQ(tr.session_id, 0x1234);
    EXPECT_EQ(tr.cxid, 77);
    EXPECT_EQ(tr.auth, (std::vector<tree::Id>{{"ip", "127.0.0.1"}}));
    ASSERT_EQ(tr.ops.size(), 1u);
    const tree::Op& o = tr.ops[0];
    EXPECT_EQ(o.type, tree::OpType::kCreate);
    EXPECT_EQ(o.path, "/n");
    EXPECT_EQ(o.data, "d");
    EXPECT_EQ(o.acl, Open());
    EXPECT_EQ(o.mode, c.mode);
    EXPECT_EQ(o.ttl_ms, c.ttl_ms);
  }
}

TEST(ToTree, OtherWrites) {
  tree::Request tr;
  ASSERT_EQ(Convert(Req(1, op::kDelete, PathVersionRequest{"/a", 4}), &tr), tree::Err::kOk);
  ASSERT_EQ(tr.ops.size(), 1u);
  EXPECT_EQ(tr.ops[0].type, tree::OpType::kDelete);
  EXPECT_EQ(tr.ops[0].path, "/a");
  EXPECT_EQ(tr.ops[0].version, 4);

  ASSERT_EQ(Convert(Req(2, op::kSetData, SetDataRequest{"/b", "v", -1}), &tr), tree::Err::kOk);
  EXPECT_EQ(tr.ops[0].type, tree::OpType::kSetData);
  EXPECT_EQ(tr.ops[0].data, "v");
  EXPECT_EQ(tr.ops[0].version, -1);

  const std::vector<tree::Acl> acl = {{1, {"digest", "u:x"}}};
  ASSERT_EQ(Convert(Req(3, op::kSetAcl, SetAclRequest{"/c", acl, 2}), &tr), tree::Err::kOk);
  EXPECT_EQ(tr.ops[0].type, tree::OpType::kSetAcl);
  EXPECT_EQ(tr.ops[0].acl, acl);
  EXPECT_EQ(tr.ops[0].version, 2);

  ASSERT_EQ(Convert(Req(4, op::kCheck, PathVersionRequest{"/d", 0}), &tr), tree::Err::kOk);
  EXPECT_EQ(tr.type, tree::RequestType::kOp);
  EXPECT_EQ(tr.ops[0].type, tree::OpType::kCheck);

  ASSERT_EQ(Convert(Req(5, op::kCloseSession), &tr), tree::Err::kOk);
  EXPECT_EQ(tr.type, tree::RequestType::kCloseSession);
  EXPECT_EQ(tr.session_id, 0x1234);
  EXPECT_TRUE(tr.ops.empty());

  for (const ClientRequest& r : AllRequests()) {
    tree::Request out;
    const tree::Err e = Convert(r, &out);
    if (IsWriteRequest(r.type())) {
      EXPECT_EQ(e, tree::Err::kOk) << r.type();
    } else {
      EXPECT_EQ(e, tree::Err::kUnimplemented) << r.type();
    }
  }
  // A body that does not match the opcode (only possible for hand-built requests).
  EXPECT_EQ(Convert(Req(6, op::kDelete, PathRequest{"/a"}), &tr), tree::Err::kMarshallingError);
}

TEST(ToTree, MultiOpsFollowZooKeepersOpCreate) {
  MultiRequest m;
  m.ops.push_back(MOp(op::kCreate2, Create("/a", "1", 0)));
  m.ops.push_back(MOp(op::kCreate, Create("/c", "", 4)));           // flag makes a container
  m.ops.push_back(MOp(op::kCreateContainer, Create("/p", "", 0)));  // flag makes it persistent
  m.ops.push_back(MOp(op::kCreateTtl, Create("/t", "", 5, 1000)));  // TTL keeps its ttl
  m.ops.push_back(MOp(op::kCreateTtl, Create("/u", "", 1, 1000)));  // non-TTL drops it
  m.ops.push_back(MOp(op::kCreate, Create("/bad", "", 42)));        // left for the tree
  m.ops.push_back(MOp(op::kDelete, PathVersionRequest{"/d", 2}));
  m.ops.push_back(MOp(op::kSetData, SetDataRequest{"/s", "x", 3}));
  m.ops.push_back(MOp(op::kCheck, PathVersionRequest{"/k", 4}));
  tree::Request tr;
  ASSERT_EQ(Convert(Req(9, op::kMulti, m), &tr), tree::Err::kOk);
  EXPECT_EQ(tr.type, tree::RequestType::kMulti);
  EXPECT_EQ(tr.cxid, 9);
  ASSERT_EQ(tr.ops.size(), 9u);
  using M = tree::CreateMode;
  EXPECT_EQ(tr.ops[0].mode, M::kPersistent);
  EXPECT_EQ(tr.ops[0].data, "1");
  EXPECT_EQ(tr.ops[1].mode, M::kContainer);
  EXPECT_EQ(tr.ops[2].mode, M::kPersistent);
  EXPECT_EQ(tr.ops[3].mode, M::kPersistentWithTtl);
  EXPECT_EQ(tr.ops[3].ttl_ms, 1000);
  EXPECT_EQ(tr.ops[4].mode, M::kEphemeral);
  EXPECT_EQ(tr.ops[4].ttl_ms, 0);
  EXPECT_EQ(static_cast<int32_t>(tr.ops[5].mode), 42);
  for (int i = 0; i < 6; ++i) EXPECT_EQ(tr.ops[i].type, tree::OpType::kCreate);
  EXPECT_EQ(tr.ops[6].type, tree::OpType::kDelete);
  EXPECT_EQ(tr.ops[6].version, 2);
  EXPECT_EQ(tr.ops[7].type, tree::OpType::kSetData);
  EXPECT_EQ(tr.ops[7].data, "x");
  EXPECT_EQ(tr.ops[8].type, tree::OpType::kCheck);
  EXPECT_EQ(tr.ops[8].path, "/k");

  // Reads are not tree requests.
  EXPECT_EQ(Convert(Req(1, op::kGetData, PathWatchRequest{"/a", false}), &tr),
            tree::Err::kUnimplemented);
  EXPECT_EQ(Convert(Req(1, op::kMultiRead, MultiRequest{}), &tr), tree::Err::kUnimplemented);
}

}  // namespace
}  // namespace qfs::zk

TEST(JuteStat, ContainersAndTtlNodesShowNoOwner) {
  for (int64_t owner : {qfs::tree::kContainerOwner, qfs::tree::TtlOwner(5000)}) {
    qfs::tree::Stat s;
    s.ephemeral_owner = owner;
    qfs::zk::JuteWriter w;
    w.WriteStat(s);
    std::string bytes = std::move(w).Finish();
    qfs::zk::JuteReader r(bytes);
    qfs::tree::Stat back;
    ASSERT_TRUE(r.ReadStat(&back));
    EXPECT_EQ(back.ephemeral_owner, 0) << "ZooKeeper shows 0 for containers and TTL nodes";
  }
}

TEST(JuteNull, NullDataSurvivesDecodeAndEncode) {
  qfs::zk::JuteWriter w;
  w.WriteString("/n");
  w.WriteNullBuffer();
  w.WriteInt(-1);
  std::string bytes = std::move(w).Finish();
  qfs::zk::JuteReader r(bytes);
  qfs::zk::SetDataRequest sd;
  ASSERT_TRUE(sd.Read(r));
  EXPECT_TRUE(sd.data_null);
  qfs::zk::JuteWriter back;
  sd.Write(back);
  EXPECT_EQ(std::move(back).Finish(), bytes) << "a null buffer is written back as length -1";

  qfs::zk::GetDataResponse resp;
  resp.data_null = true;
  qfs::zk::JuteWriter rw;
  resp.Write(rw);
  std::string rb = std::move(rw).Finish();
  ASSERT_GE(rb.size(), 4u);
  EXPECT_EQ(rb.substr(0, 4), std::string("\xff\xff\xff\xff", 4));
}
