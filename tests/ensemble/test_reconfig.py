#!/usr/bin/python3
"""Dynamic reconfiguration (docs/reconfig.md) with stock clients, on real processes.

    /usr/bin/python3 tests/ensemble/test_reconfig.py --kind quorumfsd --quorumfsd PATH
    /usr/bin/python3 tests/ensemble/test_reconfig.py --kind zk          # the control
    ... [--keep] [SCENARIO ...]

One ensemble of 3 (reconfigEnabled=true, a super user; ZooKeeper with standaloneEnabled=false
and its dynamic config file), then, in order:

  config     /zookeeper/config on every member is ZooKeeper's text (server.N=host:peer:election:
             participant;host:port lines and version=<hex>); a reconfig without super is
             NOAUTH, from a wrong fromConfig BADVERSION, with a malformed server BADARGUMENTS;
             adding two servers that are not running while removing two members is
             NEWCONFIGNOQUORUM and leaves the configuration as it was.
  zkcli      zkCli.sh `reconfig -remove 3`, then `reconfig -add server.3=...` (member 3 is
             restarted in between, so it comes back as a joining server); a data watch on
             /zookeeper/config fires.
  readd      a follower removed by kazoo's reconfig and, still running, added back: it serves
             again without a restart (quorumfsd: a removed member is dormant and a later
             configuration that names it readmits it).
  grow       3 -> 5 under kazoo write load (the history recorder): members 4 and 5 are started
             with the configuration plus themselves, then added by one kazoo reconfig.
  shrink     5 -> 3 under the same load, removing the leader itself and one follower (both are
             then stopped); the history checker: no acknowledged write lost, linearizable writes
             per znode, every member has every acknowledged write.
  client-port  a follower's client address changed by a reconfig (the same server line with
             another client port): it listens on the new port within seconds and refuses on
             the old one, a session connected before keeps working; restarted (quorumfsd: with
             its zoo.cfg still naming the old port) it serves on the new one.
  restart    every member stopped and started again: same configuration, same members.
  grow-many  3 -> 6 in one reconfig: three servers started outside the configuration (the
             configuration plus themselves) first sync with the leader as non-voting learners
             (each says Mode: follower before any reconfig names it), so the new majority of 4
             is synced and the reconfig is accepted, not NEWCONFIGNOQUORUM; then a write
             through a new member.
  missed     two new servers join, a follower is stopped, and one reconfig makes the
             configuration that follower plus them, removing every other member (they keep
             running, dormant). The follower, restarted with its old zoo.cfg, knows none of the
             new members' addresses: it follows the new leader, serves writes, and (quorumfsd)
             its zoo.cfg.dynamic names the new members' real addresses, learnt beside a vote.

The same assertions hold against Apache ZooKeeper 3.8 (--kind zk); the transcripts of both
are printed. QFS_LONG=1 runs longer loads. Exit 0 when every scenario passed. --skip-unless-long
exits 77 (ctest: skipped) unless QFS_LONG=1: the ZooKeeper control takes about a minute (JVM
starts), which the default test run has no room for.
"""

import argparse
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import ensemble as E  # noqa: E402
import history  # noqa: E402

from kazoo.client import KazooClient  # noqa: E402
import kazoo.exceptions as KE  # noqa: E402
import logging  # noqa: E402

logging.getLogger("kazoo").setLevel(logging.CRITICAL)

ZKCLI = os.environ.get("ZKCLI", "/usr/share/zookeeper/bin/zkCli.sh")
LINE = re.compile(r"^server\.(\d+)=([^:;]+):(\d+):(\d+):(participant|observer);([^:;]+):(\d+)$")
SCENARIOS = ["config", "zkcli", "readd", "grow", "shrink", "client-port", "restart", "grow-many",
             "missed"]


class Failed(Exception):
    pass


def log(msg):
    print("[%s] %s" % (time.strftime("%H:%M:%S"), msg), flush=True)


