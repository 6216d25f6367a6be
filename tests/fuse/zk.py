#!/usr/bin/python3
"""A kazoo client for the FUSE tests: a network client's view of the tree.

    zk.py PORT get PATH            data to stdout
    zk.py PORT set PATH DATA
    zk.py PORT create PATH [DATA] [-e]
    zk.py PORT delete PATH
    zk.py PORT exists PATH         exit 0 if it exists, 1 if not
    zk.py PORT stat PATH FIELD     one Stat field (czxid, version, ephemeralOwner, ...)
    zk.py PORT children PATH       one name a line, sorted
    zk.py PORT setacl-open PATH
"""
import sys

from kazoo.client import KazooClient
from kazoo.security import OPEN_ACL_UNSAFE

FIELDS = {"czxid": "czxid", "mzxid": "mzxid", "pzxid": "pzxid", "ctime": "ctime",
          "mtime": "mtime", "version": "version", "cversion": "cversion",
          "aversion": "aversion", "ephemeralOwner": "ephemeralOwner",
          "dataLength": "dataLength", "numChildren": "numChildren"}


def main(a):
    z = KazooClient("127.0.0.1:%s" % a[0], timeout=10)
    z.start(timeout=10)
    try:
        cmd, path = a[1], a[2]
        if cmd == "get":
            sys.stdout.buffer.write(z.get(path)[0] or b"")
        elif cmd == "set":
            z.set(path, a[3].encode())
        elif cmd == "create":
            data = a[3].encode() if len(a) > 3 and a[3] != "-e" else b""
            print(z.create(path, data, ephemeral="-e" in a[3:]))
        elif cmd == "delete":
            z.delete(path)
        elif cmd == "exists":
            return 0 if z.exists(path) else 1
        elif cmd == "stat":
            st = z.exists(path)
            print(getattr(st, FIELDS[a[3]]))
        elif cmd == "children":
            for n in sorted(z.get_children(path)):
                print(n)
        elif cmd == "setacl-open":
            z.set_acls(path, OPEN_ACL_UNSAFE)
        else:
            print("unknown command " + cmd, file=sys.stderr)
            return 2
    finally:
        z.stop()
        z.close()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
