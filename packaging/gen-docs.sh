#!/usr/bin/env bash
# Writes the man pages and shell completions into a staged file tree:
#   usr/share/man/man1/{waggle,waggle-perf}.1.gz   help2man from --help/--version,
#        with a COMMANDS section holding the full --help of every subcommand
#   usr/share/bash-completion/completions/{waggle,waggle-perf}
# Usage: gen-docs.sh STAGE_ROOT (with STAGE_ROOT/usr/bin/waggle{,-perf} in place)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
stage=$1
work=$(mktemp -d "${TMPDIR:-/tmp}/waggle-docs.XXXXXX")
trap 'rm -rf "$work"' EXIT

# The subcommands a clap program lists under "Commands:".
subcommands() {
    "$1" --help | awk '$0 == "Commands:" { inside = 1; next } /^[A-Z][A-Za-z ]*:$/ { inside = 0 }
        inside && $1 ~ /^[a-z]/ && $1 != "help" { print $1 }'
}

install -d "$stage/usr/share/man/man1"
for prog in waggle waggle-perf; do
    bin=$stage/usr/bin/$prog
    "$bin" --version >/dev/null || { echo "gen-docs: $bin --version fails" >&2; exit 1; }
    include=$work/$prog.h2m
    {
        printf '[COMMANDS]\n'
        for sub in $(subcommands "$bin"); do
            printf '.SS "%s %s"\n.nf\n' "$prog" "$sub"
            # Lines starting with a dot or quote would be read as roff requests.
            "$bin" "$sub" --help | sed -e 's/\\/\\e/g' -e "s/^\([.']\)/\\\\\&\1/"
            printf '.fi\n'
        done
        printf '[FILES]\n'
        if [ "$prog" = waggle ]; then
            printf '.TP\n/etc/waggle/waggle.toml\nconfiguration of waggle.service; every key is listed with its default\n'
            printf '.TP\n/var/lib/waggle\nRaft logs and snapshots of the partitions\n'
        fi
        printf '[SEE ALSO]\n'
        printf 'systemctl(1), journalctl(1); /usr/share/doc/waggle/README.md\n'
    } >"$include"
    help2man --no-info --no-discard-stderr --section=1 --include="$include" \
        --name="$("$bin" --help | head -n 1)" "$bin" >"$work/$prog.1"
    gzip -9n <"$work/$prog.1" >"$stage/usr/share/man/man1/$prog.1.gz"
    chmod 0644 "$stage/usr/share/man/man1/$prog.1.gz"
done

install -d "$stage/usr/share/bash-completion/completions"
install -m 0644 "$here/completions/waggle.bash" "$stage/usr/share/bash-completion/completions/waggle"
ln -sf waggle "$stage/usr/share/bash-completion/completions/waggle-perf"
