#!/usr/bin/env bash
# shellcheck source-path=SCRIPTDIR
# The rollout test: the playbooks against three booted Debian machines.
#
#  1. Refusals, with no machine: dual-region.yml refuses inventories with a
#     wrong node count, a wrong replication factor and a wrong region
#     layout, site.yml one whose zones do not alternate; a correct
#     dual-region inventory passes the checks.
#  2. Three systemd-nspawn machines, each in a network namespace of its own
#     on a private bridge (tests/lib.sh), sshd inside, a key made here. One of
#     them already runs the package's single-node broker, as if installed by
#     hand. ansible-playbook runs over SSH from the controller namespace.
#  3. site.yml: the cluster forms (3 nodes, every partition a leader and 3
#     replicas), private keys are 0600, the single-node data was moved aside.
#  4. tests/load.py creates instances and completes their jobs through all
#     three gateways while rolling-upgrade.yml moves every node from the
#     previous release (built from its git tag: packaging/previous-release)
#     to this tree's package, from an apt repository served in the
#     controller's namespace, one node at a time. The cluster serves with
#     brokers of both releases meanwhile. Every acknowledged instance must be
#     completed afterwards.
#  5. A second run of site.yml changes nothing; one with another partition
#     count is refused before anything changes.
#  6. site.yml with client-port certificates of a CA made here and mutual
#     TLS turns TLS on with a rolling restart; every port then speaks only
#     TLS and wants a client certificate.
#
# Usage: ansible/tests/rollout.sh [--release-dir DIR]
#   --release-dir  where the release binaries waggle and waggle-perf are
#                  (default: $CARGO_TARGET_DIR/release, else <repo>/target/release)
# Environment: PKG_CACHE (default <repo>/.cache/packaging: the packaging
#   test's debootstrap root, shared), LAB_CACHE (default <repo>/.cache/ansible:
#   the layer with sshd and python3), ANSIBLE_VENV (default ansible/.venv,
#   with ansible-core and pyzeebe: see ansible/requirements.txt),
#   ROLLOUT_KEEP (non-empty: keep the work directory with the playbook logs).
# Needs root. Addresses: 10.88.0.0/24 inside namespaces this test creates and
# deletes; the host's own network is not touched. Every process it starts is
# stopped by PID on exit.
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

NODES=3
PARTITIONS=3
LOAD_RATE=20
# Acknowledged instances the load must have before the upgrade starts.
LOAD_WARMUP=100
LOAD_WARMUP_TIMEOUT_S=60
# Bounds of the load client: creation phase, then the wait for the last
# completions; the wrapper timeout is their sum and some.
LOAD_MAX_S=900
LOAD_DRAIN_S=120
# Longest run of one playbook.
PLAYBOOK_TIMEOUT_S=900
# The apt repository's HTTP server on the controller's bridge address; it is
# stopped at the end, and in any case after REPO_SERVE_S.
REPO_PORT=8080
REPO_SERVE_S=3600

LAB_BINARIES="waggle waggle-perf"
lab_test_args "$@"
PKG_CACHE=${PKG_CACHE:-$repo/.cache/packaging}
LAB_CACHE=${LAB_CACHE:-$repo/.cache/ansible}

started_s=$SECONDS
work=$(mktemp -d /tmp/waggle-rollout.XXXXXX)
load_pid=""
repo_pid=""
monitor_pid=""
build_pids=()

