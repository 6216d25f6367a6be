#!/usr/bin/python3
"""Start, stop, break and inspect an N-member quorumfsd (or Apache ZooKeeper 3.8) ensemble on
loopback. The library behind scripts/ensemble and the fault tests.

    ens = Ensemble.create(dir, n=3, observers=0, kind="quorumfsd"|"zk", proxy=False)
    ens.start(); ens.leader(); ens.kill(2); ens.start_member(2); ens.cut(1, 2); ens.stop()
    ens = Ensemble.load(dir)              # the same ensemble from another process

$QFS_ZK_HEAP sets ZooKeeper's -Xmx (default 256m); $QFS_ZK_JVM, if set, replaces the
JVM flags (heap, GC, JIT) entirely.

State (ports, pids with their start times, dirs) lives in DIR/state.json so that separate
commands compose. A pid is only ever signalled if /proc says it is still the process that was
started (same start time), so nothing another engineer runs is touched.

Each member i has DIR/m<i>/ (data/, zoo.cfg, server.log) and its own client, peer and election
ports. With proxy=True a netproxy.py process gets one listening port per directed link i>j (and
per port kind: quorumfsd dials only the peer port, ZooKeeper also the election port); member i's
config points server.j at the proxy's port for i>j, so cut(i, j) = cut i>j and j>i.
"""

import argparse
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
PY = "/usr/bin/python3"
ZK_CLASSPATH = "/usr/share/java/zookeeper.jar:/usr/share/java/slf4j-simple.jar"
# Keys ZooKeeper reads as Java system properties, not from zoo.cfg: with kind "zk", `extra` keys
# named here become -D flags (quorumfsd reads them from its config file).
ZK_SYSTEM_PROPERTIES = ("readonlymode.enabled",)
# reconfig=True (dynamic reconfiguration, docs/reconfig.md): the super user's password for
# reconfig requests, and its digest for DigestAuthenticationProvider.superDigest.
SUPER_AUTH = ("digest", "super:qfs-test")
SUPER_DIGEST = "super:SBaVdCNhmtoDk19hnCJcIxipoBI="


class EnsembleError(Exception):
    pass


# The loopback helpers the single-server harness already has.
sys.path.insert(0, os.path.join(REPO, "tests", "clients"))
import server as _clients  # noqa: E402

free_port = _clients.free_port


def port_open(host, port, timeout=1.0):
    """True when something accepts TCP connections at host:port."""
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def four_letter(port, word, timeout=2.0, host="127.0.0.1"):
    """The reply to a four-letter word, or None if the port does not answer."""
    return _clients.four_letter(port, word, timeout, host)


