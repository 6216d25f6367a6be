#!/usr/bin/python3
"""Read-only mode (readonlymode.enabled, docs/read-only.md) on a 3-member ensemble: quorumfsd,
or Apache ZooKeeper 3.8 as the control (--kind zk), the same scenario and the same checks.

  1. write /ro/a and /ro/b through the ensemble; pick a follower F;
  2. kill -9 the two other members: F has no quorum (and no peer to flap with);
  3. F turns read-only after its grace period: isro says "ro", srvr "Mode: read-only" with the
     READ-ONLY line, mntr "zk_server_state read-only";
  4. a connect request without the readOnly flag is closed unanswered; kazoo without read_only
     gets no session;
  5. a KazooClient(read_only=True) on F alone: CONNECTED_RO; reads see what was written before
     the cut; create, set, delete, sync fail with NotReadOnlyCallError; a watch can be set;
     the optional C client (--c-client) does the same with ZOO_READONLY, and zkCli.sh -r
     (Debian's zookeeper package, if installed) reads and is refused a create;
  6. heal (start the two members again): the read-only client ends up CONNECTED to a
     read-write member and writes; so does a second read-only client that listed a dead member
     first and F second (kazoo probes the first host with isro); isro on F says "rw" again.

--cut partition (quorumfsd only: a ZooKeeper member isolated by the proxy never stays looking
long enough to turn read-only, tests/ensemble/README.md) isolates F with the link proxy
instead, and the two others keep serving: a write they commit during the cut is not seen by
F's read-only client (stale, but the state before the cut), and is after the heal.

Exit 0 when every check passed. Every process is stopped by PID at the end (members die with
this process otherwise); the data dirs are kept on failure.
"""

import argparse
import os
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import ensemble as E  # noqa: E402

from kazoo.client import KazooClient  # noqa: E402
from kazoo.exceptions import NotReadOnlyCallError  # noqa: E402

failures = []
ZKCLI = "/usr/share/zookeeper/bin/zkCli.sh"


def log(msg):
    print("%s %s" % (time.strftime("%H:%M:%S"), msg), flush=True)


def check(cond, name, detail=""):
    log("%s %s%s" % ("ok" if cond else "FAIL", name, "" if cond else ": " + detail))
    if not cond:
        failures.append(name)


def raw_connect(port, read_only):
    """A bare ConnectRequest (jute) with the readOnly flag; the server's bytes until it closes,
    or the one framed answer."""
    body = struct.pack(">iqiq", 0, 0, 4000, 0) + struct.pack(">i", 16) + b"\0" * 16 + \
        (b"\1" if read_only else b"\0")
    s = socket.create_connection(("127.0.0.1", port), timeout=5)
    data = b""
    try:
        s.sendall(struct.pack(">i", len(body)) + body)
        while True:
            d = s.recv(4096)
            if not d:
                break
            data += d
            if len(data) >= 4 and len(data) >= 4 + struct.unpack(">i", data[:4])[0]:
                break
    except OSError:
        pass
    finally:
        s.close()
    return data


def wait_for(pred, timeout, step=0.1):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        v = pred()
        if v:
            return v
        time.sleep(step)
    return pred()


def expect_not_read_only(name, fn):
    try:
        fn()
        check(False, name, "succeeded on a read-only member")
    except NotReadOnlyCallError:
        check(True, name)
    except Exception as e:  # noqa: BLE001
        check(False, name, "%s: %s" % (type(e).__name__, e))


