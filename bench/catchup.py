#!/usr/bin/python3
"""Catch-up time of a follower that missed many txns, on a running ensemble (scripts/ensemble).

    bench/catchup.py --dir ENSEMBLE_DIR --zkbench PATH --nodes 1000000 [--bytes 100]

Stops one follower (SIGTERM), loads NODES znodes of BYTES through the other members (zkbench
-w fill, 4 sessions, 100 in flight each), notes the leader's last zxid, starts the follower again
and measures start -> the follower serves (Mode: follower) and start -> its last zxid reaches
the leader's. Greps the leader's and the follower's logs for how it was synced (DIFF / SNAP / TRUNC).
Prints "RESULT catchup_s=... serving_s=... nodes=... load_s=... sync=...".
"""

import argparse
import os
import re
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "tests", "ensemble"))
import ensemble as E  # noqa: E402

SYNC_RE = re.compile(r"(Sending (DIFF|SNAP|TRUNC)|\b(DIFF|SNAP|TRUNC)\b.*(sync|follower|learner)"
                     r"|(sync|follower|learner).*\b(DIFF|SNAP|TRUNC)\b)", re.I)


def main(argv):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--dir", required=True)
    p.add_argument("--zkbench", required=True)
    p.add_argument("--nodes", type=int, default=1000000)
    p.add_argument("--bytes", type=int, default=100)
    p.add_argument("--timeout", type=float, default=900, help="for the fill")
    p.add_argument("--catchup-timeout", type=float, default=300)
    p.add_argument("--clients", type=int, default=4, help="fill sessions")
    p.add_argument("--outstanding", type=int, default=100, help="per fill session")
    a = p.parse_args(argv)
    ens = E.Ensemble.load(a.dir, attached=False)
    lid = ens.wait_healthy(timeout=120)
    ens.touch()
    ens.wait_converged(timeout=120)
    fid = [i for i in ens.voter_ids() if i != lid][-1]
    others = [i for i in ens.ids() if i != fid]
    ens.stop_member(fid)
    print("stopped follower m%d; loading %d nodes of %d B through %s" % (
        fid, a.nodes, a.bytes, others), flush=True)
    t = time.monotonic()
    out = subprocess.run([a.zkbench, "-s", ens.connect_string(others), "-w", "fill", "-n",
                          str(a.nodes), "-b", str(a.bytes), "-c", str(a.clients),
                          "-o", str(a.outstanding)],
                         capture_output=True, text=True, timeout=a.timeout)
    load_s = time.monotonic() - t
    sys.stdout.write(out.stdout)
    if out.returncode != 0:
        sys.stderr.write(out.stderr)
        print("RESULT catchup_s=- error=fill_failed")
        return 1
    target = max(s["zxid"] or 0 for s in ens.status() if s["running"])
    # The leader's log (ZooKeeper: "Sending DIFF") and the follower's ("member 2 syncs us by
    # SNAP") say how it was synced.
    logs_before = {i: (os.path.getsize(ens.log_path(i)) if os.path.exists(ens.log_path(i)) else 0)
                   for i in others + [fid]}
    t0 = time.monotonic()
    ens.start_member(fid)
    serving = caught = None
    deadline = t0 + a.catchup_timeout
    no_leader = 0.0  # time without any member serving as leader (the others' availability)
    last = t0
    while time.monotonic() < deadline:
        st = ens.member_status(fid)
        if st["serving"] and st["mode"] in ("follower", "observer") and serving is None:
            serving = time.monotonic() - t0
        if st["serving"] and st["zxid"] is not None and st["zxid"] >= target:
            caught = time.monotonic() - t0
            break
        now = time.monotonic()
        if not any(ens.member_status(i)["mode"] in ("leader", "standalone") for i in others):
            no_leader += now - last
        last = now
        time.sleep(0.05)
    sync = []
    for i in others + [fid]:
        with open(ens.log_path(i), "rb") as f:
            f.seek(logs_before[i])
            for line in f.read().decode("utf-8", "replace").splitlines():
                if SYNC_RE.search(line):
                    sync.append("m%d| %s" % (i, line.strip()[:200]))
    for line in sync[:6]:
        print("  " + line)
    kinds = sorted({k for k in ("DIFF", "SNAP", "TRUNC") for l in sync
                    if k in l or (k == "SNAP" and re.search(r"snapshot", l, re.I))})
    waited = time.monotonic() - t0
    print("follower m%d: serving after %s, at the leader's zxid 0x%x after %s; meanwhile the "
          "other members had no serving leader for %.1f s of %.1f s" % (
              fid, "%.2f s" % serving if serving else "-", target,
              "%.2f s" % caught if caught else "NOT within %.0f s" % a.catchup_timeout,
              no_leader, waited))
    print("RESULT catchup_s=%s serving_s=%s nodes=%d load_s=%.1f sync=%s no_leader_s=%.1f" % (
        "%.2f" % caught if caught else "-", "%.2f" % serving if serving else "-", a.nodes,
        load_s, "+".join(kinds) or "?", no_leader))
    return 0 if caught else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
