#!/usr/bin/python3
"""Concurrent kazoo clients that put load on an ensemble and record every operation.

    rec = Recorder(connect_string, root="/faults/kill-leader", workers=4, rate=60)
    rec.setup(); rec.start(); ... fault ...; rec.stop()
    rec.final_reads(member_hosts)    # {member: "127.0.0.1:port"}: per-member reads, appended
    errors = rec.check()             # checker.check_all over the history and the listings
    rec.dump(path)                   # JSON lines, one op each (checker.py reads them back)

Each worker is one KazooClient (its own session) over the whole connection string, running one
op at a time: read, setData with a unique value, CAS (setData with the version it last read),
create of a unique path, sequential create. Each op is recorded as invoke / ok / fail / unknown
with time.monotonic() timestamps; connection loss, session expiry and timeouts are "unknown"
(the op may still take effect), BadVersion / NoNode / NodeExists are definite failures.
"""

import logging
import os
import random
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import checker  # noqa: E402

from kazoo.client import KazooClient  # noqa: E402
from kazoo.handlers.threading import KazooTimeoutError  # noqa: E402
import kazoo.exceptions as KE  # noqa: E402

logging.getLogger("kazoo").setLevel(logging.CRITICAL)
import warnings  # noqa: E402
warnings.filterwarnings("ignore", category=DeprecationWarning, module=r"kazoo(\.|$)")

DEFINITE = (KE.BadVersionError, KE.NoNodeError, KE.NodeExistsError)
OP_TIMEOUT_S = 8.0


