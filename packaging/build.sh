#!/usr/bin/env bash
# shellcheck source-path=SCRIPTDIR
# Builds both packages into one folder:
#   <out>/waggle_<version>_amd64.deb     plain Debian tree, built with dpkg-deb
#   <out>/waggle-<version>.x86_64.rpm    rpmbuild from packaging/rpm/waggle.spec.in
# <version> is the Debian version "upstream-revision" (e.g. 0.1.0-1); the rpm
# carries the same string as Version-Release. Both hold the same binaries.
#
# Usage: packaging/build.sh [--version VERSION] [--no-cargo] [--deb-only] [--fast] [--out DIR]
#   --version   package version (default: the top entry of packaging/debian/changelog,
#               whose upstream part must equal the workspace version). Any other
#               version, higher or lower (e.g. 0.1.1-1, 0.1.0~prev-1), packages the
#               same binaries with a generated changelog entry for it on top of
#               the entries that sort below it, in the deb and the rpm alike:
#               upgrade tests build "previous" and "next" packages this way.
#   --no-cargo  reuse the binaries already in $CARGO_TARGET_DIR/release
#   --deb-only  skip the rpm
#   --fast      compress with gzip -1 instead of xz (deb) and gzip -9 (rpm): a few
#               seconds instead of half a minute, for packages that only tests
#               install
#   --out       output folder (default: $CARGO_TARGET_DIR/packages)
# Environment: CARGO_TARGET_DIR (default: <repo>/target), honoured by cargo too.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(dirname "$here")
# shellcheck source=lib/host.sh
source "$here/lib/host.sh"

version=""
run_cargo=1
build_rpm=1
fast=0
out=""
while [ $# -gt 0 ]; do
    case "$1" in
    --version) version=$2; shift 2 ;;
    --no-cargo) run_cargo=0; shift ;;
    --deb-only) build_rpm=0; shift ;;
    --fast) fast=1; shift ;;
    --out) out=$2; shift 2 ;;
    *) die "unknown argument $1 (see the header of $0)" ;;
    esac
done

target=${CARGO_TARGET_DIR:-$repo/target}
case "$target" in /*) ;; *) target=$repo/$target ;; esac
export CARGO_TARGET_DIR=$target
out=${out:-$target/packages}
mkdir -p "$out"
out=$(cd "$out" && pwd)

changelog_version=$(sed -n '1s/^waggle (\([^)]*\)).*/\1/p' "$here/debian/changelog")
cargo_version=$(workspace_version "$repo")
[ "${changelog_version%-*}" = "$cargo_version" ] ||
    die "packaging/debian/changelog starts at $changelog_version but the workspace version is $cargo_version: add a changelog entry"
