#!/usr/bin/python3
"""Remote changes as inotify events on a mount: inotifywait -m -r on mount A sees the changes a
kazoo client makes (and, with --mount-b, the changes made through another member's mount), with
the right event names; the delay from the change's reply to the event is measured and printed.
A remote create or data change gives the events the same change made locally gives (compared
with the local sequence on the mount itself), and `inotifywait -m -e close_write` sees files
created and appended elsewhere; the delay from the writer's return to IN_CLOSE_WRITE is measured
(p50/p99 over 60 changes).

    watch_test.py --quorumfsd PATH                 # starts its own member with a mount
    watch_test.py --mount-a DIR --hosts H:P [--mount-b DIR]   # existing members (ensemble)
"""
import argparse
import os
import queue
import statistics
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "clients"))

from kazoo.client import KazooClient  # noqa: E402
from kazoo.security import OPEN_ACL_UNSAFE  # noqa: E402

FAILS = []


def check(desc, cond):
    print(("ok   " if cond else "FAIL: ") + desc, flush=True)
    if not cond:
        FAILS.append(desc)


class Watcher:
    """inotifywait -m -r on a directory; events are (monotonic time, events, path)."""

    def __init__(self, path, args=("-r",)):
        self.q = queue.Queue()
        self.p = subprocess.Popen(["inotifywait", "-m", *args, "--format", "%e %w%f", path],
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        # "Watches established." on stderr: ready.
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            line = self.p.stderr.readline()
            if "Watches established" in line:
                break
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        for line in self.p.stdout:
            ev, _, path = line.rstrip("\n").partition(" ")
            self.q.put((time.monotonic(), ev, path))

    def expect(self, ev, path, timeout=2.0):
        """Waits for event `ev` on `path`; returns its time or None. Other events are kept."""
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            try:
                t, e, p = self.q.get(timeout=left)
            except queue.Empty:
                return None
            if e == ev and p == path:
                return t

    def drain(self, secs=0.3):
        out = []
        end = time.monotonic() + secs
        while time.monotonic() < end:
            try:
                out.append(self.q.get(timeout=max(0.0, end - time.monotonic())))
            except queue.Empty:
                break
        return out

    def events(self, path, secs=0.5):
        """The event names for `path` within `secs` (other paths' events are dropped)."""
        return [e for _, e, p in self.drain(secs) if p == path]

    def stop(self):
        self.p.kill()
        self.p.wait()


def timed(fn):
    t0 = time.monotonic()
    fn()
    return t0, time.monotonic()


def sh(cmd):
    """A real shell's builtin redirection (bash), checked."""
    r = subprocess.run(["bash", "-c", cmd], capture_output=True, text=True, timeout=30)
    if r.returncode != 0:
        raise RuntimeError("%s: exit %d: %s" % (cmd, r.returncode, r.stderr.strip()))


def returned(fn, *args):
    fn(*args)
    return time.monotonic()


def sh_ret(cmd):
    """Runs `cmd` in bash and returns the monotonic time at which it returned inside the shell
    (bash's $EPOCHREALTIME right after it, not the later exit of the process)."""
    r = subprocess.run(["bash", "-c", cmd + ' && echo "$EPOCHREALTIME"'], capture_output=True,
                       text=True, timeout=30)
    if r.returncode != 0:
        raise RuntimeError("%s: exit %d: %s" % (cmd, r.returncode, r.stderr.strip()))
    return float(r.stdout.split()[-1]) - (time.time() - time.monotonic())


def pct(v, q):
    v = sorted(v)
    return v[min(len(v) - 1, max(0, int(round(len(v) * q)) - 1))]


# What the kernel reports for a change made through the mount itself, on the parent's watch
# (the same as on tmpfs; `touch` adds IN_ATTRIB, which a remote create has no reason to give).
LOCAL = {"create with data": ["CREATE", "OPEN", "MODIFY", "CLOSE_WRITE,CLOSE"],
         "create empty": ["CREATE", "OPEN", "CLOSE_WRITE,CLOSE"],
         "append": ["OPEN", "MODIFY", "CLOSE_WRITE,CLOSE"]}


def same_as_local(w, A):
    """The local sequences on mount A itself (through a real shell), checked against LOCAL."""
    w.drain(0.2)
    for name, cmd in (("create with data", "echo x > %s/w/loc1"), ("create empty", ": > %s/w/loc2"),
                      ("append", "echo y >> %s/w/loc1")):
        path = A + "/w/" + ("loc2" if name == "create empty" else "loc1")
        sh(cmd % A)
        evs = w.events(path)
        check("local %s on the mount itself: %s" % (name, evs), evs == LOCAL[name])


def close_write_phase(A, B, z):
    """inotifywait -m -e close_write (the exact tool) on mount A sees files created and appended
    through mount B's shells and by kazoo; the delay from the writer's return is measured."""
    cw = Watcher(A + "/w/cw", ("-e", "close_write"))
    try:
        def seen(path, what):
            te = cw.expect("CLOSE_WRITE,CLOSE", path, timeout=3.0)
            check("inotifywait -e close_write on mount A sees %s" % what, te is not None)
        writers = []
        if B:
            writers.append(("echo x > f on mount B (bash)",
                            lambda i: sh_ret("echo %d > %s/w/cw/b%d" % (i, B, i)), "b%d"))
            sh(": > %s/w/cw/blog" % B)
            seen(A + "/w/cw/blog", "an empty file created on mount B (: > f)")
            writers.append(("echo y >> f on mount B (bash)",
                            lambda i: sh_ret("echo %d >> %s/w/cw/blog" % (i, B)), "blog"))
        writers.append(("kazoo create with data",
                        lambda i: returned(z.create, "/w/cw/k%d" % i, b"k"), "k%d"))
        writers.append(("kazoo set", lambda i: returned(z.set, "/w/cw/k0", b"s%d" % i), "k0"))
        stats = []
        for desc, fn, name in writers:
            after = []
            for i in range(60):
                t1 = fn(i)  # the time the writer returned
                path = A + "/w/cw/" + (name % i if "%" in name else name)
                te = cw.expect("CLOSE_WRITE,CLOSE", path, timeout=3.0)
                if te is None:
                    break
                after.append((te - t1) * 1000)
            check("inotifywait -e close_write on mount A sees %s: %d of 60" % (desc, len(after)),
                  len(after) == 60)
            if after:
                stats.append((desc, after))
        if B:
            with open(A + "/w/cw/blog") as f:
                got = f.read().split()
            check("mount A reads every appended line (%d of 60)" % len(got),
                  got == [str(i) for i in range(60)])
        print("writer's return -> IN_CLOSE_WRITE on mount A (inotifywait -m -e close_write), "
              "60 changes each, ms (negative: the event came before the writer returned):")
        for desc, after in stats:
            print("    %-34s p50 %.2f  p99 %.2f  max %.2f" % (desc, statistics.median(after),
                                                            pct(after, 0.99), max(after)))
    finally:
        cw.stop()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--quorumfsd")
    ap.add_argument("--mount-a")
    ap.add_argument("--mount-b")
    ap.add_argument("--hosts")
    a = ap.parse_args()
    srv = None
    if a.quorumfsd:
        from server import Server
        mnt = tempfile.mkdtemp(prefix="qfs-watch-mnt-")
        srv = Server("quorumfsd", a.quorumfsd, tick_ms=500, extra_config={"mount": mnt})
        srv.start()
        for _ in range(100):
            if any(l.split()[1] == mnt for l in open("/proc/mounts")):
                break
            time.sleep(0.05)
        a.mount_a, a.hosts = mnt, srv.hosts
    z = KazooClient(a.hosts)
    z.start()
    A = a.mount_a
    try:
        if z.exists("/w"):
            z.delete("/w", recursive=True)
        os.mkdir(A + "/w")
        w = Watcher(A + "/w")
        delays = {}

        def op(desc, fn, ev, path):
            t0, t1 = timed(fn)
            te = w.expect(ev, path)
            check("%s -> %s %s" % (desc, ev, os.path.relpath(path, A)), te is not None)
            if te is not None:
                delays[desc] = ((te - t0) * 1000, (te - t1) * 1000)

        same_as_local(w, A)
        z.create("/w/f", b"x")
        evs = w.events(A + "/w/f", 1.0)
        check("kazoo create with data gives a local create's events: %s" % evs,
              evs == LOCAL["create with data"])
        op("kazoo create without data", lambda: z.create("/w/d"), "CREATE,ISDIR", A + "/w/d")
        w.drain(0.2)
        z.set("/w/f", b"yy")
        evs = w.events(A + "/w/f", 1.0)
        check("kazoo set gives a local write's events: %s" % evs, evs == LOCAL["append"])
        with open(A + "/w/f") as f:
            check("  and the mount reads the new data", f.read() == "yy")
        # A file the kernel holds no inode of (only the watched directory): the echo looks it up.
        if os.geteuid() == 0:
            z.create("/w/cold", b"1")
            w.drain(0.5)
            with open("/proc/sys/vm/drop_caches", "w") as f:
                f.write("2")  # unused dentries and inodes: the kernel forgets w/cold's inode
            time.sleep(0.3)
            z.set("/w/cold", b"2")
            evs = w.events(A + "/w/cold", 1.0)
            check("kazoo set of a file whose inode the kernel dropped: %s" % evs,
                  evs == LOCAL["append"])
            z.delete("/w/cold")
        else:
            print("skip: the dropped-inode case needs root (drop_caches)")
        op("kazoo setACL", lambda: z.set_acls("/w/f", OPEN_ACL_UNSAFE), "ATTRIB", A + "/w/f")
        time.sleep(0.3)  # inotifywait -r adds its watch on w/d after seeing it
        op("kazoo create in a subdirectory (-r)", lambda: z.create("/w/d/sub", b"s"), "CREATE",
           A + "/w/d/sub")
        op("kazoo set of a directory's data", lambda: z.set("/w/d", b"dd"), "MODIFY",
           A + "/w/d/.data")
        op("kazoo delete", lambda: z.delete("/w/d/sub"), "DELETE", A + "/w/d/sub")
        op("kazoo delete of a directory", lambda: z.delete("/w/d"), "DELETE,ISDIR", A + "/w/d")
        op("kazoo delete of a file", lambda: z.delete("/w/f"), "DELETE", A + "/w/f")

        # A change made through this mount is reported once, by the kernel (no echo on top).
        w.drain(0.2)
        os.mkdir(A + "/w/local")
        # (inotifywait -r itself opens the new directory to watch it: OPEN/ACCESS/CLOSE.)
        evs = [e for _, e, p in w.drain(0.5)
               if p == A + "/w/local" and e.split(",")[0] in ("CREATE", "DELETE", "MODIFY")]
        check("a change made through the mount itself is reported once: %s" % evs,
              evs == ["CREATE,ISDIR"])

        if a.mount_b:
            B = a.mount_b
            op("mkdir on mount B", lambda: os.mkdir(B + "/w/fromb"), "CREATE,ISDIR",
               A + "/w/fromb")

            w.drain(0.2)
            sh("echo b > %s/w/fromb-file" % B)
            evs = w.events(A + "/w/fromb-file", 1.0)
            check("echo > file on mount B gives a local create's events: %s" % evs,
                  evs == LOCAL["create with data"])
            sh(": > %s/w/fromb-empty" % B)
            evs = w.events(A + "/w/fromb-empty", 1.0)
            check(": > file on mount B gives a local empty create's events: %s" % evs,
                  evs == LOCAL["create empty"])
            sh("echo c >> %s/w/fromb-file" % B)
            evs = w.events(A + "/w/fromb-file", 1.0)
            check("echo >> file on mount B gives a local append's events: %s" % evs,
                  evs == LOCAL["append"])
            op("rmdir on mount B", lambda: os.rmdir(B + "/w/fromb"), "DELETE,ISDIR",
               A + "/w/fromb")

        os.mkdir(A + "/w/cw")
        close_write_phase(A, a.mount_b, z)

        # The delay, many times: set, wait for MODIFY, repeat.
        z.create("/w/hot", b"0")
        w.expect("CREATE", A + "/w/hot")
        samples, after_reply = [], []
        for i in range(200):
            t0, t1 = timed(lambda: z.set("/w/hot", str(i).encode()))
            te = w.expect("MODIFY", A + "/w/hot")
            if te is None:
                check("MODIFY %d seen" % i, False)
                break
            samples.append((te - t0) * 1000)
            after_reply.append((te - t1) * 1000)
        w.stop()
        print("change-to-inotify delay per event kind, ms from the client's call (from its reply;"
              " negative: the event came first):")
        for k, (v0, v1) in delays.items():
            print("    %-40s %.2f (%.2f)" % (k, v0, v1))
        if samples:
            samples.sort()
            p50 = statistics.median(samples)
            p99 = samples[int(len(samples) * 0.99) - 1]
            print("kazoo set (call) -> MODIFY on the mount, %d samples: p50 %.2f ms, p99 %.2f ms, "
                  "max %.2f ms" % (len(samples), p50, p99, samples[-1]))
            after_reply.sort()
            r50 = statistics.median(after_reply)
            print("  measured from the client's reply (the commit): p50 %.2f ms, p99 %.2f ms, "
                  "max %.2f ms" % (r50, after_reply[int(len(after_reply) * 0.99) - 1],
                                   after_reply[-1]))
            check("median delay after the commit within 5 ms", r50 <= 5.0)
    finally:
        z.stop()
        if srv:
            srv.cleanup()
            os.rmdir(a.mount_a)
    print("== %d failed" % len(FAILS))
    return 1 if FAILS else 0


if __name__ == "__main__":
    sys.exit(main())