def proc_start_time(pid):
    """Field 22 of /proc/PID/stat (start time in clock ticks since boot), or None."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            s = f.read()
        return int(s[s.rindex(")") + 2:].split()[19])
    except (OSError, ValueError, IndexError):
        return None


def proc_state(pid):
    try:
        with open("/proc/%d/stat" % pid) as f:
            s = f.read()
        return s[s.rindex(")") + 2]
    except (OSError, ValueError, IndexError):
        return None


def default_quorumfsd():
    p = os.environ.get("QUORUMFSD")
    if p:
        return os.path.abspath(p)
    return os.path.join(REPO, "build", "release", "daemon", "quorumfsd")


def _pdeathsig():
    try:
        import ctypes
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGKILL, 0, 0, 0)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


class Ensemble:
    """See the module doc. `attached=True` (the tests): members are children of this process and
    die with it (PR_SET_PDEATHSIG); `attached=False` (the CLI): members are detached."""

    def __init__(self, state, attached=True):
        self.s = state
        self.attached = attached
        self._popen = {}  # id -> Popen (attached mode), so kills are reaped

    # ---- construction and state -------------------------------------------------------------
    @classmethod
    def create(cls, dir, n=3, observers=0, kind="quorumfsd", proxy=False, quorumfsd=None,
               tick_ms=200, init_limit=10, sync_limit=5, min_session_ms=None,
               max_session_ms=None, extra=None, attached=True, linearizable_reads=False,
               base_port=None, hosts=None, env=None, reconfig=False):
        """hosts: {id: address} for members that do not live on 127.0.0.1 (each member binds its
        client and peer ports there; tests/netns gives each its own 127.0.0.N); env: {id: {VAR:
        value}} added to that member's environment. reconfig: reconfigEnabled, a super user
        (SUPER_AUTH) and, for ZooKeeper, standaloneEnabled=false with its dynamic config file;
        add_member / remove_member change the membership (docs/reconfig.md)."""
        if kind not in ("quorumfsd", "zk"):
            raise ValueError("kind is quorumfsd or zk")
        dir = os.path.abspath(dir)
        if os.path.exists(os.path.join(dir, "state.json")):
            old = cls.load(dir)
            if old.running_ids():
                raise EnsembleError("%s already holds a running ensemble (members %s); stop it "
                                    "first" % (dir, old.running_ids()))
            shutil.rmtree(dir)
        os.makedirs(dir, exist_ok=True)
        qfsd = None
        if kind == "quorumfsd":
            qfsd = os.path.abspath(quorumfsd or default_quorumfsd())
            if not os.access(qfsd, os.X_OK):
                raise EnsembleError("no quorumfsd binary at %s (set $QUORUMFSD or run "
                                    "scripts/build release)" % qfsd)
        total = n + observers
        members = {}
        port = base_port
        for i in range(1, total + 1):
            if base_port:
                c, p, e = port, port + 1, port + 2
                port += 3
            else:
                c, p, e = free_port(), free_port(), free_port()
            members[str(i)] = cls._new_member(dir, i, i > n, c, p, e,
                                              (hosts or {}).get(i, "127.0.0.1"),
                                              dict((env or {}).get(i, {})))
        state = {"kind": kind, "dir": dir, "n": n, "observers": observers,
                 "quorumfsd": qfsd, "tick_ms": tick_ms, "init_limit": init_limit,
                 "sync_limit": sync_limit,
                 "min_session_ms": min_session_ms or 2 * tick_ms,
                 "max_session_ms": max_session_ms or 20 * tick_ms,
                 "secret": "qfs-test-" + os.urandom(8).hex(), "proxy": bool(proxy),
                 "proxy_pid": None, "proxy_start_time": None, "proxy_ports": None,
                 "linearizable_reads": bool(linearizable_reads),
                 "extra": dict(extra or {}), "members": members, "reconfig": bool(reconfig)}
        ens = cls(state, attached)
        for m in members.values():
            os.makedirs(os.path.join(m["dir"], "data"), exist_ok=True)
            with open(os.path.join(m["dir"], "data", "myid"), "w") as f:
                f.write("%d\n" % m["id"])
        ens.save()
        return ens

    @staticmethod
    def _new_member(dir, i, observer, c, p, e, host="127.0.0.1", env=None):
        # in_config: a member of the ensemble's configuration (False: started to join, or
        # removed by a reconfig; ids() leaves it out).
        return {"id": i, "observer": observer, "client_port": c, "peer_port": p,
                "host": host, "env": env or {}, "election_port": e,
                "dir": os.path.join(dir, "m%d" % i), "pid": None, "start_time": None,
                "in_config": True}

    @classmethod
    def load(cls, dir, attached=False):
        with open(os.path.join(dir, "state.json")) as f:
            return cls(json.load(f), attached)

    def save(self):
        path = os.path.join(self.s["dir"], "state.json")
        with open(path + ".tmp", "w") as f:
            json.dump(self.s, f, indent=1)
        os.rename(path + ".tmp", path)

    @property
    def kind(self):
        return self.s["kind"]

    @property
    def dir(self):
        return self.s["dir"]

    def ids(self):
        """The members of the configuration (docs/reconfig.md: add_member, remove_member)."""
        return sorted(int(i) for i, m in self.s["members"].items() if m.get("in_config", True))

    def all_ids(self):
        """Every member ever made, in the configuration or not."""
        return sorted(int(i) for i in self.s["members"])

    def voter_ids(self):
        return [i for i in self.ids() if not self.m(i)["observer"]]

    def m(self, i):
        return self.s["members"][str(i)]

    def log_path(self, i):
        return os.path.join(self.m(i)["dir"], "server.log")

    def log_tail(self, i, lines=25):
        try:
            with open(self.log_path(i), "rb") as f:
                text = f.read().decode("utf-8", "replace").splitlines()
        except OSError:
            return ""
        return "\n".join("    m%d| %s" % (i, l) for l in text[-lines:])

    def host(self, i):
        return self.m(i).get("host", "127.0.0.1")

    def client_addr(self, i):
        return "%s:%d" % (self.host(i), self.m(i)["client_port"])

    def connect_string(self, ids=None):
        return ",".join(self.client_addr(i) for i in (ids or self.ids()))

    # ---- processes --------------------------------------------------------------------------
    def _ours(self, pid, start_time):
        return pid is not None and start_time is not None and proc_start_time(pid) == start_time \
            and proc_state(pid) not in (None, "Z", "X")

    def pid(self, i):
        m = self.m(i)
        return m["pid"] if self._ours(m["pid"], m["start_time"]) else None

    def running(self, i):
        return self.pid(i) is not None

    def running_ids(self):
        return [i for i in self.ids() if self.running(i)]

    def _peer_addr(self, i, j, kind):
        """The host:port member i dials for member j's `kind` port."""
        mj = self.m(j)
        if self.s["proxy"] and i != j:
            return self.s["proxy_ports"]["links"]["%d>%d/%s" % (i, j, kind)]
        return mj["peer_port"] if kind == "peer" else mj["election_port"]

    def _write_config(self, i):
        m = self.m(i)
        s = self.s
        cfg = os.path.join(m["dir"], "zoo.cfg")
        # A member outside the configuration (joining, or removed and restarted) starts from
        # the configuration plus itself, as ZooKeeper's joiners do.
        if self.kind == "zk" and s.get("reconfig") and m.get("in_config", True) and \
                os.path.exists(cfg):
            with open(cfg) as f:
                if "dynamicConfigFile=" in f.read():
                    return  # ZooKeeper keeps its membership there (it moved the server lines)
        lines = [("tickTime", s["tick_ms"]), ("initLimit", s["init_limit"]),
                 ("syncLimit", s["sync_limit"]), ("dataDir", os.path.join(m["dir"], "data")),
                 ("dataLogDir", os.path.join(m["dir"], "data")),
                 ("clientPort", m["client_port"]), ("clientPortAddress", self.host(i)),
                 ("maxClientCnxns", 0), ("minSessionTimeout", s["min_session_ms"]),
                 ("maxSessionTimeout", s["max_session_ms"])]
        if self.kind == "zk":
            lines += [("admin.enableServer", "false"), ("4lw.commands.whitelist", "*"),
                      ("standaloneEnabled", "false" if len(self.ids()) > 1 else "true")]
        if m["observer"]:
            lines.append(("peerType", "observer"))
        if s.get("reconfig"):
            if self.kind == "zk":
                lines = [kv for kv in lines if kv[0] != "standaloneEnabled"] + \
                    [("standaloneEnabled", "false"), ("reconfigEnabled", "true")]
            else:
                lines += [("reconfigEnabled", "true"),
                          ("DigestAuthenticationProvider.superDigest", SUPER_DIGEST)]
        # The configuration's members; a member started to join lists itself too.
        listed = sorted(set(self.ids()) | {i})
        if len(listed) > 1 or self.kind == "zk":
            for j in listed:
                mj = self.m(j)
                peer = self._peer_addr(i, j, "peer")
                elec = self._peer_addr(i, j, "election") if self.kind == "zk" \
                    else mj["election_port"]
                client = ("%s:%d" % (self.host(j), mj["client_port"]) if self.kind == "zk"
                          else "%d" % mj["client_port"])
                # through the proxy, j's ports are the proxy's (on 127.0.0.1)
                host = "127.0.0.1" if self.s["proxy"] and i != j else self.host(j)
                lines.append(("server.%d" % j, "%s:%d:%d%s;%s" % (
                    host, peer, elec, ":observer" if mj["observer"] else "", client)))
            if self.kind == "quorumfsd":
                lines.append(("quorum.secret", s["secret"]))
        if self.kind == "quorumfsd" and s["linearizable_reads"]:
            lines.append(("linearizableReads", "true"))
        for k, v in s["extra"].items():
            if self.kind == "zk" and k in ZK_SYSTEM_PROPERTIES:
                continue  # a -D flag (_command)
            lines.append((k, str(v).replace("{id}", str(i))))  # per-member values, e.g. mount=
        with open(os.path.join(m["dir"], "zoo.cfg"), "w") as f:
            for k, v in lines:
                f.write("%s=%s\n" % (k, v))

    def _command(self, i):
        cfg = os.path.join(self.m(i)["dir"], "zoo.cfg")
        if self.kind == "quorumfsd":
            return [self.s["quorumfsd"], cfg]
        heap = os.environ.get("QFS_ZK_HEAP", "256m")
        # $QFS_ZK_JVM replaces the test-friendly defaults, e.g. for benchmarks (bench/speed_compare.sh).
        jvm = os.environ.get("QFS_ZK_JVM", "").split() or [
            "-Xms64m", "-Xmx" + heap, "-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1"]
        props = ["-D%s=%s" % (k, v) for k, v in self.s["extra"].items()
                 if k in ZK_SYSTEM_PROPERTIES]
        if self.s.get("reconfig"):
            props.append("-Dzookeeper.DigestAuthenticationProvider.superDigest=" + SUPER_DIGEST)
        return ["java"] + jvm + props + [
                "-Dzookeeper.extendedTypesEnabled=true",
                "-Dorg.slf4j.simpleLogger.showDateTime=true",
                "-Dorg.slf4j.simpleLogger.dateTimeFormat=HH:mm:ss.SSS",
                "-cp", ZK_CLASSPATH, "org.apache.zookeeper.server.quorum.QuorumPeerMain", cfg]

    def _spawn(self, argv, log_path, cwd, env=None):
        log = open(log_path, "ab")
        log.write(("\n==== start %s: %s\n" % (time.strftime("%H:%M:%S"), " ".join(argv))).encode())
        log.flush()
        try:
            full_env = None
            if env:
                full_env = dict(os.environ)
                full_env.update(env)
            if self.attached:
                p = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log,
                                     stderr=subprocess.STDOUT, cwd=cwd, preexec_fn=_pdeathsig,
                                     env=full_env)
            else:
                p = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log,
                                     stderr=subprocess.STDOUT, cwd=cwd, start_new_session=True,
                                     env=full_env)
        finally:
            log.close()
        st = None
        for _ in range(100):
            st = proc_start_time(p.pid)
            if st is not None:
                break
            time.sleep(0.01)
        return p, st

    def _start_proxy(self):
        if not self.s["proxy"] or self._ours(self.s["proxy_pid"], self.s["proxy_start_time"]):
            return
        kinds = ["peer"] + (["election"] if self.kind == "zk" else [])
        links = []
        for i in self.ids():
            for j in self.ids():
                if i != j:
                    for k in kinds:
                        mj = self.m(j)
                        links.append({"src": i, "dst": j, "kind": k,
                                      "target": mj["peer_port" if k == "peer" else
                                                   "election_port"]})
        lf = os.path.join(self.dir, "proxy-links.json")
        pf = os.path.join(self.dir, "proxy-ports.json")
        with open(lf, "w") as f:
            json.dump(links, f)
        if os.path.exists(pf):
            os.remove(pf)
        p, st = self._spawn([PY, os.path.join(HERE, "netproxy.py"), "--links", lf,
                             "--ports-out", pf], os.path.join(self.dir, "proxy.log"), self.dir)
        deadline = time.monotonic() + 15
        while not os.path.exists(pf):
            if p.poll() is not None or time.monotonic() > deadline:
                raise EnsembleError("netproxy did not start; see %s/proxy.log" % self.dir)
            time.sleep(0.05)
        with open(pf) as f:
            self.s["proxy_ports"] = json.load(f)
        self.s["proxy_pid"], self.s["proxy_start_time"] = p.pid, st
        self._popen["proxy"] = p
        self.save()

    def proxy(self, line):
        if not self.s["proxy"]:
            raise EnsembleError("this ensemble was started without --proxy")
        if not self._ours(self.s["proxy_pid"], self.s["proxy_start_time"]):
            raise EnsembleError("the proxy is not running")
        sys.path.insert(0, HERE)
        import netproxy
        ans = netproxy.control(self.s["proxy_ports"]["control"], line)
        if not ans.startswith("ok"):
            raise EnsembleError("proxy: %s" % ans)
        return ans[3:]

    def cut(self, a, b):
        self.proxy("cut %d %d" % (a, b))
        self.proxy("cut %d %d" % (b, a))

    def isolate(self, a):
        for b in self.ids():
            if b != a:
                self.cut(a, b)

    def heal(self, a=None, b=None):
        if a is None:
            self.proxy("heal all")
        else:
            self.proxy("heal %d %d" % (a, b))
            self.proxy("heal %d %d" % (b, a))

    def delay(self, a, b, ms):
        self.proxy("delay %d %d %d" % (a, b, ms))

    def start_member(self, i):
        if self.running(i):
            raise EnsembleError("member %d is already running (pid %d)" % (i, self.pid(i)))
        self._start_proxy()
        self._write_config(i)
        m = self.m(i)
        p, st = self._spawn(self._command(i), self.log_path(i), m["dir"], m.get("env"))
        m["pid"], m["start_time"] = p.pid, st
        self._popen[i] = p
        self.save()
        return p.pid

    def start(self, wait=True, timeout=90):
        started = [i for i in self.ids() if not self.running(i)]
        for i in started:
            self.start_member(i)
        if wait:
            self.wait_healthy(timeout)
            # wait_healthy looks at running members only; one that exited at start (say, its
            # port was taken) must not leave a smaller ensemble that looks healthy.
            dead = [i for i in started if not self.running(i)]
            if dead:
                raise EnsembleError("member(s) %s exited at start:\n%s" % (
                    dead, "\n".join(self.log_tail(i, 12) for i in dead)))
        return self

    def _reap(self, i, timeout=20):
        p = self._popen.get(i)
        if p is not None:
            try:
                p.wait(timeout)
            except subprocess.TimeoutExpired:
                return False
            self._popen.pop(i, None)
            return True
        m = self.m(i) if i != "proxy" else None
        pid = m["pid"] if m else self.s["proxy_pid"]
        st = m["start_time"] if m else self.s["proxy_start_time"]
        deadline = time.monotonic() + timeout
        while self._ours(pid, st):
            if time.monotonic() > deadline:
                return False
            time.sleep(0.02)
        return True

    def signal(self, i, sig):
        pid = self.pid(i)
        if pid is None:
            raise EnsembleError("member %d is not running" % i)
        os.kill(pid, sig)
        return pid

    def kill(self, i):
        """kill -9, and wait until it is gone."""
        self.signal(i, signal.SIGKILL)
        self._reap(i)

    def kill_all(self, ids=None):
        ids = [i for i in (ids or self.ids()) if self.running(i)]
        for i in ids:
            self.signal(i, signal.SIGKILL)
        for i in ids:
            self._reap(i)

    def pause(self, i):
        self.signal(i, signal.SIGSTOP)

    def resume(self, i):
        self.signal(i, signal.SIGCONT)

    def stop_member(self, i, timeout=20):
        pid = self.pid(i)
        if pid is None:
            return
        os.kill(pid, signal.SIGCONT)
        os.kill(pid, signal.SIGTERM)
        if not self._reap(i, timeout):
            if self.running(i):
                os.kill(pid, signal.SIGKILL)
            self._reap(i)

    def restart(self, i, kill=False):
        if kill:
            if self.running(i):
                self.kill(i)
        else:
            self.stop_member(i)
        return self.start_member(i)

    def stop(self):
        for i in self.all_ids():
            pid = self.pid(i)
            if pid:
                os.kill(pid, signal.SIGCONT)
                os.kill(pid, signal.SIGTERM)
        for i in self.all_ids():
            if self.pid(i) and not self._reap(i):
                self.kill(i)
        if self._ours(self.s["proxy_pid"], self.s["proxy_start_time"]):
            os.kill(self.s["proxy_pid"], signal.SIGTERM)
            if not self._reap("proxy", 5) and \
                    self._ours(self.s["proxy_pid"], self.s["proxy_start_time"]):
                os.kill(self.s["proxy_pid"], signal.SIGKILL)
                self._reap("proxy")
        self.s["proxy_pid"] = None
        self.save()
        self._unmount_dead()

    def _unmount_dead(self):
        """Detaches the mounts of members that died without unmounting (kill -9): the kernel
        keeps a dead FUSE mount until it is unmounted (a restarted member detaches its own)."""
        mount = self.s["extra"].get("mount")
        if not mount:
            return
        try:
            with open("/proc/mounts") as f:
                mounted = {line.split()[1] for line in f if " fuse.quorumfs " in line}
        except OSError:
            return
        for i in self.all_ids():
            path = str(mount).replace("{id}", str(i))
            if path in mounted and not self.pid(i):
                subprocess.run(["fusermount3", "-u", "-z", path], stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL, check=False)

    def cleanup(self, keep=False):
        self.stop()
        if not keep and not os.environ.get("QFS_KEEP_ENSEMBLE_DIRS"):
            shutil.rmtree(self.dir, ignore_errors=True)

    # ---- membership (reconfigEnabled, docs/reconfig.md) ----------------------------------------
    def server_line(self, i):
        """server.N=host:peer:election:role;host:client, as a reconfig request carries it."""
        m = self.m(i)
        return "server.%d=%s:%d:%d:%s;%s:%d" % (
            i, self.host(i), m["peer_port"], m["election_port"],
            "observer" if m["observer"] else "participant", self.host(i), m["client_port"])

    def reconfig(self, joining=None, leaving=None, new_members=None, from_config=-1,
                 timeout=30):
        """kazoo's reconfig as the super user through the configuration's members; returns
        (data, stat) of the new /zookeeper/config."""
        from kazoo.client import KazooClient
        zk = KazooClient(hosts=self.connect_string(), timeout=10.0, auth_data=[SUPER_AUTH])
        zk.start(timeout=timeout)
        try:
            return zk.reconfig(joining=joining, leaving=leaving, new_members=new_members,
                               from_config=from_config)
        finally:
            zk.stop()
            zk.close()

    def new_member_id(self):
        return max(self.all_ids()) + 1

    def add_member(self, observer=False, start=True, reconfig=True, i=None):
        """A new member (ports, dir, myid) started with the configuration plus itself, then
        added by a reconfig (`reconfig`=False: only made and started, for a test to add it).
        Returns its id."""
        if not self.s.get("reconfig"):
            raise EnsembleError("the ensemble was not created with reconfig (start --reconfig)")
        if self.s["proxy"]:
            raise EnsembleError("add/remove do not go through the link proxy")
        i = i or self.new_member_id()
        if str(i) not in self.s["members"]:
            c, p, e = free_port(), free_port(), free_port()
            m = self._new_member(self.dir, i, observer, c, p, e)
            m["in_config"] = False
            self.s["members"][str(i)] = m
            os.makedirs(os.path.join(m["dir"], "data"), exist_ok=True)
            with open(os.path.join(m["dir"], "data", "myid"), "w") as f:
                f.write("%d\n" % i)
            self.save()
        if start and not self.running(i):
            self.start_member(i)
        if reconfig:
            self.reconfig(joining=self.server_line(i))
            self.mark(i, True)
        return i

    def remove_member(self, i, stop=True):
        """Removes member i by a reconfig, then (`stop`) stops its process."""
        self.reconfig(leaving=str(i))
        self.mark(i, False)
        if stop:
            self.stop_member(i)

    def mark(self, i, in_config):
        """Records that member i is (not) in the configuration (after a reconfig)."""
        self.m(i)["in_config"] = in_config
        self.save()

    # ---- observation ------------------------------------------------------------------------
    def member_status(self, i):
        """{'id', 'running', 'paused', 'mode', 'zxid', 'digest', 'serving'}"""
        m = self.m(i)
        st = {"id": i, "running": self.running(i), "paused": False, "mode": None, "zxid": None,
              "digest": None, "serving": False, "observer": m["observer"]}
        if not st["running"]:
            return st
        if proc_state(self.pid(i)) == "T":
            st["paused"] = True
            return st
        srvr = four_letter(m["client_port"], "srvr", timeout=1.0, host=self.host(i))
        if srvr is None:
            return st
        for line in srvr.splitlines():
            if line.startswith("Mode: "):
                st["mode"] = line[6:].strip()
                st["serving"] = st["mode"] != "read-only"
            elif line.startswith("Zxid: "):
                st["zxid"] = int(line[6:].strip(), 16)
        mntr = four_letter(m["client_port"], "mntr", timeout=1.0, host=self.host(i)) or ""
        for line in mntr.splitlines():
            kv = line.split("\t", 1) if "\t" in line else line.split(None, 1)
            if len(kv) != 2:
                continue
            k, v = kv[0].strip(), kv[1].strip()
            if k == "qfs_last_zxid":  # decimal (mntr's numbers), or hex with 0x
                try:
                    st["zxid"] = int(v, 16) if v.lower().startswith("0x") else int(v)
                except ValueError:
                    pass
            elif k == "qfs_digest":
                st["digest"] = v
            elif k == "zk_server_state" and st["mode"] is None:
                st["mode"] = v
        return st

    def status(self):
        return [self.member_status(i) for i in self.ids()]

    def leader(self):
        """The id of the one member that says Mode: leader (standalone for one member), or None."""
        leaders = [s["id"] for s in self.status() if s["mode"] in ("leader", "standalone")]
        return leaders[0] if len(leaders) == 1 else None

    def wait_healthy(self, timeout=60, ids=None):
        """Until every running member (or `ids`) serves: one leader, the others follower or
        observer. Returns the leader's id; raises EnsembleError with the logs if not."""
        deadline = time.monotonic() + timeout
        st = []
        while True:
            st = [s for s in self.status() if ids is None or s["id"] in ids]
            want = [s for s in st if s["running"]]
            if not want:
                break
            modes = [s["mode"] for s in want]
            if len(self.ids()) == 1:
                if modes == ["standalone"] or modes == ["leader"]:
                    return want[0]["id"]
            elif want and modes.count("leader") == 1 and \
                    all(mo in ("leader", "follower", "observer") for mo in modes):
                return [s["id"] for s in want if s["mode"] == "leader"][0]
            if time.monotonic() > deadline:
                break
            time.sleep(0.1)
        raise EnsembleError("ensemble not healthy after %.0f s: %s\n%s" % (
            timeout, self.describe(st), "\n".join(self.log_tail(i, 12) for i in self.ids())))

    def wait_converged(self, timeout=60):
        """Until every running member reports the same last zxid (and, for quorumfsd, the same
        digest) twice in a row. Returns (zxid, digest)."""
        deadline = time.monotonic() + timeout
        prev = None
        st = []
        while time.monotonic() < deadline:
            st = [s for s in self.status() if s["running"]]
            zx = {s["zxid"] for s in st}
            dg = {s["digest"] for s in st}
            if len(zx) == 1 and None not in zx and all(s["serving"] for s in st):
                cur = (zx.pop(), dg.pop() if len(dg) == 1 else "DIFFER:%s" % sorted(map(str, dg)))
                if cur == prev:
                    if cur[1] is not None and str(cur[1]).startswith("DIFFER"):
                        raise EnsembleError("digests differ at equal zxid 0x%x: %s" % (
                            cur[0], self.describe(st)))
                    return cur
                prev = cur
            else:
                prev = None
            time.sleep(0.2)
        raise EnsembleError("members did not converge in %.0f s: %s" % (timeout,
                                                                         self.describe(st)))

    def touch(self, path="/qfs-ensemble-touch"):
        """One acknowledged write (ZooKeeper's followers report zxid 0 until the first txn of an
        epoch reaches them, so a fresh ensemble only converges after one)."""
        from kazoo.client import KazooClient
        zk = KazooClient(hosts=self.connect_string(), timeout=10.0)
        zk.start(timeout=60)
        try:
            if zk.exists(path) is None:
                zk.create(path, b"")
            else:
                zk.set(path, b"")
        finally:
            zk.stop()
            zk.close()

    @staticmethod
    def describe(st):
        out = []
        for s in st:
            if not s["running"]:
                out.append("m%d:down" % s["id"])
            elif s["paused"]:
                out.append("m%d:paused" % s["id"])
            else:
                out.append("m%d:%s zxid=%s digest=%s" % (
                    s["id"], s["mode"] or "-",
                    "0x%x" % s["zxid"] if s["zxid"] is not None else "-", s["digest"] or "-"))
        return "; ".join(out)


