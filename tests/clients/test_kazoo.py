#!/usr/bin/python3
"""End-to-end tests of a ZooKeeper-protocol server through kazoo, a stock Python client.

    /usr/bin/python3 tests/clients/test_kazoo.py [--kind zk|quorumfsd] [--quorumfsd PATH] [-v] [TESTS]
    QFS_SERVER_KIND=quorumfsd QUORUMFSD=PATH /usr/bin/python3 -m unittest tests/clients/test_kazoo.py

Every expectation here is Apache ZooKeeper 3.8's behaviour (the suite passes against it); run
against quorumfsd it shows where quorumfsd differs. The server is private (own data dir, own
loopback port) and is stopped when the suite ends. kazoo 2.8 lacks requests for containers, TTL
nodes, addWatch, removeWatches/checkWatches, getEphemerals, getAllChildrenNumber and whoami;
those are sent with small request classes below whose bytes are exactly what ZooKeeper's own Java
client sends, through kazoo's connection (so the session, xids and error mapping are kazoo's).
"""

import base64
import collections
import hashlib
import logging
import os
import select
import socket
import subprocess
import sys
import threading
import time
import unittest
import warnings

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import server as harness  # noqa: E402

from kazoo.client import KazooClient, KazooState  # noqa: E402
import kazoo.exceptions as E  # noqa: E402
from kazoo.protocol.serialization import (  # noqa: E402
    Watch, int_struct, long_struct, read_string, stat_struct, write_buffer,
    write_string)
from kazoo.protocol.states import ZnodeStat  # noqa: E402
from kazoo.recipe.barrier import Barrier, DoubleBarrier  # noqa: E402
from kazoo.recipe.counter import Counter  # noqa: E402
from kazoo.recipe.lock import Lock  # noqa: E402
from kazoo.recipe.queue import LockingQueue, Queue  # noqa: E402
from kazoo.security import (  # noqa: E402
    ACL, Id, OPEN_ACL_UNSAFE, Permissions, READ_ACL_UNSAFE, make_digest_acl,
    make_digest_acl_credential)

logging.basicConfig(level=logging.CRITICAL)
# kazoo 2.8 calls threading's deprecated isSet(); that is not what these tests are about
warnings.filterwarnings("ignore", category=DeprecationWarning, module=r"kazoo(\.|$)")

KIND = os.environ.get("QFS_SERVER_KIND", "zk")
QUORUMFSD = os.environ.get("QUORUMFSD") or None

TICK_MS = 500
MIN_SESSION_MS = 1000
MAX_SESSION_MS = 60000
CONTAINER_CHECK_MS = 200
SUPER_USER, SUPER_PASSWORD = "super", "secret"
SUPER_DIGEST = make_digest_acl_credential(SUPER_USER, SUPER_PASSWORD)
SHORT_SESSION_S = 2.0  # session timeout of the clients whose sessions are meant to expire

# ZooKeeper event types (WatchedEvent.type on the wire) and watcher types (removeWatches)
CREATED, DELETED, CHANGED, CHILD = 1, 2, 3, 4
WT_CHILDREN, WT_DATA, WT_ANY = 1, 2, 3
# CreateMode flags
PERSISTENT, EPHEMERAL, PERSISTENT_SEQUENTIAL, EPHEMERAL_SEQUENTIAL = 0, 1, 2, 3
CONTAINER, PERSISTENT_WITH_TTL, PERSISTENT_SEQUENTIAL_WITH_TTL = 4, 5, 6
MAX_TTL_MS = (1 << 40) - 1

# Error codes ZooKeeper 3.8 has and kazoo 2.8 does not know (kazoo raises RuntimeError inside its
# connection thread on an unknown code, so they are registered here).
for _code, _name in [(-12, "UnknownSessionError"), (-120, "EphemeralOnLocalSessionError"),
                     (-121, "NoWatcherError"), (-122, "RequestTimeoutError"),
                     (-123, "ReconfigDisabledError"), (-124, "SessionClosedRequireSaslError"),
                     (-125, "QuotaExceededError"), (-127, "ThrottledOpError")]:
    if _code not in E.EXCEPTIONS:
        E._zookeeper_exception(_code)(type(_name, (E.ZookeeperError,), {}))
NoWatcherError = E.EXCEPTIONS[-121]


# ---- requests kazoo 2.8 does not have (jute encodings of ZooKeeper 3.8's proto records) ------

def _ustring(s):
    """A jute ustring, sent verbatim (kazoo's own requests normalise the path first)."""
    b = s.encode("utf-8")
    return int_struct.pack(len(b)) + b


def _acl_vector(acls):
    b = bytearray(int_struct.pack(len(acls)))
    for a in acls:
        b.extend(int_struct.pack(a.perms) + write_string(a.id.scheme) + write_string(a.id.id))
    return bytes(b)


def _string_vector(b, o):
    n = int_struct.unpack_from(b, o)[0]
    o += int_struct.size
    out = []
    for _ in range(max(n, 0)):
        s, o = read_string(b, o)
        out.append(s)
    return out, o


def _path_and_stat(b, o):
    p, o = read_string(b, o)
    return p, ZnodeStat._make(stat_struct.unpack_from(b, o))


class RawCreate(collections.namedtuple("RawCreate", "path data acl flags")):
    """CreateRequest (opcode 1) with the path exactly as given."""
    type = 1

    def serialize(self):
        return (_ustring(self.path) + write_buffer(self.data) + _acl_vector(self.acl) +
                int_struct.pack(self.flags))

    @classmethod
    def deserialize(cls, b, o):
        return read_string(b, o)[0]


class CreateContainer(RawCreate):
    """createContainer (19): a CreateRequest; the reply is a Create2Response."""
    type = 19

    @classmethod
    def deserialize(cls, b, o):
        return _path_and_stat(b, o)


class CreateTTL(collections.namedtuple("CreateTTL", "path data acl flags ttl")):
    """createTTL (21): CreateTTLRequest {path, data, acl, flags, long ttl} -> Create2Response."""
    type = 21

    def serialize(self):
        return (_ustring(self.path) + write_buffer(self.data) + _acl_vector(self.acl) +
                int_struct.pack(self.flags) + long_struct.pack(self.ttl))

    @classmethod
    def deserialize(cls, b, o):
        return _path_and_stat(b, o)


class RawDelete(collections.namedtuple("RawDelete", "path version")):
    type = 2

    def serialize(self):
        return _ustring(self.path) + int_struct.pack(self.version)

    @classmethod
    def deserialize(cls, b, o):
        return True


class RawSetData(collections.namedtuple("RawSetData", "path data version")):
    type = 5

    def serialize(self):
        return _ustring(self.path) + write_buffer(self.data) + int_struct.pack(self.version)

    @classmethod
    def deserialize(cls, b, o):
        return ZnodeStat._make(stat_struct.unpack_from(b, o))


class RawExists(collections.namedtuple("RawExists", "path")):
    type = 3

    def serialize(self):
        return _ustring(self.path) + b"\0"

    @classmethod
    def deserialize(cls, b, o):
        return ZnodeStat._make(stat_struct.unpack_from(b, o))


class SetWatches(collections.namedtuple("SetWatches", "relative_zxid data exist child")):
    """setWatches (101): {long relativeZxid, vector<ustring> dataWatches, existWatches,
    childWatches}; what ZooKeeper's own clients send after a reconnect to carry their watches over
    (kazoo 2.8 does not: it fires its watchers with a NONE event instead). The server answers at
    once for every watched node that changed after relativeZxid and registers the rest."""
    type = 101

    def serialize(self):
        b = long_struct.pack(self.relative_zxid)
        for paths in (self.data, self.exist, self.child):
            b += int_struct.pack(len(paths)) + b"".join(_ustring(x) for x in paths)
        return b

    @classmethod
    def deserialize(cls, b, o):
        return True


SET_WATCHES_XID = -8


def set_watches(client, relative_zxid, data=(), exist=(), child=()):
    """Sends SetWatches the way ZooKeeper's Java and C clients do: with xid -8 (their
    SET_WATCHES_XID), whose reply kazoo is taught here to match to the pending request."""
    conn = client._connection
    if not getattr(conn, "_qfs_set_watches_xid", False):
        conn._qfs_set_watches_xid = True
        submit, read_response = conn._submit, conn._read_response

        def submit_hook(request, timeout, xid=None):
            if getattr(request, "type", None) == SetWatches.type:
                xid = SET_WATCHES_XID
            return submit(request, timeout, xid)

        def read_response_hook(header, buffer, offset):
            if (header.xid == SET_WATCHES_XID and client._pending and
                    getattr(client._pending[0][0], "type", None) == SetWatches.type):
                header = header._replace(xid=client._pending[0][2])
            return read_response(header, buffer, offset)
        conn._submit, conn._read_response = submit_hook, read_response_hook
    return call(client, SetWatches(relative_zxid, list(data), list(exist), list(child)))


class AddWatch(collections.namedtuple("AddWatch", "path mode")):
    """addWatch (106): AddWatchRequest {path, int mode}; mode 0 persistent, 1 recursive. The
    reply body is an ErrorResponse {int err}."""
    type = 106

    def serialize(self):
        return _ustring(self.path) + int_struct.pack(self.mode)

    @classmethod
    def deserialize(cls, b, o):
        return int_struct.unpack_from(b, o)[0]


class RemoveWatches(collections.namedtuple("RemoveWatches", "path watcher_type")):
    """removeWatches (18): {path, int type}; no reply body. NoWatcher (-121) if none matched."""
    type = 18

    def serialize(self):
        return _ustring(self.path) + int_struct.pack(self.watcher_type)

    @classmethod
    def deserialize(cls, b, o):
        return len(b) - o


class CheckWatches(RemoveWatches):
    """checkWatches (17): same record as removeWatches."""
    type = 17