cleanup() {
    local rc=$? pid
    for pid in "${build_pids[@]}"; do
        [ -n "$pid" ] && kill -TERM "$pid" 2>/dev/null && wait "$pid" 2>/dev/null
    done
    load_stop
    if [ -n "$monitor_pid" ]; then
        kill -TERM "$monitor_pid" 2>/dev/null || true
        wait "$monitor_pid" 2>/dev/null || true
    fi
    if [ -n "$repo_pid" ]; then
        kill -TERM "$repo_pid" 2>/dev/null || true
        wait "$repo_pid" 2>/dev/null || true
    fi
    lab_cleanup
    if [ -n "${ROLLOUT_KEEP:-}" ]; then
        echo "work directory kept: $work" >&2
    else
        rm -rf "$work"
    fi
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# --- packages, built in the background meanwhile ---------------------------------
# The old version is the previous release, built from its git tag
# (packaging/previous-release.sh, which ansible/ci.sh ran before this tree's
# build); the new one is this tree. build.sh takes its binaries from
# $CARGO_TARGET_DIR/release: a private copy, so that nothing is written next to
# the binaries given.
mkdir -p "$work/target/release" "$work/packages" "$work/packages-new"
cp "$release_dir/waggle" "$release_dir/waggle-perf" "$work/target/release/"
old_deb=$(CARGO_TARGET_DIR=$release_dir/.. "$repo/packaging/previous-release.sh")
cp "$old_deb" "$work/packages/"
old_deb=$work/packages/$(basename "$old_deb")
old_version=$(dpkg-deb -f "$old_deb" Version)
new_version=$(sed -n '1s/^waggle (\([^)]*\)).*/\1/p' "$repo/packaging/debian/changelog")
dpkg --compare-versions "$new_version" gt "$old_version" || die "$new_version is not above the previous release $old_version"
new_deb=$work/packages-new/waggle_${new_version}_amd64.deb
CARGO_TARGET_DIR=$work/target "$repo/packaging/build.sh" --no-cargo --deb-only \
    --out "$work/packages-new" >"$work/build-new.log" 2>&1 &
build_pids=($!)

# --- 1. machines ---------------------------------------------------------------
phase "three machines"
lab_layer
ssh-keygen -q -t ed25519 -N '' -C rollout-test -f "$work/id_ed25519"
lab_network "$NODES"
for ((i = 0; i < NODES; i++)); do lab_boot "$i" "$work/id_ed25519.pub"; done
for ((i = 0; i < NODES; i++)); do lab_wait_booted "$i"; done
for ((i = 0; i < NODES; i++)); do lab_wait_ssh "$i" "$work/id_ed25519"; done
pass "node0..node$((NODES - 1)) booted, sshd answers on $(lab_ip 0)..$(lab_ip $((NODES - 1)))"

# --- 2. refusals --------------------------------------------------------------
phase "refusals of bad inventories"
# Hosts that nothing listens for: if a check let an inventory through, the
# play would stop at the first connection (port 1 of a loopback address),
# never reaching a real machine.
refusal_inventory() {
    local file=$1 rf=$2
    shift 2
    {
        echo "all:"
        echo "  children:"
        echo "    waggle:"
        echo "      vars:"
        echo "        ansible_port: 1"
        echo "        ansible_user: nobody"
        echo "        ansible_python_interpreter: /usr/bin/python3"
        echo "        ansible_ssh_common_args: -o ConnectTimeout=2 -o BatchMode=yes"
        echo "        waggle_replication_factor: $rf"
        echo "        waggle_partitions: 4"
        echo "        waggle_package_file: /nonexistent/waggle_0.0.0-1_amd64.deb"
        echo "        waggle_certs_command: /bin/false"
        echo "        waggle_certs_dir: $work/refusal-certs"
        echo "      hosts:"
        local i=0 spec
        for spec in "$@"; do
            echo "        h$i: { ansible_host: 127.0.1.$((i + 1)), waggle_region: ${spec%/*}, waggle_zone: ${spec#*/} }"
            i=$((i + 1))
        done
    } >"$file"
}
expect_refusal() {
    local name=$1 book=$2 message=$3
    shift 3
    if playbook "$name" -i "$work/$name.yml" "$@" "$book"; then
        show_log "$name"
        fail "$book accepted the inventory $name"
    fi
    grep -qF -- "$message" "$work/$name.log" || { show_log "$name"; fail "$book refused $name without saying: $message"; }
    if grep -q "UNREACHABLE" "$work/$name.log"; then
        show_log "$name"
        fail "$book tried to reach a host of $name before refusing it"
    fi
    pass "$book refuses $name: $(grep -o -- "${message}[^\"]*" "$work/$name.log" | head -n 1 | cut -c1-150)"
}
refusal_inventory "$work/five-nodes.yml" 4 a/a1 b/b1 a/a2 b/b2 a/a3
expect_refusal five-nodes dual-region.yml "dual-region needs 4 or 8 hosts in group 'waggle'; it has 5"
refusal_inventory "$work/rf3.yml" 3 a/a1 b/b1 a/a2 b/b2
expect_refusal rf3 dual-region.yml "dual-region needs waggle_replication_factor 4; it is 3"
refusal_inventory "$work/regions-in-blocks.yml" 4 a/a1 a/a2 b/b1 b/b2
expect_refusal regions-in-blocks dual-region.yml "dual-region needs the even node ids in one region and the odd node ids in another: even ids are in a, b; odd ids are in a, b"
refusal_inventory "$work/zones-in-blocks.yml" 3 r/z1 r/z1 r/z2 r/z3
expect_refusal zones-in-blocks site.yml "partition 1 has its replicas on nodes h0, h1, h2 in zones z1, z1, z2"
refusal_inventory "$work/dual-region-ok.yml" 4 a/a1 b/b1 a/a2 b/b2 a/a3 b/b3 a/a4 b/b4
if playbook dual-region-ok -i "$work/dual-region-ok.yml" dual-region.yml; then
    fail "dual-region.yml succeeded against hosts that do not exist"
fi
grep -q "dual-region needs" "$work/dual-region-ok.log" && { show_log dual-region-ok; fail "dual-region.yml refused a correct 8-node inventory"; }
grep -q "TASK \[waggle : Look for this node's certificate on the controller\]" "$work/dual-region-ok.log" ||
    { show_log dual-region-ok; fail "dual-region.yml stopped in its checks"; }
pass "dual-region.yml accepts 8 nodes in alternating regions"
# Brokers that place by zone and region take the hosts in any order.
expect_refusal regions-in-blocks dual-region.yml "waggle_primary_region 'c' is none of the regions a, b" \
    -e waggle_zone_placement=true -e waggle_primary_region=c
if playbook regions-placed -i "$work/regions-in-blocks.yml" -e waggle_zone_placement=true \
    -e waggle_primary_region=a dual-region.yml; then
    fail "dual-region.yml succeeded against hosts that do not exist"
fi
grep -q "TASK \[waggle : Look for this node's certificate on the controller\]" "$work/regions-placed.log" ||
    { show_log regions-placed; fail "dual-region.yml with waggle_zone_placement stopped in its checks"; }
pass "dual-region.yml with waggle_zone_placement accepts regions in blocks"

phase "packages $old_version and $new_version"
pid=${build_pids[0]}
build_pids[0]=""
wait "$pid" || { tail -n 20 "$work/build-new.log" >&2; die "packaging/build.sh failed"; }
[ -f "$old_deb" ] || die "no $old_deb"
[ -f "$new_deb" ] || die "no $new_deb"
pass "$(basename "$old_deb"), $(basename "$new_deb")"

# An apt repository (flat: Packages and Release at its root) with the new
# version, served over HTTP from the controller's namespace.
mkdir -p "$work/repo"
cp "$new_deb" "$work/repo/"
(cd "$work/repo" && apt-ftparchive packages . >Packages && apt-ftparchive release . >Release) ||
    die "apt-ftparchive failed"
# Started without the lab_controller function, so that $! is the process
# itself (ip netns exec becomes timeout, which passes SIGTERM on).
ip netns exec "$LAB_NS" timeout "$REPO_SERVE_S" "$venv/bin/python" -m http.server "$REPO_PORT" --bind "$LAB_NET.1" \
    --directory "$work/repo" >"$work/repo.log" 2>&1 &
repo_pid=$!
pass "apt repository with $new_version at http://$LAB_NET.1:$REPO_PORT/"

# node2 runs the package's single-node broker already, installed by hand.
cp "$old_deb" "$(lab_root 2)/root/"
lab_exec 2 env DEBIAN_FRONTEND=noninteractive dpkg -i "/root/$(basename "$old_deb")" >"$work/node2-dpkg.log" 2>&1 ||
    { cat "$work/node2-dpkg.log" >&2; fail "dpkg -i on node2"; }
lab_exec 2 systemctl is-active --quiet waggle || fail "the package did not start its single-node broker on node2"
pass "node2 runs a single-node broker from a hand-installed package"

# The inventory; $1 is "file PATH" (a package file) or "repo VERSION" (the
# lab's apt repository).
write_inventory() {
    {
        echo "all:"
        echo "  children:"
        echo "    waggle:"
        echo "      vars:"
        echo "        ansible_user: root"
        echo "        ansible_python_interpreter: /usr/bin/python3"
        echo "        ansible_ssh_private_key_file: $work/id_ed25519"
        echo "        ansible_ssh_common_args: -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null"
        echo "        waggle_cluster_name: rollout"
        echo "        waggle_region: lab"
        echo "        waggle_partitions: $PARTITIONS"
        echo "        waggle_replication_factor: 3"
        if [ "$1" = file ]; then
            echo "        waggle_package_file: $2"
        else
            echo "        waggle_repo_url: http://$LAB_NET.1:$REPO_PORT/"
            echo "        waggle_repo_suite: ./"
            echo "        waggle_repo_component: ''"
            echo "        waggle_repo_trusted: true"
            echo "        waggle_package_version: $2"
        fi
        echo "        waggle_certs_command: $work/target/release/waggle"
        echo "        waggle_certs_dir: $work/certs"
        echo "        waggle_cluster_timeout: 180"
        echo "        waggle_config: { runtime: { shards: 1, pin_shards: false } }"
        if [ "$1" != file ]; then
            # From 0.2.0 on, a broker without authentication serves only
            # loopback unless told otherwise; the lab's clients are the
            # test's own, in network namespaces it made.
            echo "        waggle_authentication: none"
            echo "        waggle_allow_unauthenticated: true"
        fi
        echo "      hosts:"
        local i
        for ((i = 0; i < NODES; i++)); do
            echo "        node$i: { ansible_host: $(lab_ip "$i"), waggle_zone: zone-$i }"
        done
    } >"$work/inventory.yml"
}

check_cluster() {
    local table
    table=$(partition_table)
    [ "$(echo "$table" | awk -v r=3 'NF == 3 && $2 != "none" && $3 == r' | wc -l)" -eq "$PARTITIONS" ] ||
        fail "not every partition has a leader and 3 replicas: $(echo "$table" | tr '\n' ';')"
    echo "$table" | tr '\n' ';'
}

# --- 3. site.yml ----------------------------------------------------------------
phase "site.yml"
write_inventory file "$old_deb"
t0=$SECONDS
lab_playbook site -i "$work/inventory.yml" site.yml || { show_log site 80; fail "site.yml failed"; }
site_s=$((SECONDS - t0))
pass "site.yml in ${site_s}s"
for ((i = 0; i < NODES; i++)); do
    lab_exec "$i" systemctl is-active --quiet waggle || fail "waggle is not active on node$i"
    [ "$(lab_controller curl -s -o /dev/null -w '%{http_code}' "http://$(lab_ip "$i"):9600/ready")" = 200 ] ||
        fail "node$i is not ready"
    mode=$(lab_exec "$i" stat -c '%a %U' "/etc/waggle/certs/node-$i-key.pem")
    [ "$mode" = "600 waggle" ] || fail "node$i's private key is $mode, not 600 waggle"
    grep -q "^node_id = $i$" "$(lab_root "$i")/etc/waggle/waggle.toml" || fail "node$i's waggle.toml has not node_id $i"
done
pass "waggle active and ready on every node; private keys 0600 waggle; node ids 0..$((NODES - 1))"
pass "partitions (id leader replicas): $(check_cluster)"
lab_controller "$work/target/release/waggle" status --address "http://$(lab_ip 0):26500" >"$work/status.json" ||
    fail "waggle status"
[ "$(jq '.clusterSize' "$work/status.json")" = "$NODES" ] || fail "waggle status: cluster size $(jq .clusterSize "$work/status.json")"
pass "waggle status: cluster size $NODES, $(jq '.partitionsCount' "$work/status.json") partitions"
backup=$(find "$(lab_root 2)/var/lib" -maxdepth 1 -name 'waggle-single-node-*' | head -n 1)
[ -n "$backup" ] || fail "node2's single-node data was not moved aside"
[ -d "$backup/partitions" ] || fail "$backup holds no partitions"
pass "node2's single-node data moved to ${backup#"$(lab_root 2)"}"

# --- 4. rolling upgrade under load -------------------------------------------------
phase "rolling-upgrade.yml to $new_version under load"
declare -A start_before
for ((i = 0; i < NODES; i++)); do
    start_before[$i]=$(lab_exec "$i" systemctl show -p ExecMainStartTimestampMonotonic --value waggle)
done
gateways=$(for ((i = 0; i < NODES; i++)); do printf '%s:26500,' "$(lab_ip "$i")"; done)
load_start "${gateways%,}"
acked_before=$(acked_count)

# The new version comes from an apt repository served from the controller's
# namespace, as an operator's would come from theirs.
write_inventory repo "$new_version"
# Which nodes are down (their /health does not answer 200) every tenth of
# a second, until the upgrade is over: never more than one may be. A broker
# restarts in about a second, so a sample may miss it; that each one was
# restarted is checked from systemd below. Every fifth sample also has the
# version each node's broker reports (waggle_build_info), "-" for none.
monitor() {
    local k i down versions v
    for ((k = 0; k < PLAYBOOK_TIMEOUT_S * 2; k++)); do
        [ -e "$work/monitor.stop" ] && break
        down=""
        for ((i = 0; i < NODES; i++)); do
            [ "$(lab_controller curl -s -o /dev/null -w '%{http_code}' --max-time 1 \
                "http://$(lab_ip "$i"):9600/health")" = 200 ] || down+="node$i,"
        done
        versions=""
        if ((k % 5 == 0)); then
            for ((i = 0; i < NODES; i++)); do
                v=$(lab_controller curl -s --max-time 1 "http://$(lab_ip "$i"):9600/metrics" |
                    sed -n 's/^waggle_build_info{version="\([^"]*\)"} 1$/\1/p') || true
                versions+=" ${v:--}"
            done
        fi
        printf '%(%H:%M:%S)T %s%s\n' -1 "${down:-none}" "$versions"
        sleep 0.1
    done >"$work/monitor.log"
}
monitor &
monitor_pid=$!
t0=$SECONDS
lab_playbook upgrade -i "$work/inventory.yml" rolling-upgrade.yml ||
    { show_log upgrade 80; fail "rolling-upgrade.yml failed"; }
upgrade_s=$((SECONDS - t0))
touch "$work/monitor.stop"
wait "$monitor_pid" || true
monitor_pid=""
acked_during=$(($(acked_count) - acked_before))
pass "rolling-upgrade.yml in ${upgrade_s}s; $acked_during instances acknowledged meanwhile"
grep -E "runs waggle" "$work/upgrade.log" | sed 's/^ *"msg": //; s/^/       /' || true
load_finish
for ((i = 0; i < NODES; i++)); do
    # shellcheck disable=SC2016 # dpkg-query's format, not the shell's
    v=$(lab_exec "$i" dpkg-query -W -f '${Version}' waggle)
    [ "$v" = "$new_version" ] || fail "node$i has waggle $v, not $new_version"
    after=$(lab_exec "$i" systemctl show -p ExecMainStartTimestampMonotonic --value waggle)
    [ "$after" != "${start_before[$i]}" ] || fail "waggle on node$i was not restarted by the upgrade"
done
pass "every node runs $new_version, each broker restarted"
samples=$(grep -c . "$work/monitor.log")
two_down=$(awk '$2 ~ /,.*,/' "$work/monitor.log" | head -n 3)
[ -z "$two_down" ] || fail "two nodes down at once during the upgrade: $two_down"
seen_down=$(awk '$2 != "none" { sub(/,$/, "", $2); print $2 }' "$work/monitor.log" | sort -u | tr '\n' ' ')
# Samples where the brokers answering were of both releases: the cluster ran
# mixed, and served (the load's acknowledgements above went on throughout).
old_upstream=${old_version%-*}
new_upstream=${new_version%-*}
mixed=$(awk -v o="$old_upstream" -v n="$new_upstream" '
    NF > 2 { h = 0; m = 0; for (f = 3; f <= NF; f++) { h += ($f == o); m += ($f == n) } if (h && m) c++ }
    END { print c + 0 }' "$work/monitor.log")
[ "$mixed" -gt 0 ] || { tail -n 40 "$work/monitor.log" >&2; fail "no sample saw brokers of $old_upstream and $new_upstream at once"; }
pass "$mixed samples of the versions saw brokers of $old_upstream and $new_upstream up at once, under load"
pass "never two nodes down at once ($samples samples of /health; seen down, one at a time: ${seen_down:-none, each restart was shorter than a sample})"
# The upgrade restarted the nodes in node id order, one at a time.
order=$(grep -oE "\[waggle : Restart waggle on node[0-9]+\]" "$work/upgrade.log" | grep -oE "node[0-9]+" | tr '\n' ' ') || true
[ "$order" = "node0 node1 node2 " ] || { show_log upgrade 80; fail "restart order: '$order'"; }
pass "restarts one at a time, in order: $order"
pass "partitions after the upgrade: $(check_cluster)"

# --- 5. idempotence after the upgrade -------------------------------------------
phase "site.yml again"
t0=$SECONDS
lab_playbook site-again -i "$work/inventory.yml" site.yml || { show_log site-again 80; fail "the second run of site.yml failed"; }
changed=$(recap_changed site-again)
[ "$changed" -eq 0 ] || { show_log site-again 80; fail "the second run of site.yml changed $changed things"; }
site_again_s=$((SECONDS - t0))
pass "second run of site.yml: changed=0 (${site_again_s}s)"

if lab_playbook reshape -i "$work/inventory.yml" -e waggle_partitions=$((PARTITIONS + 1)) site.yml; then
    fail "site.yml changed the partition count of a running cluster"
fi
grep -q "A running cluster keeps its node ids" "$work/reshape.log" || { show_log reshape 60; fail "site.yml refused another partition count without saying why"; }
changed=$(recap_changed reshape)
[ "$changed" -eq 0 ] || { show_log reshape 80; fail "site.yml changed $changed things before refusing another partition count"; }
pass "site.yml refuses to change the partition count of the running cluster, changing nothing"

# --- 6. client-port TLS -------------------------------------------------------
# An organisation's own CA issues each host a certificate for its address;
# clients must present a certificate of the cluster CA (mutual TLS). The
# role turns it on with a rolling restart, its health checks following each
# node's scheme meanwhile.
phase "client-port TLS"
pki=$work/pki
mkdir -p "$pki"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 -subj "/CN=rollout client-port CA" \
    -keyout "$pki/ca-key.pem" -out "$pki/ca.pem" 2>"$work/openssl.log" || { cat "$work/openssl.log" >&2; fail "openssl: CA"; }
for ((i = 0; i < NODES; i++)); do
    openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "/CN=node$i" \
        -keyout "$pki/node$i-key.pem" -out "$pki/node$i.csr" 2>>"$work/openssl.log" &&
        openssl x509 -req -in "$pki/node$i.csr" -CA "$pki/ca.pem" -CAkey "$pki/ca-key.pem" -CAcreateserial -days 2 \
            -extfile <(printf 'subjectAltName=IP:%s\nextendedKeyUsage=serverAuth\n' "$(lab_ip "$i")") \
            -out "$pki/node$i.pem" 2>>"$work/openssl.log" || { cat "$work/openssl.log" >&2; fail "openssl: node$i"; }
done
"$work/target/release/waggle" certs --dir "$work/certs" --cluster-name rollout --client ops >/dev/null ||
    fail "waggle certs --client ops"
t0=$SECONDS
lab_playbook client-tls -i "$work/inventory.yml" \
    -e "waggle_client_tls_cert_file=$pki/{{ inventory_hostname }}.pem" \
    -e "waggle_client_tls_key_file=$pki/{{ inventory_hostname }}-key.pem" \
    -e "waggle_client_tls_ca_file=$pki/ca.pem" -e "waggle_client_tls_client_ca_file=$work/certs/ca.pem" site.yml ||
    { show_log client-tls 80; fail "site.yml with client-port TLS failed"; }
client_tls_s=$((SECONDS - t0))
order=$(grep -oE "\[waggle : Restart waggle on node[0-9]+\]" "$work/client-tls.log" | grep -oE "node[0-9]+" | tr '\n' ' ') || true
[ "$order" = "node0 node1 node2 " ] || { show_log client-tls 80; fail "restart order: '$order'"; }
pass "site.yml turned on client-port TLS in ${client_tls_s}s, restarting $order"
client=(--cert "$work/certs/client-ops.pem" --key "$work/certs/client-ops-key.pem")
for ((i = 0; i < NODES; i++)); do
    url="https://$(lab_ip "$i"):9600/ready"
    code=$(lab_controller curl -s -o /dev/null -w '%{http_code}' --max-time 5 --cacert "$pki/ca.pem" "${client[@]}" "$url") || true
    [ "$code" = 200 ] || fail "node$i: $url with the CA and a client certificate answered $code"
    code=$(lab_controller curl -s -o /dev/null -w '%{http_code}' --max-time 5 --cacert "$pki/ca.pem" "$url") || true
    [ "$code" = 000 ] || fail "node$i: $url without a client certificate answered $code"
    code=$(lab_controller curl -s -o /dev/null -w '%{http_code}' --max-time 5 "http://$(lab_ip "$i"):9600/ready") || true
    [ "$code" != 200 ] || fail "node$i still answers plain HTTP"
    mode=$(lab_exec "$i" stat -c '%a %U' /etc/waggle/certs/client-port-key.pem)
    [ "$mode" = "600 waggle" ] || fail "node$i's client-port key is $mode, not 600 waggle"
done
pass "every management port: HTTPS with a client certificate 200, without one refused, plain HTTP refused; keys 0600 waggle"
lab_controller "$work/target/release/waggle" status --address "https://$(lab_ip 1):26500" --ca-file "$pki/ca.pem" \
    --cert-file "$work/certs/client-ops.pem" --key-file "$work/certs/client-ops-key.pem" >"$work/status-tls.json" ||
    fail "waggle status over TLS"
[ "$(jq '.clusterSize' "$work/status-tls.json")" = "$NODES" ] || fail "waggle status over TLS: $(cat "$work/status-tls.json")"
pass "waggle status over gRPC with TLS and a client certificate: cluster size $NODES"

total_s=$((SECONDS - started_s))
printf '\nrollout test: site.yml %ss, rolling upgrade %ss, second site.yml %ss, client-port TLS %ss, total %ss\n' \
    "$site_s" "$upgrade_s" "$site_again_s" "$client_tls_s" "$total_s"
echo "rollout: 1 passed, 0 failed"
