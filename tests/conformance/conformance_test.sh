#!/usr/bin/env bash
# fuse_conformance (docs/fuse.md, "Conformance"): posix_cases.py on a fresh tmpfs (the
# reference) and on a single member's mount; every difference must be listed, with its reason,
# in known_differences.txt, and every listed case must still differ.
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=../fuse/lib.sh
. "$here/../fuse/lib.sh"

REF=$QFS_TMP/ref
mkdir -p "$REF"
# A tmpfs of our own when we may mount one, else a directory in /dev/shm (tmpfs on Debian).
if mount -t tmpfs -o size=64m qfs-conformance "$REF" 2>/dev/null; then
  trap 'umount -l "$REF" 2>/dev/null; qfs_cleanup' EXIT
else
  REF=$(mktemp -d /dev/shm/qfs-conformance-XXXXXX)
  trap 'rm -rf "$REF"; qfs_cleanup' EXIT
fi
check "the reference is a tmpfs" test "$(stat -f -c %T "$REF")" = tmpfs

qfs_start one
mkdir "$MNT_one/conformance"
check "posix cases: tmpfs vs the mount, differences as listed" \
  "$PY" "$here/posix_cases.py" --ref "$REF" --fs "$MNT_one/conformance" \
  --expect "$here/known_differences.txt"
finish