class GetEphemerals(collections.namedtuple("GetEphemerals", "prefix")):
    """getEphemerals (103): {prefixPath} -> {vector<ustring> ephemerals}."""
    type = 103

    def serialize(self):
        return _ustring(self.prefix)

    @classmethod
    def deserialize(cls, b, o):
        return _string_vector(b, o)[0]


class GetAllChildrenNumber(collections.namedtuple("GetAllChildrenNumber", "path")):
    """getAllChildrenNumber (104): {path} -> {int totalNumber}."""
    type = 104

    def serialize(self):
        return _ustring(self.path)

    @classmethod
    def deserialize(cls, b, o):
        return int_struct.unpack_from(b, o)[0]


class WhoAmI(collections.namedtuple("WhoAmI", "")):
    """whoAmI (107): no body -> {vector<ClientInfo{authScheme, user}>}."""
    type = 107

    def __bool__(self):  # kazoo drops replies to requests that are false
        return True

    def serialize(self):
        return b""

    @classmethod
    def deserialize(cls, b, o):
        n = int_struct.unpack_from(b, o)[0]
        o += int_struct.size
        out = []
        for _ in range(max(n, 0)):
            scheme, o = read_string(b, o)
            user, o = read_string(b, o)
            out.append((scheme, user))
        return out


def call(client, request, timeout=10.0):
    """Sends a request through kazoo's connection; returns the reply or raises kazoo's error."""
    ar = client.handler.async_result()
    client._call(request, ar)
    return ar.get(timeout=timeout)


class Recorder:
    """Every watch notification a client receives, in socket order, as (type, path) — recorded in
    kazoo's connection thread before kazoo routes it, so it sees events kazoo has no callback for
    (persistent watches) and orders them against replies."""

    def __init__(self, client):
        self.events = []
        self.cond = threading.Condition()
        conn = client._connection
        original = conn._read_watch_event

        def hook(buffer, offset):
            w, _ = Watch.deserialize(buffer, offset)
            with self.cond:
                self.events.append((w.type, w.path))
                self.cond.notify_all()
            return original(buffer, offset)

        conn._read_watch_event = hook

    def snapshot(self):
        with self.cond:
            return list(self.events)

    def wait_count(self, n, timeout=10.0):
        deadline = time.monotonic() + timeout
        with self.cond:
            while len(self.events) < n:
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                self.cond.wait(left)
            return list(self.events)

    def clear(self):
        with self.cond:
            del self.events[:]


# ---- the server and the base class ------------------------------------------------------------

SERVER = None


def make_server(name="main"):
    return harness.Server(
        KIND, QUORUMFSD, tick_ms=TICK_MS, min_session_ms=MIN_SESSION_MS,
        max_session_ms=MAX_SESSION_MS, name=name,
        extra_config={"znode.container.checkIntervalMs": CONTAINER_CHECK_MS,
                      "superDigest": SUPER_DIGEST})


def setUpModule():
    global SERVER
    SERVER = make_server()
    SERVER.start()


def tearDownModule():
    if SERVER is not None:
        SERVER.cleanup()


HOLDER_SCRIPT = r"""
import sys, time, logging
logging.basicConfig(level=logging.CRITICAL)
from kazoo.client import KazooClient
hosts, timeout = sys.argv[1], float(sys.argv[2])
c = KazooClient(hosts, timeout=timeout,
                connection_retry=dict(max_tries=-1, delay=0.05, backoff=1.5, max_delay=0.3))
c.start(timeout=15)
for p in sys.argv[3:]:
    c.create(p, b"held", ephemeral=True)
sid, pwd = c.client_id
print("%d %s" % (sid, pwd.hex()), flush=True)
time.sleep(120)
"""

CONTENDER_SCRIPT = r"""
import sys, time, logging
logging.basicConfig(level=logging.CRITICAL)
from kazoo.client import KazooClient
from kazoo.recipe.election import Election
hosts, timeout, path, ident = sys.argv[1], float(sys.argv[2]), sys.argv[3], sys.argv[4]
c = KazooClient(hosts, timeout=timeout,
                connection_retry=dict(max_tries=-1, delay=0.05, backoff=1.5, max_delay=0.3))
c.start(timeout=15)
print("READY %s" % ident, flush=True)
def lead():
    print("LEADER %s" % ident, flush=True)
    time.sleep(120)
Election(c, path, ident).run(lead)
"""


def wait_until(pred, timeout, interval=0.05):
    deadline = time.monotonic() + timeout
    while True:
        v = pred()
        if v:
            return v
        if time.monotonic() >= deadline:
            return v
        time.sleep(interval)


def read_line(proc, timeout):
    """One line of a child's stdout within timeout, or None."""
    r, _, _ = select.select([proc.stdout], [], [], timeout)
    if not r:
        return None
    line = proc.stdout.readline()
    return line.decode().strip() if line else None


class Base(unittest.TestCase):
    server = None  # None: the module's server

    def srv(self):
        return self.server or SERVER

    def setUp(self):
        self._clients = []
        self._procs = []
        self.root = "/" + self.id().split(".")[-1]
        self.zk = self.client()
        if self.zk.exists(self.root) is None:
            self.zk.create(self.root)

    def tearDown(self):
        for p in self._procs:
            if p.poll() is None:
                p.kill()
            p.wait(timeout=10)
            if p.stdout:
                p.stdout.close()
        for c in self._clients:
            try:
                c.stop()
                c.close()
            except Exception:
                pass

    def client(self, timeout=10.0, start=True, **kw):
        kw.setdefault("connection_retry",
                      dict(max_tries=-1, delay=0.05, backoff=1.5, max_delay=0.3))
        kw.setdefault("command_retry",
                      dict(max_tries=-1, delay=0.01, backoff=1.3, max_delay=0.1, deadline=60))
        c = KazooClient(self.srv().hosts, timeout=timeout, **kw)
        self._clients.append(c)
        if start:
            c.start(timeout=15)
        return c

    def p(self, *parts):
        return "/".join((self.root,) + parts)

    def spawn(self, script, *args):
        proc = subprocess.Popen([sys.executable, "-c", script] + [str(a) for a in args],
                                stdout=subprocess.PIPE, stdin=subprocess.DEVNULL)
        self._procs.append(proc)
        return proc

    def holder(self, timeout_s, *paths):
        """A client in another process holding ephemerals; returns (proc, session_id, passwd)."""
        proc = self.spawn(HOLDER_SCRIPT, self.srv().hosts, timeout_s, *paths)
        line = read_line(proc, 20)
        self.assertTrue(line, "holder process printed no session")
        sid, pwd = line.split()
        return proc, int(sid), bytes.fromhex(pwd)

    def roundtrip(self, c):
        """After this, every notification the server queued for c before now has been read."""
        c.sync("/")
        c.exists("/")

    def assertRaisesCode(self, exc, fn, *args, **kw):
        with self.assertRaises(exc):
            fn(*args, **kw)


# ---- create modes -----------------------------------------------------------------------------

