#!/usr/bin/python3
"""A loopback TCP proxy with one listening port per directed link, to cut, heal and delay links.

    netproxy.py --links FILE --ports-out FILE [--log FILE]

FILE (--links) is JSON: [{"src": 1, "dst": 2, "kind": "peer", "target": 40123}, ...]. A link
(src, dst, kind) is the path member src uses to reach member dst's port `kind` ("peer", and for
Apache ZooKeeper also "election"): member src's config names the proxy's port for it, and the
proxy forwards to 127.0.0.1:target. Every listening port comes from tests/clients/ports.py (outside the
ephemeral range, so a link's port is still free when it listens again); once all
are bound, --ports-out receives {"control": PORT, "links": {"SRC>DST/KIND": PORT, ...}} (written
to a temp file and renamed, so a reader never sees half of it).

Control: one line per TCP connection to 127.0.0.1:control, answered with one line:
    cut SRC DST          close the connections of every link SRC>DST/* and refuse new ones
    heal SRC DST         accept again; "heal all" heals every link
    delay SRC DST MS     hold every byte of those links' connections MS ms (both directions)
    flip SRC DST [N]     alter one byte (XOR 0x01, mid-chunk) of each of the next N chunks
                         (default 1) that SRC sends to DST on those links: tampering in flight
    status               JSON: per link cut, delay_ms, open connections, accepted, refused
    quit                 exit
Answers start with "ok" or "error". A link's port listens only while its target port does
(watched in /proc/net/tcp every 50 ms), so dialing a dead member is refused as without the
proxy. Only loopback is ever used. Stdlib only (asyncio).
"""

import argparse
import asyncio
import json
import os
import signal
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                                "clients"))
from ports import free_port  # noqa: E402


class Link:
    def __init__(self, src, dst, kind, target):
        self.src, self.dst, self.kind, self.target = int(src), int(dst), kind, int(target)
        self.cut = False
        self.delay_ms = 0
        self.flip = 0      # chunks src -> dst still to alter
        self.flipped = 0   # chunks altered so far
        self.conns = set()  # (client_writer, upstream_writer)
        self.accepted = 0
        self.refused = 0
        self.port = None
        self.server = None

    @property
    def name(self):
        return "%d>%d/%s" % (self.src, self.dst, self.kind)


def log(msg):
    sys.stderr.write("%s netproxy: %s\n" % (time.strftime("%H:%M:%S"), msg))
    sys.stderr.flush()


