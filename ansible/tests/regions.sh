#!/usr/bin/env bash
# shellcheck source-path=SCRIPTDIR
# The dual-region test: failover.yml, failback.yml and scale-out.yml on a
# lab of booted Debian machines (tests/lib.sh) under load.
#
#  1. dual-region.yml rolls out four brokers, replication factor 4: node0
#     and node2 in region east, node1 and node3 in region west, the primary
#     region (waggle_zone_placement: every partition has two replicas in
#     each region, and west's brokers lead).
#  2. tests/load.py creates instances and completes their jobs through east's
#     gateways for the whole test.
#  3. West is lost: node1 and node3 are killed at once (SIGKILL to their
#     PID 1) and their disks deleted. No quorum is left. failover.yml
#     removes them by force; processing resumes in east. The time from the
#     loss to the first instance acknowledged after it is measured, counting
#     the playbook.
#  4. West comes back as new machines: failback.yml installs them, adds them
#     back at replication factor 4, and west's brokers lead again.
#  5. A fifth machine, node4 in east: scale-out.yml (waggle_initial_size 4)
#     restarts the four brokers one at a time with its address, starts it,
#     and counts the brokers up to five; the replicas move to it.
#  6. scale-partitions.yml adds a fifth partition; instances go to it.
#  7. Every acknowledged instance is completed.
#
# Usage: ansible/tests/regions.sh [--release-dir DIR]
#   --release-dir  where the release binary waggle is (default:
#                  $CARGO_TARGET_DIR/release, else <repo>/target/release)
# Environment: PKG_CACHE, LAB_CACHE, ANSIBLE_VENV, as for rollout.sh;
#   REGIONS_KEEP (non-empty: keep the work directory with the logs).
# Needs root. Addresses: 10.88.0.0/24 inside namespaces this test creates and
# deletes. Every process it starts is stopped by PID on exit.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
ansible_dir=$(dirname "$here")
repo=$(dirname "$ansible_dir")
# shellcheck source=../../packaging/lib/host.sh
source "$repo/packaging/lib/host.sh"
# shellcheck source=../../packaging/lib/container.sh
source "$repo/packaging/lib/container.sh"
# shellcheck source=lib.sh
source "$here/lib.sh"
# shellcheck source=harness.sh
source "$here/harness.sh"

# node0..node3 the dual-region cluster, node4 the broker scale-out.yml adds.
NODES=5
PARTITIONS=4
LOAD_RATE=20
LOAD_WARMUP=100
LOAD_WARMUP_TIMEOUT_S=60
LOAD_MAX_S=1200
LOAD_DRAIN_S=120
PLAYBOOK_TIMEOUT_S=900
# Longest wait for processing to resume, or for the leaders to settle.
SETTLE_TIMEOUT_S=120

LAB_BINARIES=waggle
lab_test_args "$@"
PKG_CACHE=${PKG_CACHE:-$repo/.cache/packaging}
LAB_CACHE=${LAB_CACHE:-$repo/.cache/ansible}

started_s=$SECONDS
work=$(mktemp -d /tmp/waggle-regions.XXXXXX)
load_pid=""
build_pid=""

