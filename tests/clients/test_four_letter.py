#!/usr/bin/python3
"""envi, srvr, stat, conf and mntr as ZooKeeper 3.8's tools and clients read them, on a 3-member
Apache ZooKeeper 3.8 ensemble (the control) and a 3-member quorumfsd ensemble.

    /usr/bin/python3 tests/clients/test_four_letter.py --quorumfsd PATH [--kinds zk,quorumfsd]
                                                       [--dump DIR]

On each ensemble: a client on a follower makes nodes, ephemerals and watches; then every member's
answers are checked for the keys (and their order where ZooKeeper has one) and the value formats
that tools parse, and for values that must be true (Node count and zk_znode_count are the node
count, Mode and zk_server_state name the one leader, the leader counts its synced followers...);
kazoo's server_version() must give a version tuple. With both kinds, every key ZooKeeper prints
(bar the few listed in SKIP) must be printed by quorumfsd too, with a value of the same shape.
docs/four-letter-words.md describes the formats. Prints a side-by-side table of the leaders'
answers. Exit status 0 iff every check passed. Members are stopped by PID (and die with this
process); the whole run is bounded by an alarm.
"""

import argparse
import os
import re
import signal
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "ensemble"))

import ensemble as E  # noqa: E402
from kazoo.client import KazooClient  # noqa: E402

WORDS = ("envi", "srvr", "stat", "conf", "mntr")
MEMBERS = 3
TIME_LIMIT_S = 280

# Keys tools and clients read, each with the shape of its value.
INT, FLOAT, HEX, TEXT, MB = r"^-?\d+$", r"^-?\d+\.\d+$", r"^0x[0-9a-f]+$", r"^.+$", r"^\d+MB$"
VERSION = r"^\d+\.\d+\.\d+(-\S+)?, built on .+$"
ENVI_KEYS = {"zookeeper.version": VERSION, "host.name": TEXT, "os.name": TEXT, "os.arch": TEXT,
             "os.version": TEXT, "user.name": TEXT, "user.home": TEXT, "user.dir": TEXT,
             "os.memory.free": MB, "os.memory.max": MB, "os.memory.total": MB}
SRVR_KEYS = [("Zookeeper version", VERSION), ("Latency min/avg/max", r"^\d+/\d+\.\d+/\d+$"),
             ("Received", INT), ("Sent", INT), ("Connections", INT), ("Outstanding", INT),
             ("Zxid", HEX), ("Mode", r"^(leader|follower|observer|standalone)$"),
             ("Node count", INT)]
CLIENT_LINE = r"^ /[0-9.]+:\d+\[[01]\]\(queued=\d+,recved=\d+,sent=\d+\)$"
CONF_KEYS = {"clientPort": INT, "secureClientPort": INT, "dataDir": TEXT, "dataDirSize": INT,
             "dataLogDir": TEXT, "dataLogSize": INT, "tickTime": INT, "maxClientCnxns": INT,
             "minSessionTimeout": INT, "maxSessionTimeout": INT,
             "clientPortListenBacklog": INT, "serverId": INT, "initLimit": INT,
             "syncLimit": INT, "electionAlg": INT, "electionPort": INT, "quorumPort": INT,
             "peerType": INT}
SERVER_LINE = r"^server\.(\d+)=([0-9.]+):(\d+):(\d+):(participant|observer);([0-9.]+):(\d+)$"
MNTR_KEYS = {"zk_version": VERSION, "zk_server_state": r"^(leader|follower|observer)$",
             "zk_peer_state": r"^(leading|following|observing) - broadcast$",
             "zk_znode_count": INT, "zk_watch_count": INT, "zk_ephemerals_count": INT,
             "zk_approximate_data_size": INT, "zk_open_file_descriptor_count": INT,
             "zk_max_file_descriptor_count": INT, "zk_avg_latency": FLOAT,
             "zk_min_latency": INT, "zk_max_latency": INT, "zk_packets_received": INT,
             "zk_packets_sent": INT, "zk_num_alive_connections": INT,
             "zk_outstanding_requests": INT, "zk_global_sessions": INT,
             "zk_local_sessions": INT, "zk_uptime": INT, "zk_quorum_size": INT}
