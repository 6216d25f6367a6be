#!/usr/bin/python3
"""Quotas (docs/quotas.md) with stock clients, Apache ZooKeeper 3.8 as the control.

    test_quota.py --quorumfsd PATH

1. zkCli.sh: one transcript of setquota -n/-b/-N/-B, listquota, delquota (all and -n/-b/-N/-B),
   creates/sets/deletes under quota'd paths, hard limits refusing, refused quotas (a parent or a
   child with a quota, bad values, missing paths), ephemerals removed at session close; against
   ZooKeeper (-Dzookeeper.enforceQuota=true) and quorumfsd (enforceQuota=true). The normalized
   transcripts must be equal, and so must mntr's quota lines.
2. kazoo: the same story on both (QuotaExceededError on create, set and inside a transaction;
   usage exact after ephemerals go with their session), results equal and usage equal to a walk
   of the subtree; quorumfsd only: a transaction that crosses a hard limit midway is refused
   (ZooKeeper checks each op against the tree before the transaction, docs/quotas.md).
3. quorumfsd only: soft limits logged once per crossing (WARN, qfs_quota_soft_crossings), and
   usage exact across a restart and a kill -9 with snapshots every 20 txns.
Exit status 0 iff every check passed.
"""

import argparse
import os
import re
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from ports import free_port  # noqa: E402
from server import Server, four_letter  # noqa: E402

import kazoo.exceptions as E  # noqa: E402
from kazoo.client import KazooClient  # noqa: E402
from kazoo.exceptions import NoNodeError  # noqa: E402

# kazoo 2.8 does not know ZQUOTAEXCEEDED (-125): it would raise RuntimeError in its connection
# thread, so the raw code gets a class here (as test_kazoo.py does).
if -125 not in E.EXCEPTIONS:
    E._zookeeper_exception(-125)(type("QuotaExceededError", (E.ZookeeperError,), {}))
QuotaExceededError = E.EXCEPTIONS[-125]

ZKCLI = "/usr/share/zookeeper/bin/zkCli.sh"

# Sessions of zkCli, each a list of commands.
SESSIONS = [
    """create /q
create /q/a x
setquota -n 3 /q
listquota /q
get -s /zookeeper/quota/q/zookeeper_limits
get -s /zookeeper/quota/q/zookeeper_stats
setquota -b 10 /q
setquota -N 4 /q
setquota -B 20 /q
listquota /q
create /q/b 12345
create /q/c 1
create /q/d
set /q/a 0123456789012345678901234567890
create /q/b/seq- 1
create -s /q/b/seq- 1
listquota /q
set /q/a abc
delete /q/c
create /q/b/deep
create /q/b/deep2
listquota /q
get -s /zookeeper/quota/q/zookeeper_stats
setquota -n 2 /q/a
setquota -n 2 /q/b/deep
setquota -n 2 /
create /r
create /r/s
setquota -n 2 /r/s
setquota -n 2 /r
setquota -b 100 /r/s
listquota /r/s
delquota -n /q
listquota /q
delquota -b /q
listquota /q
delquota -N /q
delquota -B /q
listquota /q
create /q/x 0123456789012345678901234567890
listquota /q
delquota /q
listquota /q
delquota /q
ls /zookeeper/quota
setquota -N 2 /r/s
create /r/s/1
create /r/s/2
listquota /r/s
deleteall /r
listquota /r/s
create /r
create /r/s abc
listquota /r/s
create /big
create /big/a 1234
create /big/a/b 12
create /big/c
create /big/c/d 1
setquota -n 2 -B 5 /big
setquota -B 5 /big
listquota /big
setquota -N 3 /big
listquota /big
create /e
setquota -N 3 /e
create -e /e/x 12345678
create -e /e/y
create -e /e/z
listquota /e
setquota -n 0 /q
setquota -b -1 /q
setquota -n abc /q
setquota /q
setquota -n 3 /nonexist
setquota -n 3 /zookeeper/quota/x
listquota /nonexist
delquota /nonexist
ls /zookeeper/quota""",
    # The first session's ephemerals are gone with it.
    """listquota /e
create -e /e/x 1
listquota /e
ls /zookeeper/quota/e
create /zookeeper/mine x
delete /zookeeper/mine
delete /zookeeper/quota""",
]

