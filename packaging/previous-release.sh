#!/usr/bin/env bash
# shellcheck source-path=SCRIPTDIR
# Builds the release before this tree (named in packaging/previous-release)
# from git, for the upgrade tests: its tree (git archive of the tag, or of the
# commit the file names when the clone has no tags), its release binaries, and
# its .deb made by its own packaging/build.sh. Prints the .deb's path.
#
# Usage: packaging/previous-release.sh
# Environment: CARGO_TARGET_DIR (default <repo>/target): the old tree is built
#   there too, so that the dependencies both trees share are compiled once.
#   The binaries it leaves in $CARGO_TARGET_DIR/release are the old ones, so
#   they are removed afterwards: the next cargo build puts this tree's back.
#   PREVIOUS_RELEASE_CACHE (default <repo>/.cache/previous-release): one
#   folder per release and commit, reused when its .deb is there.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(dirname "$here")
# shellcheck source=lib/host.sh
source "$here/lib/host.sh"

file=$here/previous-release
field() { sed -n "s/^$1=//p" "$file"; }
version=$(field version)
tag=$(field tag)
commit=$(field commit)
{ [ -n "$version" ] && [ -n "$tag" ] && [ -n "$commit" ]; } || die "$file needs version=, tag= and commit= lines"

# Crates of the two trees share the target folder; their artifacts differ by
# version, so the versions must.
[ "$(workspace_version "$repo")" != "$version" ] ||
    die "this tree's version is $version, the previous release's: bump the workspace version (and debian/changelog)"

# The tag, when the clone has it, must name the recorded commit.
if tagged=$(git -C "$repo" rev-parse -q --verify "refs/tags/$tag^{commit}"); then
    [ "$tagged" = "$commit" ] || die "tag $tag names $tagged, but $file says $commit"
elif ! git -C "$repo" cat-file -e "$commit^{commit}" 2>/dev/null; then
    # A shallow clone: fetch the one commit from where the clone came from.
    git -C "$repo" fetch -q --depth=1 origin "$commit" 2>/dev/null ||
        die "commit $commit of release $version (tag $tag) is not in this clone, and could not be fetched from origin: clone with history"
fi

cache=${PREVIOUS_RELEASE_CACHE:-$repo/.cache/previous-release}
dir=$cache/$version-${commit:0:12}
deb=$dir/packages/waggle_${version}-1_amd64.deb
if [ -f "$deb" ]; then
    echo "$deb"
    exit 0
fi

target=${CARGO_TARGET_DIR:-$repo/target}
case "$target" in /*) ;; *) target=$repo/$target ;; esac

step "release $version: tree of $tag ($commit)" >&2
rm -rf "$dir"
mkdir -p "$dir/src" "$dir/target/release"
# --touch: the files get the time of now, not of the commit, so that cargo
# rebuilds every crate of the old tree (an artifact newer than the commit
# would otherwise pass for fresh).
git -C "$repo" archive "$commit" | tar -x --touch -C "$dir/src"

step "release $version: cargo build --release -p node -p perf" >&2
(cd "$dir/src" && CARGO_TARGET_DIR=$target cargo build --release --locked -p node -p perf) >&2
for b in waggle waggle-perf; do
    cp "$target/release/$b" "$dir/target/release/$b"
    rm -f "$target/release/$b"
done
"$dir/target/release/waggle" --version | grep -qF " $version" ||
    die "the binary built from $commit says '$("$dir/target/release/waggle" --version)', not $version"

step "release $version: its .deb, by its own packaging/build.sh" >&2
CARGO_TARGET_DIR=$dir/target "$dir/src/packaging/build.sh" --no-cargo --deb-only --fast \
    --out "$dir/packages" >"$dir/build.log" 2>&1 || { cat "$dir/build.log" >&2; die "packaging release $version"; }
[ -f "$deb" ] || die "$dir/src/packaging/build.sh did not write $deb"
echo "$deb"
