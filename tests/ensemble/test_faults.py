#!/usr/bin/python3
"""Real-process fault tests of an ensemble under client load, with a recorded history.

    /usr/bin/python3 tests/ensemble/test_faults.py --kind zk --members 3
    /usr/bin/python3 tests/ensemble/test_faults.py --kind quorumfsd --quorumfsd PATH --members 5
    ... [--linearizable] [--soak] [--keep] [SCENARIO ...]

Scenarios (default: all): kill-leader, kill-follower, pause-leader, partition-leader,
restart-all, failover-session. Each runs on one ensemble (started once, with the loopback proxy
on every peer link), with its own znode root and its own history:

  1. W kazoo workers (one session each, connection string over every member) run reads,
     setData, CAS, creates and sequential creates for PRE seconds;
  2. the fault: kill -9 the leader | kill -9 a follower | SIGSTOP the leader for longer than the
     session timeout, then SIGCONT | cut the leader off from every other member, then heal |
     kill -9 every member and start them all again;
  3. the recovery time (fault -> first acknowledged write invoked after it) is measured;
  4. the load goes on for POST seconds; killed members are started again;
  5. the ensemble must be healthy (one leader, the rest following), every member at the same
     last zxid with the same digest (quorumfsd: qfs_digest in mntr; ZooKeeper's own
     zk_digest_mismatches_count is only reported), every acknowledged write present on every member (per-member reads
     after a sync), the history checker must pass (linearizable writes per znode, session
     guarantees, creates; with --linearizable also linearizable reads), and a new write must
     be acknowledged.
failover-session: a session with an ephemeral node and watches whose member is killed must
resume on another member with its ephemeral node and its watches.

Exit status 0 when every scenario passed, 1 otherwise. Every process is stopped by PID at the end (and dies
with this process otherwise). On failure the history, the listings and the member logs are kept
and their directory printed. QFS_ENSEMBLE_SOAK=1 (or --soak) runs longer loads, 3 rounds.
"""

import argparse
import json
import os
import shutil
import signal
import sys
import tempfile
import threading
import time
import traceback

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import ensemble as E  # noqa: E402
import history  # noqa: E402

from kazoo.client import KazooClient, KazooState  # noqa: E402

SESSION_TIMEOUT_S = 4.0
SCENARIOS = ["kill-leader", "kill-follower", "pause-leader", "partition-leader", "restart-all",
             "failover-session", "control-lost-writes"]


class Failed(Exception):
    pass


def log(msg):
    sys.stdout.write("%s %s\n" % (time.strftime("%H:%M:%S"), msg))
    sys.stdout.flush()


def probe_cut_leader(zk, path, host, port, t, cut_s, probe):
    """Starts two threads for a leader cut off at monotonic time t for cut_s: one writes `path`
    through it alone (probe["result"], probe["after"]), one polls its srvr until it stops
    saying leader (probe["stepped_down"], seconds after t). Returns the threads."""
    def write():
        try:
            zk.create_async(path, b"x").get(timeout=cut_s - 0.5)
            probe["result"] = "acknowledged"
        except Exception as e:
            probe["result"] = type(e).__name__
        probe["after"] = time.monotonic() - t

    def watch_mode():
        while time.monotonic() < t + cut_s:
            srvr = E.four_letter(port, "srvr", 0.5, host) or ""
            if "Mode: leader" not in srvr:
                probe["stepped_down"] = time.monotonic() - t
                return
            time.sleep(0.05)
    threads = [threading.Thread(target=write), threading.Thread(target=watch_mode)]
    for th in threads:
        th.start()
    return threads


