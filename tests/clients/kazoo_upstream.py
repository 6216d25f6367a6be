#!/usr/bin/python3
"""kazoo's own test suite (shipped in Debian's python3-kazoo as kazoo.tests) against a 3-member
ensemble that this script starts on loopback: Apache ZooKeeper 3.8 or quorumfsd.

    /usr/bin/python3 tests/clients/kazoo_upstream.py --kind zk|quorumfsd [--quorumfsd PATH]
                     [--junit FILE] [-- PYTEST_ARGS...]

kazoo's harness (kazoo.testing.harness) normally starts its own ZooKeeper cluster from a
ZooKeeper install; here its global cluster is replaced by the ensemble (members stopped and
started by PID through tests/ensemble/ensemble.py), so the suite's clients, chroots, and the
tests that stop members all use it. Needs python3-pytest and python3-mock. Prints pytest's
report; exit status is pytest's (0: every test passed or was skipped).
"""

import argparse
import os
import signal
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "ensemble"))

import ensemble as E  # noqa: E402

# The super digest kazoo's harness gives ZooKeeper 3.5+ (password "test"), and the keys it adds.
SUPER_DIGEST = "super:D/InIHSb7yEEbrWz8b9l71RjZJU="


class Member:
    """What kazoo's tests use of a ManagedZooKeeper: address, running, stop(), run()."""

    def __init__(self, ens, i):
        self.ens, self.i = ens, i

    @property
    def address(self):
        return "127.0.0.1:%d" % self.ens.m(self.i)["client_port"]

    @property
    def client_port(self):
        return self.ens.m(self.i)["client_port"]

    @property
    def running(self):
        return self.ens.running(self.i)

    def stop(self):
        self.ens.stop_member(self.i)

    def run(self):
        if not self.running:
            self.ens.start_member(self.i)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if E.four_letter(self.client_port, "ruok", timeout=1.0) == "imok":
                return
            time.sleep(0.1)

    def reset(self):
        raise RuntimeError("kazoo_upstream.py: reset() of a member is not supported")

    destroy = stop


class Cluster(list):
    def start(self):
        for m in reversed(self):
            m.run()

    def stop(self):
        for m in self:
            m.stop()

    def terminate(self):
        pass  # the ensemble is ours to stop

    def reset(self):
        raise RuntimeError("kazoo_upstream.py: reset() of the cluster is not supported")


def main(argv):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--kind", choices=["zk", "quorumfsd"], required=True)
    p.add_argument("--quorumfsd")
    p.add_argument("--junit", help="write pytest's junit XML here")
    p.add_argument("pytest_args", nargs="*")
    a = p.parse_args(argv)

    import pytest
    import mock  # noqa: F401  (kazoo's tests import it; fail here with a clear message)
    import kazoo.testing.harness as H

    signal.signal(signal.SIGTERM, lambda *_: sys.exit("stopped by SIGTERM"))
    if a.kind == "zk" and not os.environ.get("QFS_ZK_JVM"):
        # ensemble.py's JVM flags plus what kazoo's harness gives ZooKeeper: read-only mode.
        os.environ["QFS_ZK_JVM"] = ("-Xms64m -Xmx256m -XX:+UseSerialGC -XX:TieredStopAtLevel=1 "
                                    "-Dreadonlymode.enabled=true")
    root = tempfile.mkdtemp(prefix="qfs-kazoo-upstream-%s-" % a.kind)
    # Read-only mode on both, as kazoo's harness runs ZooKeeper (docs/read-only.md).
    extra = {"DigestAuthenticationProvider.superDigest": SUPER_DIGEST,
             "reconfigEnabled": "true", "readonlymode.enabled": "true"}
    ens = E.Ensemble.create(os.path.join(root, "ens"), n=3, kind=a.kind, quorumfsd=a.quorumfsd,
                            tick_ms=2000, init_limit=4, sync_limit=2, extra=extra,
                            attached=True)  # kazoo harness: tickTime 2000, initLimit 4, syncLimit 2
    try:
        ens.start(timeout=120)
        ens.touch()
        # The harness builds its cluster from these variables; with the same values it keeps
        # the cluster set below instead of starting ZooKeeper itself.
        os.environ.setdefault("ZOOKEEPER_VERSION", "3.8.0")
        conf = {k: os.environ.get(k, H.CLUSTER_DEFAULTS.get(k))
                for k in ["ZOOKEEPER_PATH", "ZOOKEEPER_CLASSPATH", "ZOOKEEPER_PORT_OFFSET",
                          "ZOOKEEPER_CLUSTER_SIZE", "ZOOKEEPER_VERSION",
                          "ZOOKEEPER_OBSERVER_START_ID", "ZOOKEEPER_JAAS_AUTH"]}
        H.CLUSTER = Cluster(Member(ens, i) for i in ens.ids())
        H.CLUSTER_CONF = conf

        def no_own_cluster(*args, **kw):
            raise RuntimeError("a test asked kazoo's harness for its own ZooKeeper cluster")
        H.ZookeeperCluster = no_own_cluster
        # The SASL tests need a JAAS login config on the servers and ask the harness for a
        # cluster of its own, which this one refuses; tests/clients/test_sasl.py runs the same
        # kind of checks (kazoo and zkCli.sh, DIGEST-MD5) against both servers (docs/sasl.md).
        args = ["--pyargs", "kazoo.tests", "-p", "no:cacheprovider", "-rfE", "-q",
                "-o", "junit_family=xunit2", "-k", "not SASL"]
        if a.junit:
            args += ["--junitxml", a.junit]
        return pytest.main(args + a.pytest_args)
    finally:
        ens.cleanup()
        try:
            os.rmdir(root)
        except OSError:
            pass


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