cleanup() {
    local rc=$?
    [ -n "$build_pid" ] && kill -TERM "$build_pid" 2>/dev/null && wait "$build_pid" 2>/dev/null
    load_stop
    lab_cleanup
    if [ -n "${REGIONS_KEEP:-}" ]; then
        echo "work directory kept: $work" >&2
    else
        rm -rf "$work"
    fi
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# This tree's package, built in the background while the machines boot.
mkdir -p "$work/target/release" "$work/packages"
cp "$release_dir/waggle" "$work/target/release/"
[ -x "$release_dir/waggle-perf" ] && cp "$release_dir/waggle-perf" "$work/target/release/"
version=$(sed -n '1s/^waggle (\([^)]*\)).*/\1/p' "$repo/packaging/debian/changelog")
deb=$work/packages/waggle_${version}_amd64.deb
CARGO_TARGET_DIR=$work/target "$repo/packaging/build.sh" --no-cargo --deb-only \
    --out "$work/packages" >"$work/build.log" 2>&1 &
build_pid=$!

region_of() { if (($1 % 2 == 0)); then echo east; else echo west; fi; }

# The inventory of machines node0..node$(($1 - 1)).
write_inventory() {
    local n=$1 i
    {
        echo "all:"
        echo "  children:"
        echo "    waggle:"
        echo "      vars:"
        echo "        ansible_user: root"
        echo "        ansible_python_interpreter: /usr/bin/python3"
        echo "        ansible_ssh_private_key_file: $work/id_ed25519"
        echo "        ansible_ssh_common_args: -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null"
        echo "        waggle_cluster_name: regions"
        echo "        waggle_partitions: $PARTITIONS"
        echo "        waggle_replication_factor: 4"
        echo "        waggle_initial_size: 4"
        echo "        waggle_zone_placement: true"
        echo "        waggle_primary_region: west"
        echo "        waggle_package_file: $deb"
        echo "        waggle_certs_command: $work/target/release/waggle"
        echo "        waggle_certs_dir: $work/certs"
        echo "        waggle_cluster_timeout: 180"
        echo "        waggle_authentication: none"
        echo "        waggle_allow_unauthenticated: true"
        echo "        waggle_config: { runtime: { shards: 1, pin_shards: false } }"
        echo "      hosts:"
        for ((i = 0; i < n; i++)); do
            echo "        node$i: { ansible_host: $(lab_ip "$i"), waggle_region: $(region_of "$i"), waggle_zone: zone-$i }"
        done
    } >"$work/inventory.yml"
}

# Checks that every partition has a leader and $1 replicas, waiting (bounded)
# until the leaders are all of region $2 (empty: any); prints the table.
settle() {
    local replicas=$1 region=$2 k table good
    for ((k = 0; k < SETTLE_TIMEOUT_S * 2; k++)); do
        table=$(partition_table) || true
        good=$(echo "$table" | awk -v r="$replicas" -v w="$region" '
            NF == 3 && $2 != "none" && $3 == r && (w == "" || ($2 % 2 == 1) == (w == "west"))' | wc -l)
        [ "$good" -eq "$PARTITIONS" ] && { echo "$table" | tr '\n' ';'; return 0; }
        sleep 0.5
    done
    fail "partitions (id leader replicas) are $(echo "$table" | tr '\n' ';'), not $replicas replicas each led from ${region:-anywhere}"
}

# --- 1. four machines and dual-region.yml --------------------------------------
phase "four machines"
lab_layer
ssh-keygen -q -t ed25519 -N '' -C regions-test -f "$work/id_ed25519"
lab_network "$NODES"
for i in 0 1 2 3; do lab_boot "$i" "$work/id_ed25519.pub"; done
for i in 0 1 2 3; do lab_wait_booted "$i"; done
for i in 0 1 2 3; do lab_wait_ssh "$i" "$work/id_ed25519"; done
wait "$build_pid" || { tail -n 20 "$work/build.log" >&2; die "packaging/build.sh failed"; }
build_pid=""
[ -f "$deb" ] || die "no $deb"
pass "node0..node3 booted; $(basename "$deb")"

phase "dual-region.yml"
write_inventory 4
t0=$SECONDS
lab_playbook dual-region -i "$work/inventory.yml" dual-region.yml || { show_log dual-region 80; fail "dual-region.yml failed"; }
pass "dual-region.yml in $((SECONDS - t0))s"
grep -q '^regions = \["east", "west", "east", "west"\]$' "$(lab_root 1)/etc/waggle/waggle.toml" ||
    fail "node1's waggle.toml has not the regions of every broker"
pass "partitions (id leader replicas), led from west: $(settle 4 west)"

# --- 2. load ---------------------------------------------------------------------
phase "load through east's gateways"
load_start "$(lab_ip 0):26500,$(lab_ip 2):26500"

# --- 3. west lost, failover.yml -----------------------------------------------------
phase "region west lost; failover.yml"
lost_ms=$(date +%s%3N)
lab_kill 1 3
acked_at_loss=$(acked_count)
sleep 5
stalled=$(($(acked_count) - acked_at_loss))
pass "node1 and node3 killed, their disks gone; $stalled instances acknowledged in the 5 s after (answers on their way)"
t0=$SECONDS
lab_playbook failover -i "$work/inventory.yml" -e waggle_lost_region=west failover.yml ||
    { show_log failover 80; fail "failover.yml failed"; }
failover_s=$((SECONDS - t0))
before=$(acked_count)
for ((k = 0; k < SETTLE_TIMEOUT_S * 10; k++)); do
    [ "$(acked_count)" -gt "$before" ] && break
    sleep 0.1
done
[ "$(acked_count)" -gt "$before" ] || fail "nothing acknowledged within ${SETTLE_TIMEOUT_S}s of failover.yml"
serving_ms=$(($(date +%s%3N) - lost_ms))
pass "failover.yml in ${failover_s}s; serving again $((serving_ms / 1000)).$((serving_ms % 1000 / 100)) s after the loss"
pass "partitions on the survivors: $(settle 2 east)"

# --- 4. west back, failback.yml -----------------------------------------------------
phase "region west back on new machines; failback.yml"
for i in 1 3; do lab_boot "$i" "$work/id_ed25519.pub"; done
for i in 1 3; do lab_wait_booted "$i"; done
for i in 1 3; do lab_wait_ssh "$i" "$work/id_ed25519"; done
t0=$SECONDS
lab_playbook failback -i "$work/inventory.yml" -e waggle_lost_region=west failback.yml ||
    { show_log failback 80; fail "failback.yml failed"; }
pass "failback.yml in $((SECONDS - t0))s"
pass "partitions, led from west again: $(settle 4 west)"

# --- 5. scale-out.yml --------------------------------------------------------------
phase "node4 added; scale-out.yml"
lab_boot 4 "$work/id_ed25519.pub"
lab_wait_booted 4
lab_wait_ssh 4 "$work/id_ed25519"
write_inventory 5
t0=$SECONDS
lab_playbook scale-out -i "$work/inventory.yml" scale-out.yml || { show_log scale-out 80; fail "scale-out.yml failed"; }
pass "scale-out.yml in $((SECONDS - t0))s"
pass "partitions over five brokers: $(settle 4 west)"
held=$(lab_controller curl -fsS --max-time 5 "http://$(lab_ip 4):9600/metrics" | grep -c '^waggle_partition_role{.*role="follower"} 1$') || true
[ "${held:-0}" -gt 0 ] || fail "node4 holds no replica after scale-out.yml"
pass "node4 holds $held replicas"

# --- 6. scale-partitions.yml ----------------------------------------------------------
phase "a fifth partition; scale-partitions.yml"
PARTITIONS=5
write_inventory 5
t0=$SECONDS
lab_playbook scale-partitions -i "$work/inventory.yml" scale-partitions.yml ||
    { show_log scale-partitions 80; fail "scale-partitions.yml failed"; }
pass "scale-partitions.yml in $((SECONDS - t0))s"
pass "five partitions: $(settle 4 "")"
before=$(acked_count)
for ((k = 0; k < SETTLE_TIMEOUT_S * 10; k++)); do
    [ "$(acked_count)" -gt $((before + LOAD_RATE)) ] && break
    sleep 0.1
done
[ "$(acked_count)" -gt $((before + LOAD_RATE)) ] || fail "fewer than $LOAD_RATE instances acknowledged after scale-partitions.yml"
pass "instances acknowledged after it: $(($(acked_count) - before))"

# --- 7. nothing acknowledged lost ----------------------------------------------------
phase "every acknowledged instance"
load_finish

printf '\nregions test: failover.yml %ss, serving again %s ms after the loss, total %ss\n' \
    "$failover_s" "$serving_ms" "$((SECONDS - started_s))"
echo "regions: 1 passed, 0 failed"
