# shellcheck shell=bash
# A lab of booted Debian bookworm machines for the rollout test: each one a
# systemd-nspawn container in a network namespace of its own, reachable over
# SSH on a private bridge. Source it after packaging/lib/host.sh and
# packaging/lib/container.sh; do not run it.
#
# Root file system: the packaging test's cached debootstrap root
# ($PKG_CACHE/bookworm-rootfs, built by container_rootfs) with one more cached
# layer on top ($LAB_CACHE/bookworm-ssh-layer: openssh-server, python3,
# python3-apt, sudo; man-db's index updates off, as they cost half a minute
# per package install), built once by installing those packages into an
# overlay and keeping its upper directory. Each machine boots from a fresh overlayfs
# over both layers, so every run starts from the same clean system.
#
# Network: everything lives in namespaces the lab creates and deletes; the
# host's own network namespace is not touched.
#   $LAB_NS        the controller's namespace: bridge br0 with $LAB_NET.1/24;
#                  ansible-playbook, ssh and the load client run in it
#                  (lab_controller)
#   $LAB_NS-n<i>   machine i: eth0 with $LAB_NET.1<i>/24, a veth whose other
#                  end is a port of br0; systemd-nspawn joins it with
#                  --network-namespace-path
#
# Stopping: as container_cleanup does for one container: SIGRTMIN+4 to each
# machine's PID 1 (orderly poweroff), SIGKILL after LAB_STOP_TIMEOUT_S; only
# the PIDs this file started are signalled.

LAB_NET=10.88.0
LAB_NS=""
LAB_PACKAGES="openssh-server python3 python3-apt sudo"
LAB_BOOT_TIMEOUT_S=120
LAB_STOP_TIMEOUT_S=30
LAB_SSH_TIMEOUT_S=60

lab_nspawn_pids=()
lab_init_pids=()
lab_run_dirs=()
lab_netns=()

# The address of machine $1.
lab_ip() { echo "$LAB_NET.1$1"; }

# Runs a command in the controller's namespace.
lab_controller() { ip netns exec "$LAB_NS" "$@"; }

# Makes sure $LAB_CACHE/bookworm-ssh-layer exists and was built over the
# current $PKG_CACHE/bookworm-rootfs with $LAB_PACKAGES; builds it when not
# (about a minute, needs the Debian mirror).
lab_layer() {
    container_rootfs
    local base=$PKG_CACHE/$CONTAINER_SUITE-rootfs
    local layer=$LAB_CACHE/$CONTAINER_SUITE-ssh-layer
    local want
    want="$(cat "$base.stamp") $(stat -c '%i %Y' "$base") + $LAB_PACKAGES, no man-db auto-update"
    mkdir -p "$LAB_CACHE"
    if [ -d "$layer" ] && [ "$(cat "$layer.stamp" 2>/dev/null)" = "$want" ]; then
        return 0
    fi
    step "apt-get install $LAB_PACKAGES into a layer over $base"
    local tmp mirror rc=0
    tmp=$(mktemp -d "$LAB_CACHE/layer-build.XXXXXX")
    mkdir -p "$tmp"/{upper,work,root}
    mount -t overlay overlay -o "lowerdir=$base,upperdir=$tmp/upper,workdir=$tmp/work" "$tmp/root"
    mirror=$(container_mirror)
    echo "deb $mirror $CONTAINER_SUITE main" >"$tmp/root/etc/apt/sources.list"
    # No service starts in the chroot.
    printf '#!/bin/sh\nexit 101\n' >"$tmp/root/usr/sbin/policy-rc.d"
    chmod 0755 "$tmp/root/usr/sbin/policy-rc.d"
    cp "$tmp/root/etc/resolv.conf" "$tmp/resolv.conf.saved" 2>/dev/null || true
    cp /etc/resolv.conf "$tmp/root/etc/resolv.conf"
    mount -t proc proc "$tmp/root/proc"
    mount --bind /dev "$tmp/root/dev"
    # shellcheck disable=SC2086 # $LAB_PACKAGES is a list
    {
        chroot "$tmp/root" env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin DEBIAN_FRONTEND=noninteractive \
            apt-get update -qq &&
            chroot "$tmp/root" env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin DEBIAN_FRONTEND=noninteractive \
                apt-get install -y -qq --no-install-recommends $LAB_PACKAGES &&
            chroot "$tmp/root" apt-get clean
    } >"$tmp.log" 2>&1 || rc=$?
    umount "$tmp/root/dev" "$tmp/root/proc"
    rm -rf "$tmp/root/var/lib/apt/lists/"* "$tmp/root/etc/apt/sources.list" \
        "$tmp/root/usr/sbin/policy-rc.d" "$tmp/root/etc/ssh/ssh_host_"* \
        "$tmp/root/var/lib/man-db/auto-update"
    if [ -f "$tmp/resolv.conf.saved" ]; then
        cp "$tmp/resolv.conf.saved" "$tmp/root/etc/resolv.conf"
    else
        rm -f "$tmp/root/etc/resolv.conf"
    fi
    umount "$tmp/root"
    if [ $rc -ne 0 ]; then
        tail -n 20 "$tmp.log" >&2
        rm -rf "$tmp" "$tmp.log"
        die "installing $LAB_PACKAGES into the layer failed"
    fi
    rm -rf "$layer" "$layer.stamp" "$tmp.log"
    mv "$tmp/upper" "$layer"
    rm -rf "$tmp"
    echo "$want" >"$layer.stamp"
}

