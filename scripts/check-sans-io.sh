#!/usr/bin/env bash
# The deterministic core crates (engine, feel, dmn) depend on no async
# runtime, network or clock-reading crate: fails naming the crate and the
# path that pulls it in.
set -euo pipefail
cd "$(dirname "$0")/.."
forbidden='^(tokio|hyper|reqwest|async-std|smol|mio|socket2|h2|tonic|glommio|quinn|iana-time-zone|getrandom)$'
status=0
for crate in ${SANS_IO_CRATES:-engine feel dmn}; do
    grep -q "\"$crate\"" Cargo.toml || continue
    deps=$(cargo tree -p "$crate" -e normal --prefix none --format '{p}' | awk '{print $1}' | sort -u)
    [ -n "$deps" ] || { echo "error: cargo tree -p $crate listed nothing" >&2; exit 1; }
    found=$(grep -E "$forbidden" <<<"$deps" || true)
    if [ -n "$found" ]; then
        for dep in $found; do
            echo "error: $crate depends on $dep, which has no place in a sans-IO core:" >&2
            cargo tree -p "$crate" -e normal -i "$dep" >&2 || true
        done
        status=1
    else
        echo "ok: $crate depends on no async runtime, network or host-clock crate"
    fi
done
exit $status
