#!/usr/bin/python3
"""Client TLS (docs/tls.md) with stock clients; Apache ZooKeeper 3.8 (Netty, PEM stores) is the
control.

    test_client_tls.py --quorumfsd PATH [--kind zk|quorumfsd|both]

Certificates are made by the test with openssl (tests/tls/certs.py). Against each server, with
secureClientPort beside clientPort:
1. ssl.clientAuth=need: kazoo (use_ssl) with client1's certificate creates a node whose ACL is
   x509:<client1's subject>; client1 reads it, client2 and a plain-port client get NoAuth, the
   x509 super user (X509AuthenticationProvider.superUser) reads and writes it; an "auth" ACL
   becomes client1's x509 id; a malformed x509 id is InvalidACL; addauth x509 succeeds with a
   certificate and fails without; a client with a certificate from a stranger CA and a client
   with no certificate are refused; ruok inside TLS; the plain port still serves; zkCli.sh
   (ClientCnxnSocketNetty, PEM stores) reads the node as client1 and is refused as client2.
2. ssl.clientAuth=want: a client without a certificate connects (and has no x509 id); the
   stranger is still refused; client1 still reads.
3. ssl.clientAuth=none: client1 connects, but shows no certificate, so it has no x509 id.
The outcomes must be the expected ones on both servers, and equal. quorumfsd only: a
secure-only server (clientPort=0) listens on one port; JKS/PKCS12 stores are refused at start.
Exit status 0 iff every check passed.
"""

import argparse
import ctypes
import os
import shutil
import socket
import ssl
import subprocess
import sys
import tempfile
import time

here = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(here, "..", "clients"))
sys.path.insert(0, here)
from server import Server, free_port  # noqa: E402
from certs import make_certs, dn  # noqa: E402

from kazoo.client import KazooClient  # noqa: E402
from kazoo.exceptions import NoAuthError, InvalidACLError, AuthFailedError  # noqa: E402
from kazoo.security import make_acl, make_digest_acl  # noqa: E402

ZKCLI = "/usr/share/zookeeper/bin/zkCli.sh"
failures = []


def check(what, cond, detail=""):
    print("%s: %s%s" % ("ok" if cond else "FAIL", what, (" (%s)" % detail) if detail else ""))
    if not cond:
        failures.append(what)


def tls_config(c, client_auth, port):
    return {
        "secureClientPort": port,
        "serverCnxnFactory": "org.apache.zookeeper.server.NettyServerCnxnFactory",
        "authProvider.x509": "org.apache.zookeeper.server.auth.X509AuthenticationProvider",
        "X509AuthenticationProvider.superUser": dn("admin"),
        "ssl.keyStore.location": c["server.pem"],
        "ssl.keyStore.type": "PEM",
        "ssl.trustStore.location": c["ca.pem"],
        "ssl.trustStore.type": "PEM",
        "ssl.clientAuth": client_auth,
    }


class Clients:
    def __init__(self, certs, secure_port, plain_port):
        self.c = certs
        self.secure_port = secure_port
        self.plain_port = plain_port
        self.open = []

    def tls(self, name=None, key=None):
        """A kazoo session on the secure port with `name`'s certificate (None: no certificate);
        None if it cannot connect."""
        kw = dict(hosts="127.0.0.1:%d" % self.secure_port, use_ssl=True, ca=self.c["ca.pem"],
                  timeout=4.0)
        if name:
            kw.update(certfile=self.c[name + ".crt"], keyfile=self.c[(key or name) + ".key"])
        return self._start(KazooClient(**kw))

    def plain(self):
        return self._start(KazooClient(hosts="127.0.0.1:%d" % self.plain_port, timeout=4.0))

    def _start(self, zk):
        try:
            zk.start(timeout=6)
        except Exception:
            zk.stop()
            zk.close()
            return None
        self.open.append(zk)
        return zk

    def close_all(self):
        for zk in self.open:
            try:
                zk.stop()
                zk.close()
            except Exception:
                pass
        self.open = []


