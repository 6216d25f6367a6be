"""A private ZooKeeper-protocol server for the client test suites.

    srv = Server("zk")                          # Apache ZooKeeper 3.8 (Debian's zookeeper package)
    srv = Server("quorumfsd", "/path/quorumfsd")  # quorumfs's daemon
    srv.start(); ... srv.hosts ...; srv.kill9(); srv.restart(); srv.stop(); srv.cleanup()

Every server gets its own temporary directory (data dir, config, log) and a free loopback port
that it keeps across restarts. Servers are stopped by PID and their directories removed when the
Python process exits (atexit), on SIGTERM/SIGINT/SIGHUP, and, if this process is killed outright,
by the kernel (PR_SET_PDEATHSIG on the child).

Keys of extra_config use zoo.cfg names. For quorumfsd they all go into its config file. For
ZooKeeper the ones it only takes as Java system properties become -D flags:
    znode.container.checkIntervalMs -> -Dznode.container.checkIntervalMs
    superDigest                     -> -Dzookeeper.DigestAuthenticationProvider.superDigest
    jute.maxbuffer                  -> -Djute.maxbuffer
    enforceQuota                    -> -Dzookeeper.enforceQuota
    jaasLoginConfig                 -> -Djava.security.auth.login.config
    superUser                       -> -Dzookeeper.superUser
and -Dzookeeper.extendedTypesEnabled=true (TTL nodes) is always set.

Stdlib only. Command line, for shell suites:
    server.py KIND [QUORUMFSD_PATH] [--tick MS] [--set KEY=VALUE]...
prints "PORT PID DIR" on one line once the server serves, then stays in the foreground until
SIGTERM or SIGINT, and stops the server and removes its directory on the way out. (Its server
also dies with it if it is SIGKILLed.)
"""

import atexit
import ctypes
import os
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from ports import free_port  # noqa: E402,F401  (re-exported for the suites)

# netty-codec: Debian's zookeeper.jar leaves it off its Class-Path, and the Netty server (TLS,
# serverCnxnFactory=NettyServerCnxnFactory) needs it (docs/tls.md).
ZK_CLASSPATH = ("/usr/share/java/zookeeper.jar:/usr/share/java/slf4j-simple.jar:"
                "/usr/share/java/netty-codec.jar")
ZK_SYSPROPS = {
    "znode.container.checkIntervalMs": "znode.container.checkIntervalMs",
    "superDigest": "zookeeper.DigestAuthenticationProvider.superDigest",
    "jute.maxbuffer": "jute.maxbuffer",
    "enforceQuota": "zookeeper.enforceQuota",
    "jaasLoginConfig": "java.security.auth.login.config",
    "superUser": "zookeeper.superUser",
}
START_TIMEOUT_S = 60.0
STOP_TIMEOUT_S = 20.0

_live = []  # every Server not yet cleaned up
_live_lock = threading.Lock()
_handlers_installed = False


def four_letter(port, word, timeout=3.0, host="127.0.0.1"):
    """Sends a four-letter word; returns the reply text, or None if the port does not answer."""
    try:
        with socket.create_connection((host, port), timeout=timeout) as s:
            s.sendall(word.encode())
            chunks = []
            while True:
                b = s.recv(65536)
                if not b:
                    break
                chunks.append(b)
            return b"".join(chunks).decode("utf-8", "replace")
    except OSError:
        return None


def _recv_exact(s, n):
    buf = b""
    while len(buf) < n:
        b = s.recv(n - len(buf))
        if not b:
            raise OSError("connection closed after %d of %d bytes" % (len(buf), n))
        buf += b
    return buf


def session_handshake(port, timeout=3.0):
    """Opens and closes a session with a raw ConnectRequest. True if the server granted one."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
            # ConnectRequest: protocolVersion, lastZxidSeen, timeOut, sessionId, passwd, readOnly
            body = struct.pack("!iqiqi", 0, 0, 10000, 0, 16) + b"\0" * 16 + b"\0"
            s.sendall(struct.pack("!i", len(body)) + body)
            n = struct.unpack("!i", _recv_exact(s, 4))[0]
            reply = _recv_exact(s, n)
            _, negotiated, session_id = struct.unpack_from("!iiq", reply, 0)
            if negotiated <= 0 or session_id == 0:
                return False
            close = struct.pack("!ii", 1, -11)  # RequestHeader(xid 1, closeSession)
            s.sendall(struct.pack("!i", len(close)) + close)
            try:
                n = struct.unpack("!i", _recv_exact(s, 4))[0]
                _recv_exact(s, n)
            except OSError:
                pass
            return True
    except OSError:
        return False


def _pdeathsig():
    """Runs in the child between fork and exec: die with the parent."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGKILL, 0, 0, 0)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def _cleanup_all():
    with _live_lock:
        servers = list(_live)
    for s in servers:
        s.cleanup()


