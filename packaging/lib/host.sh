# shellcheck shell=bash
# Host-side helpers for the packaging scripts: step logging and installing the
# Debian packages the scripts need. Source it; do not run it.

step() { printf '\n==> %s\n' "$*"; }
die() { printf 'error: %s\n' "$*" >&2; exit 1; }

# Installs the named Debian packages that are missing. apt-get update runs at
# most once per call, and only when something is missing.
pkg_apt_install() {
    local missing=() p
    for p in "$@"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
    done
    [ ${#missing[@]} -eq 0 ] && return 0
    local sudo=""
    [ "$(id -u)" -eq 0 ] || sudo="sudo"
    step "apt-get install ${missing[*]}"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

# The workspace version from the root Cargo.toml ([workspace.package] version).
workspace_version() {
    sed -n '/^\[workspace.package\]/,/^\[/{s/^version *= *"\([^"]*\)".*/\1/p}' "$1/Cargo.toml" | head -n 1
}

# Prints a Debian changelog for package version $2 built from the tree whose
# changelog is $1: a generated entry for $2 on top of the entries of $1 that
# sort below $2 (all of them for a newer version, fewer for an older one), so
# the result stays ordered as lintian and rpm want. The entry is dated one
# minute after the newest entry of $1, which keeps builds reproducible.
changelog_for_version() {
    local file=$1 version=$2 top_date date line entry_version="" keep=0 after_trailer=0
    top_date=$(sed -n 's/^ -- .*>  //p' "$file" | head -n 1)
    date=$(LC_ALL=C date -u -R -d "$top_date + 1 minute")
    printf 'waggle (%s) unstable; urgency=medium\n\n' "$version"
    printf '  * Package of the current tree under version %s (packaging/build.sh\n    --version).\n\n' "$version"
    printf ' -- waggle maintainers <maintainers@waggle.example.org>  %s\n' "$date"
    while IFS= read -r line; do
        if [[ "$line" =~ ^waggle\ \(([^\)]*)\) ]]; then
            entry_version=${BASH_REMATCH[1]}
            keep=0
            if dpkg --compare-versions "$entry_version" lt "$version"; then
                keep=1
                printf '\n'
            fi
        fi
        # The blank line after an entry's trailer: printed before the next kept entry instead.
        if [ -z "$line" ] && [ $after_trailer -eq 1 ]; then continue; fi
        after_trailer=0
        [[ "$line" == " -- "* ]] && after_trailer=1
        [ $keep -eq 0 ] || printf '%s\n' "$line"
    done <"$file"
}