# ---- command line (scripts/ensemble) ---------------------------------------------------------

def default_dir():
    return os.environ.get("QFS_ENSEMBLE_DIR") or os.path.join(
        tempfile.gettempdir(), "qfs-ensemble-%d" % os.getuid())


def main(argv):
    p = argparse.ArgumentParser(prog="scripts/ensemble", description=__doc__.split("\n")[0])
    p.add_argument("--dir", default=None, help="state dir (default $QFS_ENSEMBLE_DIR or "
                                               "/tmp/qfs-ensemble-UID)")
    sub = p.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("start", help="start N members (and K observers)")
    s.add_argument("n", type=int)
    s.add_argument("--observers", type=int, default=0)
    s.add_argument("--dir", dest="sdir", default=None)
    s.add_argument("--proxy", action="store_true", help="links through netproxy (cut/heal)")
    s.add_argument("--base-port", type=int, default=None,
                   help="ports P, P+1, P+2 for member 1 (client, peer, election), P+3.. for 2, ...")
    s.add_argument("--zookeeper", action="store_true", help="Apache ZooKeeper 3.8 instead")
    s.add_argument("--quorumfsd", default=None, help="binary (default $QUORUMFSD or "
                                                     "build/release/daemon/quorumfsd)")
    s.add_argument("--tick", type=int, default=200)
    s.add_argument("--linearizable-reads", action="store_true")
    s.add_argument("--reconfig", action="store_true",
                   help="reconfigEnabled and a super user, for add / remove")
    s.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    s.add_argument("--timeout", type=float, default=90)
    for name in ("kill", "pause", "resume", "restart", "start-member", "stop-member"):
        x = sub.add_parser(name)
        x.add_argument("id", type=int)
    for name in ("cut", "delay"):
        x = sub.add_parser(name)
        x.add_argument("a", type=int)
        x.add_argument("b", type=int)
        if name == "delay":
            x.add_argument("ms", type=int)
    x = sub.add_parser("heal")
    x.add_argument("a", type=int, nargs="?")
    x.add_argument("b", type=int, nargs="?")
    x = sub.add_parser("isolate")
    x.add_argument("id", type=int)
    for name in ("stop", "status", "leader", "connect-string", "wait", "converged", "pids",
                 "destroy", "config"):
        sub.add_parser(name)
    x = sub.add_parser("add", help="start a new member and add it by a reconfig (--reconfig)")
    x.add_argument("--observer", action="store_true")
    x = sub.add_parser("remove", help="remove a member by a reconfig, then stop it")
    x.add_argument("id", type=int)
    x.add_argument("--keep-running", action="store_true")
    a = p.parse_args(argv)
    d = os.path.abspath(getattr(a, "sdir", None) or a.dir or default_dir())
    try:
        if a.cmd == "start":
            extra = dict(kv.split("=", 1) for kv in a.set)
            ens = Ensemble.create(d, n=a.n, observers=a.observers,
                                  kind="zk" if a.zookeeper else "quorumfsd", proxy=a.proxy,
                                  quorumfsd=a.quorumfsd, tick_ms=a.tick, extra=extra,
                                  attached=False, linearizable_reads=a.linearizable_reads,
                                  base_port=a.base_port, reconfig=a.reconfig)
            try:
                ens.start(timeout=a.timeout)
            except EnsembleError:
                ens.stop()
                raise
            print("started %d member(s) of %s in %s; leader %s" % (
                len(ens.ids()), ens.kind, d, ens.leader()))
            print(ens.connect_string())
            return 0
        ens = Ensemble.load(d, attached=False)
        if a.cmd == "stop":
            ens.stop()
        elif a.cmd == "destroy":
            ens.cleanup()
        elif a.cmd == "kill":
            ens.kill(a.id)
        elif a.cmd == "pause":
            ens.pause(a.id)
        elif a.cmd == "resume":
            ens.resume(a.id)
        elif a.cmd in ("restart",):
            ens.restart(a.id)
        elif a.cmd == "start-member":
            ens.start_member(a.id)
        elif a.cmd == "stop-member":
            ens.stop_member(a.id)
        elif a.cmd == "cut":
            ens.cut(a.a, a.b)
        elif a.cmd == "isolate":
            ens.isolate(a.id)
        elif a.cmd == "heal":
            if (a.a is None) != (a.b is None):
                p.error("heal takes two ids or none")
            ens.heal(a.a, a.b)
        elif a.cmd == "delay":
            ens.delay(a.a, a.b, a.ms)
        elif a.cmd == "status":
            for st in ens.status():
                m = ens.m(st["id"])
                state = "down" if not st["running"] else "paused" if st["paused"] else \
                    (st["mode"] or "not-serving")
                print("%d\t%s\tpid=%s\tclient=%d\tzxid=%s\tdigest=%s%s" % (
                    st["id"], state, ens.pid(st["id"]) or "-", m["client_port"],
                    "0x%x" % st["zxid"] if st["zxid"] is not None else "-",
                    st["digest"] or "-", "\tobserver" if m["observer"] else ""))
        elif a.cmd == "leader":
            lid = ens.leader()
            if lid is None:
                print("no leader", file=sys.stderr)
                return 1
            print(lid)
        elif a.cmd == "connect-string":
            print(ens.connect_string())
        elif a.cmd == "wait":
            print(ens.wait_healthy())
        elif a.cmd == "converged":
            ens.touch()
            z, dg = ens.wait_converged()
            print("zxid=0x%x digest=%s" % (z, dg))
        elif a.cmd == "add":
            i = ens.add_member(observer=a.observer)
            ens.wait_healthy()
            print("added member %d (%s)" % (i, ens.server_line(i)))
        elif a.cmd == "remove":
            ens.remove_member(a.id, stop=not a.keep_running)
            print("removed member %d" % a.id)
        elif a.cmd == "config":
            from kazoo.client import KazooClient
            zk = KazooClient(hosts=ens.connect_string(), timeout=10.0)
            zk.start(timeout=30)
            try:
                print(zk.get("/zookeeper/config")[0].decode())
            finally:
                zk.stop()
                zk.close()
        elif a.cmd == "pids":
            for i in ens.all_ids():
                print("%d\t%s" % (i, ens.pid(i) or "-"))
        return 0
    except (EnsembleError, FileNotFoundError) as e:
        print("ensemble: %s" % e, file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
