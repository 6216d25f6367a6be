#!/usr/bin/python3
"""Faults on real network paths: a network namespace of the test's own, one loopback address per
member, and packet-level faults between address pairs (docs/faults.md).

Outside (the root namespace):

    rc = run_in_namespace(argv, timeout)   # ip netns add qfs-netns-PID, lo up, 127.0.0.11..,
                                           # runs argv inside, then always tears down

Inside (what the scenarios use; every member and client runs in the namespace):

    net = Net(shaper="path/qfs_shaper", members=[1, 2, 3])
    net.addr(1)                      # "127.0.0.11"; clients keep 127.0.0.1
    net.partition(1, 2)              # both directions; net.drop(1, 2) is 1 -> 2 only
    net.heal()                       # every partition, loss rule and shaper
    net.shape([(1, 2), (2, 1)], delay_ms=10, jitter_ms=0, loss=0, dup=0, reorder=0)
    net.cleanup()

Mechanisms, in this order: `tc netem` on the namespace's lo with a u32 filter per address pair,
when the kernel has the netem qdisc; otherwise netfilter: DROP rules in INPUT between address
pairs (a packet leaves its sender and is lost on the way, so the sender's TCP only sees
silence), `-m statistic --mode random` DROP for loss, and NFQUEUE to qfs_shaper (shaper.c) for
delay, jitter, duplication and reordering of the real segments. Partitions are always netfilter
rules. Everything lives in chains QFS-IN/QFS-OUT of the namespace's own tables, so it dies with
the namespace.

Teardown (run_in_namespace): the inner process group is killed, then every process the kernel
still lists in the namespace (`ip netns pids`: only ours can be there), then the namespace is
deleted. Namespaces named qfs-netns-PID whose PID is gone (a harness killed with SIGKILL) are
removed at the next start.
"""

import os
import random
import signal
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
PREFIX = "qfs-netns-"
MEMBER_BASE = 10  # member i lives on 127.0.0.(10 + i); 127.0.0.1 is left to the clients
DUP_MARK = 0x5153  # qfs_shaper's duplicates carry it; the NFQUEUE rule lets them pass


def member_addr(i):
    return "127.0.0.%d" % (MEMBER_BASE + i)


def sh(argv, check=True, quiet=False):
    r = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    if check and r.returncode != 0:
        raise RuntimeError("%s: exit %d: %s" % (" ".join(argv), r.returncode, r.stderr.strip()))
    return r


# ---- outside: the namespace's life -----------------------------------------------------------

def _remove_stale():
    r = sh(["ip", "netns", "list"], check=False)
    for line in r.stdout.splitlines():
        name = line.split()[0] if line.split() else ""
        if not name.startswith(PREFIX):
            continue
        try:
            pid = int(name[len(PREFIX):])
        except ValueError:
            continue
        if os.path.exists("/proc/%d" % pid):
            continue  # its harness still runs
        _destroy(name)


def _pids_in(name):
    r = sh(["ip", "netns", "pids", name], check=False)
    return [int(p) for p in r.stdout.split() if p.isdigit()]


def _destroy(name):
    # Every process in the namespace is ours: we made it and ran the harness in it.
    for _ in range(50):
        pids = _pids_in(name)
        if not pids:
            break
        for p in pids:
            try:
                os.kill(p, signal.SIGKILL)
            except ProcessLookupError:
                pass
        time.sleep(0.1)
    sh(["ip", "netns", "del", name], check=False)


def _pdeathsig():
    import ctypes
    ctypes.CDLL(None).prctl(1, signal.SIGKILL, 0, 0, 0)  # PR_SET_PDEATHSIG


def available():
    """None when namespaces, iptables and addresses on lo work here; otherwise why not."""
    if os.geteuid() != 0:
        return "needs root (network namespaces, iptables)"
    for tool in ("ip", "iptables"):
        if subprocess.run(["sh", "-c", "command -v " + tool], stdout=subprocess.DEVNULL).returncode:
            return "no %s (scripts/setup installs it)" % tool
    return None