class CreateModes(Base):
    def test_persistent(self):
        p = self.p("a")
        self.assertEqual(self.zk.create(p, b"v"), p)
        data, st = self.zk.get(p)
        self.assertEqual(data, b"v")
        self.assertEqual(st.ephemeralOwner, 0)
        path, st2 = self.zk.create(self.p("b"), b"xy", include_data=True)  # create2
        self.assertEqual(path, self.p("b"))
        self.assertEqual((st2.version, st2.dataLength, st2.ephemeralOwner), (0, 2, 0))
        self.assertEqual(st2.czxid, self.zk.last_zxid)
        c2 = self.client()
        c2.create(self.p("by-c2"))
        c2.stop()
        self.assertIsNotNone(self.zk.exists(self.p("by-c2")),
                             "a persistent node did not outlive its creator's session")

    def test_ephemeral(self):
        c = self.client()
        p = self.p("e")
        c.create(p, b"", ephemeral=True)
        st = self.zk.exists(p)
        self.assertEqual(st.ephemeralOwner, c.client_id[0])
        self.assertNotEqual(st.ephemeralOwner, self.zk.client_id[0])
        self.assertRaisesCode(E.NoChildrenForEphemeralsError, c.create, p + "/c")
        self.assertRaisesCode(E.NoChildrenForEphemeralsError, self.zk.create, p + "/c")
        self.assertRaisesCode(E.NoChildrenForEphemeralsError, c.create, p + "/s-", sequence=True)
        c.stop()  # closeSession deletes them before it replies
        self.assertIsNone(self.zk.exists(p))

    def test_sequential_suffix_is_parent_cversion(self):
        p = self.p("q")
        self.zk.create(p)
        self.assertEqual(self.zk.create(p + "/a-", sequence=True), p + "/a-0000000000")
        self.zk.create(p + "/b")                      # cversion 2
        self.assertEqual(self.zk.create(p + "/a-", sequence=True), p + "/a-0000000002")
        self.assertEqual(self.zk.exists(p).cversion, 3)
        # a name may be just the counter
        self.assertEqual(self.zk.create(p + "/", sequence=True), p + "/0000000003")
        # after a delete the counter still only grows (ZooKeeper's exact value after a delete
        # is an artifact of its request pipeline, so only that is checked)
        self.zk.delete(p + "/b")
        last = self.zk.create(p + "/a-", b"d", sequence=True)
        self.assertRegex(last, "^" + p + "/a-[0-9]{10}$")
        self.assertGreater(int(last[-10:]), 3)
        self.assertEqual(self.zk.get(last)[0], b"d")
        self.assertEqual(sorted(self.zk.get_children(p)),
                         sorted(["0000000003", "a-0000000000", "a-0000000002", last[-12:]]))

    def test_ephemeral_sequential(self):
        c = self.client()
        p = self.p("es")
        self.zk.create(p)
        got = [c.create(p + "/n-", ephemeral=True, sequence=True) for _ in range(3)]
        self.assertEqual(got, [p + "/n-%010d" % i for i in range(3)])
        for g in got:
            self.assertEqual(self.zk.exists(g).ephemeralOwner, c.client_id[0])
        c.stop()
        self.assertEqual(self.zk.get_children(p), [])

    def test_container(self):
        p = self.p("c")
        path, st = call(self.zk, CreateContainer(p, b"x", OPEN_ACL_UNSAFE, CONTAINER))
        self.assertEqual(path, p)
        self.assertEqual((st.version, st.dataLength), (0, 1))
        # a container that never had a child stays
        time.sleep(CONTAINER_CHECK_MS * 4 / 1000.0)
        self.assertIsNotNone(self.zk.exists(p), "container deleted before it ever had a child")
        self.zk.create(p + "/child")
        time.sleep(CONTAINER_CHECK_MS * 4 / 1000.0)
        self.assertIsNotNone(self.zk.exists(p), "container deleted while it has a child")
        gone = threading.Event()
        self.zk.exists(p, watch=lambda ev: ev.type == "DELETED" and gone.set())
        self.zk.delete(p + "/child")
        self.assertTrue(gone.wait(10), "emptied container not deleted within 10 s")
        self.assertIsNone(self.zk.exists(p))
        # createTTL does not make containers
        self.assertRaisesCode(E.BadArgumentsError, call, self.zk,
                              CreateTTL(p + "x", b"", OPEN_ACL_UNSAFE, CONTAINER, 1000))

    def test_ttl(self):
        p = self.p("t")
        path, st = call(self.zk, CreateTTL(p, b"x", OPEN_ACL_UNSAFE, PERSISTENT_WITH_TTL, 1000))
        self.assertEqual(path, p)
        self.assertEqual((st.version, st.dataLength), (0, 1))
        seq, _ = call(self.zk, CreateTTL(p + "-s-", b"", OPEN_ACL_UNSAFE,
                                         PERSISTENT_SEQUENTIAL_WITH_TTL, 60000))
        self.assertRegex(seq, "^" + p + "-s-[0-9]{10}$")
        call(self.zk, CreateTTL(p + "-max", b"", OPEN_ACL_UNSAFE, PERSISTENT_WITH_TTL, MAX_TTL_MS))
        # with a child it outlives its TTL
        self.zk.create(p + "/child")
        time.sleep(1.0 + CONTAINER_CHECK_MS * 4 / 1000.0)
        self.assertIsNotNone(self.zk.exists(p), "TTL node with a child was deleted")
        gone = threading.Event()
        self.zk.exists(p, watch=lambda ev: ev.type == "DELETED" and gone.set())
        self.zk.delete(p + "/child")
        self.assertTrue(gone.wait(10), "childless TTL node older than its TTL not deleted in 10 s")
        self.assertIsNotNone(self.zk.exists(seq), "TTL node deleted before its TTL")

    def test_container_and_ttl_owner_shows_as_zero(self):
        # the server keeps the node type in the owner field; clients see 0 there
        _, st = call(self.zk, CreateContainer(self.p("c"), b"", OPEN_ACL_UNSAFE, CONTAINER))
        self.assertEqual(st.ephemeralOwner, 0, "container's ephemeralOwner in the create2 reply")
        self.assertEqual(self.zk.exists(self.p("c")).ephemeralOwner, 0, "container, exists")
        _, st = call(self.zk, CreateTTL(self.p("t"), b"", OPEN_ACL_UNSAFE, PERSISTENT_WITH_TTL,
                                        60000))
        self.assertEqual(st.ephemeralOwner, 0, "TTL node's ephemeralOwner in the create2 reply")
        self.assertEqual(self.zk.get(self.p("t"))[1].ephemeralOwner, 0, "TTL node, get")
        kids, parent = self.zk.get_children(self.root, include_data=True)
        self.assertEqual(parent.ephemeralOwner, 0)

    def test_ttl_and_mode_errors(self):
        p = self.p("bad")
        for ttl in (0, -5, MAX_TTL_MS + 1):
            self.assertRaisesCode(E.BadArgumentsError, call, self.zk,
                                  CreateTTL(p, b"", OPEN_ACL_UNSAFE, PERSISTENT_WITH_TTL, ttl))
        for mode in (PERSISTENT, EPHEMERAL, CONTAINER):
            self.assertRaisesCode(E.BadArgumentsError, call, self.zk,
                                  CreateTTL(p, b"", OPEN_ACL_UNSAFE, mode, 1000))
        # TTL modes need createTTL; unknown modes are rejected
        for mode in (PERSISTENT_WITH_TTL, 7, 99):
            self.assertRaisesCode(E.BadArgumentsError, call, self.zk,
                                  RawCreate(p, b"", OPEN_ACL_UNSAFE, mode))
        self.assertIsNone(self.zk.exists(p))


# ---- data operations, versions, stats, errors -------------------------------------------------

