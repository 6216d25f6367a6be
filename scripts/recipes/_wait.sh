# Sourced by the recipes: waiting on the mount with inotifywait, without lost wake-ups.
# The watch is established *before* the condition is checked again, so a change that happens
# between the check and the wait still wakes us. QFS_RECHECK_S (default 60) bounds each wait as
# a safety net only; the tests check that hand-overs never take that long.

# qfs_wait_until DIR CMD...: returns when CMD succeeds; re-checks on every change in DIR.
# CMD runs again on every check, so pass a command or function, not an expanded "$(...)".
# QFS_EVENTS (inotifywait -e list, comma-separated) replaces the default set of events; CMD
# finds the event that woke it in QFS_EVENT ("EVENTS NAME"; empty on the first check, a timeout).
qfs_wait_until() {
  local dir=$1; shift
  QFS_EVENT=""
  "$@" && return 0
  local line ev=() e fd
  for e in ${QFS_EVENTS:-create,delete,moved_to,moved_from,close_write}; do ev+=(-e "$e"); done
  # inotifywait as a coprocess: its events, and on stderr its notices, come on a pipe that gives
  # EOF once it is gone. No FIFO to make, open or remove, and no command substitution, seq, grep
  # or sleep: in a herd (every waiter of a lock wakes on its release) each process a waiter
  # starts costs every hand-over. It must not keep a QFS_HOLD pipe open (it could outlive a
  # killed shell).
  if [ -n "${QFS_HOLD:-}" ]; then
    coproc QFS_IWC { exec inotifywait -m "${ev[@]}" --format '%e %f' "$dir" 2>&1 {QFS_HOLD}>&-; }
  else
    coproc QFS_IWC { exec inotifywait -m "${ev[@]}" --format '%e %f' "$dir" 2>&1; }
  fi
  local iw=$QFS_IWC_PID
  QFS_IW=$iw  # killed by qfs_on_exit if this shell is stopped while waiting
  # A copy of the read end: bash closes the coprocess's own when it reaps it.
  exec {fd}<&"${QFS_IWC[0]}"
  # Wait for the watch before the re-check, so that a change after the re-check wakes us. Any
  # line but the first notice is "Watches established." or a failure (DIR gone: "Couldn't
  # watch"); on a failure, EOF, or no word in 2 s, the re-check decides.
  while read -r -t 2 line <&"$fd" && [ "$line" = "Setting up watches." ]; do :; done
  QFS_EVENT=""
  while ! "$@"; do
    # EOF (inotifywait gone: it could not watch DIR): poll instead of spinning.
    line=""
    read -r -t "${QFS_RECHECK_S:-60}" line <&"$fd" || { [ $? -gt 128 ] || sleep 0.05; }
    QFS_EVENT=$line
  done
  kill "$iw" 2>/dev/null
  wait "$iw" 2>/dev/null
  QFS_IW=""
  exec {fd}<&-
  return 0
}

# qfs_wait_gone NODE: returns when NODE no longer exists. A delete made elsewhere gives IN_DELETE
# on the parent's watch but no IN_DELETE_SELF on the node's (docs/fuse.md), so this watches the
# parent for deletes only and looks NODE up again only when its own name is reported (or on
# QFS_RECHECK_S): other deletes in the parent cost the waiter a read, not a request to the mount.
qfs_wait_gone() {
  local _qg_node=$1 _qg_name=${1##*/}
  _qfs_gone() {
    case "$QFS_EVENT" in "" | *" $_qg_name") test ! -e "$_qg_node" ;; *) return 1 ;; esac
  }
  QFS_EVENTS=delete,moved_from qfs_wait_until "${_qg_node%/*}" _qfs_gone
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
QFS_EVENT=""
QFS_RELEASE=":"
qfs_on_exit() {
  [ -n "$QFS_IW" ] && kill "$QFS_IW" 2>/dev/null
  eval "$QFS_RELEASE"
}
trap qfs_on_exit EXIT
trap 'exit 143' TERM INT