def parse_config(data):
    """{id: (role, client port)}, version: the /zookeeper/config text, checked line by line."""
    text = data.decode() if isinstance(data, bytes) else data
    lines = text.split("\n")
    if not lines or not re.match(r"^version=[0-9a-f]+$", lines[-1]):
        raise Failed("/zookeeper/config does not end with version=<hex>: %r" % text)
    servers = {}
    for line in lines[:-1]:
        m = LINE.match(line)
        if not m:
            raise Failed("not a ZooKeeper server line in /zookeeper/config: %r" % line)
        servers[int(m.group(1))] = (m.group(5), int(m.group(7)))
    return servers, int(lines[-1][8:], 16)


def expect_error(what, exc, fn):
    try:
        fn()
    except exc:
        log("  %s: %s, as expected" % (what, exc.__name__))
        return
    except Exception as e:  # noqa: BLE001
        raise Failed("%s: expected %s, got %r" % (what, exc.__name__, e))
    raise Failed("%s: expected %s, it succeeded" % (what, exc.__name__))


class Runner:
    def __init__(self, a):
        self.a = a
        self.long = bool(os.environ.get("QFS_LONG"))
        self.dir = tempfile.mkdtemp(prefix="qfs-reconfig-%s-" % a.kind)
        self.ens = None
        self.results = []
        self.keep = a.keep

    def client(self, ids=None, super_user=False):
        zk = KazooClient(hosts=self.ens.connect_string(ids), timeout=10.0,
                         auth_data=[E.SUPER_AUTH] if super_user else None)
        zk.start(timeout=30)
        return zk

    def write_through(self, i, name):
        """A create through member i alone: it serves writes."""
        zk = self.client([i])
        try:
            zk.create("/%s-%d" % (name, os.getpid()), name.encode())
        finally:
            zk.stop()
            zk.close()

    def config_everywhere(self, ids=None):
        """/zookeeper/config read on each member (after a sync): all equal; returns it."""
        texts = {}
        for i in ids or self.ens.ids():
            zk = self.client([i])
            try:
                zk.sync("/zookeeper/config")
                texts[i] = zk.get("/zookeeper/config")[0]
            finally:
                zk.stop()
                zk.close()
        if len(set(texts.values())) != 1:
            raise Failed("members show different configurations: %r" % texts)
        return next(iter(texts.values()))

    def wait_config(self, want_ids, timeout=60):
        """Until every member of want_ids serves and shows a configuration of exactly them."""
        deadline = time.monotonic() + timeout
        last = None
        while True:
            try:
                self.ens.wait_healthy(timeout=max(1, deadline - time.monotonic()), ids=want_ids)
                data = self.config_everywhere(want_ids)
                servers, version = parse_config(data)
                if sorted(servers) == sorted(want_ids):
                    return servers, version
                last = data
            except (E.EnsembleError, Failed, KE.KazooException, Exception) as e:  # noqa: BLE001
                last = e
            if time.monotonic() > deadline:
                raise Failed("the configuration did not become %s: %r" % (want_ids, last))
            time.sleep(0.3)

    # ---- scenarios --------------------------------------------------------------------------
    def sc_config(self):
        ens = self.ens
        data = self.config_everywhere()
        log("  /zookeeper/config:\n    " + data.decode().replace("\n", "\n    "))
        servers, version = parse_config(data)
        if sorted(servers) != [1, 2, 3] or any(r != "participant" for r, _ in servers.values()):
            raise Failed("unexpected configuration %r" % servers)
        for i, (_, port) in servers.items():
            if port != ens.m(i)["client_port"]:
                raise Failed("server.%d shows client port %d, not %d" % (i, port,
                                                                          ens.m(i)["client_port"]))
        plain = self.client()
        su = self.client(super_user=True)
        try:
            expect_error("reconfig without super", KE.NoAuthError,
                         lambda: plain.reconfig(joining=None, leaving="3", new_members=None))
            expect_error("reconfig from a wrong fromConfig", KE.BadVersionError,
                         lambda: su.reconfig(joining=None, leaving="3", new_members=None,
                                             from_config=version + 12345))
            expect_error("a malformed joining server", KE.BadArgumentsError,
                         lambda: su.reconfig(joining="server.9=127.0.0.1:1", leaving=None,
                                             new_members=None))
            down = ["server.%d=127.0.0.1:%d:%d:participant;127.0.0.1:%d" % (
                i, E.free_port(), E.free_port(), E.free_port()) for i in (8, 9)]
            expect_error("2 of 3 new voters not running", KE.NewConfigNoQuorumError,
                         lambda: su.reconfig(joining=",".join(down), leaving="2,3",
                                             new_members=None))
        finally:
            for zk in (plain, su):
                zk.stop()
                zk.close()
        after = self.config_everywhere()
        if after != data:
            raise Failed("a failed reconfig changed the configuration: %r" % after)
        return "format and error codes as ZooKeeper's; version 0x%x" % version

    def zkcli(self, commands, server_id):
        inp = "addauth digest %s\n%s\nquit\n" % (E.SUPER_AUTH[1], "\n".join(commands))
        p = subprocess.run([ZKCLI, "-server", self.ens.client_addr(server_id)], input=inp,
                           capture_output=True, text=True, timeout=90)
        return p.stdout + p.stderr

    def sc_zkcli(self):
        ens = self.ens
        # a data watch on /zookeeper/config, from member 1
        fired = []
        watcher = self.client([1])
        watcher.get("/zookeeper/config", watch=lambda ev: fired.append(ev))
        lid = ens.leader()
        via = [i for i in ens.ids() if i != 3][0]
        out = self.zkcli(["reconfig -remove 3"], via)
        if "Committed new configuration" not in out:
            # Removing the leader itself: ZooKeeper's followers lose their leader and drop
            # their clients, so the reply may be lost (as in the shrink); the configuration is
            # checked below.
            if not (lid == 3 and "ConnectionLoss" in out):
                raise Failed("zkCli reconfig -remove 3:\n%s" % out)
            log("  zkCli reconfig -remove 3 removed the leader: ConnectionLoss, reply lost")
        ens.mark(3, False)
        servers, _ = self.wait_config([1, 2])
        log("  zkCli reconfig -remove 3 (leader was m%s): now %s" % (lid, sorted(servers)))
        deadline = time.monotonic() + 10
        while not fired and time.monotonic() < deadline:
            time.sleep(0.05)
        watcher.stop()
        watcher.close()
        if not fired or fired[0].type != "CHANGED" or fired[0].path != "/zookeeper/config":
            raise Failed("the data watch on /zookeeper/config did not fire: %r" % fired)
        # Member 3 is out: restarted it comes back as a joining server; zkCli adds it.
        ens.stop_member(3)
        ens.start_member(3)
        out = self.zkcli(["reconfig -add %s" % ens.server_line(3)], via)
        if "Committed new configuration" not in out:
            raise Failed("zkCli reconfig -add server.3:\n%s" % out)
        ens.mark(3, True)
        servers, version = self.wait_config([1, 2, 3])
        return "zkCli removed and added member 3; watch fired; version 0x%x" % version

    def sc_readd(self):
        ens = self.ens
        lid = ens.leader()
        out = [i for i in ens.ids() if i != lid][-1]
        ens.reconfig(leaving=str(out))
        ens.mark(out, False)
        self.wait_config([i for i in ens.ids()])
        time.sleep(6.0)  # past the 5 s after which the others drop their links to it
        t0 = time.monotonic()
        ens.reconfig(joining=ens.server_line(out))
        ens.mark(out, True)
        servers, version = self.wait_config(ens.ids())
        self.write_through(out, "readd")
        return ("m%d removed and added back without a restart: serving writes %.1f s after the "
                "add, version 0x%x" % (out, time.monotonic() - t0, version))

    def load(self, name):
        rec = history.Recorder(self.ens.connect_string(), "/reconfig-%s-%d" % (name, os.getpid()),
                               workers=4, rate=40.0, session_timeout=6.0)
        rec.setup()
        rec.start()
        time.sleep(4.0 if self.long else 1.0)
        return rec

    def finish_load(self, rec, name):
        time.sleep(8.0 if self.long else 1.5)
        rec.stop()
        counts = rec.counts()
        ens = self.ens
        ens.wait_healthy(timeout=60)
        ens.touch()
        zxid, digest = ens.wait_converged(timeout=60)
        rec.final_reads({i: ens.client_addr(i) for i in ens.ids()})
        errors = rec.check()
        if errors:
            d = os.path.join(self.dir, "evidence-%s" % name)
            os.makedirs(d, exist_ok=True)
            rec.dump(os.path.join(d, "history.jsonl"))
            self.keep = True
            raise Failed("history checker (%s):\n  %s" % (d, "\n  ".join(errors[:20])))
        return "ops %s; converged at zxid 0x%x" % (
            " ".join("%s=%d" % kv for kv in sorted(counts.items())), zxid)

    def sc_grow(self):
        ens = self.ens
        rec = self.load("grow")
        new = [ens.add_member(reconfig=False) for _ in range(2)]
        t0 = time.monotonic()
        data, st = ens.reconfig(joining=",".join(ens.server_line(i) for i in new))
        took = time.monotonic() - t0
        # The reply is the new /zookeeper/config and its Stat: version -1 (the SetDataTxn of a
        # reconfig carries -1), mzxid the version in the text.
        if st.version != -1 or st.mzxid != parse_config(data)[1]:
            raise Failed("the reply's Stat is %r for %r" % (st, data))
        for i in new:
            ens.mark(i, True)
        servers, _ = parse_config(data)
        if sorted(servers) != [1, 2, 3] + new:
            raise Failed("the reply's configuration is %r" % sorted(servers))
        servers, version = self.wait_config([1, 2, 3] + new)
        info = self.finish_load(rec, "grow")
        return "3 -> 5 (reconfig answered in %.2f s), version 0x%x; %s" % (took, version, info)

    def sc_shrink(self):
        ens = self.ens
        rec = self.load("shrink")
        lid = ens.leader()
        other = [i for i in ens.ids() if i != lid][-1]
        t0 = time.monotonic()
        try:
            data, _ = ens.reconfig(leaving="%d,%d" % (lid, other))
        except KE.ConnectionLoss:
            data = None  # the leader left: the reply may be lost with it (checked below)
        took = time.monotonic() - t0
        for i in (lid, other):
            ens.mark(i, False)
        want = [i for i in ens.ids()]
        if data is not None and sorted(parse_config(data)[0]) != want:
            raise Failed("the reply's configuration is %r" % data)
        recovery = rec.wait_ok_write_after(t0, timeout=60)
        servers, version = self.wait_config(want)
        time.sleep(1.0)
        with rec._lock:
            done = sorted(op["complete"] for op in rec.ops if op["type"] == "ok" and
                          op["f"] in ("set", "cas", "create", "seq") and op["complete"] >= t0)
        gaps = [b - a for a, b in zip([t0] + done, done)]
        pause = max(gaps) if gaps else None
        new_leader = ens.leader()
        for i in (lid, other):
            ens.stop_member(i)
        info = self.finish_load(rec, "shrink")
        if recovery is None:
            raise Failed("no write was acknowledged within 60 s of the reconfig")
        return ("5 -> 3 removing leader m%d and m%d (answered in %.2f s%s), new leader m%s, "
                "longest time without an acknowledged write after the request %.2f s; %s" % (
                    lid, other, took, "" if data is not None else ", reply lost", new_leader,
                    pause, info))

    def sc_client_port(self):
        ens = self.ens
        lid = ens.leader()
        f = [i for i in ens.ids() if i != lid][0]
        m = ens.m(f)
        old, new = m["client_port"], E.free_port()
        before = self.client([f])  # a session on the old port, kept across the move
        try:
            before.create("/client-port-%d" % os.getpid(), b"x")
            line = ens.server_line(f)
            moved = re.sub(r";([^:;]+):\d+$", lambda mo: ";%s:%d" % (mo.group(1), new), line)
            data, _ = ens.reconfig(joining=moved)
            servers, _ = parse_config(data)
            if servers[f][1] != new:
                raise Failed("the reply shows server.%d's client port %d, not %d" % (
                    f, servers[f][1], new))
            t0 = time.monotonic()
            deadline = t0 + 15
            while not E.port_open(ens.host(f), new):
                if time.monotonic() > deadline:
                    raise Failed("m%d does not listen on its new client port %d" % (f, new))
                time.sleep(0.05)
            took = time.monotonic() - t0
            deadline = time.monotonic() + 15
            while E.port_open(ens.host(f), old):
                if time.monotonic() > deadline:
                    raise Failed("m%d still accepts on its old client port %d" % (f, old))
                time.sleep(0.05)
            m["client_port"] = new
            ens.save()
            zk = self.client([f])
            try:
                zk.sync("/")
                if zk.get("/client-port-%d" % os.getpid())[0] != b"x":
                    raise Failed("m%d on its new port serves other data" % f)
            finally:
                zk.stop()
                zk.close()
            before.set("/client-port-%d" % os.getpid(), b"y")
        finally:
            before.stop()
            before.close()
        # Restarted, it keeps the new address: quorumfsd from dataDir/zoo.cfg.dynamic, even
        # with zoo.cfg naming the old port (ZooKeeper moves clientPort out of zoo.cfg itself).
        ens.stop_member(f)
        if ens.kind == "quorumfsd":
            m["client_port"] = old
            ens._write_config(f)
            m["client_port"] = new
            real_write, ens._write_config = ens._write_config, lambda i: None
            try:
                ens.start_member(f)
            finally:
                ens._write_config = real_write
        else:
            ens.start_member(f)
        ens.wait_healthy(timeout=60)
        if E.port_open(ens.host(f), old):
            raise Failed("restarted, m%d listens on its old client port %d again" % (f, old))
        return "m%d moved from client port %d to %d (listening after %.2f s); kept across a " \
            "restart" % (f, old, new, took)

    def sc_restart(self):
        ens = self.ens
        before = self.config_everywhere()
        ens.stop()
        ens.start(timeout=90)
        servers, version = self.wait_config(ens.ids())
        after = self.config_everywhere()
        if after != before:
            raise Failed("the configuration changed across the restart:\n%r\n%r" % (before,
                                                                                     after))
        if ens.kind == "quorumfsd":
            for i in ens.ids():
                p = os.path.join(ens.m(i)["dir"], "data", "zoo.cfg.dynamic")
                if not os.path.exists(p):
                    raise Failed("member %d has no %s" % (i, p))
        return "members %s kept, version 0x%x" % (sorted(servers), version)

    def sc_grow_many(self):
        ens = self.ens
        old = ens.ids()
        new = [ens.add_member(reconfig=False) for _ in range(3)]
        t0 = time.monotonic()
        deadline = t0 + 20
        while True:
            modes = {i: ens.member_status(i)["mode"] for i in new}
            if all(mo == "follower" for mo in modes.values()):
                break
            if time.monotonic() > deadline:
                # Asked anyway: without the joiners synced, this is NEWCONFIGNOQUORUM.
                log("  the joining servers do not follow the leader after 20 s: %r" % modes)
                break
            time.sleep(0.1)
        synced = time.monotonic() - t0
        lid = ens.leader()
        t1 = time.monotonic()
        try:
            data, _ = ens.reconfig(joining=",".join(ens.server_line(i) for i in new))
        except KE.KazooException as e:
            raise Failed("the reconfig adding %s: %s (their modes %r)" % (new, type(e).__name__,
                                                                         modes))
        took = time.monotonic() - t1
        if not all(mo == "follower" for mo in modes.values()):
            raise Failed("the reconfig succeeded, but the joining servers had not synced first")
        for i in new:
            ens.mark(i, True)
        if sorted(parse_config(data)[0]) != sorted(old + new):
            raise Failed("the reply's configuration is %r" % data)
        servers, version = self.wait_config(sorted(old + new))
        self.write_through(new[-1], "grow-many")
        return ("%d -> %d: the joiners %s followed leader m%s %.1f s after their start; one "
                "reconfig added them all (answered in %.2f s), version 0x%x" % (
                    len(old), len(servers), new, lid, synced, took, version))

    def sc_missed(self):
        ens = self.ens
        lid = ens.leader()
        f = [i for i in ens.ids() if i != lid][0]
        new = [ens.add_member(reconfig=False) for _ in range(2)]
        deadline = time.monotonic() + 20
        while not all(ens.member_status(i)["mode"] == "follower" for i in new):
            if time.monotonic() > deadline:
                raise Failed("the joining servers %s do not follow the leader" % new)
            time.sleep(0.1)
        ens.stop_member(f)
        gone = [i for i in ens.ids() if i != f]
        try:
            ens.reconfig(joining=",".join(ens.server_line(i) for i in new),
                         leaving=",".join(str(i) for i in gone))
        except KE.ConnectionLoss:
            pass  # the leader left: the reply may be lost with it (checked below)
        for i in gone:
            ens.mark(i, False)
        for i in new:
            ens.mark(i, True)
        # Restarted with the zoo.cfg it had: it lists only members that are gone now.
        real_write, ens._write_config = ens._write_config, lambda i: None
        try:
            t0 = time.monotonic()
            ens.start_member(f)
        finally:
            ens._write_config = real_write
        try:
            servers, version = self.wait_config(sorted([f] + new))
            took = time.monotonic() - t0
            self.write_through(f, "missed")
            if ens.kind == "quorumfsd":
                # It persisted the new members' real addresses, learnt beside a vote (not
                # "unknown": it had never seen their lines).
                with open(os.path.join(ens.m(f)["dir"], "data", "zoo.cfg.dynamic")) as fh:
                    dynamic = fh.read()
                for i in new:
                    want = "server.%d=%s:%d:" % (i, ens.host(i), ens.m(i)["peer_port"])
                    if want not in dynamic:
                        raise Failed("m%d's zoo.cfg.dynamic lacks %r:\n%s" % (f, want, dynamic))
        finally:
            for i in gone:
                ens.stop_member(i)
        return ("m%d missed the reconfig to %s (removing %s, leader m%s): restarted, it serves "
                "writes %.1f s later; version 0x%x" % (f, sorted([f] + new), gone, lid, took,
                                                       version))

    # ---- driver -----------------------------------------------------------------------------
    def run(self, names):
        self.ens = E.Ensemble.create(os.path.join(self.dir, "ens"), n=3, kind=self.a.kind,
                                     quorumfsd=self.a.quorumfsd, tick_ms=200,
                                     max_session_ms=8000, attached=True, reconfig=True)
        t0 = time.monotonic()
        lid = self.ens.start(timeout=120).leader()
        log("%s ensemble of 3 up in %.1f s, leader m%s" % (self.a.kind, time.monotonic() - t0,
                                                             lid))
        for name in names:
            t = time.monotonic()
            log("scenario %s" % name)
            try:
                info = getattr(self, "sc_" + name.replace("-", "_"))()
                ok = True
                log("  PASS %s: %s (%.1f s)" % (name, info, time.monotonic() - t))
            except Exception as e:  # noqa: BLE001
                ok = False
                self.keep = True
                log("  FAIL %s: %s" % (name, e))
                for i in self.ens.all_ids():
                    print(self.ens.log_tail(i, 15))
            self.results.append((name, ok, time.monotonic() - t))
            if not ok:
                break  # later scenarios build on this one
        return all(ok for _, ok, _ in self.results) and len(self.results) == len(names)

    def teardown(self):
        if self.ens is not None:
            self.ens.stop()
        if self.keep:
            log("kept %s" % self.dir)
        else:
            shutil.rmtree(self.dir, ignore_errors=True)


def main(argv):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--kind", choices=["zk", "quorumfsd"], default="quorumfsd")
    p.add_argument("--quorumfsd", default=None)
    p.add_argument("--keep", action="store_true")
    p.add_argument("--skip-unless-long", action="store_true")
    p.add_argument("scenarios", nargs="*", default=None)
    a = p.parse_args(argv)
    if a.skip_unless_long and not os.environ.get("QFS_LONG"):
        print("skip: set QFS_LONG=1 to run the ZooKeeper control (about a minute)")
        return 77
    if a.kind == "quorumfsd":
        a.quorumfsd = os.path.abspath(a.quorumfsd or E.default_quorumfsd())
    names = a.scenarios or SCENARIOS
    r = Runner(a)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))
    ok = False
    t0 = time.monotonic()
    try:
        ok = r.run(names)
    finally:
        r.teardown()
    log("%s: %s in %.1f s" % (a.kind, "PASS" if ok else "FAIL", time.monotonic() - t0))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