def run_in_namespace(argv, timeout, members=9):
    """Runs argv inside a fresh namespace (lo up, 127.0.0.11..10+members on it); returns its exit
    status (124 on timeout). The namespace and everything in it is gone when this returns."""
    _remove_stale()
    name = PREFIX + str(os.getpid())
    sh(["ip", "netns", "add", name])
    proc = None
    status = 1
    try:
        ex = ["ip", "netns", "exec", name]
        sh(ex + ["ip", "link", "set", "lo", "up"])
        for i in range(1, members + 1):
            sh(ex + ["ip", "addr", "add", member_addr(i) + "/8", "dev", "lo"])
        env = dict(os.environ, QFS_NETNS=name)
        # A SIGTERM (ctest's timeout) still runs the teardown below; a SIGKILL of this process
        # kills the inner one (PR_SET_PDEATHSIG), whose members die with it, and the next run
        # removes the namespace.
        signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
        proc = subprocess.Popen(ex + argv, env=env, start_new_session=True,
                                preexec_fn=_pdeathsig)
        try:
            status = proc.wait(timeout)
        except subprocess.TimeoutExpired:
            print("netns: %s still running after %d s: killed" % (argv[0], timeout), flush=True)
            status = 124
    finally:
        if proc is not None and proc.poll() is None:
            try:
                os.killpg(proc.pid, signal.SIGTERM)
                proc.wait(10)
            except (ProcessLookupError, subprocess.TimeoutExpired):
                pass
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            proc.wait()
        _destroy(name)
    # the teardown is part of the test: a namespace left behind fails the run
    left = sh(["ip", "netns", "list"], check=False).stdout.split()
    if name in left or os.path.exists("/run/netns/" + name):
        print("netns: FAIL: namespace %s is still there after the teardown" % name, flush=True)
        return 1
    print("netns: namespace %s and everything in it removed" % name, flush=True)
    return status


def inside():
    """True inside a namespace made by run_in_namespace."""
    return bool(os.environ.get("QFS_NETNS"))


def reexec_inside(script, argv, timeout, members=9):
    """For a test script's main(): outside, run `script argv` in a fresh namespace and exit with
    its status; inside, return."""
    if inside():
        return
    why = available()
    if why:
        print("SKIP: %s" % why)
        sys.exit(77)
    sys.exit(run_in_namespace([sys.executable, os.path.abspath(script)] + argv, timeout,
                              members))


# ---- inside: faults between address pairs ----------------------------------------------------