class DataOps(Base):
    def test_get_set_versions(self):
        p = self.p("n")
        self.zk.create(p, b"0")
        st = self.zk.set(p, b"1", version=0)
        self.assertEqual(st.version, 1)
        self.assertRaisesCode(E.BadVersionError, self.zk.set, p, b"x", version=0)
        self.assertRaisesCode(E.BadVersionError, self.zk.set, p, b"x", version=2)
        self.assertEqual(self.zk.set(p, b"2", version=-1).version, 2)
        self.assertEqual(self.zk.set(p, b"", version=2).version, 3)
        data, st = self.zk.get(p)
        self.assertEqual((data, st.version, st.dataLength), (b"", 3, 0))
        self.assertRaisesCode(E.NoNodeError, self.zk.set, self.p("missing"), b"")
        self.assertRaisesCode(E.NoNodeError, self.zk.get, self.p("missing"))
        big = os.urandom(500 * 1024)
        self.zk.set(p, big)
        self.assertEqual(self.zk.get(p)[0], big)

    def test_delete_versions(self):
        p = self.p("d")
        self.zk.create(p)
        self.zk.set(p, b"x")
        self.assertRaisesCode(E.BadVersionError, self.zk.delete, p, version=0)
        self.assertTrue(self.zk.delete(p, version=1))
        self.assertRaisesCode(E.NoNodeError, self.zk.delete, p)
        self.zk.create(p + "/c", makepath=True)
        self.assertRaisesCode(E.NotEmptyError, self.zk.delete, p)
        self.assertRaisesCode(E.BadVersionError, self.zk.delete, p, version=5)  # checked first
        self.zk.delete(p + "/c")
        self.zk.delete(p, version=-1)
        self.assertIsNone(self.zk.exists(p))

    def test_exists_and_children(self):
        p = self.p("k")
        self.assertIsNone(self.zk.exists(p))
        self.zk.create(p, b"top")
        names = ["b", "a", "c-1", "z" * 200]
        for n in names:
            self.zk.create(p + "/" + n, n.encode()[:3])
        self.assertEqual(sorted(self.zk.get_children(p)), sorted(names))
        kids, st = self.zk.get_children(p, include_data=True)  # getChildren2
        self.assertEqual(sorted(kids), sorted(names))
        self.assertEqual(st, self.zk.exists(p))
        self.assertEqual(st.numChildren, 4)
        self.assertEqual(self.zk.get_children(p + "/a"), [])
        self.assertRaisesCode(E.NoNodeError, self.zk.get_children, self.p("missing"))
        self.assertRaisesCode(E.NoNodeError, self.zk.get_children, self.p("missing"),
                              include_data=True)

    def test_acls_roundtrip(self):
        p = self.p("acl")
        self.zk.create(p)
        acls, st = self.zk.get_acls(p)
        self.assertEqual(acls, OPEN_ACL_UNSAFE)
        self.assertEqual(st.aversion, 0)
        new = [make_digest_acl("u", "p", all=True),
               ACL(Permissions.READ | Permissions.ADMIN, Id("world", "anyone"))]
        st = self.zk.set_acls(p, new, version=0)
        self.assertEqual(st.aversion, 1)
        self.assertRaisesCode(E.BadVersionError, self.zk.set_acls, p, new, version=0)
        got, st = self.zk.get_acls(p)
        self.assertEqual(sorted(got), sorted(new))
        self.assertEqual(st.aversion, 1)
        self.assertRaisesCode(E.NoNodeError, self.zk.get_acls, self.p("missing"))
        self.assertRaisesCode(E.NoNodeError, self.zk.set_acls, self.p("missing"), OPEN_ACL_UNSAFE)

    def test_sync(self):
        p = self.p("s")
        self.zk.create(p)
        self.assertEqual(self.zk.sync(p), p)
        # sync does not look the path up
        self.assertEqual(self.zk.sync(self.p("missing")), self.p("missing"))
        other = self.client()
        other.set(p, b"new")
        self.zk.sync(p)
        self.assertEqual(self.zk.get(p)[0], b"new")

    def test_multi_success(self):
        x, y = self.p("x"), self.p("y")
        self.zk.create(x, b"0")
        self.zk.create(y)
        t = self.zk.transaction()
        t.create(self.p("a"), b"A")
        t.create(self.p("a", "b"), b"B")  # under a node created earlier in the same multi
        t.set_data(x, b"1", version=0)
        t.check(x, 1)
        t.delete(y, version=0)
        res = t.commit()
        self.assertEqual(len(res), 5)
        self.assertEqual(res[0], self.p("a"))
        self.assertEqual(res[1], self.p("a", "b"))
        self.assertIsInstance(res[2], ZnodeStat)
        self.assertEqual(res[2].version, 1)
        self.assertEqual(res[3:], [True, True])
        self.assertIsNone(self.zk.exists(y))
        # one transaction, one zxid
        za = self.zk.exists(self.p("a")).czxid
        self.assertEqual(self.zk.exists(self.p("a", "b")).czxid, za)
        self.assertEqual(self.zk.exists(x).mzxid, za)
        self.assertEqual(res[2].mzxid, za)
        self.assertEqual(self.zk.transaction().commit(), [])

    def test_multi_failure(self):
        x = self.p("x")
        self.zk.create(x, b"0")
        before = self.zk.exists(x)
        t = self.zk.transaction()
        t.create(self.p("a"), b"A")
        t.check(x, 5)
        t.set_data(x, b"1")
        t.delete(x)
        res = t.commit()
        self.assertEqual([type(r) for r in res],
                         [E.RolledBackError, E.BadVersionError, E.RuntimeInconsistency,
                          E.RuntimeInconsistency])
        self.assertIsNone(self.zk.exists(self.p("a")))
        self.assertEqual(self.zk.get(x), (b"0", before))
        t = self.zk.transaction()
        t.create(self.p("b"))
        t.create(x)
        t.create(self.p("c"))
        res = t.commit()
        self.assertEqual([type(r) for r in res],
                         [E.RolledBackError, E.NodeExistsError, E.RuntimeInconsistency])
        t = self.zk.transaction()
        t.delete(self.p("missing"))
        res = t.commit()
        self.assertEqual([type(r) for r in res], [E.NoNodeError])
        t = self.zk.transaction()
        t.create(self.p("e"), ephemeral=True)
        t.create(self.p("e", "child"))
        res = t.commit()
        self.assertEqual([type(r) for r in res],
                         [E.RolledBackError, E.NoChildrenForEphemeralsError])
        self.assertEqual(self.zk.get_children(self.root), ["x"])

    def test_stat_fields(self):
        c = self.zk
        p = self.p("st")
        t0 = int(time.time() * 1000)
        path, st = c.create(p, b"abc", include_data=True)
        t1 = int(time.time() * 1000)
        z_create = c.last_zxid
        self.assertEqual(st.czxid, z_create)
        self.assertEqual((st.mzxid, st.pzxid), (z_create, z_create))
        self.assertEqual(st.ctime, st.mtime)
        self.assertTrue(t0 - 5000 <= st.ctime <= t1 + 5000, (t0, st.ctime, t1))
        self.assertEqual((st.version, st.cversion, st.aversion), (0, 0, 0))
        self.assertEqual((st.ephemeralOwner, st.dataLength, st.numChildren), (0, 3, 0))
        self.assertEqual(c.exists(p), st)

        st2 = c.set(p, b"hello")
        z_set = c.last_zxid
        self.assertGreater(z_set, z_create)
        self.assertEqual((st2.czxid, st2.mzxid, st2.pzxid), (z_create, z_set, z_create))
        self.assertEqual(st2.ctime, st.ctime)
        self.assertGreaterEqual(st2.mtime, st.mtime)
        self.assertEqual((st2.version, st2.cversion, st2.aversion), (1, 0, 0))
        self.assertEqual((st2.dataLength, st2.numChildren), (5, 0))
        self.assertEqual(c.get(p)[1], st2)

        _, kst = c.create(p + "/kid", b"", include_data=True)
        z_kid = c.last_zxid
        self.assertEqual(kst.czxid, z_kid)
        st3 = c.exists(p)
        self.assertEqual((st3.czxid, st3.mzxid, st3.pzxid), (z_create, z_set, z_kid))
        self.assertEqual((st3.version, st3.cversion, st3.aversion), (1, 1, 0))
        self.assertEqual((st3.numChildren, st3.dataLength, st3.mtime), (1, 5, st2.mtime))

        c.set(p + "/kid", b"x")  # a child's data is not the parent's business
        self.assertEqual(c.exists(p), st3)

        c.delete(p + "/kid")
        z_del = c.last_zxid
        self.assertGreater(z_del, z_kid)
        st4 = c.exists(p)
        self.assertEqual((st4.czxid, st4.mzxid, st4.pzxid), (z_create, z_set, z_del))
        self.assertEqual((st4.version, st4.cversion, st4.numChildren), (1, 2, 0))

        st5 = c.set_acls(p, READ_ACL_UNSAFE + [make_digest_acl("u", "p", all=True)])
        self.assertEqual((st5.aversion, st5.version, st5.cversion), (1, 1, 2))
        self.assertEqual((st5.mzxid, st5.pzxid, st5.mtime), (z_set, z_del, st2.mtime))

        e = self.client()
        _, est = e.create(p + "-eph", b"", ephemeral=True, include_data=True)
        self.assertEqual(est.ephemeralOwner, e.client_id[0])
        self.assertEqual(c.exists(p + "-eph").ephemeralOwner, e.client_id[0])

    def test_error_classes(self):
        p = self.p("err")
        self.assertRaisesCode(E.NoNodeError, self.zk.create, p + "/missing/child")
        self.zk.create(p)
        self.assertRaisesCode(E.NodeExistsError, self.zk.create, p)
        self.assertRaisesCode(E.NodeExistsError, self.zk.create, "/")
        self.zk.create(p + "/c")
        self.assertRaisesCode(E.NotEmptyError, self.zk.delete, p)
        self.assertRaisesCode(E.BadVersionError, self.zk.set, p, b"", version=3)
        self.assertRaisesCode(E.NoNodeError, self.zk.delete, p + "/nope")
        # the reserved nodes cannot be deleted
        for reserved in ("/", "/zookeeper", "/zookeeper/quota"):
            self.assertRaisesCode(E.BadArgumentsError, self.zk.delete, reserved)

    def test_bad_paths_are_bad_arguments(self):
        # kazoo normalises paths itself, so these go out as raw requests
        p = self.p("bp")
        self.zk.create(p)
        self.zk.create(p + "/x")
        # (the parent is looked up first: a bad path under a missing parent is NoNode)
        bad = ["", "x", "//x", p + "/", p + "/x/", p + "/.", p + "/..", p + "/x/.",
               p + "/a\x00b", p + "/a\x01b", p + "/\ufff0"]
        for b in bad:
            with self.subTest(path=b):
                self.assertRaisesCode(E.BadArgumentsError, call, self.zk,
                                      RawCreate(b, b"", OPEN_ACL_UNSAFE, PERSISTENT))
                self.assertRaisesCode(E.BadArgumentsError, call, self.zk,
                                      RawSetData(b, b"", -1))
        for b in ("", "x"):
            self.assertRaisesCode(E.BadArgumentsError, call, self.zk, RawDelete(b, -1))
        self.assertRaisesCode(E.BadArgumentsError, call, self.zk, RawExists(p + "/a\x00b"))
        # the sequence suffix makes a trailing '/' or '.' a valid name
        self.assertEqual(call(self.zk, RawCreate(p + "/x/", b"", OPEN_ACL_UNSAFE,
                                                 PERSISTENT_SEQUENTIAL)), p + "/x/0000000000")
        self.assertEqual(call(self.zk, RawCreate(p + "/.", b"", OPEN_ACL_UNSAFE,
                                                 PERSISTENT_SEQUENTIAL)), p + "/.0000000001")
        self.assertEqual(sorted(self.zk.get_children(p)), [".0000000001", "x"])


# ---- watches ----------------------------------------------------------------------------------

