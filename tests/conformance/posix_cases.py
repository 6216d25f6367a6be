#!/usr/bin/python3
"""Differential POSIX conformance cases for the mount (docs/fuse.md, "Conformance").

Each case is a short list of syscalls run in a fresh directory, once on a reference file system
(tmpfs) and once on the file system under test. A case passes when both give the same results
(return values, errnos, data read, stat fields) and leave the same tree behind. Cases that name
the errno POSIX/Linux require (`want`) are also checked against the reference run, so the
reference itself is held to them.

  posix_cases.py --ref DIR --fs DIR [--expect FILE] [--only GLOB] [--list]

--expect FILE lists the cases known to differ (`ID-or-glob  reason`). A failing case that is not
listed, or a listed case (or glob) that passes, fails the run. An entry `~ID reason` is a known
race: the case may pass or fail, and is reported either way.
"""
import argparse
import ctypes
import errno
import fnmatch
import hashlib
import os
import stat
import sys

libc = ctypes.CDLL(None, use_errno=True)
libc.renameat2.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
AT_FDCWD = -100
RENAME_NOREPLACE = 1
RENAME_EXCHANGE = 2
MIB = 1 << 20


def err(e):
    return "E:" + errno.errorcode.get(e.errno, str(e.errno))


def kind(mode):
    if stat.S_ISREG(mode):
        return "f"
    if stat.S_ISDIR(mode):
        return "d"
    if stat.S_ISLNK(mode):
        return "l"
    if stat.S_ISFIFO(mode):
        return "p"
    return "?"


def digest(b):
    if len(b) <= 32:
        return repr(b)
    return "%d:%s" % (len(b), hashlib.sha1(b).hexdigest()[:12])


def describe_stat(st):
    k = kind(st.st_mode)
    # Directory sizes and link counts are file-system specific (docs/fuse.md: stat), so only
    # files' sizes and counts are compared.
    if k == "f":
        return "f size=%d nlink=%d mode=%o" % (st.st_size, st.st_nlink, stat.S_IMODE(st.st_mode))
    return "%s mode=%o" % (k, stat.S_IMODE(st.st_mode))


class Runner:
    """Runs one case's ops in directory `base`; returns the trace."""

    def __init__(self, base):
        self.base = base
        self.fds = {}

    def p(self, rel):
        if rel == "":
            return ""
        return os.path.join(self.base, rel)

    def op(self, o):
        name, a = o[0], o[1:]
        try:
            return self.do(name, a)
        except OSError as e:
            return err(e)
        except KeyError:
            return "no-fd"  # the open before it failed

    def do(self, name, a):
        if name == "open":
            rel, flags, slot = a
            self.fds[slot] = os.open(self.p(rel), flags, 0o644)
            return "ok"
        if name == "close":
            fd = self.fds.pop(a[0])
            os.close(fd)
            return "ok"
        if name == "write":
            return "n=%d" % os.write(self.fds[a[0]], a[1])
        if name == "pwrite":
            return "n=%d" % os.pwrite(self.fds[a[0]], a[1], a[2])
        if name == "read":
            return "r=" + digest(os.read(self.fds[a[0]], a[1]))
        if name == "pread":
            return "r=" + digest(os.pread(self.fds[a[0]], a[1], a[2]))
        if name == "lseek":
            return "off=%d" % os.lseek(self.fds[a[0]], a[1], a[2])
        if name == "fstat":
            return describe_stat(os.fstat(self.fds[a[0]]))
        if name == "stat":
            return describe_stat(os.stat(self.p(a[0])))
        if name == "ftruncate":
            os.ftruncate(self.fds[a[0]], a[1])
            return "ok"
        if name == "fsync":
            os.fsync(self.fds[a[0]])
            return "ok"
        if name == "truncate":
            os.truncate(self.p(a[0]), a[1])
            return "ok"
        if name == "mkdir":
            os.mkdir(self.p(a[0]), 0o755)
            return "ok"
        if name == "rmdir":
            os.rmdir(self.p(a[0]))
            return "ok"
        if name == "unlink":
            os.unlink(self.p(a[0]))
            return "ok"
        if name == "rename":
            os.rename(self.p(a[0]), self.p(a[1]))
            return "ok"
        if name == "renameat2":
            rc = libc.renameat2(AT_FDCWD, self.p(a[0]).encode(), AT_FDCWD, self.p(a[1]).encode(), a[2])
            if rc != 0:
                e = ctypes.get_errno()
                return "E:" + errno.errorcode.get(e, str(e))
            return "ok"
        if name == "utime":
            rel, times = a
            if times == "now":
                os.utime(self.p(rel))
            elif times == "omit":
                libc_utimens_omit(self.p(rel))
            else:
                os.utime(self.p(rel), ns=(times * 10**9, times * 10**9))
            return "ok"
        if name == "futime":
            os.utime(self.fds[a[0]], ns=(a[1] * 10**9, a[1] * 10**9))
            return "ok"
        if name == "mtime":
            return "mtime=%d" % os.stat(self.p(a[0])).st_mtime
        if name == "mtime_recent":
            # Within a minute of now: whatever the file system's clock source.
            import time
            return "recent=%s" % (abs(os.stat(self.p(a[0])).st_mtime - time.time()) < 60)
        if name == "listdir":
            return "ls=" + ",".join(sorted(os.listdir(self.p(a[0]))))
        if name == "chmod":
            os.chmod(self.p(a[0]), a[1])
            return "ok"
        if name == "chown":
            os.chown(self.p(a[0]), a[1], a[2])
            return "ok"
        if name == "symlink":
            os.symlink(a[0], self.p(a[1]))
            return "ok"
        if name == "link":
            os.link(self.p(a[0]), self.p(a[1]))
            return "ok"
        if name == "mkfifo":
            os.mkfifo(self.p(a[0]), 0o644)
            return "ok"
        if name == "mknod":
            os.mknod(self.p(a[0]), 0o644 | stat.S_IFREG)
            return "ok"
        if name == "chdir_rmdir":
            # rmdir of "." / ".." relative to a directory of the case
            os.rmdir(os.path.join(self.p(a[0]), a[1]))
            return "ok"
        raise ValueError("unknown op " + name)

    def close_all(self):
        out = []
        for slot in sorted(self.fds):
            try:
                os.close(self.fds[slot])
                out.append("close-at-end %s ok" % slot)
            except OSError as e:
                out.append("close-at-end %s %s" % (slot, err(e)))
        self.fds = {}
        return out


