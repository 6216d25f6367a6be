#!/usr/bin/python3
"""quorumfs import-zookeeper against a real Apache ZooKeeper 3.8 (docs/migration.md).

    /usr/bin/python3 tests/cli/import_zookeeper_test.py QUORUMFS QUORUMFSD [--ensemble]

A standalone ZooKeeper (Debian's package, small snapCount, TTL enabled) gets a tree through kazoo:
persistent nodes with data of several sizes, sequential, ephemeral (their session still open when
ZooKeeper is killed -9), container and TTL nodes, digest/world/ip ACLs, setData'd, setACL'd and
deleted nodes, a multi and a failed multi. Every node (data, the whole Stat, ACL, children) is
dumped before ZooKeeper is killed. Then: import, start quorumfsd on the result and compare every
node; the refusals (a flipped byte in the newest snapshot or in a log record, an unknown format, a
non-empty target); the newest snapshot moved aside gives the same tree records from the older
one.

--ensemble: a 5k-node tree imported into each of 3 members' data directories (the way
docs/migration.md gives for an ensemble); the ensemble elects, every node is compared through a
follower, the members' digests agree, and a write made after the import reaches every member.

The tree: 100k nodes made (106k in the tree; about 150 s with the sanitizer build, most of it
loading ZooKeeper and reading every node twice through kazoo).
Servers are stopped by PID and their directories removed on exit (tests/clients/server.py).
"""

import os
import shutil
import signal
import struct
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "clients"))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "ensemble"))

import ensemble as ens_lib  # noqa: E402
import server as harness  # noqa: E402
from test_kazoo import CreateContainer, CreateTTL, call  # noqa: E402
from kazoo.client import KazooClient  # noqa: E402
from kazoo.security import ACL, Id, OPEN_ACL_UNSAFE, READ_ACL_UNSAFE, make_digest_acl  # noqa: E402

ENSEMBLE = "--ensemble" in sys.argv
NODES = 5000 if ENSEMBLE else 100000
SNAP_COUNT = 5000 if ENSEMBLE else 20000
TIME_LIMIT_S = 170 if ENSEMBLE else 600
# The ephemerals' session must outlive the comparison on quorumfsd.
SESSION_MS = 120000 if ENSEMBLE else 300000
CONTAINER, TTL, TTL_SEQ = 4, 5, 6
BATCH = 1000

DIGEST = make_digest_acl("alice", "secret", all=True)
ACLS = [
    [DIGEST],
    READ_ACL_UNSAFE,
    [DIGEST, ACL(1, Id("world", "anyone"))],
    [ACL(31, Id("ip", "127.0.0.1"))],
]
SIZES = [0, 1, 10, 100, 1000, 4000]

failures = []


def check(cond, what):
    if not cond:
        failures.append(what)
        print("FAIL: " + what, flush=True)
    return cond


def wait_all(results):
    for r in results:
        r.get(timeout=60)


def acl_of(k):
    """The ACL leaf k is created with (None: the open ACL)."""
    for m, a in zip((7, 11, 13, 17), ACLS):
        if k % m == 0:
            return a
    return None