def outcome(fn):
    """'ok:<value>' or the exception's class name."""
    try:
        v = fn()
        return "ok" if v is None else "ok:%s" % (v,)
    except Exception as e:  # the class is the outcome
        return type(e).__name__


def tls_four_letter(port, certs, word="ruok"):
    ctx = ssl.create_default_context(cafile=certs["ca.pem"])
    ctx.check_hostname = False
    ctx.load_cert_chain(certs["client1.crt"], certs["client1.key"])
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=5) as raw:
            with ctx.wrap_socket(raw) as s:
                s.sendall(word.encode())
                out = b""
                while True:
                    try:
                        b = s.recv(4096)
                    except (ssl.SSLEOFError, ConnectionResetError):
                        break
                    if not b:
                        break
                    out += b
                return out.decode()
    except (OSError, ssl.SSLError) as e:
        return "error: %s" % e


def zkcli(port, certs, name, command):
    flags = " ".join([
        # zkCli.sh's classpath lacks netty-codec and netty-resolver, which the Netty client
        # needs (docs/tls.md).
        "-cp /etc/zookeeper/conf:/usr/share/java/zookeeper.jar:/usr/share/java/netty-codec.jar:"
        "/usr/share/java/netty-resolver.jar",
        "-Dzookeeper.client.secure=true",
        "-Dzookeeper.clientCnxnSocket=org.apache.zookeeper.ClientCnxnSocketNetty",
        "-Dzookeeper.ssl.keyStore.location=" + certs[name + ".pem"],
        "-Dzookeeper.ssl.keyStore.type=PEM",
        "-Dzookeeper.ssl.trustStore.location=" + certs["ca.pem"],
        "-Dzookeeper.ssl.trustStore.type=PEM",
    ])
    env = dict(os.environ, CLIENT_JVMFLAGS=flags)
    p = subprocess.run([ZKCLI, "-server", "127.0.0.1:%d" % port] + command.split(), env=env,
                       stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=60)
    return p.stdout + p.stderr