MNTR_LEADER_KEYS = {"zk_learners": INT, "zk_synced_followers": INT,
                    "zk_synced_non_voting_followers": INT, "zk_synced_observers": INT,
                    "zk_pending_syncs": INT}
# What ZooKeeper prints and quorumfsd need not: the JVM's own facts, and srvr's proposal sizes
# (docs/four-letter-words.md).
SKIP = {"envi": re.compile(r"^java\."), "srvr": re.compile(r"^Proposal sizes"),
        "stat": re.compile(r"^Proposal sizes")}

EPHEMERALS = 2
WATCHES = 3  # on the follower the client uses: two data watches, one child watch


class Checks:
    def __init__(self):
        self.failures = []
        self.passed = 0

    def check(self, ok, what):
        if ok:
            self.passed += 1
        else:
            self.failures.append(what)
            print("FAIL " + what, flush=True)
        return ok


def parse_lines(text, sep):
    """[(key, value)] of `key<sep>value` lines, in order."""
    out = []
    for line in text.splitlines():
        if sep in line:
            k, v = line.split(sep, 1)
            out.append((k.strip() if sep != "\t" else k, v.strip()))
    return out


def shape(v):
    for name, rx in (("int", INT), ("float", FLOAT), ("hex", HEX), ("MB", MB)):
        if re.match(rx, v):
            return name
    return "text"


def count_nodes(zk, path="/"):
    n = 1
    for c in zk.get_children(path):
        n += count_nodes(zk, (path.rstrip("/") + "/" + c))
    return n


def client(ens, i):
    zk = KazooClient(hosts="127.0.0.1:%d" % ens.m(i)["client_port"], timeout=10.0)
    zk.start(timeout=30)
    return zk


def run_kind(kind, quorumfsd, chk):
    """Starts a MEMBERS-member ensemble of `kind`, drives it, checks every member's answers.
    Returns {member: {word: text}} and some facts for the comparison."""
    tag = "[%s]" % kind
    root = tempfile.mkdtemp(prefix="qfs-4lw-%s-" % kind)
    ens = E.Ensemble.create(os.path.join(root, "ens"), n=MEMBERS, kind=kind, quorumfsd=quorumfsd,
                            tick_ms=500, attached=True)
    clients = []
    try:
        ens.start(timeout=120)
        ens.touch()
        leader = ens.wait_healthy(60)
        follower = [i for i in ens.ids() if i != leader][0]
        zk = client(ens, follower)
        clients.append(zk)
        zk.ensure_path("/fl")
        for c in "abcde":
            zk.create("/fl/" + c, c.encode())
        for e in range(EPHEMERALS):
            zk.create("/fl/eph%d" % e, b"", ephemeral=True)
        zk.get("/fl/a", watch=lambda ev: None)
        zk.get("/fl/b", watch=lambda ev: None)
        zk.get_children("/fl", watch=lambda ev: None)
        try:
            version = zk.server_version()
        except Exception as e:  # kazoo raises when envi has no version it can parse
            version = "%s: %s" % (type(e).__name__, e)
        print("%s kazoo server_version() = %r" % (tag, version), flush=True)
        chk.check(isinstance(version, tuple) and len(version) >= 3 and
                  all(isinstance(d, int) for d in version),
                  "%s server_version() gave %r, not a tuple of ints" % (tag, version))
        # Every member catches up with the writes (sync), and its node count is read from it.
        nodes = {}
        for i in ens.ids():
            zi = zk if i == follower else client(ens, i)
            if zi is not zk:
                clients.append(zi)
            zi.sync("/")
            nodes[i] = count_nodes(zi)
        out = {i: {w: E.four_letter(ens.m(i)["client_port"], w, timeout=5.0) or ""
                   for w in WORDS} for i in ens.ids()}
        modes = {}
        for i in ens.ids():
            role = "leader" if i == leader else "follower"
            check_member(chk, "%s m%d (%s)" % (tag, i, role), kind, ens, i, out[i], role,
                         nodes[i], watches=WATCHES if i == follower else None)
            modes[i] = dict(parse_lines(out[i]["srvr"], ":")).get("Mode")
        chk.check(sorted(modes.values()) == ["follower"] * (MEMBERS - 1) + ["leader"],
                  "%s modes %s: not one leader and %d followers" % (tag, modes, MEMBERS - 1))
        return {"out": out, "leader": leader, "follower": follower, "version": version}
    finally:
        for z in clients:
            try:
                z.stop()
                z.close()
            except Exception:
                pass
        ens.cleanup()
        if os.path.isdir(root) and not os.listdir(root):
            os.rmdir(root)


