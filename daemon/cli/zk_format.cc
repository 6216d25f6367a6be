#include "daemon/cli/zk_format.h"

#include <algorithm>
#include <cinttypes>
#include <cstdio>

#include "consensus/storage/file_util.h"
#include "daemon/server/jute.h"

namespace qfs::zkimport {

namespace {

constexpr int32_t kSnapMagic = 0x5a4b534e;  // "ZKSN"
constexpr int32_t kLogMagic = 0x5a4b4c47;   // "ZKLG"
constexpr int32_t kFormatVersion = 2;
constexpr size_t kFileHeaderBytes = 16;
// Fields in the files are bounded by the file itself, not by jute.maxbuffer.
constexpr size_t kMaxField = size_t{1} << 31;
constexpr size_t kMinAclBytes = 12;  // perms + two empty strings
constexpr size_t kTxnDigestBytes = 12;

std::string Hex(uint64_t v) {
  char buf[32];
  snprintf(buf, sizeof buf, "0x%" PRIx64, v);
  return buf;
}

// Reads a big-endian integer of `n` bytes at `p`.
uint64_t BigEndian(std::string_view s, size_t p, size_t n) {
  uint64_t v = 0;
  for (size_t i = 0; i < n; i++) v = (v << 8) | static_cast<uint8_t>(s[p + i]);
  return v;
}

bool ReadZkStat(zk::JuteReader* r, ZkStat* s) {
  return r->ReadLong(&s->czxid) && r->ReadLong(&s->mzxid) && r->ReadLong(&s->ctime) &&
         r->ReadLong(&s->mtime) && r->ReadInt(&s->version) && r->ReadInt(&s->cversion) &&
         r->ReadInt(&s->aversion) && r->ReadLong(&s->ephemeral_owner) && r->ReadLong(&s->pzxid);
}

Status CheckFileHeader(const std::string& path, std::string_view bytes, int32_t magic,
                       const char* what) {
  zk::JuteReader r(bytes.substr(0, std::min(bytes.size(), kFileHeaderBytes)));
  int32_t m = 0, version = 0;
  int64_t dbid = 0;
  if (!r.ReadInt(&m) || !r.ReadInt(&version) || !r.ReadLong(&dbid))
    return Corruption(path + ": too short for a ZooKeeper " + what + " file header");
  if (m != magic)
    return InvalidArgument(path + ": not a ZooKeeper " + what + " file (bad magic number)");
  if (version != kFormatVersion)
    return InvalidArgument(path + ": unsupported ZooKeeper " + what + " format version " +
                           std::to_string(version) + " (only 2 is known)");
  return Status::Ok();
}

}  // namespace

uint32_t Adler32(std::string_view data, uint32_t adler) {
  constexpr uint32_t kMod = 65521;
  uint32_t a = adler & 0xffff, b = adler >> 16;
  size_t i = 0;
  while (i < data.size()) {
    // 5552 bytes is the most that cannot overflow 32 bits before the modulo.
    size_t n = std::min<size_t>(data.size() - i, 5552);
    for (size_t end = i + n; i < end; i++) {
      a += static_cast<uint8_t>(data[i]);
      b += a;
    }
    a %= kMod;
    b %= kMod;
  }
  return (b << 16) | a;
}

std::string OpName(int32_t type) {
  switch (type) {
    case op::kError:
      return "error";
    case op::kCreateSession:
      return "createSession";
    case op::kCloseSession:
      return "closeSession";
    case op::kCreate:
      return "create";
    case op::kDelete:
      return "delete";
    case op::kSetData:
      return "setData";
    case op::kSetAcl:
      return "setACL";
    case op::kCheck:
      return "check";
    case op::kMulti:
      return "multi";
    case op::kCreate2:
      return "create2";
    case op::kReconfig:
      return "reconfig";
    case op::kCreateContainer:
      return "createContainer";
    case op::kDeleteContainer:
      return "deleteContainer";
    case op::kCreateTtl:
      return "createTTL";
    default:
      return "type " + std::to_string(type);
  }
}

Result<std::vector<ZkFile>> ListZkFiles(const std::string& dir, const std::string& prefix) {
  auto names = storage::ListDir(dir, prefix + ".");
  if (!names.ok()) return names.status();
  std::vector<ZkFile> out;
  for (const std::string& name : *names) {
    std::string rest = name.substr(prefix.size() + 1);
    size_t hex_end = rest.find_first_not_of("0123456789abcdefABCDEF");
    std::string path = dir + "/" + name;
    if (hex_end == 0 || (hex_end == std::string::npos ? rest.size() : hex_end) > 16)
      return InvalidArgument(path + ": not a ZooKeeper " + prefix + " file name");
    if (hex_end != std::string::npos)
      return InvalidArgument(path + ": unsupported file format (" + rest.substr(hex_end) +
                             "); only uncompressed ZooKeeper files can be imported");
    out.push_back({std::stoull(rest, nullptr, 16), path});
  }
  std::sort(out.begin(), out.end(),
            [](const ZkFile& a, const ZkFile& b) { return a.zxid < b.zxid; });
  return out;
}

Result<ZkSnapshot> ReadZkSnapshot(const ZkFile& file) {
  const std::string& path = file.path;
  auto content = storage::ReadFile(path);
  if (!content.ok()) return content.status();
  std::string_view bytes = *content;
  QFS_RETURN_IF_ERROR(CheckFileHeader(path, bytes, kSnapMagic, "snapshot"));
  auto bad = [&](const std::string& why) { return Corruption(path + ": " + why); };

  ZkSnapshot snap;
  snap.zxid = file.zxid;
  zk::JuteReader r(bytes.substr(kFileHeaderBytes), kMaxField);
  size_t n;
  if (!r.ReadCount(12, &n)) return bad("malformed session list");
  for (size_t i = 0; i < n; i++) {
    int64_t id;
    int32_t timeout;
    if (!r.ReadLong(&id) || !r.ReadInt(&timeout)) return bad("malformed session list");
    snap.sessions[id] = timeout;
  }
  int32_t acl_lists;
  if (!r.ReadInt(&acl_lists) || acl_lists < 0) return bad("malformed ACL cache");
  for (int32_t i = 0; i < acl_lists; i++) {
    int64_t id;
    size_t count;
    if (!r.ReadLong(&id) || !r.ReadCount(kMinAclBytes, &count)) return bad("malformed ACL cache");
    std::vector<tree::Acl> acl(count);
    for (auto& a : acl)
      if (!r.ReadAcl(&a)) return bad("malformed ACL cache");
    snap.acls[id] = std::move(acl);
  }
  while (true) {
    ZkSnapNode node;
    if (!r.ReadString(&node.path)) return bad("truncated node list");
    if (node.path == "/") break;  // the end marker; the root itself is ""
    if (!r.ReadBuffer(&node.data, &node.data_null) || !r.ReadLong(&node.acl_ref) ||
        !ReadZkStat(&r, &node.stat)) {
      return bad("truncated node " + node.path);
    }
    if (node.path.empty()) {
      if (!snap.nodes.empty()) return bad("a second root node");
      node.path = "/";
    } else if (snap.nodes.empty()) {
      return bad("the first node is not the root");
    }
    snap.nodes.push_back(std::move(node));
  }
  if (snap.nodes.empty()) return bad("no root node");
  // Seals cover the file from its first byte: the reader works on the part after the header.
  auto seal = [&](const char* section) -> Status {
    size_t pos = bytes.size() - r.remaining();
    int64_t stored = 0;
    std::string slash;
    if (!r.ReadLong(&stored) || !r.ReadString(&slash))
      return bad(std::string("truncated (no checksum after the ") + section + ")");
    uint32_t computed = Adler32(bytes.substr(0, pos));
    if (static_cast<uint64_t>(stored) != computed)
      return bad(std::string("bad checksum after the ") + section + " (stored " +
                 Hex(static_cast<uint64_t>(stored)) + ", computed " + Hex(computed) + ")");
    if (slash != "/") return bad(std::string("malformed seal after the ") + section);
    return Status::Ok();
  };
  QFS_RETURN_IF_ERROR(seal("tree"));
  // Optional sections of 3.6+: the tree digest (zxid, digest version, digest), then the last
  // processed zxid; each sealed.
  if (r.remaining() > 0) {
    int64_t zxid, digest;
    int32_t digest_version;
    if (!r.ReadLong(&zxid) || !r.ReadInt(&digest_version) || !r.ReadLong(&digest))
      return bad("truncated digest section");
    QFS_RETURN_IF_ERROR(seal("digest"));
  }
  if (r.remaining() > 0) {
    int64_t last_processed;
    if (!r.ReadLong(&last_processed)) return bad("truncated last-processed-zxid section");
    QFS_RETURN_IF_ERROR(seal("last processed zxid"));
  }
  if (r.remaining() > 0)
    return bad(std::to_string(r.remaining()) + " unknown bytes after the last section");
  return snap;
}

Result<ZkTxn> DecodeZkTxn(int32_t type, std::string_view body, bool top_level) {
  ZkTxn t;
  t.type = type;
  zk::JuteReader r(body, kMaxField);
  auto acl = [&]() {
    size_t n;
    if (!r.ReadCount(kMinAclBytes, &n)) return false;
    t.acl.resize(n);
    for (auto& a : t.acl)
      if (!r.ReadAcl(&a)) return false;
    return true;
  };
  bool ok = true;
  switch (type) {
    case op::kCreate:
    case op::kCreate2:
      ok = r.ReadString(&t.path) && r.ReadBuffer(&t.data, &t.data_null) && acl() &&
           r.ReadBool(&t.ephemeral) && r.ReadInt(&t.parent_cversion);
      break;
    case op::kCreateContainer:
      ok = r.ReadString(&t.path) && r.ReadBuffer(&t.data, &t.data_null) && acl() &&
           r.ReadInt(&t.parent_cversion);
      break;
    case op::kCreateTtl:
      ok = r.ReadString(&t.path) && r.ReadBuffer(&t.data, &t.data_null) && acl() &&
           r.ReadInt(&t.parent_cversion) && r.ReadLong(&t.ttl);
      break;
    case op::kDelete:
    case op::kDeleteContainer:
      ok = r.ReadString(&t.path);
      break;
    case op::kSetData:
      ok = r.ReadString(&t.path) && r.ReadBuffer(&t.data, &t.data_null) && r.ReadInt(&t.version);
      break;
    case op::kSetAcl:
      ok = r.ReadString(&t.path) && acl() && r.ReadInt(&t.version);
      break;
    case op::kCheck:
      ok = r.ReadString(&t.path) && r.ReadInt(&t.version);
      break;
    case op::kCreateSession:
      ok = r.ReadInt(&t.timeout);
      break;
    case op::kCloseSession:
      // Logs written with closeSessionTxnEnabled=false carry no body.
      if (r.remaining() > 0 && !(top_level && r.remaining() == kTxnDigestBytes)) {
        t.has_paths_to_delete = true;
        ok = r.ReadStringVector(&t.paths_to_delete);
      }
      break;
    case op::kError:
      ok = r.ReadInt(&t.err);
      break;
    case op::kMulti: {
      if (!top_level) return InvalidArgument("a multi inside a multi");
      size_t n;
      ok = r.ReadCount(8, &n);
      for (size_t i = 0; ok && i < n; i++) {
        int32_t sub_type;
        std::string sub_body;
        ok = r.ReadInt(&sub_type) && r.ReadBuffer(&sub_body);
        if (!ok) break;
        if (sub_type == op::kMulti || sub_type == op::kCreateSession ||
            sub_type == op::kCloseSession || sub_type == op::kSetAcl) {
          return InvalidArgument("unsupported op inside a multi: " + OpName(sub_type));
        }
        auto sub = DecodeZkTxn(sub_type, sub_body, false);
        if (!sub.ok()) return sub.status();
        t.sub.push_back(std::move(*sub));
      }
      break;
    }
    default:
      return InvalidArgument("unsupported txn type: " + OpName(type));
  }
  if (!ok) return Corruption("malformed " + OpName(type) + " txn");
  // A txn is followed by a TxnDigest (int version, long digest) when digests are on (3.6+).
  if (r.remaining() != 0 && !(top_level && r.remaining() == kTxnDigestBytes))
    return Corruption(OpName(type) + " txn has " + std::to_string(r.remaining()) +
                      " unexpected trailing bytes");
  return t;
}

Result<ZkLogStats> ReadZkLog(
    const ZkFile& file,
    const std::function<Status(const ZkTxnHeader& hdr, std::string_view body)>& fn) {
  const std::string& path = file.path;
  auto content = storage::ReadFile(path);
  if (!content.ok()) return content.status();
  std::string_view bytes = *content;
  QFS_RETURN_IF_ERROR(CheckFileHeader(path, bytes, kLogMagic, "txn log"));
  ZkLogStats stats;
  size_t pos = kFileHeaderBytes;
  while (true) {
    // crc (8), length (4): fewer bytes left than that is the end of the preallocated space.
    if (bytes.size() - pos < 12) break;
    uint64_t crc = BigEndian(bytes, pos, 8);
    int32_t len = static_cast<int32_t>(static_cast<uint32_t>(BigEndian(bytes, pos + 8, 4)));
    if (len == 0) break;  // the zero padding
    std::string where = path + " at offset " + std::to_string(pos);
    if (len < 0) return Corruption(where + ": negative record length");
    size_t need = 12 + static_cast<size_t>(len) + 1;
    if (bytes.size() - pos < need) {
      stats.torn_tail = true;
      break;
    }
    std::string_view entry = bytes.substr(pos + 12, static_cast<size_t>(len));
    uint32_t computed = Adler32(entry);
    if (crc != computed)
      return Corruption(where + ": bad checksum (stored " + Hex(crc) + ", computed " +
                        Hex(computed) + ")");
    if (bytes[pos + 12 + static_cast<size_t>(len)] != 'B') {
      stats.torn_tail = true;  // ZooKeeper: "Last transaction was partial"
      break;
    }
    zk::JuteReader r(entry, kMaxField);
    ZkTxnHeader h;
    if (!r.ReadLong(&h.client_id) || !r.ReadInt(&h.cxid) || !r.ReadLong(&h.zxid) ||
        !r.ReadLong(&h.time) || !r.ReadInt(&h.type)) {
      return Corruption(where + ": record too short for a txn header");
    }
    QFS_RETURN_IF_ERROR(fn(h, entry.substr(entry.size() - r.remaining())));
    stats.records++;
    pos += need;
  }
  return stats;
}

}  // namespace qfs::zkimport