# Creates the controller's namespace with the bridge, and one namespace per
# machine wired to it. $1: number of machines.
lab_network() {
    local n=$1 i ns
    LAB_NS=wgl$$
    ip netns add "$LAB_NS"
    lab_netns+=("$LAB_NS")
    ip -n "$LAB_NS" link set lo up
    ip -n "$LAB_NS" link add br0 type bridge
    ip -n "$LAB_NS" addr add "$LAB_NET.1/24" dev br0
    ip -n "$LAB_NS" link set br0 up
    for ((i = 0; i < n; i++)); do
        ns=$LAB_NS-n$i
        ip netns add "$ns"
        lab_netns+=("$ns")
        ip -n "$LAB_NS" link add "veth$i" type veth peer name eth0 netns "$ns"
        ip -n "$LAB_NS" link set "veth$i" master br0 up
        ip -n "$ns" link set lo up
        ip -n "$ns" addr add "$(lab_ip "$i")/24" dev eth0
        ip -n "$ns" link set eth0 up
    done
}

# Prepares and boots machine $1 (after lab_layer and lab_network) with root's
# authorized key $2 (a public key file). Returns once systemd started.
lab_boot() {
    local i=$1 pubkey=$2 run root
    local base=$PKG_CACHE/$CONTAINER_SUITE-rootfs layer=$LAB_CACHE/$CONTAINER_SUITE-ssh-layer
    run=$(mktemp -d "$LAB_CACHE/run.n$i.XXXXXX")
    lab_run_dirs[i]=$run
    mkdir -p "$run"/{upper,work,root}
    mount -t overlay overlay -o "lowerdir=$layer:$base,upperdir=$run/upper,workdir=$run/work" "$run/root"
    root=$run/root
    install -d -m 0700 "$root/root/.ssh"
    install -m 0600 "$pubkey" "$root/root/.ssh/authorized_keys"
    chroot "$root" ssh-keygen -A -q >/dev/null
    echo "node$i" >"$root/etc/hostname"
    printf '127.0.0.1 localhost\n127.0.1.1 node%s\n' "$i" >"$root/etc/hosts"
    systemd-nspawn --register=no --keep-unit -b --console=passive \
        --network-namespace-path="/run/netns/$LAB_NS-n$i" \
        -D "$root" -M "wgl$$-node$i" >"$run/nspawn.log" 2>&1 &
    lab_nspawn_pids[i]=$!
}

# Waits until machine $1's systemd reports the system running (or degraded).
lab_wait_booted() {
    local i=$1 k init="" state=""
    for ((k = 0; k < LAB_BOOT_TIMEOUT_S * 10; k++)); do
        init=$(ps -o pid= --ppid "${lab_nspawn_pids[i]}" | head -n 1 | tr -d ' ') || true
        [ -n "$init" ] && [ "$(cat "/proc/$init/comm" 2>/dev/null)" = systemd ] && break
        kill -0 "${lab_nspawn_pids[i]}" 2>/dev/null || { cat "${lab_run_dirs[i]}/nspawn.log" >&2; die "systemd-nspawn of node$i exited"; }
        init=""
        sleep 0.1
    done
    [ -n "$init" ] || die "the systemd of node$i did not start"
    lab_init_pids[i]=$init
    for ((k = 0; k < LAB_BOOT_TIMEOUT_S * 10; k++)); do
        state=$(lab_exec "$i" systemctl is-system-running 2>/dev/null) || true
        case "$state" in running | degraded | maintenance | stopping) break ;; esac
        kill -0 "${lab_nspawn_pids[i]}" 2>/dev/null || break
        sleep 0.1
    done
    case "$state" in
    running | degraded) ;;
    *) cat "${lab_run_dirs[i]}/nspawn.log" >&2; die "node$i did not finish booting (state: ${state:-none})" ;;
    esac
}