class Watches(Base):
    def collector(self):
        evs, cond = [], threading.Condition()

        def cb(ev):
            with cond:
                evs.append((ev.type, ev.path))
                cond.notify_all()

        def wait(n, timeout=10):
            deadline = time.monotonic() + timeout
            with cond:
                while len(evs) < n and time.monotonic() < deadline:
                    cond.wait(0.1)
                return list(evs)
        return cb, evs, wait

    def test_data_watch_fires_once_on_set(self):
        a, b = self.zk, self.client()
        rec = Recorder(a)
        p = self.p("w")
        a.create(p, b"0")
        cb, evs, wait = self.collector()
        a.get(p, watch=cb)
        b.set(p, b"1")
        b.set(p, b"2")
        self.assertEqual(wait(1), [("CHANGED", p)])
        self.roundtrip(a)
        time.sleep(0.2)
        self.assertEqual(evs, [("CHANGED", p)], "a one-shot watch fired twice")
        self.assertEqual(rec.snapshot(), [(CHANGED, p)])

    def test_exists_watch_on_missing_fires_created(self):
        a, b = self.zk, self.client()
        p = self.p("later")
        cb, evs, wait = self.collector()
        self.assertIsNone(a.exists(p, watch=cb))
        b.create(p)
        self.assertEqual(wait(1), [("CREATED", p)])
        cb2, evs2, wait2 = self.collector()
        a.exists(p, watch=cb2)
        b.set(p, b"x")
        self.assertEqual(wait2(1), [("CHANGED", p)])

    def test_failed_get_leaves_no_watch(self):
        a, b = self.zk, self.client()
        rec = Recorder(a)
        p = self.p("nope")
        self.assertRaisesCode(E.NoNodeError, a.get, p, watch=lambda ev: None)
        self.assertRaisesCode(E.NoNodeError, a.get_children, p, watch=lambda ev: None)
        b.create(p)
        b.create(p + "/c")
        self.roundtrip(a)
        self.assertEqual(rec.snapshot(), [])

    def test_child_watch(self):
        a, b = self.zk, self.client()
        rec = Recorder(a)
        p = self.p("par")
        a.create(p)
        a.create(p + "/old")
        cb, evs, wait = self.collector()
        a.get_children(p, watch=cb)
        b.set(p + "/old", b"data of a child is not a child event")
        b.set(p, b"nor is the parent's data")
        b.create(p + "/new")
        b.create(p + "/newer")
        self.assertEqual(wait(1), [("CHILD", p)])
        self.roundtrip(a)
        self.assertEqual(rec.snapshot(), [(CHILD, p)])
        cb2, evs2, wait2 = self.collector()
        a.get_children(p, watch=cb2, include_data=True)
        b.delete(p + "/old")
        self.assertEqual(wait2(1), [("CHILD", p)])

    def test_delete_fires_deleted(self):
        a, b = self.zk, self.client()
        rec = Recorder(a)
        p = self.p("gone")
        a.create(p)
        cb_d, evs_d, wait_d = self.collector()
        cb_e, evs_e, wait_e = self.collector()
        cb_c, evs_c, wait_c = self.collector()
        a.get(p, watch=cb_d)
        a.exists(p, watch=cb_e)
        a.get_children(p, watch=cb_c)
        b.delete(p)
        self.assertEqual(wait_d(1), [("DELETED", p)])
        self.assertEqual(wait_e(1), [("DELETED", p)])
        self.assertEqual(wait_c(1), [("DELETED", p)])
        self.roundtrip(a)
        # one notification for all of the session's watches on the path
        self.assertEqual(rec.snapshot(), [(DELETED, p)])

    def test_every_watcher_fires(self):
        p = self.p("many")
        self.zk.create(p)
        clients = [self.client() for _ in range(4)]
        fired = [threading.Event() for _ in clients]
        for c, f in zip(clients, fired):
            c.get(p, watch=lambda ev, f=f: f.set())
        self.zk.set(p, b"x")
        for i, f in enumerate(fired):
            self.assertTrue(f.wait(10), "client %d got no event" % i)

    def test_event_arrives_before_read_that_sees_change(self):
        a, b = self.zk, self.client()
        rec = Recorder(a)
        for i in range(20):
            p = self.p("o%d" % i)
            a.create(p, b"old")
            cb_seen = threading.Event()
            a.get(p, watch=lambda ev: cb_seen.set())
            b.set(p, b"new")
            # b's write has been applied; a's next read must come after the notification
            n_before = len(rec.snapshot())
            data, _ = a.get(p)
            self.assertEqual(data, b"new")
            self.assertIn((CHANGED, p), rec.snapshot()[:],
                          "read returned new data before the watch event (round %d)" % i)
            self.assertGreaterEqual(len(rec.snapshot()), n_before)
            self.assertTrue(cb_seen.wait(10), "watch callback never ran (round %d)" % i)
        # and the same with a read that races the write: whenever it sees the new data, the
        # event has already been received
        for i in range(20):
            p = self.p("r%d" % i)
            a.create(p, b"old")
            a.get(p, watch=lambda ev: None)
            t = threading.Thread(target=b.set, args=(p, b"new"))
            t.start()
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline:
                data, _ = a.get(p)
                if data == b"new":
                    self.assertIn((CHANGED, p), rec.snapshot(),
                                  "read saw new data before the event (race round %d)" % i)
                    break
            else:
                self.fail("the write never became visible (race round %d)" % i)
            t.join(10)

    def test_persistent_watch(self):
        a, b = self.zk, self.client()
        rec = Recorder(a)
        p = self.p("pw")
        a.create(p)
        self.assertEqual(call(a, AddWatch(p, 0)), 0)
        b.set(p, b"1")
        b.set(p, b"2")
        b.create(p + "/c")
        b.set(p + "/c", b"grandchild events are not for a non-recursive watch")
        b.create(p + "/c/g")
        b.delete(p + "/c/g")
        b.delete(p + "/c")
        b.delete(p)
        b.create(p)
        want = [(CHANGED, p), (CHANGED, p), (CHILD, p), (CHILD, p), (DELETED, p), (CREATED, p)]
        self.assertEqual(rec.wait_count(len(want)), want)
        self.roundtrip(a)
        self.assertEqual(rec.snapshot(), want)
        # removing it stops the events
        call(a, CheckWatches(p, WT_ANY))
        self.assertEqual(call(a, RemoveWatches(p, WT_ANY)), 0)
        self.assertRaisesCode(NoWatcherError, call, a, CheckWatches(p, WT_ANY))
        b.set(p, b"3")
        self.roundtrip(a)
        self.assertEqual(rec.snapshot(), want)
        # one can watch a path that does not exist yet
        q = self.p("pw-later")
        call(a, AddWatch(q, 0))
        b.create(q)
        self.assertEqual(rec.wait_count(len(want) + 1)[-1], (CREATED, q))

    def test_persistent_watch_counts_as_data_and_child_watch(self):
        p = self.p("pwc")
        self.zk.create(p)
        call(self.zk, AddWatch(p, 0))
        self.assertEqual(call(self.zk, CheckWatches(p, WT_DATA)), 0)
        self.assertEqual(call(self.zk, CheckWatches(p, WT_CHILDREN)), 0)
        self.assertEqual(call(self.zk, CheckWatches(p, WT_ANY)), 0)

    def test_persistent_recursive_watch(self):
        a, b = self.zk, self.client()
        rec = Recorder(a)
        p = self.p("pr")
        a.create(p)
        self.assertEqual(call(a, AddWatch(p, 1)), 0)
        b.create(p + "/a")
        b.create(p + "/a/b")
        b.set(p + "/a/b", b"x")
        b.set(p, b"y")
        b.delete(p + "/a/b")
        b.create(self.p("pr-sibling"))  # a name that merely starts with the path is not under it
        b.create(p + "/a/c", ephemeral=True)
        b.stop()  # its ephemeral goes: a delete like any other
        want = [(CREATED, p + "/a"), (CREATED, p + "/a/b"), (CHANGED, p + "/a/b"), (CHANGED, p),
                (DELETED, p + "/a/b"), (CREATED, p + "/a/c"), (DELETED, p + "/a/c")]
        self.assertEqual(rec.wait_count(len(want)), want)
        self.roundtrip(a)
        self.assertEqual(rec.snapshot(), want, "no child events for a recursive watch")
        call(a, RemoveWatches(p, WT_ANY))
        a.set(p + "/a", b"z")
        self.roundtrip(a)
        self.assertEqual(rec.snapshot(), want)

    def test_remove_and_check_watches(self):
        a, b = self.zk, self.client()
        rec = Recorder(a)
        p = self.p("rw")
        a.create(p)
        a.get(p, watch=lambda ev: None)
        self.assertEqual(call(a, CheckWatches(p, WT_DATA)), 0)
        self.assertEqual(call(a, CheckWatches(p, WT_ANY)), 0)
        self.assertRaisesCode(NoWatcherError, call, a, CheckWatches(p, WT_CHILDREN))
        self.assertRaisesCode(NoWatcherError, call, a, RemoveWatches(p, WT_CHILDREN))
        # watches are per session: b has none to remove
        self.assertRaisesCode(NoWatcherError, call, b, RemoveWatches(p, WT_DATA))
        self.assertEqual(call(a, RemoveWatches(p, WT_DATA)), 0)
        self.assertRaisesCode(NoWatcherError, call, a, CheckWatches(p, WT_DATA))
        self.assertRaisesCode(NoWatcherError, call, a, RemoveWatches(p, WT_DATA))
        self.assertRaisesCode(NoWatcherError, call, a, RemoveWatches(self.p("none"), WT_ANY))
        b.set(p, b"x")
        self.roundtrip(a)
        self.assertEqual(rec.snapshot(), [], "a removed watch fired")
        # Any removes both kinds
        a.get(p, watch=lambda ev: None)
        a.get_children(p, watch=lambda ev: None)
        call(a, RemoveWatches(p, WT_ANY))
        self.assertRaisesCode(NoWatcherError, call, a, CheckWatches(p, WT_ANY))
        b.create(p + "/c")
        b.set(p, b"z")
        b.delete(p + "/c")
        b.delete(p)
        self.roundtrip(a)
        self.assertEqual(rec.snapshot(), [])
        # a fired watch is gone
        a.create(p)
        a.exists(p, watch=lambda ev: None)
        b.set(p, b"y")
        self.assertEqual(rec.wait_count(1), [(CHANGED, p)])
        self.assertRaisesCode(NoWatcherError, call, a, CheckWatches(p, WT_DATA))


# ---- sessions ---------------------------------------------------------------------------------

