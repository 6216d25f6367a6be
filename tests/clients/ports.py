#!/usr/bin/python3
"""Loopback ports for test servers that no other process will take in the meantime.

    from ports import free_port; port = free_port()
    python3 tests/clients/ports.py [N]      # prints N ports, one per line (default 1)

Why not bind port 0: the kernel hands out ports from the ephemeral range, and it hands the same
ports to outgoing connections. With tests running in parallel (kazoo clients, peer links), a port
that was free when picked was sometimes some connection's local port by the time the daemon bound
it, or when a killed member was restarted on it ("Address already in use"; CI saw it).

So ports come from outside the ephemeral range (/proc/sys/net/ipv4/ip_local_port_range), which
the kernel never assigns on its own, at random, and each one is recorded in a per-user directory
for RESERVE_S seconds so that a parallel test does not pick it either, even while the member that
owns it is down. A port something listens on, or is bound to, is skipped.
"""

import os
import random
import socket
import sys
import tempfile
import time

RESERVE_S = 6 * 3600
FLOOR = 10000  # below this live well-known services


def _ranges():
    """The port ranges outside the ephemeral range, at or above FLOOR."""
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
            lo, hi = (int(x) for x in f.read().split())
    except (OSError, ValueError):
        lo, hi = 32768, 60999
    out = []
    if lo - 1 >= FLOOR:
        out.append((FLOOR, lo - 1))
    if hi + 1 <= 65535:
        out.append((max(hi + 1, FLOOR), 65535))
    if not out:
        raise RuntimeError("no port range outside the ephemeral range %d-%d" % (lo, hi))
    return out


def _reserve_dir():
    d = os.path.join(tempfile.gettempdir(), "qfs-ports-%d" % os.getuid())
    os.makedirs(d, mode=0o700, exist_ok=True)
    return d


def _reserve(d, port, now):
    """True if `port` was not handed out within RESERVE_S and is now ours."""
    path = os.path.join(d, str(port))
    for _ in range(2):
        try:
            os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
            return True
        except FileExistsError:
            try:
                if now - os.stat(path).st_mtime < RESERVE_S:
                    return False
                os.unlink(path)  # stale: reclaim once
            except FileNotFoundError:
                pass
    return False


def _bindable(port):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        s.bind(("127.0.0.1", port))
        return True
    except OSError:
        return False
    finally:
        s.close()


def free_port():
    """A loopback port nothing is bound to, outside the ephemeral range, reserved for us."""
    ranges = _ranges()
    weights = [hi - lo + 1 for lo, hi in ranges]
    d = _reserve_dir()
    now = time.time()
    for _ in range(2000):
        lo, hi = random.choices(ranges, weights)[0]
        port = random.randint(lo, hi)
        if _reserve(d, port, now) and _bindable(port):
            return port
    raise RuntimeError("no free loopback port found in %s" % ranges)


if __name__ == "__main__":
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 1
    print("\n".join(str(free_port()) for _ in range(n)))
