# shellcheck shell=bash
# What the lab tests (rollout.sh, regions.sh) share: reporting, running
# playbooks, reading the partitions off the nodes. Source it after lib.sh;
# do not run it. The caller sets work (its work directory), venv (the
# Ansible virtualenv), ansible_dir, started_s and PLAYBOOK_TIMEOUT_S; the
# load functions also LOAD_RATE, LOAD_WARMUP, LOAD_WARMUP_TIMEOUT_S,
# LOAD_MAX_S and LOAD_DRAIN_S, and keep load_pid.

# The common arguments ($1, $2, ...: --release-dir DIR) and checks: sets
# release_dir (default $CARGO_TARGET_DIR/release, else <repo>/target/release)
# and venv, and stops unless root runs it, the release binaries named in
# $LAB_BINARIES are there, and the Ansible virtualenv is.
lab_test_args() {
    release_dir=""
    while [ $# -gt 0 ]; do
        case "$1" in
        --release-dir) release_dir=$2; shift 2 ;;
        *) die "unknown argument $1 (see the header of $0)" ;;
        esac
    done
    [ "$(id -u)" -eq 0 ] || die "run as root: mount, network namespaces and systemd-nspawn need it"
    if [ -z "$release_dir" ]; then
        local target=${CARGO_TARGET_DIR:-$repo/target}
        case "$target" in /*) ;; *) target=$repo/$target ;; esac
        release_dir=$target/release
    fi
    local b
    for b in $LAB_BINARIES; do
        [ -x "$release_dir/$b" ] || die "$release_dir/$b is missing: build with cargo build --release -p node -p perf"
    done
    venv=${ANSIBLE_VENV:-$ansible_dir/.venv}
    [ -x "$venv/bin/ansible-playbook" ] || die "$venv/bin/ansible-playbook is missing: see ansible/ci.sh"
}

# Instances the load client has had acknowledged so far.
acked_count() { if [ -f "$work/load/acked.txt" ]; then wc -l <"$work/load/acked.txt"; else echo 0; fi; }

# Starts tests/load.py in the controller's namespace through the gateways $1
# (host:port,...) and waits until LOAD_WARMUP instances are acknowledged.
load_start() {
    ip netns exec "$LAB_NS" timeout $((LOAD_MAX_S + LOAD_DRAIN_S + 60)) "$venv/bin/python" "$here/load.py" \
        --gateways "$1" --out "$work/load" --stop-file "$work/load.stop" --rate "$LOAD_RATE" \
        --max-seconds "$LOAD_MAX_S" --drain-seconds "$LOAD_DRAIN_S" >"$work/load.log" 2>&1 &
    load_pid=$!
    local k
    for ((k = 0; k < LOAD_WARMUP_TIMEOUT_S * 2; k++)); do
        [ "$(acked_count)" -ge "$LOAD_WARMUP" ] && break
        kill -0 "$load_pid" 2>/dev/null || { cat "$work/load.log" >&2; fail "the load client exited"; }
        sleep 0.5
    done
    [ "$(acked_count)" -ge "$LOAD_WARMUP" ] ||
        { cat "$work/load.log" >&2; fail "only $(acked_count) instances acknowledged in ${LOAD_WARMUP_TIMEOUT_S}s"; }
    pass "load running: $(acked_count) instances acknowledged"
}

# Stops the load client's creations and checks that every instance it had
# acknowledged was completed.
load_finish() {
    touch "$work/load.stop"
    local rc=0
    wait "$load_pid" || rc=$?
    load_pid=""
    grep -v '^load: [0-9]* acknowledged' "$work/load.log" | sed 's/^/       /'
    [ $rc -eq 0 ] || fail "acknowledged instances were not completed (load client exit $rc)"
    pass "every acknowledged instance completed: $(jq -r '"\(.acknowledged) acknowledged, \(.completed) completed"' "$work/load/result.json")"
}

# Stops a load client still running (from a cleanup trap).
load_stop() {
    if [ -n "${load_pid:-}" ] && kill -0 "$load_pid" 2>/dev/null; then
        kill -TERM "$load_pid" 2>/dev/null || true
        wait "$load_pid" 2>/dev/null || true
    fi
}

pass() { printf '  ok   %s\n' "$*"; }
fail() {
    printf '  FAIL %s\n' "$*" >&2
    local i
    for i in "${!lab_init_pids[@]}"; do
        echo "--- node$i: waggle.service" >&2
        lab_exec "$i" systemctl status --no-pager waggle.service >&2 || true
        lab_exec "$i" journalctl -u waggle.service --no-pager -n 30 >&2 || true
    done
    exit 1
}
phase() { printf '\n==> %s (at %ss)\n' "$*" "$((SECONDS - started_s))"; }

# ansible-playbook from the ansible/ folder; $1 is a log name, the rest its
# arguments. Its output goes to $work/$1.log, each line with the time.
playbook() {
    local name=$1
    shift
    (cd "$ansible_dir" && timeout "$PLAYBOOK_TIMEOUT_S" env ANSIBLE_CONFIG="$ansible_dir/ansible.cfg" \
        ANSIBLE_LOCAL_TEMP="$work/ansible-tmp" ANSIBLE_HOME="$work/ansible-home" \
        ANSIBLE_NOCOLOR=1 ANSIBLE_FORCE_COLOR=0 PYTHONUNBUFFERED=1 PATH="$venv/bin:$PATH" \
        "$venv/bin/ansible-playbook" "$@") 2>&1 | stamp >"$work/$name.log"
}
# The same in the controller's network namespace.
lab_playbook() {
    local name=$1
    shift
    (cd "$ansible_dir" && lab_controller timeout "$PLAYBOOK_TIMEOUT_S" env ANSIBLE_CONFIG="$ansible_dir/ansible.cfg" \
        ANSIBLE_LOCAL_TEMP="$work/ansible-tmp" ANSIBLE_HOME="$work/ansible-home" \
        ANSIBLE_NOCOLOR=1 ANSIBLE_FORCE_COLOR=0 PYTHONUNBUFFERED=1 PATH="$venv/bin:$PATH" \
        "$venv/bin/ansible-playbook" "$@") 2>&1 | stamp >"$work/$name.log"
}
stamp() { while IFS= read -r line; do printf '%(%H:%M:%S)T %s\n' -1 "$line"; done; }
show_log() { echo "--- last lines of $1.log:" >&2; tail -n "${2:-40}" "$work/$1.log" >&2; }
# Sum of changed= over the PLAY RECAP of a log.
recap_changed() { awk '/PLAY RECAP/ { r = 1 } r && /changed=/ { split($0, a, "changed="); split(a[2], b, " "); s += b[1] } END { print s + 0 }' "$work/$1.log"; }


# Leaders and replicas per partition as the nodes report them:
# "partition leader replica-count" lines.
partition_table() {
    local i p
    for i in "${!lab_init_pids[@]}"; do
        lab_controller curl -fsS --max-time 5 "http://$(lab_ip "$i"):9600/metrics" |
            sed -n "s/^waggle_partition_role{partition=\"\([0-9]*\)\",role=\"\([a-z]*\)\"} 1$/\1 \2 $i/p"
    done | awk '{ if ($2 == "leader") { l[$1] = $3 } if ($2 == "leader" || $2 == "follower") n[$1]++ }
        END { for (p in n) print p, (p in l ? l[p] : "none"), n[p] }' | sort -n
}