NOISE = re.compile(r"^(SLF4J:|Connecting to |Welcome to ZooKeeper!|JLine support is|WATCHER::|$)"
                   r"|^WatchedEvent state:(SyncConnected|Closed) type:None path:null$")


def normalize(text):
    out = []
    for line in text.splitlines():
        if NOISE.search(line):
            continue
        line = re.sub(r"^(cZxid|mZxid|pZxid) = 0x[0-9a-f]+$", r"\1 = ZXID", line)
        line = re.sub(r"^(ctime|mtime) = .+$", r"\1 = TIME", line)
        line = re.sub(r"^ephemeralOwner = 0x[0-9a-f]*[1-9a-f][0-9a-f]*$",
                      "ephemeralOwner = SESSION", line)
        out.append(line)
    return out


def zkcli(hosts, commands):
    p = subprocess.run([ZKCLI, "-server", hosts], input=commands + "\nquit\n", text=True,
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=90)
    return normalize(p.stdout)


def mntr_quota(port):
    text = four_letter(port, "mntr") or ""
    return sorted(l for l in text.splitlines() if "quota" in l and l.startswith("zk_"))


def walk(zk, path):
    """(count, bytes) of the subtree at path, itself included: what the stat node must say."""
    data, _ = zk.get(path)
    count, size = 1, len(data or b"")
    for c in zk.get_children(path):
        n, b = walk(zk, path.rstrip("/") + "/" + c)
        count += n
        size += b
    return count, size


def usage(zk, path):
    data, _ = zk.get("/zookeeper/quota%s/zookeeper_stats" % path)
    return data.decode()


def set_limits(zk, path, limits):
    """What zkCli's setquota does for a new quota."""
    zk.ensure_path("/zookeeper/quota" + path)
    zk.create("/zookeeper/quota%s/zookeeper_limits" % path, limits.encode())
    zk.create("/zookeeper/quota%s/zookeeper_stats" % path, b"count=0,bytes=0")


def wait_for(cond, timeout=20.0):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if cond():
            return True
        time.sleep(0.1)
    return False


def kazoo_story(hosts):
    """The same story on both servers: returns what each step gave."""
    out = []
    zk = KazooClient(hosts=hosts)
    zk.start(timeout=30)
    try:
        zk.create("/k", b"")
        zk.create("/k/pre", b"123")
        set_limits(zk, "/k", "count=-1,bytes=-1=;byteHardLimit=50;countHardLimit=5")
        out.append(("set on an existing subtree", usage(zk, "/k")))
        zk.create("/k/a", b"12345")
        out.append(("create", usage(zk, "/k")))
        other = KazooClient(hosts=hosts)
        other.start(timeout=30)
        other.create("/k/e", b"abcdefg", ephemeral=True)
        other.create("/k/s-", b"1", ephemeral=True, sequence=True)
        out.append(("ephemerals", usage(zk, "/k")))
        other.stop()
        other.close()
        wait_for(lambda: zk.exists("/k/e") is None)
        out.append(("session closed", usage(zk, "/k")))
        t = zk.transaction()
        t.create("/k/m1", b"x")
        t.set_data("/k/a", b"123456")
        out.append(("transaction", [type(r).__name__ for r in t.commit()], usage(zk, "/k")))
        zk.create("/k/m2", b"")
        try:
            zk.create("/k/m3", b"")
            out.append(("count limit", "created"))
        except QuotaExceededError:
            out.append(("count limit", "QuotaExceededError"))
        t = zk.transaction()
        t.check("/k/a", -1)
        t.create("/k/m3", b"")
        out.append(("transaction over", [type(r).__name__ for r in t.commit()]))
        try:
            zk.set("/k/a", b"x" * 60)
            out.append(("bytes limit", "set"))
        except QuotaExceededError:
            out.append(("bytes limit", "QuotaExceededError"))
        zk.set("/k/a", b"")
        zk.delete("/k/m2")
        out.append(("after set and delete", usage(zk, "/k")))
        c, b = walk(zk, "/k")
        out.append(("equals a walk", usage(zk, "/k") == "count=%d,bytes=%d" % (c, b)))
    finally:
        zk.stop()
        zk.close()
    return out


