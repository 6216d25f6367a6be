# Sourced by the recipes: waiting on the mount with inotifywait, without lost wake-ups.
# The watch is established *before* the condition is checked again, so a change that happens
# between the check and the wait still wakes us. QFS_RECHECK_S (default 60) bounds each wait as
# a safety net only; the tests check that hand-overs never take that long.

# qfs_wait_until DIR CMD...: returns when CMD succeeds; re-checks on every change in DIR.
# CMD runs again on every check, so pass a command or function, not an expanded "$(...)".
qfs_wait_until() {
  local dir=$1; shift
  "$@" && return 0
  local fifo line
  fifo=$(mktemp -u "${TMPDIR:-/tmp}/qfs-wait-XXXXXX")
  mkfifo "$fifo"
  inotifywait -m -q -e create -e delete -e moved_to -e moved_from -e close_write \
    --format '%e %f' "$dir" >"$fifo" 2>/dev/null &
  local iw=$!
  QFS_IW=$iw  # killed by qfs_on_exit if this shell is stopped while waiting
  exec {fd}<"$fifo"
  rm -f "$fifo"
  # -q hides "Watches established."; a short pause lets inotifywait set its watch up before
  # the re-check. A change in that window is still seen by the re-check itself.
  for _ in $(seq 200); do
    [ -r "/proc/$iw/fdinfo" ] && grep -q inotify "/proc/$iw/fdinfo/"* 2>/dev/null && break
    sleep 0.005
  done
  while ! "$@"; do
    read -r -t "${QFS_RECHECK_S:-60}" line <&"$fd" || true
  done
  kill "$iw" 2>/dev/null
  wait "$iw" 2>/dev/null
  QFS_IW=""
  exec {fd}<&-
  return 0
}

# qfs_seq_sorted DIR PREFIX: the names in DIR starting with PREFIX, by their 10-digit suffix.
qfs_seq_sorted() {
  ls -1 "$1" 2>/dev/null | grep "^$2" | awk '{ print substr($0, length($0) - 9) " " $0 }' |
    sort | cut -d' ' -f2
}

# A token unique to this shell on this host, for "protected" sequential names.
qfs_token() { echo "$(hostname)-$$-$RANDOM"; }

# Cleanup on exit, also when stopped by TERM/INT: QFS_RELEASE (a command) and a pending waiter.
QFS_IW=""
QFS_RELEASE=":"
qfs_on_exit() {
  [ -n "$QFS_IW" ] && kill "$QFS_IW" 2>/dev/null
  eval "$QFS_RELEASE"
}
trap qfs_on_exit EXIT
trap 'exit 143' TERM INT
