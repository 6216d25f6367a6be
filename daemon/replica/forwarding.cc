// Client writes and syncs on their way to the leader and back (docs/ensemble.md): a leader
// prepares and proposes them; a learner forwards them and answers once it has applied the txn;
// refusals wait for the commit they were decided against ("Refusals"); read-only mode.
#include "consensus/util/log.h"
#include "daemon/replica/pipeline_impl.h"
#include "daemon/replica/request_proto.h"

namespace qfs {

using namespace replica;  // NOLINT: the helpers of pipeline_impl.h
using tree::Err;

void Pipeline::Impl::HandleIncoming(Incoming&& in) {
  if (member.read_only) {
    // ZooKeeper's ReadOnlyRequestProcessor: writes and syncs fail at once (docs/read-only.md).
    Fail(NewPending(std::move(in.done)), Err::kNotReadOnly);
    return;
  }
  if (!member.serving) {
    Waiting w;
    w.in = std::move(in);
    w.deadline = Clock::now() + std::chrono::milliseconds(options.config.write_wait());
    waiting.push_back(std::move(w));
    return;
  }
  uint64_t tag = NewPending(std::move(in.done));
  if (in.sync) {
    core->Sync(tag, in.sync == 2);
    return;
  }
  if (member.role == zab::Role::kLeading) {
    ProposeRequest(in.req, self, tag);
    return;
  }
  member::AppMessage m;
  m.mutable_forward()->set_tag(tag);
  if (!in.packet.empty() && client_decoder) {
    // The client's bytes as it sent them: no re-encoding here, one decoding at the leader.
    auto* cp = m.mutable_forward()->mutable_client();
    cp->set_packet(std::move(in.packet));
    cp->set_session_id(in.req.session_id);
    for (const auto& id : in.req.auth) {
      auto* a = cp->add_auth();
      a->set_scheme(id.scheme);
      a->set_id(id.id);
    }
  } else {
    ToProto(in.req, m.mutable_forward()->mutable_request());
  }
  SendApp(member.leader, m);
  std::lock_guard<std::mutex> l(mu);
  stats.forwarded++;
}

void Pipeline::Impl::ExpireWaiting(bool all) {
  auto now = Clock::now();
  while (!waiting.empty() && (all || waiting.front().deadline <= now)) {
    uint64_t tag = NewPending(std::move(waiting.front().in.done));
    waiting.pop_front();
    Fail(tag, Err::kConnectionLoss);
    if (!all)
      QLOG_WARN("a write waited %d ms for a leader; answering connection loss",
                options.config.write_wait());
  }
}

// readonlymode.enabled: a member that has looked for a leader for the grace period turns
// read-only; RoleChanged turns it back as soon as it finds one (docs/read-only.md).
void Pipeline::Impl::CheckReadOnly() {
  const Config& c = options.config;
  if (!c.read_only_mode || !c.ensemble() || member.read_only || member.role != zab::Role::kLooking)
    return;
  if (Clock::now() - looking_since < std::chrono::milliseconds(c.read_only_grace_ms())) return;
  MemberStatus now;
  {
    std::lock_guard<std::mutex> l(mu);
    member.read_only = true;
    now = member;
  }
  QLOG_WARN(
      "read-only mode: no leader for %d ms; serving read-only clients from this member's "
      "tree at zxid %s, refusing writes",
      c.read_only_grace_ms(), Hex(p->store_->tree().last_zxid()).c_str());
  // Writes that were waiting for a leader are refused now, as every later one.
  while (!waiting.empty()) {
    uint64_t tag = NewPending(std::move(waiting.front().in.done));
    waiting.pop_front();
    Fail(tag, Err::kNotReadOnly);
  }
  NotifyRole(now);
}

void Pipeline::Impl::Refuse(uint64_t origin, uint64_t tag, Err err,
                            std::vector<tree::OpResult> results, uint64_t after) {
  const uint64_t applied = static_cast<uint64_t>(p->store_->tree().last_zxid());
  if (applied < after) {
    refusals.emplace(after, Refusal{origin, tag, err, std::move(results)});
    return;
  }
  if (origin == self) return Fail(tag, err, std::move(results));
  member::AppMessage m;
  auto* r = m.mutable_forward_reply();
  r->set_tag(tag);
  r->set_err(static_cast<int32_t>(err));
  r->set_zxid(applied);
  for (const auto& res : results) {
    auto* o = r->add_results();
    o->set_err(static_cast<int32_t>(res.err));
    o->set_type(static_cast<uint32_t>(res.type));
  }
  SendApp(origin, m);
}

void Pipeline::Impl::ProposeRequest(const tree::Request& req, uint64_t origin, uint64_t tag) {
  auto reject = [&](Err err, std::vector<tree::OpResult> results) {
    // Not proposed (kConnectionLoss) depends on no txn; a refusal on every one proposed so far.
    Refuse(origin, tag, err, std::move(results),
           err == Err::kConnectionLoss ? 0 : core->last_logged());
  };
  auto zxid = core->NextZxid();
  if (!zxid) return reject(Err::kConnectionLoss, {});
  if (req.type == tree::RequestType::kReconfig)
    return ProposeReconfig(req, origin, tag, *zxid, reject);
  tree::Prepared prep = preparer->Prepare(req, static_cast<int64_t>(*zxid), WallMs());
  if (prep.err == Err::kQuotaExceeded) CountQuotaExceeded(req, prep);
  if (prep.err != Err::kOk) return reject(prep.err, std::move(prep.multi_results));
  std::string payload;
  QFS_CHECK(prep.txn->SerializeToString(&payload));
  auto err = core->Propose(std::move(payload), origin, tag);
  // NextZxid said this leader can propose, and nothing ran in between.
  QFS_CHECK(!err);
  own_txns.emplace_back(*zxid, std::move(*prep.txn));
}

// A reconfig request (docs/reconfig.md): prepared against the leader's newest configuration, with
// the core's CheckReconfig as the quorum check, then proposed as a reconfig entry.
template <typename Reject>
void Pipeline::Impl::ProposeReconfig(const tree::Request& req, uint64_t origin, uint64_t tag,
                                     uint64_t zxid, Reject& reject) {
  const Config& c = options.config;
  tree::ReconfigContext rc;
  rc.enabled = c.reconfig_enabled;
  rc.standalone = !c.ensemble();
  const zab::ConfigState& cs = core->config();
  rc.current = ServersOf(cs.current);
  rc.version = cs.current_zxid;
  rc.in_progress = cs.previous.has_value();
  rc.check_quorum = [this](const tree::ServerList& next) {
    auto e = core->CheckReconfig(MembershipOf(next));
    if (!e) return Err::kOk;
    if (*e == zab::ProposeError::kReconfigInProgress) return Err::kReconfigInProgress;
    if (*e == zab::ProposeError::kNewConfigNoQuorum) return Err::kNewConfigNoQuorum;
    return Err::kConnectionLoss;
  };
  tree::Prepared prep = preparer->Prepare(req, static_cast<int64_t>(zxid), WallMs(), &rc);
  if (prep.err != Err::kOk) {
    QLOG_INFO("reconfig refused: %s", tree::ErrName(prep.err));
    return reject(prep.err, {});
  }
  const txn::ReconfigTxn& t = prep.txn->reconfig();
  tree::ServerList next(t.servers().begin(), t.servers().end());
  Learn(next);
  std::string payload;
  QFS_CHECK(prep.txn->SerializeToString(&payload));
  QLOG_INFO("proposing configuration version %s:\n%s", Hex(zxid).c_str(), t.node().data().c_str());
  auto err = core->ProposeReconfig(std::move(payload), MembershipOf(next), origin, tag);
  // CheckReconfig passed just now, and nothing ran in between.
  QFS_CHECK(!err);
  own_txns.emplace_back(zxid, std::move(*prep.txn));
}

// ZooKeeper's quota_exceeded_error_per_namespace: by the refused op's top-level path component.
void Pipeline::Impl::CountQuotaExceeded(const tree::Request& req, const tree::Prepared& prep) {
  size_t i = 0;
  while (i < prep.multi_results.size() && prep.multi_results[i].err != Err::kQuotaExceeded) i++;
  if (i >= req.ops.size()) return;
  std::string_view path = req.ops[i].path;
  path.remove_prefix(1);
  std::string ns(path.substr(0, path.find('/')));
  std::lock_guard<std::mutex> l(mu);
  stats.quota_exceeded[ns]++;
}

void Pipeline::Impl::HandleApp(uint64_t from, const std::string& bytes) {
  member::AppMessage m;
  if (!m.ParseFromString(bytes)) {
    QLOG_WARN("member %llu sent a malformed app message", static_cast<unsigned long long>(from));
    return;
  }
  switch (m.body_case()) {
    case member::AppMessage::kForward: {
      tree::Request req;
      if (m.forward().has_client()) {
        const auto& cp = m.forward().client();
        std::vector<tree::Id> auth;
        for (const auto& a : cp.auth()) auth.push_back({a.scheme(), a.id()});
        if (!client_decoder || !client_decoder(cp.packet(), cp.session_id(), auth, &req)) {
          // The learner decoded the same bytes with the same code before forwarding them.
          QLOG_WARN("member %llu forwarded a client packet this member cannot decode",
                    static_cast<unsigned long long>(from));
          member::AppMessage r;
          r.mutable_forward_reply()->set_tag(m.forward().tag());
          r.mutable_forward_reply()->set_err(static_cast<int32_t>(Err::kMarshallingError));
          SendApp(from, r);
          return;
        }
      } else if (!FromProto(m.forward().request(), &req)) {
        QLOG_WARN("member %llu forwarded a malformed request",
                  static_cast<unsigned long long>(from));
        return;
      }
      if (member.role != zab::Role::kLeading || !member.serving) {
        member::AppMessage r;
        r.mutable_forward_reply()->set_tag(m.forward().tag());
        r.mutable_forward_reply()->set_err(static_cast<int32_t>(Err::kConnectionLoss));
        SendApp(from, r);
        return;
      }
      ProposeRequest(req, from, m.forward().tag());
      break;
    }
    case member::AppMessage::kForwardReply: {
      const auto& r = m.forward_reply();
      std::vector<tree::OpResult> results;
      for (const auto& o : r.results()) {
        tree::OpResult res;
        res.err = static_cast<Err>(o.err());
        res.type = static_cast<tree::OpType>(o.type());
        results.push_back(res);
      }
      Refuse(self, r.tag(), static_cast<Err>(r.err()), std::move(results), r.zxid());
      break;
    }
    case member::AppMessage::kTouch: {
      if (!touch_handler) return;
      SessionTouches t;
      const auto& tm = m.touch();
      for (int i = 0; i < tm.session_ids_size() && i < tm.timeouts_ms_size(); i++)
        t.emplace_back(tm.session_ids(i), tm.timeouts_ms(i));
      touch_handler(t);
      break;
    }
    default:
      break;
  }
}

void Pipeline::Impl::SendApp(uint64_t to, const member::AppMessage& m) {
  peer::PeerMessage pm;
  QFS_CHECK(m.SerializeToString(pm.mutable_app()));
  Send(to, std::move(pm));
}

}  // namespace qfs
