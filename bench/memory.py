#!/usr/bin/python3
"""Memory of each member for the same tree: quorumfsd against Apache ZooKeeper 3.8.

    bench/memory.py --zkbench PATH [--quorumfsd PATH] [--members 3] [--nodes 1000000]
                    [--bytes 100] [--dir DIR] [--only zk|quorumfs]

For each side: starts an ensemble with scripts/ensemble's library, notes every member's resident
memory (VmRSS) with the empty tree, loads NODES znodes of BYTES (zkbench -w fill, 4 sessions,
100 in flight each), waits until every member has applied them, and notes VmRSS and its peak
(VmHWM) again. For ZooKeeper it also forces a full GC in each JVM first (jcmd GC.run) and reads
the heap in use after it, so that garbage the JVM has not collected yet is not counted against
it; its RSS is then measured after that GC. ZooKeeper runs as scripts/ensemble starts it
(SerialGC, -Xmx from $QFS_ZK_HEAP, default here 2g as in bench/ensemble_compare.sh).

Prints one "RESULT side=... member=... role=... rss_empty_mib=... rss_mib=... hwm_mib=...
[heap_empty_mib=... heap_used_mib=...]" line per member and a table.
"""

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(REPO, "tests", "ensemble"))
import ensemble as E  # noqa: E402


def proc_kib(pid, field):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return None


def zk_heap_used_kib(pid):
    """Runs a full GC in the JVM and returns the heap in use after it (KiB), or None."""
    try:
        subprocess.run(["jcmd", str(pid), "GC.run"], capture_output=True, timeout=120, check=True)
        out = subprocess.run(["jcmd", str(pid), "GC.heap_info"], capture_output=True, text=True,
                             timeout=60, check=True).stdout
    except (subprocess.SubprocessError, OSError):
        return None
    # "def new generation   total 9792K, used 1234K ..." and "tenured generation total ..., used"
    used = [int(x) for x in re.findall(r"generation\s+total \d+K, used (\d+)K", out)]
    return sum(used) if used else None


def measure(ens):
    rows = {}
    for s in ens.status():
        pid = ens.pid(s["id"])
        if pid is None:
            raise E.EnsembleError("member %d is not running" % s["id"])
        row = {"role": s["mode"], "pid": pid}
        if ens.kind == "zk":
            row["heap_used"] = zk_heap_used_kib(pid)
        row["rss"] = proc_kib(pid, "VmRSS")
        row["hwm"] = proc_kib(pid, "VmHWM")
        rows[s["id"]] = row
    return rows


def run_side(kind, a, base):
    d = os.path.join(base, kind)
    ens = E.Ensemble.create(d, n=a.members, kind=kind, quorumfsd=a.quorumfsd, attached=True)
    try:
        ens.start(timeout=180)
        ens.touch()  # one txn, so that ZooKeeper's followers report the leader's zxid too
        ens.wait_converged(timeout=120)
        empty = measure(ens)
        t = time.monotonic()
        out = subprocess.run([a.zkbench, "-s", ens.connect_string(), "-w", "fill", "-n",
                              str(a.nodes), "-b", str(a.bytes), "-c", "4", "-o", "100"],
                             capture_output=True, text=True, timeout=a.timeout)
        if out.returncode != 0:
            raise E.EnsembleError("fill failed: %s" % out.stderr.strip()[-500:])
        load_s = time.monotonic() - t
        ens.touch()
        ens.wait_converged(timeout=300)
        full = measure(ens)
    finally:
        ens.stop()
    side = "zookeeper" if kind == "zk" else "quorumfs"
    for i in sorted(full):
        r, e = full[i], empty[i]
        extra = ""
        if r.get("heap_used") is not None and e.get("heap_used") is not None:
            extra = " heap_empty_mib=%.1f heap_used_mib=%.1f" % (e["heap_used"] / 1024,
                                                                 r["heap_used"] / 1024)
        print("RESULT side=%s member=%d role=%s nodes=%d bytes=%d load_s=%.1f rss_empty_mib=%.1f "
              "rss_mib=%.1f hwm_mib=%.1f%s" % (side, i, r["role"], a.nodes, a.bytes, load_s,
                                               e["rss"] / 1024, r["rss"] / 1024,
                                               r["hwm"] / 1024, extra), flush=True)
    return {i: (full[i], empty[i]) for i in full}


def main(argv):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--zkbench", required=True)
    p.add_argument("--quorumfsd", default=None)
    p.add_argument("--members", type=int, default=3)
    p.add_argument("--nodes", type=int, default=1000000)
    p.add_argument("--bytes", type=int, default=100)
    p.add_argument("--dir", default=None, help="parent of the ensembles' dirs (default /tmp)")
    p.add_argument("--only", choices=("zk", "quorumfs"), default=None)
    p.add_argument("--timeout", type=float, default=1800, help="for each fill")
    a = p.parse_args(argv)
    os.environ.setdefault("QFS_ZK_HEAP", "2g")
    base = tempfile.mkdtemp(prefix="qfs-memory-", dir=a.dir)
    res = {}
    try:
        for kind in ("zk", "quorumfsd"):
            if a.only and (a.only == "zk") != (kind == "zk"):
                continue
            res[kind] = run_side(kind, a, base)
    finally:
        shutil.rmtree(base, ignore_errors=True)
    print()
    # Leader beside leader, followers beside followers (member ids differ between the sides).
    def ordered(side):
        return sorted(side.values(), key=lambda fe: (fe[0]["role"] != "leader", fe[0]["pid"]))
    zk, q = ordered(res.get("zk", {})), ordered(res.get("quorumfsd", {}))
    print("| role | ZooKeeper RSS MiB (heap in use after GC) | quorumfsd RSS MiB | quorumfsd / ZooKeeper |")
    print("|---|--:|--:|--:|")
    for k in range(max(len(zk), len(q))):
        zr = zk[k][0] if k < len(zk) else None
        qr = q[k][0] if k < len(q) else None
        role = (zr or qr)["role"]
        zs = "%.0f (%.0f)" % (zr["rss"] / 1024, (zr.get("heap_used") or 0) / 1024) if zr else "–"
        qs = "%.0f" % (qr["rss"] / 1024) if qr else "–"
        ratio = "%.2f" % (qr["rss"] / zr["rss"]) if zr and qr else "–"
        print("| %s | %s | %s | %s |" % (role, zs, qs, ratio))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
