#!/usr/bin/env bash
# shellcheck source-path=SCRIPTDIR
# The package test: builds the .deb and .rpm (packaging/build.sh), checks them
# statically, installs the rpm into a chroot, then installs the deb into a
# booted Debian bookworm (systemd-nspawn) and walks through what an operator
# does: install, deploy, run, restart, upgrade, stop, remove, purge. The
# install is of the previous release, built from its git tag
# (previous-release.sh), and the upgrade goes from it to this tree.
#
# Usage: packaging/test-install.sh [--no-cargo]
#   --no-cargo  package the binaries already in $CARGO_TARGET_DIR/release
# Environment: CARGO_TARGET_DIR (default <repo>/target); PKG_CACHE (default
#   <repo>/.cache/packaging, git-ignored: the debootstrapped root lives there);
#   WAGGLE_DEBIAN_MIRROR (default: the Debian mirror of the host's apt sources).
# Needs root (debootstrap, mount, systemd-nspawn). Touches no host service: the
# only processes it starts are the systemd-nspawn it stops again, by PID, on
# any exit.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(dirname "$here")
# shellcheck source=lib/host.sh
source "$here/lib/host.sh"
# shellcheck source=lib/container.sh
source "$here/lib/container.sh"

# Longest wait for the broker to come back after a restart or an upgrade.
MAX_ACTIVE_WAIT_S=120
# How long a broker without quorum is watched to stay "activating".
NOT_READY_WATCH_S=3
# Log lines of the broker that the test looks for (node/src/notify.rs and
# node/src/broker.rs).
READY_LOG='ready: '
SHUTDOWN_LOG='SIGTERM: shutting down'

build_args=()
while [ $# -gt 0 ]; do
    case "$1" in
    --no-cargo) build_args+=(--no-cargo); shift ;;
    *) die "unknown argument $1 (see the header of $0)" ;;
    esac
done
[ "$(id -u)" -eq 0 ] || die "run as root: debootstrap, mount and systemd-nspawn need it"

target=${CARGO_TARGET_DIR:-$repo/target}
case "$target" in /*) ;; *) target=$repo/$target ;; esac
export CARGO_TARGET_DIR=$target
PKG_CACHE=${PKG_CACHE:-$repo/.cache/packaging}
out=$target/packages
# Logs of the test (lintian, rpmlint, apt, client output); the packages
# folder holds only packages.
logs=$target/package-test
started_s=$SECONDS
trap 'exit 130' INT TERM

pass() { printf '  ok   %s\n' "$*"; }
fail() {
    printf '  FAIL %s\n' "$*" >&2
    if [ -n "$container_init_pid" ]; then
        echo "--- waggle.service in the container:" >&2
        container_exec systemctl status --no-pager waggle.service >&2 || true
        container_exec journalctl -u waggle.service --no-pager -n 40 >&2 || true
    fi
    exit 1
}
# expect DESCRIPTION COMMAND...: the command must succeed (its output is
# shown only when it fails).
expect() {
    local what=$1 output
    shift
    if output=$("$@" 2>&1); then pass "$what"; else
        [ -z "$output" ] || printf '%s\n' "$output" >&2
        fail "$what"
    fi
}
phase() { step "$* (at ${SECONDS}s)"; }

pkg_apt_install debootstrap systemd-container lintian rpm rpmlint python3 dpkg-dev help2man binutils

rm -rf "$out" "$logs"
mkdir -p "$logs"
container_sweep
# debootstrap (network-bound, about 1.5 minutes when there is no cached root)
# runs while the packages build (CPU-bound); the rpm phase waits for it. Its
# own session, so that cleanup can end it with everything it started.
rootfs_pid=""
if ! container_rootfs_ready; then
    step "debootstrap in the background while the packages build (log: $logs/rootfs.log)"
    setsid -w bash -c "source '$here/lib/host.sh' && source '$here/lib/container.sh' &&
        PKG_CACHE='$PKG_CACHE' container_rootfs" >"$logs/rootfs.log" 2>&1 </dev/null &
    rootfs_pid=$!
fi
cleanup() {
    if [ -n "$rootfs_pid" ] && kill -0 "$rootfs_pid" 2>/dev/null; then
        kill -TERM -- "-$rootfs_pid" 2>/dev/null || true
        wait "$rootfs_pid" 2>/dev/null || true
    fi
    container_cleanup
}
trap cleanup EXIT

# --- build ----------------------------------------------------------------------
# The previous release, built from its git tag (previous-release.sh), before
# this tree's release binaries: it builds in the same target folder.
phase "build the previous release ($(sed -n 's/^version=//p' "$here/previous-release"))"
prev_deb=$("$here/previous-release.sh")
mkdir -p "$logs/previous"
cp "$prev_deb" "$logs/previous/"
pass "$(basename "$prev_deb"), built from its tag"
phase "build packages"
"$here/build.sh" "${build_args[@]}" --out "$out"
version=$(sed -n '1s/^waggle (\([^)]*\)).*/\1/p' "$here/debian/changelog")
deb=$out/waggle_${version}_amd64.deb
rpm_file=$out/waggle-${version}.x86_64.rpm
{ [ -f "$deb" ] && [ -f "$rpm_file" ]; } || fail "build.sh did not produce $deb and $rpm_file"
previous=$(dpkg-deb -f "$prev_deb" Version)
dpkg --compare-versions "$previous" lt "$version" || fail "the previous release $previous does not sort before $version"

