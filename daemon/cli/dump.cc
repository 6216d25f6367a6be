#include "daemon/cli/dump.h"

#include <algorithm>
#include <cinttypes>
#include <cstdint>
#include <cstdio>
#include <ctime>
#include <string>
#include <string_view>
#include <vector>

#include "consensus/storage/snapshot_file.h"
#include "consensus/storage/txn_log.h"
#include "daemon/proto/txn.pb.h"
#include "daemon/tree/data_tree.h"

namespace qfs::cli {
namespace {

constexpr int kExitOk = 0, kExitBad = 1, kExitUsage = 2;

const char* kLogDumpHelp =
    "usage: quorumfs log-dump [--data] DIR|FILE\n"
    "\n"
    "Prints every record of a txn log (a dataLogDir, or one log.<zxid> segment) without\n"
    "changing it, one line per txn: zxid, time (UTC), session, cxid, op and its arguments.\n"
    "Checks every record's checksum and the order of zxids as the daemon does when it starts.\n"
    "A torn tail (a last record cut short by a crash, which the daemon would truncate) is\n"
    "reported on a '#' line and is not an error.\n"
    "  --data  also print node data, C-escaped\n"
    "Exit status: 0 the log is valid, 1 corrupt or unreadable (stderr names file and offset),\n"
    "2 bad usage.\n";

const char* kSnapshotDumpHelp =
    "usage: quorumfs snapshot-dump [--data] FILE\n"
    "\n"
    "Prints a snapshot file (dataDir/snapshot.<zxid>): a header line (zxid, creation time,\n"
    "record, node and session counts, digest), one line per node in path order (Stat\n"
    "fields, ACL, ephemeral owner) and one line per session. Checks the file's checksums and\n"
    "that the tree it holds loads and matches its digest, as the daemon does at start-up.\n"
    "  --data  also print node data, C-escaped\n"
    "Exit status: 0 the snapshot is valid, 1 corrupt or unreadable, 2 bad usage.\n";

std::string Hex(int64_t v) {
  char buf[32];
  snprintf(buf, sizeof buf, "0x%" PRIx64, static_cast<uint64_t>(v));
  return buf;
}

// ISO 8601 UTC with milliseconds.
std::string Time(int64_t ms) {
  const time_t secs = static_cast<time_t>(ms >= 0 ? ms / 1000 : (ms - 999) / 1000);
  struct tm tm {};
  char buf[64];
  if (!gmtime_r(&secs, &tm) || strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S", &tm) == 0) {
    return std::to_string(ms) + "ms";
  }
  char out[96];
  snprintf(out, sizeof out, "%s.%03dZ", buf, static_cast<int>(ms - int64_t{secs} * 1000));
  return out;
}

std::string Escape(std::string_view d) {
  std::string out = "\"";
  for (unsigned char c : d) {
    if (c == '"' || c == '\\') {
      out += '\\';
      out += static_cast<char>(c);
    } else if (c >= 0x20 && c < 0x7f) {
      out += static_cast<char>(c);
    } else {
      char b[8];
      snprintf(b, sizeof b, "\\x%02x", c);
      out += b;
    }
  }
  return out + "\"";
}

// zkCli's order: c d r w a.
std::string Perms(int32_t p) {
  std::string s;
  if (p & tree::perm::kCreate) s += 'c';
  if (p & tree::perm::kDelete) s += 'd';
  if (p & tree::perm::kRead) s += 'r';
  if (p & tree::perm::kWrite) s += 'w';
  if (p & tree::perm::kAdmin) s += 'a';
  return s;
}

template <typename AclList, typename Get>
std::string AclText(const AclList& acl, Get get) {
  std::string s;
  for (const auto& a : acl) {
    if (!s.empty()) s += ',';
    s += get(a);
  }
  return s.empty() ? "-" : s;
}

std::string ProtoAcl(const google::protobuf::RepeatedPtrField<txn::Acl>& acl) {
  return AclText(
      acl, [](const txn::Acl& a) { return a.scheme() + ":" + a.id() + ":" + Perms(a.perms()); });
}

const char* KindName(uint32_t k) {
  switch (static_cast<tree::Kind>(k)) {
    case tree::Kind::kFile:
      return "file";
    case tree::Kind::kDirectory:
      return "dir";
    case tree::Kind::kUnset:
      break;
  }
  return nullptr;
}

std::string Data(const std::string& data, bool data_null, bool show) {
  std::string s = data_null ? " data=null" : " len=" + std::to_string(data.size());
  if (show && !data_null) s += " data=" + Escape(data);
  return s;
}

// The txn does not record the create mode. The owner gives ephemeral, container and TTL;
// sequential is inferred from the name ending in the suffix prepare gives (docs/tools.md).
std::string CreateText(const txn::CreateTxn& c, bool show) {
  const int64_t owner = c.ephemeral_owner();
  char suffix[16];
  snprintf(suffix, sizeof suffix, "%010d", c.parent_cversion() - 1);
  const std::string& p = c.path();
  const bool seq = p.size() > 10 && p.compare(p.size() - 10, 10, suffix) == 0;
  std::string mode;
  if (owner == tree::kContainerOwner) {
    mode = "CONTAINER";
  } else if (tree::IsTtlOwner(owner)) {
    mode = seq ? "PERSISTENT_SEQUENTIAL_WITH_TTL" : "PERSISTENT_WITH_TTL";
  } else if (owner != 0) {
    mode = seq ? "EPHEMERAL_SEQUENTIAL" : "EPHEMERAL";
  } else {
    mode = seq ? "PERSISTENT_SEQUENTIAL" : "PERSISTENT";
  }
  std::string s = "create path=" + p + Data(c.data(), c.data_null(), show) + " mode=" + mode;
  if (tree::IsTtlOwner(owner)) s += " ttl=" + std::to_string(tree::TtlOf(owner));
  if (tree::IsSessionOwner(owner)) s += " owner=" + Hex(owner);
  s += " acl=" + ProtoAcl(c.acl()) + " parent_cversion=" + std::to_string(c.parent_cversion());
  if (const char* k = KindName(c.kind())) s += std::string(" kind=") + k;
  return s;
}

std::string MultiOpText(const txn::MultiOp& op, bool show) {
  switch (op.op_case()) {
    case txn::MultiOp::kCreate:
      return CreateText(op.create(), show);
    case txn::MultiOp::kDelete:
      return "delete path=" + op.delete_().path();
    case txn::MultiOp::kSetData:
      return "setData path=" + op.set_data().path() +
             Data(op.set_data().data(), op.set_data().data_null(), show) +
             " version=" + std::to_string(op.set_data().version());
    case txn::MultiOp::kCheck:
      return "check path=" + op.check().path() + " version=" + std::to_string(op.check().version());
    case txn::MultiOp::OP_NOT_SET:
      break;
  }
  return "(empty op)";
}

// The op and its arguments; empty if the txn holds no op (a corrupt payload).
std::string OpText(const txn::Txn& t, bool show) {
  switch (t.op_case()) {
    case txn::Txn::kCreate:
      return CreateText(t.create(), show);
    case txn::Txn::kDelete:
      return "delete path=" + t.delete_().path();
    case txn::Txn::kSetData:
      return "setData path=" + t.set_data().path() +
             Data(t.set_data().data(), t.set_data().data_null(), show) +
             " version=" + std::to_string(t.set_data().version());
    case txn::Txn::kSetAcl:
      return "setACL path=" + t.set_acl().path() + " acl=" + ProtoAcl(t.set_acl().acl()) +
             " aversion=" + std::to_string(t.set_acl().aversion());
    case txn::Txn::kAppend:
      return "append path=" + t.append().path() + Data(t.append().data(), false, show) +
             " version=" + std::to_string(t.append().version());
    case txn::Txn::kMulti: {
      std::string s = "multi ops=" + std::to_string(t.multi().ops_size());
      for (const auto& op : t.multi().ops()) s += " [" + MultiOpText(op, show) + "]";
      return s;
    }
    case txn::Txn::kReconfig: {
      std::string s = "reconfig servers=" + std::to_string(t.reconfig().servers_size());
      for (const auto& v : t.reconfig().servers())
        s += " " + std::to_string(v.id()) + (v.observer() ? ":observer" : ":participant");
      return s + " version=" + std::to_string(t.reconfig().node().version());
    }
    case txn::Txn::kCreateSession:
      return "createSession timeout=" + std::to_string(t.create_session().timeout_ms());
    case txn::Txn::kCloseSession: {
      std::string s =
          "closeSession ephemerals=" + std::to_string(t.close_session().paths_to_delete_size());
      for (const auto& p : t.close_session().paths_to_delete()) s += " " + p;
      return s;
    }
    case txn::Txn::OP_NOT_SET:
      break;
  }
  return "";
}

int Fail(const char* cmd, const std::string& msg) {
  fflush(stdout);
  fprintf(stderr, "quorumfs: %s: %s\n", cmd, msg.c_str());
  return kExitBad;
}

int LogDump(const std::string& path, bool show) {
  uint64_t records = 0, segments = 0, first = 0, last = 0;
  std::string bad;         // the first record whose payload is not a txn the daemon could apply
  bool bad_named = false;  // `bad` names its file
  Status st = storage::ScanLog(
      path,
      [&](const storage::LogScanRecord& r) {
        txn::Txn t;
        std::string op;
        if (t.ParseFromArray(r.payload.data(), static_cast<int>(r.payload.size()))) {
          op = OpText(t, show);
        }
        if (op.empty() || static_cast<uint64_t>(t.zxid()) != r.zxid) {
          printf("zxid=%s offset=%" PRIu64 " (not a valid txn)\n",
                 Hex(static_cast<int64_t>(r.zxid)).c_str(), r.offset);
          if (bad.empty()) {
            bad = "record zxid " + Hex(static_cast<int64_t>(r.zxid)) + " at offset " +
                  std::to_string(r.offset) + " does not hold a valid txn";
          }
        } else {
          printf("zxid=%s time=%s session=%s cxid=%d %s\n", Hex(t.zxid()).c_str(),
                 Time(t.time_ms()).c_str(), Hex(t.session_id()).c_str(), t.cxid(), op.c_str());
        }
        if (records++ == 0) first = r.zxid;
        last = r.zxid;
      },
      [&](const storage::LogScanSegment& s) {
        segments++;
        printf("# segment %s: %" PRIu64 " records, data ends at offset %" PRIu64 " of %" PRIu64
               "\n",
               s.path.c_str(), s.records, s.end, s.size);
        if (s.torn) {
          printf("# torn tail in %s at offset %" PRIu64
                 " (%s): the daemon truncates the segment there\n",
                 s.path.c_str(), s.end, s.tail.c_str());
        } else if (s.stray) {
          printf("# %s has stray bytes after its end of data at offset %" PRIu64 " (ignored)\n",
                 s.path.c_str(), s.end);
        }
        if (s.remove) {
          printf("# %s holds no records: the daemon removes it\n", s.path.c_str());
        }
        if (!bad.empty() && !bad_named) {
          bad = s.path + ": " + bad;
          bad_named = true;
        }
      });
  if (!st.ok()) return Fail("log-dump", st.message());
  if (!bad.empty()) return Fail("log-dump", bad);
  if (segments == 0) {
    printf("# no log segments in %s\n", path.c_str());
  } else {
    printf("# %" PRIu64 " segments, %" PRIu64 " records", segments, records);
    if (records > 0) {
      printf(", zxids %s to %s", Hex(static_cast<int64_t>(first)).c_str(),
             Hex(static_cast<int64_t>(last)).c_str());
    }
    printf("\n");
  }
  return kExitOk;
}

void DumpNode(const tree::DataTree& t, const std::string& path, bool show) {
  std::string data;
  tree::Stat st;
  bool data_null = false;
  QFS_CHECK(t.GetData(path, &data, &st, &data_null) == tree::Err::kOk);
  std::vector<tree::Acl> acl;
  QFS_CHECK(t.GetAcl(path, &acl, nullptr) == tree::Err::kOk);
  tree::Kind kind = tree::Kind::kUnset;
  QFS_CHECK(t.GetKind(path, &kind) == tree::Err::kOk);
  std::string line =
      path + " czxid=" + Hex(st.czxid) + " mzxid=" + Hex(st.mzxid) + " pzxid=" + Hex(st.pzxid) +
      " ctime=" + Time(st.ctime) + " mtime=" + Time(st.mtime) +
      " version=" + std::to_string(st.version) + " cversion=" + std::to_string(st.cversion) +
      " aversion=" + std::to_string(st.aversion) + " owner=" + Hex(st.ephemeral_owner) +
      " children=" + std::to_string(st.num_children) + Data(data, data_null, show) +
      " acl=" + AclText(acl, [](const tree::Acl& a) {
        return a.id.scheme + ":" + a.id.id + ":" + Perms(a.perms);
      });
  if (const char* k = KindName(static_cast<uint32_t>(kind))) line += std::string(" kind=") + k;
  printf("%s\n", line.c_str());

  std::vector<std::string> names;
  QFS_CHECK(t.GetChildren(path, &names, nullptr) == tree::Err::kOk);
  std::sort(names.begin(), names.end());  // the snapshot's order: by name bytes
  for (const std::string& n : names) DumpNode(t, path == "/" ? "/" + n : path + "/" + n, show);
}

int SnapshotDump(const std::string& path, bool show) {
  auto reader = storage::SnapshotReader::Open(path);
  if (!reader.ok()) return Fail("snapshot-dump", reader.status().message());
  storage::SnapshotReader& r = **reader;
  const uint64_t zxid = r.last_zxid(), records = r.record_count();
  const int64_t created = static_cast<int64_t>(r.created_unix_ms());
  tree::TreeOptions opts;
  opts.max_data_bytes = SIZE_MAX;  // report what is there, whatever the member's jute.maxbuffer
  auto t = tree::DataTree::LoadSnapshot(opts, [&](std::string_view* rec) { return r.Next(rec); });
  if (!t.ok()) return Fail("snapshot-dump", path + ": " + t.status().message());
  const tree::DataTree& tr = **t;
  QFS_CHECK(static_cast<uint64_t>(tr.last_zxid()) == zxid);
  printf("# snapshot %s: zxid=%s created=%s records=%" PRIu64
         " nodes=%zu sessions=%zu "
         "digest=%s (checksums and digest verified)\n",
         path.c_str(), Hex(static_cast<int64_t>(zxid)).c_str(), Time(created).c_str(), records,
         tr.node_count(), tr.sessions().size(), Hex(static_cast<int64_t>(tr.digest())).c_str());
  DumpNode(tr, "/", show);
  for (const auto& [id, timeout] : tr.sessions()) {
    printf("session=%s timeout=%d ephemerals=%zu\n", Hex(id).c_str(), timeout,
           tr.GetEphemerals(id, "/").size());
  }
  return kExitOk;
}

}  // namespace

bool IsDumpCommand(const std::string& name) {
  return name == "log-dump" || name == "snapshot-dump";
}

int RunDump(const std::string& name, const std::vector<std::string>& args) {
  const bool log = name == "log-dump";
  const char* help = log ? kLogDumpHelp : kSnapshotDumpHelp;
  bool show = false, opts_done = false;
  std::vector<std::string> pos;
  for (const std::string& a : args) {
    if (!opts_done && (a == "-h" || a == "--help")) {
      fputs(help, stdout);
      return kExitOk;
    } else if (!opts_done && a == "--data") {
      show = true;
    } else if (!opts_done && a == "--") {
      opts_done = true;
    } else if (!opts_done && a.size() > 1 && a[0] == '-') {
      fprintf(stderr, "quorumfs: %s: unknown option '%s'\n%s", name.c_str(), a.c_str(), help);
      return kExitUsage;
    } else {
      pos.push_back(a);
    }
  }
  if (pos.size() != 1) {
    fprintf(stderr, "quorumfs: %s: %s\n%s", name.c_str(),
            pos.empty() ? "missing file" : "too many arguments", help);
    return kExitUsage;
  }
  return log ? LogDump(pos[0], show) : SnapshotDump(pos[0], show);
}

}  // namespace qfs::cli
