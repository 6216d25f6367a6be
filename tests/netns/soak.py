#!/usr/bin/python3
"""Soak: mixed load with random faults on real network paths for as long as asked
(scripts/test --soak MINUTES; docs/faults.md, "Soak").

    /usr/bin/python3 tests/netns/soak.py --minutes M --quorumfsd PATH --shaper PATH
        --zkbench PATH [--seed S] [--keep]

Inside a namespace of its own (tests/netns/netns.py), a 3-member ensemble, each member mounting
the tree, runs for M minutes:
  - rounds of the netns fault scenarios picked at random (test_netns.py's long versions), each
    with its own kazoo history judged by the checker (tests/ensemble/checker.py);
  - zkbench (bench/) in the background: a mixed workload, 2 clients x 4 outstanding, in 30 s
    runs, counting ops and errors;
  - shells on each member's mount: `echo LINE >> log` appends and the queue recipe
    (scripts/recipes/queue put / take) in a loop, each command with its exit status.
At the end, with every fault healed: the appends acknowledged (exit 0) are in the log exactly
once and no line is there twice; no queue item is taken twice, every one taken was put, and
every put acknowledged is taken, still queued, or claimed by a take killed by its timeout.
Prints what it did (faults, ops, errors) and the verdict; exit 1 on any violation.
"""

import argparse
import collections
import os
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
import test_netns  # noqa: E402

RECIPES = os.path.join(REPO, "scripts", "recipes")