# --- static checks ------------------------------------------------------------
phase "static checks"
lintian_log=$logs/lintian.log
if lintian --fail-on error,warning --display-info "$deb" >"$lintian_log" 2>&1; then
    pass "lintian: no errors or warnings ($(grep -c '^waggle:' "$here/debian/lintian-overrides") overrides, each with its reason)"
else
    cat "$lintian_log" >&2
    fail "lintian"
fi
rpmlint_log=$logs/rpmlint.log
rpmlint -c "$here/rpm/rpmlint.toml" "$rpm_file" >"$rpmlint_log" 2>&1 || true
grep -E '[0-9]+ packages and [0-9]+ specfiles checked' "$rpmlint_log" >/dev/null || {
    cat "$rpmlint_log" >&2
    fail "rpmlint did not run"
}
if grep -E ' [1-9][0-9]* errors?,' "$rpmlint_log" >/dev/null || grep -E '^[^ ]+: E: ' "$rpmlint_log" >/dev/null; then
    cat "$rpmlint_log" >&2
    fail "rpmlint reports errors"
fi
pass "rpmlint: $(tail -n 1 "$rpmlint_log")"

# One listing (dpkg-deb -c unpacks the whole data archive), then look-ups in it.
deb_list=$(dpkg-deb -c "$deb" | awk '{ print $6 }' | sed 's|^\.||')
for f in /usr/bin/waggle /usr/bin/waggle-perf /etc/waggle/waggle.toml /lib/systemd/system/waggle.service \
    /lib/systemd/system/waggle@.service /usr/lib/sysusers.d/waggle.conf /usr/lib/tmpfiles.d/waggle.conf \
    /usr/share/man/man1/waggle.1.gz /usr/share/man/man1/waggle-perf.1.gz \
    /usr/share/bash-completion/completions/waggle /usr/share/doc/waggle/copyright \
    /usr/share/doc/waggle/changelog.Debian.gz /usr/share/waggle/monitoring/waggle-alerts.rules.yml \
    /usr/share/waggle/monitoring/waggle-dashboard.json; do
    grep -qx "$f" <<<"$deb_list" || fail "deb lacks $f"
done
pass "deb holds binaries, conffile, units, sysusers/tmpfiles, man pages, completion, copyright, changelog, alert rules, dashboard"
grep -q 'libc6' <<<"$(dpkg-deb -f "$deb" Depends)" || fail "deb Depends lacks the C library"
dpkg-deb --ctrl-tarfile "$deb" | tar -xO ./conffiles | grep -qx /etc/waggle/waggle.toml ||
    fail "/etc/waggle/waggle.toml is not a conffile"