class Sessions(Base):
    def test_close_deletes_ephemerals_at_once(self):
        c = self.client()
        c.create(self.p("e1"), ephemeral=True)
        c.create(self.p("e2"), ephemeral=True, sequence=True)
        c.stop()
        self.assertEqual(self.zk.get_children(self.root), [])

    def test_expiry_after_client_killed(self):
        p = self.p("eph")
        proc, sid, pwd = self.holder(SHORT_SESSION_S, p, self.p("eph2"))
        st = self.zk.exists(p)
        self.assertEqual(st.ephemeralOwner, sid)
        gone = threading.Event()
        self.zk.exists(p, watch=lambda ev: ev.type == "DELETED" and gone.set())
        proc.kill()
        t0 = time.monotonic()
        proc.wait(10)
        # the session outlives its connection for about its timeout
        time.sleep(SHORT_SESSION_S * 0.4)
        self.assertIsNotNone(self.zk.exists(p), "ephemeral deleted as soon as its client died")
        self.assertTrue(gone.wait(SHORT_SESSION_S + 2 * TICK_MS / 1000.0 + 5),
                        "ephemeral of a dead client not deleted")
        elapsed = time.monotonic() - t0
        self.assertGreaterEqual(elapsed, SHORT_SESSION_S * 0.5, "session expired early")
        self.assertEqual(self.zk.get_children(self.root), [])
        # the expired session cannot be resumed: the server answers with timeout 0 and kazoo
        # reports the session lost and starts a new one
        c = self.client(timeout=SHORT_SESSION_S, client_id=(sid, pwd))
        self.assertNotEqual(c.client_id[0], sid, "an expired session was resumed")

    def test_resume_session_within_timeout(self):
        p = self.p("eph")
        proc, sid, pwd = self.holder(SHORT_SESSION_S, p)
        proc.kill()
        proc.wait(10)
        c = self.client(timeout=SHORT_SESSION_S, client_id=(sid, pwd))
        self.assertEqual(c.client_id[0], sid, "server gave a new session instead of resuming")
        time.sleep(SHORT_SESSION_S * 2)  # kept alive by the new connection
        self.assertEqual(self.zk.exists(p).ephemeralOwner, sid)
        c.create(self.p("more"), ephemeral=True)
        self.assertEqual(self.zk.exists(self.p("more")).ephemeralOwner, sid)
        c.stop()
        self.assertEqual(self.zk.get_children(self.root), [])

    def test_wrong_password_does_not_resume(self):
        p = self.p("eph")
        proc, sid, pwd = self.holder(10.0, p)
        bad = bytes(b ^ 0xFF for b in pwd)
        c = self.client(timeout=SHORT_SESSION_S, client_id=(sid, bad))
        self.assertNotEqual(c.client_id[0], sid, "resumed a session with a wrong password")
        self.assertEqual(self.zk.exists(p).ephemeralOwner, sid, "a wrong password hurt the session")

    def test_reconnect_keeps_ephemerals_and_watches(self):
        c = self.client(timeout=4.0)
        rec = Recorder(c)
        sid = c.client_id[0]
        p = self.p("w")
        c.create(p + "-eph", ephemeral=True)
        for suffix in ("", "-del", "-same"):
            c.create(p + suffix)
        c.get(p, watch=lambda ev: None)
        c.sync("/")
        zxid = c.last_zxid
        states = []
        c.add_listener(states.append)
        c._connection._socket.shutdown(socket.SHUT_RDWR)  # drop the connection, not the session
        self.assertTrue(wait_until(lambda: KazooState.SUSPENDED in states and c.connected, 15),
                        "client did not reconnect: %s" % states)
        self.assertEqual(c.client_id[0], sid)
        self.assertEqual(self.zk.exists(p + "-eph").ephemeralOwner, sid)
        # the old connection's watches died with it on the server
        self.zk.set(p, b"x")
        self.roundtrip(c)
        self.assertEqual(rec.snapshot(), [])
        # what happened "while disconnected" is reported when the watches are carried over
        self.zk.delete(p + "-del")
        self.zk.create(p + "-new")
        self.zk.create(p + "/kid")
        set_watches(c, zxid, data=[p, p + "-del", p + "-same"], exist=[p + "-new", p + "-none"],
                    child=[p, p + "-same"])
        want = [(CHANGED, p), (DELETED, p + "-del"), (CREATED, p + "-new"), (CHILD, p)]
        self.assertEqual(sorted(rec.snapshot()), sorted(want))
        # and the watches with nothing to report are registered
        self.zk.set(p + "-same", b"y")
        self.zk.create(p + "-same/kid")
        self.zk.create(p + "-none")
        want += [(CHANGED, p + "-same"), (CHILD, p + "-same"), (CREATED, p + "-none")]
        self.assertEqual(sorted(rec.wait_count(len(want))), sorted(want))
        self.roundtrip(c)
        self.assertEqual(len(rec.snapshot()), len(want))


class ServerRestart(Base):
    """kill -9 of the server with clients connected, restart on the same data dir and port."""

    @classmethod
    def setUpClass(cls):
        cls.server = make_server("restart")
        cls.server.start()

    @classmethod
    def tearDownClass(cls):
        cls.server.cleanup()

    def restart_kill9(self, down_s=0.0):
        self.server.kill9()
        time.sleep(down_s)
        self.server.start()
        return time.monotonic()

    def test_restart_within_timeout_resumes_sessions(self):
        # 15 s: with 6 s, ZooKeeper 3.8 (the control) once expired the session across its
        # restart, on the 2-core machine loaded by import_zookeeper's 100k-node load beside it.
        c = self.client(timeout=15.0)
        sid = c.client_id[0]
        p = self.p("e")
        c.create(p, b"eph", ephemeral=True)
        c.create(self.p("durable"), b"d")
        c.set(self.p("durable"), b"d2")
        c.create(self.p("other"))
        c.sync("/")
        zxid = c.last_zxid
        rec = Recorder(c)
        self.zk.stop()
        self.restart_kill9()
        self.assertTrue(wait_until(lambda: c.connected, 15), "client did not reconnect")
        self.assertEqual(c.client_id[0], sid)
        o = self.client()
        self.assertEqual(o.get(self.p("durable"))[0], b"d2", "acknowledged write lost")
        self.assertEqual(o.exists(p).ephemeralOwner, sid)
        o.set(self.p("other"), b"changed after the restart")
        set_watches(c, zxid, data=[self.p("durable"), self.p("other")])
        self.assertEqual(rec.snapshot(), [(CHANGED, self.p("other"))])
        o.set(self.p("durable"), b"d3")
        self.assertEqual(rec.wait_count(2), [(CHANGED, self.p("other")),
                                             (CHANGED, self.p("durable"))])
        c.create(self.p("after"), ephemeral=True)
        c.stop()
        self.assertEqual(sorted(o.get_children(self.root)), ["durable", "other"])

    def test_restart_after_timeout_live_client_resumes(self):
        # the server re-arms every session with a full timeout when it starts, so a client that
        # kept trying gets its session back even if the server was down longer than the timeout.
        # Twice the short timeout: the re-armed timeout runs from when the server loads its
        # sessions, and a JVM on a loaded machine can take a second or two more to accept.
        timeout = 2 * SHORT_SESSION_S
        c = self.client(timeout=timeout)
        sid = c.client_id[0]
        p = self.p("e")
        c.create(p, ephemeral=True)
        self.zk.stop()
        self.restart_kill9(down_s=timeout + 1.0)
        self.assertTrue(wait_until(lambda: c.connected, 15), "client did not reconnect")
        self.assertEqual(c.client_id[0], sid)
        time.sleep(timeout + 1.0)
        o = self.client()
        self.assertEqual(o.exists(p).ephemeralOwner, sid)

    def test_restart_after_timeout_dead_client_expires(self):
        p = self.p("e")
        proc, sid, pwd = self.holder(SHORT_SESSION_S, p)
        self.zk.stop()
        proc.kill()
        proc.wait(10)
        self.server.kill9()
        time.sleep(SHORT_SESSION_S + 1.0)
        # From before the start: the server re-arms the session while it starts, and a JVM on a
        # loaded machine can take a second or more after that to accept.
        t0 = time.monotonic()
        self.server.start()
        o = self.client()
        st = o.exists(p)
        self.assertIsNotNone(st, "session expired at restart instead of getting a full timeout")
        self.assertEqual(st.ephemeralOwner, sid)
        gone = wait_until(lambda: o.exists(p) is None, SHORT_SESSION_S + 2 * TICK_MS / 1000.0 + 5)
        elapsed = time.monotonic() - t0
        self.assertTrue(gone, "ephemeral of a dead session survived the restart")
        self.assertGreaterEqual(elapsed, SHORT_SESSION_S * 0.5)
        c = self.client(timeout=SHORT_SESSION_S, client_id=(sid, pwd))
        self.assertNotEqual(c.client_id[0], sid, "an expired session was resumed")


# ---- ACLs -------------------------------------------------------------------------------------

PERM_NAMES = {Permissions.READ: "READ", Permissions.WRITE: "WRITE", Permissions.CREATE: "CREATE",
              Permissions.DELETE: "DELETE", Permissions.ADMIN: "ADMIN"}


