# Helpers for the FUSE tests on a real ensemble (ensemble_test.sh, kill_test.sh). Source it after
# lib.sh, with $here set to tests/fuse. The ensemble lives in $E, member i mounts on $(M i);
# on exit the ensemble is stopped and any mount left behind is detached (then qfs_cleanup).
E=$QFS_TMP/ens
ens() { "$PY" "$here/../ensemble/ensemble.py" --dir "$E" "$@"; }
M() { echo "$QFS_TMP/m$1"; }
log() { echo "$E/m$1/server.log"; }
port() { "$PY" -c "import json; print(json.load(open('$E/state.json'))['members']['$1']['client_port'])"; }

ens_cleanup() {
  [ -f "$E/state.json" ] && ens stop >/dev/null 2>&1
  local i
  for i in 1 2 3; do
    if grep -q " $(M "$i") fuse" /proc/mounts 2>/dev/null; then
      umount -l "$(M "$i")" 2>/dev/null || fusermount3 -u -z "$(M "$i")" 2>/dev/null
    fi
  done
}
trap 'ens_cleanup; qfs_cleanup' EXIT

# Waits (bounded) until member $1's current run has mounted, and the mount answers. Neither
# /proc/mounts nor stat tells a new mount from the stale one a killed member left (stat may be
# answered from the kernel's cache), and between the two the path is the plain directory
# beneath: so wait for this run's "mounted" log line (runs are separated by "==== start").
wait_mount() {
  wait_for 30 sh -c "[ \$(awk '/^==== start/{ n = 0 } /mounted the tree on/{ n++ } END{ print n + 0 }' '$(log "$1")') -gt 0 ] &&
    grep -q ' $(M "$1") fuse.quorumfs' /proc/mounts && timeout 2 ls '$(M "$1")' >/dev/null 2>&1"
}

# ens_start_mounted [--set K=V]...: starts 3 members, each mounting the tree on $(M i), and
# checks every mount; on failure ends the test (exit 1).
ens_start_mounted() {
  if ! ens start 3 --timeout 60 --set "mount=$QFS_TMP/m{id}" "$@"; then
    fail "the ensemble did not start"
    finish
    exit 1
  fi
  local i
  for i in 1 2 3; do check "member $i mounted the tree on $(M $i)" wait_mount $i; done
}
