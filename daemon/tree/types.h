// Types of the znode state machine, with ZooKeeper's semantics and numeric values.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace qfs::tree {

// ZooKeeper's KeeperException codes (values are on the wire).
enum class Err : int32_t {
  kOk = 0,
  kSystemError = -1,
  kRuntimeInconsistency = -2,
  kDataInconsistency = -3,
  kConnectionLoss = -4,
  kMarshallingError = -5,
  kUnimplemented = -6,
  kOperationTimeout = -7,
  kBadArguments = -8,
  kUnknownSession = -12,
  kNewConfigNoQuorum = -13,
  kReconfigInProgress = -14,
  kApiError = -100,
  kNoNode = -101,
  kNoAuth = -102,
  kBadVersion = -103,
  kNoChildrenForEphemerals = -108,
  kNodeExists = -110,
  kNotEmpty = -111,
  kSessionExpired = -112,
  kInvalidCallback = -113,
  kInvalidAcl = -114,
  kAuthFailed = -115,
  kSessionMoved = -118,
  kNotReadOnly = -119,
  kEphemeralOnLocalSession = -120,
  kNoWatcher = -121,
  kReconfigDisabled = -123,
  kSessionClosedRequireSaslAuth = -124,
  kQuotaExceeded = -125,
  kThrottledOp = -127,
};
const char* ErrName(Err e);

// ZooKeeper's Stat, field order as on the wire.
struct Stat {
  int64_t czxid = 0;
  int64_t mzxid = 0;
  int64_t ctime = 0;
  int64_t mtime = 0;
  int32_t version = 0;
  int32_t cversion = 0;
  int32_t aversion = 0;
  int64_t ephemeral_owner = 0;
  int32_t data_length = 0;
  int32_t num_children = 0;
  int64_t pzxid = 0;
  bool operator==(const Stat&) const = default;
};

namespace perm {
inline constexpr int32_t kRead = 1;
inline constexpr int32_t kWrite = 2;
inline constexpr int32_t kCreate = 4;
inline constexpr int32_t kDelete = 8;
inline constexpr int32_t kAdmin = 16;
inline constexpr int32_t kAll = 31;
}  // namespace perm

struct Id {
  std::string scheme;
  std::string id;
  bool operator==(const Id&) const = default;
};
struct Acl {
  int32_t perms = 0;
  Id id;
  bool operator==(const Acl&) const = default;
};
// world:anyone with every permission (ZooKeeper's OPEN_ACL_UNSAFE).
std::vector<Acl> OpenAcl();

// ZooKeeper's CreateMode flag values.
enum class CreateMode : int32_t {
  kPersistent = 0,
  kEphemeral = 1,
  kPersistentSequential = 2,
  kEphemeralSequential = 3,
  kContainer = 4,
  kPersistentWithTtl = 5,
  kPersistentSequentialWithTtl = 6,
};
bool IsSequential(CreateMode m);
bool IsEphemeral(CreateMode m);
bool IsTtl(CreateMode m);

// ephemeralOwner encodings for containers and TTL nodes, as ZooKeeper's EphemeralType.
inline constexpr int64_t kContainerOwner = INT64_MIN;  // 0x8000000000000000
inline constexpr uint64_t kTtlMask = 0xff00000000000000ull;
inline constexpr int64_t kMaxTtlMs = 0xffffffffffll;  // 40 bits
inline int64_t TtlOwner(int64_t ttl_ms) {
  return static_cast<int64_t>(kTtlMask | static_cast<uint64_t>(ttl_ms));
}
inline bool IsTtlOwner(int64_t owner) {
  return (static_cast<uint64_t>(owner) & kTtlMask) == kTtlMask && owner != -1;
}
inline int64_t TtlOf(int64_t owner) {
  return static_cast<int64_t>(static_cast<uint64_t>(owner) & ~kTtlMask);
}
// A real session owns the node (not a container or TTL marker).
inline bool IsSessionOwner(int64_t owner) {
  return owner != 0 && owner != kContainerOwner && !IsTtlOwner(owner);
}

// The kind a node shows through the FUSE view; invisible to network clients.
enum class Kind : uint8_t { kUnset = 0, kFile = 1, kDirectory = 2 };

enum class OpType : uint8_t {
  kCreate,  // create / create2 / createContainer / createTTL
  kDelete,
  kSetData,
  kSetAcl,
  kCheck,            // only inside a multi
  kDeleteContainer,  // reaper: delete a container or TTL node if it is still expired and empty
  // The mount's O_APPEND write: `data` goes at the end of the node's data as it is when the
  // leader prepares it (docs/fuse.md, "Appends"). Not a ZooKeeper op; never inside a multi.
  kAppend,
};

struct Op {
  OpType type = OpType::kCreate;
  std::string path;
  std::string data;
  std::vector<Acl> acl;
  CreateMode mode = CreateMode::kPersistent;
  int64_t ttl_ms = 0;
  int32_t version = -1;  // expected version for delete/setData/setAcl/check; -1 = any
  Kind kind = Kind::kUnset;
  bool data_null = false;  // create/setData with null data (length -1 on the wire)
};

enum class RequestType : uint8_t { kOp, kMulti, kCreateSession, kCloseSession, kReconfig };

// ZooKeeper's ReconfigRequest (docs/reconfig.md). A null string is nullopt: the bulk form is
// `new_members` set; the incremental form `joining` and/or `leaving`.
struct ReconfigSpec {
  std::optional<std::string> joining;  // "server.N=host:peer:election[:role];[host:]port,..."
  std::optional<std::string> leaving;  // "N,M,..."
  std::optional<std::string> new_members;
  int64_t from_config = -1;  // curConfigId: -1 = any, else the current configuration's version
  bool operator==(const ReconfigSpec&) const = default;
};

struct Request {
  RequestType type = RequestType::kOp;
  int64_t session_id = 0;
  int32_t cxid = 0;
  std::vector<Op> ops;             // one for kOp; the ops of a multi
  int32_t session_timeout_ms = 0;  // kCreateSession
  ReconfigSpec reconfig;           // kReconfig
  // Identities the session has authenticated as, including ("ip", "<address>").
  // ("super", ...) grants every permission.
  std::vector<Id> auth;
};

// Result of one op: for create the created path; for create/setData the node's new Stat.
struct OpResult {
  Err err = Err::kOk;
  OpType type = OpType::kCreate;
  std::string path;
  Stat stat;
  std::string data;  // reconfig: the new configuration's text (the reply is a getData's)
};

// A change made by applying a txn, for watches and FUSE cache invalidation.
struct Change {
  enum Type : uint8_t { kCreated, kDeleted, kDataChanged, kChildrenChanged, kAclChanged };
  Type type;
  std::string path;
};

}  // namespace qfs::tree
