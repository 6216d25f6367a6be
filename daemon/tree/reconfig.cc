#include "daemon/tree/reconfig.h"

#include <algorithm>
#include <charconv>
#include <cinttypes>
#include <cstdio>

namespace qfs::tree {
namespace {

std::string_view Trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t' || s.front() == '\r')) {
    s.remove_prefix(1);
  }
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r')) {
    s.remove_suffix(1);
  }
  return s;
}

template <typename T>
bool ParseNum(std::string_view s, T* out) {
  s = Trim(s);
  if (s.empty()) return false;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), *out);
  return ec == std::errc() && p == s.data() + s.size();
}

bool ParsePort(std::string_view s, uint32_t* out) {
  return ParseNum(s, out) && *out > 0 && *out < 65536;
}

std::vector<std::string_view> Split(std::string_view s, char sep) {
  std::vector<std::string_view> out;
  size_t start = 0;
  for (;;) {
    size_t i = s.find(sep, start);
    out.push_back(
        s.substr(start, i == std::string_view::npos ? std::string_view::npos : i - start));
    if (i == std::string_view::npos) return out;
    start = i + 1;
  }
}

void Sort(ServerList* v) {
  std::sort(v->begin(), v->end(),
            [](const txn::ServerSpec& a, const txn::ServerSpec& b) { return a.id() < b.id(); });
}

}  // namespace

Result<txn::ServerSpec> ParseServer(std::string_view key, std::string_view value) {
  key = Trim(key);
  value = Trim(value);
  const std::string what = std::string(key) + "=" + std::string(value);
  txn::ServerSpec s;
  uint64_t id = 0;
  if (key.substr(0, 7) != "server." || !ParseNum(key.substr(7), &id) || id == 0) {
    return InvalidArgument("not a server line (server.N with N > 0): " + what);
  }
  s.set_id(id);
  std::string_view addr = value, client;
  if (size_t semi = value.find(';'); semi != std::string_view::npos) {
    addr = value.substr(0, semi);
    client = value.substr(semi + 1);
  }
  std::vector<std::string_view> parts = Split(addr, ':');
  if (parts.size() < 3 || parts.size() > 4 || Trim(parts[0]).empty()) {
    return InvalidArgument("expected host:peerPort:electionPort[:role]: " + what);
  }
  uint32_t port = 0;
  s.set_host(std::string(Trim(parts[0])));
  if (!ParsePort(parts[1], &port)) return InvalidArgument("bad peer port: " + what);
  s.set_peer_port(port);
  if (!ParsePort(parts[2], &port)) return InvalidArgument("bad election port: " + what);
  s.set_election_port(port);
  if (parts.size() == 4) {
    std::string_view role = Trim(parts[3]);
    if (role == "observer") {
      s.set_observer(true);
    } else if (role != "participant") {
      return InvalidArgument("the role must be participant or observer: " + what);
    }
  }
  if (!client.empty()) {
    std::vector<std::string_view> c = Split(client, ':');
    if (c.size() == 1) {
      s.set_client_host("0.0.0.0");
    } else if (c.size() == 2 && !Trim(c[0]).empty()) {
      s.set_client_host(std::string(Trim(c[0])));
    } else {
      return InvalidArgument("expected [clientHost:]clientPort after ';': " + what);
    }
    if (!ParsePort(c.back(), &port)) return InvalidArgument("bad client port: " + what);
    s.set_client_port(port);
  }
  return s;
}

Result<ServerList> ParseServers(std::string_view text) {
  ServerList out;
  std::string flat(text);
  std::replace(flat.begin(), flat.end(), ',', '\n');
  for (std::string_view line : Split(flat, '\n')) {
    line = Trim(line);
    if (line.empty() || line.substr(0, 8) == "version=") continue;
    size_t eq = line.find('=');
    if (eq == std::string_view::npos)
      return InvalidArgument("not a server line: " + std::string(line));
    auto s = ParseServer(line.substr(0, eq), line.substr(eq + 1));
    if (!s.ok()) return s.status();
    for (const auto& o : out) {
      if (o.id() == s->id()) {
        return InvalidArgument("server." + std::to_string(o.id()) + " is given twice");
      }
    }
    out.push_back(std::move(*s));
  }
  Sort(&out);
  return out;
}

std::string ServerText(const txn::ServerSpec& s) {
  std::string t = s.host() + ":" + std::to_string(s.peer_port()) + ":" +
                  std::to_string(s.election_port()) + (s.observer() ? ":observer" : ":participant");
  if (s.client_port() != 0) {
    t += ";" + (s.client_host().empty() ? std::string("0.0.0.0") : s.client_host()) + ":" +
         std::to_string(s.client_port());
  }
  return t;
}

std::string ConfigText(const ServerList& servers, uint64_t version) {
  std::string t;
  for (const auto& s : servers)
    t += "server." + std::to_string(s.id()) + "=" + ServerText(s) + "\n";
  char v[32];
  std::snprintf(v, sizeof v, "version=%" PRIx64, version);
  return t + v;
}

Result<ServerList> ApplyIncremental(const ServerList& current, const std::string* joining,
                                    const std::string* leaving) {
  ServerList next = current;
  if (leaving != nullptr) {
    for (std::string_view id_text : Split(*leaving, ',')) {
      if (Trim(id_text).empty()) continue;
      uint64_t id = 0;
      if (!ParseNum(id_text, &id)) {
        return InvalidArgument("not a server id: " + std::string(id_text));
      }
      std::erase_if(next, [id](const txn::ServerSpec& s) { return s.id() == id; });
    }
  }
  if (joining != nullptr) {
    for (std::string_view line : Split(*joining, ',')) {
      line = Trim(line);
      if (line.empty()) continue;
      size_t eq = line.find('=');
      if (eq == std::string_view::npos) {
        return InvalidArgument("wrong format of server string: " + std::string(line));
      }
      auto s = ParseServer(line.substr(0, eq), line.substr(eq + 1));
      if (!s.ok()) return s.status();
      if (s->client_port() == 0) {
        return InvalidArgument("each joining server needs a client address (;[host:]port): " +
                               std::string(line));
      }
      for (const auto& o : next) {
        if (o.id() == s->id() || o.host() != s->host()) continue;
        if (o.peer_port() == s->peer_port() || o.election_port() == s->election_port() ||
            o.peer_port() == s->election_port() || o.election_port() == s->peer_port()) {
          return InvalidArgument("server." + std::to_string(s->id()) +
                                 " uses an address of server." + std::to_string(o.id()));
        }
      }
      std::erase_if(next, [&](const txn::ServerSpec& o) { return o.id() == s->id(); });
      next.push_back(std::move(*s));
    }
  }
  Sort(&next);
  return next;
}

size_t VoterCount(const ServerList& servers) {
  return static_cast<size_t>(std::count_if(servers.begin(), servers.end(),
                                           [](const txn::ServerSpec& s) { return !s.observer(); }));
}

}  // namespace qfs::tree