def _on_signal(signum, frame):
    _cleanup_all()
    signal.signal(signum, signal.SIG_DFL)
    os.kill(os.getpid(), signum)


def _install_handlers():
    global _handlers_installed
    if _handlers_installed:
        return
    _handlers_installed = True
    atexit.register(_cleanup_all)
    if threading.current_thread() is threading.main_thread():
        for sig in (signal.SIGTERM, signal.SIGHUP, signal.SIGINT):
            if signal.getsignal(sig) in (signal.SIG_DFL, signal.default_int_handler):
                signal.signal(sig, _on_signal)


class ServerError(Exception):
    pass


class Server:
    def __init__(self, kind, quorumfsd_path=None, tick_ms=2000, extra_config=None,
                 min_session_ms=None, max_session_ms=None, name="server"):
        if kind not in ("zk", "quorumfsd"):
            raise ValueError("kind must be 'zk' or 'quorumfsd', not %r" % (kind,))
        if kind == "quorumfsd":
            if not quorumfsd_path:
                raise ValueError("kind 'quorumfsd' needs quorumfsd_path")
            quorumfsd_path = os.path.abspath(quorumfsd_path)
            if not os.access(quorumfsd_path, os.X_OK):
                raise ValueError("not executable: %s" % quorumfsd_path)
        self.kind = kind
        self.quorumfsd_path = quorumfsd_path
        self.tick_ms = int(tick_ms)
        self.min_session_ms = int(min_session_ms or 2 * self.tick_ms)
        self.max_session_ms = int(max_session_ms or 20 * self.tick_ms)
        self.extra_config = dict(extra_config or {})
        self.name = name
        self.port = free_port()
        self.dir = tempfile.mkdtemp(prefix="qfs-clients-%s-" % kind)
        self.data_dir = os.path.join(self.dir, "data")
        os.makedirs(self.data_dir)
        self.config_path = os.path.join(self.dir, "zoo.cfg")
        self.log_path = os.path.join(self.dir, "server.log")
        self.proc = None
        self._cleaned = False
        _install_handlers()
        with _live_lock:
            _live.append(self)

    @property
    def hosts(self):
        return "127.0.0.1:%d" % self.port

    @property
    def pid(self):
        return self.proc.pid if self.proc else None

    def running(self):
        return self.proc is not None and self.proc.poll() is None

    def _write_config(self):
        lines = {
            "tickTime": self.tick_ms,
            "dataDir": self.data_dir,
            "dataLogDir": self.data_dir,
            "clientPort": self.port,
            "clientPortAddress": "127.0.0.1",
            "minSessionTimeout": self.min_session_ms,
            "maxSessionTimeout": self.max_session_ms,
            "maxClientCnxns": 1000,
        }
        if self.kind == "zk":
            lines["admin.enableServer"] = "false"
            lines["4lw.commands.whitelist"] = "*"
        for k, v in self.extra_config.items():
            if self.kind == "zk" and k in ZK_SYSPROPS:
                continue
            lines[k] = v
        with open(self.config_path, "w") as f:
            for k, v in lines.items():
                f.write("%s=%s\n" % (k, v))

    def _command(self):
        if self.kind == "quorumfsd":
            return [self.quorumfsd_path, self.config_path]
        props = ["-Dzookeeper.extendedTypesEnabled=true",
                 "-Dorg.slf4j.simpleLogger.defaultLogLevel=info",
                 "-Dorg.slf4j.simpleLogger.showDateTime=true"]
        for k, v in self.extra_config.items():
            if k in ZK_SYSPROPS:
                props.append("-D%s=%s" % (ZK_SYSPROPS[k], v))
        return (["java", "-Xmx256m", "-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1",
                 "-cp", ZK_CLASSPATH] + props +
                ["org.apache.zookeeper.server.quorum.QuorumPeerMain", self.config_path])

    def start(self):
        if self._cleaned:
            raise ServerError("server already cleaned up")
        if self.running():
            raise ServerError("server already running as pid %d" % self.proc.pid)
        self._write_config()
        log = open(self.log_path, "ab")
        log.write(("\n==== %s start %s\n" % (self.kind, time.strftime("%H:%M:%S"))).encode())
        log.flush()
        try:
            self.proc = subprocess.Popen(self._command(), stdin=subprocess.DEVNULL, stdout=log,
                                         stderr=subprocess.STDOUT, cwd=self.dir,
                                         preexec_fn=_pdeathsig)
        finally:
            log.close()
        self.wait_serving()
        return self

    def wait_serving(self, timeout=START_TIMEOUT_S):
        """Until ruok answers imok and a session can be opened; raises with the log tail if not."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self.running():
                raise ServerError("%s exited with status %s before serving on port %d\n%s"
                                  % (self.kind, self.proc.returncode, self.port, self.log_tail()))
            if four_letter(self.port, "ruok", timeout=1.0) == "imok" and \
                    session_handshake(self.port, timeout=2.0):
                return
            time.sleep(0.1)
        pid = self.proc.pid
        self.kill9()
        raise ServerError("%s (pid %d) not serving on port %d after %.0f s\n%s"
                          % (self.kind, pid, self.port, timeout, self.log_tail()))

    def log_tail(self, lines=30):
        try:
            with open(self.log_path, "rb") as f:
                text = f.read().decode("utf-8", "replace").splitlines()
        except OSError:
            return ""
        return "\n".join("    | " + l for l in text[-lines:])

    def _wait(self, timeout):
        try:
            self.proc.wait(timeout=timeout)
            return True
        except subprocess.TimeoutExpired:
            return False

    def stop(self):
        """SIGTERM and wait; SIGKILL if it does not exit within STOP_TIMEOUT_S. Returns the exit
        status (negative: killed by that signal)."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGTERM)
            if not self._wait(STOP_TIMEOUT_S):
                os.kill(self.proc.pid, signal.SIGKILL)
                self._wait(STOP_TIMEOUT_S)
        return self.proc.returncode

    def kill9(self):
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)
            self._wait(STOP_TIMEOUT_S)
        return self.proc.returncode

    def restart(self, kill=False):
        """Stops (SIGTERM, or SIGKILL with kill=True) and starts again on the same data dir and
        port."""
        if kill:
            self.kill9()
        else:
            self.stop()
        return self.start()

    def cleanup(self):
        if self._cleaned:
            return
        self._cleaned = True
        try:
            self.stop()
        finally:
            keep = os.environ.get("QFS_KEEP_SERVER_DIRS")
            if keep:
                sys.stderr.write("%s kept: %s\n" % (self.kind, self.dir))
            else:
                shutil.rmtree(self.dir, ignore_errors=True)
            with _live_lock:
                if self in _live:
                    _live.remove(self)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.cleanup()


