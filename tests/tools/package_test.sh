#!/usr/bin/env bash
# INSTALLS INTO THE SYSTEM (root, dpkg): builds the quorumfs .deb, installs it, checks the
# installed files, unit and user, runs the installed quorumfsd on a free loopback port with the
# sample config (data and port overridden), does a create/get with the installed quorumfs, stops
# it by PID, re-installs (idempotent), and removes the package at the end.
#   package_test.sh SRC [TEST_BUILD_DIR]
# Which package: the Release one (scripts/package) when build/release exists or
# QFS_PACKAGE_TEST=1; otherwise, so that the default test run needs no extra build, CPack's
# package of TEST_BUILD_DIR (the sanitizer build, configured with prefix /usr by scripts/build):
# the same install rules, unit, config and scripts, with instrumented binaries (docs/install.md).
# Exit 77 (skipped): not root, no dpkg, a quorumfs package already installed, or nothing to
# package.
set -euo pipefail
src=$1
test_build=${2:-}
skip() { echo "skipped: $*"; exit 77; }
fail() { echo "FAIL: $*"; exit 1; }
. "$(dirname "$0")/notify_lib.sh"  # notify_listen
[ "$(id -u)" -eq 0 ] || skip "needs root for dpkg -i"
command -v dpkg >/dev/null || skip "no dpkg"
if dpkg-query -W quorumfs >/dev/null 2>&1; then
  skip "a quorumfs package (or its config files) is on this system; this test does not touch it"
fi
release=0
if [ -f "$src/build/release/CMakeCache.txt" ] || [ "${QFS_PACKAGE_TEST:-}" = 1 ]; then
  release=1
elif [ -z "$test_build" ] || ! grep -qx 'CMAKE_INSTALL_PREFIX:PATH=/usr' "$test_build/CMakeCache.txt"; then
  skip "no build/release and no test build with prefix /usr (run scripts/package, or set QFS_PACKAGE_TEST=1)"
fi

dir=$(mktemp -d /tmp/qfs-package-XXXXXX)
chmod 755 "$dir"
pid=
pids=()
installed=0
cleanup() {
  [ -n "$pid" ] && kill -9 "$pid" 2>/dev/null || true
  for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null || true; done
  [ "$installed" -eq 1 ] && dpkg -r quorumfs >/dev/null 2>&1 || true
  # Leave no conffile behind either (the test does not own /etc/quorumfs otherwise).
  [ "$installed" -ge 1 ] && dpkg --purge quorumfs >/dev/null 2>&1 || true
  rm -rf "$dir"
}
trap cleanup EXIT

start=$SECONDS
libs=(libfuse3-3 libprotobuf libzookeeper-mt2 libc6 libstdc++6)
if [ "$release" = 1 ]; then
  deb=$("$src/scripts/package" 2>"$dir/package.log" | tail -n 1) || {
    tail -n 30 "$dir/package.log"; fail "scripts/package failed"; }
  libs+=(libjemalloc2)  # not linked beside the sanitizers
  echo "built the Release package $deb in $((SECONDS - start)) s"
else
  rm -f "$test_build"/quorumfs_*.deb
  (cd "$test_build" && cpack -G DEB) >"$dir/package.log" 2>&1 || {
    tail -n 30 "$dir/package.log"; fail "cpack in $test_build failed"; }
  deb=$(ls "$test_build"/quorumfs_*.deb)
  echo "packaged the test build (sanitizers on; scripts/test --long packages a Release build): $deb in $((SECONDS - start)) s"
fi
dpkg-deb -I "$deb" > "$dir/info"
cat "$dir/info"
depends=$(sed -n 's/^ Depends: //p' "$dir/info")
for lib in "${libs[@]}"; do
  [[ "$depends" == *"$lib"* ]] || fail "Depends lacks $lib: $depends"