def check_member(chk, who, kind, ens, i, out, role, nodes, watches):
    m = ens.m(i)
    # envi
    envi = out["envi"]
    chk.check(envi.startswith("Environment:\n"), "%s envi: first line is not 'Environment:'" % who)
    kv = dict(parse_lines(envi, "="))
    for k, rx in ENVI_KEYS.items():
        chk.check(k in kv and re.match(rx, kv[k]),
                  "%s envi: %s missing or malformed (%r)" % (who, k, kv.get(k)))
    if kind == "quorumfsd":
        chk.check("quorumfs" in kv.get("zookeeper.version", ""),
                  "%s envi: zookeeper.version does not name quorumfs" % who)
        chk.check("quorumfs.version" in kv, "%s envi: quorumfs.version missing" % who)

    # srvr and stat
    srvr = out["srvr"].splitlines()
    got = [l.split(":", 1)[0] for l in srvr[:len(SRVR_KEYS)]]
    chk.check(got == [k for k, _ in SRVR_KEYS],
              "%s srvr: keys %s, not ZooKeeper's %s" % (who, got, [k for k, _ in SRVR_KEYS]))
    sv = dict(parse_lines(out["srvr"], ":"))
    for k, rx in SRVR_KEYS:
        chk.check(k in sv and re.match(rx, sv[k]),
                  "%s srvr: %s missing or malformed (%r)" % (who, k, sv.get(k)))
    chk.check(sv.get("Mode") == role, "%s srvr: Mode %r, want %r" % (who, sv.get("Mode"), role))
    # ZooKeeper counts its root twice ("" and "/"), so Node count is one more than a walk finds.
    chk.check(sv.get("Node count") == str(nodes + 1),
              "%s srvr: Node count %r, want %d (%d nodes walked, plus one)" % (
                  who, sv.get("Node count"), nodes + 1, nodes))
    stat = out["stat"].splitlines()
    chk.check(len(stat) > 2 and stat[0].startswith("Zookeeper version: ") and
              stat[1] == "Clients:", "%s stat: does not start with the version and 'Clients:'"
              % who)
    clients = []
    rest = []
    if "" in stat[2:]:
        blank = stat.index("", 2)
        clients, rest = stat[2:blank], stat[blank + 1:]
    chk.check(clients and all(re.match(CLIENT_LINE, l) for l in clients),
              "%s stat: client lines missing or malformed: %r" % (who, clients))
    got = [l.split(":", 1)[0] for l in rest[:len(SRVR_KEYS) - 1]]
    chk.check(got == [k for k, _ in SRVR_KEYS[1:]],
              "%s stat: keys after the clients %s, not srvr's" % (who, got))
    st = dict(parse_lines("\n".join(rest), ":"))
    chk.check(st.get("Connections") == str(len(clients)),
              "%s stat: Connections %r, but %d client lines" % (who, st.get("Connections"),
                                                                len(clients)))
    chk.check(st.get("Node count") == str(nodes + 1), "%s stat: Node count %r, want %d" % (
        who, st.get("Node count"), nodes + 1))

    # conf
    conf = out["conf"]
    lines = conf.splitlines()
    kv = dict(parse_lines(conf, "="))
    for k, rx in CONF_KEYS.items():
        chk.check(k in kv and re.match(rx, kv[k]),
                  "%s conf: %s missing or malformed (%r)" % (who, k, kv.get(k)))
    chk.check(kv.get("clientPort") == str(m["client_port"]), "%s conf: clientPort %r, want %d" % (
        who, kv.get("clientPort"), m["client_port"]))
    chk.check(kv.get("serverId") == str(i), "%s conf: serverId %r" % (who, kv.get("serverId")))
    chk.check(kv.get("quorumPort") == str(m["peer_port"]) and
              kv.get("electionPort") == str(m["election_port"]),
              "%s conf: quorumPort/electionPort %r/%r, want %d/%d" % (
                  who, kv.get("quorumPort"), kv.get("electionPort"), m["peer_port"],
                  m["election_port"]))
    chk.check(kv.get("peerType") == "0" and kv.get("electionAlg") == "3",
              "%s conf: peerType %r electionAlg %r" % (who, kv.get("peerType"),
                                                       kv.get("electionAlg")))
    if chk.check("membership: " in lines, "%s conf: no 'membership: ' line" % who):
        tail = lines[lines.index("membership: ") + 1:]
        servers = [re.match(SERVER_LINE, l) for l in tail if l.startswith("server.")]
        chk.check(len(servers) == MEMBERS and all(servers),
                  "%s conf: membership lines malformed: %r" % (who, tail))
        ok = {int(s.group(1)): int(s.group(7)) for s in servers if s}
        chk.check(ok == {j: ens.m(j)["client_port"] for j in ens.ids()},
                  "%s conf: membership client ports %r" % (who, ok))
        chk.check(bool(tail) and re.match(r"^version=[0-9a-f]+$", tail[-1]),
                  "%s conf: membership does not end with version=HEX: %r" % (who, tail[-1:]))

    # mntr
    mntr = out["mntr"]
    chk.check(mntr.startswith("zk_version\t"), "%s mntr: first line is not zk_version" % who)
    kv = dict(parse_lines(mntr, "\t"))
    want = dict(MNTR_KEYS, **(MNTR_LEADER_KEYS if role == "leader" else {}))
    for k, rx in want.items():
        chk.check(k in kv and re.match(rx, kv[k]),
                  "%s mntr: %s missing or malformed (%r)" % (who, k, kv.get(k)))
    if role != "leader":
        extra = [k for k in MNTR_LEADER_KEYS if k in kv]
        chk.check(not extra, "%s mntr: a follower reports %s" % (who, extra))
    chk.check(kv.get("zk_server_state") == role, "%s mntr: zk_server_state %r" % (
        who, kv.get("zk_server_state")))
    chk.check(kv.get("zk_znode_count") == str(nodes + 1), "%s mntr: zk_znode_count %r, want %d"
              % (who, kv.get("zk_znode_count"), nodes + 1))
    chk.check(kv.get("zk_ephemerals_count") == str(EPHEMERALS),
              "%s mntr: zk_ephemerals_count %r, want %d" % (who, kv.get("zk_ephemerals_count"),
                                                            EPHEMERALS))
    chk.check(kv.get("zk_quorum_size") == str(MEMBERS), "%s mntr: zk_quorum_size %r" % (
        who, kv.get("zk_quorum_size")))
    if watches is not None:
        chk.check(kv.get("zk_watch_count") == str(watches), "%s mntr: zk_watch_count %r, want %d"
                  % (who, kv.get("zk_watch_count"), watches))
        chk.check(int(kv.get("zk_packets_received", "0")) >= 10 and
                  int(kv.get("zk_packets_sent", "0")) >= 10,
                  "%s mntr: packets received/sent %r/%r after a client's requests" % (
                      who, kv.get("zk_packets_received"), kv.get("zk_packets_sent")))
        chk.check(int(kv.get("zk_num_alive_connections", "0")) >= 2,
                  "%s mntr: zk_num_alive_connections %r with a client and the asker" % (
                      who, kv.get("zk_num_alive_connections")))
    try:
        fd, fdmax = int(kv["zk_open_file_descriptor_count"]), int(kv["zk_max_file_descriptor_count"])
        chk.check(0 < fd <= fdmax, "%s mntr: %d of %d file descriptors" % (who, fd, fdmax))
    except (KeyError, ValueError):
        pass
    if role == "leader":
        chk.check(kv.get("zk_synced_followers") == str(MEMBERS - 1) and
                  kv.get("zk_learners") == str(MEMBERS - 1),
                  "%s mntr: zk_learners %r zk_synced_followers %r, want %d" % (
                      who, kv.get("zk_learners"), kv.get("zk_synced_followers"), MEMBERS - 1))