version=${version:-$changelog_version}
case "$version" in *-*) ;; *) die "--version $version needs a revision (e.g. $version-1)" ;; esac
upstream=${version%-*}
revision=${version##*-}
# Debian allows more in a version than rpm does: keep to what both accept.
[[ "$upstream" =~ ^[0-9][A-Za-z0-9.+~]*$ && "$revision" =~ ^[A-Za-z0-9.+~]+$ ]] ||
    die "--version $version: want UPSTREAM-REVISION from [A-Za-z0-9.+~], starting with a digit (e.g. 0.1.1-1)"

pkg_apt_install dpkg-dev help2man binutils
[ $build_rpm -eq 0 ] || pkg_apt_install rpm

if [ $run_cargo -eq 1 ]; then
    step "cargo build --release -p node -p perf (target $target)"
    (cd "$repo" && cargo build --release --locked -p node -p perf)
fi
for b in waggle waggle-perf; do
    [ -x "$target/release/$b" ] || die "$target/release/$b is missing: build it or drop --no-cargo"
done

work=$(mktemp -d "${TMPDIR:-/tmp}/waggle-pkg.XXXXXX")
trap 'rm -rf "$work"' EXIT

# --- the changelog of this version -----------------------------------------------
changelog=$work/changelog
if [ "$version" = "$changelog_version" ]; then
    cp "$here/debian/changelog" "$changelog"
else
    changelog_for_version "$here/debian/changelog" "$version" >"$changelog"
fi
release_date=$(sed -n 's/^ -- .*>  //p' "$changelog" | head -n 1)

# --- the file tree both packages share -------------------------------------
step "staging files for $version"
common=$work/common
install -d "$common/usr/bin" "$common/etc/waggle" "$common/usr/share/man/man1" \
    "$common/usr/lib/sysusers.d" "$common/usr/lib/tmpfiles.d" "$common/usr/share/waggle/monitoring"
for b in waggle waggle-perf; do
    install -m 0755 "$target/release/$b" "$common/usr/bin/$b"
    strip --strip-unneeded --remove-section=.comment --remove-section=.note "$common/usr/bin/$b"
done
install -m 0644 "$repo/systemd/waggle.sysusers" "$common/usr/lib/sysusers.d/waggle.conf"
install -m 0644 "$repo/systemd/waggle.tmpfiles" "$common/usr/lib/tmpfiles.d/waggle.conf"
# Prometheus alert rules (with their promtool tests) and a Grafana dashboard.
install -m 0644 "$here"/monitoring/waggle-alerts.rules.yml "$here"/monitoring/waggle-alerts.test.yml \
    "$here"/monitoring/waggle-dashboard.json "$common/usr/share/waggle/monitoring/"
python3 "$here/gen-conffile.py" "$common/usr/bin/waggle" >"$common/etc/waggle/waggle.toml"
chmod 0644 "$common/etc/waggle/waggle.toml"
"$here/gen-docs.sh" "$common"

# --- deb ----------------------------------------------------------------------
step "dpkg-deb: waggle_${version}_amd64.deb"
deb=$work/deb
cp -a "$common" "$deb"
install -d "$deb/DEBIAN" "$deb/lib/systemd/system" "$deb/usr/share/doc/waggle" \
    "$deb/usr/share/lintian/overrides"
install -m 0644 "$repo/systemd/waggle.service" "$repo/systemd/waggle@.service" "$deb/lib/systemd/system/"
install -m 0644 "$here/debian/copyright" "$deb/usr/share/doc/waggle/copyright"
install -m 0644 "$here/README.md" "$deb/usr/share/doc/waggle/README.md"
gzip -9n <"$changelog" >"$deb/usr/share/doc/waggle/changelog.Debian.gz"
install -m 0644 "$here/debian/lintian-overrides" "$deb/usr/share/lintian/overrides/waggle"
install -m 0644 "$here/debian/conffiles" "$here/debian/templates" "$deb/DEBIAN/"
install -m 0755 "$here/debian/postinst" "$here/debian/prerm" "$here/debian/postrm" "$here/debian/config" "$deb/DEBIAN/"

# dpkg-shlibdeps wants a source tree with debian/control.
mkdir -p "$work/shlibs/debian"
printf 'Source: waggle\n\nPackage: waggle\nArchitecture: amd64\n' >"$work/shlibs/debian/control"
shlibs=$(cd "$work/shlibs" && dpkg-shlibdeps -O -e"$deb/usr/bin/waggle" -e"$deb/usr/bin/waggle-perf" 2>/dev/null |
    sed -n 's/^shlibs:Depends=//p')
[ -n "$shlibs" ] || die "dpkg-shlibdeps found no library dependencies"
installed_size=$(du -sk --exclude=DEBIAN "$deb" | cut -f1)
sed -e "s/@VERSION@/$version/" -e "s/@INSTALLED_SIZE@/$installed_size/" -e "s/@SHLIBS_DEPENDS@/$shlibs/" \
    "$here/debian/control.in" >"$deb/DEBIAN/control"
(cd "$deb" && find . -path ./DEBIAN -prune -o -type f -printf '%P\0' | sort -z |
    xargs -0 md5sum) >"$deb/DEBIAN/md5sums"
chmod 0644 "$deb/DEBIAN/md5sums" "$deb/DEBIAN/control"
find "$deb" -type d -exec chmod 0755 {} +
# Every file dated by the changelog entry: same tree, same package.
find "$deb" -exec touch -h -d "$release_date" {} +
deb_compression=(-Zxz)
[ $fast -eq 0 ] || deb_compression=(-Zgzip -z1)
dpkg-deb --root-owner-group "${deb_compression[@]}" --build "$deb" "$out/waggle_${version}_amd64.deb" >/dev/null

# --- rpm ----------------------------------------------------------------------
if [ $build_rpm -eq 1 ]; then
    rpm_file="waggle-${version}.x86_64.rpm"
    step "rpmbuild: $rpm_file"
    rpmstage=$work/rpmstage
    cp -a "$common" "$rpmstage"
    install -d "$rpmstage/usr/lib/systemd/system"
    install -m 0644 "$repo/systemd/waggle.service" "$repo/systemd/waggle@.service" "$rpmstage/usr/lib/systemd/system/"
    completion_files=$(cd "$rpmstage" && find usr/share -path '*complet*' \( -type f -o -type l \) -printf '/%p\\n' | sort | tr -d '\n')
    rpm_changelog=$("$here/rpm/changelog-from-debian.sh" "$changelog")
    {
        sed -e "s|@COMPLETION_FILES@|$completion_files|" -e '/@CHANGELOG@/,$d' "$here/rpm/waggle.spec.in"
        printf '%s\n' "$rpm_changelog"
    } >"$work/waggle.spec"
    rpm_compression=()
    [ $fast -eq 0 ] || rpm_compression=(--define "_binary_payload w1.gzdio")
    rpmbuild -bb --quiet "${rpm_compression[@]}" \
        --define "_topdir $work/rpmbuild" \
        --define "_rpmdir $work/rpms" \
        --define "_build_name_fmt %%{NAME}-%%{VERSION}-%%{RELEASE}.%%{ARCH}.rpm" \
        --define "pkg_version $upstream" \
        --define "pkg_release $revision" \
        --define "stagedir $rpmstage" \
        --define "readme $here/README.md" \
        --define "licensefile /usr/share/common-licenses/Apache-2.0" \
        "$work/waggle.spec" >"$work/rpmbuild.log" 2>&1 || { cat "$work/rpmbuild.log" >&2; die "rpmbuild failed"; }
    mv "$work/rpms/$rpm_file" "$out/$rpm_file"
fi

step "packages in $out"
ls -l "$out"