pass "deb depends on libc6 and marks /etc/waggle/waggle.toml as a conffile"

rpm_list=$(rpm -qlp "$rpm_file" 2>/dev/null)
for f in /usr/bin/waggle /usr/bin/waggle-perf /etc/waggle/waggle.toml /usr/lib/systemd/system/waggle.service \
    /usr/lib/systemd/system/waggle@.service /usr/lib/sysusers.d/waggle.conf /usr/lib/tmpfiles.d/waggle.conf \
    /usr/share/man/man1/waggle.1.gz /usr/share/bash-completion/completions/waggle /var/lib/waggle \
    /usr/share/licenses/waggle/LICENSE /usr/share/doc/waggle/README.md \
    /usr/share/waggle/monitoring/waggle-alerts.rules.yml /usr/share/waggle/monitoring/waggle-dashboard.json; do
    grep -qx "$f" <<<"$rpm_list" || fail "rpm lacks $f"
done
rpm -qp --qf '[%{FILEFLAGS:fflags} %{FILENAMES}\n]' "$rpm_file" 2>/dev/null | grep -qx 'cn /etc/waggle/waggle.toml' ||
    fail "rpm: /etc/waggle/waggle.toml is not %config(noreplace)"
rpm -qp --qf '[%{FILEUSERNAME}:%{FILEGROUPNAME} %{FILEMODES:perms} %{FILENAMES}\n]' "$rpm_file" 2>/dev/null |
    grep -qx 'waggle:waggle drwxr-x--- /var/lib/waggle' || fail "rpm: /var/lib/waggle is not waggle:waggle 0750"
pass "rpm file list: binaries, %config(noreplace) conffile, units, sysusers/tmpfiles, docs, data dir"
scripts=$(rpm -qp --scripts "$rpm_file" 2>/dev/null)
for want in 'preinstall scriptlet' 'systemd-sysusers --replace=/usr/lib/sysusers.d/waggle.conf' \
    'postinstall scriptlet' 'systemd-tmpfiles --create' 'systemctl --no-reload preset waggle.service' \
    'preuninstall scriptlet' 'disable --now waggle.service' 'postuninstall scriptlet' 'try-restart waggle.service'; do
    grep -qF -- "$want" <<<"$scripts" || fail "rpm scriptlets lack: $want"
done
pass "rpm scriptlets: user in %pre, tmpfiles and preset in %post, stop on erase, try-restart on upgrade"
rpm -qp --changelog "$rpm_file" 2>/dev/null | grep -q -- "- $version" || fail "rpm %changelog lacks $version"
pass "rpm %changelog carries $version"

# --- rpm into a chroot ----------------------------------------------------------
phase "rpm --root install into a chroot"
if [ -n "$rootfs_pid" ]; then
    wait "$rootfs_pid" || { cat "$logs/rootfs.log" >&2; fail "debootstrap of the Debian root"; }
    rootfs_pid=""
    cat "$logs/rootfs.log"
fi
container_rootfs
container_overlay rpm
chroot_root=$container_root
# Debian's rpm warns against installing rpms unless told it is meant.
rpm_opts=()
grep -q -- --force-debian <<<"$(rpm --help 2>&1)" && rpm_opts=(--force-debian)
rpm --root "$chroot_root" --initdb
# --nodeps: the chroot is Debian, its packages are not in the rpm database.
rpm --root "$chroot_root" "${rpm_opts[@]}" -i --nodeps "$rpm_file"
expect "rpm -q in the chroot reports $version" \
    test "$(rpm --root "$chroot_root" -q --qf '%{VERSION}-%{RELEASE}' waggle)" = "$version"
for f in /usr/bin/waggle /usr/bin/waggle-perf /etc/waggle/waggle.toml /usr/lib/systemd/system/waggle.service; do
    [ -f "$chroot_root$f" ] || fail "rpm install: $f missing"
