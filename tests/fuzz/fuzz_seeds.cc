// Writes the seed corpora of the protobuf-based fuzz targets (docs/fuzzing.md) from a tree built
// the way a leader builds it: requests through Preparer, txns through Apply, the txn log and a
// snapshot through the storage writers. Usage: fuzz_seeds OUT_DIR; makes OUT_DIR/<target>/.
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <string>
#include <vector>

#include "consensus/proto/peer.pb.h"
#include "consensus/proto/storage.pb.h"
#include "consensus/proto/transport.pb.h"
#include "consensus/storage/file_util.h"
#include "consensus/storage/snapshot_file.h"
#include "consensus/transport/frame.h"
#include "consensus/transport/frame_mac.h"
#include "daemon/proto/member.pb.h"
#include "daemon/replica/request_proto.h"
#include "daemon/tree/prepare.h"
#include "tests/fuzz/fuzz_util.h"

namespace qfs::fuzz {
namespace {

using tree::CreateMode;
using tree::Op;
using tree::OpType;
using tree::Request;
using tree::RequestType;

std::string Rec(std::string_view bytes) {  // one record of a structured input (fuzz_util.h)
  Check(bytes.size() < 65536);
  std::string out;
  out.push_back(static_cast<char>(bytes.size() & 0xff));
  out.push_back(static_cast<char>(bytes.size() >> 8));
  out.append(bytes);
  return out;
}

void Put(const std::string& dir, const std::string& name, std::string_view bytes) {
  mkdir(dir.c_str(), 0755);
  WriteWholeFile(dir + "/" + name, bytes);
}

Op MakeOp(OpType t, std::string path, std::string data = "",
          CreateMode m = CreateMode::kPersistent) {
  Op op;
  op.type = t;
  op.path = std::move(path);
  op.data = std::move(data);
  op.mode = m;
  if (t == OpType::kCreate) op.acl = {{tree::perm::kAll, {"world", "anyone"}}};
  if (m == CreateMode::kPersistentWithTtl) op.ttl_ms = 60000;
  return op;
}

std::vector<Request> Requests() {
  const int64_t sid = 0x100000001;
  std::vector<Request> out;
  Request s;
  s.type = RequestType::kCreateSession;
  s.session_id = sid;
  s.session_timeout_ms = 10000;
  out.push_back(s);
  auto op = [&](Op o) {
    Request r;
    r.session_id = sid;
    r.ops.push_back(std::move(o));
    out.push_back(r);
  };
  op(MakeOp(OpType::kCreate, "/app", "config"));
  op(MakeOp(OpType::kCreate, "/app/lock-", "", CreateMode::kEphemeralSequential));
  op(MakeOp(OpType::kCreate, "/app/queue-", "item", CreateMode::kPersistentSequential));
  op(MakeOp(OpType::kCreate, "/app/eph", "x", CreateMode::kEphemeral));
  op(MakeOp(OpType::kCreate, "/box", "", CreateMode::kContainer));
  op(MakeOp(OpType::kCreate, "/box/ttl", "t", CreateMode::kPersistentWithTtl));
  op(MakeOp(OpType::kSetData, "/app", std::string(300, 'v')));
  Op acl = MakeOp(OpType::kSetAcl, "/box/ttl");
  acl.acl = {{tree::perm::kRead, {"world", "anyone"}},
             {tree::perm::kAll, {"digest", "u:NnzqC2EZ7lEyhRLAvmcgkCK5M34="}}};
  op(acl);
  Op app = MakeOp(OpType::kAppend, "/app/queue-0000000001", "more");
  op(app);
  Request m;
  m.type = RequestType::kMulti;
  m.session_id = sid;
  m.ops = {MakeOp(OpType::kCreate, "/m1", "a"), MakeOp(OpType::kCheck, "/m1"),
           MakeOp(OpType::kSetData, "/m1", "b"), MakeOp(OpType::kDelete, "/app/eph")};
  out.push_back(m);
  op(MakeOp(OpType::kDelete, "/m1"));
  Request c;
  c.type = RequestType::kCloseSession;
  c.session_id = sid;
  out.push_back(c);
  return out;
}

int Main(const std::string& out) {
  mkdir(out.c_str(), 0755);
  tree::DataTree t{tree::TreeOptions{}};
  tree::Preparer prep(t);
  std::vector<storage::LogRecord> log;
  std::vector<std::string> snapshot_mid;  // records of the tree halfway
  int64_t zxid = 0x100000000;
  const std::vector<Request> reqs = Requests();
  for (size_t i = 0; i < reqs.size(); ++i) {
    tree::Prepared p = prep.Prepare(reqs[i], ++zxid, 1700000000000 + static_cast<int64_t>(i));
    if (p.err != tree::Err::kOk) {
      fprintf(stderr, "fuzz_seeds: request %zu refused (%d)\n", i, static_cast<int>(p.err));
      return 1;
    }
    t.Apply(*p.txn);
    prep.Applied(zxid);
    storage::LogRecord rec;
    rec.set_zxid(static_cast<uint64_t>(zxid));
    rec.set_payload(p.txn->SerializeAsString());
    log.push_back(rec);
    if (i == reqs.size() - 2) {  // before the session closes: ephemerals and a session
      Check(t.WriteSnapshot([&](std::string_view r) {
               snapshot_mid.emplace_back(r);
               return Status::Ok();
             }).ok());
    }
  }

  // txn_log_fuzz: a raw segment (header, frames, the zero end of data) and the structured form.
  std::string seg("QFSLOG01\0\0\0\0\0\0\0\0", 16), structured(1, '\1');
  for (size_t i = 0; i < log.size(); ++i) {
    const std::string bytes = log[i].SerializeAsString();
    storage::AppendFrame(&seg, bytes);
    structured += Rec(bytes);
    if (i == log.size() / 2) structured += Rec("");  // a second segment
  }
  seg.append(64, '\0');
  Put(out + "/txn_log_fuzz", "segment", std::string(1, '\0') + seg);
  Put(out + "/txn_log_fuzz", "records", structured);

  // snapshot_fuzz: a real file and its records.
  const std::string dir = out + "/tmp-snap";
  mkdir(dir.c_str(), 0755);
  auto w = storage::SnapshotWriter::Create(dir, static_cast<uint64_t>(zxid));
  Check(w.ok());
  std::string recs(1, '\1');
  for (const std::string& r : snapshot_mid) {
    Check((*w)->Add(r).ok());
    recs += Rec(r);
  }
  Check((*w)->Finish().ok());
  auto file = storage::ReadFile((*w)->final_path());
  Check(file.ok());
  Put(out + "/snapshot_fuzz", "file", std::string(1, '\0') + *file);
  Put(out + "/snapshot_fuzz", "records", recs);
  unlink((*w)->final_path().c_str());
  rmdir(dir.c_str());

  // peer_stream_fuzz: what a follower hears from its leader, and a learner's forwarded write.
  std::string stream(1, '\1'), raw;
  transport::FrameMac raw_mac("frame-key");  // peer_stream_fuzz's key
  for (const auto& rec : log) {
    peer::PeerMessage p;
    p.mutable_zab()->set_epoch(1);
    p.mutable_zab()->mutable_proposal()->set_zxid(rec.zxid());
    p.mutable_zab()->mutable_proposal()->set_payload(rec.payload());
    stream += Rec(p.SerializeAsString());
    std::string f;
    transport::AppendFrame(&f, p.SerializeAsString());
    raw += f + raw_mac.NextTag(f);
    peer::PeerMessage c;
    c.mutable_zab()->set_epoch(1);
    c.mutable_zab()->mutable_commit()->set_zxid(rec.zxid());
    stream += Rec(c.SerializeAsString());
  }
  peer::PeerMessage ping;
  ping.mutable_zab()->mutable_ping()->set_committed(5);
  ping.mutable_zab()->mutable_ping()->set_seq(9);
  stream += Rec(ping.SerializeAsString());
  for (const Request& r : reqs) {
    member::AppMessage a;
    a.mutable_forward()->set_tag(7);
    ToProto(r, a.mutable_forward()->mutable_request());
    peer::PeerMessage p;
    p.set_app(a.SerializeAsString());
    stream += Rec(p.SerializeAsString());
  }
  peer::PeerMessage chunk;
  chunk.mutable_chunk()->set_zxid(5);
  chunk.mutable_chunk()->set_data(std::string(100, 's'));
  chunk.mutable_chunk()->set_last(true);
  stream += Rec(chunk.SerializeAsString());
  Put(out + "/peer_stream_fuzz", "stream", stream);
  Put(out + "/peer_stream_fuzz", "raw", std::string(1, '\0') + raw);
  transport::Hello h;
  h.set_version(1);
  h.set_dialer_id(2);
  h.set_acceptor_id(1);
  h.set_nonce(std::string(32, 'd'));
  h.set_mac(std::string(32, 'm'));
  Put(out + "/peer_stream_fuzz", "hello",
      std::string(1, '\2') + Rec(h.SerializeAsString()) + stream.substr(1));
  return 0;
}

}  // namespace
}  // namespace qfs::fuzz

int main(int argc, char** argv) {
  if (argc != 2) {
    fprintf(stderr, "usage: fuzz_seeds OUT_DIR\n");
    return 2;
  }
  return qfs::fuzz::Main(argv[1]);
}