def load(zk, eph):
    """Builds the tree; returns the number of nodes made (deleted ones included)."""
    made = 0
    for top in ("/app", "/seq", "/eph", "/cont", "/ttl", "/multi", "/big"):
        zk.create(top, top.encode())
    dirs = NODES // 85 + 1  # 100 leaves each, about 12 of which get deleted
    wait_all([zk.create_async("/app/d%d" % d, b"dir") for d in range(dirs)])
    leaves = []
    for d in range(dirs):
        for j in range(100):
            leaves.append("/app/d%d/n%d" % (d, j))
    for i in range(0, len(leaves), BATCH):
        batch = []
        for k, p in enumerate(leaves[i:i + BATCH], i):
            batch.append(zk.create_async(p, b"v" * SIZES[k % len(SIZES)], acl=acl_of(k)))
        wait_all(batch)
    made += dirs + len(leaves)
    # Changes after creation: data versions, ACL versions, deletes.
    for i in range(0, len(leaves), BATCH):
        ops = []
        for k, p in enumerate(leaves[i:i + BATCH], i):
            if k % 9 == 4:
                ops.append(zk.delete_async(p))
            elif acl_of(k) is READ_ACL_UNSAFE:
                continue  # nobody may change it
            elif k % 5 == 0:
                ops.append(zk.set_async(p, b"changed %d" % k))
                if k % 25 == 0:
                    ops.append(zk.set_async(p, b"changed twice %d" % k))
            elif k % 50 == 3:
                ops.append(zk.set_acls_async(p, ACLS[2]))
        wait_all(ops)
    # Sequential nodes, some deleted (cversion and the next suffix move on).
    seq = [zk.create_async("/seq/item-", b"s", sequence=True) for _ in range(300)]
    seq_paths = [r.get(timeout=60) for r in seq]
    wait_all([zk.delete_async(p) for p in seq_paths[:50]])
    made += 300
    # Ephemerals of a session that stays open until ZooKeeper dies.
    wait_all([eph.create_async("/eph/e%d" % i, b"e", ephemeral=True) for i in range(50)])
    wait_all([eph.create_async("/eph/es-", b"es", ephemeral=True, sequence=True)
              for _ in range(20)])
    made += 70
    # Containers (with children, and never-used ones the reaper leaves alone) and TTL nodes.
    for i in range(20):
        call(zk, CreateContainer("/cont/c%d" % i, b"c", OPEN_ACL_UNSAFE, CONTAINER))
        zk.create("/cont/c%d/a" % i, b"a")
        zk.create("/cont/c%d/b" % i, b"b")
    for i in range(5):
        call(zk, CreateContainer("/cont/empty%d" % i, b"", OPEN_ACL_UNSAFE, CONTAINER))
    for i in range(20):
        call(zk, CreateTTL("/ttl/t%d" % i, b"t", OPEN_ACL_UNSAFE, TTL, 3600000 + i))
    for i in range(10):
        call(zk, CreateTTL("/ttl/ts-", b"ts", ACLS[0], TTL_SEQ, 7200000))
    zk.create("/ttl/t0/child", b"x")
    made += 20 * 3 + 5 + 30 + 1
    # Large values.
    for i in range(3):
        zk.create("/big/b%d" % i, bytes([65 + i]) * (300000 + i))
    made += 3
    # A multi that commits and one that fails (logged as an error txn).
    t = zk.transaction()
    t.create("/multi/a", b"1")
    t.create("/multi/b", b"2")
    t.set_data("/multi/a", b"one")
    t.delete("/multi/b")
    t.create("/multi/seq-", b"q", sequence=True)
    check(not any(isinstance(r, Exception) for r in t.commit()), "multi committed")
    t = zk.transaction()
    t.create("/multi/c", b"3")
    t.check("/multi/a", 99)
    res = t.commit()
    check(any(isinstance(r, Exception) for r in res), "failed multi failed")
    made += 4
    # A few changes last, so that the newest log holds txns after the newest snapshot.
    for i in range(30):
        zk.set("/app/d0/n1", b"tail %d" % i)
    zk.set_acls("/app/d0/n2", ACLS[1])
    zk.delete("/app/d0/n3")
    return made


def dump(zk):
    """{path: (data, stat tuple, acl list, children)} for every node, walking from /."""
    out = {}
    todo = ["/"]
    while todo:
        batch, todo = todo[:BATCH], todo[BATCH:]
        reqs = [(p, zk.get_async(p), zk.get_acls_async(p)) for p in batch]
        kids = []
        for p, g, a in reqs:
            data, st = g.get(timeout=60)
            acl, _ = a.get(timeout=60)
            out[p] = [data, tuple(st), [(x.perms, x.id.scheme, x.id.id) for x in acl], []]
            if st.numChildren > 0:
                kids.append((p, zk.get_children_async(p)))
        for p, r in kids:
            names = sorted(r.get(timeout=60))
            out[p][3] = names
            todo.extend((p.rstrip("/") + "/" + n) for n in names)
    return out


def compare(want, got, label):
    missing = sorted(set(want) - set(got))
    extra = sorted(set(got) - set(want))
    check(not missing, "%s: %d nodes missing, e.g. %s" % (label, len(missing), missing[:5]))
    check(not extra, "%s: %d extra nodes, e.g. %s" % (label, len(extra), extra[:5]))
    bad = [p for p in sorted(set(want) & set(got)) if want[p] != got[p]]
    for p in bad[:10]:
        w, g = want[p], got[p]
        print("  %s: zookeeper %r\n  %s  quorumfs  %r" % (
            p, [w[0][:40], w[1], w[2], w[3][:5]], " " * len(p), [g[0][:40], g[1], g[2], g[3][:5]]))
    check(not bad, "%s: %d of %d nodes differ" % (label, len(bad), len(want)))


def client(hosts, auth=True, timeout=10.0):
    c = KazooClient(hosts=hosts, timeout=timeout,
                    auth_data=[("digest", "alice:secret")] if auth else None)
    c.start(timeout=30)
    return c


def run_import(quorumfs, zk_dir, target):
    p = subprocess.run([quorumfs, "import-zookeeper", zk_dir, target], capture_output=True,
                       text=True, timeout=120)
    return p.returncode, p.stdout + p.stderr