class Load:
    """zkbench runs and mount shells in the background, with their counts."""

    def __init__(self, ens, zkbench, mounts, log):
        self.ens, self.zkbench, self.mounts, self.log = ens, zkbench, mounts, log
        self.stop = threading.Event()
        self.lock = threading.Lock()
        self.counts = collections.Counter()
        self.appends = {}  # line -> "ok" | "error"
        self.puts = {}  # item -> "ok" | "error"
        self.taken = []  # (item, member)
        self.threads = []
        self.procs = set()
        self.go = threading.Event()  # cleared while a round's checks need a quiet ensemble
        self.go.set()
        self.busy = 0

    def _run(self, argv, timeout):
        self.go.wait()
        with self.lock:
            self.busy += 1
        try:
            return self._run1(argv, timeout)
        finally:
            with self.lock:
                self.busy -= 1

    def _run1(self, argv, timeout):
        p = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                             start_new_session=True)
        with self.lock:
            self.procs.add(p)
        try:
            out, err = p.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(p.pid, signal.SIGKILL)
            out, err = p.communicate()
            return 124, out, err
        finally:
            with self.lock:
                self.procs.discard(p)
        return p.returncode, out, err

    def _zkbench(self):
        while not self.stop.is_set():
            rc, out, err = self._run([self.zkbench, "-s", self.ens.connect_string(), "-w",
                                      "mixed", "-c", "2", "-o", "4", "-d", "30", "-b", "256",
                                      "-n", "200", "--warmup", "0"], 120)
            res = {}
            for line in out.splitlines():
                if line.startswith("RESULT "):
                    res = dict(kv.split("=", 1) for kv in line.split()[1:])
            with self.lock:
                self.counts["zkbench runs"] += 1
                if rc != 0 and self.go.is_set():  # not interrupted by pause()
                    self.counts["zkbench runs failed"] += 1
                self.counts["zkbench ops"] += int(res.get("ops", 0))
                self.counts["zkbench errors"] += int(res.get("errors", 0))
            if rc != 0:
                self.stop.wait(1)

    def _shell(self, i, mnt):
        rnd = random.Random(i)
        d = os.path.join(mnt, "soak")
        n = 0
        while not self.stop.is_set():
            n += 1
            x = rnd.random()
            if x < 0.5:
                line = "m%d-a%d" % (i, n)
                rc, _, _ = self._run(["sh", "-c", 'echo "$1" >> "$2"', "sh", line,
                                      os.path.join(d, "log")], 15)
                with self.lock:
                    self.appends[line] = "ok" if rc == 0 else "error"
                    self.counts["mount appends " + ("ok" if rc == 0 else "failed")] += 1
            elif x < 0.8:
                item = "m%d-q%d" % (i, n)
                rc, _, _ = self._run([os.path.join(RECIPES, "queue"), "put",
                                      os.path.join(d, "queue"), item], 15)
                with self.lock:
                    self.puts[item] = "ok" if rc == 0 else "error"
                    self.counts["queue puts " + ("ok" if rc == 0 else "failed")] += 1
            else:
                rc, out, _ = self._run(["timeout", "3", os.path.join(RECIPES, "queue"), "take",
                                        os.path.join(d, "queue")], 15)
                with self.lock:
                    if out.strip():
                        # Printed, so taken, even if its timeout killed it afterwards (while it
                        # removed its claim, which can wait out a fault).
                        self.taken.append((out.strip(), i))
                        self.counts["queue takes ok" if rc == 0 else
                                    "queue takes printed, then killed"] += 1
                    else:
                        self.counts["queue takes empty or timed out"] += 1
            self.stop.wait(rnd.uniform(0.05, 0.3))

    def wait_mounted(self, timeout=60):
        """Until every member's mount is in /proc/mounts and answers: the members mount after
        they start serving, and a directory made before that would land beneath the mount."""
        deadline = time.monotonic() + timeout
        for i, mnt in self.mounts.items():
            while True:
                with open("/proc/mounts") as f:
                    up = any(line.split()[1] == mnt and line.split()[2].startswith("fuse")
                             for line in f)
                if up and self._run(["ls", mnt], 5)[0] == 0:
                    break
                if time.monotonic() > deadline:
                    raise RuntimeError("member %d did not mount the tree on %s" % (i, mnt))
                time.sleep(0.2)

    def start(self):
        self.wait_mounted()
        os.makedirs(os.path.join(self.mounts[1], "soak", "queue"), exist_ok=True)
        with open(os.path.join(self.mounts[1], "soak", "log"), "w"):
            pass
        if self.zkbench:
            self.threads.append(threading.Thread(target=self._zkbench, daemon=True))
        for i, mnt in self.mounts.items():
            self.threads.append(threading.Thread(target=self._shell, args=(i, mnt),
                                                 daemon=True))
        for t in self.threads:
            t.start()

    def pause(self):
        """Until resume(): no new command starts; a running zkbench is interrupted (it prints
        its figures); returns once nothing runs."""
        self.go.clear()
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            with self.lock:
                if self.busy == 0:
                    return
                for p in self.procs:
                    if os.path.basename(p.args[0]) == "zkbench":
                        try:
                            os.killpg(p.pid, signal.SIGINT)
                        except ProcessLookupError:
                            pass
            time.sleep(0.1)
        self.log("soak: the load did not pause within 30 s")

    def resume(self):
        self.go.set()

    def finish(self):
        self.go.set()
        self.stop.set()
        deadline = time.monotonic() + 150
        for t in self.threads:
            t.join(max(0.1, deadline - time.monotonic()))
        with self.lock:
            for p in list(self.procs):
                try:
                    os.killpg(p.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass

    def check(self, zk):
        """Appends and queue items against the tree (kazoo, after a sync)."""
        errors = []
        zk.sync("/soak")
        if zk.exists("/soak/log") is None:
            return ["/soak/log, made through member 1's mount at the start, is not in the tree"]
        data, _ = zk.get("/soak/log")
        lines = collections.Counter(l for l in data.decode().split("\n") if l)
        for line, n in lines.items():
            if n > 1:
                errors.append("append %r is in the log %d times" % (line, n))
            if line not in self.appends:
                errors.append("the log has a line nobody appended: %r" % line)
        lost = [l for l, st in self.appends.items() if st == "ok" and lines[l] == 0]
        for l in lost[:20]:
            errors.append("acknowledged append %r is not in the log" % l)
        if len(lost) > 20:
            errors.append("... %d acknowledged appends lost in all" % len(lost))
        seen = collections.Counter(item for item, _ in self.taken)
        for item, n in seen.items():
            if n > 1:
                errors.append("queue item %r taken %d times" % (item, n))
            if item not in self.puts:
                errors.append("queue item %r taken but never put" % item)
        left = set(zk.get_children("/soak/queue"))
        queued = {self._item(zk, c) for c in left if c.startswith("item-")}
        # A take killed by its timeout after its claim (scripts/recipes/queue) leaves the item
        # as taken-TOKEN-NAME: accounted for, and counted.
        claimed = {self._item(zk, c) for c in left if c.startswith("taken-")}
        self.counts["queue items left claimed by unfinished takes"] = len(claimed)
        for item in seen:
            if item in queued:
                errors.append("queue item %r was taken and is still queued" % item)
        gone = [item for item, st in self.puts.items()
                if st == "ok" and seen[item] == 0 and item not in queued and item not in claimed]
        if gone:
            errors.append("%d acknowledged queue items neither taken, queued nor claimed: %s"
                          % (len(gone), gone[:10]))
        self.counts["log lines"] = sum(lines.values())
        self.counts["queue items left"] = len(left)
        return errors

    @staticmethod
    def _item(zk, child):
        try:
            return zk.get("/soak/queue/" + child)[0].decode()
        except Exception:
            return None


def main(argv):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--minutes", type=float, required=True)
    p.add_argument("--quorumfsd", required=True)
    p.add_argument("--shaper", required=True)
    p.add_argument("--zkbench", default=None)
    p.add_argument("--seed", type=int, default=None)
    p.add_argument("--keep", action="store_true")
    a = p.parse_args(argv)
    netns.reexec_inside(__file__, argv, int(a.minutes * 60) + 600)

    Runner, TF, E = test_netns.runner_class()
    log = TF.log
    seed = a.seed if a.seed is not None else random.randrange(1 << 30)
    rnd = random.Random(seed)
    ra = argparse.Namespace(quorumfsd=a.quorumfsd, shaper=a.shaper, zkbench=None, members=3,
                            long=True, keep=a.keep, scenarios=[])
    class SoakRunner(Runner):
        def settle_and_check(self, rec, name):
            # the background load would keep the zxids moving: quiet while members converge
            if load is not None:
                load.pause()
            try:
                return super().settle_and_check(rec, name)
            finally:
                if load is not None:
                    load.resume()

    load = None
    r = SoakRunner(ra)
    r.keep = a.keep
    r.soak = False  # one round per draw (the long loads stay)
    r.any_member = True
    mounts = {i: os.path.join(r.dir, "mnt%d" % i) for i in (1, 2, 3)}
    for d in mounts.values():
        os.makedirs(d, exist_ok=True)
    r.extra = {"mount": os.path.join(r.dir, "mnt{id}"), "mount.writeTimeoutMs": 3000}
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))
    status = 1
    t_start = time.monotonic()
    faults = collections.Counter()
    try:
        log("soak: %.1f minutes, seed %d, scenarios drawn from %s" % (
            a.minutes, seed, ", ".join(test_netns.SCENARIOS)))
        r.start_ensemble()
        load = Load(r.ens, a.zkbench, mounts, log)
        load.start()
        end = t_start + a.minutes * 60
        while time.monotonic() < end:
            name = rnd.choice(test_netns.SCENARIOS)
            faults[name] += 1
            ens = r.ens
            r.run([name])
            if not r.results[-1][1]:
                # the evidence is kept; a new ensemble would not hold the mounts' files
                log("soak: round %s failed: stopping here" % name)
                break
            assert r.ens is ens
        load.pause()
        load.finish()
        from kazoo.client import KazooClient
        r.net.heal()
        r.ens.wait_healthy(timeout=60)
        zk = KazooClient(hosts=r.ens.connect_string(), timeout=10)
        zk.start(timeout=60)
        try:
            fuse_errors = load.check(zk)
        finally:
            zk.stop()
            zk.close()
        took = time.monotonic() - t_start
        failed = [n for n, ok, _, _ in r.results if not ok]
        log("== soak summary: %.1f min, seed %d, mechanism %s" % (took / 60, seed,
                                                                   r.net.mechanism))
        log("faults: %s" % ", ".join("%s x%d" % kv for kv in sorted(faults.items())))
        log("history rounds: %d, failed: %d %s" % (len(r.results), len(failed), failed or ""))
        log("history ops: %s" % ", ".join("%s=%d" % kv for kv in sorted(r.op_totals.items())))
        log("load: %s" % ", ".join("%s=%d" % kv for kv in sorted(load.counts.items())))
        if "rtt20_creates_per_s" in r.stats:
            log("write throughput at 20 ms RTT (last round): %.0f/s" %
                r.stats["rtt20_creates_per_s"])
        for e in fuse_errors[:30]:
            log("    " + e)
        ok = not failed and not fuse_errors
        log("verdict: %s (checker: %d violating rounds; mount appends/queue: %d violations)" % (
            "PASS" if ok else "FAIL", len(failed), len(fuse_errors)))
        status = 0 if ok else 1
    finally:
        if load is not None:
            load.finish()
        try:
            r.net.cleanup()
        finally:
            if r.ens is not None:
                r.ens.stop()
                r.ens = None
            for d in mounts.values():
                if subprocess.run(["mountpoint", "-q", d]).returncode == 0:
                    subprocess.run(["umount", "-l", d])
            r.teardown(keep=bool(status))
    return status


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
