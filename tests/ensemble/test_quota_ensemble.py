#!/usr/bin/python3
"""Quotas on a 3-member quorumfsd ensemble (docs/quotas.md): every member keeps the same usage.

    test_quota_ensemble.py [--quorumfsd PATH]

enforceQuota=true, snapCount=50. A quota is set through one member; creates, sets, deletes,
ephemerals (and their session's close) go through all three; a hard limit refuses through a
follower; a follower is killed (-9) and restarted while writes go on. Every member must then
report the same digest and zxid, the same stat node data, equal to a walk of the subtree.
Exit status 0 iff every check passed.
"""

import argparse
import os
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from ensemble import Ensemble  # noqa: E402

import kazoo.exceptions as E  # noqa: E402
from kazoo.client import KazooClient  # noqa: E402

if -125 not in E.EXCEPTIONS:  # kazoo 2.8 does not know ZQUOTAEXCEEDED
    E._zookeeper_exception(-125)(type("QuotaExceededError", (E.ZookeeperError,), {}))
QuotaExceededError = E.EXCEPTIONS[-125]

STAT = "/zookeeper/quota/app/zookeeper_stats"


def client(ens, i):
    zk = KazooClient(hosts="127.0.0.1:%d" % ens.m(i)["client_port"])
    zk.start(timeout=30)
    return zk


def walk(zk, path):
    data, _ = zk.get(path)
    count, size = 1, len(data or b"")
    for c in zk.get_children(path):
        n, b = walk(zk, path + "/" + c)
        count += n
        size += b
    return count, size


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--quorumfsd")
    a = ap.parse_args()
    failed = []

    def check(what, cond, detail=""):
        print("%s %s%s" % ("ok  " if cond else "FAIL", what, "" if cond else " " + str(detail)))
        if not cond:
            failed.append(what)

    d = tempfile.mkdtemp(prefix="qfs-quota-ens-")
    ens = Ensemble.create(d, n=3, quorumfsd=a.quorumfsd,
                          extra={"enforceQuota": "true", "snapCount": "50"})
    try:
        ens.start()
        leader = ens.wait_healthy()
        f1, f2 = [i for i in ens.ids() if i != leader]
        zks = {i: client(ens, i) for i in ens.ids()}
        z = zks[f1]
        z.create("/app", b"")
        z.create("/app/old", b"12345")
        z.ensure_path("/zookeeper/quota/app")
        z.create("/zookeeper/quota/app/zookeeper_limits",
                 b"count=-1,bytes=-1=;byteHardLimit=-1;countHardLimit=60")
        z.create(STAT, b"count=0,bytes=0")
        eph = client(ens, f2)
        for k in range(30):
            i = ens.ids()[k % 3]
            zks[i].create("/app/n%d" % k, b"x" * (k % 5))
            if k % 4 == 0:
                eph.create("/app/e%d" % k, b"eph", ephemeral=True)
            if k % 3 == 0:
                zks[i].set("/app/n%d" % k, b"set %d" % k)
        eph.stop()
        eph.close()
        # The session's close removes its ephemerals; wait until this member has applied it.
        for _ in range(200):
            z.sync("/")
            if not any(c.startswith("e") for c in z.get_children("/app")):
                break
            time.sleep(0.05)
        for k in range(0, 30, 2):
            zks[ens.ids()[k % 3]].delete("/app/n%d" % k)
        # Fill up to the hard limit through the leader, then refuse through a follower.
        z.sync("/")
        count = walk(z, "/app")[0]
        for k in range(60 - count):
            zks[leader].create("/app/f%d" % k, b"")
        try:
            zks[f2].create("/app/over", b"")
            check("a create over the hard limit through a follower is refused", False)
        except QuotaExceededError:
            check("a create over the hard limit through a follower is refused", True)

        # A follower killed and restarted (from its snapshot and log) while writes go on.
        zks[f2].stop()
        zks[f2].close()
        ens.kill(f2)
        for k in range(0, 20):
            zks[leader].delete("/app/f%d" % k)
            zks[f1].set("/app/n%d" % (2 * (k % 15) + 1), b"after the kill %d" % k)
        ens.start_member(f2)
        ens.wait_healthy()
        zxid, digest = ens.wait_converged()
        zks[f2] = client(ens, f2)
        want = "count=%d,bytes=%d" % walk(zks[leader], "/app")
        for i in ens.ids():
            zks[i].sync("/")
            got = zks[i].get(STAT)[0].decode()
            check("member %d's usage equals a walk (%s)" % (i, got), got == want, want)
        check("members converged on one digest (zxid 0x%x)" % zxid,
              digest is not None and not str(digest).startswith("DIFFER"), digest)
        for zk in zks.values():
            zk.stop()
            zk.close()
    finally:
        ens.cleanup()
    print("%s: %d failed" % ("FAIL" if failed else "PASS", len(failed)))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