done
pass "rpm install: binaries, conffile and units in place"
expect "rpm %pre created user waggle" chroot "$chroot_root" getent passwd waggle
expect "rpm %pre created group waggle" chroot "$chroot_root" getent group waggle
expect "rpm: /var/lib/waggle owned by waggle:waggle" \
    test "$(chroot "$chroot_root" stat -c '%U:%G %a' /var/lib/waggle)" = "waggle:waggle 750"
expect "rpm install: the binary runs in the chroot" chroot "$chroot_root" /usr/bin/waggle --version
echo '# local change' >>"$chroot_root/etc/waggle/waggle.toml"
rpm --root "$chroot_root" "${rpm_opts[@]}" -e waggle
expect "rpm -e removes the binaries" test ! -e "$chroot_root/usr/bin/waggle"
expect "rpm -e keeps a changed conffile as .rpmsave" test -f "$chroot_root/etc/waggle/waggle.toml.rpmsave"
container_cleanup

# --- deb in a booted systemd -----------------------------------------------------
phase "boot Debian $CONTAINER_SUITE in systemd-nspawn"
pkgs_in=/run/waggle-packages
container_overlay deb
container_boot --bind-ro="$out:$pkgs_in" --bind-ro="$logs/previous:$pkgs_in-previous"
pass "container booted: $(container_exec systemctl is-system-running)"

inside() { container_exec "$@"; }
unit_prop() { inside systemctl show -P "$2" "$1"; }
# The broker answers /ready with 200 (bash /dev/tcp: the container has no curl).
ready_code() {
    inside bash -c 'exec 3<>/dev/tcp/127.0.0.1/'"${1:-9600}"' && printf "GET /ready HTTP/1.0\r\nHost: localhost\r\n\r\n" >&3 &&
        head -n 1 <&3 | cut -d" " -f2' 2>/dev/null || echo none
}
# Status line and body of GET $2 on port $1, as the container sees them.
http_get() {
    inside bash -c 'exec 3<>/dev/tcp/127.0.0.1/'"$1"' && printf "GET '"$2"' HTTP/1.0\r\nHost: localhost\r\n\r\n" >&3 && cat <&3' 2>/dev/null
}
# The web applications ship inside the binary: the packaged broker serves
# their pages and scripts with no other file installed.
serves_ui() {
    local i
    # Within 10 s: the service may just be restarting after the upgrade.
    for ((i = 0; i < 50; i++)); do
        serves_ui_now 2>/dev/null && return 0
        sleep 0.2
    done
    serves_ui_now
}
serves_ui_now() {
    local page script
    for app in operate tasklist; do
        page=$(http_get 8080 "/$app/") || { echo "GET /$app/ failed" >&2; return 1; }
        grep -q '^HTTP/1.[01] 200' <<<"$page" && grep -q 'src="app.js"' <<<"$page" ||
            { printf 'GET /%s/ answered:\n%s\n' "$app" "$page" >&2; return 1; }
        script=$(http_get 8080 "/$app/app.js" | head -n 1)
        grep -q '^HTTP/1.[01] 200' <<<"$script" ||
            { printf 'GET /%s/app.js answered: %s\n' "$app" "$script" >&2; return 1; }
    done
}
wait_active() {
    local i
    for ((i = 0; i < MAX_ACTIVE_WAIT_S * 10; i++)); do
        [ "$(unit_prop waggle.service ActiveState)" = active ] && return 0
        [ "$(unit_prop waggle.service ActiveState)" = failed ] && break
        sleep 0.1
    done
    inside journalctl -u waggle.service --no-pager -n 50 >&2 || true
    fail "waggle.service did not become active"
}
# The partitions as `waggle status` reports them: "<id> <role> <health>" lines.
partitions() {
    inside waggle status | python3 -c '
import json, sys
status = json.load(sys.stdin)
for broker in status.get("brokers", []):
    for p in broker.get("partitions", []):
        print(p.get("partitionId"), p.get("role"), p.get("health"))
'
}
expect_healthy() {
    local parts
    parts=$(partitions) || fail "waggle status failed"
    grep -qE '^1 (LEADER|leader) (HEALTHY|healthy)$' <<<"$parts" || {
        printf '%s\n' "$parts" >&2
        fail "waggle status does not show partition 1 healthy with a leader"
    }
    pass "waggle status: partition 1 leader, healthy"
}
run_instance() {
    inside waggle create-instance install-check --with-result >"$logs/instance.json" 2>&1 || {
        cat "$logs/instance.json" >&2
        return 1
    }
    grep -q '"processInstanceKey"' "$logs/instance.json"
}

