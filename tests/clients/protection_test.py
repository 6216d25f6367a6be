"""Bad input and limits on quorumfsd's client port, with raw sockets and kazoo:
  - a malformed packet, an oversized length and garbage after the handshake each close only
    their own connection; a client connected meanwhile keeps working;
  - a getChildren reply over the packet limit is answered with ZMARSHALLINGERROR, and the
    connection stays usable;
  - maxClientCnxns refuses the connection over the limit;
  - the Prometheus page counts requests and reports the tree, watches and fsyncs.
Run: /usr/bin/python3 protection_test.py QUORUMFSD_PATH
"""

import os
import socket
import struct
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from server import Server, free_port  # noqa: E402
import urllib.request  # noqa: E402

from kazoo.client import KazooClient  # noqa: E402
from kazoo.exceptions import MarshallingError  # noqa: E402

QUORUMFSD = None


def connect_request(timeout_ms=10000):
    body = struct.pack(">iqiq", 0, 0, timeout_ms, 0) + struct.pack(">i", 16) + b"\0" * 16 + b"\0"
    return struct.pack(">i", len(body)) + body


def recv_exact(s, n):
    out = b""
    while len(out) < n:
        chunk = s.recv(n - len(out))
        if not chunk:
            return None
        out += chunk
    return out


def closed_by_server(s, wait=5.0):
    """True if the server closes the socket (EOF or reset) within `wait` seconds."""
    s.settimeout(wait)
    try:
        while True:
            data = s.recv(65536)
            if not data:
                return True
    except (ConnectionResetError, BrokenPipeError):
        return True
    except socket.timeout:
        return False


class ProtectionTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.metrics_port = free_port()
        cls.srv = Server("quorumfsd", QUORUMFSD,
                         extra_config={"jute.maxbuffer": "2048", "maxClientCnxns": "8",
                                       "metricsProvider.httpPort": str(cls.metrics_port)})
        cls.srv.start()
        cls.host, cls.port = cls.srv.hosts.split(":")
        cls.port = int(cls.port)

    @classmethod
    def tearDownClass(cls):
        cls.srv.stop()
        cls.srv.cleanup()

    def raw(self):
        return socket.create_connection((self.host, self.port), timeout=5)

    def kazoo(self):
        zk = KazooClient(hosts=self.srv.hosts, timeout=10)
        zk.start(timeout=10)
        return zk

    def test_malformed_packets_close_only_their_connection(self):
        zk = self.kazoo()
        try:
            zk.ensure_path("/prot")
            # 1. garbage instead of a connect request
            s = self.raw()
            s.sendall(struct.pack(">i", 12) + b"\xff" * 12)
            self.assertTrue(closed_by_server(s), "garbage connect request left open")
            s.close()
            # 2. a length prefix far over jute.maxbuffer
            s = self.raw()
            s.sendall(struct.pack(">i", 512 << 20))
            self.assertTrue(closed_by_server(s), "oversized length left open")
            s.close()
            # 3. a valid handshake, then a truncated getData body
            s = self.raw()
            s.sendall(connect_request())
            n = struct.unpack(">i", recv_exact(s, 4))[0]
            self.assertIsNotNone(recv_exact(s, n))
            bad = struct.pack(">ii", 1, 4) + struct.pack(">i", 100) + b"/pr"  # string cut short
            s.sendall(struct.pack(">i", len(bad)) + bad)
            self.assertTrue(closed_by_server(s), "malformed request left open")
            s.close()
            # the well-behaved client did not notice
            zk.set("/prot", b"still here")
            self.assertEqual(zk.get("/prot")[0], b"still here")
        finally:
            zk.stop()
            zk.close()

    def test_oversized_get_children_is_an_error_not_a_disconnect(self):
        zk = self.kazoo()
        try:
            zk.ensure_path("/wide")
            # Names of 200 bytes; enough of them that the list passes 2048 + 64 KiB.
            t = zk.transaction()
            count = 0
            for i in range(400):
                t.create("/wide/%s%04d" % ("n" * 195, i))
                count += 1
                if count % 5 == 0:
                    t.commit()
                    t = zk.transaction()
            t.commit()
            with self.assertRaises(MarshallingError):
                zk.get_children("/wide")
            # The same connection still answers.
            self.assertIsNotNone(zk.exists("/wide"))
            self.assertEqual(zk.get("/wide")[0], b"")
        finally:
            zk.stop()
            zk.close()

    def test_connections_per_ip_are_bounded(self):
        socks = []
        try:
            # maxClientCnxns=8; the harness's readiness checks are closed by now.
            time.sleep(0.5)
            for _ in range(8):
                s = self.raw()
                s.sendall(connect_request())
                n = struct.unpack(">i", recv_exact(s, 4))[0]
                self.assertIsNotNone(recv_exact(s, n))
                socks.append(s)
            extra = self.raw()
            socks.append(extra)
            self.assertTrue(closed_by_server(extra), "connection over maxClientCnxns accepted")
        finally:
            for s in socks:
                s.close()

    def test_prometheus_metrics(self):
        zk = self.kazoo()
        try:
            zk.ensure_path("/metrics-test")
            zk.get("/metrics-test", watch=lambda e: None)
            url = "http://127.0.0.1:%d/metrics" % self.metrics_port
            text = urllib.request.urlopen(url, timeout=5).read().decode()
        finally:
            zk.stop()
            zk.close()
        values = {}
        for line in text.splitlines():
            if line and not line.startswith("#"):
                name, _, value = line.rpartition(" ")
                values[name] = float(value)
        self.assertGreaterEqual(values.get('quorumfs_requests_total{op="getData"}', 0), 1)
        self.assertGreaterEqual(values.get('quorumfs_request_seconds_count{op="getData"}', 0), 1)
        self.assertIn('quorumfs_request_seconds_bucket{op="getData",le="+Inf"}', values)
        self.assertGreaterEqual(values["quorumfs_znodes"], 5)
        self.assertGreaterEqual(values["quorumfs_watches"], 1)
        self.assertGreaterEqual(values["quorumfs_fsyncs"], 1)
        for g in ("quorumfs_outstanding_requests", "quorumfs_fsync_max_seconds",
                  "quorumfs_log_bytes", "quorumfs_snapshot_bytes", "quorumfs_sessions"):
            self.assertIn(g, values)


if __name__ == "__main__":
    QUORUMFSD = sys.argv.pop(1)
    unittest.main(verbosity=2)
