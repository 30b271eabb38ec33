# shellcheck shell=bash
# What the lab tests (rollout.sh, regions.sh) share: reporting, running
# playbooks, reading the partitions off the nodes. Source it after lib.sh;
# do not run it. The caller sets work (its work directory), venv (the
# Ansible virtualenv), ansible_dir, started_s and PLAYBOOK_TIMEOUT_S.

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