phase "install the previous package ($previous)"
inside apt-get install -y -q "$pkgs_in-previous/$(basename "$prev_deb")" >"$logs/apt-install.log" 2>&1 ||
    { cat "$logs/apt-install.log" >&2; fail "apt install of $previous"; }
pass "apt install ./$(basename "$prev_deb")"
# postinst starts the unit with `systemctl start`, which for Type=notify
# returns only after READY=1: right after apt the broker must already be ready.
expect "waggle.service is active right after install" test "$(unit_prop waggle.service ActiveState)" = active
expect "waggle.service is enabled" test "$(inside systemctl is-enabled waggle.service)" = enabled
expect "unit is Type=notify with NotifyAccess=main" \
    test "$(unit_prop waggle.service Type)/$(unit_prop waggle.service NotifyAccess)" = notify/main
expect "/ready answers 200 as soon as the unit is active" test "$(ready_code)" = 200
expect "the broker logged readiness (READY=1)" inside bash -c "journalctl -u waggle.service -o cat | grep -qF '$READY_LOG'"
status_text=$(unit_prop waggle.service StatusText)
expect "STATUS= reaches systemd: '$status_text'" test -n "$status_text"
expect "runs as user waggle" test "$(inside stat -c %U "/proc/$(unit_prop waggle.service MainPID)")" = waggle
expect "user and group waggle exist" inside getent passwd waggle
expect "/var/lib/waggle is waggle:waggle" test "$(inside stat -c '%U:%G' /var/lib/waggle)" = waggle:waggle
expect "systemd-analyze verify prints nothing" \
    test -z "$(inside systemd-analyze verify waggle.service waggle@lab.service 2>&1)"
expect_healthy

phase "deploy and run an instance"
cp "$here/test/install-check.bpmn" "$container_root/root/install-check.bpmn"
inside waggle deploy /root/install-check.bpmn >"$logs/deploy.json" 2>&1 || { cat "$logs/deploy.json" >&2; fail "waggle deploy"; }
grep -q 'install-check' "$logs/deploy.json" || fail "deploy result does not name the process: $(cat "$logs/deploy.json")"
pass "deployed install-check"
expect "instance of install-check completed" run_instance
data_files=$(inside find /var/lib/waggle -type f | wc -l)
expect "the broker wrote its data under /var/lib/waggle ($data_files files)" test "$data_files" -gt 0

phase "systemctl restart keeps the data"
pid_before=$(unit_prop waggle.service MainPID)
inside systemctl restart waggle.service
wait_active
expect "restart gave a new broker process" test "$(unit_prop waggle.service MainPID)" != "$pid_before"
expect_healthy
expect "after restart the deployment is still there (instance without redeploy)" run_instance

phase "a second broker from the template: waggle@lab"
cat >"$container_root/etc/waggle/lab.toml" <<'EOF'
# A second broker on the same host, for waggle@lab.service.
[network]
host = "127.0.0.1"
gateway_port = 26600
internal_port = 26602
management_port = 9700
[rest]
port = 8180
[data]
directory = "/var/lib/waggle/lab"
[runtime]
shards = 1
EOF
inside systemctl start waggle@lab.service ||
    { inside journalctl -u waggle@lab.service --no-pager -n 30 >&2; fail "systemctl start waggle@lab"; }
expect "waggle@lab is active next to waggle.service" \
    test "$(unit_prop waggle@lab.service ActiveState)/$(unit_prop waggle.service ActiveState)" = active/active
expect "waggle@lab answers /ready on its own port" test "$(ready_code 9700)" = 200
expect "waggle@lab keeps its data in /var/lib/waggle/lab" \
    test "$(inside find /var/lib/waggle/lab -type f | wc -l)" -gt 0

