# Shared set-up steps for the scripts in scripts/. Source it; do not run it.
# Every step is idempotent and cheap when there is nothing to do.

step() { printf '\n==> %s\n' "$*"; }

# Runs apt-get update once per machine boot, then installs the named packages
# that are missing.
apt_install() {
    local missing=()
    for p in "$@"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
    done
    [ ${#missing[@]} -eq 0 ] && return 0
    local sudo=""
    [ "$(id -u)" -eq 0 ] || sudo="sudo"
    step "apt-get install ${missing[*]}"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >/dev/null
}

# promtool, unpacked from Debian's prometheus package into .cache (installing
# the package would start a Prometheus server); prints its path.
setup_promtool() {
    local dir=.cache/promtool
    if [ ! -x "$dir/usr/bin/promtool" ]; then
        step "promtool (unpacked from Debian's prometheus package)" >&2
        mkdir -p "$dir"
        (
            cd "$dir"
            local get=(apt-get -o APT::Sandbox::User=root download prometheus)
            "${get[@]}" >/dev/null 2>&1 || { apt-get update -qq && "${get[@]}" >/dev/null; }
            dpkg-deb -x prometheus_*.deb . && rm -f prometheus_*.deb
        )
    fi
    echo "$PWD/$dir/usr/bin/promtool"
}

# s3s-fs, an S3-compatible server keeping objects as files, built from
# crates.io into .cache/s3s-fs: node/tests/backup.rs keeps backups in one of
# its buckets.
setup_s3_server() {
    local root=.cache/s3s-fs
    if [ ! -x "$root/bin/s3s-fs" ]; then
        step "cargo install s3s-fs (an S3-compatible server, for the backup tests)"
        cargo install -q --locked s3s-fs --version 0.14.1 --features binary --root "$root"
    fi
}

# What building and testing the Rust workspace needs.
setup_build_deps() {
    command -v cargo >/dev/null || { echo "cargo is required (https://rustup.rs)" >&2; exit 1; }
    apt_install protobuf-compiler pkg-config
    rustup component list --installed 2>/dev/null | grep -q rustfmt || rustup component add rustfmt clippy
    # glommio registers its I/O memory with the kernel; tests that start
    # executors need more locked memory than the default.
    ulimit -l unlimited 2>/dev/null || ulimit -l "$(ulimit -H -l)" 2>/dev/null || true
    # Operate and Tasklist are bundled by ui/build.rs from pinned npm packages.
    setup_npm_dir ui/web "bpmn-js, form-js and esbuild for Operate and Tasklist"
}

# The Python venv in the repository (.venv) with the outside clients the tests
# drive the broker with.
# The OIDC tests run node's oidc-provider (tests/oidc), installed from its
# lockfile.
setup_oidc_provider() {
    setup_npm_dir tests/oidc oidc-provider
}

# `npm ci` in directory $1 (naming what it installs, $2) unless its
# node_modules already hold what its lockfile says.
setup_npm_dir() {
    command -v npm >/dev/null || apt_install nodejs npm
    if ! cmp -s "$1/package-lock.json" "$1/node_modules/.installed-lock.json"; then
        step "npm ci ($1: $2)"
        (cd "$1" && npm ci --no-audit --no-fund --silent)
        cp "$1/package-lock.json" "$1/node_modules/.installed-lock.json"
    fi
}

# zbctl, Camunda's Go command line client, from npm (tests/zbctl), for
# tests/pyzeebe/test_zbctl.py.
setup_zbctl() {
    setup_npm_dir tests/zbctl zbctl
}

setup_python_venv() {
    apt_install python3-venv
    if [ ! -x .venv/bin/python ]; then
        step "python3 -m venv .venv"
        python3 -m venv .venv
    fi
    # The venv keeps a copy of the requirements it was installed from.
    if ! cmp -s tests/requirements.txt .venv/requirements.installed; then
        step "pip install -r tests/requirements.txt"
        .venv/bin/pip install -q -r tests/requirements.txt
        cp tests/requirements.txt .venv/requirements.installed
    fi
}

# Debian's Chromium and its WebDriver, for the browser tests of Operate and
# Tasklist (tests/ui, driven by selenium from the venv).
setup_browser() {
    apt_install chromium chromium-driver fonts-dejavu-core
}
