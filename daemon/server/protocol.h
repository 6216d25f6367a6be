// The ZooKeeper client wire protocol (jute records of zookeeper.jute, ZooKeeper 3.8/3.9).
//
// Framing: every packet is a big-endian int32 length and that many bytes. The first packet of a
// connection is a ConnectRequest; every later one is a RequestHeader {xid, type} and the body
// for that opcode. Replies are a ReplyHeader {xid, zxid, err} and, when err is 0, the body.
//
// Decode* take a packet without its length prefix. Encode* return a whole frame, length prefix
// included, ready to be written to the socket.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

#include "consensus/util/result.h"
#include "daemon/server/jute.h"
#include "daemon/tree/types.h"

namespace qfs::zk {

// ZooDefs.OpCode.
namespace op {
inline constexpr int32_t kNotification = 0;
inline constexpr int32_t kCreate = 1;
inline constexpr int32_t kDelete = 2;
inline constexpr int32_t kExists = 3;
inline constexpr int32_t kGetData = 4;
inline constexpr int32_t kSetData = 5;
inline constexpr int32_t kGetAcl = 6;
inline constexpr int32_t kSetAcl = 7;
inline constexpr int32_t kGetChildren = 8;
inline constexpr int32_t kSync = 9;
inline constexpr int32_t kPing = 11;
inline constexpr int32_t kGetChildren2 = 12;
inline constexpr int32_t kCheck = 13;
inline constexpr int32_t kMulti = 14;
inline constexpr int32_t kCreate2 = 15;
inline constexpr int32_t kReconfig = 16;
inline constexpr int32_t kCheckWatches = 17;
inline constexpr int32_t kRemoveWatches = 18;
inline constexpr int32_t kCreateContainer = 19;
inline constexpr int32_t kDeleteContainer = 20;
inline constexpr int32_t kCreateTtl = 21;
inline constexpr int32_t kMultiRead = 22;
inline constexpr int32_t kAuth = 100;
inline constexpr int32_t kSetWatches = 101;
inline constexpr int32_t kSasl = 102;
inline constexpr int32_t kGetEphemerals = 103;
inline constexpr int32_t kGetAllChildrenNumber = 104;
inline constexpr int32_t kSetWatches2 = 105;
inline constexpr int32_t kAddWatch = 106;
inline constexpr int32_t kWhoAmI = 107;
inline constexpr int32_t kCreateSession = -10;
inline constexpr int32_t kCloseSession = -11;
inline constexpr int32_t kError = -1;
}  // namespace op

// The xids ClientCnxn reserves.
namespace xid {
inline constexpr int32_t kNotification = -1;
inline constexpr int32_t kPing = -2;
inline constexpr int32_t kAuth = -4;
inline constexpr int32_t kSetWatches = -8;
}  // namespace xid

// Watcher.Event.EventType.
namespace event {
inline constexpr int32_t kNone = -1;
inline constexpr int32_t kNodeCreated = 1;
inline constexpr int32_t kNodeDeleted = 2;
inline constexpr int32_t kNodeDataChanged = 3;
inline constexpr int32_t kNodeChildrenChanged = 4;
inline constexpr int32_t kDataWatchRemoved = 5;
inline constexpr int32_t kChildWatchRemoved = 6;
inline constexpr int32_t kPersistentWatchRemoved = 7;
}  // namespace event

// Watcher.Event.KeeperState.
namespace state {
inline constexpr int32_t kDisconnected = 0;
inline constexpr int32_t kSyncConnected = 3;
inline constexpr int32_t kAuthFailed = 4;
inline constexpr int32_t kConnectedReadOnly = 5;
inline constexpr int32_t kSaslAuthenticated = 6;
inline constexpr int32_t kExpired = -112;
inline constexpr int32_t kClosed = 7;
}  // namespace state

// A notification's zxid before ZooKeeper 3.9 (WatchedEvent.NO_ZXID).
inline constexpr int64_t kNoZxid = -1;

// ---- Records. Each reads and writes its fields in wire order. ----

struct RequestHeader {
  int32_t xid = 0;
  int32_t type = 0;
  bool Read(JuteReader& r) { return r.ReadInt(&xid) && r.ReadInt(&type); }
  void Write(JuteWriter& w) const;
  bool operator==(const RequestHeader&) const = default;
};

struct ReplyHeader {
  int32_t xid = 0;
  int64_t zxid = 0;
  int32_t err = 0;
  bool Read(JuteReader& r) { return r.ReadInt(&xid) && r.ReadLong(&zxid) && r.ReadInt(&err); }
  void Write(JuteWriter& w) const;
  bool operator==(const ReplyHeader&) const = default;
};

struct MultiHeader {
  int32_t type = 0;
  bool done = false;
  int32_t err = 0;
  bool Read(JuteReader& r) { return r.ReadInt(&type) && r.ReadBool(&done) && r.ReadInt(&err); }
  void Write(JuteWriter& w) const;
  bool operator==(const MultiHeader&) const = default;
};

// The first packet of a connection; it has no RequestHeader. Clients before 3.4 omit readOnly.
struct ConnectRequest {
  int32_t protocol_version = 0;
  int64_t last_zxid_seen = 0;
  int32_t timeout_ms = 0;
  int64_t session_id = 0;
  std::string passwd;
  bool has_read_only = true;  // the client sent the readOnly byte
  bool read_only = false;
  bool operator==(const ConnectRequest&) const = default;
};

struct ConnectResponse {
  int32_t protocol_version = 0;
  int32_t timeout_ms = 0;
  int64_t session_id = 0;
  std::string passwd;
  bool read_only = false;  // sent only to clients that sent it
  bool operator==(const ConnectResponse&) const = default;
};

// CreateRequest, or CreateTTLRequest (the same fields and the ttl) for op::kCreateTtl.
struct CreateRequest {
  std::string path;
  std::string data;
  std::vector<tree::Acl> acl;
  int32_t flags = 0;
  int64_t ttl = -1;        // on the wire only for createTTL
  bool data_null = false;  // data sent as a null buffer (length -1)
  bool Read(JuteReader& r, bool with_ttl);
  void Write(JuteWriter& w, bool with_ttl) const;
  bool operator==(const CreateRequest&) const = default;
};

// DeleteRequest and CheckVersionRequest.
struct PathVersionRequest {
  std::string path;
  int32_t version = -1;
  bool Read(JuteReader& r) { return r.ReadString(&path) && r.ReadInt(&version); }
  void Write(JuteWriter& w) const;
  bool operator==(const PathVersionRequest&) const = default;
};

// ExistsRequest, GetDataRequest, GetChildrenRequest, GetChildren2Request.
struct PathWatchRequest {
  std::string path;
  bool watch = false;
  bool Read(JuteReader& r) { return r.ReadString(&path) && r.ReadBool(&watch); }
  void Write(JuteWriter& w) const;
  bool operator==(const PathWatchRequest&) const = default;
};

// GetACLRequest, SyncRequest, GetAllChildrenNumberRequest, GetEphemeralsRequest.
struct PathRequest {
  std::string path;
  bool Read(JuteReader& r) { return r.ReadString(&path); }
  void Write(JuteWriter& w) const;
  bool operator==(const PathRequest&) const = default;
};

struct SetDataRequest {
  std::string path;
  std::string data;
  int32_t version = -1;
  bool data_null = false;  // data sent as a null buffer (length -1)
  bool Read(JuteReader& r) {
    return r.ReadString(&path) && r.ReadBuffer(&data, &data_null) && r.ReadInt(&version);
  }
  void Write(JuteWriter& w) const;
  bool operator==(const SetDataRequest&) const = default;
};

struct SetAclRequest {
  std::string path;
  std::vector<tree::Acl> acl;
  int32_t version = -1;
  bool Read(JuteReader& r) {
    return r.ReadString(&path) && r.ReadAclVector(&acl) && r.ReadInt(&version);
  }
  void Write(JuteWriter& w) const;
  bool operator==(const SetAclRequest&) const = default;
};

// CheckWatchesRequest and RemoveWatchesRequest; type is a Watcher.WatcherType value.
struct WatchTypeRequest {
  std::string path;
  int32_t type = 0;
  bool Read(JuteReader& r) { return r.ReadString(&path) && r.ReadInt(&type); }
  void Write(JuteWriter& w) const;
  bool operator==(const WatchTypeRequest&) const = default;
};

// AddWatchRequest; mode 0 = persistent, 1 = persistent recursive.
struct AddWatchRequest {
  std::string path;
  int32_t mode = 0;
  bool Read(JuteReader& r) { return r.ReadString(&path) && r.ReadInt(&mode); }
  void Write(JuteWriter& w) const;
  bool operator==(const AddWatchRequest&) const = default;
};

// A null string (length -1) is nullopt, as ZooKeeper's: newMembers set means the bulk form.
struct ReconfigRequest {
  std::optional<std::string> joining_servers;
  std::optional<std::string> leaving_servers;
  std::optional<std::string> new_members;
  int64_t cur_config_id = -1;
  bool Read(JuteReader& r) {
    return ReadOpt(r, &joining_servers) && ReadOpt(r, &leaving_servers) &&
           ReadOpt(r, &new_members) && r.ReadLong(&cur_config_id);
  }
  static bool ReadOpt(JuteReader& r, std::optional<std::string>* v) {
    std::string s;
    bool is_null = false;
    if (!r.ReadString(&s, &is_null)) return false;
    if (is_null) {
      v->reset();
    } else {
      *v = std::move(s);
    }
    return true;
  }
  void Write(JuteWriter& w) const;
  bool operator==(const ReconfigRequest&) const = default;
};

struct AuthPacket {
  int32_t type = 0;
  std::string scheme;
  std::string auth;
  bool Read(JuteReader& r) {
    return r.ReadInt(&type) && r.ReadString(&scheme) && r.ReadBuffer(&auth);
  }
  void Write(JuteWriter& w) const;
  bool operator==(const AuthPacket&) const = default;
};

// GetSASLRequest, and SetSASLResponse for the reply.
struct SaslToken {
  std::string token;
  bool Read(JuteReader& r) { return r.ReadBuffer(&token); }
  void Write(JuteWriter& w) const;
  bool operator==(const SaslToken&) const = default;
};

// SetWatches, or SetWatches2 (which adds the persistent lists) for op::kSetWatches2.
struct SetWatchesRequest {
  int64_t relative_zxid = 0;
  std::vector<std::string> data_watches;
  std::vector<std::string> exist_watches;
  std::vector<std::string> child_watches;
  std::vector<std::string> persistent_watches;            // SetWatches2 only
  std::vector<std::string> persistent_recursive_watches;  // SetWatches2 only
  bool Read(JuteReader& r, bool v2);
  void Write(JuteWriter& w, bool v2) const;
  bool operator==(const SetWatchesRequest&) const = default;
};

// One op of a multi (create*, delete, setData, check) or a multiRead (getChildren, getData).
// type is the opcode of its MultiHeader.
struct MultiOp {
  int32_t type = 0;
  std::variant<CreateRequest, PathVersionRequest, SetDataRequest, PathWatchRequest> body;
  bool operator==(const MultiOp&) const = default;
};

// MultiOperationRecord: the ops of a multi (op::kMulti) or a multiRead (op::kMultiRead).
struct MultiRequest {
  std::vector<MultiOp> ops;
  bool operator==(const MultiRequest&) const = default;
};

// monostate: no body (ping, closeSession, whoAmI, unimplemented opcodes).
using RequestBody =
    std::variant<std::monostate, CreateRequest, PathVersionRequest, PathWatchRequest, PathRequest,
                 SetDataRequest, SetAclRequest, WatchTypeRequest, AddWatchRequest, ReconfigRequest,
                 AuthPacket, SaslToken, SetWatchesRequest, MultiRequest>;

struct ClientRequest {
  RequestHeader header;
  // An opcode this server does not serve (unknown, or not for clients: notification, error,
  // createSession, deleteContainer). The body is not parsed; answer ZUNIMPLEMENTED, as
  // ZooKeeper's UnimplementedRequestProcessor does, and close the connection.
  bool unimplemented = false;
  RequestBody body;