def keys_of(word, text):
    if word == "mntr":
        return parse_lines(text, "\t")
    if word in ("envi", "conf"):
        return [(k, v) for k, v in parse_lines(text, "=") if not k.startswith("server.")]
    return [(k, v) for k, v in parse_lines(text, ":") if not k.startswith(" /")]


def compare(chk, zk, qfs):
    """Every key ZooKeeper prints (its whole answer, or mntr's tool keys) is in quorumfsd's
    answer from a member of the same role, with a value of the same shape."""
    for role in ("leader", "follower"):
        zi = zk["leader"] if role == "leader" else zk["follower"]
        qi = qfs["leader"] if role == "leader" else qfs["follower"]
        for w in WORDS:
            zkv = keys_of(w, zk["out"][zi][w])
            qv = dict(keys_of(w, qfs["out"][qi][w]))
            wanted = set(MNTR_KEYS) | (set(MNTR_LEADER_KEYS) if role == "leader" else set())
            for k, v in zkv:
                if w == "mntr" and k not in wanted:
                    continue
                if w in SKIP and SKIP[w].match(k):
                    continue
                if not chk.check(k in qv, "compare %s %s: ZooKeeper's key %r missing in "
                                 "quorumfsd's answer" % (role, w, k)):
                    continue
                chk.check(shape(v) == shape(qv[k]),
                          "compare %s %s %s: ZooKeeper %r (%s), quorumfsd %r (%s)" % (
                              role, w, k, v, shape(v), qv[k], shape(qv[k])))
    zv, qv = zk["version"], qfs["version"]
    chk.check(isinstance(zv, tuple) and isinstance(qv, tuple) and len(zv) == len(qv) and
              zv[:2] == qv[:2], "compare: server_version() %r (ZooKeeper) vs %r (quorumfsd)"
              % (zv, qv))