def run(args, ens):
    partition = args.cut == "partition"
    ens.start(timeout=60)
    lid = ens.wait_healthy()
    f = [i for i in ens.voter_ids() if i != lid][0]
    others = [i for i in ens.ids() if i != f]
    fport = ens.m(f)["client_port"]
    zk = KazooClient(hosts=ens.connect_string(), timeout=10.0)
    zk.start(timeout=30)
    zk.ensure_path("/ro")
    zk.create("/ro/a", b"before")
    zk.create("/ro/b", b"second")
    zk.stop()
    zk.close()
    # F has both writes once it answers a sync (it applies everything the leader had).
    zf = KazooClient(hosts="127.0.0.1:%d" % fport, timeout=10.0)
    zf.start(timeout=30)
    zf.sync("/ro")
    check(zf.get("/ro/b")[0] == b"second", "follower has the writes before the cut")
    zf.stop()
    zf.close()

    if partition:
        log("isolate member %d with the proxy" % f)
        ens.isolate(f)
    else:
        log("kill -9 members %s; member %d is cut off" % (others, f))
        for i in others:
            ens.kill(i)
    t0 = time.monotonic()
    seen = []

    def isro():
        r = E.four_letter(fport, "isro", timeout=1.0)
        if not seen or seen[-1] != r:
            seen.append(r)
        return r == "ro"

    became = wait_for(isro, 20, 0.05)
    dt = time.monotonic() - t0
    check(became, "isro says ro after losing the quorum", "isro answers: %s" % seen)
    # ZooKeeper's grace period is max(2 s, tickTime) of looking for a leader.
    check(1.5 <= dt <= 12, "turned read-only after the grace period (%.2f s)" % dt,
          "%.2f s" % dt)
    log("isro answers seen: %s" % seen)
    srvr = E.four_letter(fport, "srvr") or ""
    check("Mode: read-only" in srvr, "srvr says Mode: read-only", srvr)
    check("READ-ONLY mode; serving only read-only clients" in srvr, "srvr has the READ-ONLY line",
          srvr)
    mntr = E.four_letter(fport, "mntr") or ""
    check("zk_server_state\tread-only" in mntr, "mntr says zk_server_state read-only", mntr)
    if partition:
        # The majority goes on: a write F cannot see until the heal.
        maj = KazooClient(hosts=ens.connect_string(others), timeout=10.0)
        maj.start(timeout=30)
        maj.set("/ro/b", b"during the cut")
        maj.stop()
        maj.close()
        check(E.four_letter(ens.m(others[0])["client_port"], "isro") == "rw",
              "the majority's members say rw")

    # A client that did not ask for read-only: closed without an answer (ZooKeeper).
    got = raw_connect(fport, False)
    check(got == b"", "a connect without readOnly is closed unanswered", got.hex())
    rw = KazooClient(hosts="127.0.0.1:%d" % fport, timeout=3.0)
    try:
        rw.start(timeout=4)
        check(False, "kazoo without read_only gets no session", "got %s" % rw.client_state)
    except Exception:  # noqa: BLE001
        check(True, "kazoo without read_only gets no session")
    finally:
        rw.stop()
        rw.close()
    # With the flag: a session, and the readOnly byte set in the answer.
    got = raw_connect(fport, True)
    check(len(got) == 4 + 4 + 4 + 8 + 4 + 16 + 1 and got[-1:] == b"\1",
          "a connect with readOnly gets a read-only session", got.hex())

    states = []
    ro = KazooClient(hosts="127.0.0.1:%d" % fport, timeout=4.0, read_only=True)
    ro.add_listener(lambda s: states.append((round(time.monotonic() - t0, 2), s,
                                             ro.client_state)))
    ro.start(timeout=20)
    ro_sid = ro._session_id
    check(ro.client_state == "CONNECTED_RO", "kazoo read_only=True is CONNECTED_RO",
          ro.client_state)
    check(ro.get("/ro/a")[0] == b"before", "reads the data written before the cut")
    mntr = E.four_letter(fport, "mntr") or ""
    local = [l.split("\t")[1] for l in mntr.splitlines() if l.startswith("zk_local_sessions\t")]
    check(local and int(local[0]) >= 1, "mntr counts the read-only sessions in zk_local_sessions",
          str(local))
    check(sorted(ro.get_children("/ro")) == ["a", "b"], "lists the children written before")
    if partition:
        got = ro.get("/ro/b")[0]
        check(got == b"second", "stale but consistent: the majority's write is not seen", got)
    expect_not_read_only("create fails with NotReadOnlyCallError", lambda: ro.create("/ro/c"))
    expect_not_read_only("set fails with NotReadOnlyCallError", lambda: ro.set("/ro/a", b"x"))
    expect_not_read_only("delete fails with NotReadOnlyCallError", lambda: ro.delete("/ro/b"))
    expect_not_read_only("sync fails with NotReadOnlyCallError", lambda: ro.sync("/ro"))
    # A client listing a dead member first, then F: it lands on F read-only, and kazoo's isro
    # probe (of the first host) moves it once that member answers "rw".
    ro2 = None
    if not partition:
        ro2 = KazooClient(hosts="127.0.0.1:%d,127.0.0.1:%d" % (ens.m(others[0])["client_port"],
                                                              fport),
                          timeout=4.0, read_only=True, randomize_hosts=False)
        ro2.start(timeout=20)
        check(ro2.client_state == "CONNECTED_RO",
              "a read-only client listing a dead member first lands on F", ro2.client_state)
    events = []
    check(ro.exists("/ro/a", watch=events.append) is not None, "a watch can be set")
    check(ro.get("/ro/a")[0] == b"before", "reads go on after refused writes")

    if args.c_client:
        p = subprocess.run([args.c_client, "127.0.0.1:%d" % fport, "/ro/a", "before"],
                           capture_output=True, text=True, timeout=30)
        for line in p.stdout.splitlines():
            log("  c: " + line)
        check(p.returncode == 0, "the C client with ZOO_READONLY", p.stdout + p.stderr)

    if os.access(ZKCLI, os.X_OK):
        p = subprocess.run([ZKCLI, "-server", "127.0.0.1:%d" % fport, "-r"],
                           input="get /ro/a\ncreate /ro/z z\nquit\n", capture_output=True,
                           text=True, timeout=60)
        out = p.stdout + p.stderr
        check("ConnectedReadOnly" in out and "\nbefore\n" in out and
              "Not a read-only call: /ro/z" in out,
              "zkCli.sh -r reads and is refused a create (Not a read-only call)", out[-2000:])
    t1 = time.monotonic()
    if partition:
        log("heal the partition")
        ens.heal()
    else:
        log("heal: start members %s again" % others)
        for i in others:
            ens.start_member(i)
    wrote = None
    last_err = None
    while time.monotonic() - t1 < 45:
        if ro.client_state == "CONNECTED":
            try:
                ro.set("/ro/a", b"after")
                wrote = time.monotonic() - t1
                break
            except Exception as e:  # noqa: BLE001
                last_err = e
        time.sleep(0.2)
    log("client states: %s" % states)
    check(wrote is not None, "after the heal the read-only client writes through a read-write "
          "member" + (" (%.1f s)" % wrote if wrote else ""),
          "state %s, last error %r" % (ro.client_state, last_err))
    check(ro._session_id != ro_sid, "the read-only session was not carried over (a new one)",
          "0x%x" % ro._session_id)
    check(any(s[2] == "CONNECTED_RO" for s in states) and states[-1][2] == "CONNECTED",
          "CONNECTED_RO, then CONNECTED", str(states))
    ro.stop()
    ro.close()
    if ro2 is not None:
        moved = wait_for(lambda: ro2.client_state == "CONNECTED", 30)
        check(moved, "the client listing two members ends up read-write", ro2.client_state)
        if moved:
            ro2.set("/ro/b", b"moved")
            check(ro2.get("/ro/b")[0] == b"moved", "  and writes")
        ro2.stop()
        ro2.close()
    check(wait_for(lambda: E.four_letter(fport, "isro", timeout=1.0) == "rw", 30),
          "isro on the healed member says rw", str(E.four_letter(fport, "isro")))
    ens.wait_healthy(timeout=30)
    zk = KazooClient(hosts="127.0.0.1:%d" % fport, timeout=10.0)
    zk.start(timeout=30)
    zk.sync("/ro")
    check(zk.get("/ro/a")[0] == b"after", "the write after the heal is on the healed member")
    if partition:
        check(zk.get("/ro/b")[0] == b"during the cut",
              "the majority's write during the cut is on the healed member")
    zk.stop()
    zk.close()


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--kind", choices=["quorumfsd", "zk"], default="quorumfsd")
    ap.add_argument("--quorumfsd")
    ap.add_argument("--c-client", help="ro_c_client binary (the C client's ZOO_READONLY)")
    ap.add_argument("--cut", choices=["kill", "partition"], default="kill",
                    help="kill -9 the two others (default), or isolate F with the proxy")
    args = ap.parse_args()
    if args.cut == "partition" and args.kind == "zk":
        ap.error("--cut partition needs --kind quorumfsd")
    extra = {"readonlymode.enabled": "true"}
    if args.kind == "zk":
        # Since 3.6 ZooKeeper's read-only server can only make local sessions
        # (apache/zookeeper#1922); without these every read-only connect fails.
        extra.update({"localSessionsEnabled": "true", "localSessionsUpgradingEnabled": "true"})
    d = tempfile.mkdtemp(prefix="qfs-ro-%s-" % args.kind)
    ens = E.Ensemble.create(d, n=3, kind=args.kind, quorumfsd=args.quorumfsd, extra=extra,
                            proxy=args.cut == "partition")
    ok = False
    try:
        run(args, ens)
        ok = not failures
    except Exception as e:  # noqa: BLE001
        import traceback
        traceback.print_exc()
        failures.append("exception: %r" % e)
    finally:
        if not ok:
            for i in ens.ids():
                print(ens.log_tail(i, 30))
        ens.cleanup(keep=not ok)
        if not ok:
            log("kept %s" % d)
    log("%s: %d failed" % ("PASS" if ok else "FAIL", len(failures)))
    return 0 if ok else 1


if __name__ == "__main__":
    threading.current_thread().name = "main"
    sys.exit(main())