# Runs a command inside machine $1 as root (nsenter into its PID 1).
lab_exec() {
    local i=$1
    shift
    nsenter -t "${lab_init_pids[i]}" -a -- env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root \
        LANG=C.UTF-8 TERM=dumb "$@"
}

# The root directory of machine $1 as seen from the host.
lab_root() { echo "${lab_run_dirs[$1]}/root"; }

# Waits until sshd of machine $1 accepts key $2 from the controller.
lab_wait_ssh() {
    local i=$1 key=$2 k
    for ((k = 0; k < LAB_SSH_TIMEOUT_S; k++)); do
        if lab_controller ssh -i "$key" -o BatchMode=yes -o StrictHostKeyChecking=no \
            -o UserKnownHostsFile=/dev/null -o ConnectTimeout=2 -o LogLevel=ERROR \
            "root@$(lab_ip "$i")" true 2>/dev/null; then
            return 0
        fi
        sleep 1
    done
    die "sshd of node$i did not answer within ${LAB_SSH_TIMEOUT_S}s"
}

# Asks machine $1 to power off: SIGRTMIN+4 to its PID 1 (orderly
# poweroff), or SIGTERM to systemd-nspawn before systemd started.
lab_signal() {
    local i=$1 pid init
    pid=${lab_nspawn_pids[i]:-}
    [ -n "$pid" ] || return 0
    init=${lab_init_pids[i]:-}
    [ -n "$init" ] || init=$(ps -o pid= --ppid "$pid" | head -n 1 | tr -d ' ') || true
    lab_init_pids[i]=$init
    if [ -n "$init" ] && kill -0 "$init" 2>/dev/null; then
        kill -s RTMIN+4 "$init" 2>/dev/null || true
    else
        kill -TERM "$pid" 2>/dev/null || true
    fi
}

# Waits (LAB_STOP_TIMEOUT_S, then SIGKILL) until machine $1, signalled by
# lab_signal, is gone; unmounts its overlay and deletes its run directory.
lab_reap() {
    local i=$1 k pid init run
    pid=${lab_nspawn_pids[i]:-}
    if [ -n "$pid" ]; then
        for ((k = 0; k < LAB_STOP_TIMEOUT_S * 10; k++)); do
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.1
        done
        init=${lab_init_pids[i]:-}
        if [ -n "$init" ] && kill -0 "$init" 2>/dev/null; then
            echo "node$i did not power off in ${LAB_STOP_TIMEOUT_S}s: killing it" >&2
            kill -KILL "$init" 2>/dev/null || true
        fi
        kill -KILL "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    fi
    unset "lab_nspawn_pids[$i]" "lab_init_pids[$i]"
    run=${lab_run_dirs[i]:-}
    if [ -n "$run" ]; then
        if mountpoint -q "$run/root"; then
            umount "$run/root" 2>/dev/null || umount -l "$run/root" || true
        fi
        rm -rf "$run"
    fi
    unset "lab_run_dirs[$i]"
}

# Powers off machine $1 and deletes its disk: the machine is gone, and
# lab_boot $1 makes a new one from the clean layers.
lab_stop() {
    lab_signal "$1"
    lab_reap "$1"
}

# Machines $@ lost at once, as in a power cut: SIGKILL to each one's PID 1
# (every process of the machine dies with it), then their disks deleted.
lab_kill() {
    local i
    for i in "$@"; do
        [ -n "${lab_init_pids[i]:-}" ] && kill -KILL "${lab_init_pids[i]}" 2>/dev/null || true
    done
    for i in "$@"; do lab_reap "$i"; done
}

# Stops every machine this file booted, unmounts their overlays, deletes
# their run directories and the namespaces. Safe to call more than once and
# from an EXIT trap.
lab_cleanup() {
    local i k
    for i in "${!lab_nspawn_pids[@]}"; do lab_signal "$i"; done
    for i in "${!lab_nspawn_pids[@]}" "${!lab_run_dirs[@]}"; do lab_reap "$i"; done
    for ((k = ${#lab_netns[@]} - 1; k >= 0; k--)); do
        ip netns del "${lab_netns[k]}" 2>/dev/null || true
    done
    lab_netns=()
}