class Acls(Base):
    def node_with(self, name, acl):
        p = self.p(name)
        self.zk.create(p, b"data", acl=acl)
        return p

    def do_op(self, c, perm, p):
        """The operation that needs perm on p (for DELETE: deleting a child of p)."""
        if perm == Permissions.READ:
            c.get(p)
            c.get_children(p)
        elif perm == Permissions.WRITE:
            c.set(p, b"w")
        elif perm == Permissions.CREATE:
            c.create(p + "/new")
        elif perm == Permissions.DELETE:
            c.delete(p + "/kid")
        elif perm == Permissions.ADMIN:
            c.set_acls(p, self.zk_acl_for(p))

    def zk_acl_for(self, p):
        return self.acl_of[p]

    def perm_case(self, perm, allowed):
        self.acl_of = getattr(self, "acl_of", {})
        # world gets everything but perm; digest user u gets just perm
        acl = [ACL(Permissions.ALL & ~perm, Id("world", "anyone")),
               ACL(perm, make_digest_acl("u", "pw").id)]
        p = self.p("n")
        self.acl_of[p] = acl
        self.zk.create(p, b"data")
        self.zk.create(p + "/kid")
        self.zk.set_acls(p, acl)
        c = self.client()
        if allowed:
            c.add_auth("digest", "u:pw")
            self.do_op(c, perm, p)
        else:
            with self.assertRaises(E.NoAuthError, msg="%s not enforced" % PERM_NAMES[perm]):
                self.do_op(c, perm, p)
            # a wrong password is just another identity
            c.add_auth("digest", "u:wrong")
            with self.assertRaises(E.NoAuthError):
                self.do_op(c, perm, p)

    def test_read_denied(self):
        self.perm_case(Permissions.READ, False)

    def test_read_allowed(self):
        self.perm_case(Permissions.READ, True)

    def test_write_denied(self):
        self.perm_case(Permissions.WRITE, False)

    def test_write_allowed(self):
        self.perm_case(Permissions.WRITE, True)
        self.assertEqual(self.zk.get(self.p("n"))[0], b"w")

    def test_create_denied(self):
        self.perm_case(Permissions.CREATE, False)
        self.assertIsNone(self.zk.exists(self.p("n", "new")))

    def test_create_allowed(self):
        self.perm_case(Permissions.CREATE, True)
        self.assertIsNotNone(self.zk.exists(self.p("n", "new")))

    def test_delete_denied(self):
        self.perm_case(Permissions.DELETE, False)
        self.assertIsNotNone(self.zk.exists(self.p("n", "kid")))

    def test_delete_allowed(self):
        self.perm_case(Permissions.DELETE, True)
        self.assertIsNone(self.zk.exists(self.p("n", "kid")))

    def test_admin_denied(self):
        self.perm_case(Permissions.ADMIN, False)

    def test_admin_allowed(self):
        self.perm_case(Permissions.ADMIN, True)
        self.assertEqual(self.zk.exists(self.p("n")).aversion, 2)

    def test_permission_is_checked_on_the_right_node(self):
        # create and delete need the parent's permission, not the node's
        p = self.node_with("parent", [ACL(Permissions.CREATE | Permissions.DELETE | Permissions.READ,
                                          Id("world", "anyone"))])
        c = self.client()
        c.create(p + "/child", acl=[ACL(Permissions.READ, Id("world", "anyone"))])
        c.delete(p + "/child")
        # and the node's own ACL does not protect it from deletion
        q = self.node_with("locked", [ACL(Permissions.ALL, Id("world", "anyone"))])
        c.create(q + "/k", acl=[ACL(0, Id("world", "anyone"))])
        c.delete(q + "/k")
        # exists and sync need no permission; getChildren needs READ
        r = self.node_with("nothing", [ACL(0, Id("world", "anyone"))])
        self.assertIsNotNone(c.exists(r))
        self.assertEqual(c.sync(r), r)
        self.assertRaisesCode(E.NoAuthError, c.get_children, r)
        self.assertRaisesCode(E.NoAuthError, c.get, r)
        # zero permissions lock out even the creator
        self.assertRaisesCode(E.NoAuthError, self.zk.get, r)

    def test_world_read_only(self):
        p = self.node_with("ro", READ_ACL_UNSAFE)
        c = self.client()
        self.assertEqual(c.get(p)[0], b"data")
        self.assertRaisesCode(E.NoAuthError, c.set, p, b"x")
        self.assertRaisesCode(E.NoAuthError, c.create, p + "/c")
        self.assertRaisesCode(E.NoAuthError, c.set_acls, p, OPEN_ACL_UNSAFE)
        self.assertEqual(c.get_acls(p)[0], READ_ACL_UNSAFE)

    def test_digest(self):
        acl = [make_digest_acl("alice", "secret1", all=True)]
        self.assertEqual(acl[0].id.id, "alice:" + base64.b64encode(
            hashlib.sha1(b"alice:secret1").digest()).decode())
        p = self.node_with("d", acl)
        anon, alice, bob = self.client(), self.client(), self.client()
        alice.add_auth("digest", "alice:secret1")
        bob.add_auth("digest", "bob:secret1")
        self.assertRaisesCode(E.NoAuthError, anon.get, p)
        self.assertRaisesCode(E.NoAuthError, bob.get, p)
        self.assertEqual(alice.get(p)[0], b"data")
        alice.set(p, b"alice")
        got, _ = alice.get_acls(p)
        self.assertEqual(got, acl)
        # several identities: any matching one grants
        bob.add_auth("digest", "alice:secret1")
        self.assertEqual(bob.get(p)[0], b"alice")
        # auth survives a reconnect (kazoo re-sends it) and counts for the new connection
        states = []
        alice.add_listener(states.append)
        alice._connection._socket.shutdown(socket.SHUT_RDWR)
        self.assertTrue(wait_until(lambda: KazooState.SUSPENDED in states and alice.connected, 15))
        self.assertEqual(alice.get(p)[0], b"alice")

    def test_get_acl_redacts_digests_without_admin(self):
        p = self.node_with("red", [ACL(Permissions.READ, Id("world", "anyone")),
                                   make_digest_acl("u", "p", all=True)])
        c = self.client()
        got, st = c.get_acls(p)
        self.assertEqual(got, [ACL(Permissions.READ, Id("world", "anyone")),
                               ACL(Permissions.ALL, Id("digest", "u:x"))])
        c.add_auth("digest", "u:p")
        self.assertEqual(c.get_acls(p)[0][1], make_digest_acl("u", "p", all=True))
        # getACL needs READ or ADMIN
        q = self.node_with("wo", [ACL(Permissions.WRITE, Id("world", "anyone"))])
        self.assertRaisesCode(E.NoAuthError, self.client().get_acls, q)

    def test_auth_scheme(self):
        anon = self.client()
        self.assertRaisesCode(E.InvalidACLError, anon.create, self.p("x"),
                              acl=[ACL(Permissions.ALL, Id("auth", ""))])
        c = self.client()
        c.add_auth("digest", "carol:pw")
        p = self.p("mine")
        c.create(p, b"c", acl=[ACL(Permissions.ALL, Id("auth", ""))])
        got, _ = c.get_acls(p)
        self.assertEqual(got, [make_digest_acl("carol", "pw", all=True)])
        # the id given with 'auth' does not matter
        c.create(p + "2", acl=[ACL(Permissions.READ | Permissions.ADMIN,
                                   Id("auth", "someone-else"))])
        self.assertEqual(c.get_acls(p + "2")[0],
                         [make_digest_acl("carol", "pw", read=True, admin=True)])
        self.assertRaisesCode(E.NoAuthError, anon.get, p)
        other = self.client()
        other.add_auth("digest", "carol:pw")
        self.assertEqual(other.get(p)[0], b"c")
        # set_acls expands 'auth' the same way
        c.set_acls(p, [ACL(Permissions.READ | Permissions.ADMIN, Id("auth", ""))])
        self.assertEqual(c.get_acls(p)[0],
                         [make_digest_acl("carol", "pw", read=True, admin=True)])
        self.assertRaisesCode(E.InvalidACLError, anon.set_acls, self.p("mine2"),
                              [ACL(Permissions.ALL, Id("auth", ""))])

    def test_ip_scheme(self):
        c = self.client()
        for ip, ok in (("127.0.0.1", True), ("10.0.0.1", False), ("127.0.0.0/8", True),
                       ("10.0.0.0/8", False), ("127.0.0.1/32", True)):
            with self.subTest(ip=ip):
                name = "ip-" + ip.replace("/", "_")
                p = self.node_with(name, [ACL(Permissions.READ, Id("ip", ip)),
                                          ACL(Permissions.ADMIN, Id("world", "anyone"))])
                if ok:
                    self.assertEqual(c.get(p)[0], b"data")
                else:
                    self.assertRaisesCode(E.NoAuthError, c.get, p)

    def test_super_digest_bypasses_acls(self):
        p = self.node_with("s", [make_digest_acl("nobody", "x", read=True)])
        self.zk.create(self.p("s2"), acl=[ACL(0, Id("world", "anyone"))])
        su = self.client()
        su.add_auth("digest", "%s:%s" % (SUPER_USER, SUPER_PASSWORD))
        self.assertEqual(su.get(p)[0], b"data")
        su.set(p, b"su")
        su.create(p + "/c")
        su.delete(p + "/c")
        su.get(self.p("s2"))
        su.set_acls(self.p("s2"), OPEN_ACL_UNSAFE)
        self.assertEqual(self.zk.get(self.p("s2"))[0], b"")
        fake = self.client()
        fake.add_auth("digest", "%s:wrong" % SUPER_USER)
        self.assertRaisesCode(E.NoAuthError, fake.get, p)

    def test_invalid_acls(self):
        cases = {
            "empty": [],
            "digest-without-colon": [ACL(Permissions.ALL, Id("digest", "nocolon"))],
            "bad-ip": [ACL(Permissions.ALL, Id("ip", "notanip"))],
            "unknown-scheme": [ACL(Permissions.ALL, Id("nosuchscheme", "x"))],
            "world-not-anyone": [ACL(Permissions.ALL, Id("world", "nobody"))],
        }
        p = self.p("v")
        self.zk.create(p)
        for name, acl in cases.items():
            with self.subTest(case=name):
                self.assertRaisesCode(E.InvalidACLError, call, self.zk,
                                      RawCreate(self.p(name), b"", acl, PERSISTENT))
                if acl:
                    self.assertRaisesCode(E.InvalidACLError, self.zk.set_acls, p, acl)
        self.assertEqual(self.zk.get_children(self.root), ["v"])
        self.assertEqual(self.zk.get_acls(p)[0], OPEN_ACL_UNSAFE)

    def test_auth_failed(self):
        c = self.client()
        states = []
        c.add_listener(states.append)
        self.assertRaisesCode(E.AuthFailedError, c.add_auth, "nosuchscheme", "whatever")
        self.assertIn(KazooState.LOST, states)
        self.assertRaisesCode(E.AuthFailedError, c.exists, "/")

    def test_multi_checks_each_op(self):
        p = self.node_with("m", READ_ACL_UNSAFE)
        c = self.client()
        t = c.transaction()
        t.create(self.p("ok"))
        t.set_data(p, b"x")
        res = t.commit()
        self.assertEqual([type(r) for r in res], [E.RolledBackError, E.NoAuthError])
        self.assertIsNone(self.zk.exists(self.p("ok")))


# ---- recipes with concurrent clients ----------------------------------------------------------

def run_threads(targets, timeout):
    errors = []

    def wrap(fn):
        def run():
            try:
                fn()
            except BaseException as e:  # reported by the test
                errors.append(e)
        return run
    threads = [threading.Thread(target=wrap(t), daemon=True) for t in targets]
    for t in threads:
        t.start()
    deadline = time.monotonic() + timeout
    for t in threads:
        t.join(max(0.0, deadline - time.monotonic()))
    alive = sum(t.is_alive() for t in threads)
    return errors, alive


