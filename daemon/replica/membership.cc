// The member's configuration and its peer links (docs/reconfig.md): zoo.cfg.dynamic, the
// address book of every server, and the links the transport keeps to the configuration's members.
#include <unistd.h>

#include <set>

#include "consensus/storage/file_util.h"
#include "consensus/util/log.h"
#include "daemon/replica/pipeline_impl.h"

namespace qfs {
namespace replica {

txn::ServerSpec SpecOf(const Config::Server& s) {
  txn::ServerSpec o;
  o.set_id(s.id);
  o.set_observer(s.observer);
  o.set_host(s.host);
  o.set_peer_port(static_cast<uint32_t>(s.peer_port));
  o.set_election_port(static_cast<uint32_t>(s.election_port ? s.election_port : s.peer_port));
  if (s.client_port) {
    o.set_client_host(s.client_host.empty() ? "0.0.0.0" : s.client_host);
    o.set_client_port(static_cast<uint32_t>(s.client_port));
  }
  return o;
}

zab::Membership MembershipOf(const tree::ServerList& l) {
  zab::Membership m;
  for (const auto& s : l) (s.observer() ? m.observers : m.voters).push_back(s.id());
  std::sort(m.voters.begin(), m.voters.end());
  std::sort(m.observers.begin(), m.observers.end());
  return m;
}

std::optional<tree::ServerList> ReconfigServers(const std::string& payload) {
  txn::Txn t;
  if (!t.ParseFromString(payload) || t.op_case() != txn::Txn::kReconfig) return std::nullopt;
  return tree::ServerList(t.reconfig().servers().begin(), t.reconfig().servers().end());
}

Result<tree::ServerList> ParseMembers(const std::string& text) {
  tree::ServerList out;
  size_t pos = 0;
  while (pos < text.size()) {
    size_t nl = text.find('\n', pos);
    if (nl == std::string::npos) nl = text.size();
    std::string line = text.substr(pos, nl - pos);
    pos = nl + 1;
    if (line.empty()) continue;
    size_t eq = line.find('=');
    if (eq == std::string::npos) return InvalidArgument("not a server line: " + line);
    auto sv = tree::ParseServer(line.substr(0, eq), line.substr(eq + 1));
    if (!sv.ok()) {
      uint64_t id = 0;
      if (line.rfind("server.", 0) != 0 || sscanf(line.c_str() + 7, "%" SCNu64, &id) != 1 || !id)
        return sv.status();
      txn::ServerSpec u;
      u.set_id(id);
      u.set_observer(line.size() >= 9 && line.compare(line.size() - 9, 9, ":observer") == 0);
      sv = u;
    }
    out.push_back(std::move(*sv));
  }
  std::sort(out.begin(), out.end(), [](const auto& a, const auto& b) { return a.id() < b.id(); });
  return out;
}

}  // namespace replica

using namespace replica;  // NOLINT: the helpers of pipeline_impl.h
using tree::Err;

tree::ServerList Pipeline::Impl::ServersOf(const zab::Membership& m) const {
  tree::ServerList out;
  auto add = [&](uint64_t id, bool observer) {
    txn::ServerSpec s;
    if (auto it = book.find(id); it != book.end()) {
      s = it->second;
    } else {
      s.set_host("unknown");  // see ParseMembers
    }
    s.set_id(id);
    s.set_observer(observer);
    out.push_back(std::move(s));
  };
  for (uint64_t id : m.voters) add(id, false);
  for (uint64_t id : m.observers) add(id, true);
  std::sort(out.begin(), out.end(), [](const auto& a, const auto& b) { return a.id() < b.id(); });
  return out;
}

// The address to dial for a peer: its line in this member's own file when it has one (a
// member may reach a peer through a proxy, docs/ensemble.md), else the configuration's.
std::optional<transport::PeerAddress> Pipeline::Impl::DialAddress(uint64_t id) const {
  for (const auto& sv : options.config.servers)
    if (sv.id == id) return transport::PeerAddress{id, sv.host, sv.peer_port};
  auto it = book.find(id);
  if (it == book.end()) return std::nullopt;
  return transport::PeerAddress{id, it->second.host(), static_cast<int>(it->second.peer_port())};
}

void Pipeline::Impl::Learn(const tree::ServerList& l) {
  for (const auto& s : l)
    if (!s.host().empty() && s.peer_port() != 0) book[s.id()] = s;
}

// A vote naming configurations (committed, pending) goes out with the addresses this member
// knows of their members (docs/reconfig.md, "A member that missed reconfigs").
void Pipeline::Impl::AttachAddresses(const peer::Vote& v, peer::PeerMessage* m) const {
  std::set<uint64_t> ids;
  for (const peer::Membership* c :
       {v.has_config() ? &v.config() : nullptr, v.has_pending() ? &v.pending() : nullptr}) {
    if (!c) continue;
    ids.insert(c->voters().begin(), c->voters().end());
    ids.insert(c->observers().begin(), c->observers().end());
  }
  for (uint64_t id : ids)
    if (auto it = book.find(id); it != book.end()) m->add_servers(it->second.SerializeAsString());
}

// Addresses from a peer's vote: only of servers this member has no address for (its own
// lines and the reconfig entries it holds stay authoritative). The configuration's members it
// could not dial before are dialed now.
void Pipeline::Impl::LearnAddresses(const peer::PeerMessage& m) {
  bool learnt = false;
  for (const auto& bytes : m.servers()) {
    txn::ServerSpec s;
    if (!s.ParseFromString(bytes) || s.id() == 0 || s.host().empty() || s.host() == "unknown" ||
        s.peer_port() == 0 || s.peer_port() > 65535 || book.count(s.id()))
      continue;
    QLOG_INFO("learnt the address of member %llu from a peer's vote: %s:%u",
              static_cast<unsigned long long>(s.id()), s.host().c_str(), s.peer_port());
    book[s.id()] = s;
    learnt = true;
  }
  if (learnt) LinkPeers(core->config());
}

// The members' addresses of the newest configuration applied to the tree (a snapshot holds
// the reconfig txns below it only as /zookeeper/config's text).
void Pipeline::Impl::LearnFromTree() {
  std::string text;
  tree::Stat st;
  if (p->store_->tree().GetData("/zookeeper/config", &text, &st) != Err::kOk || st.mzxid == 0)
    return;
  if (auto l = tree::ParseServers(text); l.ok()) Learn(*l);
}

bool Pipeline::Impl::SetClientAddress(const zab::ConfigState& cs) {
  if (cs.previous || cs.current_zxid == 0) return false;  // pending, or zoo.cfg's own
  auto it = book.find(self);
  if (it == book.end() || it->second.client_port() == 0) return false;
  std::string host = it->second.client_host().empty() ? "0.0.0.0" : it->second.client_host();
  int port = static_cast<int>(it->second.client_port());
  // Only a reconfig that changed this member's address moves it: a line that merely repeats
  // zoo.cfg's (whose `;port` without a host reads as 0.0.0.0) leaves clientPortAddress alone.
  if (std::make_pair(host, port) == committed_client) return false;
  committed_client = {host, port};
  if (host == member.client_host && port == member.client_port) return false;
  member.client_host = host;
  member.client_port = port;
  return true;
}

// dataDir/zoo.cfg.dynamic (docs/reconfig.md): the configuration state last persisted, in
// ZooKeeper's text: the current configuration's server lines and `version=`, then, while its
// reconfig entry is not known committed, the previous one's with a `previous.` prefix.
Status Pipeline::Impl::LoadDynamic() {
  const std::string path = store_options.data_dir + "/" + kDynamicFile;
  if (access(path.c_str(), F_OK) != 0) return Status::Ok();
  auto text = storage::ReadFile(path);
  if (!text.ok()) return text.status();
  std::string cur, prev;
  uint64_t cur_v = 0, prev_v = 0;
  bool has_prev = false;
  size_t pos = 0;
  while (pos < text->size()) {
    size_t nl = text->find('\n', pos);
    if (nl == std::string::npos) nl = text->size();
    std::string line = text->substr(pos, nl - pos);
    pos = nl + 1;
    if (line.empty() || line[0] == '#') continue;
    bool is_prev = line.rfind("previous.", 0) == 0;
    if (is_prev) {
      line = line.substr(9);
      has_prev = true;
    }
    if (line.rfind("version=", 0) == 0) {
      char* end = nullptr;
      uint64_t v = strtoull(line.c_str() + 8, &end, 16);
      if (end == line.c_str() + 8 || *end != '\0')
        return Corruption(path + ": bad version line: " + line);
      (is_prev ? prev_v : cur_v) = v;
      continue;
    }
    (is_prev ? prev : cur) += line + "\n";
  }
  auto cs = ParseMembers(cur);
  if (!cs.ok()) return Corruption(path + ": " + cs.status().message());
  Learn(*cs);
  config_state.current = MembershipOf(*cs);
  config_state.current_zxid = cur_v;
  if (has_prev) {
    auto ps = ParseMembers(prev);
    if (!ps.ok()) return Corruption(path + ": " + ps.status().message());
    Learn(*ps);
    config_state.previous = MembershipOf(*ps);
    config_state.previous_zxid = prev_v;
  }
  if (!config_state.current.Valid() || (config_state.previous && !config_state.previous->Valid()))
    return Corruption(path + ": not a valid configuration");
  have_dynamic = true;
  QLOG_INFO("configuration version %s from %s (%zu voters, %zu observers)%s", Hex(cur_v).c_str(),
            path.c_str(), config_state.current.voters.size(), config_state.current.observers.size(),
            has_prev ? "; its reconfig entry not known committed yet" : "");
  return Status::Ok();
}

// Ready.config: synchronously and atomically (write, fsync, rename, fsync the directory).
void Pipeline::Impl::PersistConfig(const zab::ConfigState& cs) {
  std::string text =
      "# This member's configuration state, written by quorumfsd (docs/reconfig.md).\n" +
      tree::ConfigText(ServersOf(cs.current), cs.current_zxid) + "\n";
  if (cs.previous) {
    std::string prev = tree::ConfigText(ServersOf(*cs.previous), cs.previous_zxid);
    size_t pos = 0;
    while (pos < prev.size()) {
      size_t nl = prev.find('\n', pos);
      if (nl == std::string::npos) nl = prev.size();
      text += "previous." + prev.substr(pos, nl - pos) + "\n";
      pos = nl + 1;
    }
  }
  Status st = storage::WriteFileAtomic(store_options.data_dir, kDynamicFile, text);
  if (!st.ok()) QFS_FATAL("persisting the configuration: %s", st.ToString().c_str());
  config_state = cs;
  have_dynamic = true;
  QLOG_INFO("configuration version %s: voters %zu, observers %zu%s", Hex(cs.current_zxid).c_str(),
            cs.current.voters.size(), cs.current.observers.size(),
            cs.previous ? " (pending: the previous one counts too)" : " (committed)");
  MemberStatus now;
  bool moved = false;
  {
    std::lock_guard<std::mutex> l(mu);
    member.voters = cs.current.voters.size();
    member.observers = cs.current.observers.size();
    moved = SetClientAddress(cs);
    now = member;
  }
  if (moved) {
    QLOG_INFO("the committed configuration gives this member the client address %s:%d",
              now.client_host.c_str(), now.client_port);
    NotifyRole(now);
  }
}

// The transport follows the configuration: links to its members (with their addresses from the
// book, which may have changed), and members it dropped are unlinked after kUnlinkDelay.
void Pipeline::Impl::LinkPeers(const zab::ConfigState& cs) {
  if (!net) return;
  std::set<uint64_t> want;
  for (const zab::Membership* m : {&cs.current, cs.previous ? &*cs.previous : nullptr}) {
    if (!m) continue;
    for (const auto* v : {&m->voters, &m->observers}) want.insert(v->begin(), v->end());
  }
  want.erase(self);
  linked = want;
  for (uint64_t id : want) {
    unlink_at.erase(id);
    const bool was_guest = guests.erase(id) > 0;  // a member now
    auto a = DialAddress(id);
    if (!a) {
      QLOG_WARN("member %llu of the configuration has no known address",
                static_cast<unsigned long long>(id));
      continue;
    }
    // A guest's link stays when the configuration gives the address it gave. Moved (say, a
    // name instead of its IP), the old connections end without an OnDisconnected: the core must
    // still learn that its session with the guest (a learner, maybe) is over.
    if (net->AddPeer(*a) && was_guest) OnDisconnected(id);
  }
  // Guests stay until they fall silent (UnlinkDue).
  for (uint64_t id : net->peers())
    if (!want.count(id) && !unlink_at.count(id) && !guests.count(id))
      unlink_at[id] = Clock::now() + kUnlinkDelay;
}

// A server outside the configuration dialed this member and proved the secret: the transport
// made it a peer (a guest), so it can look for the leader and sync as a non-voting learner
// before a reconfig names it (docs/reconfig.md, "Joining servers").
void Pipeline::Impl::GuestAccepted(uint64_t id) {
  if (linked.count(id)) return;  // a member by now
  unlink_at.erase(id);
  guests[id] = Clock::now();
}

void Pipeline::Impl::UnlinkDue() {
  if ((unlink_at.empty() && guests.empty()) || !net) return;
  auto now = Clock::now();
  for (auto it = guests.begin(); it != guests.end();) {
    if (now - it->second < kGuestSilence) {
      ++it;
      continue;
    }
    QLOG_INFO("guest %llu (not in the configuration) silent for %lld s: unlinked",
              static_cast<unsigned long long>(it->first),
              static_cast<long long>(
                  std::chrono::duration_cast<std::chrono::seconds>(kGuestSilence).count()));
    AbortTransfer(it->first);
    net->RemovePeer(it->first);
    it = guests.erase(it);
  }
  for (auto it = unlink_at.begin(); it != unlink_at.end();) {
    if (it->second > now) {
      ++it;
      continue;
    }
    AbortTransfer(it->first);
    net->RemovePeer(it->first);
    it = unlink_at.erase(it);
  }
}

}  // namespace qfs