  int32_t xid() const { return header.xid; }
  int32_t type() const { return header.type; }
  bool operator==(const ClientRequest&) const = default;
};

// ---- Response records. ----

// CreateResponse and SyncResponse.
struct PathResponse {
  std::string path;
  bool Read(JuteReader& r) { return r.ReadString(&path); }
  void Write(JuteWriter& w) const { w.WriteString(path); }
  bool operator==(const PathResponse&) const = default;
};

struct Create2Response {
  std::string path;
  tree::Stat stat;
  bool Read(JuteReader& r) { return r.ReadString(&path) && r.ReadStat(&stat); }
  void Write(JuteWriter& w) const;
  bool operator==(const Create2Response&) const = default;
};

// ExistsResponse, SetDataResponse, SetACLResponse (and the reply to a lone check).
struct StatResponse {
  tree::Stat stat;
  bool Read(JuteReader& r) { return r.ReadStat(&stat); }
  void Write(JuteWriter& w) const { w.WriteStat(stat); }
  bool operator==(const StatResponse&) const = default;
};

// GetDataResponse (also the reply to reconfig).
struct GetDataResponse {
  std::string data;
  tree::Stat stat;
  bool data_null = false;  // sent as a null buffer: the node's data was set as null
  bool Read(JuteReader& r) { return r.ReadBuffer(&data, &data_null) && r.ReadStat(&stat); }
  void Write(JuteWriter& w) const;
  bool operator==(const GetDataResponse&) const = default;
};

// GetChildrenResponse and GetEphemeralsResponse.
struct StringListResponse {
  std::vector<std::string> strings;
  bool Read(JuteReader& r) { return r.ReadStringVector(&strings); }
  void Write(JuteWriter& w) const { w.WriteStringVector(strings); }
  bool operator==(const StringListResponse&) const = default;
};

struct GetChildren2Response {
  std::vector<std::string> children;
  tree::Stat stat;
  bool Read(JuteReader& r) { return r.ReadStringVector(&children) && r.ReadStat(&stat); }
  void Write(JuteWriter& w) const;
  bool operator==(const GetChildren2Response&) const = default;
};

struct GetAclResponse {
  std::vector<tree::Acl> acl;
  tree::Stat stat;
  bool Read(JuteReader& r) { return r.ReadAclVector(&acl) && r.ReadStat(&stat); }
  void Write(JuteWriter& w) const;
  bool operator==(const GetAclResponse&) const = default;
};

// ErrorResponse (multi results; also the body of a successful addWatch, with err 0) and
// GetAllChildrenNumberResponse.
struct IntResponse {
  int32_t value = 0;
  bool Read(JuteReader& r) { return r.ReadInt(&value); }
  void Write(JuteWriter& w) const { w.WriteInt(value); }
  bool operator==(const IntResponse&) const = default;
};

struct ClientInfo {
  std::string auth_scheme;
  std::string user;
  bool operator==(const ClientInfo&) const = default;
};

struct WhoAmIResponse {
  std::vector<ClientInfo> client_info;
  bool Read(JuteReader& r);
  void Write(JuteWriter& w) const;
  bool operator==(const WhoAmIResponse&) const = default;
};

struct WatcherEvent {
  int32_t type = 0;   // event::
  int32_t state = 0;  // state::
  std::string path;
  bool Read(JuteReader& r) { return r.ReadInt(&type) && r.ReadInt(&state) && r.ReadString(&path); }
  void Write(JuteWriter& w) const;
  bool operator==(const WatcherEvent&) const = default;
};

// One result of a multiRead: type op::kGetChildren (children), op::kGetData (data, stat) or
// op::kError (err).
struct MultiReadResult {
  int32_t type = op::kError;
  tree::Err err = tree::Err::kOk;
  std::vector<std::string> children;
  std::string data;
  tree::Stat stat;
  bool data_null = false;
};

// ---- Decoding (server side). ----

// Checks a frame's 4-byte length prefix as NIOServerCnxn does: 0..max_buffer.
Result<int32_t> DecodeFrameLength(std::string_view prefix, size_t max_buffer = kDefaultMaxBuffer);
Result<ConnectRequest> DecodeConnect(std::string_view packet,
                                     size_t max_buffer = kDefaultMaxBuffer);
// Just the RequestHeader: lets the server answer ZMARSHALLINGERROR to the right xid when the
// body does not decode.
Result<RequestHeader> DecodeRequestHeader(std::string_view packet);
// RequestHeader, then the body for its opcode. Truncation, bad lengths and trailing bytes are
// errors (kInvalidArgument); an unimplemented opcode is not (see ClientRequest::unimplemented).
Result<ClientRequest> DecodeRequest(std::string_view packet, size_t max_buffer = kDefaultMaxBuffer);

// ---- Encoding (whole frames). ----

std::string EncodeConnectResponse(const ConnectResponse& r, bool with_read_only);

// A reply with no body: errors, and the replies to delete, setWatches, ping, auth, closeSession,
// checkWatches, removeWatches.
std::string EncodeReply(const ReplyHeader& h);
template <typename Body>
std::string EncodeReply(const ReplyHeader& h, const Body& body) {
  JuteWriter w(JuteWriter::Framing::kLengthPrefixed);
  h.Write(w);
  body.Write(w);
  return std::move(w).Finish();
}

// A watch notification: xid -1, err 0. ZooKeeper 3.9 puts the triggering txn's zxid in the
// header; 3.8 sends kNoZxid. Clients do not depend on it.
std::string EncodeNotification(const WatcherEvent& e, int64_t zxid = kNoZxid);

// The reply to a multi. `results` are the tree's, one per op of `req`: if any failed, every op
// is reported as an ErrorResponse with its code (0 for the ops before the failing one), else each
// op's record. Result types follow ZooKeeper: a create op answers CreateResponse, unless its flags
// made it a container or TTL create, which answer Create2Response. h.err is normally 0: ZooKeeper
// reports a failed multi only in the results.
std::string EncodeMultiResponse(const ReplyHeader& h, const MultiRequest& req,
                                const std::vector<tree::OpResult>& results);
std::string EncodeMultiReadResponse(const ReplyHeader& h,
                                    const std::vector<MultiReadResult>& results);

// ---- Client side (tests, tools, the fuzzer). ----

std::string EncodeConnectRequest(const ConnectRequest& r);
// Encodes the header and body; an unimplemented request is just its header.
std::string EncodeRequest(const ClientRequest& r);

// ---- Into the state machine. ----

// True for the opcodes that change the tree: create, create2, createContainer, createTTL,
// delete, setData, setACL, check, multi, closeSession.
bool IsWriteRequest(int32_t type);

// Builds the tree request for a write. Returns kOk with *out filled in, or the error to answer
// without consulting the tree: kBadArguments for an unknown create flag (CreateMode.fromFlag) or a
// ttl given to createTTL with a non-TTL mode, kUnimplemented for a request that is not a write.
// Inside a multi the flags are passed through unchecked so that the tree reports the failing op
// in order (it rejects unknown modes itself).
tree::Err ToTreeRequest(const ClientRequest& req, int64_t session_id,
                        const std::vector<tree::Id>& auth, tree::Request* out);

// The MultiHeader type ZooKeeper uses for a multi op's successful result (see
// EncodeMultiResponse).
int32_t MultiResultType(const MultiOp& op);

}  // namespace qfs::zk