def side_by_side(zk, qfs):
    print("\n=== the leaders' answers side by side (ZooKeeper | quorumfsd)")
    for w in WORDS:
        print("--- %s" % w)
        a = zk["out"][zk["leader"]][w].splitlines()
        b = qfs["out"][qfs["leader"]][w].splitlines()
        if w == "mntr":
            keep = set(MNTR_KEYS) | set(MNTR_LEADER_KEYS) | {"zk_followers"}
            a = [l for l in a if l.split("\t")[0] in keep]
            b = [l for l in b if l.split("\t")[0] in keep or l.startswith("qfs_")][:40]
        for j in range(max(len(a), len(b))):
            x = a[j] if j < len(a) else ""
            y = b[j] if j < len(b) else ""
            print("  %-62.62s | %s" % (x.replace("\t", " "), y.replace("\t", " ")))


def main(argv):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--quorumfsd", help="path of quorumfsd (needed for kind quorumfsd)")
    p.add_argument("--kinds", default="zk,quorumfsd")
    p.add_argument("--dump", help="write every raw answer to DIR/<kind>-m<i>-<word>.txt")
    a = p.parse_args(argv)
    kinds = a.kinds.split(",")
    if "quorumfsd" in kinds and not a.quorumfsd:
        p.error("--quorumfsd is needed for kind quorumfsd")

    def on_signal(signum, frame):
        raise SystemExit("stopped by signal %d" % signum)

    def on_alarm(signum, frame):
        raise SystemExit("time limit of %d s reached" % TIME_LIMIT_S)
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGHUP, on_signal)
    signal.signal(signal.SIGALRM, on_alarm)
    signal.alarm(TIME_LIMIT_S)

    chk = Checks()
    res = {}
    t0 = time.monotonic()
    for kind in kinds:
        print("=== %s: %d members" % (kind, MEMBERS), flush=True)
        try:
            res[kind] = run_kind(kind, a.quorumfsd, chk)
        except (E.EnsembleError, OSError) as e:
            chk.check(False, "[%s] could not run: %s" % (kind, e))
            continue
        if a.dump:
            os.makedirs(a.dump, exist_ok=True)
            for i, words in res[kind]["out"].items():
                for w, text in words.items():
                    with open(os.path.join(a.dump, "%s-m%d-%s.txt" % (kind, i, w)), "w") as f:
                        f.write(text)
    if "zk" in res and "quorumfsd" in res:
        compare(chk, res["zk"], res["quorumfsd"])
        side_by_side(res["zk"], res["quorumfsd"])
    signal.alarm(0)
    print("\n=== %d checks passed, %d failed (%.0f s)" % (chk.passed, len(chk.failures),
                                                       time.monotonic() - t0))
    for f in chk.failures:
        print("FAIL " + f)
    return 1 if chk.failures else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
