#!/usr/bin/env bash
# Runs the whole test suite on a fresh Debian machine: installs what it needs
# (Debian packages, the Python venv, crates via cargo), then checks formatting,
# lints and every test. This is the README's test command; .ci/run calls it.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib/setup.sh
setup_build_deps
setup_python_venv
setup_oidc_provider
setup_zbctl
setup_browser
# waggle-perf's smoke test compares with a 3-member etcd cluster; the
# compression test sends raw HTTP/2 requests with curl; node/tests/disk_full.rs
# fills a loop-mounted ext4 (mkfs.ext4); the store crate's and the REST
# search tests start their own PostgreSQL (initdb, pg_ctl).
apt_install etcd-server curl e2fsprogs postgresql
# The backup tests keep a backup in an S3 bucket of s3s-fs.
setup_s3_server

step "cargo fmt --check"
cargo fmt --all -- --check

step "cargo clippy"
cargo clippy --workspace --all-targets -- -D warnings

step "sans-IO cores: no async runtime or network crate under engine, feel, dmn"
scripts/check-sans-io.sh

step "cargo test"
cargo test --workspace

step "DMN TCK (compliance levels 2 and 3): pass counts per level"
cargo test -q -p dmn --test tck -- --nocapture 2>&1 | grep -E "passed|FAILED|panicked"

step "alert rules: promtool check rules, promtool test rules"
PROMTOOL=$(setup_promtool)
export PROMTOOL
"$PROMTOOL" check rules packaging/monitoring/waggle-alerts.rules.yml
(cd packaging/monitoring && "$PROMTOOL" test rules waggle-alerts.test.yml)

step "outside clients against waggle dev: pyzeebe (gRPC), camunda-orchestration-sdk (REST), schemathesis (Camunda's OpenAPI spec), promtool (metrics), headless Chromium (Operate, Tasklist)"
cargo build -p node --bin waggle
WAGGLE_BIN="${CARGO_TARGET_DIR:-$PWD/target}/debug/waggle" .venv/bin/python -m pytest -q tests/pyzeebe tests/rest tests/ops tests/nemesis tests/ui

step "nemesis: 3 and 5 nodes in network namespaces, one minute of faults each (tests/nemesis/README.md)"
scripts/nemesis.sh --minutes 1 --nodes 3
scripts/nemesis.sh --minutes 1 --nodes 5

step "packages: .deb and .rpm, lint, install test in a booted Debian (packaging/README.md)"
packaging/test-install.sh

step "ansible: ansible-lint, the rollout test and the dual-region test (ansible/README.md)"
ansible/ci.sh