async def _pump(link, reader, writer, closing, forward=False):
    """Copies reader -> writer, holding each chunk link.delay_ms (read at the time it arrives).
    On the forward direction (src -> dst) it alters a byte of a chunk while link.flip > 0."""
    queue = asyncio.Queue()

    async def sender():
        while True:
            item = await queue.get()
            if item is None:
                break
            due, data = item
            wait = due - time.monotonic()
            if wait > 0:
                await asyncio.sleep(wait)
            writer.write(data)
            await writer.drain()

    task = asyncio.ensure_future(sender())
    try:
        while not closing.is_set():
            data = await reader.read(65536)
            if not data:
                break
            if forward and link.flip > 0:
                link.flip -= 1
                link.flipped += 1
                b = bytearray(data)
                b[len(b) // 2] ^= 0x01
                data = bytes(b)
                log("flipped byte %d of a %d-byte chunk on %s" % (len(b) // 2, len(b), link.name))
            queue.put_nowait((time.monotonic() + link.delay_ms / 1000.0, data))
            if task.done():
                break
        queue.put_nowait(None)
        await task
    except (ConnectionError, OSError, asyncio.CancelledError):
        pass
    finally:
        task.cancel()
        closing.set()
        try:
            writer.close()
        except Exception:
            pass


async def _handle(link, creader, cwriter):
    if link.cut:
        link.refused += 1
        cwriter.close()
        return
    try:
        ureader, uwriter = await asyncio.open_connection("127.0.0.1", link.target)
    except OSError:
        link.refused += 1
        cwriter.close()
        return
    if link.cut:  # cut while connecting
        link.refused += 1
        cwriter.close()
        uwriter.close()
        return
    link.accepted += 1
    pair = (cwriter, uwriter)
    link.conns.add(pair)
    closing = asyncio.Event()
    try:
        await asyncio.gather(_pump(link, creader, uwriter, closing, forward=True),
                             _pump(link, ureader, cwriter, closing))
    finally:
        link.conns.discard(pair)
        for w in pair:
            try:
                w.close()
            except Exception:
                pass


def _abort(w):
    try:
        w.transport.abort()  # RST at once, nothing more is delivered
    except Exception:
        pass


def _listening_ports():
    """Ports with a socket in LISTEN state, from /proc/net/tcp and tcp6 (no connection made)."""
    ports = set()
    for name in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(name) as f:
                next(f)
                for line in f:
                    parts = line.split()
                    if len(parts) > 3 and parts[3] == "0A":
                        ports.add(int(parts[1].rsplit(":", 1)[1], 16))
        except (OSError, StopIteration, ValueError):
            pass
    return ports


async def _mirror_targets(links):
    """A link's port listens only while its target does, so that dialing a dead member through
    the proxy is refused as it would be without the proxy (an accepted-then-closed connection
    makes ZooKeeper's election back off for seconds)."""
    while True:
        up = _listening_ports()
        for l in links:
            if l.target in up and l.server is None:
                try:
                    l.server = await asyncio.start_server(
                        lambda r, w, l=l: _handle(l, r, w), "127.0.0.1", l.port)
                except OSError as e:
                    log("%s: cannot listen on %d again: %s" % (l.name, l.port, e))
            elif l.target not in up and l.server is not None:
                l.server.close()
                l.server = None
        await asyncio.sleep(0.05)


class Proxy:
    def __init__(self, links):
        self.links = links
        self.stop = asyncio.Event()

    def select(self, a, b):
        if a == "all":
            return list(self.links)
        a, b = int(a), int(b)
        return [l for l in self.links if l.src == a and l.dst == b]

    def command(self, line):
        parts = line.split()
        if not parts:
            return "error empty command"
        op = parts[0]
        try:
            if op == "status":
                return "ok " + json.dumps({l.name: {"cut": l.cut, "delay_ms": l.delay_ms,
                                                    "flipped": l.flipped,
                                                    "open": len(l.conns),
                                                    "accepted": l.accepted,
                                                    "refused": l.refused, "port": l.port,
                                                    "target": l.target} for l in self.links})
            if op == "quit":
                self.stop.set()
                return "ok"
            if op in ("cut", "heal"):
                sel = self.select(parts[1], parts[2] if len(parts) > 2 else None)
                if not sel:
                    return "error no such link"
                for l in sel:
                    l.cut = op == "cut"
                    if l.cut:
                        for pair in list(l.conns):
                            for w in pair:
                                _abort(w)
                        l.conns.clear()
                log("%s %s" % (op, " ".join(l.name for l in sel)))
                return "ok %d" % len(sel)
            if op == "flip":
                sel = self.select(parts[1], parts[2])
                if not sel:
                    return "error no such link"
                for l in sel:
                    l.flip += int(parts[3]) if len(parts) > 3 else 1
                log("flip %s" % " ".join(l.name for l in sel))
                return "ok %d" % len(sel)
            if op == "delay":
                sel = self.select(parts[1], parts[2])
                if not sel:
                    return "error no such link"
                for l in sel:
                    l.delay_ms = max(0, int(parts[3]))
                log("delay %s ms %s" % (parts[3], " ".join(l.name for l in sel)))
                return "ok %d" % len(sel)
        except (IndexError, ValueError) as e:
            return "error bad arguments: %s" % e
        return "error unknown command %r" % op

    async def control(self, reader, writer):
        try:
            line = (await asyncio.wait_for(reader.readline(), 10)).decode().strip()
            writer.write((self.command(line) + "\n").encode())
            await writer.drain()
        except (asyncio.TimeoutError, OSError):
            pass
        finally:
            writer.close()


async def main_async(args):
    with open(args.links) as f:
        spec = json.load(f)
    links = [Link(d["src"], d["dst"], d["kind"], d["target"]) for d in spec]
    proxy = Proxy(links)
    for l in links:
        l.server = await asyncio.start_server(lambda r, w, l=l: _handle(l, r, w),
                                              "127.0.0.1", free_port())
        l.port = l.server.sockets[0].getsockname()[1]
    ctl = await asyncio.start_server(proxy.control, "127.0.0.1", free_port())
    asyncio.ensure_future(_mirror_targets(links))
    out = {"control": ctl.sockets[0].getsockname()[1], "pid": os.getpid(),
           "links": {l.name: l.port for l in links}}
    tmp = args.ports_out + ".tmp"
    with open(tmp, "w") as f:
        json.dump(out, f)
    os.rename(tmp, args.ports_out)
    log("serving %d links, control port %d" % (len(links), out["control"]))
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, proxy.stop.set)
    await proxy.stop.wait()
    log("stopping")


def control(port, line, timeout=5.0):
    """Sends one control line to a running proxy; returns its answer (raises OSError)."""
    import socket
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall((line + "\n").encode())
        buf = b""
        while not buf.endswith(b"\n"):
            b = s.recv(65536)
            if not b:
                break
            buf += b
    return buf.decode().strip()


def main(argv):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--links", required=True)
    p.add_argument("--ports-out", required=True)
    args = p.parse_args(argv)
    asyncio.run(main_async(args))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