def server_from_env(default_kind="zk", **kwargs):
    """A Server of the kind named by $QFS_SERVER_KIND (zk | quorumfsd; $QUORUMFSD the path)."""
    kind = os.environ.get("QFS_SERVER_KIND", default_kind)
    return Server(kind, os.environ.get("QUORUMFSD") or None, **kwargs)


def main(argv):
    import argparse
    p = argparse.ArgumentParser(description="run a private server until SIGTERM or SIGINT")
    p.add_argument("kind", choices=["zk", "quorumfsd"])
    p.add_argument("quorumfsd_path", nargs="?")
    p.add_argument("--tick", type=int, default=2000)
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    a = p.parse_args(argv)
    extra = dict(kv.split("=", 1) for kv in a.set)
    srv = Server(a.kind, a.quorumfsd_path, tick_ms=a.tick, extra_config=extra)
    try:
        srv.start()
    except ServerError as e:
        sys.stderr.write("%s\n" % e)
        srv.cleanup()
        return 1
    sys.stdout.write("%d %d %s\n" % (srv.port, srv.pid, srv.dir))
    sys.stdout.flush()
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    while not stop.wait(0.5):
        if not srv.running():
            sys.stderr.write("server exited with status %s\n%s\n" %
                             (srv.proc.returncode, srv.log_tail()))
            srv.cleanup()
            return 1
    srv.cleanup()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
