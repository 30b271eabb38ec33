# shellcheck shell=bash
# A booted Debian bookworm in systemd-nspawn, for the install test. Source it;
# do not run it.
#
# Layout under $PKG_CACHE (git-ignored, default <repo>/.cache/packaging):
#   bookworm-rootfs/        debootstrap --variant=minbase + systemd, dbus, man-db;
#                           built once, never written to afterwards
#   bookworm-rootfs.stamp   the debootstrap arguments it was built with
#   run.NAME.PID.XXXXXX/    one per boot: overlayfs upper/work dirs, the merged
#                           root the container boots from, the nspawn log;
#                           PID is the test script's, so that container_sweep
#                           can tell the leftovers of a killed run
#   rootfs-build.PID.XXXXXX debootstrap at work
#
# Each boot mounts an overlayfs over the cached root, so every run starts from
# the same clean system and the cache stays valid. The container gets its own
# network namespace (--private-network: only loopback), so the broker's ports
# never meet the host's.
#
# Running commands inside: with --register=no there is no machined, so
# `systemctl --machine` and `machinectl shell` cannot reach the container.
# Instead container_exec enters every namespace of the container's PID 1 with
# nsenter(1): the mount namespace gives it the container's files and
# /run/systemd/private socket, so systemctl, journalctl and apt inside talk to
# the container's systemd. Processes started this way stay in the host's
# cgroup, which does not matter for short commands.
#
# Stopping: SIGRTMIN+4 to the container's PID 1 (the child of the
# systemd-nspawn this script started) asks its systemd for an orderly
# poweroff, after which nspawn exits; if that has not happened within
# CONTAINER_STOP_TIMEOUT_S, that PID 1 and the nspawn get SIGKILL (killing a
# PID namespace's init ends every process in it). SIGTERM to nspawn alone is
# not enough: early in the boot it can exit and leave the container running.
# Nothing else on the host is touched.

CONTAINER_SUITE=bookworm
CONTAINER_INCLUDES=systemd,systemd-sysv,dbus,man-db
CONTAINER_BOOT_TIMEOUT_S=120
# debootstrap fetches some 150 packages; a second try rides out a network hiccup.
CONTAINER_DEBOOTSTRAP_ATTEMPTS=2
CONTAINER_STOP_TIMEOUT_S=30

container_nspawn_pid=""
container_init_pid=""
container_run_dir=""
container_root=""