class Net:
    def __init__(self, shaper, members, log=None):
        self.shaper = shaper
        self.members = list(members)
        self.log = log or (lambda m: None)
        self.shapers = []  # (Popen, queue)
        self.next_queue = 1
        self.next_band = 2
        self.rules = 0
        self.dropped = 0  # packets the partition and loss rules dropped, summed at each heal
        self.shaped = {"packets": 0, "duplicated": 0, "reordered": 0}  # qfs_shaper's counts
        sh(["iptables", "-N", "QFS-IN"], check=False)
        sh(["iptables", "-N", "QFS-OUT"], check=False)
        if sh(["iptables", "-C", "INPUT", "-j", "QFS-IN"], check=False).returncode:
            sh(["iptables", "-I", "INPUT", "-j", "QFS-IN"])
        if sh(["iptables", "-C", "OUTPUT", "-j", "QFS-OUT"], check=False).returncode:
            sh(["iptables", "-I", "OUTPUT", "-j", "QFS-OUT"])
        self.mechanism = self._probe_netem()
        self.log("shaping mechanism: %s (kernel %s)" % (self.mechanism, os.uname().release))

    def addr(self, i):
        return member_addr(i)

    @staticmethod
    def _probe_netem():
        r = sh(["tc", "qdisc", "add", "dev", "lo", "root", "handle", "1:", "prio", "bands", "16",
                "priomap"] + ["0"] * 16, check=False)
        if r.returncode == 0:
            r = sh(["tc", "qdisc", "add", "dev", "lo", "parent", "1:2", "handle", "20:", "netem",
                    "delay", "0ms"], check=False)
            sh(["tc", "qdisc", "del", "dev", "lo", "root"], check=False)
            if r.returncode == 0:
                return "netem"
        return "netfilter"

    # partitions: DROP on arrival, so the sender's stack sees silence as on a real network
    def drop(self, a, b):
        """Packets from member a to member b are lost (one way)."""
        sh(["iptables", "-A", "QFS-IN", "-s", self.addr(a), "-d", self.addr(b), "-j", "DROP"])
        self.rules += 1

    def partition(self, a, b):
        self.drop(a, b)
        self.drop(b, a)

    def isolate(self, a, others=None):
        for b in (others or self.members):
            if b != a:
                self.partition(a, b)

    def count_dropped(self, only_loss=False):
        """Packets dropped by the rules of QFS-IN now (all, or the loss rules only)."""
        n = 0
        for line in sh(["iptables", "-L", "QFS-IN", "-v", "-x", "-n"]).stdout.splitlines()[2:]:
            f = line.split()
            if f and f[0].isdigit() and (not only_loss or "statistic" in line):
                n += int(f[0])
        return n

    def heal_partitions(self):
        self.dropped += self.count_dropped()
        sh(["iptables", "-F", "QFS-IN"])
        self.rules = 0

    def shape(self, pairs, delay_ms=0, jitter_ms=0, loss=0.0, dup=0.0, reorder=0.0, gap_ms=10):
        """Delay (± jitter), loss, duplication and reordering of every packet from a to b for
        each (a, b) in pairs (probabilities in 0..1)."""
        pairs = list(pairs)
        if self.mechanism == "netem":
            band = self.next_band
            self.next_band += 1
            if band == 2:
                sh(["tc", "qdisc", "add", "dev", "lo", "root", "handle", "1:", "prio", "bands",
                    "16", "priomap"] + ["0"] * 16)
            args = ["delay", "%gms" % delay_ms]
            if jitter_ms:
                args.append("%gms" % jitter_ms)
            if loss:
                args += ["loss", "%g%%" % (loss * 100)]
            if dup:
                args += ["duplicate", "%g%%" % (dup * 100)]
            if reorder:
                args += ["reorder", "%g%%" % (100 - reorder * 100)]  # netem: % sent at once
            sh(["tc", "qdisc", "add", "dev", "lo", "parent", "1:%d" % band, "handle",
                "%d:" % (band * 10), "netem"] + args)
            for a, b in pairs:
                sh(["tc", "filter", "add", "dev", "lo", "parent", "1:", "protocol", "ip", "prio",
                    "1", "u32", "match", "ip", "src", self.addr(a) + "/32", "match", "ip", "dst",
                    self.addr(b) + "/32", "flowid", "1:%d" % band])
            return
        if loss:
            for a, b in pairs:
                sh(["iptables", "-A", "QFS-IN", "-s", self.addr(a), "-d", self.addr(b), "-m",
                    "statistic", "--mode", "random", "--probability", "%g" % loss, "-j", "DROP"])
        if delay_ms or jitter_ms or dup or reorder:
            q = self.next_queue
            self.next_queue += 1
            p = subprocess.Popen([self.shaper, "--queue", str(q), "--delay", "%g" % delay_ms,
                                  "--jitter", "%g" % jitter_ms, "--dup", "%g" % dup,
                                  "--reorder", "%g" % reorder, "--gap", "%g" % gap_ms,
                                  "--mark", str(DUP_MARK),
                                  "--seed", str(random.randrange(1 << 30))],
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            if p.stdout.readline().split()[:1] != ["ready"]:
                p.kill()
                p.wait()
                raise RuntimeError("qfs_shaper did not start")
            self.shapers.append((p, q))
            for a, b in pairs:
                sh(["iptables", "-A", "QFS-OUT", "-s", self.addr(a), "-d", self.addr(b), "-m",
                    "mark", "!", "--mark", str(DUP_MARK), "-j", "NFQUEUE", "--queue-num", str(q),
                    "--queue-bypass"])

    def unshape(self):
        if self.mechanism == "netem":
            sh(["tc", "qdisc", "del", "dev", "lo", "root"], check=False)
            self.next_band = 2
        sh(["iptables", "-F", "QFS-OUT"])
        # loss rules live in QFS-IN beside the partitions
        self.dropped += self.count_dropped(only_loss=True)
        r = sh(["iptables", "-S", "QFS-IN"])
        for line in r.stdout.splitlines():
            if "statistic" in line and line.startswith("-A "):
                sh(["iptables", "-D"] + line.split()[1:])
        for p, _ in self.shapers:
            p.terminate()
        for p, q in self.shapers:
            try:
                _, err = p.communicate(timeout=5)
            except subprocess.TimeoutExpired:
                p.kill()
                _, err = p.communicate()
            # "qfs_shaper: queue N: P packets, D duplicated (F failed), R held back ..."
            words = err.replace(",", " ").split()
            for key, word in (("packets", "packets"), ("duplicated", "duplicated"),
                              ("reordered", "held")):
                if word in words:
                    i = words.index(word)
                    if i > 0 and words[i - 1].isdigit():
                        self.shaped[key] += int(words[i - 1])
            self.log("  " + err.strip())
        self.shapers = []

    def heal(self):
        self.unshape()
        self.heal_partitions()

    def cleanup(self):
        try:
            self.heal()
        finally:
            for p, _ in self.shapers:
                if p.poll() is None:
                    p.kill()
                    p.wait()


def all_pairs(ids):
    return [(a, b) for a in ids for b in ids if a != b]


# ---- inside: a member's threads and clock ----------------------------------------------------

def thread_id(pid, name):
    """The TID of pid's thread called `name` (/proc/PID/task/*/comm), or None."""
    try:
        for tid in os.listdir("/proc/%d/task" % pid):
            try:
                with open("/proc/%d/task/%s/comm" % (pid, tid)) as f:
                    if f.read().strip() == name:
                        return int(tid)
            except OSError:
                pass
    except OSError:
        pass
    return None


class ThreadStop:
    """Stops one thread of another process and nothing else: PTRACE_SEIZE + PTRACE_INTERRUPT
    (a SIGSTOP, even sent with tgkill, stops every thread of the process). resume() detaches.
    Only the thread that attached may detach (ptrace's tracer is a thread), so a thread of our
    own does both; if this process dies first the kernel detaches and the thread runs on."""
    SEIZE, INTERRUPT, DETACH = 0x4206, 0x4207, 17
    WALL = 0x40000000

    def __init__(self, tid):
        import ctypes
        import threading
        self.ctypes = ctypes
        self.libc = ctypes.CDLL(None, use_errno=True)
        self.libc.ptrace.argtypes = [ctypes.c_long, ctypes.c_long, ctypes.c_void_p,
                                     ctypes.c_void_p]
        self.tid = tid
        self.error = None
        self.stopped = threading.Event()
        self.release = threading.Event()
        self.done = threading.Event()
        self.thread = threading.Thread(target=self._tracer, daemon=True)
        self.thread.start()
        self.stopped.wait(10)
        if self.error:
            raise OSError(self.error)

    def _call(self, req, what):
        if self.libc.ptrace(req, self.tid, None, None) != 0:
            e = self.ctypes.get_errno()
            raise OSError(e, "%s %d: %s" % (what, self.tid, os.strerror(e)))

    def _tracer(self):
        try:
            self._call(self.SEIZE, "PTRACE_SEIZE")
            self._call(self.INTERRUPT, "PTRACE_INTERRUPT")
            os.waitpid(self.tid, self.WALL)  # it is stopped
        except OSError as e:
            self.error = str(e)
            self.stopped.set()
            return
        self.stopped.set()
        self.release.wait()
        try:
            self._call(self.DETACH, "PTRACE_DETACH")
        except OSError as e:
            self.error = str(e)
        self.done.set()

    def state(self):
        try:
            with open("/proc/%d/stat" % self.tid) as f:
                s = f.read()
            return s[s.rindex(")") + 2]
        except OSError:
            return None

    def resume(self):
        """Detaches; raises if the thread could not be let go."""
        self.release.set()
        self.done.wait(10)
        self.thread.join(10)
        if self.error:
            raise OSError(self.error)
        if self.state() in ("t", "T"):
            raise OSError("thread %d still stopped after PTRACE_DETACH" % self.tid)


FAKETIME_LIB = "/usr/lib/x86_64-linux-gnu/faketime/libfaketimeMT.so.1"


def faketime_env(rc_path):
    """The environment that lets a member's CLOCK_REALTIME be moved at run time by writing an
    offset ("+600s", "-600s", "+0") to rc_path (libfaketime re-reads it within its one-second
    cache, though a jump took 3 to 10 s to act in a busy member: the scenario waits for it;
    re-reading at every call, FAKETIME_NO_CACHE, costs a file read per clock call. CLOCK_MONOTONIC
    is left alone, as an NTP step would)."""
    with open(rc_path, "w") as f:
        f.write("+0\n")
    asan = os.environ.get("ASAN_OPTIONS", "")
    return {"LD_PRELOAD": FAKETIME_LIB, "FAKETIME_TIMESTAMP_FILE": rc_path,
            "FAKETIME_CACHE_DURATION": "1", "FAKETIME_DONT_FAKE_MONOTONIC": "1",
            # libfaketime comes before the ASan runtime in the library list
            "ASAN_OPTIONS": (asan + ":" if asan else "") + "verify_asan_link_order=0"}


def set_clock_offset(rc_path, seconds):
    with open(rc_path + ".tmp", "w") as f:
        f.write("%+ds\n" % seconds)
    os.rename(rc_path + ".tmp", rc_path)


if __name__ == "__main__":
    # netns.py [--timeout S] -- COMMAND...: run a command in a fresh namespace (by hand).
    args = sys.argv[1:]
    timeout = 3600
    if args[:1] == ["--timeout"]:
        timeout, args = int(args[1]), args[2:]
    if args[:1] == ["--"]:
        args = args[1:]
    if not args:
        print(__doc__)
        sys.exit(2)
    why = available()
    if why:
        print("netns: %s" % why, file=sys.stderr)
        sys.exit(1)
    sys.exit(run_in_namespace(args, timeout))