class Runner:
    def teardown(self, keep=False):
        """Stops the ensemble; removes the run's directory unless asked to keep it."""
        if self.ens is not None:
            self.ens.stop()
        if self.keep or keep:
            log("kept %s" % self.dir)
        else:
            shutil.rmtree(self.dir, ignore_errors=True)

    def __init__(self, args):
        self.a = args
        self.soak = args.soak or bool(os.environ.get("QFS_ENSEMBLE_SOAK")) or \
            bool(os.environ.get("QFS_LONG"))
        self.pre = 8.0 if self.soak else 1.5
        self.post = 20.0 if self.soak else 1.5
        self.workers = 8 if self.soak else 4
        self.rate = 50.0 if self.soak else 40.0
        self.dir = tempfile.mkdtemp(prefix="qfs-faults-%s-%d-" % (args.kind, args.members))
        self.ens = None
        self.results = []

    def start_ensemble(self):
        if self.ens is not None:
            self.ens.cleanup(keep=True)
        d = os.path.join(self.dir, "ens-%d" % len(self.results))
        self.ens = E.Ensemble.create(d, n=self.a.members, observers=self.a.observers,
                                     kind=self.a.kind, proxy=True,
                                     quorumfsd=self.a.quorumfsd, tick_ms=200,
                                     max_session_ms=int(SESSION_TIMEOUT_S * 1000),
                                     linearizable_reads=self.a.linearizable, attached=True)
        t0 = time.monotonic()
        lid = self.ens.start(timeout=120).leader()
        log("ensemble of %d %s up in %.1f s, leader m%s; %s" % (
            self.a.members, self.a.kind, time.monotonic() - t0, lid,
            E.Ensemble.describe(self.ens.status())))

    def healthy(self):
        try:
            return self.ens is not None and len(self.ens.running_ids()) == len(self.ens.ids()) \
                and self.ens.wait_healthy(timeout=30) is not None
        except E.EnsembleError:
            return False

    # ---- checks shared by the scenarios ---------------------------------------------------
    def settle_and_check(self, rec, name):
        """Every member running and healthy, converged, per-member reads, the checker, a new
        write acknowledged. Raises Failed."""
        ens = self.ens
        for i in ens.ids():
            if not ens.running(i):
                ens.start_member(i)
        try:
            lid = ens.wait_healthy(timeout=60)
            ens.touch()  # ZooKeeper's followers show zxid 0 until the epoch's first txn
            zxid, digest = ens.wait_converged(timeout=60)
        except E.EnsembleError as e:
            raise Failed(str(e))
        except Exception as e:  # touch() timed out: no write is acknowledged
            raise Failed("a write after the fault was not acknowledged: %r; %s" % (
                e, E.Ensemble.describe(ens.status())))
        if ens.kind == "zk":
            for i in ens.ids():
                mntr = E.four_letter(ens.m(i)["client_port"], "mntr") or ""
                for line in mntr.splitlines():
                    if line.startswith("zk_digest_mismatches_count"):
                        # ZooKeeper's own txn-digest self-check. Seen once in an ASan CI run
                        # (80 mismatches on a follower after kill -9 of a follower, with
                        # every acknowledged write present and the histories linearizable):
                        # reported, not counted, since ZooKeeper is here only to prove the
                        # harness and the checks below stand on their own.
                        if int(line.split()[1]) != 0:
                            log("  note: ZooKeeper m%d reports %s" % (i, line.strip()))
        listings = rec.final_reads({i: ens.client_addr(i) for i in ens.ids()})
        errors = rec.check(linearizable=self.a.linearizable)
        # a write through the new leader's ensemble, acknowledged
        zk = KazooClient(hosts=ens.connect_string(), timeout=SESSION_TIMEOUT_S)
        try:
            zk.start(timeout=30)
            zk.create(rec.root + "/done", b"ok")
        except Exception as e:
            errors.append("a write after the fault was not acknowledged: %r" % e)
        finally:
            zk.stop()
            zk.close()
        return lid, zxid, digest, listings, errors

    def keep_evidence(self, rec, name):
        d = os.path.join(self.dir, "evidence-%s" % name)
        os.makedirs(d, exist_ok=True)
        if rec is not None:
            rec.dump(os.path.join(d, "history.jsonl"))
        for i in self.ens.ids():
            try:
                shutil.copy(self.ens.log_path(i), os.path.join(d, "m%d.log" % i))
            except OSError:
                pass
        return d

    # ---- scenarios ------------------------------------------------------------------------
    def load_scenario(self, name, fault, recovery_timeout=60):
        """fault(rec) -> (t_fault, description, after) where after() ends the fault (optional)
        and runs once the recovery has been measured."""
        ens = self.ens
        rec = history.Recorder(ens.connect_string(), "/faults-%s-%d-%d" % (
                                   name, os.getpid(), len(self.results)),
                               workers=self.workers, rate=self.rate,
                               session_timeout=SESSION_TIMEOUT_S)
        rec.setup()
        rec.start()
        time.sleep(self.pre)
        t_fault, what, after = fault(rec)
        recovery = rec.wait_ok_write_after(t_fault, timeout=recovery_timeout)
        log("  %s; recovery (fault -> next acknowledged write): %s" % (
            what, "%.3f s" % recovery if recovery is not None else
            "NONE within %d s" % recovery_timeout))
        if after:
            after()
        time.sleep(self.post)
        rec.stop()
        counts = rec.counts()
        lid, zxid, digest, listings, errors = self.settle_and_check(rec, name)
        if recovery is None:
            errors.append("no write was acknowledged within %d s of the fault" %
                          recovery_timeout)
        info = "ops %s; converged at zxid 0x%x%s; leader m%s" % (
            " ".join("%s=%d" % kv for kv in sorted(counts.items())), zxid,
            " digest %s" % digest if digest else "", lid)
        return recovery, info, errors, rec

    def sc_kill_leader(self):
        def fault(rec):
            lid = self.ens.leader()
            t = time.monotonic()
            self.ens.kill(lid)
            return t, "kill -9 leader m%d" % lid, lambda: self.ens.start_member(lid)
        return self.load_scenario("kill-leader", fault)

    def sc_kill_follower(self):
        def fault(rec):
            lid = self.ens.leader()
            fid = [i for i in self.ens.voter_ids() if i != lid][-1]
            t = time.monotonic()
            self.ens.kill(fid)
            return t, "kill -9 follower m%d" % fid, lambda: self.ens.start_member(fid)
        return self.load_scenario("kill-follower", fault)

    def sc_pause_leader(self):
        def fault(rec):
            lid = self.ens.leader()
            t = time.monotonic()
            self.ens.pause(lid)
            pause_s = SESSION_TIMEOUT_S + 1.5

            def after():
                left = t + pause_s - time.monotonic()
                if left > 0:
                    time.sleep(left)
                self.ens.resume(lid)
                log("  SIGCONT m%d after %.1f s" % (lid, time.monotonic() - t))
            return t, "SIGSTOP leader m%d for %.1f s" % (lid, pause_s), after
        return self.load_scenario("pause-leader", fault)

    def sc_partition_leader(self):
        """Cut the leader off for 3.5 s. Besides the common checks: a client that can only
        reach the old leader gets no write acknowledged, and the old leader stops saying
        Mode: leader before the heal (it must step down after syncLimit × tickTime = 1 s)."""
        probe = {}
        cut_s = 3.5

        def fault(rec):
            lid = self.ens.leader()
            port = self.ens.m(lid)["client_port"]
            # a client that can only reach the old leader
            zk = KazooClient(hosts=self.ens.connect_string([lid]), timeout=SESSION_TIMEOUT_S)
            zk.start(timeout=30)
            states = probe["states"] = []
            zk.add_listener(lambda st: states.append((time.monotonic(), st)))
            self.ens.isolate(lid)
            t = time.monotonic()  # every link is cut once isolate() returns
            path = rec.root + "/minority-write"

            threads = probe_cut_leader(zk, path, "127.0.0.1", port, t, cut_s, probe)

            def after():
                left = t + cut_s - time.monotonic()
                if left > 0:
                    time.sleep(left)
                for th in threads:
                    th.join()
                zk.stop()
                zk.close()
                new = [s["id"] for s in self.ens.status() if s["mode"] == "leader"]
                self.ens.heal()
                sd = probe.get("stepped_down")
                log("  old leader m%d: stopped saying leader after %s; a write through it alone: "
                    "%s after %.2f s (client states %s); healed after %.1f s (leaders while "
                    "cut: %s)" % (lid, "%.2f s" % sd if sd is not None else "NEVER",
                                  probe["result"], probe["after"],
                                  ["%s@%.2fs" % (st, ts - t) for ts, st in states],
                                  time.monotonic() - t, new))
                probe["lid"] = lid
                probe["states"] = ["%s@%.2fs" % (st, ts - t) for ts, st in states]
            return t, "cut leader m%d off from every other member" % lid, after
        recovery, info, errors, rec = self.load_scenario("partition-leader", fault)
        if probe.get("result") == "acknowledged":
            errors.append("a write through the cut-off old leader was acknowledged")
        elif "lid" in probe and not any(st.startswith("SUSPENDED@") and
                                        float(st.split("@")[1][:-1]) < cut_s
                                        for st in probe["states"]):
            # ZooKeeper closes the client connections of a member that loses its leader (the
            # old leader included), so its clients are told at once and go elsewhere
            errors.append("the client of the cut-off old leader m%s alone was not disconnected "
                          "while the cut lasted (its write: %s after %.2f s; client states: %s)"
                          % (probe["lid"], probe["result"], probe["after"], probe["states"]))
        if "lid" in probe and probe.get("stepped_down") is None:
            errors.append("the cut-off old leader m%d still said Mode: leader %.1f s after the "
                          "cut (syncLimit × tickTime = 1 s)" % (probe["lid"], cut_s))
        return recovery, info, errors, rec

    def sc_restart_all(self):
        def fault(rec):
            t = time.monotonic()
            self.ens.kill_all()
            for i in self.ens.ids():
                self.ens.start_member(i)
            return t, "kill -9 all %d members, start them again" % len(self.ens.ids()), None
        return self.load_scenario("restart-all", fault)

    def sc_control_lost_writes(self):
        """Negative control: kill -9 every member and wipe every data dir (keeping myid), so
        every acknowledged write is really lost. The checks must catch it; this scenario passes
        only if they report lost writes."""
        def fault(rec):
            t = time.monotonic()
            self.ens.kill_all()
            for i in self.ens.ids():
                data = os.path.join(self.ens.m(i)["dir"], "data")
                shutil.rmtree(data)
                os.makedirs(data)
                with open(os.path.join(data, "myid"), "w") as f:
                    f.write("%d\n" % i)
            for i in self.ens.ids():
                self.ens.start_member(i)
            return t, "kill -9 all, wipe every data dir, start again", None
        # clients whose sessions saw newer zxids are refused by the wiped members: no recovery
        recovery, info, errors, rec = self.load_scenario("control-lost-writes", fault, 3)
        caught = [e for e in errors if "missing on" in e or "no linearization" in e]
        if caught:
            log("  the checks caught the lost writes (%d violations), e.g.: %s" % (
                len(errors), caught[0].splitlines()[0][:200]))
            return recovery, info + "; negative control caught", [], None
        return recovery, info, ["negative control: every data dir was wiped yet the checks "
                                "found no lost write"] + errors, rec

    def sc_failover_session(self):
        """An ephemeral node and watches survive the client's failover to another member."""
        ens = self.ens
        lid = ens.leader()
        victim = [i for i in ens.voter_ids() if i != lid][0]
        others = [i for i in ens.ids() if i != victim]
        root = "/faults-failover-%d-%d" % (os.getpid(), len(self.results))
        errors = []
        events = []
        states = []
        a = KazooClient(hosts=ens.connect_string([victim] + others), randomize_hosts=False,
                        timeout=SESSION_TIMEOUT_S,
                        connection_retry={"max_tries": -1, "delay": 0.05, "max_delay": 0.5})
        b = KazooClient(hosts=ens.connect_string(others), timeout=SESSION_TIMEOUT_S)
        a.add_listener(lambda s: states.append((time.monotonic(), s)))
        recovery = None
        try:
            a.start(timeout=30)
            b.start(timeout=30)
            b.ensure_path(root + "/watched")
            b.ensure_path(root + "/dir")
            port = a._connection._socket.getpeername()[1] if a._connection._socket else None
            if port != ens.m(victim)["client_port"]:
                errors.append("client A is not on m%d (port %s)" % (victim, port))
            sid = a.client_id[0]
            a.create(root + "/eph", b"mine", ephemeral=True)
            got = threading.Event()

            def on_data(ev):
                events.append(("data", ev))
                got.set()
            child_got = threading.Event()

            def on_child(ev):
                events.append(("child", ev))
                child_got.set()
            a.get(root + "/watched", watch=on_data)
            a.get_children(root + "/dir", watch=on_child)
            t = time.monotonic()
            ens.kill(victim)
            log("  kill -9 m%d, the member of session 0x%x" % (victim, sid))
            deadline = t + 30
            while time.monotonic() < deadline:
                if any(s == KazooState.SUSPENDED for _, s in states) and a.connected:
                    break
                time.sleep(0.02)
            if not a.connected:
                errors.append("client A did not reconnect within 30 s")
            else:
                ok_at = [ts for ts, s in states if s == KazooState.CONNECTED and ts > t]
                recovery = (ok_at[0] - t) if ok_at else None
                if a.client_id[0] != sid:
                    errors.append("session changed from 0x%x to 0x%x" % (sid, a.client_id[0]))
                if any(s == KazooState.LOST for _, s in states):
                    errors.append("session was lost: %s" % states)
                port = a._connection._socket.getpeername()[1]
                log("  session 0x%x resumed on port %d after %s" % (
                    sid, port, "%.3f s" % recovery if recovery else "?"))
                st = b.exists(root + "/eph")
                if st is None:
                    errors.append("the ephemeral node is gone after the failover")
                elif st.ephemeralOwner != sid:
                    errors.append("ephemeral owner 0x%x, not 0x%x" % (st.ephemeralOwner, sid))
                b.set(root + "/watched", b"changed")
                b.create(root + "/dir/child")
                if not got.wait(10):
                    errors.append("the data watch did not fire after the failover")
                if not child_got.wait(10):
                    errors.append("the child watch did not fire after the failover")
            a.stop()
            a.close()
            time.sleep(0.2)
            # closing the session removes its ephemeral node
            deadline = time.monotonic() + 10
            while b.exists(root + "/eph") is not None and time.monotonic() < deadline:
                time.sleep(0.1)
            if b.exists(root + "/eph") is not None:
                errors.append("the ephemeral node outlived its closed session")
        except Exception as e:
            errors.append("failover scenario raised %r" % e)
        finally:
            for c in (a, b):
                try:
                    c.stop()
                    c.close()
                except Exception:
                    pass
        ens.start_member(victim)
        try:
            ens.wait_healthy(timeout=60)
            zxid, digest = ens.wait_converged(timeout=60)
        except E.EnsembleError as e:
            errors.append(str(e))
            zxid, digest = 0, None
        info = "events %s; converged at zxid 0x%x" % ([k for k, _ in events], zxid)
        return recovery, info, errors, None

    # ---- driver ---------------------------------------------------------------------------
    def run(self, names):
        rounds = 3 if self.soak else 1
        for rnd in range(rounds):
            for name in names:
                if not self.healthy():
                    self.start_ensemble()
                log("== %s (%d %s members%s)%s" % (
                    name, self.a.members, self.a.kind,
                    ", linearizable reads" if self.a.linearizable else "",
                    " round %d" % (rnd + 1) if rounds > 1 else ""))
                t0 = time.monotonic()
                rec = None
                try:
                    recovery, info, errors, rec = getattr(self, "sc_" + name.replace("-", "_"))()
                except (Failed, E.EnsembleError) as e:
                    recovery, info, errors = None, "", [str(e)]
                except Exception:
                    recovery, info, errors = None, "", [traceback.format_exc()]
                took = time.monotonic() - t0
                if errors:
                    d = self.keep_evidence(rec, name)
                    self.results.append((name, False, recovery, took))
                    log("FAIL %s (%.1f s): %s" % (name, took, info))
                    for e in errors[:20]:
                        log("    " + e.replace("\n", "\n    "))
                    if len(errors) > 20:
                        log("    ... %d more" % (len(errors) - 20))
                    log("    evidence (history, listings, member logs): %s" % d)
                    self.keep = True
                else:
                    self.results.append((name, True, recovery, took))
                    log("PASS %s (%.1f s): %s" % (name, took, info))

    def summary(self):
        log("== summary: %d %s members%s" % (self.a.members, self.a.kind,
                                             ", linearizable reads" if self.a.linearizable
                                             else ""))
        for name, ok, rec, took in self.results:
            log("%-5s %-18s recovery %-9s scenario %.1f s" % (
                "PASS" if ok else "FAIL", name, "%.3f s" % rec if rec is not None else "-",
                took))
        return all(ok for _, ok, _, _ in self.results)


def main(argv):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--kind", choices=["zk", "quorumfsd"], default="zk")
    p.add_argument("--quorumfsd", default=None)
    p.add_argument("--members", type=int, default=3)
    p.add_argument("--observers", type=int, default=0, help="observers besides the members")
    p.add_argument("--linearizable", action="store_true",
                   help="quorumfsd's linearizableReads=true; reads checked as linearizable")
    p.add_argument("--soak", action="store_true")
    p.add_argument("--keep", action="store_true", help="keep the temp dir even on success")
    p.add_argument("scenarios", nargs="*", default=None)
    a = p.parse_args(argv)
    if a.kind == "quorumfsd":
        a.quorumfsd = os.path.abspath(a.quorumfsd or E.default_quorumfsd())
    names = a.scenarios or SCENARIOS
    for n in names:
        if n not in SCENARIOS:
            p.error("unknown scenario %r (known: %s)" % (n, ", ".join(SCENARIOS)))
    r = Runner(a)
    r.keep = a.keep
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))
    status = 1
    try:
        r.run(names)
        status = 0 if r.summary() else 1
    finally:
        r.teardown()
    return status


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
