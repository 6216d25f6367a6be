#!/usr/bin/python3
"""Failover time of a running ensemble (scripts/ensemble): kill -9 the leader under a light
write load and measure the time to the next acknowledged write, and to a new leader.

    bench/failover.py --dir ENSEMBLE_DIR [--rounds 5]

Each round: wait until healthy and converged; 2 kazoo writers (100 writes/s each) run 1 s;
kill -9 the leader; measure (a) kill -> first acknowledged write invoked after the kill,
(b) kill -> some other member reports Mode: leader; then start the killed member again.
Prints one line per round and "RESULT failover_median_s=... failover_max_s=...
election_median_s=...".
"""

import argparse
import os
import statistics
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "tests", "ensemble"))
import ensemble as E  # noqa: E402
import history  # noqa: E402


def main(argv):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--dir", required=True)
    p.add_argument("--rounds", type=int, default=5)
    a = p.parse_args(argv)
    ens = E.Ensemble.load(a.dir, attached=False)
    fo, el = [], []
    for r in range(a.rounds):
        ens.wait_healthy(timeout=120)
        ens.touch()
        ens.wait_converged(timeout=120)
        rec = history.Recorder(ens.connect_string(), "/failover-%d-%d" % (os.getpid(), r),
                               workers=2, rate=100, session_timeout=4.0)
        rec.setup()
        rec.start()
        time.sleep(1.0)
        lid = ens.leader()
        t = time.monotonic()
        ens.kill(lid)
        new_leader_at = None
        deadline = t + 60
        while time.monotonic() < deadline:
            st = ens.status()
            if any(s["mode"] == "leader" and s["id"] != lid for s in st):
                new_leader_at = time.monotonic() - t
                break
            time.sleep(0.01)
        rec_s = rec.wait_ok_write_after(t, timeout=60)
        rec.stop()
        ens.start_member(lid)
        print("round %d: kill -9 leader m%d -> new leader %s, next acknowledged write %s" % (
            r + 1, lid, "%.3f s" % new_leader_at if new_leader_at else "none",
            "%.3f s" % rec_s if rec_s is not None else "none"), flush=True)
        if rec_s is not None:
            fo.append(rec_s)
        if new_leader_at is not None:
            el.append(new_leader_at)
    ens.wait_healthy(timeout=120)
    if not fo:
        print("RESULT failover_median_s=- failover_max_s=- election_median_s=-")
        return 1
    print("RESULT failover_median_s=%.3f failover_min_s=%.3f failover_max_s=%.3f "
          "election_median_s=%s rounds=%d" % (
              statistics.median(fo), min(fo), max(fo),
              "%.3f" % statistics.median(el) if el else "-", len(fo)))
    return 0 if len(fo) == a.rounds else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
