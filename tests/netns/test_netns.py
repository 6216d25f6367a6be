#!/usr/bin/python3
"""Fault scenarios on real network paths (docs/faults.md), judged by the history checker.

    /usr/bin/python3 tests/netns/test_netns.py --quorumfsd PATH --shaper PATH --zkbench PATH
        [--long] [--keep] [SCENARIO ...]

Run as root from the root namespace: the script re-runs itself inside a namespace of its own
(netns.run_in_namespace), where member i listens on 127.0.0.(10+i) and the kazoo clients dial
from 127.0.0.1, so faults between member addresses never touch client traffic. One 3-member
ensemble serves every scenario; each has its own znode root and history (tests/ensemble:
history.py, checker.py, the checks of test_faults.py after every scenario: one leader, equal
zxids and digests, every acknowledged write on every member, a linearizable history, a new
write acknowledged).

Scenarios (default: all; QFS_LONG=1 or --long makes the faults and loads longer):
  leader-isolated   the leader's links to both followers dropped both ways, its clients not;
                    a client that reaches only the old leader gets no write acknowledged
  one-way           leader -> follower dropped, then follower -> leader
  flapping          the leader's links go down and up at random every 0.2-0.8 s
  rtt-20ms          10 ms each way between every pair of members; zkbench creates measure
                    the write throughput (must exceed 10x the 50/s of one write per round trip)
  lossy             3% loss, 5% duplication, 10% reordering, 1 ms +- 0.5 ms between members
  clock-jump        the leader's CLOCK_REALTIME jumps +10 min, then -20 min, then back
  disk-stall        the leader's log writer thread (qfs-logwriter) stopped, then resumed
"""

import argparse
import os
import re
import random
import signal
import subprocess
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(REPO, "tests", "ensemble"))

import netns  # noqa: E402

SCENARIOS = ["leader-isolated", "one-way", "flapping", "rtt-20ms", "lossy", "clock-jump",
             "disk-stall"]


def parse(argv):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--quorumfsd", required=True)
    p.add_argument("--shaper", required=True)
    p.add_argument("--zkbench", default=None)
    p.add_argument("--members", type=int, default=3)
    p.add_argument("--long", action="store_true")
    p.add_argument("--keep", action="store_true")
    p.add_argument("--timeout", type=int, default=0, help="whole run (default: 170 s, long 1800)")
    p.add_argument("scenarios", nargs="*")
    a = p.parse_args(argv)
    a.long = a.long or bool(os.environ.get("QFS_LONG"))
    for n in a.scenarios:
        if n not in SCENARIOS:
            p.error("unknown scenario %r (known: %s)" % (n, ", ".join(SCENARIOS)))
    return a