def libc_utimens_omit(path):
    class Ts(ctypes.Structure):
        _fields_ = [("sec", ctypes.c_long), ("nsec", ctypes.c_long)]
    UTIME_OMIT = (1 << 30) - 2
    ts = (Ts * 2)(Ts(0, UTIME_OMIT), Ts(0, UTIME_OMIT))
    if libc.utimensat(AT_FDCWD, path.encode(), ts, 0) != 0:
        e = ctypes.get_errno()
        raise OSError(e, os.strerror(e))


def tree(base):
    """The tree left behind: every entry with its kind, and files' sizes and content."""
    out = []
    for dirpath, dirnames, filenames in os.walk(base):
        dirnames.sort()
        rel = os.path.relpath(dirpath, base)
        for n in sorted(filenames + dirnames):
            path = os.path.join(dirpath, n)
            name = os.path.normpath(os.path.join(rel, n))
            try:
                st = os.lstat(path)
            except OSError as e:
                out.append("%s listed, lstat %s" % (name, err(e)))
                continue
            k = kind(st.st_mode)
            line = "%s %s" % (name, k)
            if k == "f":
                try:
                    with open(path, "rb") as f:
                        line += " " + digest(f.read())
                except OSError as e:
                    line += " " + err(e)
            out.append(line)
    return out


def run_case(root, case):
    base = os.path.join(root, case["id"].replace("/", "_"))
    os.mkdir(base, 0o755)
    r = Runner(base)
    trace = []
    for o in case["ops"]:
        trace.append("%s -> %s" % (fmt_op(o), r.op(o)))
    trace += r.close_all()
    trace.append("tree: " + " | ".join(tree(base)))
    return trace


def fmt_op(o):
    parts = []
    for x in o:
        if isinstance(x, bytes):
            parts.append(digest(x))
        elif isinstance(x, str) and len(x) > 40:
            parts.append(x[:12] + "...(%d)" % len(x))
        else:
            parts.append(str(x))
    return " ".join(parts)


# ---------------------------------------------------------------- the cases

O = os
ACCESS = {"RDONLY": O.O_RDONLY, "WRONLY": O.O_WRONLY, "RDWR": O.O_RDWR}
MODS = {
    "": 0,
    "CREAT": O.O_CREAT,
    "CREAT|EXCL": O.O_CREAT | O.O_EXCL,
    "TRUNC": O.O_TRUNC,
    "CREAT|TRUNC": O.O_CREAT | O.O_TRUNC,
    "APPEND": O.O_APPEND,
    "CREAT|APPEND": O.O_CREAT | O.O_APPEND,
}
DATA = b"0123456789"


def setup(target):
    """Ops that make `t` (in the case dir) into the given kind."""
    if target == "absent":
        return []
    if target == "file-empty":
        return [("open", "t", O.O_CREAT | O.O_WRONLY, "s"), ("close", "s")]
    if target == "file-data":
        return [("open", "t", O.O_CREAT | O.O_WRONLY, "s"), ("write", "s", DATA), ("close", "s")]
    if target == "dir":
        return [("mkdir", "t")]
    if target == "dir-full":
        return [("mkdir", "t"), ("mkdir", "t/sub")]
    raise ValueError(target)


