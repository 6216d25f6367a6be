#!/usr/bin/python3
"""A refusal is answered only once the state it was decided on is committed (docs/ensemble.md,
"Refusals").

    test_refusals.py --quorumfsd PATH

On a 3-member ensemble (tickTime 2000): follower F2 is stopped (SIGSTOP) and the log writer
thread of follower F1 is stopped alone (ptrace), so F1 runs, forwards requests and answers
pings, but acknowledges nothing: no txn can commit. A client on the leader sets /r (proposed,
not committed), then a client on F1 asks a CAS against the version the set replaces. The
leader's newest view already holds the set, so the CAS fails with BadVersion; it must not be
told so while the set is not committed: had the leader died then, the set would be lost and the
BadVersion would have come from a state that never existed (a soak's history checker found
exactly that, as a linearizability violation). The thread and F2 are resumed: the set commits,
and only then is the CAS answered. Then the same with the CAS's client on the leader itself.

Checked to fail before the fix: the forwarded CAS was answered BadVersion within milliseconds
while the set waited.
"""

import argparse
import os
import shutil
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import ensemble as E  # noqa: E402

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "netns"))
import netns  # noqa: E402

import kazoo.exceptions as KE  # noqa: E402
from kazoo.client import KazooClient  # noqa: E402
import logging  # noqa: E402

logging.getLogger("kazoo").setLevel(logging.CRITICAL)


def client(ens, i):
    zk = KazooClient(hosts=ens.client_addr(i), timeout=30.0)
    zk.start(timeout=30)
    return zk


def main(argv):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quorumfsd")
    a = ap.parse_args(argv)
    failed = []

    def check(what, cond, detail=""):
        print("%s %s%s" % ("ok  " if cond else "FAIL", what, "" if cond else " " + str(detail)),
              flush=True)
        if not cond:
            failed.append(what)

    d = tempfile.mkdtemp(prefix="qfs-refusals-")
    ens = E.Ensemble.create(d, n=3, quorumfsd=a.quorumfsd, tick_ms=2000, sync_limit=5,
                            max_session_ms=60000)
    holds = []  # resumed in any case: ("member", id) or ("thread", ThreadStop)
    zks = []

    def release():
        while holds:
            kind, h = holds.pop()
            if kind == "member":
                ens.resume(h)
            else:
                h.resume()

    try:
        ens.start(timeout=120)
        lid = ens.wait_healthy(timeout=60)
        f1, f2 = [i for i in ens.ids() if i != lid]
        writer = client(ens, lid)
        zks.append(writer)
        for name, via in (("forwarded by a follower", f1), ("on the leader", lid)):
            cas_client = client(ens, via)
            zks.append(cas_client)
            path = "/r-%d" % via
            writer.create(path, b"v0")
            cas_client.sync(path)
            version = cas_client.get(path)[1].version
            ens.pause(f2)
            holds.append(("member", f2))
            tid = netns.thread_id(ens.pid(f1), "qfs-logwriter")
            if tid is None:
                raise RuntimeError("m%d has no thread named qfs-logwriter" % f1)
            stop = netns.ThreadStop(tid)
            holds.append(("thread", stop))
            times = {}

            def note(key, r):
                times[key] = (time.monotonic(), r.exception or r.value)

            writer.set_async(path, b"v1").rawlink(lambda r: note("set", r))
            time.sleep(0.3)  # the set reaches the leader and is proposed
            cas_client.set_async(path, b"cas", version=version).rawlink(
                lambda r: note("cas", r))
            time.sleep(1.5)
            check("%s: the set is not committed while nobody can acknowledge it" % name,
                  "set" not in times, times.get("set"))
            check("%s: no answer to the CAS while the set it was refused on is not committed"
                  % name, "cas" not in times, times.get("cas"))
            t_resume = time.monotonic()
            release()
            deadline = time.monotonic() + 30
            while ("set" not in times or "cas" not in times) and time.monotonic() < deadline:
                time.sleep(0.02)
            check("%s: both answered once the followers could acknowledge" % name,
                  "set" in times and "cas" in times, times)
            if "set" in times and "cas" in times:
                check("%s: the set succeeded" % name, not isinstance(times["set"][1], Exception),
                      times["set"][1])
                check("%s: the CAS failed with BadVersion" % name,
                      isinstance(times["cas"][1], KE.BadVersionError), times["cas"][1])
                print("    set answered %.3f s and CAS %.3f s after the resume" % (
                    times["set"][0] - t_resume, times["cas"][0] - t_resume), flush=True)
            cas_client.sync(path)
            data, st = cas_client.get(path)
            check("%s: the tree holds the set" % name,
                  data == b"v1" and st.version == version + 1, (data, st))
    finally:
        release()
        for zk in zks:
            try:
                zk.stop()
                zk.close()
            except Exception:  # noqa: BLE001
                pass
        ens.stop()
        shutil.rmtree(d, ignore_errors=True)
    print("%s" % ("FAIL: " + ", ".join(failed) if failed else "PASS"))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
