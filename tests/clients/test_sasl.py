#!/usr/bin/python3
"""SASL DIGEST-MD5 with kazoo (docs/sasl.md), against Apache ZooKeeper 3.8 (the control) and
quorumfsd, each a private server with the same JAAS file:

    /usr/bin/python3 tests/clients/test_sasl.py --quorumfsd PATH [--kind zk|quorumfsd|both]

Checks, on each server, the same observable results:
  - bob logs in with his password: a node created with ACL sasl:bob is his; an
    unauthenticated session and alice's SASL session get NoAuth on it; bob reads it;
  - the ACL "auth" expands to sasl:bob for bob's session (getACL shows it);
  - a wrong password and an unknown user are refused (the server drops the connection in
    the SASL exchange: kazoo goes AUTH_FAILED, then CLOSED);
  - the superUser (admin) reads bob's node;
  - setACL with a malformed sasl id ("a@b@c") is InvalidACL;
  - zkCli.sh (the stock Java client, a JAAS "Client" section and zookeeper.sasl.client=true)
    authenticates as bob (SaslAuthenticated), creates a node with ACL sasl:bob and reads it.
Exit 0 iff both servers passed every check with the same transcript.
"""

import argparse
import logging
import os
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import server as S  # noqa: E402

from kazoo.client import KazooClient  # noqa: E402
from kazoo.security import make_acl  # noqa: E402
import kazoo.exceptions as KE  # noqa: E402

logging.getLogger("kazoo").setLevel(logging.CRITICAL)

JAAS = """Server {
  org.apache.zookeeper.server.auth.DigestLoginModule required
  user_admin="adminsecret"
  user_alice="alicesecret"
  user_bob="bobsecret";
};
Client {
  org.apache.zookeeper.server.auth.DigestLoginModule required
  username="bob"
  password="bobsecret";
};
"""
ZKCLI = os.environ.get("ZKCLI", "/usr/share/zookeeper/bin/zkCli.sh")


class Failed(Exception):
    pass


def client(srv, user=None, password=None):
    opts = None
    if user:
        opts = {"mechanism": "DIGEST-MD5", "username": user, "password": password}
    zk = KazooClient(hosts=srv.hosts, timeout=10.0, sasl_options=opts,
                     connection_retry={"max_tries": 0})
    zk.start(timeout=15)
    return zk


def close(zk):
    try:
        zk.stop()
        zk.close()
    except Exception:  # noqa: BLE001
        pass


def expect(what, exc, fn):
    try:
        fn()
    except exc:
        return "%s: %s" % (what, exc.__name__)
    except Exception as e:  # noqa: BLE001
        raise Failed("%s: expected %s, got %r" % (what, exc.__name__, e))
    raise Failed("%s: expected %s, it succeeded" % (what, exc.__name__))


def refused(srv, user, password):
    """A SASL login that must fail: the server drops the connection in the SASL exchange,
    so kazoo goes CONNECTED (it says so before SASL), AUTH_FAILED, then CLOSED, without
    retrying.

    Whether start() returns or times out in between depends on which of kazoo's threads
    runs first, so the test records kazoo's session states instead."""
    opts = {"mechanism": "DIGEST-MD5", "username": user, "password": password}
    zk = KazooClient(hosts=srv.hosts, timeout=10.0, sasl_options=opts,
                     connection_retry={"max_tries": 0})
    states = []
    session_callback = zk._session_callback

    def record(state):
        states.append(str(state))
        session_callback(state)

    zk._session_callback = record
    try:
        zk.start_async()
        deadline = time.monotonic() + 15
        while "CLOSED" not in states and time.monotonic() < deadline:
            time.sleep(0.02)
        if "CLOSED" not in states:
            raise Failed("%s with password %r: not refused within 15 s (states %s)"
                         % (user, password, states))
        if "AUTH_FAILED" not in states:
            raise Failed("%s with password %r: closed without AUTH_FAILED (states %s)"
                         % (user, password, states))
        return " ".join(s for i, s in enumerate(states) if i == 0 or states[i - 1] != s)
    finally:
        close(zk)