phase "a broker that cannot get ready stays activating: waggle@alone"
# Node 0 of a two-node cluster whose node 1 never starts: partition 1 has no
# quorum and no leader, so the broker never sends READY=1. The unit must stay
# "activating" while the broker already serves /ready with a refusal: systemd
# waits for READY=1, not for the process to start.
inside waggle certs --dir /etc/waggle/alone-tls --nodes 2 >/dev/null
inside chown -R waggle:waggle /etc/waggle/alone-tls
cat >"$container_root/etc/waggle/alone.toml" <<'EOF'
# Node 0 of a two-node cluster whose node 1 is never started.
[cluster]
size = 2
replication_factor = 2
contact_points = ["127.0.0.1:26802", "127.0.0.1:26812"]
[network]
host = "127.0.0.1"
gateway_port = 26800
internal_port = 26802
management_port = 9800
[rest]
port = 8280
[data]
directory = "/var/lib/waggle/alone"
[runtime]
shards = 1
[tls]
ca_file = "/etc/waggle/alone-tls/ca.pem"
cert_file = "/etc/waggle/alone-tls/node-0.pem"
key_file = "/etc/waggle/alone-tls/node-0-key.pem"
EOF
inside systemctl start --no-block waggle@alone.service
alone_code=none
for ((i = 0; i < MAX_ACTIVE_WAIT_S * 10; i++)); do
    alone_code=$(ready_code 9800)
    [ "$alone_code" != none ] && break
    [ "$(unit_prop waggle@alone.service ActiveState)" = activating ] || break
    sleep 0.1
done
expect "waggle@alone serves /ready, answering $alone_code (not 200)" \
    test "$alone_code" != none -a "$alone_code" != 200
sleep "$NOT_READY_WATCH_S"
expect "waggle@alone is still activating after ${NOT_READY_WATCH_S}s without READY=1" \
    test "$(unit_prop waggle@alone.service ActiveState)/$(unit_prop waggle@alone.service SubState)" = activating/start
expect "systemctl stop ends the activating waggle@alone" \
    timeout "$MAX_ACTIVE_WAIT_S" nsenter -t "$container_init_pid" -a -- systemctl stop waggle@alone.service
expect "waggle@alone is inactive" test "$(unit_prop waggle@alone.service ActiveState)" = inactive

phase "upgrade $previous -> $version keeps data and config"
# A local change to the conffile: every key uncommented (which also proves
# each listed key and default is accepted by the broker). 0.1.0's listed
# host, 0.0.0.0, is set to loopback: from 0.2.0 on a broker without
# authentication refuses any other address (the changelog says so).
inside sed -i -E 's/^# ([a-z_]+ = )/\1/; /^directory = "data"$/d; s/^host = "0\.0\.0\.0"$/host = "127.0.0.1"/' /etc/waggle/waggle.toml
inside sh -c 'echo "# local change" >> /etc/waggle/waggle.toml'
conf_sum=$(inside md5sum /etc/waggle/waggle.toml)
inside systemctl restart waggle.service
wait_active
pass "the broker accepts every key of the conffile uncommented"
invocation_before=$(unit_prop waggle.service InvocationID)
lab_invocation_before=$(unit_prop waggle@lab.service InvocationID)
inside apt-get install -y -q -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold \
    "$pkgs_in/$(basename "$deb")" >"$logs/apt-upgrade.log" 2>&1 ||
    { cat "$logs/apt-upgrade.log" >&2; fail "apt upgrade to $version"; }
# shellcheck disable=SC2016 # dpkg-query's format, not the shell's
expect "dpkg reports $version installed" \
    test "$(inside dpkg-query -W -f='${Version}' waggle)" = "$version"
expect "the upgrade restarted the service" test "$(unit_prop waggle.service InvocationID)" != "$invocation_before"
expect "the upgrade restarted the running waggle@lab" \
    test "$(unit_prop waggle@lab.service InvocationID)" != "$lab_invocation_before"
