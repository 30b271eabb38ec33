#!/usr/bin/env bash
# Long fuzzing runs of the proptest targets that the test suite runs briefly
# (256 cases each): the BPMN parser and engine, records and snapshots, FEEL,
# log frames and the gRPC gateway. Usage: perf/fuzz.sh [cases] (default
# 100000). Exits non-zero on the first failure, which proptest shrinks and
# prints.
set -euo pipefail
cd "$(dirname "$0")/.."
cases="${1:-100000}"
export PROPTEST_CASES="$cases"
started=$(date +%s)
cargo test --release -p feel --test fuzz
cargo test --release -p engine --test fuzz
cargo test --release -p storage --test fuzz_frames
# The gateway target sends one request per case to a broker: a tenth.
PROPTEST_CASES=$(( cases / 10 > 0 ? cases / 10 : 1 )) cargo test --release -p node --test fuzz_grpc
echo "fuzzing with $cases cases per target passed in $(( $(date +%s) - started )) s"