def run_kind(kind, quorumfsd, certs):
    print("==== %s" % kind)
    results = {}
    secure_port = free_port()
    srv = Server(kind, quorumfsd, tick_ms=500,
                 extra_config=tls_config(certs, "need", secure_port), name=kind)
    cl = Clients(certs, secure_port, srv.port)
    try:
        t0 = time.monotonic()
        srv.start()
        # ---- need ----
        c1 = cl.tls("client1")
        results["need: client1 connects"] = c1 is not None
        if c1 is None:
            print(srv.log_tail())
            return results
        x509_acl = [make_acl("x509", dn("client1"), all=True)]
        results["need: create x509 node"] = outcome(lambda: c1.create("/tls-a", b"one", x509_acl))
        results["need: client1 reads"] = outcome(lambda: c1.get("/tls-a")[0].decode())
        c2 = cl.tls("client2")
        results["need: client2 connects"] = c2 is not None
        results["need: client2 reads"] = outcome(lambda: c2.get("/tls-a")[0].decode())
        p = cl.plain()
        results["need: plain port serves"] = outcome(lambda: "zookeeper" in p.get_children("/"))
        results["need: plain reads"] = outcome(lambda: p.get("/tls-a")[0].decode())
        results["need: plain addauth x509"] = outcome(lambda: p.add_auth("x509", ""))
        adm = cl.tls("admin")
        results["need: super user reads"] = outcome(lambda: adm.get("/tls-a")[0].decode())
        results["need: super user writes"] = outcome(lambda: adm.set("/tls-a", b"two").version)
        results["need: auth ACL"] = outcome(
            lambda: [(a.id.scheme, a.id.id, a.perms) for a in
                     (c1.create("/tls-auth", b"", [make_acl("auth", "", all=True)]),
                      c1.get_acls("/tls-auth")[0])[1]])
        results["need: bad x509 id"] = outcome(
            lambda: c1.create("/tls-bad", b"", [make_acl("x509", "nonsense", all=True)]))
        results["need: client1 addauth x509"] = outcome(lambda: c1.add_auth("x509", ""))
        results["need: digest beside x509"] = outcome(
            lambda: (c1.add_auth("digest", "u:p"),
                     c1.create("/tls-d", b"", [make_digest_acl("u", "p", all=True)]),
                     c1.get("/tls-d")[1].version)[2])
        results["need: stranger connects"] = cl.tls("stranger") is not None
        results["need: no certificate connects"] = cl.tls(None) is not None
        results["need: ruok inside TLS"] = tls_four_letter(secure_port, certs)
        conf = tls_four_letter(secure_port, certs, "conf") or ""
        results["need: conf names the secure port"] = (
            "secureClientPort=%d" % secure_port) in conf.splitlines()
        out1 = zkcli(secure_port, certs, "client1", "get /tls-a")
        results["need: zkCli client1 get"] = "two" in out1.splitlines()
        out2 = zkcli(secure_port, certs, "client2", "get /tls-a")
        results["need: zkCli client2 refused"] = "Insufficient permission" in out2
        out3 = zkcli(secure_port, certs, "client1", "whoami")
        results["need: zkCli whoami"] = [
            l for l in out3[out3.find("Auth scheme"):].strip().splitlines()
            # zkCli prints its watcher's connect event whenever it arrives, maybe in between.
            if l.strip() and not l.startswith(("SLF4J", "WATCHER::", "WatchedEvent"))]
        if not results["need: zkCli client1 get"]:
            print(out1[-2000:])
        cl.close_all()

        # ---- want ----
        srv.extra_config["ssl.clientAuth"] = "want"
        srv.restart()
        n = cl.tls(None)
        results["want: no certificate connects"] = n is not None
        results["want: no certificate reads"] = outcome(lambda: n.get("/tls-a")[0].decode())
        results["want: no certificate addauth x509"] = outcome(lambda: n.add_auth("x509", ""))
        c1 = cl.tls("client1")
        results["want: client1 reads"] = outcome(lambda: c1.get("/tls-a")[0].decode())
        results["want: stranger connects"] = cl.tls("stranger") is not None
        cl.close_all()

        # ---- none ----
        srv.extra_config["ssl.clientAuth"] = "none"
        srv.restart()
        c1 = cl.tls("client1")
        results["none: client1 connects"] = c1 is not None
        results["none: client1 reads"] = outcome(lambda: c1.get("/tls-a")[0].decode())
        p = cl.plain()
        results["none: plain port serves"] = outcome(lambda: p.exists("/tls-a") is not None)
        cl.close_all()
        print("%s scenario took %.1f s" % (kind, time.monotonic() - t0))
    finally:
        cl.close_all()
        srv.cleanup()
    return results


EXPECTED = {
    "need: client1 connects": True,
    "need: create x509 node": "ok:/tls-a",
    "need: client1 reads": "ok:one",
    "need: client2 connects": True,
    "need: client2 reads": "NoAuthError",
    "need: plain port serves": "ok:True",
    "need: plain reads": "NoAuthError",
    "need: plain addauth x509": "AuthFailedError",
    "need: super user reads": "ok:one",
    "need: super user writes": "ok:1",
    "need: auth ACL": "ok:[('x509', '%s', 31)]" % dn("client1"),
    "need: bad x509 id": "InvalidACLError",
    "need: client1 addauth x509": "ok:True",
    "need: digest beside x509": "ok:0",
    "need: stranger connects": False,
    "need: no certificate connects": False,
    "need: ruok inside TLS": "imok",
    "need: conf names the secure port": True,
    "need: zkCli client1 get": True,
    "need: zkCli client2 refused": True,
    "need: zkCli whoami": ["Auth scheme: User", "ip: 127.0.0.1", "x509: " + dn("client1")],
    "want: no certificate connects": True,
    "want: no certificate reads": "NoAuthError",
    "want: no certificate addauth x509": "AuthFailedError",
    "want: client1 reads": "ok:two",
    "want: stranger connects": False,
    "none: client1 connects": True,
    "none: client1 reads": "NoAuthError",
    "none: plain port serves": "ok:True",
}