def make(path, what):
    if what == "file-empty":
        return [("open", path, O.O_CREAT | O.O_WRONLY, "s"), ("close", "s")]
    if what == "file-data":
        return [("open", path, O.O_CREAT | O.O_WRONLY, "s"), ("write", "s", DATA), ("close", "s")]
    if what == "file-other":
        return [("open", path, O.O_CREAT | O.O_WRONLY, "s"), ("write", "s", b"other"), ("close", "s")]
    if what == "dir-empty":
        return [("mkdir", path)]
    if what == "dir-full":
        return [("mkdir", path), ("open", path + "/child", O.O_CREAT | O.O_WRONLY, "s"), ("write", "s", b"c"), ("close", "s")]
    return []


def cases():
    out = []

    def add(cid, ops, want=None):
        out.append({"id": cid, "ops": ops, "want": want})

    # open: every target kind x access mode x creation/truncation flags, then a write, a read
    # back from the start, fstat, close, and stat by name.
    for target in ["absent", "file-empty", "file-data", "dir"]:
        for an, af in ACCESS.items():
            for mn, mf in MODS.items():
                ops = setup(target) + [("open", "t", af | mf, "a"), ("write", "a", b"xyz"),
                                       ("pread", "a", 100, 0), ("fstat", "a"), ("close", "a"),
                                       ("stat", "t")]
                want = None
                if target == "absent" and not (mf & O.O_CREAT):
                    want = {len(setup(target)): "E:ENOENT"}
                elif target != "absent" and mf & O.O_EXCL:
                    want = {len(setup(target)): "E:EEXIST"}
                elif target == "dir" and af != O.O_RDONLY:
                    want = {len(setup(target)): "E:EISDIR"}
                add("open.%s.%s%s" % (target, an, "|" + mn if mn else ""), ops, want)
    for target in ["absent", "file-data", "dir"]:
        ops = setup(target) + [("open", "t", O.O_RDONLY | O.O_DIRECTORY, "a"), ("close", "a")]
        want = {len(setup(target)): {"absent": "E:ENOENT", "file-data": "E:ENOTDIR", "dir": "ok"}[target]}
        add("open.%s.RDONLY|DIRECTORY" % target, ops, want)
    # open: reopening and reading what earlier opens wrote.
    add("open.reopen-read", make("f", "file-data") + [("open", "f", O.O_RDONLY, "a"), ("read", "a", 4), ("read", "a", 100), ("read", "a", 100), ("close", "a")])
    add("open.reopen-rdwr-overwrite", make("f", "file-data") + [("open", "f", O.O_RDWR, "a"), ("write", "a", b"AB"), ("read", "a", 3), ("close", "a"), ("stat", "f")])
    add("open.append-after-seek", make("f", "file-data") + [("open", "f", O.O_WRONLY | O.O_APPEND, "a"), ("lseek", "a", 0, 0), ("write", "a", b"END"), ("close", "a"), ("stat", "f")])
    add("open.append-twice", make("f", "file-data") + [("open", "f", O.O_WRONLY | O.O_APPEND, "a"), ("write", "a", b"1"), ("close", "a"), ("open", "f", O.O_WRONLY | O.O_APPEND, "a"), ("write", "a", b"2"), ("close", "a")])
    add("open.creat-no-write", [("open", "f", O.O_CREAT | O.O_WRONLY, "a"), ("close", "a"), ("stat", "f")])
    add("open.excl-race-second", [("open", "f", O.O_CREAT | O.O_EXCL | O.O_WRONLY, "a"), ("close", "a"), ("open", "f", O.O_CREAT | O.O_EXCL | O.O_WRONLY, "b")], {2: "E:EEXIST"})
    add("open.trailing-slash-file", make("f", "file-data") + [("open", "f/", O.O_RDONLY, "a")], {3: "E:ENOTDIR"})
    add("open.creat-trailing-slash", [("open", "f/", O.O_CREAT | O.O_WRONLY, "a")], {0: "E:EISDIR"})

    # Path errors for every operation: a missing parent, a file as parent, a name of 256 bytes,
    # one of 255 (allowed), a path over PATH_MAX, an empty path.
    long256 = "n" * 256
    long255 = "m" * 255
    paths = {
        "noparent": ("nodir/x", "E:ENOENT"),
        "fileparent": ("file/x", "E:ENOTDIR"),
        "name256": (long256, "E:ENAMETOOLONG"),
        "path4096": ("/".join(["d" * 200] * 21), "E:ENAMETOOLONG"),
        "empty": ("", "E:ENOENT"),
    }
    pops = {
        "open-rdonly": lambda p: [("open", p, O.O_RDONLY, "a")],
        "open-creat": lambda p: [("open", p, O.O_CREAT | O.O_WRONLY, "a")],
        "mkdir": lambda p: [("mkdir", p)],
        "rmdir": lambda p: [("rmdir", p)],
        "unlink": lambda p: [("unlink", p)],
        "truncate": lambda p: [("truncate", p, 0)],
        "stat": lambda p: [("stat", p)],
        "rename-from": lambda p: [("rename", p, "dst")],
        "rename-to": lambda p: [("rename", "file", p)],
        "utimensat": lambda p: [("utime", p, 1000000000)],
    }
    for on, fn in pops.items():
        for pn, (p, want) in paths.items():
            pre = make("file", "file-data")
            if on == "rename-to" and pn == "empty":
                want = "E:ENOENT"
            add("path.%s.%s" % (on, pn), pre + fn(p), {len(pre): want})
        # A 255-byte name works for the operations that create or find a name.
        if on in ("open-creat", "mkdir"):
            pre = make("file", "file-data")
            add("path.%s.name255" % on, pre + fn(long255) + [("close", "a"), ("stat", long255)], {len(pre): "ok"})
    add("path.rename-to.name255", make("file", "file-data") + [("rename", "file", long255), ("stat", long255)], {3: "ok"})

    # unlink
    for what in ["file-empty", "file-data", "dir-empty", "dir-full"]:
        want = {1: "E:EISDIR"} if what.startswith("dir") else None
        pre = make("t", what)
        add("unlink.%s" % what, pre + [("unlink", "t"), ("stat", "t")], {len(pre): want[1]} if want else None)
    add("unlink.missing", [("unlink", "t")], {0: "E:ENOENT"})
    add("unlink.twice", make("t", "file-data") + [("unlink", "t"), ("unlink", "t")], {4: "E:ENOENT"})
    add("unlink.then-recreate", make("t", "file-data") + [("unlink", "t"), ("open", "t", O.O_CREAT | O.O_RDWR, "a"), ("read", "a", 100), ("close", "a"), ("stat", "t")])
    add("unlink.in-subdir", [("mkdir", "d")] + make("d/t", "file-data") + [("unlink", "d/t"), ("listdir", "d"), ("rmdir", "d")])
    add("unlink.trailing-slash", make("t", "file-data") + [("unlink", "t/")], {3: "E:ENOTDIR"})
    # unlink of an open file (docs/fuse.md, "Open files"): the name goes, the descriptor stays.
    add("unlink.open-committed-read", make("t", "file-data") + [("open", "t", O.O_RDONLY, "a"), ("unlink", "t"), ("read", "a", 100), ("close", "a"), ("stat", "t")])
    add("unlink.open-committed-write", make("t", "file-data") + [("open", "t", O.O_RDWR, "a"), ("unlink", "t"), ("write", "a", b"more"), ("pread", "a", 100, 0), ("close", "a"), ("stat", "t")])
    add("unlink.open-uncommitted", [("open", "t", O.O_CREAT | O.O_RDWR, "a"), ("write", "a", b"new"), ("unlink", "t"), ("pread", "a", 100, 0), ("close", "a"), ("stat", "t")])
    add("unlink.open-created-empty", [("open", "t", O.O_CREAT | O.O_RDWR, "a"), ("unlink", "t"), ("close", "a"), ("stat", "t")])

    # rmdir
    add("rmdir.empty", [("mkdir", "d"), ("rmdir", "d"), ("stat", "d")])
    add("rmdir.with-file", [("mkdir", "d")] + make("d/f", "file-data") + [("rmdir", "d")], {4: "E:ENOTEMPTY"})
    add("rmdir.with-empty-file", [("mkdir", "d")] + make("d/f", "file-empty") + [("rmdir", "d")], {3: "E:ENOTEMPTY"})
    add("rmdir.with-dir", [("mkdir", "d"), ("mkdir", "d/e"), ("rmdir", "d")], {2: "E:ENOTEMPTY"})
    add("rmdir.after-emptying", [("mkdir", "d")] + make("d/f", "file-data") + [("unlink", "d/f"), ("rmdir", "d"), ("stat", "d")])
    add("rmdir.file", make("f", "file-data") + [("rmdir", "f")], {3: "E:ENOTDIR"})
    add("rmdir.missing", [("rmdir", "d")], {0: "E:ENOENT"})
    add("rmdir.twice", [("mkdir", "d"), ("rmdir", "d"), ("rmdir", "d")], {2: "E:ENOENT"})
    add("rmdir.dot", [("mkdir", "d"), ("chdir_rmdir", "d", ".")], {1: "E:EINVAL"})
    add("rmdir.dotdot", [("mkdir", "d"), ("mkdir", "d/e"), ("chdir_rmdir", "d/e", "..")], {2: "E:ENOTEMPTY"})
    add("rmdir.trailing-slash", [("mkdir", "d"), ("rmdir", "d/"), ("stat", "d")], {1: "ok"})
    add("rmdir.nested", [("mkdir", "a"), ("mkdir", "a/b"), ("mkdir", "a/b/c"), ("rmdir", "a/b/c"), ("rmdir", "a/b"), ("rmdir", "a")])

    # mkdir
    add("mkdir.new", [("mkdir", "d"), ("stat", "d"), ("listdir", "d")])
    add("mkdir.exists-dir", [("mkdir", "d"), ("mkdir", "d")], {1: "E:EEXIST"})
    add("mkdir.exists-file", make("d", "file-data") + [("mkdir", "d")], {3: "E:EEXIST"})
    add("mkdir.exists-empty-file", make("d", "file-empty") + [("mkdir", "d")], {2: "E:EEXIST"})
    add("mkdir.nested", [("mkdir", "a"), ("mkdir", "a/b"), ("mkdir", "a/b/c"), ("listdir", "a"), ("listdir", "a/b")])
    add("mkdir.trailing-slash", [("mkdir", "d/"), ("stat", "d")], {0: "ok"})
    add("mkdir.in-new-dir-file", [("mkdir", "d")] + make("d/f", "file-data") + [("mkdir", "d/g"), ("listdir", "d")])
    add("mkdir.many", [("mkdir", "d")] + [("mkdir", "d/e%02d" % i) for i in range(20)] + [("listdir", "d")])

    # rename: source kind x target kind x same/other directory x flags.
    srcs = ["file-empty", "file-data", "dir-empty", "dir-full", "missing"]
    dsts = ["absent", "file-other", "dir-empty", "dir-full", "self"]
    for s in srcs:
        for d in dsts:
            for place in ["samedir", "otherdir"]:
                for fl in ["plain", "noreplace"]:
                    if d == "self" and place == "otherdir":
                        continue
                    ops = [("mkdir", "x")] + make("src", s)
                    dst = "src" if d == "self" else ("x/dst" if place == "otherdir" else "dst")
                    if d not in ("absent", "self"):
                        ops += make(dst, d)
                    i = len(ops)
                    if fl == "plain":
                        ops.append(("rename", "src", dst))
                    else:
                        ops.append(("renameat2", "src", dst, RENAME_NOREPLACE))
                    ops += [("stat", "src"), ("stat", dst)]
                    want = None
                    if s == "missing":
                        want = {i: "E:ENOENT"}
                    elif fl == "noreplace" and d != "absent":
                        want = {i: "E:EEXIST"}
                    elif s.startswith("file") and d.startswith("dir"):
                        want = {i: "E:EISDIR"}
                    elif s.startswith("dir") and d == "file-other":
                        want = {i: "E:ENOTDIR"}
                    elif d == "dir-full" and s.startswith("dir"):
                        want = {i: "E:ENOTEMPTY"}
                    add("rename.%s.to-%s.%s.%s" % (s, d, place, fl), ops, want)
    add("rename.dir-into-itself", [("mkdir", "d"), ("rename", "d", "d/e")], {1: "E:EINVAL"})
    add("rename.dir-into-descendant", [("mkdir", "d"), ("mkdir", "d/e"), ("rename", "d", "d/e/f")], {2: "E:EINVAL"})
    add("rename.to-under-file", make("f", "file-data") + make("g", "file-other") + [("rename", "f", "g/x")], {6: "E:ENOTDIR"})
    add("rename.exchange-files", make("f", "file-data") + make("g", "file-other") + [("renameat2", "f", "g", RENAME_EXCHANGE)], {6: "ok"})
    add("rename.chain", make("a", "file-data") + [("rename", "a", "b"), ("rename", "b", "c"), ("rename", "c", "a"), ("listdir", "")])
    add("rename.then-reopen", make("a", "file-data") + [("rename", "a", "b"), ("open", "b", O.O_RDWR, "h"), ("pwrite", "h", b"Z", 9), ("close", "h"), ("stat", "b")])
    add("rename.over-then-old-gone", make("a", "file-data") + make("b", "file-other") + [("rename", "a", "b"), ("listdir", "")])
    add("rename.file-from-subdir-up", [("mkdir", "d")] + make("d/f", "file-data") + [("rename", "d/f", "f"), ("listdir", "d"), ("rmdir", "d")])
    # rename of an open file (docs/fuse.md, "Open files").
    add("rename.open-reader", make("a", "file-data") + [("open", "a", O.O_RDONLY, "h"), ("rename", "a", "b"), ("read", "h", 100), ("close", "h")])
    add("rename.open-writer-committed", make("a", "file-data") + [("open", "a", O.O_RDWR, "h"), ("write", "h", b"AB"), ("rename", "a", "b"), ("write", "h", b"CD"), ("close", "h"), ("stat", "a"), ("stat", "b")])
    add("rename.open-writer-uncommitted", [("open", "a", O.O_CREAT | O.O_RDWR, "h"), ("write", "h", b"fresh"), ("rename", "a", "b"), ("close", "h"), ("stat", "a"), ("stat", "b")])

    # truncate / ftruncate: initial size x new length x how.
    for init in [0, 10, 5000]:
        for new in [0, 5, 10, 100, 70000]:
            body = bytes((i * 7) % 251 for i in range(init))
            pre = [("open", "f", O.O_CREAT | O.O_WRONLY, "s")] + ([("write", "s", body)] if init else []) + [("close", "s")]
            add("truncate.path.%d-to-%d" % (init, new), pre + [("truncate", "f", new), ("stat", "f")])
            add("truncate.fd.%d-to-%d" % (init, new), pre + [("open", "f", O.O_RDWR, "a"), ("ftruncate", "a", new), ("fstat", "a"), ("pread", "a", 100000, 0), ("close", "a"), ("stat", "f")])
            add("truncate.fd-then-write.%d-to-%d" % (init, new), pre + [("open", "f", O.O_WRONLY, "a"), ("ftruncate", "a", new), ("pwrite", "a", b"W", new + 3), ("fstat", "a"), ("close", "a"), ("stat", "f")])
            add("truncate.write-then-fd.%d-to-%d" % (init, new), pre + [("open", "f", O.O_RDWR, "a"), ("pwrite", "a", b"QQQQ", 8), ("ftruncate", "a", new), ("pread", "a", 100000, 0), ("close", "a"), ("stat", "f")])
    add("truncate.fd-rdonly", make("f", "file-data") + [("open", "f", O.O_RDONLY, "a"), ("ftruncate", "a", 0)], {4: "E:EINVAL"})
    add("truncate.fd-negative", make("f", "file-data") + [("open", "f", O.O_RDWR, "a"), ("ftruncate", "a", -1)], {4: "E:EINVAL"})
    add("truncate.path-negative", make("f", "file-data") + [("truncate", "f", -1)], {3: "E:EINVAL"})
    add("truncate.dir", [("mkdir", "d"), ("truncate", "d", 0)], {1: "E:EISDIR"})
    add("truncate.missing", [("truncate", "f", 0)], {0: "E:ENOENT"})
    add("truncate.path-over-maxbuffer", make("f", "file-data") + [("truncate", "f", 2 * MIB), ("stat", "f")])
    add("truncate.fd-over-maxbuffer", make("f", "file-data") + [("open", "f", O.O_RDWR, "a"), ("ftruncate", "a", 2 * MIB), ("close", "a"), ("stat", "f")])
    add("truncate.path-while-open", make("f", "file-data") + [("open", "f", O.O_RDONLY, "a"), ("truncate", "f", 3), ("stat", "f"), ("close", "a"), ("stat", "f")])

    # utimensat / futimens and touch
    for target in ["file-data", "dir-empty", "missing"]:
        for t in ["now", "omit", 1000000000]:
            pre = make("t", target)
            ops = pre + [("utime", "t", t)]
            # Linux answers 0 for UTIME_OMIT on both times without looking the path up.
            want = {len(pre): "E:ENOENT" if target == "missing" and t != "omit" else "ok"}
            add("utimensat.%s.%s" % (target, t), ops + [("stat", "t")], want)
    add("utimensat.explicit-mtime", make("t", "file-data") + [("utime", "t", 1000000000), ("mtime", "t")])
    add("utimensat.dir-explicit-mtime", [("mkdir", "t"), ("utime", "t", 1000000000), ("mtime", "t")])
    add("utimensat.futimens", make("t", "file-data") + [("open", "t", O.O_RDWR, "a"), ("futime", "a", 1000000000), ("close", "a"), ("mtime", "t")])
    add("utimensat.touch-creates", [("open", "t", O.O_CREAT | O.O_WRONLY, "a"), ("close", "a"), ("utime", "t", "now"), ("stat", "t"), ("mtime_recent", "t")])
    add("utimensat.mtime-after-write", make("t", "file-data") + [("mtime_recent", "t")])

    # Data: offsets, holes, sizes, seeks, binary data, several writes before one commit.
    for size in [1, 4096, 4097, 65539, 200000]:
        blob = bytes((i * 31 + 7) % 256 for i in range(size))
        add("data.write-read.%d" % size, [("open", "f", O.O_CREAT | O.O_RDWR, "a"), ("write", "a", blob), ("pread", "a", size + 10, 0), ("close", "a"), ("open", "f", O.O_RDONLY, "b"), ("read", "b", size + 10), ("close", "b"), ("stat", "f")])
        add("data.hole.%d" % size, [("open", "f", O.O_CREAT | O.O_RDWR, "a"), ("pwrite", "a", b"end", size), ("pread", "a", size + 10, 0), ("close", "a"), ("stat", "f")])
        add("data.overwrite-middle.%d" % size, [("open", "f", O.O_CREAT | O.O_RDWR, "a"), ("write", "a", blob), ("pwrite", "a", b"MID", size // 2), ("close", "a"), ("stat", "f")])
    add("data.nul-bytes", [("open", "f", O.O_CREAT | O.O_WRONLY, "a"), ("write", "a", b"\0a\0b\0\0"), ("close", "a"), ("stat", "f")])
    add("data.many-small-writes", [("open", "f", O.O_CREAT | O.O_WRONLY, "a")] + [("write", "a", b"%03d," % i) for i in range(50)] + [("close", "a"), ("stat", "f")])
    add("data.lseek-end", make("f", "file-data") + [("open", "f", O.O_RDWR, "a"), ("lseek", "a", 0, 2), ("write", "a", b"+"), ("lseek", "a", 0, 2), ("close", "a")])
    add("data.lseek-end-after-write", [("open", "f", O.O_CREAT | O.O_RDWR, "a"), ("write", "a", b"12345"), ("lseek", "a", 0, 2), ("close", "a")])
    add("data.lseek-cur", make("f", "file-data") + [("open", "f", O.O_RDONLY, "a"), ("read", "a", 3), ("lseek", "a", 2, 1), ("read", "a", 2), ("close", "a")])
    add("data.read-at-eof", make("f", "file-data") + [("open", "f", O.O_RDONLY, "a"), ("pread", "a", 10, 10), ("pread", "a", 10, 1000), ("close", "a")])
    add("data.fsync-then-more", [("open", "f", O.O_CREAT | O.O_RDWR, "a"), ("write", "a", b"one"), ("fsync", "a"), ("write", "a", b"two"), ("close", "a"), ("stat", "f")])
    add("data.fstat-after-write", [("open", "f", O.O_CREAT | O.O_RDWR, "a"), ("write", "a", DATA), ("fstat", "a"), ("close", "a")])
    add("data.fstat-after-reopen-write", make("f", "file-data") + [("open", "f", O.O_RDWR | O.O_APPEND, "a"), ("write", "a", DATA), ("fstat", "a"), ("close", "a")])
    add("data.write-over-maxbuffer", [("open", "f", O.O_CREAT | O.O_WRONLY, "a"), ("write", "a", b"x" * (MIB + 1)), ("close", "a"), ("stat", "f")])
    add("data.two-handles-see-writes", make("f", "file-data") + [("open", "f", O.O_RDWR, "a"), ("write", "a", b"AAA"), ("open", "f", O.O_RDONLY, "b"), ("read", "b", 100), ("close", "b"), ("close", "a")])
    add("data.two-writers", make("f", "file-data") + [("open", "f", O.O_RDWR, "a"), ("open", "f", O.O_RDWR, "b"), ("pwrite", "a", b"A", 0), ("pwrite", "b", b"B", 1), ("close", "a"), ("close", "b")])
    add("data.reader-sees-later-commit", make("f", "file-data") + [("open", "f", O.O_RDONLY, "b"), ("open", "f", O.O_WRONLY | O.O_TRUNC, "a"), ("write", "a", b"new"), ("close", "a"), ("pread", "b", 100, 0), ("close", "b")])
    # Regressions (issue 9): reads through a handle opened O_RDWR|O_TRUNC see only its writes;
    # O_RDONLY|O_TRUNC truncates; an unwritten create is committed by close(), not RELEASE.
    add("data.rdwr-trunc-pread", make("f", "file-data") + [("open", "f", O.O_RDWR | O.O_TRUNC, "a"), ("write", "a", b"xyz"), ("pread", "a", 100, 0), ("fstat", "a"), ("close", "a"), ("stat", "f")])
    add("data.rdonly-trunc-read", make("f", "file-data") + [("open", "f", O.O_RDONLY | O.O_TRUNC, "a"), ("read", "a", 100), ("fstat", "a"), ("close", "a"), ("stat", "f")])
    for i in range(5):
        add("rmdir.with-empty-file.again-%d" % i, [("mkdir", "d")] + make("d/f%d" % i, "file-empty") + [("rmdir", "d"), ("stat", "d/f%d" % i)], {3: "E:ENOTEMPTY"})
    add("data.stat-while-creating", [("open", "f", O.O_CREAT | O.O_WRONLY, "a"), ("write", "a", b"abc"), ("stat", "f"), ("close", "a"), ("stat", "f")])
    add("data.listdir-while-creating", [("open", "f", O.O_CREAT | O.O_WRONLY, "a"), ("listdir", ""), ("close", "a"), ("listdir", "")])

    # Outside the contract (docs/fuse.md, "Deleting, renaming, links, modes"): checked so a
    # change in behaviour is noticed.
    add("modes.chmod-same", make("f", "file-data") + [("chmod", "f", 0o644), ("stat", "f")])
    add("modes.chmod-other", make("f", "file-data") + [("chmod", "f", 0o600), ("stat", "f")])
    add("modes.chmod-dir-same", [("mkdir", "d"), ("chmod", "d", 0o755)])
    add("modes.chmod-dir-other", [("mkdir", "d"), ("chmod", "d", 0o700)])
    add("modes.chown-same", make("f", "file-data") + [("chown", "f", os.getuid(), os.getgid())])
    add("modes.chown-other", make("f", "file-data") + [("chown", "f", 65534, 65534)])
    add("modes.open-creat-mode-0600", [("open", "f", O.O_CREAT | O.O_WRONLY, "a"), ("close", "a"), ("chmod", "f", 0o600), ("stat", "f")])
    add("links.symlink", [("symlink", "target", "l"), ("listdir", "")])
    add("links.hardlink", make("f", "file-data") + [("link", "f", "g"), ("stat", "f")])
    add("special.mkfifo", [("mkfifo", "p")])
    add("special.mknod-regular", [("mknod", "f"), ("stat", "f")])
    return out


def load_expect(path):
    rules = []
    if not path:
        return rules
    with open(path) as f:
        for n, line in enumerate(f, 1):
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            pat, _, reason = line.partition(" ")
            if not reason.strip():
                sys.exit("%s:%d: %s has no reason" % (path, n, pat))
            flaky = pat.startswith("~")
            rules.append((pat.lstrip("~"), reason.strip(), flaky))
    return rules


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--ref", required=True, help="reference directory (tmpfs)")
    ap.add_argument("--fs", required=True, help="directory on the file system under test")
    ap.add_argument("--expect", help="known differences: ID-or-glob reason")
    ap.add_argument("--only", help="run only the cases matching this glob")
    args = ap.parse_args()
    os.umask(0o022)
    all_cases = cases()
    ids = [c["id"] for c in all_cases]
    assert len(ids) == len(set(ids)), "duplicate case ids"
    if args.only:
        all_cases = [c for c in all_cases if fnmatch.fnmatchcase(c["id"], args.only)]
    rules = load_expect(args.expect)

    ref_bad, differ = [], {}
    for c in all_cases:
        rt = run_case(args.ref, c)
        for i, w in (c["want"] or {}).items():
            got = rt[i].rsplit(" -> ", 1)[1]
            if got != w:
                ref_bad.append("%s: op %d wants %s, the reference gave %s" % (c["id"], i, w, got))
        ft = run_case(args.fs, c)
        if rt != ft:
            differ[c["id"]] = [(a, b) for a, b in zip(rt, ft) if a != b]

    n = len(all_cases)
    print("== reference (%s): %d cases, %d against the errno POSIX requires failed" % (args.ref, n, len(ref_bad)))
    for line in ref_bad:
        print("REF FAIL: " + line)
    print("== under test (%s): %d passed, %d failed" % (args.fs, n - len(differ), len(differ)))

    unexplained, fixed, used = [], [], set()
    for c in all_cases:
        cid = c["id"]
        match = next(((p, r, fl) for p, r, fl in rules if fnmatch.fnmatchcase(cid, p)), None)
        if match:
            used.add(match[0])
        if cid in differ:
            for a, b in differ[cid]:
                print("  %-50s ref: %s" % (cid, a))
                print("  %-50s got: %s" % ("", b.rsplit(" -> ", 1)[-1] if " -> " in b else b))
            if match:
                print("  %-50s known: %s" % ("", match[1]))
            else:
                unexplained.append(cid)
        elif match and match[2]:
            print("  %-50s passed this time (a known race: %s)" % (cid, match[1]))
        elif match:
            fixed.append((cid, match[0]))
    unused = [p for p, _, _ in rules if p not in used] if not args.only else []
    print("== %d known differences, %d unexplained failures, %d listed cases now pass, %d unused list entries"
          % (len(differ) - len(unexplained), len(unexplained), len(fixed), len(unused)))
    for cid in unexplained:
        print("UNEXPLAINED: " + cid)
    for cid, p in fixed:
        print("NOW PASSES (remove from the list): %s (entry %s)" % (cid, p))
    for p in unused:
        print("UNUSED ENTRY: " + p)
    ok = not ref_bad and not unexplained and not fixed and not unused
    print("== conformance: %s" % ("ok" if ok else "FAILED"))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
