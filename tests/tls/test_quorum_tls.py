#!/usr/bin/python3
"""Quorum TLS (sslQuorum, docs/tls.md) on a 3-member quorumfsd ensemble behind the link proxy.

    test_quorum_tls.py --quorumfsd PATH

1. The ensemble forms with sslQuorum and serves kazoo writes on every member; its peer port
   answers TLS with the member's certificate, and refuses a TLS client without a certificate.
   TLS everywhere: each member also serves secureClientPort (ssl.clientAuth=need, its own
   certificate); kazoo (use_ssl, client1's certificate) writes through each member's secure
   port and reads every write back through each of them.
2. A stranger that knows quorum.secret but has a self-signed certificate takes member 3's place
   (same server.N line, fresh data dir): it is refused by both others (logged: TLS handshake),
   never serves, and nothing of it is applied; writes go on; the real member 3 rejoins.
3. Tampering: the proxy alters one byte of a chunk on every peer link, several times, while a
   writer runs: the links are closed and re-established (logged), every acknowledged write is
   on every member with its value, digests equal at equal zxids.
4. Rotation: a follower is restarted with a new certificate (and key) from the same CA while a
   writer writes through the other members: not one write fails, the follower rejoins and
   presents the new certificate.
Exit status 0 iff every check passed.
"""

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time

here = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(here, "..", "ensemble"))
sys.path.insert(0, here)
from ensemble import Ensemble  # noqa: E402
from certs import make_certs  # noqa: E402

from kazoo.client import KazooClient  # noqa: E402

failures = []


def check(what, cond, detail=""):
    print("%s: %s%s" % ("ok" if cond else "FAIL", what, (" (%s)" % (detail,)) if detail else ""),
          flush=True)
    if not cond:
        failures.append(what)


def log_text(ens, i):
    try:
        with open(ens.log_path(i), "rb") as f:
            return f.read().decode("utf-8", "replace")
    except OSError:
        return ""


def peer_cert_subject(port, certs, cert=None):
    """openssl s_client to a peer port: the subject it presents, or None if the handshake fails."""
    args = ["openssl", "s_client", "-connect", "127.0.0.1:%d" % port, "-CAfile", certs["ca.pem"],
            "-verify_return_error", "-brief"]
    if cert:
        args += ["-cert", certs[cert + ".crt"], "-key", certs[cert + ".key"]]
    p = subprocess.run(args, input=b"", capture_output=True, timeout=20)
    m = re.search(r"Peer certificate: (.*)", p.stderr.decode("utf-8", "replace"))
    return m.group(1).strip() if m and p.returncode == 0 else None


class Writer(threading.Thread):
    """Writes /tls-q/<tag>-<n> = b"<n>" in a loop through `hosts` until stopped; records which
    writes were acknowledged and which failed."""

    def __init__(self, hosts, tag):
        super().__init__(daemon=True)
        self.hosts, self.tag = hosts, tag
        self.acked, self.failed = {}, []
        self.stop_ev = threading.Event()

    def run(self):
        zk = KazooClient(hosts=self.hosts, timeout=10.0)
        zk.start(timeout=30)
        zk.ensure_path("/tls-q")
        n = 0
        while not self.stop_ev.is_set():
            path = "/tls-q/%s-%d" % (self.tag, n)
            try:
                zk.create(path, str(n).encode())
                self.acked[path] = str(n).encode()
            except Exception as e:
                self.failed.append("%s: %s" % (path, type(e).__name__))
            n += 1
            time.sleep(0.01)
        zk.stop()
        zk.close()

    def finish(self):
        self.stop_ev.set()
        self.join(60)


def verify_all(ens, acked, what):
    """Every acknowledged write, with its value, on every running member."""
    ens.wait_converged(timeout=60)
    for i in ens.running_ids():
        zk = KazooClient(hosts="127.0.0.1:%d" % ens.m(i)["client_port"], timeout=10.0)
        zk.start(timeout=30)
        try:
            zk.sync("/")
            bad = [p for p, v in acked.items() if (zk.exists(p) and zk.get(p)[0]) != v]
        finally:
            zk.stop()
            zk.close()
        check("%s: member %d has all %d acknowledged writes with their values" % (
            what, i, len(acked)), not bad, bad[:5])