def tree_records(path):
    """A quorumfs snapshot's records bar the file's own header and footer (which hold the time
    the file was written): the tree, byte for byte. Frames are [u32 len][u32 crc][payload]."""
    with open(path, "rb") as f:
        b = f.read()
    out, i = [], 0
    while i + 8 <= len(b):
        n = struct.unpack_from("<I", b, i)[0]
        out.append(b[i + 8:i + 8 + n])
        i += 8 + n
    return out[1:-1]


def flip(path, offset):
    with open(path, "r+b") as f:
        f.seek(offset)
        b = f.read(1)
        f.seek(offset)
        f.write(bytes([b[0] ^ 0x5a]))


def ensemble_phase(quorumfs, quorumfsd, zk_dir, want, work):
    """Imports into every member's data dir (beside its myid) and checks the ensemble."""
    ens = ens_lib.Ensemble.create(os.path.join(work, "ens"), n=3, quorumfsd=quorumfsd,
                                  max_session_ms=SESSION_MS)
    try:
        outputs = []
        for i in ens.ids():
            data = os.path.join(ens.m(i)["dir"], "data")
            rc, out = run_import(quorumfs, zk_dir, data)
            check(rc == 0, "import into member %d" % i)
            snap = [f for f in os.listdir(data) if f.startswith("snapshot.")]
            outputs.append(tree_records(os.path.join(data, snap[0])))
        check(outputs[0] == outputs[1] == outputs[2], "the three imports hold the same records")
        leader = ens.start(timeout=60).leader()
        follower = [i for i in ens.ids() if i != leader][0]
        q = client("127.0.0.1:%d" % ens.m(follower)["client_port"])
        got = dump(q)
        print("ensemble: member %d leads; %d nodes read through follower %d" %
              (leader, len(got), follower), flush=True)
        # /zookeeper/config is not imported: an ensemble shows its own membership there
        # (docs/reconfig.md), as ZooKeeper's ensembles do.
        want = dict(want)
        want.pop("/zookeeper/config", None)
        config = got.pop("/zookeeper/config", (b"",))[0].decode()
        check(config.startswith("server.") and "version=" in config,
              "/zookeeper/config of the imported ensemble is its own membership")
        compare(want, got, "follower %d of the imported ensemble" % follower)
        q.create("/after-import", b"x")
        q.stop()
        q.close()
        for i in ens.ids():
            c = client("127.0.0.1:%d" % ens.m(i)["client_port"])
            c.sync("/after-import")
            check(c.exists("/after-import") is not None, "member %d has the new write" % i)
            c.stop()
            c.close()
        digests = set(ens.member_status(i)["digest"] for i in ens.ids())
        check(len(digests) == 1, "the members' digests agree: %s" % digests)
    finally:
        ens.cleanup()


