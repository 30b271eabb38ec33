#!/usr/bin/env bash
# shellcheck source-path=SCRIPTDIR
# The Ansible checks, on a fresh Debian machine as root: installs what they
# need (Debian packages; ansible-core, ansible-lint and pyzeebe in
# ansible/.venv from requirements.txt), runs ansible-lint with the production
# profile, then the rollout test (tests/rollout.sh) and the dual-region
# test (tests/regions.sh: failover, failback, scale-out, scale-partitions)
# with the release binaries,
# building them first when they are missing, and the previous release's
# package (packaging/previous-release.sh).
#
# Usage: ansible/ci.sh [--lint-only]
# Environment: CARGO_TARGET_DIR (default <repo>/target): the release
#   binaries are taken from (or built into) its release/ folder.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(dirname "$here")
# shellcheck source=../packaging/lib/host.sh
source "$repo/packaging/lib/host.sh"

lint_only=0
while [ $# -gt 0 ]; do
    case "$1" in
    --lint-only) lint_only=1; shift ;;
    *) die "unknown argument $1 (see the header of $0)" ;;
    esac
done
[ "$(id -u)" -eq 0 ] || die "run as root: the rollout test mounts, boots containers and makes network namespaces"

pkg_apt_install python3-venv openssh-client iproute2 curl jq openssl systemd-container debootstrap dpkg-dev help2man binutils apt-utils

venv=$here/.venv
if [ ! -x "$venv/bin/python" ]; then
    step "python3 -m venv ansible/.venv"
    python3 -m venv "$venv"
fi
# The venv keeps a copy of the requirements it was installed from.
if ! cmp -s "$here/requirements.txt" "$venv/requirements.installed"; then
    step "pip install -r ansible/requirements.txt"
    "$venv/bin/pip" install -q -r "$here/requirements.txt"
    cp "$here/requirements.txt" "$venv/requirements.installed"
fi

step "ansible-lint (profile production)"
(cd "$here" && PATH="$venv/bin:$PATH" ANSIBLE_HOME="$here/.ansible" "$venv/bin/ansible-lint")
[ $lint_only -eq 0 ] || exit 0

target=${CARGO_TARGET_DIR:-$repo/target}
case "$target" in /*) ;; *) target=$repo/$target ;; esac
# The previous release, for the upgrade (its binaries and .deb, built from its
# git tag and cached in .cache/previous-release). It builds in the same target
# folder, so before this tree's binaries.
step "the previous release: packaging/previous-release.sh"
CARGO_TARGET_DIR=$target "$repo/packaging/previous-release.sh"
if [ ! -x "$target/release/waggle" ] || [ ! -x "$target/release/waggle-perf" ]; then
    step "cargo build --release -p node -p perf (target $target)"
    (cd "$repo" && CARGO_TARGET_DIR=$target cargo build --release --locked -p node -p perf)
fi

step "rollout test"
"$here/tests/rollout.sh" --release-dir "$target/release"

step "dual-region test"
"$here/tests/regions.sh" --release-dir "$target/release"
