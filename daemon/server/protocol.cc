#include "daemon/server/protocol.h"

#include <string>
#include <type_traits>
#include <utility>
#include <variant>

namespace qfs::zk {

// ---- Record writers. ----

void RequestHeader::Write(JuteWriter& w) const {
  w.WriteInt(xid);
  w.WriteInt(type);
}

void ReplyHeader::Write(JuteWriter& w) const {
  w.WriteInt(xid);
  w.WriteLong(zxid);
  w.WriteInt(err);
}

void MultiHeader::Write(JuteWriter& w) const {
  w.WriteInt(type);
  w.WriteBool(done);
  w.WriteInt(err);
}

bool CreateRequest::Read(JuteReader& r, bool with_ttl) {
  if (!(r.ReadString(&path) && r.ReadBuffer(&data, &data_null) && r.ReadAclVector(&acl) &&
        r.ReadInt(&flags))) {
    return false;
  }
  if (!with_ttl) {
    ttl = -1;
    return true;
  }
  return r.ReadLong(&ttl);
}

void CreateRequest::Write(JuteWriter& w, bool with_ttl) const {
  w.WriteString(path);
  if (data_null) {
    w.WriteNullBuffer();
  } else {
    w.WriteBuffer(data);
  }
  w.WriteAclVector(acl);
  w.WriteInt(flags);
  if (with_ttl) w.WriteLong(ttl);
}

void PathVersionRequest::Write(JuteWriter& w) const {
  w.WriteString(path);
  w.WriteInt(version);
}

void PathWatchRequest::Write(JuteWriter& w) const {
  w.WriteString(path);
  w.WriteBool(watch);
}

void PathRequest::Write(JuteWriter& w) const {
  w.WriteString(path);
}

void SetDataRequest::Write(JuteWriter& w) const {
  w.WriteString(path);
  if (data_null) {
    w.WriteNullBuffer();
  } else {
    w.WriteBuffer(data);
  }
  w.WriteInt(version);
}

void SetAclRequest::Write(JuteWriter& w) const {
  w.WriteString(path);
  w.WriteAclVector(acl);
  w.WriteInt(version);
}

void WatchTypeRequest::Write(JuteWriter& w) const {
  w.WriteString(path);
  w.WriteInt(type);
}

void AddWatchRequest::Write(JuteWriter& w) const {
  w.WriteString(path);
  w.WriteInt(mode);
}

void ReconfigRequest::Write(JuteWriter& w) const {
  for (const auto* s : {&joining_servers, &leaving_servers, &new_members}) {
    if (*s) {
      w.WriteString(**s);
    } else {
      w.WriteNullBuffer();
    }
  }
  w.WriteLong(cur_config_id);
}

void AuthPacket::Write(JuteWriter& w) const {
  w.WriteInt(type);
  w.WriteString(scheme);
  w.WriteBuffer(auth);
}

void SaslToken::Write(JuteWriter& w) const {
  w.WriteBuffer(token);
}

bool SetWatchesRequest::Read(JuteReader& r, bool v2) {
  if (!(r.ReadLong(&relative_zxid) && r.ReadStringVector(&data_watches) &&
        r.ReadStringVector(&exist_watches) && r.ReadStringVector(&child_watches))) {
    return false;
  }
  persistent_watches.clear();
  persistent_recursive_watches.clear();
  if (!v2) return true;
  return r.ReadStringVector(&persistent_watches) &&
         r.ReadStringVector(&persistent_recursive_watches);
}

void SetWatchesRequest::Write(JuteWriter& w, bool v2) const {
  w.WriteLong(relative_zxid);
  w.WriteStringVector(data_watches);
  w.WriteStringVector(exist_watches);
  w.WriteStringVector(child_watches);
  if (v2) {
    w.WriteStringVector(persistent_watches);
    w.WriteStringVector(persistent_recursive_watches);
  }
}

void Create2Response::Write(JuteWriter& w) const {
  w.WriteString(path);
  w.WriteStat(stat);
}

void GetDataResponse::Write(JuteWriter& w) const {
  if (data_null) {
    w.WriteNullBuffer();
  } else {
    w.WriteBuffer(data);
  }
  w.WriteStat(stat);
}

void GetChildren2Response::Write(JuteWriter& w) const {
  w.WriteStringVector(children);
  w.WriteStat(stat);
}

void GetAclResponse::Write(JuteWriter& w) const {
  w.WriteAclVector(acl);
  w.WriteStat(stat);
}

bool WhoAmIResponse::Read(JuteReader& r) {
  size_t n;
  if (!r.ReadCount(8, &n)) return false;  // two string lengths
  client_info.clear();
  client_info.reserve(n);
  for (size_t i = 0; i < n; ++i) {
    ClientInfo& c = client_info.emplace_back();
    if (!(r.ReadString(&c.auth_scheme) && r.ReadString(&c.user))) return false;
  }
  return true;
}

void WhoAmIResponse::Write(JuteWriter& w) const {
  w.WriteInt(static_cast<int32_t>(client_info.size()));
  for (const ClientInfo& c : client_info) {
    w.WriteString(c.auth_scheme);
    w.WriteString(c.user);
  }
}

void WatcherEvent::Write(JuteWriter& w) const {
  w.WriteInt(type);
  w.WriteInt(state);
  w.WriteString(path);
}

namespace {

constexpr MultiHeader kMultiEnd{-1, true, -1};

bool IsCreateOp(int32_t type) {
  return type == op::kCreate || type == op::kCreate2 || type == op::kCreateContainer ||
         type == op::kCreateTtl;
}

template <typename T>
bool ReadInto(JuteReader& r, RequestBody* body) {
  T t;
  if (!t.Read(r)) return false;
  *body = std::move(t);
  return true;
}

// MultiOperationRecord.deserialize: headers and op records until a header with done set. Unlike
// ZooKeeper, the terminator must also carry type -1 (every client sends {-1, true, -1}).
Status ReadMulti(JuteReader& r, bool read_kind, MultiRequest* m) {
  while (true) {
    MultiHeader h;
    if (!h.Read(r)) return InvalidArgument("multi: truncated op header");
    if (h.done) {
      if (h.type != -1) {
        return InvalidArgument("multi: terminator has type " + std::to_string(h.type));
      }
      return Status::Ok();
    }
    MultiOp o;
    o.type = h.type;
    bool ok = false;
    // A multi carries only write ops and a multiRead only reads, as ZooKeeper's OpKind check.
    if (read_kind) {
      if (h.type != op::kGetChildren && h.type != op::kGetData) {
        return InvalidArgument("multiRead: op type " + std::to_string(h.type));
      }
      PathWatchRequest p;
      ok = p.Read(r);
      o.body = std::move(p);
    } else if (IsCreateOp(h.type)) {
      CreateRequest c;
      ok = c.Read(r, h.type == op::kCreateTtl);
      o.body = std::move(c);
    } else if (h.type == op::kDelete || h.type == op::kCheck) {
      PathVersionRequest p;
      ok = p.Read(r);
      o.body = std::move(p);
    } else if (h.type == op::kSetData) {
      SetDataRequest s;
      ok = s.Read(r);
      o.body = std::move(s);
    } else {
      return InvalidArgument("multi: op type " + std::to_string(h.type));
    }
    if (!ok) return InvalidArgument("multi: malformed op of type " + std::to_string(h.type));
    m->ops.push_back(std::move(o));
  }
}

void WriteMultiOp(JuteWriter& w, const MultiOp& o) {
  MultiHeader{o.type, false, -1}.Write(w);
  if (const auto* c = std::get_if<CreateRequest>(&o.body)) {
    c->Write(w, o.type == op::kCreateTtl);
  } else {
    std::visit(
        [&w](const auto& b) {
          if constexpr (!std::is_same_v<std::decay_t<decltype(b)>, CreateRequest>) b.Write(w);
        },
        o.body);
  }
}

}  // namespace

// ---- Decoding. ----

Result<int32_t> DecodeFrameLength(std::string_view prefix, size_t max_buffer) {
  JuteReader r(prefix);
  int32_t len;
  if (!r.ReadInt(&len) || !r.AtEnd()) return InvalidArgument("frame length needs 4 bytes");
  if (len < 0 || static_cast<size_t>(len) > max_buffer) {
    return InvalidArgument("frame length " + std::to_string(len) + " outside 0.." +
                           std::to_string(max_buffer));
  }
  return len;
}

Result<ConnectRequest> DecodeConnect(std::string_view packet, size_t max_buffer) {
  JuteReader r(packet, max_buffer);
  ConnectRequest c;
  if (!(r.ReadInt(&c.protocol_version) && r.ReadLong(&c.last_zxid_seen) &&
        r.ReadInt(&c.timeout_ms) && r.ReadLong(&c.session_id) && r.ReadBuffer(&c.passwd))) {
    return InvalidArgument("connect request: truncated or bad passwd length");
  }
  // ProtocolManager: the readOnly byte is there or not; nothing else may follow.
  c.has_read_only = r.remaining() > 0;
  if (c.has_read_only) r.ReadBool(&c.read_only);
  if (!r.AtEnd()) return InvalidArgument("connect request: trailing bytes");
  return c;
}

Result<RequestHeader> DecodeRequestHeader(std::string_view packet) {
  JuteReader r(packet);
  RequestHeader h;
  if (!h.Read(r)) return InvalidArgument("request header: truncated");
  return h;
}

Result<ClientRequest> DecodeRequest(std::string_view packet, size_t max_buffer) {
  JuteReader r(packet, max_buffer);
  ClientRequest req;
  if (!req.header.Read(r)) return InvalidArgument("request header: truncated");
  const int32_t type = req.header.type;
  bool ok = true;
  switch (type) {
    case op::kCreate:
    case op::kCreate2:
    case op::kCreateContainer:
    case op::kCreateTtl: {
      CreateRequest c;
      ok = c.Read(r, type == op::kCreateTtl);
      req.body = std::move(c);
      break;
    }
    case op::kDelete:
    case op::kCheck:
      ok = ReadInto<PathVersionRequest>(r, &req.body);
      break;
    case op::kExists:
    case op::kGetData:
    case op::kGetChildren:
    case op::kGetChildren2:
      ok = ReadInto<PathWatchRequest>(r, &req.body);
      break;
    case op::kGetAcl:
    case op::kSync:
    case op::kGetAllChildrenNumber:
    case op::kGetEphemerals:
      ok = ReadInto<PathRequest>(r, &req.body);
      break;
    case op::kSetData:
      ok = ReadInto<SetDataRequest>(r, &req.body);
      break;
    case op::kSetAcl:
      ok = ReadInto<SetAclRequest>(r, &req.body);
      break;
    case op::kCheckWatches:
    case op::kRemoveWatches:
      ok = ReadInto<WatchTypeRequest>(r, &req.body);
      break;
    case op::kAddWatch:
      ok = ReadInto<AddWatchRequest>(r, &req.body);
      break;
    case op::kReconfig:
      ok = ReadInto<ReconfigRequest>(r, &req.body);
      break;
    case op::kAuth:
      ok = ReadInto<AuthPacket>(r, &req.body);
      break;
    case op::kSasl:
      ok = ReadInto<SaslToken>(r, &req.body);
      break;
    case op::kSetWatches:
    case op::kSetWatches2: {
      SetWatchesRequest s;
      ok = s.Read(r, type == op::kSetWatches2);
      req.body = std::move(s);
      break;
    }
    case op::kMulti:
    case op::kMultiRead: {
      MultiRequest m;
      Status st = ReadMulti(r, type == op::kMultiRead, &m);
      if (!st.ok()) return st;
      req.body = std::move(m);
      break;
    }
    case op::kPing:
    case op::kCloseSession:
    case op::kWhoAmI:
      break;  // no body
    default:
      // Not parsed: the reply is ZUNIMPLEMENTED whatever follows.
      req.unimplemented = true;
      return req;
  }
  if (!ok) return InvalidArgument("request of type " + std::to_string(type) + ": malformed body");
  if (!r.AtEnd()) {
    return InvalidArgument("request of type " + std::to_string(type) + ": " +
                           std::to_string(r.remaining()) + " trailing bytes");
  }
  return req;
}

// ---- Encoding. ----

std::string EncodeConnectResponse(const ConnectResponse& c, bool with_read_only) {
  JuteWriter w(JuteWriter::Framing::kLengthPrefixed);
  w.WriteInt(c.protocol_version);
  w.WriteInt(c.timeout_ms);
  w.WriteLong(c.session_id);
  w.WriteBuffer(c.passwd);
  if (with_read_only) w.WriteBool(c.read_only);
  return std::move(w).Finish();
}

std::string EncodeReply(const ReplyHeader& h) {
  JuteWriter w(JuteWriter::Framing::kLengthPrefixed);
  h.Write(w);
  return std::move(w).Finish();
}

std::string EncodeNotification(const WatcherEvent& e, int64_t zxid) {
  return EncodeReply(ReplyHeader{xid::kNotification, zxid, 0}, e);
}

int32_t MultiResultType(const MultiOp& o) {
  if (const auto* c = std::get_if<CreateRequest>(&o.body); c != nullptr && IsCreateOp(o.type)) {
    // Op.create re-derives the op from the flags: container and TTL modes become
    // createContainer / createTTL, whose results carry a stat; anything else is a plain create.
    const auto mode = static_cast<tree::CreateMode>(c->flags);
    if (mode == tree::CreateMode::kContainer || tree::IsTtl(mode)) return op::kCreate2;
    return op::kCreate;
  }
  return o.type;
}

std::string EncodeMultiResponse(const ReplyHeader& h, const MultiRequest& req,
                                const std::vector<tree::OpResult>& results) {
  QFS_CHECK(results.size() == req.ops.size());
  bool failed = false;
  for (const tree::OpResult& res : results) failed = failed || res.err != tree::Err::kOk;

  JuteWriter w(JuteWriter::Framing::kLengthPrefixed);
  h.Write(w);
  for (size_t i = 0; i < results.size(); ++i) {
    const tree::OpResult& res = results[i];
    if (failed) {
      const auto err = static_cast<int32_t>(res.err);
      MultiHeader{op::kError, false, err}.Write(w);
      IntResponse{err}.Write(w);
      continue;
    }
    const int32_t type = MultiResultType(req.ops[i]);
    MultiHeader{type, false, 0}.Write(w);
    switch (type) {
      case op::kCreate:
        PathResponse{res.path}.Write(w);
        break;
      case op::kCreate2:
        Create2Response{res.path, res.stat}.Write(w);
        break;
      case op::kSetData:
        StatResponse{res.stat}.Write(w);
        break;
      default:
        break;  // delete and check answer no record
    }
  }
  kMultiEnd.Write(w);
  return std::move(w).Finish();
}

std::string EncodeMultiReadResponse(const ReplyHeader& h,
                                    const std::vector<MultiReadResult>& results) {
  JuteWriter w(JuteWriter::Framing::kLengthPrefixed);
  h.Write(w);
  for (const MultiReadResult& res : results) {
    if (res.err != tree::Err::kOk || res.type == op::kError) {
      const auto err = static_cast<int32_t>(res.err);
      MultiHeader{op::kError, false, err}.Write(w);
      IntResponse{err}.Write(w);
      continue;
    }
    QFS_CHECK(res.type == op::kGetChildren || res.type == op::kGetData);
    MultiHeader{res.type, false, 0}.Write(w);
    if (res.type == op::kGetChildren) {
      w.WriteStringVector(res.children);
    } else {
      GetDataResponse{res.data, res.stat, res.data_null}.Write(w);
    }
  }
  kMultiEnd.Write(w);
  return std::move(w).Finish();
}

std::string EncodeConnectRequest(const ConnectRequest& c) {
  JuteWriter w(JuteWriter::Framing::kLengthPrefixed);
  w.WriteInt(c.protocol_version);
  w.WriteLong(c.last_zxid_seen);
  w.WriteInt(c.timeout_ms);
  w.WriteLong(c.session_id);
  w.WriteBuffer(c.passwd);
  if (c.has_read_only) w.WriteBool(c.read_only);
  return std::move(w).Finish();
}

std::string EncodeRequest(const ClientRequest& req) {
  JuteWriter w(JuteWriter::Framing::kLengthPrefixed);
  req.header.Write(w);
  if (!req.unimplemented) {
    const int32_t type = req.header.type;
    std::visit(
        [&](const auto& b) {
          using T = std::decay_t<decltype(b)>;
          if constexpr (std::is_same_v<T, std::monostate>) {
            // no body
          } else if constexpr (std::is_same_v<T, CreateRequest>) {
            b.Write(w, type == op::kCreateTtl);
          } else if constexpr (std::is_same_v<T, SetWatchesRequest>) {
            b.Write(w, type == op::kSetWatches2);
          } else if constexpr (std::is_same_v<T, MultiRequest>) {
            for (const MultiOp& o : b.ops) WriteMultiOp(w, o);
            kMultiEnd.Write(w);
          } else {
            b.Write(w);
          }
        },
        req.body);
  }
  return std::move(w).Finish();
}

// ---- Into the state machine. ----

bool IsWriteRequest(int32_t type) {
  switch (type) {
    case op::kCreate:
    case op::kCreate2:
    case op::kCreateContainer:
    case op::kCreateTtl:
    case op::kDelete:
    case op::kSetData:
    case op::kSetAcl:
    case op::kCheck:
    case op::kMulti:
    case op::kCloseSession:
    case op::kReconfig:
      return true;
    default:
      return false;
  }
}

namespace {

bool ValidFlags(int32_t flags) {
  return flags >= static_cast<int32_t>(tree::CreateMode::kPersistent) &&
         flags <= static_cast<int32_t>(tree::CreateMode::kPersistentSequentialWithTtl);
}

tree::Op CreateOp(const CreateRequest& c, tree::CreateMode mode) {
  tree::Op o;
  o.type = tree::OpType::kCreate;
  o.path = c.path;
  o.data = c.data;
  o.data_null = c.data_null;
  o.acl = c.acl;
  o.mode = mode;
  return o;
}

// delete or check.
tree::Op VersionOp(int32_t type, const PathVersionRequest& p) {
  tree::Op o;
  o.type = type == op::kDelete ? tree::OpType::kDelete : tree::OpType::kCheck;
  o.path = p.path;
  o.version = p.version;
  return o;
}

tree::Op SetDataOp(const SetDataRequest& s) {
  tree::Op o;
  o.type = tree::OpType::kSetData;
  o.path = s.path;
  o.data = s.data;
  o.data_null = s.data_null;
  o.version = s.version;
  return o;
}

// A lone create, as PrepRequestProcessor.pRequest2TxnCreate: the flags give the mode and the
// opcode picks the txn. validateTTL runs with ttl -1 except for createTTL.
tree::Err SingleCreate(int32_t type, const CreateRequest& c, tree::Op* out) {
  if (!ValidFlags(c.flags)) return tree::Err::kBadArguments;
  auto mode = static_cast<tree::CreateMode>(c.flags);
  int64_t ttl_ms = 0;
  switch (type) {
    case op::kCreateContainer:
      // CreateContainerTxn: a container whatever the (valid, non-TTL) flags.
      if (tree::IsTtl(mode)) return tree::Err::kBadArguments;
      mode = tree::CreateMode::kContainer;
      break;
    case op::kCreateTtl:
      if (tree::IsTtl(mode)) {
        ttl_ms = c.ttl;  // the tree checks 0 < ttl <= max
      } else if (c.ttl >= 0) {
        return tree::Err::kBadArguments;
      }
      break;
    default:  // create, create2
      if (tree::IsTtl(mode)) return tree::Err::kBadArguments;
      // A CreateTxn is persistent or ephemeral: ZooKeeper turns a container flag sent with
      // create/create2 into a plain persistent node.
      if (mode == tree::CreateMode::kContainer) mode = tree::CreateMode::kPersistent;
      break;
  }
  *out = CreateOp(c, mode);
  out->ttl_ms = ttl_ms;
  return tree::Err::kOk;
}

// One op of a multi, as Op.create and MultiOperationRecord build it: the flags alone decide the
// kind of create (a container flag makes a container whatever the header said), a createTTL's
// ttl is kept only for TTL modes, and the flags are not checked here so that the tree reports an
// unknown one (kBadArguments) at the op's place in the order.
tree::Err MultiOpToTree(const MultiOp& m, tree::Op* out) {
  if (IsCreateOp(m.type)) {
    const auto* c = std::get_if<CreateRequest>(&m.body);
    if (c == nullptr) return tree::Err::kMarshallingError;
    const auto mode = static_cast<tree::CreateMode>(c->flags);
    *out = CreateOp(*c, mode);
    if (tree::IsTtl(mode) && m.type == op::kCreateTtl) out->ttl_ms = c->ttl;
    return tree::Err::kOk;
  }
  if (m.type == op::kDelete || m.type == op::kCheck) {
    const auto* p = std::get_if<PathVersionRequest>(&m.body);
    if (p == nullptr) return tree::Err::kMarshallingError;
    *out = VersionOp(m.type, *p);
    return tree::Err::kOk;
  }
  if (m.type == op::kSetData) {
    const auto* s = std::get_if<SetDataRequest>(&m.body);
    if (s == nullptr) return tree::Err::kMarshallingError;
    *out = SetDataOp(*s);
    return tree::Err::kOk;
  }
  return tree::Err::kMarshallingError;  // read ops never come in a multi
}

tree::Err SingleOpToTree(const ClientRequest& req, tree::Op* out) {
  const int32_t type = req.type();
  if (IsCreateOp(type)) {
    const auto* c = std::get_if<CreateRequest>(&req.body);
    if (c == nullptr) return tree::Err::kMarshallingError;
    return SingleCreate(type, *c, out);
  }
  if (type == op::kDelete || type == op::kCheck) {
    const auto* p = std::get_if<PathVersionRequest>(&req.body);
    if (p == nullptr) return tree::Err::kMarshallingError;
    *out = VersionOp(type, *p);
    return tree::Err::kOk;
  }
  if (type == op::kSetData) {
    const auto* s = std::get_if<SetDataRequest>(&req.body);
    if (s == nullptr) return tree::Err::kMarshallingError;
    *out = SetDataOp(*s);
    return tree::Err::kOk;
  }
  if (type == op::kSetAcl) {
    const auto* s = std::get_if<SetAclRequest>(&req.body);
    if (s == nullptr) return tree::Err::kMarshallingError;
    out->type = tree::OpType::kSetAcl;
    out->path = s->path;
    out->acl = s->acl;
    out->version = s->version;
    return tree::Err::kOk;
  }
  return tree::Err::kUnimplemented;
}

}  // namespace

tree::Err ToTreeRequest(const ClientRequest& req, int64_t session_id,
                        const std::vector<tree::Id>& auth, tree::Request* out) {
  if (req.unimplemented || !IsWriteRequest(req.type())) return tree::Err::kUnimplemented;
  tree::Request r;
  r.session_id = session_id;
  r.cxid = req.xid();
  r.auth = auth;
  if (req.type() == op::kCloseSession) {
    r.type = tree::RequestType::kCloseSession;
  } else if (req.type() == op::kReconfig) {
    const auto* rc = std::get_if<ReconfigRequest>(&req.body);
    if (rc == nullptr) return tree::Err::kMarshallingError;
    r.type = tree::RequestType::kReconfig;
    r.reconfig = {rc->joining_servers, rc->leaving_servers, rc->new_members, rc->cur_config_id};
  } else if (req.type() == op::kMulti) {
    const auto* m = std::get_if<MultiRequest>(&req.body);
    if (m == nullptr) return tree::Err::kMarshallingError;
    r.type = tree::RequestType::kMulti;
    r.ops.reserve(m->ops.size());
    for (const MultiOp& mo : m->ops) {
      if (tree::Err e = MultiOpToTree(mo, &r.ops.emplace_back()); e != tree::Err::kOk) return e;
    }
  } else {
    r.type = tree::RequestType::kOp;
    if (tree::Err e = SingleOpToTree(req, &r.ops.emplace_back()); e != tree::Err::kOk) return e;
  }
  *out = std::move(r);
  return tree::Err::kOk;
}

}  // namespace qfs::zk