class Recorder:
    def __init__(self, hosts, root, workers=4, keys=4, rate=60.0, session_timeout=4.0,
                 seed=None):
        self.hosts = hosts
        self.root = root.rstrip("/")
        self.nworkers = workers
        self.keys = ["%s/r%d" % (self.root, k) for k in range(keys)]
        self.rate = rate  # ops per second per worker at most
        self.session_timeout = session_timeout
        self.seed = seed if seed is not None else random.randrange(1 << 30)
        self.ops = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads = []
        self._clients = []
        self.listings = None
        self.first_ok_after = {}  # fault time -> (latency, op)

    # ---- recording ------------------------------------------------------------------------
    def _record(self, op):
        with self._lock:
            op["id"] = len(self.ops)
            self.ops.append(op)

    def setup(self):
        zk = KazooClient(hosts=self.hosts, timeout=self.session_timeout)
        zk.start(timeout=30)
        try:
            zk.ensure_path(self.root)
            for k in self.keys:
                zk.create(k, b"init")
            zk.create(self.root + "/c")
            zk.create(self.root + "/s")
        finally:
            zk.stop()
            zk.close()

    def _client(self):
        zk = KazooClient(hosts=self.hosts, timeout=self.session_timeout,
                         connection_retry={"max_tries": -1, "delay": 0.05, "max_delay": 0.5})
        zk.start(timeout=30)
        return zk

    def _worker(self, w):
        rnd = random.Random(self.seed * 1000 + w)
        proc = "w%d" % w
        zk = None
        last_version = {}
        n = 0
        period = 1.0 / self.rate if self.rate else 0
        while not self._stop.is_set():
            if zk is None:
                try:
                    zk = self._client()
                    self._clients.append(zk)
                except Exception:
                    zk = None
                    time.sleep(0.2)
                    continue
            t_next = time.monotonic() + period
            n += 1
            key = rnd.choice(self.keys)
            x = rnd.random()
            value = "%s-%d" % (proc, n)
            if x < 0.35:
                op = {"f": "read", "key": key, "arg": {}}
                call = lambda: zk.get_async(key)
            elif x < 0.6:
                op = {"f": "set", "key": key, "arg": {"value": value}}
                call = lambda: zk.set_async(key, value.encode())
            elif x < 0.8:
                exp = last_version.get(key, 0)
                op = {"f": "cas", "key": key, "arg": {"value": value, "expected": exp}}
                call = lambda: zk.set_async(key, value.encode(), version=exp)
            elif x < 0.9:
                path = "%s/c/%s" % (self.root, value)
                op = {"f": "create", "key": path, "arg": {}}
                call = lambda: zk.create_async(path, b"", include_data=True)
            else:
                prefix = "%s/s/n-" % self.root
                op = {"f": "seq", "key": prefix, "arg": {}}
                call = lambda: zk.create_async(prefix, b"", sequence=True, include_data=True)
            op["proc"] = proc
            op["session"] = None
            op["hzxid"] = None
            op["invoke"] = time.monotonic()
            try:
                res = call().get(timeout=OP_TIMEOUT_S)
                op["complete"] = time.monotonic()
                op["type"] = "ok"
                op["session"] = "%x" % (zk.client_id[0] if zk.client_id else 0)
                op["hzxid"] = zk.last_zxid
                if op["f"] == "read":
                    data, st = res
                    op["result"] = {"value": data.decode(), "version": st.version,
                                    "mzxid": st.mzxid}
                    last_version[key] = st.version
                elif op["f"] in ("set", "cas"):
                    op["result"] = {"version": res.version, "mzxid": res.mzxid}
                    last_version[key] = res.version
                elif op["f"] == "create":
                    op["result"] = {"czxid": res[1].czxid}
                else:
                    op["result"] = {"path": res[0], "czxid": res[1].czxid}
            except DEFINITE as e:
                op["complete"] = time.monotonic()
                op["type"] = "fail"
                op["result"] = {"error": type(e).__name__}
                if isinstance(e, KE.BadVersionError):
                    last_version.pop(key, None)
            except (KE.ConnectionLoss, KE.SessionExpiredError, KE.ConnectionClosedError,
                    KazooTimeoutError, KE.OperationTimeoutError, KE.ZookeeperError,
                    KE.SessionMovedError) as e:
                op["complete"] = None if op["f"] not in ("read",) else time.monotonic()
                op["type"] = "unknown" if op["f"] != "read" else "fail"
                op["result"] = {"error": type(e).__name__}
                if isinstance(e, (KE.SessionExpiredError, KE.ConnectionClosedError)) or \
                        not zk.connected and zk.state == "LOST":
                    try:
                        zk.stop()
                        zk.close()
                    except Exception:
                        pass
                    zk = None
            self._record(op)
            wait = t_next - time.monotonic()
            if wait > 0:
                self._stop.wait(wait)
        if zk is not None:
            try:
                zk.stop()
                zk.close()
            except Exception:
                pass

    def start(self):
        self._stop.clear()
        for w in range(self.nworkers):
            t = threading.Thread(target=self._worker, args=(w,), daemon=True)
            t.start()
            self._threads.append(t)
        return self

    def stop(self, timeout=30):
        self._stop.set()
        for t in self._threads:
            t.join(timeout)
        stuck = [t for t in self._threads if t.is_alive()]
        self._threads = []
        if stuck:
            raise RuntimeError("%d history workers did not stop within %d s" % (len(stuck),
                                                                               timeout))

    # ---- observation ----------------------------------------------------------------------
    def wait_ok_write_after(self, t_fault, timeout=60):
        """Waits for the first acknowledged write invoked after t_fault; returns the time from
        t_fault to its completion (the recovery time), or None on timeout."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._lock:
                oks = [op for op in self.ops if op["type"] == "ok"
                       and op["f"] in ("set", "cas", "create", "seq")
                       and op["invoke"] >= t_fault]
            if oks:
                first = min(oks, key=lambda op: op["complete"])
                self.recovery_op = first
                return first["complete"] - t_fault
            time.sleep(0.05)
        return None

    def counts(self):
        with self._lock:
            c = {}
            for op in self.ops:
                c[op["type"]] = c.get(op["type"], 0) + 1
            return c

    def final_reads(self, member_hosts, timeout=30):
        """Reads every register and lists the create and seq parents on each member alone
        (after a sync); appends the reads as "final" ops; returns the listings."""
        listings = {}
        for m, host in sorted(member_hosts.items()):
            zk = KazooClient(hosts=host, timeout=self.session_timeout)
            zk.start(timeout=timeout)
            try:
                zk.sync(self.root)
                for k in self.keys:
                    t0 = time.monotonic()
                    try:
                        data, st = zk.get(k)
                        res = {"value": data.decode(), "version": st.version,
                               "mzxid": st.mzxid, "member": m}
                    except KE.NoNodeError:  # the register itself is gone: never written so
                        res = {"value": None, "version": -1, "mzxid": None, "member": m}
                    self._record({"f": "final", "key": k, "arg": {}, "proc": "final-m%s" % m,
                                  "session": None, "hzxid": None, "invoke": t0,
                                  "complete": time.monotonic(), "type": "ok", "result": res})
                paths = set()
                for sub in ("c", "s"):
                    try:
                        children = zk.get_children("%s/%s" % (self.root, sub))
                    except KE.NoNodeError:
                        children = []
                    for child in children:
                        paths.add("%s/%s/%s" % (self.root, sub, child))
                listings[m] = paths
            finally:
                zk.stop()
                zk.close()
        self.listings = listings
        return listings

    def check(self, linearizable=False):
        return checker.check_all(self.ops, self.listings, linearizable=linearizable)

    def dump(self, path):
        import json
        with open(path, "w") as f:
            for op in self.ops:
                f.write(json.dumps(op, sort_keys=True) + "\n")
        if self.listings is not None:
            with open(path + ".listings.json", "w") as f:
                json.dump({str(k): sorted(v) for k, v in self.listings.items()}, f)
