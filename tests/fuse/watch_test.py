#!/usr/bin/python3
"""Remote changes as inotify events on a mount: inotifywait -m -r on mount A sees the changes a
kazoo client makes (and, with --mount-b, the changes made through another member's mount), with
the right event names; the delay from the change's reply to the event is measured and printed.

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

    def __init__(self, path):
        self.q = queue.Queue()
        self.p = subprocess.Popen(["inotifywait", "-m", "-r", "--format", "%e %w%f", path],
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

    def stop(self):
        self.p.kill()
        self.p.wait()


def timed(fn):
    t0 = time.monotonic()
    fn()
    return t0, time.monotonic()


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

        op("kazoo create with data", lambda: z.create("/w/f", b"x"), "CREATE", A + "/w/f")
        op("kazoo create without data", lambda: z.create("/w/d"), "CREATE,ISDIR", A + "/w/d")
        op("kazoo set", lambda: z.set("/w/f", b"yy"), "MODIFY", A + "/w/f")
        check("  then CLOSE_WRITE", w.expect("CLOSE_WRITE,CLOSE", A + "/w/f") is not None)
        with open(A + "/w/f") as f:
            check("  and the mount reads the new data", f.read() == "yy")
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

            def write_b():
                with open(B + "/w/fromb-file", "w") as f:
                    f.write("b")
            op("echo > file on mount B", write_b, "CREATE", A + "/w/fromb-file")
            op("rmdir on mount B", lambda: os.rmdir(B + "/w/fromb"), "DELETE,ISDIR",
               A + "/w/fromb")

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
