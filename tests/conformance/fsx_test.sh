#!/usr/bin/env bash
# fuse_fsx (docs/fuse.md, "Conformance"): qfs_fsx (tests/conformance/fsx.c) with every op family
# on tmpfs, then on a single member's mount without the families listed in fsx_known.txt; each
# listed family must still fail on the mount. QFS_LONG=1 runs many more ops.
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=../fuse/lib.sh
. "$here/../fuse/lib.sh"
FSX=${QFS_FSX:?set QFS_FSX to the qfs_fsx binary}
if [ -n "${QFS_LONG:-}" ]; then OPS=100000; SEEDS="1 2 3"; else OPS=3000; SEEDS="1 2"; fi

REF=$(mktemp -d /dev/shm/qfs-fsx-XXXXXX)
trap 'rm -rf "$REF"; qfs_cleanup' EXIT
for s in $SEEDS; do
  check "fsx on tmpfs: $OPS ops, seed $s, all families" "$FSX" -N "$OPS" -S "$s" "$REF/f$s"
done

qfs_start one
known=()
while read -r fam reason; do
  case "$fam" in ''|'#'*) continue ;; esac
  [ -n "$reason" ] || { fail "fsx_known.txt: $fam has no reason"; continue; }
  known+=("$fam")
done <"$here/fsx_known.txt"
excl=()
for fam in "${known[@]}"; do excl+=(-x "$fam"); done
echo "     known failing on the mount: ${known[*]:-none}"
for s in $SEEDS; do
  check "fsx on the mount: $OPS ops, seed $s, without the known families" \
    "$FSX" -N "$OPS" -S "$s" "${excl[@]}" "$MNT_one/f$s"
done
# Each known family on its own (with writes, which every family needs) must still fail.
for fam in "${known[@]}"; do
  only=()
  for g in write read mapread truncate reopen append size; do
    [ "$g" = write ] || [ "$g" = "$fam" ] || only+=(-x "$g")
  done
  if "$FSX" -N 500 -S 1 "${only[@]}" "$MNT_one/known-$fam" >"$QFS_TMP/known-$fam.out" 2>&1; then
    fail "fsx family '$fam' now passes on the mount: remove it from fsx_known.txt"
  else
    echo "ok   fsx family '$fam' still fails on the mount (listed): $(grep -m1 'fsx: op' "$QFS_TMP/known-$fam.out")"
  fi
done
finish
