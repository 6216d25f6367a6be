#!/usr/bin/python3
"""import-zookeeper from a member of a 3-member Apache ZooKeeper 3.8 ensemble, whose zxids are in
epoch 1 or later (a standalone ZooKeeper stays in epoch 0) (docs/migration.md, "Zxids and
epochs").

    /usr/bin/python3 tests/cli/import_zk_ensemble_test.py QUORUMFS QUORUMFSD

Writes nodes (creates, setData, deletes) through the ZooKeeper ensemble, stops it, imports one
member's data directory, checks the epoch files name the last zxid's epoch, starts quorumfsd on
it, compares every node (data, Stat, children; /zookeeper/config is quorumfs's own) and checks a
new write's zxid is in a later epoch.
Members and servers are stopped by PID; directories are removed.
"""

import os
import shutil
import signal
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "clients"))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "ensemble"))

import ensemble as ens_lib  # noqa: E402
import server as harness  # noqa: E402
from kazoo.client import KazooClient  # noqa: E402

failures = []


def check(cond, what):
    if not cond:
        failures.append(what)
        print("FAIL: " + what, flush=True)
    return cond


def dump(c):
    out, todo = {}, ["/"]
    while todo:
        p = todo.pop()
        data, st = c.get(p)
        kids = sorted(c.get_children(p))
        out[p] = (data, tuple(st), kids)
        todo.extend(p.rstrip("/") + "/" + k for k in kids)
    return out


def main(argv):
    if len(argv) != 3:
        sys.stderr.write("usage: %s QUORUMFS QUORUMFSD\n" % argv[0])
        return 2
    quorumfs, quorumfsd = os.path.abspath(argv[1]), os.path.abspath(argv[2])
    signal.alarm(170)
    work = tempfile.mkdtemp(prefix="qfs-import-zkens-")
    ens = ens_lib.Ensemble.create(os.path.join(work, "zk"), n=3, kind="zk")
    try:
        ens.start(timeout=90)
        c = KazooClient(hosts=ens.connect_string())
        c.start(timeout=30)
        c.create("/d", b"dir")
        for i in range(300):
            c.create("/d/n%d" % i, b"v%d" % i)
        for i in range(0, 300, 7):
            c.set("/d/n%d" % i, b"changed")
        for i in range(3, 300, 11):
            c.delete("/d/n%d" % i)
        want = dump(c)
        last = max(v[1][1] for v in want.values())
        c.stop()
        c.close()
        ens.stop()
        print("zookeeper ensemble: %d nodes, last zxid 0x%x" % (len(want), last))
        check(last >> 32 >= 1, "the ZooKeeper ensemble's zxids are past epoch 0")

        qs = harness.Server("quorumfsd", quorumfsd)
        p = subprocess.run([quorumfs, "import-zookeeper", os.path.join(ens.m(1)["dir"], "data"),
                            qs.data_dir], capture_output=True, text=True, timeout=120)
        print("import: exit %d\n%s%s" % (p.returncode, p.stdout, p.stderr))
        if not check(p.returncode == 0, "import succeeds"):
            return 1
        for name in ("acceptedEpoch", "currentEpoch"):
            with open(os.path.join(qs.data_dir, name)) as f:
                check(int(f.read()) == last >> 32, "%s is the last zxid's epoch" % name)
        qs.start()
        q = KazooClient(hosts=qs.hosts)
        q.start(timeout=30)
        got = dump(q)
        # ZooKeeper's /zookeeper/config holds its membership; the import gives quorumfs's own.
        zk_config = want.pop("/zookeeper/config")
        qfs_config = got.pop("/zookeeper/config", None)
        check(zk_config[0] != b"" and qfs_config is not None and qfs_config[0] == b"",
              "/zookeeper/config is quorumfs's (empty), not ZooKeeper's membership")
        bad = [k for k in want if got.get(k) != want[k]]
        check(set(got) == set(want) and not bad,
              "every node matches (%d differ, e.g. %s)" % (len(bad), bad[:3]))
        st = q.create("/after", b"", include_data=True)[1]
        print("new write: czxid 0x%x" % st.czxid)
        check(st.czxid >> 32 > last >> 32, "a new write is in a later epoch")
        q.stop()
        q.close()
        qs.cleanup()
    finally:
        ens.cleanup()
        shutil.rmtree(work, ignore_errors=True)
    print("FAILED: %d checks" % len(failures) if failures else "PASS")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