def main(argv):
    argv = [a for a in argv if a != "--ensemble"]
    if len(argv) != 3:
        sys.stderr.write("usage: %s QUORUMFS QUORUMFSD [--ensemble]\n" % argv[0])
        return 2
    quorumfs, quorumfsd = os.path.abspath(argv[1]), os.path.abspath(argv[2])
    signal.alarm(TIME_LIMIT_S)
    t0 = time.monotonic()
    work = tempfile.mkdtemp(prefix="qfs-import-")
    try:
        zks = harness.Server("zk", max_session_ms=SESSION_MS,
                             extra_config={"snapCount": SNAP_COUNT})
        zks.start()
        zk = client(zks.hosts)
        eph = client(zks.hosts, auth=False, timeout=SESSION_MS / 1000.0)
        made = load(zk, eph)
        want = dump(zk)
        print("zookeeper: %d nodes made, %d in the tree, %.1f s" %
              (made, len(want), time.monotonic() - t0), flush=True)
        check(len(want) >= NODES, "tree has >= %d nodes" % NODES)
        zk.stop()
        zk.close()
        zks.kill9()  # the ephemerals' session is still open
        eph.stop()
        eph.close()

        v2 = os.path.join(zks.data_dir, "version-2")
        snaps = sorted((f for f in os.listdir(v2) if f.startswith("snapshot.")),
                       key=lambda f: int(f.split(".")[1], 16))
        logs = sorted((f for f in os.listdir(v2) if f.startswith("log.")),
                      key=lambda f: int(f.split(".")[1], 16))
        print("zookeeper files: %s" % " ".join(snaps + logs))
        check(len(snaps) >= 2, "zookeeper wrote several snapshots")
        if ENSEMBLE:
            ensemble_phase(quorumfs, quorumfsd, zks.data_dir, want, work)
            zks.cleanup()
            return finish(t0)

        # --- import, then quorumfsd on the result ---
        qs = harness.Server("quorumfsd", quorumfsd, max_session_ms=SESSION_MS)
        t1 = time.monotonic()
        rc, out = run_import(quorumfs, zks.data_dir, qs.data_dir)
        print("import: exit %d in %.1f s\n%s" % (rc, time.monotonic() - t1, out), flush=True)
        if not check(rc == 0, "import succeeds"):
            return 1
        after = int(out.split(" and ")[1].split()[0]) if " and " in out else 0
        check(after > 0, "txns after the newest snapshot were replayed from the log")
        imported = [f for f in os.listdir(qs.data_dir) if f.startswith("snapshot.")]
        first_output = os.path.join(qs.data_dir, imported[0])
        first_records = tree_records(first_output)
        qs.start()
        q = client(qs.hosts)
        got = dump(q)
        compare(want, got, "quorumfsd after import")
        # ZooKeeper numbered /seq's 300 children 0..299 (50 since deleted): the next is 300.
        nxt = q.create("/seq/item-", b"", sequence=True)
        check(nxt == "/seq/item-0000000300", "next sequential child after import: %s" % nxt)
        # The member works on: a write gets a zxid after ZooKeeper's.
        st = q.create("/after-import", b"x", include_data=True)[1]
        last = max(v[1][1] for v in want.values())
        check(st.czxid > last, "a new write's zxid (0x%x) follows the imported ones (0x%x)"
              % (st.czxid, last))
        q.stop()
        q.close()
        qs.cleanup()
        print("compare done at %.1f s" % (time.monotonic() - t0), flush=True)

        # --- refusals ---
        newest = os.path.join(v2, snaps[-1])
        size = os.path.getsize(newest)
        flip(newest, size // 2)
        rc, out = run_import(quorumfs, zks.data_dir, os.path.join(work, "t1"))
        print("corrupt snapshot: exit %d: %s" % (rc, out.strip()))
        # Usually the seal's checksum; a flipped length field fails the parse first.
        check(rc == 1 and newest in out,
              "a flipped byte in the newest snapshot is refused, naming it")
        flip(newest, size // 2)

        newest_log = os.path.join(v2, logs[-1])
        flip(newest_log, 16 + 12 + 3)  # inside the first record's txn header
        rc, out = run_import(quorumfs, zks.data_dir, os.path.join(work, "t2"))
        print("corrupt log: exit %d: %s" % (rc, out.strip()))
        check(rc == 1 and newest_log in out and "checksum" in out,
              "a flipped byte in a log record is refused, naming the log")
        flip(newest_log, 16 + 12 + 3)

        busy = os.path.join(work, "busy")
        os.makedirs(busy)
        open(os.path.join(busy, "stray"), "w").close()
        rc, out = run_import(quorumfs, zks.data_dir, busy)
        print("non-empty target: exit %d: %s" % (rc, out.strip()))
        check(rc == 1 and "not empty" in out and busy in out, "a non-empty target is refused")

        fake = os.path.join(work, "fake", "version-2")
        os.makedirs(fake)
        with open(os.path.join(fake, "snapshot.5"), "wb") as f:
            f.write(b"NOTZK" + b"\0" * 64)
        rc, out = run_import(quorumfs, os.path.dirname(fake), os.path.join(work, "t3"))
        print("unknown format: exit %d: %s" % (rc, out.strip()))
        check(rc == 1 and "snapshot.5" in out and "not a ZooKeeper snapshot" in out,
              "a file that is not a ZooKeeper snapshot is refused")
        os.rename(os.path.join(fake, "snapshot.5"), os.path.join(fake, "snapshot.5.snappy"))
        rc, out = run_import(quorumfs, os.path.dirname(fake), os.path.join(work, "t4"))
        print("compressed: exit %d: %s" % (rc, out.strip()))
        check(rc == 1 and "snapshot.5.snappy" in out, "a compressed snapshot is refused")

        # The newest snapshot moved aside: the older one plus more log gives the same tree,
        # byte for byte.
        os.rename(newest, os.path.join(work, snaps[-1]))
        target = os.path.join(work, "older")
        rc, out = run_import(quorumfs, zks.data_dir, target)
        print("older snapshot: exit %d: %s" % (rc, out.strip()))
        if check(rc == 0 and snaps[-2] in out, "import from the older snapshot succeeds"):
            older = tree_records(os.path.join(target, os.path.basename(first_output)))
            check(older == first_records,
                  "the older snapshot plus the log gives the same tree records, byte for byte")
        zks.cleanup()
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return finish(t0)


def finish(t0):
    print("%s in %.1f s" % ("FAILED: %d checks" % len(failures) if failures else "PASS",
                            time.monotonic() - t0))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
