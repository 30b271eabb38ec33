#!/usr/bin/env bash
# The nemesis suite against the real binaries (tests/nemesis/README.md):
#   scripts/nemesis.sh [--minutes M] [--nodes 3|5] [--seed S] [--release] [--keep DIR]
# Needs root: it creates network namespaces, nftables rules, loop devices
# and cgroups, and removes them when it ends. The last line printed is one
# JSON object; the exit code is 1 when an acknowledged operation was lost or
# done twice.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib/setup.sh
profile=debug
args=()
for a in "$@"; do
    if [ "$a" = "--release" ]; then profile=release; else args+=("$a"); fi
done
setup_build_deps
setup_python_venv
apt_install nftables curl e2fsprogs iproute2 util-linux
if [ "$profile" = release ]; then
    cargo build -q --release -p node --bin waggle
else
    cargo build -q -p node --bin waggle
fi
exec .venv/bin/python tests/nemesis/nemesis.py --binary "${CARGO_TARGET_DIR:-$PWD/target}/$profile/waggle" "${args[@]}"
