#!/usr/bin/python3
"""Operations through a mount: ops/s and latency (p50/p99) of stat, cat (cached and uncached),
small writes and mkdir+rmdir, on any directory, one process issuing one syscall sequence at a
time. Run by bench/fuse_bench.sh against quorumfs's mount, memfs (the FUSE round-trip limit)
and tmpfs.

    fuse_bench.py DIR [--seconds S] [--ops stat,cat,cat_uncached,write,mkdir]
Prints one line per op: NAME ops/s p50_us p99_us. cat_uncached reads N distinct files once
each; DIR must hold them (created by --prepare N, then remount to drop the kernel's caches).
"""
import argparse
import os
import time


def measure(fn, seconds):
    lat = []
    end = time.perf_counter() + seconds
    t = time.perf_counter()
    while t < end:
        fn()
        t2 = time.perf_counter()
        lat.append(t2 - t)
        t = t2
    total = sum(lat)
    lat.sort()
    return len(lat) / total, lat[len(lat) // 2] * 1e6, lat[int(len(lat) * 0.99)] * 1e6


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("dir")
    ap.add_argument("--seconds", type=float, default=3)
    ap.add_argument("--ops", default="stat,cat,write,mkdir")
    ap.add_argument("--prepare", type=int, default=0)
    a = ap.parse_args()
    d = a.dir
    if a.prepare:
        os.makedirs(d + "/cold", exist_ok=True)
        for i in range(a.prepare):
            with open("%s/cold/f%d" % (d, i), "w") as f:
                f.write("x" * 100)
        return
    f = d + "/bench-file"
    with open(f, "w") as fh:
        fh.write("v" * 100)
    for op in a.ops.split(","):
        if op == "stat":
            r = measure(lambda: os.stat(f), a.seconds)
        elif op == "cat":
            def cat():
                fd = os.open(f, os.O_RDONLY)
                os.read(fd, 4096)
                os.close(fd)
            r = measure(cat, a.seconds)
        elif op == "cat_uncached":
            names = iter(sorted(os.listdir(d + "/cold")))

            def cold():
                fd = os.open(d + "/cold/" + next(names), os.O_RDONLY)
                os.read(fd, 4096)
                os.close(fd)
            n = len(os.listdir(d + "/cold"))
            lat = []
            for _ in range(n):
                t = time.perf_counter()
                cold()
                lat.append(time.perf_counter() - t)
            lat.sort()
            r = (len(lat) / sum(lat), lat[len(lat) // 2] * 1e6, lat[int(len(lat) * 0.99)] * 1e6)
        elif op == "write":
            def write():
                fd = os.open(f, os.O_WRONLY | os.O_TRUNC)
                os.write(fd, b"0123456789abcdef")
                os.close(fd)
            r = measure(write, a.seconds)
        elif op == "mkdir":
            def mkrm():
                os.mkdir(d + "/bench-dir")
                os.rmdir(d + "/bench-dir")
            r = measure(mkrm, a.seconds)
        else:
            raise SystemExit("unknown op " + op)
        print("%-13s %10.0f %9.1f %9.1f" % (op, r[0], r[1], r[2]), flush=True)


if __name__ == "__main__":
    main()