def runner_class():
    """The scenario runner (a test_faults.Runner on the namespace's addresses); imported inside
    the namespace only (kazoo). Returns (Runner, test_faults, ensemble)."""
    import test_faults as TF
    import ensemble as E

    log = TF.log

    class Runner(TF.Runner):
        def __init__(self, a):
            a.kind, a.observers, a.linearizable, a.soak = "quorumfsd", 0, False, a.long
            super().__init__(a)
            self.long = a.long
            self.net = netns.Net(a.shaper, range(1, a.members + 1), log=log)
            self.stats = {}
            self.extra = {}  # config keys for every member (the soak's mounts)
            self.op_totals = {}  # history ops of every scenario, by outcome
            self.any_member = False  # the soak: clock-jump and disk-stall hit any member

        def start_ensemble(self):
            if self.ens is not None:
                self.ens.cleanup(keep=True)
            d = os.path.join(self.dir, "ens-%d" % len(self.results))
            ids = range(1, self.a.members + 1)
            os.makedirs(d, exist_ok=True)
            self.clock = {i: os.path.join(d, "clock-m%d" % i) for i in ids}
            self.ens = E.Ensemble.create(
                d, n=self.a.members, kind="quorumfsd", proxy=False, quorumfsd=self.a.quorumfsd,
                tick_ms=200, max_session_ms=int(TF.SESSION_TIMEOUT_S * 1000), attached=True,
                hosts={i: netns.member_addr(i) for i in ids}, extra=self.extra,
                env={i: netns.faketime_env(self.clock[i]) for i in ids})
            t0 = time.monotonic()
            lid = self.ens.start(timeout=120).leader()
            log("ensemble of %d quorumfsd on %s up in %.1f s, leader m%s" % (
                self.a.members, ", ".join(netns.member_addr(i) for i in ids),
                time.monotonic() - t0, lid))

        def load_scenario(self, name, fault, recovery_timeout=60):
            recovery, info, errors, rec = super().load_scenario(name, fault, recovery_timeout)
            for k, v in rec.counts().items():
                self.op_totals[k] = self.op_totals.get(k, 0) + v
            return recovery, info, errors, rec

        def effect(self, errors, what, before, key):
            """The fault must have acted: a counter of self.net moved (a test that cannot fail
            otherwise, should a rule or the shaper stop matching)."""
            now = self.net.dropped if key == "dropped" else self.net.shaped[key]
            log("  %s: %d" % (what, now - before))
            if now - before <= 0:
                errors.append("the fault did not act: no %s" % what)

        def dur(self, short, long):
            return long if self.long else short

        def timed(self, seconds, end, steps=None):
            """Runs end() after `seconds` on a thread (the recovery is measured meanwhile);
            returns after() that waits for it."""
            failed = []

            def run():
                try:
                    end()
                except Exception as e:  # the scenario fails with it (after() re-raises)
                    failed.append(e)
            th = threading.Timer(seconds, run)
            th.start()

            def after():
                th.join()
                if failed:
                    raise TF.Failed("ending the fault failed: %r" % failed[0])
            return after

        def target(self):
            """The member a clock jump or a disk stall hits: the leader, or with any_member
            (the soak) any member."""
            lid = self.ens.leader()
            return random.choice(self.ens.ids()) if self.any_member else lid

        def followers(self, lid):
            return [i for i in self.ens.voter_ids() if i != lid]

        # ---- scenarios -------------------------------------------------------------------
        def sc_leader_isolated(self):
            probe = {}
            cut_s = self.dur(4.0, 10.0)

            def fault(rec):
                lid = self.ens.leader()
                zk = TF.KazooClient(hosts=self.ens.connect_string([lid]),
                                    timeout=TF.SESSION_TIMEOUT_S)
                zk.start(timeout=30)
                self.net.isolate(lid, self.followers(lid))
                t = time.monotonic()
                path = rec.root + "/minority-write"

                ths = TF.probe_cut_leader(zk, path, self.ens.host(lid),
                                          self.ens.m(lid)["client_port"], t, cut_s, probe)

                def end():
                    for th in ths:
                        th.join()
                    zk.stop()
                    zk.close()
                    self.net.heal()
                    log("  old leader m%d stopped saying leader after %s; a write through it "
                        "alone: %s" % (lid, "%.2f s" % probe["stepped_down"]
                                       if "stepped_down" in probe else "NEVER",
                                       probe["result"]))
                    probe["lid"] = lid
                return t, "leader m%d cut off from its followers (not from its clients) for " \
                    "%.0f s" % (lid, cut_s), self.timed(cut_s, end)
            d0 = self.net.dropped
            recovery, info, errors, rec = self.load_scenario("leader-isolated", fault)
            self.effect(errors, "packets dropped between the members", d0, "dropped")
            if probe.get("result") == "acknowledged":
                errors.append("a write through the cut-off old leader alone was acknowledged")
            if "lid" in probe and "stepped_down" not in probe:
                errors.append("the cut-off old leader still said Mode: leader after %.0f s" %
                              cut_s)
            return recovery, info, errors, rec

        def sc_one_way(self):
            each = self.dur(3.0, 8.0)

            def fault(rec):
                lid = self.ens.leader()
                f = self.followers(lid)[-1]
                self.net.drop(lid, f)
                t = time.monotonic()

                def swap():
                    self.net.heal_partitions()
                    self.net.drop(f, lid)
                    log("  now m%d -> m%d dropped" % (f, lid))
                    time.sleep(each)
                    self.net.heal_partitions()
                return t, "m%d -> m%d dropped for %.0f s, then m%d -> m%d" % (
                    lid, f, each, f, lid), self.timed(each, swap)
            d0 = self.net.dropped
            recovery, info, errors, rec = self.load_scenario("one-way", fault)
            self.effect(errors, "packets dropped between the members", d0, "dropped")
            return recovery, info, errors, rec

        def sc_flapping(self):
            total = self.dur(6.0, 30.0)
            flips = []

            def fault(rec):
                lid = self.ens.leader()
                t = time.monotonic()
                rnd = random.Random()

                def flap():
                    down = False
                    while time.monotonic() < t + total:
                        if down:
                            self.net.heal_partitions()
                        else:
                            self.net.isolate(lid, self.followers(lid))
                        down = not down
                        flips.append(time.monotonic() - t)
                        time.sleep(rnd.uniform(0.2, 0.8))
                    self.net.heal_partitions()
                th = threading.Thread(target=flap)
                th.start()
                return t, "the links of leader m%d flapping for %.0f s" % (lid, total), \
                    lambda: (th.join(), log("  %d flips" % len(flips)))
            d0 = self.net.dropped
            recovery, info, errors, rec = self.load_scenario("flapping", fault)
            self.effect(errors, "packets dropped between the members", d0, "dropped")
            return recovery, info, errors, rec

        def sc_rtt_20ms(self):
            hold = self.dur(4.0, 15.0)
            figures = {}

            def bench():
                if not self.a.zkbench:
                    return
                r = subprocess.run([self.a.zkbench, "-s", self.ens.connect_string(), "-w",
                                    "create", "-c", "8", "-o", "32", "-d", "%g" % (hold - 1.5),
                                    "-b", "128", "--warmup", "0.5"],
                                   stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                   timeout=120)
                for line in r.stdout.splitlines():
                    if line.startswith("RESULT "):
                        figures.update(kv.split("=", 1) for kv in line.split()[1:])
                figures["rc"] = r.returncode

            def fault(rec):
                ids = self.ens.ids()
                self.net.shape(netns.all_pairs(ids), delay_ms=10)
                t = time.monotonic()
                th = threading.Thread(target=bench)
                th.start()

                def end():
                    th.join()
                    self.net.unshape()
                return t, "10 ms each way between every pair of members (%s) for %.0f s" % (
                    self.net.mechanism, hold), self.timed(hold, end)
            p0 = self.net.shaped["packets"]
            recovery, info, errors, rec = self.load_scenario("rtt-20ms", fault)
            self.effect(errors, "packets delayed", p0, "packets")
            if self.a.zkbench:
                ops = float(figures.get("ops_per_sec", 0))
                log("  write throughput at 20 ms RTT: %.0f creates/s (zkbench 8 x 32 "
                    "outstanding, 128 B; p50 %s ms, p99 %s ms; one write per round trip would "
                    "be 50/s)" % (ops, figures.get("p50_ms"), figures.get("p99_ms")))
                self.stats["rtt20_creates_per_s"] = ops
                if float(figures.get("p50_ms", 0)) < 20:
                    errors.append("median write latency %s ms at 20 ms RTT: the delay did not "
                                  "act" % figures.get("p50_ms"))
                if ops < 500:
                    errors.append("write throughput at 20 ms RTT is %.0f/s: the write path does "
                                  "not batch (one write per round trip is 50/s)" % ops)
                if figures.get("rc") != 0 or figures.get("errors", "0") != "0":
                    errors.append("zkbench at 20 ms RTT: exit %s, errors %s" % (
                        figures.get("rc"), figures.get("errors")))
            return recovery, info, errors, rec

        def sc_lossy(self):
            hold = self.dur(5.0, 20.0)

            def fault(rec):
                self.net.shape(netns.all_pairs(self.ens.ids()), delay_ms=1, jitter_ms=0.5,
                               loss=0.03, dup=0.05, reorder=0.10, gap_ms=5)
                t = time.monotonic()
                return t, "3%% loss, 5%% duplication, 10%% reordering, 1+-0.5 ms between " \
                    "members (%s) for %.0f s" % (self.net.mechanism, hold), \
                    self.timed(hold, self.net.unshape)
            d0, p0, u0, r0 = (self.net.dropped, self.net.shaped["packets"],
                              self.net.shaped["duplicated"], self.net.shaped["reordered"])
            recovery, info, errors, rec = self.load_scenario("lossy", fault)
            self.effect(errors, "packets lost", d0, "dropped")
            self.effect(errors, "packets shaped", p0, "packets")
            self.effect(errors, "packets duplicated", u0, "duplicated")
            self.effect(errors, "packets reordered", r0, "reordered")
            return recovery, info, errors, rec

        def sc_clock_jump(self):
            each = self.dur(3.0, 10.0)
            seen = {"steps": []}

            def fault(rec):
                lid = self.target()
                rc = self.clock[lid]
                logs = {i: os.path.getsize(self.ens.log_path(i)) for i in self.ens.ids()}
                seen["leader"] = self.ens.leader() == lid
                zk = None
                if seen["leader"]:
                    zk = TF.KazooClient(hosts=self.ens.connect_string([lid]),
                                        timeout=TF.SESSION_TIMEOUT_S)
                    zk.start(timeout=30)
                n = [0]

                def step(offset):
                    """Sets the offset and waits until it acts: the leader stamps ctime, so a
                    node created through it shows its clock (libfaketime takes up to ~10 s to
                    re-read the file in a busy member); a follower shows nothing to clients."""
                    netns.set_clock_offset(rc, offset)
                    t0 = time.monotonic()
                    skew = None
                    while zk is not None and time.monotonic() < t0 + 20:
                        try:
                            n[0] += 1
                            st = zk.create(rec.root + "/jumped-%d" % n[0], b"",
                                           include_data=True)[1]
                            skew = st.ctime / 1000.0 - time.time()
                            if abs(skew - offset) < 60:
                                break
                        except Exception as e:
                            skew = repr(e)
                        time.sleep(0.2)
                    if zk is None:
                        time.sleep(10)
                    seen["steps"].append((offset, skew, time.monotonic() - t0))

                step(600)
                t = time.monotonic()

                def later():
                    try:
                        step(-600)
                        time.sleep(each)
                        step(0)
                    finally:
                        if zk is not None:
                            zk.stop()
                            zk.close()
                    with rec._lock:
                        seen["expired"] = sum(1 for op in rec.ops if op["invoke"] >= t and
                                              op["result"].get("error") ==
                                              "SessionExpiredError")
                        ours = {op.get("session") for op in rec.ops} - {None, "0"}
                    # the workload's sessions the members expired meanwhile (logs since the jump;
                    # sessions earlier scenarios left behind expire too and are not counted)
                    seen["logged"] = 0
                    for i, off in logs.items():
                        with open(self.ens.log_path(i), "rb") as f:
                            f.seek(off)
                            for line in f:
                                m = re.search(rb"session 0x([0-9a-f]+) expired", line)
                                if m and m.group(1).decode() in ours:
                                    seen["logged"] += 1
                return t, "m%d%s's CLOCK_REALTIME +10 min for %.0f s, then -10 min for %.0f s, " \
                    "then back" % (lid, " (leader)" if seen["leader"] else "", each, each), \
                    self.timed(each, later)
            recovery, info, errors, rec = self.load_scenario("clock-jump", fault)
            log("  during the jumps: %s history ops ended in SessionExpired; %s session "
                "expiries logged by the members" % (seen.get("expired"), seen.get("logged")))
            self.stats["clock_jump_expired_sessions"] = seen.get("logged")
            # Session deadlines run on the monotonic clock (docs/faults.md): no jump of the wall
            # clock may expire a live session of the workload.
            if seen.get("expired") or seen.get("logged"):
                errors.append("a wall-clock jump expired live sessions of the workload (%s ops "
                              "ended in SessionExpired, %s expiries logged)"
                              % (seen.get("expired"), seen.get("logged")))
            for offset, skew, took in seen["steps"]:
                if not seen.get("leader"):
                    continue
                ok = isinstance(skew, float) and abs(skew - offset) < 60
                log("  offset %+d s: a node created through the leader has ctime %s after "
                    "%.1f s" % (offset, "%+.0f s from this clock" % skew if
                                isinstance(skew, float) else skew, took))
                if not ok:
                    errors.append("the clock step to %+d s did not act within 20 s: ctime "
                                  "%s" % (offset, skew))
            return recovery, info, errors, rec

        def sc_disk_stall(self):
            stall = self.dur(3.0, 10.0)

            def fault(rec):
                lid = self.target()
                pid = self.ens.pid(lid)
                tid = netns.thread_id(pid, "qfs-logwriter")
                if tid is None:
                    raise TF.Failed("m%d has no thread named qfs-logwriter" % lid)
                stop = netns.ThreadStop(tid)
                t = time.monotonic()
                state = stop.state()

                if state != "t":
                    stop.resume()
                    raise TF.Failed("the log writer thread %d is in state %s, not stopped" % (
                        tid, state))

                def end():
                    stop.resume()  # raises unless the thread runs again
                    log("  log writer thread %d of m%d was in state %s; resumed (state %s)" % (
                        tid, lid, state, stop.state()))
                return t, "m%d's log writer thread stopped for %.0f s" % (lid, stall), \
                    self.timed(stall, end)
            return self.load_scenario("disk-stall", fault)

    return Runner, TF, E


def main(argv):
    a = parse(argv)
    netns.reexec_inside(__file__, argv, a.timeout or (1800 if a.long else 170))
    Runner, TF, E = runner_class()
    log = TF.log

    r = Runner(a)
    r.keep = a.keep
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))
    status = 1
    try:
        r.run(a.scenarios or SCENARIOS)
        status = 0 if r.summary() else 1
    finally:
        try:
            r.net.cleanup()
        finally:
            r.teardown()
    return status


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