def quorumfsd_only(quorumfsd, certs, tmp):
    """Secure-only serving and refused store types: quorumfsd's own start-up behaviour."""
    print("==== quorumfsd only")
    data = os.path.join(tmp, "solo")
    os.makedirs(data)
    port = free_port()
    cfg = os.path.join(tmp, "solo.cfg")
    base = ["dataDir=" + data, "clientPort=0", "secureClientPort=%d" % port,
            "ssl.keyStore.location=" + certs["server.pem"],
            "ssl.trustStore.location=" + certs["ca.pem"]]
    with open(cfg, "w") as f:
        f.write("\n".join(base) + "\n")
    log = open(os.path.join(tmp, "solo.log"), "wb")
    proc = subprocess.Popen([quorumfsd, cfg], stdout=log, stderr=subprocess.STDOUT)
    try:
        listening = None
        for _ in range(100):
            if tls_four_letter(port, certs) == "imok":
                out = subprocess.run(["ss", "-Hltnp"], capture_output=True, text=True).stdout
                listening = [l for l in out.splitlines() if "pid=%d," % proc.pid in l]
                break
            time.sleep(0.1)
        check("secure only: ruok on the secure port", listening is not None)
        check("secure only: one listening port", listening is not None and len(listening) == 1,
              listening)
        conf = (tls_four_letter(port, certs, "conf") or "").splitlines()
        check("secure only: conf says clientPort=-1 and the secure port",
              "clientPort=-1" in conf and "secureClientPort=%d" % port in conf, conf[:3])
    finally:
        proc.terminate()
        proc.wait(timeout=20)
        log.close()
    for extra, want in ((["ssl.keyStore.type=JKS"], "only PEM"),
                        (["ssl.trustStore.location=" + os.path.join(tmp, "trust.p12")],
                         "only PEM"),
                        (["ssl.keyStore.location=" + certs["ca.pem"]], "private key")):
        with open(cfg, "w") as f:
            f.write("\n".join(base + extra) + "\n")
        p = subprocess.run([quorumfsd, cfg], capture_output=True, text=True, timeout=30)
        check("refused at start: %s" % extra[0].split("=")[0] + " " + want,
              p.returncode != 0 and want in p.stderr, "status %d: %s" % (
                  p.returncode, p.stderr.strip().splitlines()[-1:] if p.stderr else ""))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--quorumfsd", required=True)
    ap.add_argument("--kind", default="both", choices=["zk", "quorumfsd", "both"])
    args = ap.parse_args()
    tmp = tempfile.mkdtemp(prefix="qfs-tls-")
    try:
        t0 = time.monotonic()
        certs = make_certs(tmp)
        print("certificates made in %.1f s" % (time.monotonic() - t0))
        kinds = ["zk", "quorumfsd"] if args.kind == "both" else [args.kind]
        got = {k: run_kind(k, os.path.abspath(args.quorumfsd), certs) for k in kinds}
        for k in kinds:
            for what, want in EXPECTED.items():
                check("%s: %s" % (k, what), got[k].get(what) == want,
                      "got %r, expected %r" % (got[k].get(what), want))
        if len(kinds) == 2:
            check("zk and quorumfsd agree", got["zk"] == got["quorumfsd"])
        if "quorumfsd" in kinds:
            quorumfsd_only(os.path.abspath(args.quorumfsd), certs, tmp)
        try:
            lib = ctypes.CDLL("libzookeeper_mt.so.2")
            has = hasattr(lib, "zookeeper_init_ssl")
        except OSError:
            has = False
        print("note: Debian's C client %s zookeeper_init_ssl%s" % (
            "has" if has else "lacks",
            "" if has else " (built without OpenSSL): the C client cannot use TLS"))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print("%d failures" % len(failures))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