# The Debian mirror apt on this host is configured with (deb822 or one-line
# sources), or $WAGGLE_DEBIAN_MIRROR.
container_mirror() {
    if [ -n "${WAGGLE_DEBIAN_MIRROR:-}" ]; then
        echo "$WAGGLE_DEBIAN_MIRROR"
        return
    fi
    local m
    m=$(cat /etc/apt/sources.list.d/*.sources 2>/dev/null |
        awk '/^URIs:/ { for (i = 2; i <= NF; i++) if ($i ~ /\/debian\/?$/) { print $i; exit } }')
    [ -n "$m" ] || m=$(awk '$1 == "deb" { for (i = 2; i <= NF; i++) if ($i ~ /^https?:.*\/debian\/?$/) { print $i; exit } }' \
        /etc/apt/sources.list 2>/dev/null)
    echo "${m:-http://deb.debian.org/debian}"
}

# The debootstrap arguments of the cached root.
container_rootfs_args() {
    echo "$CONTAINER_SUITE --variant=minbase --include=$CONTAINER_INCLUDES"
}

# True when $PKG_CACHE holds a root built with today's arguments.
container_rootfs_ready() {
    local rootfs=$PKG_CACHE/$CONTAINER_SUITE-rootfs
    [ -d "$rootfs" ] && [ "$(cat "$rootfs.stamp" 2>/dev/null)" = "$(container_rootfs_args)" ]
}

# Makes sure $PKG_CACHE/bookworm-rootfs exists and matches the wanted
# debootstrap arguments; builds it (about 1.5 minutes) when it does not.
container_rootfs() {
    local rootfs=$PKG_CACHE/$CONTAINER_SUITE-rootfs
    local want started_s=$SECONDS
    want=$(container_rootfs_args)
    mkdir -p "$PKG_CACHE"
    container_rootfs_ready && return 0
    local mirror tmp attempt
    mirror=$(container_mirror)
    for ((attempt = 1; ; attempt++)); do
        step "debootstrap $want ($mirror) into $rootfs (attempt $attempt of $CONTAINER_DEBOOTSTRAP_ATTEMPTS)"
        tmp=$(mktemp -d "$PKG_CACHE/rootfs-build.$$.XXXXXX")
        if debootstrap --variant=minbase --include="$CONTAINER_INCLUDES" "$CONTAINER_SUITE" "$tmp" "$mirror" \
            >"$tmp.log" 2>&1; then
            rm -f "$tmp.log"
            break
        fi
        tail -n 20 "$tmp.log" >&2
        container_unmount_under "$tmp" && rm -rf "$tmp" "$tmp.log"
        [ "$attempt" -lt "$CONTAINER_DEBOOTSTRAP_ATTEMPTS" ] || die "debootstrap failed $attempt times"
        sleep 5
    done
    # The container has no network (--private-network): apt inside must not try.
    rm -f "$tmp"/etc/apt/sources.list "$tmp"/etc/apt/sources.list.d/*
    rm -rf "$rootfs" "$rootfs.stamp"
    mv "$tmp" "$rootfs"
    echo "$want" >"$rootfs.stamp"
    echo "debootstrap took $((SECONDS - started_s))s"
}

# Unmounts every mount below directory $1, deepest first; fails if one stays.
container_unmount_under() {
    local mnt
    for mnt in $(findmnt -rn -o TARGET | grep -F "$1/" | sort -r); do
        umount "$mnt" 2>/dev/null || umount -l "$mnt" 2>/dev/null || true
    done
    ! grep -qF "$1/" <<<"$(findmnt -rn -o TARGET)"
}

# Unmounts and removes what runs killed before their cleanup left in
# $PKG_CACHE: run and rootfs-build directories whose script (the PID in the
# name) is gone. A directory that still has a mount under it stays.
container_sweep() {
    local dir pid
    for dir in "$PKG_CACHE"/run.*.*.* "$PKG_CACHE"/rootfs-build.*.*; do
        [ -d "$dir" ] || continue
        pid=$(basename "$dir" | awk -F. '{ print $(NF - 1) }')
        case "$pid" in '' | *[!0-9]*) continue ;; esac
        kill -0 "$pid" 2>/dev/null && continue
        container_unmount_under "$dir" || continue
        echo "removing $dir, left by a run that was killed" >&2
        rm -rf "$dir" "$dir.log"
    done
}

# Mounts a fresh overlay over the cached root and returns its path in
# $container_root. $1: a name for the run directory.
container_overlay() {
    container_run_dir=$(mktemp -d "$PKG_CACHE/run.$1.$$.XXXXXX")
    mkdir -p "$container_run_dir"/{upper,work,root}
    mount -t overlay overlay \
        -o "lowerdir=$PKG_CACHE/$CONTAINER_SUITE-rootfs,upperdir=$container_run_dir/upper,workdir=$container_run_dir/work" \
        "$container_run_dir/root"
    container_root=$container_run_dir/root
}

# Boots the overlay root; extra arguments go to systemd-nspawn (e.g.
# --bind-ro=HOST:CONTAINER). Returns once the container's systemd reports the
# system running (or degraded).
container_boot() {
    systemd-nspawn --register=no --keep-unit -b --private-network --console=passive \
        -D "$container_root" -M "waggle-test-$$" "$@" >"$container_run_dir/nspawn.log" 2>&1 &
    container_nspawn_pid=$!
    local i
    for ((i = 0; i < CONTAINER_BOOT_TIMEOUT_S * 10; i++)); do
        container_init_pid=$(ps -o pid= --ppid "$container_nspawn_pid" | head -n 1 | tr -d ' ') || true
        [ -n "$container_init_pid" ] && [ "$(cat "/proc/$container_init_pid/comm" 2>/dev/null)" = systemd ] && break
        kill -0 "$container_nspawn_pid" 2>/dev/null || { cat "$container_run_dir/nspawn.log" >&2; die "systemd-nspawn exited"; }
        container_init_pid=""
        sleep 0.1
    done
    [ -n "$container_init_pid" ] || die "the container's systemd did not start"
    # is-system-running --wait gives up at once while PID 1 has not yet
    # opened its private socket, so ask until the answer is final.
    local state=""
    for ((i = 0; i < CONTAINER_BOOT_TIMEOUT_S * 10; i++)); do
        state=$(nsenter -t "$container_init_pid" -a -- systemctl is-system-running 2>/dev/null) || true
        case "$state" in running | degraded | maintenance | stopping) break ;; esac
        kill -0 "$container_nspawn_pid" 2>/dev/null || break
        sleep 0.1
    done
    case "$state" in
    running | degraded) ;;
    *) cat "$container_run_dir/nspawn.log" >&2; die "the container did not finish booting (state: ${state:-none})" ;;
    esac
}

# Runs a command inside the booted container, as root, with a clean
# environment.
container_exec() {
    nsenter -t "$container_init_pid" -a -- env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root \
        LANG=C.UTF-8 TERM=dumb DEBIAN_FRONTEND=noninteractive "$@"
}

# Stops the container (if this script booted one) and removes the overlay and
# the run directory. Safe to call more than once and from an EXIT trap.
container_cleanup() {
    local i
    if [ -z "$container_init_pid" ] && [ -n "$container_nspawn_pid" ]; then
        container_init_pid=$(ps -o pid= --ppid "$container_nspawn_pid" | head -n 1 | tr -d ' ') || true
    fi
    if [ -n "$container_init_pid" ] && kill -0 "$container_init_pid" 2>/dev/null; then
        # SIGRTMIN+4 asks systemd for an orderly poweroff; nspawn exits with it.
        kill -s RTMIN+4 "$container_init_pid" 2>/dev/null || true
    elif [ -n "$container_nspawn_pid" ]; then
        kill -TERM "$container_nspawn_pid" 2>/dev/null || true
    fi
    if [ -n "$container_nspawn_pid" ]; then
        for ((i = 0; i < CONTAINER_STOP_TIMEOUT_S * 10; i++)); do
            kill -0 "$container_nspawn_pid" 2>/dev/null || break
            sleep 0.1
        done
    fi
    if [ -n "$container_init_pid" ] && kill -0 "$container_init_pid" 2>/dev/null; then
        echo "container did not power off in ${CONTAINER_STOP_TIMEOUT_S}s: killing it" >&2
        kill -KILL "$container_init_pid" 2>/dev/null || true
    fi
    if [ -n "$container_nspawn_pid" ]; then
        kill -KILL "$container_nspawn_pid" 2>/dev/null || true
        wait "$container_nspawn_pid" 2>/dev/null || true
    fi
    container_nspawn_pid=""
    container_init_pid=""
    if [ -n "$container_run_dir" ]; then
        if mountpoint -q "$container_run_dir/root"; then
            umount "$container_run_dir/root" 2>/dev/null || umount -l "$container_run_dir/root" || true
        fi
        rm -rf "$container_run_dir"
        container_run_dir=""
    fi
}