wait_active
expect "the locally changed conffile is kept" test "$(inside md5sum /etc/waggle/waggle.toml)" = "$conf_sum"
expect_healthy
expect "after upgrade the deployment is still there" run_instance
expect "Operate and Tasklist are served on the REST port (/operate/, /tasklist/)" serves_ui

phase "systemctl stop is graceful"
main_pid=$(unit_prop waggle.service MainPID)
inside systemctl stop waggle.service
expect "unit inactive after stop" test "$(unit_prop waggle.service ActiveState)" = inactive
expect "stop result is success" test "$(unit_prop waggle.service Result)" = success
expect "the broker exited with status 0" test "$(unit_prop waggle.service ExecMainStatus)" = 0
expect "the journal shows the graceful shutdown of PID $main_pid" \
    inside bash -c "journalctl -u waggle.service _PID=$main_pid -o cat | grep -qF '$SHUTDOWN_LOG'"
expect "systemd did not have to kill the broker" \
    inside bash -c "! journalctl -u waggle.service -o cat | grep -qE 'State .stop-sigterm. timed out|Killing process $main_pid'"

phase "remove keeps data and config; purge deletes the config and asks before deleting the data"
inside systemctl start waggle.service
wait_active
inside apt-get remove -y -q waggle >"$logs/apt-remove.log" 2>&1 || { cat "$logs/apt-remove.log" >&2; fail "apt remove"; }
expect "remove stopped the broker" test "$(unit_prop waggle.service ActiveState)" != active
expect "remove stopped waggle@lab" test "$(unit_prop waggle@lab.service ActiveState)" != active
expect "remove deleted the binary" test ! -e "$container_root/usr/bin/waggle"
expect "remove kept /etc/waggle/waggle.toml" test -f "$container_root/etc/waggle/waggle.toml"
expect "remove kept the data" test "$(inside find /var/lib/waggle -type f | wc -l)" -gt 0
# Unattended, the debconf question keeps its default: the data stays.
inside env DEBIAN_FRONTEND=noninteractive apt-get purge -y -q waggle >"$logs/apt-purge.log" 2>&1 ||
    { cat "$logs/apt-purge.log" >&2; fail "apt purge"; }
expect "purge deleted /etc/waggle" test ! -e "$container_root/etc/waggle"
expect "purge kept /var/lib/waggle (waggle/purge_data defaults to false)" \
    test "$(inside find /var/lib/waggle -type f | wc -l)" -gt 0
expect "purge said where the data was kept" grep -q "data in /var/lib/waggle was kept" "$logs/apt-purge.log"
expect "purge kept the waggle user (Debian policy)" inside getent passwd waggle
# shellcheck disable=SC2016 # dpkg-query's format, not the shell's
expect "dpkg no longer knows waggle" \
    test -z "$(inside dpkg-query -W -f='${Status}' waggle 2>/dev/null | grep -v 'not-installed' || true)"
# Installed again, it takes the kept data over; a purge answered "yes"
# (preseeded, as an unattended purge would be) deletes it.
inside env DEBIAN_FRONTEND=noninteractive apt-get install -y -q "$pkgs_in/$(basename "$deb")" >"$logs/apt-reinstall.log" 2>&1 ||
    { cat "$logs/apt-reinstall.log" >&2; fail "apt install after purge"; }
wait_active
expect "after reinstalling, the kept deployment is still there" run_instance
inside bash -c 'echo "waggle waggle/purge_data boolean true" | debconf-set-selections'
inside env DEBIAN_FRONTEND=noninteractive apt-get purge -y -q waggle >"$logs/apt-purge-data.log" 2>&1 ||
    { cat "$logs/apt-purge-data.log" >&2; fail "apt purge (delete the data)"; }
expect "purge answered yes deleted /var/lib/waggle" test ! -e "$container_root/var/lib/waggle"
expect "purge answered yes deleted /etc/waggle" test ! -e "$container_root/etc/waggle"

container_cleanup
step "install test passed in $((SECONDS - started_s))s (load average: $(cut -d' ' -f1-3 /proc/loadavg))"