class Recipes(Base):
    def test_lock_mutual_exclusion(self):
        path = self.p("lock")
        state = {"holders": 0, "max": 0, "total": 0}
        guard = threading.Lock()
        clients = [self.client() for _ in range(5)]

        def worker(c, i):
            def run():
                lock = Lock(c, path, "worker-%d" % i)
                for _ in range(20):
                    self.assertTrue(lock.acquire(timeout=30), "lock not acquired in 30 s")
                    try:
                        with guard:
                            state["holders"] += 1
                            state["max"] = max(state["max"], state["holders"])
                        time.sleep(0.001)
                        with guard:
                            state["holders"] -= 1
                            state["total"] += 1
                    finally:
                        lock.release()
            return run
        errors, alive = run_threads([worker(c, i) for i, c in enumerate(clients)], 90)
        self.assertEqual(errors, [])
        self.assertEqual(alive, 0, "lock workers still running after 90 s")
        self.assertEqual(state["max"], 1, "two clients held the lock at once")
        self.assertEqual(state["total"], 100)
        self.assertEqual(self.zk.get_children(path), [])

    def test_election_one_leader_and_failover(self):
        path = self.p("election")
        procs = {}
        for i in range(3):
            ident = "c%d" % i
            procs[ident] = self.spawn(CONTENDER_SCRIPT, self.srv().hosts, SHORT_SESSION_S, path,
                                      ident)
            self.assertEqual(read_line(procs[ident], 20), "READY " + ident)
        leaders = []

        def next_leader(timeout):
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline:
                live = [p for p in procs.values() if p.poll() is None]
                r, _, _ = select.select([p.stdout for p in live], [], [], 0.2)
                for f in r:
                    line = f.readline().decode().strip()
                    if line.startswith("LEADER "):
                        return line.split()[1]
            return None
        first = next_leader(20)
        self.assertIsNotNone(first, "no leader elected")
        leaders.append(first)
        # nobody else leads while it lives
        self.assertIsNone(next_leader(1.0), "a second leader while the first is alive")
        for _ in range(2):
            procs[leaders[-1]].kill()
            procs[leaders[-1]].wait(10)
            new = next_leader(SHORT_SESSION_S + 10)
            self.assertIsNotNone(new, "no new leader after the leader's client was killed")
            self.assertNotIn(new, leaders)
            leaders.append(new)
        self.assertEqual(sorted(leaders), ["c0", "c1", "c2"])
        self.assertEqual(len(self.zk.get_children(path)), 1)

    def test_barrier(self):
        path = self.p("barrier")
        Barrier(self.zk, path).create()
        passed = []
        clients = [self.client() for _ in range(3)]

        def waiter(c, i):
            def run():
                self.assertTrue(Barrier(c, path).wait(timeout=30))
                passed.append(i)
            return run
        threads = [threading.Thread(target=waiter(c, i), daemon=True)
                   for i, c in enumerate(clients)]
        for t in threads:
            t.start()
        time.sleep(0.5)
        self.assertEqual(passed, [], "a client passed a raised barrier")
        Barrier(self.zk, path).remove()
        for t in threads:
            t.join(30)
        self.assertEqual(sorted(passed), [0, 1, 2])
        self.assertTrue(Barrier(self.zk, path).wait(timeout=1), "no barrier should not block")

    def test_double_barrier(self):
        path = self.p("dbarrier")
        n = 4
        entered, left = [], []
        guard = threading.Lock()
        clients = [self.client() for _ in range(n)]

        def member(c, i):
            def run():
                b = DoubleBarrier(c, path, n, identifier="m%d" % i)
                time.sleep(0.1 * i)  # arrive one by one
                with guard:
                    entered.append(("arrive", i))
                b.enter()
                with guard:
                    arrived = sum(1 for e in entered if e[0] == "arrive")
                    entered.append(("in", i, arrived))
                time.sleep(0.1 * (n - i))
                with guard:
                    left.append(("leave", i))
                b.leave()
                with guard:
                    gone = sum(1 for e in left if e[0] == "leave")
                    left.append(("out", i, gone))
            return run
        errors, alive = run_threads([member(c, i) for i, c in enumerate(clients)], 60)
        self.assertEqual(errors, [])
        self.assertEqual(alive, 0)
        for e in entered:
            if e[0] == "in":
                self.assertEqual(e[2], n, "member %d entered before all arrived" % e[1])
        for e in left:
            if e[0] == "out":
                self.assertEqual(e[2], n, "member %d left before all were leaving" % e[1])

    def test_counter(self):
        path = self.p("counter")
        clients = [self.client() for _ in range(10)]

        def worker(c):
            def run():
                counter = Counter(c, path)
                for _ in range(50):
                    counter += 1
            return run
        errors, alive = run_threads([worker(c) for c in clients], 120)
        self.assertEqual(errors, [])
        self.assertEqual(alive, 0)
        self.assertEqual(Counter(self.zk, path).value, 500)

    def queue_case(self, locking):
        path = self.p("queue")
        producers = [self.client() for _ in range(3)]
        consumers = [self.client() for _ in range(3)]
        per_producer = 40
        consumed = []
        guard = threading.Lock()
        done = threading.Event()
        make = LockingQueue if locking else Queue

        def producer(c, i):
            def run():
                q = make(c, path)
                for k in range(per_producer):
                    q.put(("p%d-%d" % (i, k)).encode())
            return run

        def consumer(c):
            def run():
                q = make(c, path)
                while True:
                    if locking:
                        item = q.get(timeout=0.5)
                    else:
                        item = q.get()
                    if item is None:
                        if done.is_set() and len(q) == 0:
                            return
                        if not locking:
                            time.sleep(0.02)
                        continue
                    with guard:
                        consumed.append(item)
                    if locking:
                        self.assertTrue(q.consume())
            return run
        cthreads = [threading.Thread(target=consumer(c), daemon=True) for c in consumers]
        errs = []
        for t in cthreads:
            t.start()
        errors, alive = run_threads([producer(c, i) for i, c in enumerate(producers)], 60)
        errs += errors
        done.set()
        for t in cthreads:
            t.join(60)
        self.assertEqual(errs, [])
        self.assertFalse(any(t.is_alive() for t in cthreads), "consumers still running")
        want = sorted(("p%d-%d" % (i, k)).encode() for i in range(3) for k in range(per_producer))
        self.assertEqual(sorted(consumed), want, "items lost or consumed twice")

    def test_queue(self):
        self.queue_case(locking=False)

    def test_locking_queue(self):
        self.queue_case(locking=True)


# ---- newer requests -----------------------------------------------------------------------------

class NewerRequests(Base):
    def test_whoami(self):
        c = self.client()
        self.assertEqual(call(c, WhoAmI()), [("ip", "127.0.0.1")])
        c.add_auth("digest", "dave:pw")
        self.assertEqual(sorted(call(c, WhoAmI())), [("digest", "dave"), ("ip", "127.0.0.1")])
        c.add_auth("digest", "erin:pw")
        self.assertEqual(sorted(call(c, WhoAmI())),
                         [("digest", "dave"), ("digest", "erin"), ("ip", "127.0.0.1")])

    def test_get_ephemerals(self):
        c, other = self.client(), self.client()
        r = self.root
        c.create(r + "/a", ephemeral=True)
        c.create(r + "/b")
        c.create(r + "/b/c", ephemeral=True)
        c.create(r + "x", ephemeral=True)  # a sibling of the root whose name extends it
        other.create(r + "/o", ephemeral=True)
        # the prefix is a string prefix, not a path prefix
        self.assertEqual(sorted(call(c, GetEphemerals(r))), [r + "/a", r + "/b/c", r + "x"])
        self.assertEqual(sorted(call(c, GetEphemerals(r + "/"))), [r + "/a", r + "/b/c"])
        self.assertEqual(sorted(call(c, GetEphemerals("/"))), [r + "/a", r + "/b/c", r + "x"])
        self.assertEqual(call(c, GetEphemerals(r + "/nothing")), [])
        self.assertEqual(call(other, GetEphemerals("/")), [r + "/o"])
        self.assertEqual(call(self.zk, GetEphemerals("/")), [])

    def test_get_all_children_number(self):
        r = self.root
        for p in ("a", "a/b", "a/b/c", "d", "d/e"):
            self.zk.create(r + "/" + p)
        self.assertEqual(call(self.zk, GetAllChildrenNumber(r)), 5)
        self.assertEqual(call(self.zk, GetAllChildrenNumber(r + "/a")), 2)
        self.assertEqual(call(self.zk, GetAllChildrenNumber(r + "/a/b/c")), 0)
        self.assertRaisesCode(E.NoNodeError, call, self.zk, GetAllChildrenNumber(r + "/zz"))
        self.zk.create(r + "/locked", acl=[make_digest_acl("u", "p", all=True)])
        self.assertRaisesCode(E.NoAuthError, call, self.zk, GetAllChildrenNumber(r + "/locked"))


def main(argv):
    import argparse
    global KIND, QUORUMFSD
    ap = argparse.ArgumentParser(add_help=False)
    ap.add_argument("--kind", choices=["zk", "quorumfsd"], default=KIND)
    ap.add_argument("--quorumfsd", default=QUORUMFSD)
    a, rest = ap.parse_known_args(argv[1:])
    KIND, QUORUMFSD = a.kind, a.quorumfsd
    if KIND == "quorumfsd" and not QUORUMFSD:
        sys.stderr.write("--kind quorumfsd needs --quorumfsd PATH (or $QUORUMFSD)\n")
        return 2
    prog = unittest.main(module=__name__, argv=[argv[0]] + rest, exit=False)
    return 0 if prog.result.wasSuccessful() else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv))