def zkcli(srv, jaas):
    """zkCli.sh logged in as bob through the JAAS Client section."""
    env = dict(os.environ, CLIENT_JVMFLAGS="-Djava.security.auth.login.config=%s "
               "-Dzookeeper.sasl.client=true" % jaas)
    cmds = "create /zkcli-sasl x sasl:bob:cdrwa\ngetAcl /zkcli-sasl\nget /zkcli-sasl\nquit\n"
    p = subprocess.run([ZKCLI, "-server", srv.hosts], input=cmds, capture_output=True,
                       text=True, timeout=120, env=env)
    text = p.stdout + p.stderr
    for want in ("state:SaslAuthenticated", "Created /zkcli-sasl", "'sasl,'bob"):
        if want not in text:
            raise Failed("zkCli with SASL: no %r in:\n%s" % (want, text[-3000:]))
    return "zkCli.sh: SaslAuthenticated as bob, created and read a node with ACL sasl:bob"


def run(srv, jaas):
    out = []
    bob = client(srv, "bob", "bobsecret")
    try:
        bob.create("/sasl-bob", b"mine", acl=[make_acl("sasl", "bob", all=True)])
        if bob.get("/sasl-bob")[0] != b"mine":
            raise Failed("bob cannot read his node")
        out.append("bob created and read /sasl-bob (ACL sasl:bob)")
        bob.create("/sasl-auth", b"x", acl=[make_acl("auth", "", all=True)])
        acl = bob.get_acls("/sasl-auth")[0]
        ids = sorted("%s:%s" % (a.id.scheme, a.id.id) for a in acl)
        if ids != ["sasl:bob"]:
            raise Failed("ACL auth for bob became %r, not sasl:bob" % ids)
        out.append("ACL auth became %s" % ids)
        out.append(expect("setACL sasl:a@b@c", KE.InvalidACLError,
                          lambda: bob.set_acls("/sasl-auth", [make_acl("sasl", "a@b@c",
                                                                       all=True)])))
    finally:
        close(bob)
    anon = client(srv)
    try:
        out.append(expect("unauthenticated read", KE.NoAuthError, lambda: anon.get("/sasl-bob")))
    finally:
        close(anon)
    alice = client(srv, "alice", "alicesecret")
    try:
        out.append(expect("alice's read", KE.NoAuthError, lambda: alice.get("/sasl-bob")))
    finally:
        close(alice)
    admin = client(srv, "admin", "adminsecret")
    try:
        if admin.get("/sasl-bob")[0] != b"mine":
            raise Failed("the superUser cannot read bob's node")
        out.append("superUser admin read it")
    finally:
        close(admin)
    out.append("wrong password: %s" % refused(srv, "bob", "wrong"))
    out.append("unknown user: %s" % refused(srv, "eve", "x"))
    out.append(zkcli(srv, jaas))
    return out


def main(argv):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--quorumfsd", required=True)
    p.add_argument("--kind", choices=["zk", "quorumfsd", "both"], default="both")
    a = p.parse_args(argv)
    tmp = tempfile.mkdtemp(prefix="qfs-sasl-")
    jaas = os.path.join(tmp, "jaas.conf")
    with open(jaas, "w") as f:
        f.write(JAAS)
    extra = {"jaasLoginConfig": jaas, "superUser": "admin",
             "authProvider.1": "org.apache.zookeeper.server.auth.SASLAuthenticationProvider"}
    results = {}
    for kind in (["zk", "quorumfsd"] if a.kind == "both" else [a.kind]):
        srv = S.Server(kind, a.quorumfsd if kind == "quorumfsd" else None, extra_config=extra)
        try:
            srv.start()
            lines = run(srv, jaas)
            results[kind] = lines
            print("%s: PASS" % kind)
            for line in lines:
                print("  " + line)
        except Exception as e:  # noqa: BLE001
            results[kind] = None
            print("%s: FAIL: %s" % (kind, e))
            os.system("tail -20 %s" % srv.log_path)
        finally:
            srv.cleanup()
    os.remove(jaas)
    os.rmdir(tmp)
    if len(results) == 2 and all(results.values()) and results["zk"] != results["quorumfsd"]:
        print("the transcripts differ:\n  zk: %r\n  quorumfsd: %r" % (results["zk"],
                                                                    results["quorumfsd"]))
        return 1
    return 0 if all(results.values()) else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
