#include "daemon/replica/request_proto.h"

#include "daemon/proto/member.pb.h"

namespace qfs {

void ToProto(const tree::Request& r, member::Request* p) {
  p->set_type(static_cast<uint32_t>(r.type));
  p->set_session_id(r.session_id);
  p->set_cxid(r.cxid);
  p->set_session_timeout_ms(r.session_timeout_ms);
  for (const auto& id : r.auth) {
    auto* a = p->add_auth();
    a->set_scheme(id.scheme);
    a->set_id(id.id);
  }
  for (const auto& op : r.ops) {
    auto* o = p->add_ops();
    o->set_type(static_cast<uint32_t>(op.type));
    o->set_path(op.path);
    o->set_data(op.data);
    for (const auto& acl : op.acl) {
      auto* a = o->add_acl();
      a->set_perms(acl.perms);
      a->set_scheme(acl.id.scheme);
      a->set_id(acl.id.id);
    }
    o->set_mode(static_cast<int32_t>(op.mode));
    o->set_ttl_ms(op.ttl_ms);
    o->set_version(op.version);
    o->set_kind(static_cast<uint32_t>(op.kind));
    o->set_data_null(op.data_null);
  }
  if (r.type == tree::RequestType::kReconfig) {
    auto* rc = p->mutable_reconfig();
    if (r.reconfig.joining) rc->set_joining(*r.reconfig.joining);
    if (r.reconfig.leaving) rc->set_leaving(*r.reconfig.leaving);
    if (r.reconfig.new_members) rc->set_new_members(*r.reconfig.new_members);
    rc->set_from_config(r.reconfig.from_config);
  }
}

bool FromProto(const member::Request& p, tree::Request* r) {
  *r = tree::Request{};
  if (p.type() > static_cast<uint32_t>(tree::RequestType::kReconfig)) return false;
  r->type = static_cast<tree::RequestType>(p.type());
  r->session_id = p.session_id();
  r->cxid = p.cxid();
  r->session_timeout_ms = p.session_timeout_ms();
  for (const auto& a : p.auth()) r->auth.push_back({a.scheme(), a.id()});
  for (const auto& o : p.ops()) {
    if (o.type() > static_cast<uint32_t>(tree::OpType::kAppend) || o.kind() > 2) return false;
    tree::Op op;
    op.type = static_cast<tree::OpType>(o.type());
    op.path = o.path();
    op.data = o.data();
    for (const auto& a : o.acl()) op.acl.push_back({a.perms(), {a.scheme(), a.id()}});
    op.mode = static_cast<tree::CreateMode>(o.mode());
    op.ttl_ms = o.ttl_ms();
    op.version = o.version();
    op.kind = static_cast<tree::Kind>(o.kind());
    op.data_null = o.data_null();
    r->ops.push_back(std::move(op));
  }
  if (r->type == tree::RequestType::kReconfig) {
    const auto& rc = p.reconfig();
    if (rc.has_joining()) r->reconfig.joining = rc.joining();
    if (rc.has_leaving()) r->reconfig.leaving = rc.leaving();
    if (rc.has_new_members()) r->reconfig.new_members = rc.new_members();
    r->reconfig.from_config = rc.from_config();
  }
  return true;
}

}  // namespace qfs