def secure_port_base():
    """A multiple of 10 whose +1..+3 are free loopback ports (secureClientPort "B/10{id}")."""
    import socket
    for _ in range(200):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            base = s.getsockname()[1] // 10 * 10
        if base < 20000 or base + 3 > 65535:
            continue
        try:
            for i in (1, 2, 3):
                with socket.socket() as t:
                    t.bind(("127.0.0.1", base + i))
            return base
        except OSError:
            continue
    raise RuntimeError("no free secure client ports")


def tls_everywhere(base, certs):
    """Clients and peers both over TLS: kazoo on each member's secure client port."""
    clients = []
    try:
        for i in (1, 2, 3):
            zk = KazooClient(hosts="127.0.0.1:%d" % (base + i), use_ssl=True, ca=certs["ca.pem"],
                             certfile=certs["client1.crt"], keyfile=certs["client1.key"],
                             timeout=10.0)
            zk.start(timeout=30)
            clients.append(zk)
        for i, zk in enumerate(clients, 1):
            zk.create("/tls-q/over-tls-%d" % i, b"t%d" % i)
        for i, zk in enumerate(clients, 1):
            zk.sync("/tls-q")
            got = [zk.get("/tls-q/over-tls-%d" % j)[0] for j in (1, 2, 3)]
            check("TLS everywhere: member %d's secure client port reads every member's TLS write"
                  % i, got == [b"t1", b"t2", b"t3"], got)
    except Exception as e:  # noqa: BLE001 - the failure is the check's detail
        check("TLS everywhere: kazoo over each member's secure client port (%r)" % e, False)
    finally:
        for zk in clients:
            zk.stop()
            zk.close()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--quorumfsd", required=True)
    args = ap.parse_args()
    tmp = tempfile.mkdtemp(prefix="qfs-qtls-")
    ens = None
    try:
        t0 = time.monotonic()
        cdir = os.path.join(tmp, "certs")
        os.makedirs(cdir)
        certs = make_certs(cdir, members=True)
        keys = os.path.join(tmp, "keys")  # each member's key store, replaced for rotation
        os.makedirs(keys)
        for i in (1, 2, 3):
            shutil.copy(certs["m%d.pem" % i], os.path.join(keys, "m%d.pem" % i))
        print("certificates made in %.1f s" % (time.monotonic() - t0))
        base = secure_port_base()
        extra = {"secureClientPort": "%d{id}" % (base // 10),
                 "ssl.keyStore.location": os.path.join(keys, "m{id}.pem"),
                 "ssl.trustStore.location": certs["ca.pem"],
                 "sslQuorum": "true",
                 "ssl.quorum.keyStore.location": os.path.join(keys, "m{id}.pem"),
                 "ssl.quorum.trustStore.location": certs["ca.pem"]}
        ens = Ensemble.create(os.path.join(tmp, "ens"), n=3, kind="quorumfsd", proxy=True,
                              quorumfsd=os.path.abspath(args.quorumfsd), tick_ms=200,
                              extra=extra)
        # ---- 1. forms and serves ----
        t1 = time.monotonic()
        ens.start(timeout=90)
        leader = ens.wait_healthy()
        print("formed in %.1f s, leader %d" % (time.monotonic() - t1, leader))
        zk = KazooClient(hosts=ens.connect_string(), timeout=10.0)
        zk.start(timeout=30)
        zk.ensure_path("/tls-q")
        acked = {}
        for n in range(50):
            p = zk.create("/tls-q/first-%d" % n, b"v%d" % n)
            acked[p] = b"v%d" % n
        zk.stop()
        zk.close()
        verify_all(ens, acked, "formed")
        for i in (1, 2, 3):
            port = ens.m(i)["peer_port"]
            subj = peer_cert_subject(port, certs, cert="client1")
            check("member %d's peer port speaks TLS with CN=m%d" % (i, i),
                  subj is not None and "CN = m%d" % i in subj, subj)
        check("a peer port refuses a TLS client without a certificate",
              peer_cert_subject(ens.m(1)["peer_port"], certs) is None)
        tls_everywhere(base, certs)

        # ---- 2. a stranger with a self-signed certificate in member 3's place ----
        ens.stop_member(3)
        m3_data = os.path.join(ens.m(3)["dir"], "data")
        saved = os.path.join(tmp, "m3-data")
        shutil.move(m3_data, saved)
        os.makedirs(m3_data)
        with open(os.path.join(m3_data, "myid"), "w") as f:
            f.write("3\n")
        ens.s["extra"] = dict(extra, **{
            "ssl.quorum.keyStore.location": certs["selfsigned.pem"],
            "ssl.quorum.trustStore.location": certs["selfsigned.crt"]})
        before = {i: log_text(ens, i).count("refused: TLS handshake") for i in (1, 2)}
        ens.start_member(3)
        w = Writer(ens.connect_string([1, 2]), "stranger")
        w.start()
        time.sleep(4)
        w.finish()
        st3 = ens.member_status(3)
        check("the stranger never serves", not st3["serving"], ens.describe([st3]))
        after = {i: log_text(ens, i).count("refused: TLS handshake") for i in (1, 2)}
        check("members 1 and 2 logged refusing the stranger's TLS handshake",
              all(after[i] > before[i] for i in (1, 2)), (before, after))
        check("writes went on without the stranger (%d acknowledged, %d failed)" % (
            len(w.acked), len(w.failed)), len(w.acked) > 20 and not w.failed, w.failed[:3])
        # Nothing reached the stranger: its tree never got the ensemble's writes.
        ens_zxid = ens.member_status(1)["zxid"] or 0
        check("the stranger's tree has none of the ensemble's txns",
              (st3["zxid"] or 0) < ens_zxid, "stranger zxid %s, ensemble 0x%x" % (
                  st3["zxid"], ens_zxid))
        ens.stop_member(3)
        since = log_text(ens, 3).split("==== start")[-1]
        check("the stranger never synced from a leader",
              "serving as" not in since and "syncs us" not in since, since[-300:])
        shutil.rmtree(m3_data)
        shutil.move(saved, m3_data)
        ens.s["extra"] = extra
        ens.start_member(3)
        ens.wait_healthy(ids=[1, 2, 3])
        acked.update(w.acked)
        verify_all(ens, acked, "after the stranger")

        # ---- 3. bytes altered in flight ----
        before = sum(log_text(ens, i).count("WARN") for i in (1, 2, 3))
        w = Writer(ens.connect_string(), "flip")
        w.start()
        time.sleep(1)
        for rnd in range(3):
            for a in (1, 2, 3):
                for b in (1, 2, 3):
                    if a != b:
                        ens.proxy("flip %d %d 1" % (a, b))
            time.sleep(1.5)
        w.finish()
        status = ens.proxy("status")
        import json
        flipped = sum(v["flipped"] for v in json.loads(status).values())
        check("the proxy altered bytes in flight (%d chunks)" % flipped, flipped >= 6)
        logs = "".join(log_text(ens, i) for i in (1, 2, 3))
        tls_errors = len(re.findall(r"bad record mac|decryption failed|decrypt", logs, re.I))
        check("members logged the altered records (%d TLS errors)" % tls_errors, tls_errors > 0)
        ens.wait_healthy(timeout=60)
        acked.update(w.acked)
        print("tampering: %d writes acknowledged, %d failed (connection loss allowed)" % (
            len(w.acked), len(w.failed)))
        check("writes were acknowledged while links were tampered with", len(w.acked) > 20)
        verify_all(ens, acked, "after tampering")

        # ---- 4. rotation: a follower restarted with a new certificate ----
        leader = ens.wait_healthy()
        follower = 2 if leader != 2 else 3
        others = [i for i in (1, 2, 3) if i != follower]
        shutil.copy(certs["m2b.pem"], os.path.join(keys, "m%d.pem" % follower))
        w = Writer(ens.connect_string(others), "rotate")
        w.start()
        time.sleep(1)
        t2 = time.monotonic()
        ens.stop_member(follower)
        ens.start_member(follower)
        ens.wait_healthy(ids=[1, 2, 3], timeout=60)
        rejoin = time.monotonic() - t2
        time.sleep(1)
        w.finish()
        check("member %d rejoined with its new certificate in %.1f s" % (follower, rejoin),
              ens.member_status(follower)["serving"])
        subj = peer_cert_subject(ens.m(follower)["peer_port"], certs, cert="client1")
        check("member %d presents the new certificate" % follower,
              subj is not None and "CN = m2b" in subj, subj)
        check("no write failed during the rotation (%d acknowledged)" % len(w.acked),
              not w.failed and len(w.acked) > 20, w.failed[:3])
        acked.update(w.acked)
        verify_all(ens, acked, "after rotation")
        print("quorum TLS test took %.1f s" % (time.monotonic() - t0))
    except Exception as e:
        import traceback
        traceback.print_exc()
        check("no exception: %s" % e, False)
        if ens:
            for i in ens.ids():
                print(ens.log_tail(i, 20))
    finally:
        if ens:
            ens.cleanup()
        shutil.rmtree(tmp, ignore_errors=True)
    print("%d failures" % len(failures))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