class Checks:
    def __init__(self):
        self.failed = 0

    def eq(self, what, got, want):
        if got == want:
            print("ok   %s" % what)
        else:
            self.failed += 1
            print("FAIL %s\n     got:  %r\n     want: %r" % (what, got, want))

    def true(self, what, cond, detail=""):
        self.eq(what + ((" (%s)" % detail) if detail and not cond else ""), bool(cond), True)


def diff_lines(a, b):
    import difflib
    return "\n".join(difflib.unified_diff(a, b, "zookeeper", "quorumfsd", lineterm=""))


def compare_with_zookeeper(quorumfsd, ck):
    results = {}
    for kind in ("zk", "quorumfsd"):
        srv = Server(kind, quorumfsd if kind == "quorumfsd" else None, tick_ms=500,
                     extra_config={"enforceQuota": "true"})
        try:
            srv.start()
            print("== %s on %s" % (kind, srv.hosts))
            transcript = []
            for s in SESSIONS:
                transcript += zkcli(srv.hosts, s) + ["--- next session"]
            results[kind] = (transcript, mntr_quota(srv.port), kazoo_story(srv.hosts))
        finally:
            srv.cleanup()
    zk, qfs = results["zk"], results["quorumfsd"]
    ck.true("zkCli transcript as ZooKeeper's (%d lines)" % len(zk[0]), zk[0] == qfs[0],
            "\n" + diff_lines(zk[0], qfs[0]))
    ck.true("the transcript shows refusals", any("Quota has exceeded" in l for l in qfs[0]))
    ck.eq("mntr quota lines as ZooKeeper's", qfs[1], zk[1])
    ck.eq("kazoo story as ZooKeeper's", qfs[2], zk[2])
    for step in qfs[2]:
        print("     %r" % (step,))
    ck.true("kazoo story refuses", ("count limit", "QuotaExceededError") in qfs[2])
    ck.true("kazoo usage equals a walk", ("equals a walk", True) in qfs[2])


