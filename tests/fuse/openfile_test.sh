#!/usr/bin/env bash
# Open files on the mount behave as on a local disk while they are open (docs/fuse.md, "Open
# files"), on a single member: the ghost-file sequence, fstat/lseek/ftruncate of a file being
# written, rm and mv of an open file; then on a 3-member ensemble with a mount on every member
# (tests/fuse/ens_lib.sh): what member B's mount sees of files open on member A's, and a file
# open for writing on A removed or renamed through B.
here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib.sh"
[ -n "$QFSD" ] || { echo "set QUORUMFSD to the quorumfsd binary" >&2; exit 2; }
export QUORUMFSD=$QFSD
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

echo "== O_RDWR|O_TRUNC, then reads of the same handle (conformance data.rdwr-trunc-pread)"
echo 0123456789 >"$M/t"
out=$(printf 'open %s bt\nwrite xyz\nreadall\nfstat\nclose\n' "$M/t" | timeout 20 "$PROBE")
check "pread sees only the handle's 3 bytes" grep -qx 'readall xyz' <<<"$out"
check "  committed: xyz" test "$(cat "$M/t")" = xyz

echo "== : > d/f is committed when the shell's close returns (rmdir d: ENOTEMPTY)"
bad=0
for i in $(seq 30); do
  mkdir "$M/e$i" && : >"$M/e$i/f"
  if rmdir "$M/e$i" 2>/dev/null; then bad=$((bad + 1)); fi
done
check "rmdir after ': > d/f' failed 30 of 30 times (succeeded $bad times)" test "$bad" -eq 0
check "  and each f exists, empty" sh -c "for i in \$(seq 30); do [ -f '$M/e'\$i/f ] && [ ! -s '$M/e'\$i/f ] || exit 1; done"
check "touch d2/f; rmdir d2: ENOTEMPTY" sh -c "mkdir '$M/d2' && touch '$M/d2/f' && ! rmdir '$M/d2' 2>/dev/null"
check "echo x > f (open, dup2, close, write) commits x" sh -c "echo x >'$M/sh1' && [ \"\$(cat '$M/sh1')\" = x ]"

echo "== a single write crossing jute.maxbuffer (1 MiB) is short, the next EFBIG, close EFBIG"
out=$(/usr/bin/python3 - "$M/big" <<'PY'
import os, sys
fd = os.open(sys.argv[1], os.O_CREAT | os.O_WRONLY, 0o644)
os.write(fd, b"a" * 1000)
print("write1", os.write(fd, b"x" * (1 << 20)))
try:
    os.write(fd, b"y")
    print("write2 ok")
except OSError as e:
    print("write2", e.errno == 27 and "EFBIG" or e.errno)
try:
    os.close(fd)
    print("close ok")
except OSError as e:
    print("close", e.errno == 27 and "EFBIG" or e.errno)
PY
)
echo "$out" | sed 's/^/     /'
check "the crossing write returns the bytes up to the limit" grep -qx "write1 $((1048576 - 1000))" <<<"$out"
check "  the next write fails with EFBIG" grep -qx 'write2 EFBIG' <<<"$out"
check "  close() fails with EFBIG" grep -qx 'close EFBIG' <<<"$out"
check "  and nothing is committed" test ! -e "$M/big"
cd / || exit 1
qfs_stop a

echo "== 3 members, a mount on each: files open on A as seen through B"
. "$here/ens_lib.sh"
ens_start_mounted --set "mount.sessionTimeoutMs=2000" --set "mount.writeTimeoutMs=3000"
A=$(M 1)/x
B=$(M 2)/x
mkdir "$A"
check "B sees A's directory" wait_for 10 test -d "$B"

out=$(cd "$A" && { (sleep 1; echo done) > result.txt & sleep 0.5; ls -l result.txt; test -e "$B/result.txt" && echo "B sees it"; wait $!; cat result.txt; })
echo "$out" | sed 's/^/     /'
check "ghost file: A's ls -l shows it while the writer is open" grep -q '^-rw-r--r-- .* 0 .*result.txt$' <<<"$out"
check "  B does not see it before the commit" test "$(grep -c 'B sees it' <<<"$out")" = 0
check "  A's cat after wait: done" test "$(tail -1 <<<"$out")" = done
check "  B reads done after the commit" wait_for 10 sh -c "[ \"\$(cat '$B/result.txt' 2>/dev/null)\" = done ]"

echo old >"$A/w"
wait_for 10 test -s "$B/w"
printf 'open %s b\nwrite 0123456789\nfstat\ntouch %s\nawait %s\nclose\n' "$A/w" "$QFS_TMP/e1" "$QFS_TMP/f1" |
  timeout 20 "$PROBE" >"$QFS_TMP/w.out" &
pid=$!
wait_for 10 test -e "$QFS_TMP/e1"
check "fstat on A of a file being written: the handle's size 10" grep -qx 'fstat 10 1' "$QFS_TMP/w.out"
check "  stat on A by path: 10" test "$(stat -c %s "$A/w")" = 10
check "  stat on B: the committed size 4" test "$(stat -c %s "$B/w")" = 4
touch "$QFS_TMP/f1"; wait $pid
check "  after close on A, B reads the new data" wait_for 10 sh -c "[ \"\$(cat '$B/w')\" = 0123456789 ]"