done
dpkg-deb -c "$deb" > "$dir/contents"
grep -q '\./etc/quorumfs/zoo.cfg$' "$dir/contents" || fail "no /etc/quorumfs/zoo.cfg in the package"
dpkg-deb -e "$deb" "$dir/control"
grep -qx /etc/quorumfs/zoo.cfg "$dir/control/conffiles" || fail "zoo.cfg is not a conffile"

dpkg -i "$deb" || fail "dpkg -i failed"
installed=1
for f in /usr/bin/quorumfsd /usr/bin/quorumfs /etc/quorumfs/zoo.cfg \
  /usr/lib/systemd/system/quorumfsd.service; do
  [ -e "$f" ] || fail "$f is not installed"
done
getent passwd quorumfs >/dev/null || fail "postinst did not create the quorumfs user"
unit=/usr/lib/systemd/system/quorumfsd.service
grep -qx 'ExecStart=/usr/bin/quorumfsd /etc/quorumfs/zoo.cfg' "$unit" || fail "ExecStart"
grep -qx 'User=quorumfs' "$unit" || fail "User"
grep -qx 'StateDirectory=quorumfs' "$unit" || fail "StateDirectory"
if command -v systemd-analyze >/dev/null; then
  systemd-analyze verify "$unit" 2>&1 | tee "$dir/verify"
  if grep -v -e 'Failed to .* unit file' -e 'network-online.target' "$dir/verify" |
    grep -qi quorumfsd; then
    fail "systemd-analyze verify reports problems with the unit"
  fi
else
  echo "no systemd-analyze: unit not verified"
fi

/usr/bin/quorumfsd --help | grep -q '^usage: quorumfsd' || fail "quorumfsd --help"
/usr/bin/quorumfs --help | grep -q 'log-dump' || fail "quorumfs --help"

# The installed daemon, as the quorumfs user, with the sample config; data and port overridden.
port=$(/usr/bin/python3 "$src/tests/clients/ports.py")
mkdir "$dir/data"
chown quorumfs:quorumfs "$dir/data"
notify_listen "$dir/notify" "$dir/notify.out"
NOTIFY_SOCKET="$dir/notify" setpriv --reuid=quorumfs --regid=quorumfs --init-groups /usr/bin/quorumfsd /etc/quorumfs/zoo.cfg --data-dir "$dir/data" \
  --client-port "$port" 2>"$dir/stderr" &
pid=$!
for _ in $(seq 100); do
  grep -q "serving on" "$dir/stderr" && break
  kill -0 "$pid" 2>/dev/null || { cat "$dir/stderr"; fail "installed quorumfsd did not start"; }
  sleep 0.1
done
grep -q "serving on 127.0.0.1:$port" "$dir/stderr" || { cat "$dir/stderr"; fail "not serving"; }
timeout 20 tail --pid="$notify_pid" -f /dev/null || fail "no READY=1 from quorumfsd"
grep -qx "READY=1" "$dir/notify.out" || fail "notify: $(cat "$dir/notify.out")"
[ "$(/usr/bin/quorumfs -s "127.0.0.1:$port" create /pkg hello)" = /pkg ] || fail "create"
[ "$(/usr/bin/quorumfs -s "127.0.0.1:$port" get /pkg)" = hello ] || fail "get"
kill -TERM "$pid"
timeout 20 tail --pid="$pid" -f /dev/null || fail "quorumfsd did not stop on SIGTERM"
wait "$pid" || { cat "$dir/stderr"; fail "quorumfsd exited with an error"; }
pid=
/usr/bin/quorumfs log-dump "$dir/data" | grep -q ' create path=/pkg len=5 ' || fail "log-dump"

# Re-installing the same package is a no-op for the user and the config.
dpkg -i "$deb" >/dev/null || fail "second dpkg -i failed"
[ "$(getent passwd quorumfs | wc -l)" -eq 1 ] || fail "quorumfs user after re-install"
dpkg -r quorumfs >/dev/null || fail "dpkg -r failed"
installed=2
[ ! -e /usr/bin/quorumfsd ] || fail "dpkg -r left /usr/bin/quorumfsd"
echo "package_test: ok"
