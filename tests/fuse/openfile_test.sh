#!/usr/bin/env bash
# Open files on the mount behave as on a local disk while they are open (docs/fuse.md, "Open
# files"), on a single member: the ghost-file sequence, fstat/lseek/ftruncate of a file being
# written, rm and mv of an open file. (The 3-member variant is not written yet.)
here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib.sh"
PROBE=$(realpath "${OPENFILE_PROBE:?set OPENFILE_PROBE to the openfile_probe binary}")
qfs_start a
M=$MNT_a
cd "$M" || exit 1

echo "== a file being created is visible on its mount"
out=$( (sleep 1; echo done) > result.txt & sleep 0.5; ls -l result.txt; wait $!; cat result.txt)
echo "$out" | sed 's/^/     /'
check "ls -l shows the pending file (size 0)" grep -q '^-rw-r--r-- .* 0 .*result.txt$' <<<"$out"
check "cat reads it after the commit" test "$(tail -1 <<<"$out")" = done

echo "== fstat, lseek and ftruncate report the open handle's size"
out=$(printf 'open %s bc\nwrite 0123456789\nfstat\nseekend\nstat %s\nftruncate 100000\nfstat\nseekend\nstat %s\nzeros 50000 1000\nclose\n' \
  "$M/f" "$M/f" "$M/f" | timeout 20 "$PROBE")
check "fstat after a 10-byte write: 10" grep -qx 'fstat 10 1' <<<"$out"
check "lseek(SEEK_END): 10" grep -qx 'seekend 10' <<<"$out"
check "stat by path: 10" grep -qx 'stat 10' <<<"$out"
check "ftruncate(100000): fstat 100000" grep -qx 'fstat 100000 1' <<<"$out"
check "  lseek(SEEK_END) 100000" grep -qx 'seekend 100000' <<<"$out"
check "  the extended part reads as zeros" grep -qx 'zeros yes 1000' <<<"$out"
check "  close 0, committed size 100000" test "$(stat -c %s "$M/f")" = 100000

echo "== rm of a file not committed yet, while open"
printf 'open %s wc\nwrite abc\ntouch %s\nawait %s\nfstat\nwrite more\nreadall\nclose\n' "$M/p" "$QFS_TMP/r1" "$QFS_TMP/g1" |
  timeout 20 "$PROBE" >"$QFS_TMP/p.out" &
pid=$!
wait_for 10 test -e "$QFS_TMP/r1"
check "rm of the pending file succeeds" rm "$M/p"
touch "$QFS_TMP/g1"; wait $pid
check "  fstat of the open fd: size 3, nlink 0" grep -qx 'fstat 3 0' "$QFS_TMP/p.out"
check "  close() returns 0" grep -qx 'close 0' "$QFS_TMP/p.out"
check "  and the name does not come back" test ! -e "$M/p"

echo "== mv of a file open for writing"
echo old >"$M/a"
printf 'open %s wt\nwrite new data\ntouch %s\nawait %s\nwrite +more\nclose\n' "$M/a" "$QFS_TMP/r2" "$QFS_TMP/g2" |
  timeout 20 "$PROBE" >"$QFS_TMP/a.out" &
pid=$!
wait_for 10 test -e "$QFS_TMP/r2"
check "mv a b while a writer has a open" mv "$M/a" "$M/b"
touch "$QFS_TMP/g2"; wait $pid
check "  the writer's close() returns 0" grep -qx 'close 0' "$QFS_TMP/a.out"
check "  b has the writer's data" test "$(cat "$M/b")" = "new data+more"
check "  a does not exist" test ! -e "$M/a"

echo "== rm of a committed file open for writing"
echo old >"$M/c"
printf 'open %s w\nwrite x\ntouch %s\nawait %s\nwrite y\nclose\n' "$M/c" "$QFS_TMP/r3" "$QFS_TMP/g3" |
  timeout 20 "$PROBE" >"$QFS_TMP/c.out" &
pid=$!
wait_for 10 test -e "$QFS_TMP/r3"
check "rm c while a writer has it open" rm "$M/c"
touch "$QFS_TMP/g3"; wait $pid
check "  the writer's close() returns 0" grep -qx 'close 0' "$QFS_TMP/c.out"
check "  and c does not come back" test ! -e "$M/c"
finish