printf 'open %s bc\nwrite fresh\ntouch %s\nawait %s\nwrite +more\nclose\n' "$A/m1" "$QFS_TMP/e2" "$QFS_TMP/f2" |
  timeout 20 "$PROBE" >"$QFS_TMP/m.out" &
pid=$!
wait_for 10 test -e "$QFS_TMP/e2"
check "mv on A of a file being created and written" mv "$A/m1" "$A/m2"
touch "$QFS_TMP/f2"; wait $pid
check "  the writer's close() returns 0" grep -qx 'close 0' "$QFS_TMP/m.out"
check "  B reads the new name with every write" wait_for 10 sh -c "[ \"\$(cat '$B/m2' 2>/dev/null)\" = fresh+more ]"
check "  B has no old name" test ! -e "$B/m1"

echo old >"$A/r"
wait_for 10 test -e "$B/r"
printf 'open %s b\nwrite new\ntouch %s\nawait %s\nwrite +more\nclose\n' "$A/r" "$QFS_TMP/e3" "$QFS_TMP/f3" |
  timeout 20 "$PROBE" >"$QFS_TMP/r.out" &
pid=$!
wait_for 10 test -e "$QFS_TMP/e3"
check "rm on A of a committed file open for writing" rm "$A/r"
check "  B sees it gone" wait_for 10 test ! -e "$B/r"
touch "$QFS_TMP/f3"; wait $pid
check "  the writer's close() returns 0" grep -qx 'close 0' "$QFS_TMP/r.out"
sleep 0.3
check "  and it comes back on neither mount" sh -c "test ! -e '$A/r' && test ! -e '$B/r'"

echo "== a file open for writing on A, removed or renamed through B (docs/fuse.md, Open files)"
echo old >"$A/q"
wait_for 10 test -e "$B/q"
printf 'open %s b\nwrite lost\ntouch %s\nawait %s\nwrite +more\nfstat\nclose\n' "$A/q" "$QFS_TMP/e4" "$QFS_TMP/f4" |
  timeout 20 "$PROBE" >"$QFS_TMP/q.out" &
pid=$!
wait_for 10 test -e "$QFS_TMP/e4"
check "rm on B of the file A has open for writing" rm "$B/q"
check "  A sees it gone" wait_for 10 test ! -e "$A/q"
touch "$QFS_TMP/f4"; wait $pid
cat "$QFS_TMP/q.out" | sed 's/^/     /'
check "  A's writes after it keep going to the open fd (fstat 9)" grep -qx 'fstat 9 .' "$QFS_TMP/q.out"
check "  A's close() returns 0 (its writes are gone, as after a local rm)" grep -qx 'close 0' "$QFS_TMP/q.out"
sleep 0.3
check "  and q is re-created on neither mount" sh -c "test ! -e '$A/q' && test ! -e '$B/q'"

echo old >"$A/n"
wait_for 10 test -e "$B/n"
printf 'open %s b\nwrite lost\ntouch %s\nawait %s\nclose\n' "$A/n" "$QFS_TMP/e5" "$QFS_TMP/f5" |
  timeout 20 "$PROBE" >"$QFS_TMP/n.out" &
pid=$!
wait_for 10 test -e "$QFS_TMP/e5"
check "mv on B of the file A has open for writing" mv "$B/n" "$B/n2"
check "  A sees the new name" wait_for 10 test -e "$A/n2"
touch "$QFS_TMP/f5"; wait $pid
check "  A's close() returns 0" grep -qx 'close 0' "$QFS_TMP/n.out"
sleep 0.3
check "  n2 keeps the data it was moved with, on both mounts" sh -c "[ \"\$(cat '$A/n2')\" = old ] && [ \"\$(cat '$B/n2')\" = old ]"
check "  n is re-created on neither mount" sh -c "test ! -e '$A/n' && test ! -e '$B/n'"
echo "== mkdir refused with EEXIST: the name is there at once (docs/fuse.md, Reading, caching)"
# 6 shells, 2 on each mount, walk the same 40 names: each looks NAME up (a miss), then takes it
# as the lock recipe does (mkdir NAME@eph); a loser's next lookup must find NAME. Nobody removes
# one, so "EEXIST, then no such name" is a stale negative kernel entry of NAME (before the fix:
# a lock's waiters spun on it).
mkdir "$(M 1)/race"
for i in 1 2 3; do wait_for 10 test -d "$(M "$i")/race"; done
race() {
  local r n
  for r in $(seq 40); do
    n=$1/race/r$r
    test -e "$n"
    if mkdir "$n@eph" 2>/dev/null; then echo "won $r"; elif test -d "$n"; then echo "lost $r"; else echo "stale $r"; fi
  done
}
for i in 1 2 3 1 2 3; do race "$(M "$i")" & done >"$QFS_TMP/race.out"
wait
check "every name made once (40 of 40)" test "$(grep -c '^won ' "$QFS_TMP/race.out")" = 40
check "  each loser found the name right after EEXIST (stale: $(grep -c '^stale ' "$QFS_TMP/race.out"))" \
  test "$(grep -c '^stale ' "$QFS_TMP/race.out")" = 0
ens stop >/dev/null 2>&1
finish
