// Readers for Apache ZooKeeper 3.8's on-disk files (version-2/snapshot.* and version-2/log.*),
// for `quorumfs import-zookeeper` (docs/migration.md). Decoders only: applying what they read is
// the importer's business.
//
// Snapshot: FileHeader ("ZKSN", 2, dbid), the session map, the ACL cache, the nodes in preorder
// (the root's path is "", the list ends with "/"), then a seal: the Adler-32 of every byte so
// far as a long and "/". ZooKeeper 3.6+ may add sections (the tree digest, the last processed
// zxid), each followed by its own seal.
// Log: FileHeader ("ZKLG", 2, dbid), then records: Adler-32 of the entry (long), the entry as a
// buffer (TxnHeader, the txn, an optional TxnDigest), the byte 'B'. The file is preallocated
// with zeros: a zero length ends it.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "consensus/util/result.h"
#include "daemon/tree/types.h"

namespace qfs::zkimport {

uint32_t Adler32(std::string_view data, uint32_t adler = 1);

// ZooKeeper's op codes that can appear in a txn log.
namespace op {
inline constexpr int32_t kError = -1;
inline constexpr int32_t kCreateSession = -10;
inline constexpr int32_t kCloseSession = -11;
inline constexpr int32_t kCreate = 1;
inline constexpr int32_t kDelete = 2;
inline constexpr int32_t kSetData = 5;
inline constexpr int32_t kSetAcl = 7;
inline constexpr int32_t kCheck = 13;
inline constexpr int32_t kMulti = 14;
inline constexpr int32_t kCreate2 = 15;
inline constexpr int32_t kReconfig = 16;
inline constexpr int32_t kCreateContainer = 19;
inline constexpr int32_t kDeleteContainer = 20;
inline constexpr int32_t kCreateTtl = 21;
}  // namespace op
// "createTTL" etc., or the number.
std::string OpName(int32_t type);

// A file in a version-2 directory: snapshot.<hex zxid> or log.<hex zxid>.
struct ZkFile {
  uint64_t zxid = 0;
  std::string path;
};
// The files named `prefix`.<hex> in `dir`, ascending by zxid. A name with a suffix after the
// zxid (a compressed snapshot: .gz, .snappy) is refused, naming it.
Result<std::vector<ZkFile>> ListZkFiles(const std::string& dir, const std::string& prefix);

// ZooKeeper's StatPersisted.
struct ZkStat {
  int64_t czxid = 0, mzxid = 0, ctime = 0, mtime = 0;
  int32_t version = 0, cversion = 0, aversion = 0;
  int64_t ephemeral_owner = 0, pzxid = 0;
};

struct ZkSnapNode {
  std::string path;  // "/" for the root
  std::string data;
  bool data_null = false;
  int64_t acl_ref = 0;  // key in ZkSnapshot::acls; -1 is ZooKeeper's open ACL
  ZkStat stat;
};

struct ZkSnapshot {
  uint64_t zxid = 0;  // from the file name
  std::map<int64_t, int32_t> sessions;
  std::map<int64_t, std::vector<tree::Acl>> acls;
  std::vector<ZkSnapNode> nodes;  // file order: every parent before its children
};

// Reads and checks a whole snapshot file (header, structure, every seal's Adler-32).
// Errors name the file.
Result<ZkSnapshot> ReadZkSnapshot(const ZkFile& file);

struct ZkTxnHeader {
  int64_t client_id = 0;
  int32_t cxid = 0;
  int64_t zxid = 0;
  int64_t time = 0;
  int32_t type = 0;
};

// A decoded txn. Fields are filled as the type has them.
struct ZkTxn {
  int32_t type = 0;
  std::string path;
  std::string data;
  bool data_null = false;
  std::vector<tree::Acl> acl;
  bool ephemeral = false;                    // create, create2
  int32_t parent_cversion = -1;              // creates
  int64_t ttl = 0;                           // createTTL
  int32_t version = 0;                       // setData, setACL, check
  int32_t timeout = 0;                       // createSession
  int32_t err = 0;                           // error
  std::vector<std::string> paths_to_delete;  // closeSession
  bool has_paths_to_delete = false;          // an older closeSession has no body
  std::vector<ZkTxn> sub;                    // multi
};

// Decodes a txn body of `type`. At top level a trailing TxnDigest is allowed. A type this
// decoder does not know is kInvalidArgument, naming it.
Result<ZkTxn> DecodeZkTxn(int32_t type, std::string_view body, bool top_level);

struct ZkLogStats {
  uint64_t records = 0;
  bool torn_tail = false;  // the file ended inside a record (a crash mid-write)
};
// Reads a log file record by record, checking each record's Adler-32, and calls `fn` with the
// header and the undecoded txn body. Stops at the zero padding. Errors name the file and the
// offset; an error from `fn` stops the read and is returned as is.
Result<ZkLogStats> ReadZkLog(
    const ZkFile& file,
    const std::function<Status(const ZkTxnHeader& hdr, std::string_view body)>& fn);

}  // namespace qfs::zkimport