def quorumfsd_only(quorumfsd, ck):
    metrics_port = free_port()
    srv = Server("quorumfsd", quorumfsd, tick_ms=500,
                 extra_config={"enforceQuota": "true", "snapCount": "20",
                               "metricsProvider.httpPort": str(metrics_port)})
    try:
        srv.start()
        zk = KazooClient(hosts=srv.hosts)
        zk.start(timeout=30)
        # A transaction whose ops together cross the hard limit: the second create is refused.
        zk.create("/t", b"")
        set_limits(zk, "/t", "count=-1,bytes=-1=;byteHardLimit=-1;countHardLimit=3")
        t = zk.transaction()
        for i in range(4):  # /t and two more fit
            t.create("/t/%d" % i, b"")
        ck.eq("a transaction crossing the limit midway is refused",
              [type(r).__name__ for r in t.commit()],
              ["RolledBackError", "RolledBackError", "QuotaExceededError",
               "RuntimeInconsistency"])
        ck.eq("... and changed nothing", usage(zk, "/t"), "count=1,bytes=0")

        # Soft limits: one WARN per crossing.
        zk.create("/w", b"")
        set_limits(zk, "/w", "count=3,bytes=-1")
        crossings0 = mntr_value(srv.port, "qfs_quota_soft_crossings")
        for i in range(4):  # count 2, 3, 4 (over: WARN), 5
            zk.create("/w/%d" % i, b"")
        zk.delete("/w/3")
        zk.delete("/w/2")  # back to 3
        zk.create("/w/2", b"")  # over again: WARN
        ck.eq("two soft crossings counted", mntr_value(srv.port, "qfs_quota_soft_crossings"),
              crossings0 + 2)
        with open(srv.log_path, errors="replace") as f:
            warns = [l for l in f if "WARN" in l and "Quota exceeded: /w " in l]
        ck.eq("two soft-limit WARNs logged", len(warns), 2)

        # The same gauges on the Prometheus page, one series per namespace.
        page = prometheus(metrics_port)
        ck.eq("Prometheus: count limit of namespace t",
              prom_value(page, 'quorumfs_quota_count_limit_per_namespace{namespace="t"}'), 3)
        ck.eq("Prometheus: count usage of namespace w",
              prom_value(page, 'quorumfs_quota_count_usage_per_namespace{namespace="w"}'), 4)
        ck.eq("Prometheus: refusals of namespace t",
              prom_value(page, 'quorumfs_quota_exceeded_error_per_namespace{namespace="t"}'), 1)
        ck.eq("Prometheus: soft crossings", prom_value(page, "quorumfs_quota_soft_crossings"),
              crossings0 + 2)

        # Usage exact across snapshots (every 20 txns), a restart and a kill -9.
        zk.create("/p", b"")
        set_limits(zk, "/p", "count=-1,bytes=-1=;byteHardLimit=-1;countHardLimit=1000")
        churn(zk, srv.hosts, "/p", 0)
        zk.stop()
        zk.close()
        snaps = [n for n in os.listdir(srv.data_dir) if "snap" in n]
        ck.true("snapshots were taken", len(snaps) > 0, "no snapshot in %s" % srv.data_dir)
        for k, how in enumerate(("restart", "kill -9")):
            srv.restart(kill=how == "kill -9")
            zk = KazooClient(hosts=srv.hosts)
            zk.start(timeout=30)
            c, b = walk(zk, "/p")
            ck.eq("usage after a %s equals a walk" % how, usage(zk, "/p"),
                  "count=%d,bytes=%d" % (c, b))
            churn(zk, srv.hosts, "/p", 1000 * (k + 1))
            c, b = walk(zk, "/p")
            ck.eq("usage after more writes equals a walk", usage(zk, "/p"),
                  "count=%d,bytes=%d" % (c, b))
            zk.stop()
            zk.close()
        with open(srv.log_path, errors="replace") as f:
            log = f.read()
        ck.eq("both restarts loaded a snapshot (then replayed the log)",
              len(re.findall(r"recovered: snapshot /\S+", log)), 2)
    finally:
        srv.cleanup()


def churn(zk, hosts, root, base):
    """About 100 txns of creates, sets, deletes and ephemerals under root."""
    eph = KazooClient(hosts=hosts)
    eph.start(timeout=30)
    for i in range(base, base + 30):
        zk.create("%s/n%d" % (root, i), b"d" * (i % 7))
        if i % 3 == 0:
            zk.set("%s/n%d" % (root, i), b"longer data %d" % i)
        if i % 5 == 0:
            zk.create("%s/n%d/c" % (root, i), b"child")
        if i % 4 == 0:
            eph.create("%s/e%d" % (root, i), b"ephemeral", ephemeral=True)
    for i in range(base, base + 30, 2):
        if zk.exists("%s/n%d/c" % (root, i)):
            zk.delete("%s/n%d/c" % (root, i))
        zk.delete("%s/n%d" % (root, i))
    eph.stop()
    eph.close()
    # Ephemerals are gone once the session's close is applied.
    wait_for(lambda: not any(c.startswith("e") for c in zk.get_children(root)))


def prometheus(port):
    import urllib.request
    with urllib.request.urlopen("http://127.0.0.1:%d/metrics" % port, timeout=10) as r:
        return r.read().decode()


def prom_value(page, series):
    for line in page.splitlines():
        if line.startswith(series + " "):
            return int(float(line.split()[-1]))
    return None


def mntr_value(port, key):
    for line in (four_letter(port, "mntr") or "").splitlines():
        k, _, v = line.partition("\t")
        if k == key:
            return int(v)
    return None


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--quorumfsd", required=True)
    a = ap.parse_args()
    ck = Checks()
    compare_with_zookeeper(os.path.abspath(a.quorumfsd), ck)
    quorumfsd_only(os.path.abspath(a.quorumfsd), ck)
    print("%s: %d failed" % ("FAIL" if ck.failed else "PASS", ck.failed))
    return 1 if ck.failed else 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except NoNodeError as e:
        print("FAIL: %r" % e)
        sys.exit(1)
