#!/usr/bin/env bash
# kill -9 of a member whose mount is echoing remote changes (issue 5, found by scripts/demo).
# The notifier surfaces a remote change by making the same syscall on the daemon's own mount
# (docs/fuse.md, "inotify"). If the daemon is killed after a FUSE worker has read that request
# but before it replied, the notifier thread waits for the reply uninterruptibly, and the
# process, which itself holds the /dev/fuse descriptor, can never finish exiting: the mount
# hangs every process that touches it and the data directory stays locked, so the member cannot
# be restarted. Each round here: creates through member 2 (so member 1's mount echoes them),
# kill -9 of member 1 in the middle, then member 1 must be gone, its old mount must answer
# (ENOTCONN, not hang) and a restart must serve and mount again.
#   QUORUMFSD=.../quorumfsd kill_test.sh [ROUNDS]
here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib.sh"
[ -n "$QFSD" ] || { echo "set QUORUMFSD to the quorumfsd binary" >&2; exit 2; }
export QUORUMFSD=$QFSD
ZKBENCH=$(dirname "$(dirname "$QFSD")")/bench/zkbench
[ -x "$ZKBENCH" ] || { echo "no zkbench next to quorumfsd ($ZKBENCH)" >&2; exit 2; }
rounds=${1:-8}
. "$here/ens_lib.sh"
pid_of() { ens status | awk -v k="$1" '$1==k{ sub("pid=", "", $3); print $3 }'; }

# The process has finished exiting: no /proc entry, or only its zombie leader.
gone() {
  [ -d "/proc/$1" ] || return 0
  [ "$(ls "/proc/$1/task" 2>/dev/null | wc -l)" -le 1 ] && [ "$(awk '{ print $3 }' "/proc/$1/stat" 2>/dev/null)" = Z ]
}

echo "== a 3-member ensemble, a mount on every member"
if ! ens start 3 --timeout 60 --set "mount=$QFS_TMP/m{id}"; then
  fail "the ensemble did not start"
  finish
fi
for i in 1 2 3; do wait_mount "$i" || fail "member $i did not mount"; done
mkdir "$(M 2)/load" || fail "mkdir load"

for r in $(seq "$rounds"); do
  echo "== round $r: creates through member 2, kill -9 of member 1 while its mount echoes them"
  timeout -k 5 20 "$ZKBENCH" -s "127.0.0.1:$(port 2)" -w create -c 8 -o 8 -d 3 --warmup 0 \
    >/dev/null 2>&1 &
  QFS_BG+=($!)
  load=$!
  sleep 0.5  # the load has begun
  sleep 0.$((RANDOM % 8 + 2))
  pid=$(pid_of 1)
  t0=$(date +%s%N)
  ens kill 1 >/dev/null
  if wait_for 10 gone "$pid"; then
    echo "   member 1 (pid $pid) finished exiting after $((($(date +%s%N) - t0) / 1000000)) ms"
  else
    fail "round $r: member 1 (pid $pid) is still exiting 10 s after kill -9"
    for t in /proc/"$pid"/task/*; do
      echo "   thread $(basename "$t"): $(awk '{ print $3 }' "$t/stat") $(cat "$t/wchan" 2>/dev/null)"
    done
  fi
  # The stale mount must fail at once, not hang.
  timeout 5 stat "$(M 1)" >/dev/null 2>&1
  if [ $? -eq 124 ]; then
    fail "round $r: stat of the killed member's mount hangs"
  fi
  wait "$load" 2>/dev/null
  if ens start-member 1 >/dev/null && wait_mount 1; then
    check "round $r: member 1 restarted and mounted again" ls "$(M 1)/load"
  else
    fail "round $r: member 1 did not come back"
    tail -5 "$(log 1)" | sed 's/^/   | /'
    break  # a wedged member would hang the next rounds' mount checks
  fi
  grep -h "aborted its FUSE connection\|waiting for" "$(log 1)" 2>/dev/null | tail -2 | sed 's/^/   log: /'
done
finish
