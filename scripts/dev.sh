#!/usr/bin/env bash
# Runs a single-node development broker with embedded defaults (data in ./data).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib/setup.sh
setup_build_deps
step "cargo build --release"
cargo build --release -p node -p perf
exec target/release/waggle dev "$@"
