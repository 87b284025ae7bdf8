#!/bin/sh
# packaging/build.sh: build rgunicorn's .deb and .rpm from this tree, then lint
# both. The one command for packages (README "Install from a package"):
#
#   sh .ci/install-deps && packaging/build.sh
#
# Writes target/packages/rgunicorn_VERSION-1_ARCH.deb and
# target/packages/rgunicorn-VERSION-1.ARCH.rpm, with the linters' reports
# beside them (lintian.txt, rpmlint.txt). Exits non-zero when a build fails or
# when lintian or rpmlint report an error; warnings are overridden or filtered
# in packaging/debian/rgunicorn.lintian-overrides and packaging/rpm/rpmlintrc
# (settings in packaging/rpm/rpmlint.toml), each with its reason.
#
# How: the files git knows (tracked and untracked-but-not-ignored; on a tree
# without git, everything but target/) are copied to
# target/packages/build/rgunicorn-VERSION, the clean tree both builds run in;
# packaging/debian becomes its debian/. dpkg-buildpackage (debhelper) and
# rpmbuild --build-in-place (packaging/rpm/rgunicorn.spec) then each run
# `cargo build --release --locked` there against Debian's /usr/bin/python3,
# sharing one cargo target directory, so the second build compiles nothing.
#
# Needs: cargo on PATH; debhelper, dpkg-dev, chrpath, python3-dev, rpm,
# lintian and rpmlint (all from .ci/install-deps). Runs as any user (no root:
# Rules-Requires-Root: no, and rpmbuild needs none).
#
# Env: CARGO_TARGET_DIR  the cargo cache is $CARGO_TARGET_DIR/package-build
#                        (default target/package-build)
#      SKIP_LINT=1       build only
set -eu

ROOT=$(cd "$(dirname "$0")/.." && pwd)
OUT=$ROOT/target/packages
VERSION=$(sed -n 's/^version = "\(.*\)"$/\1/p' "$ROOT/Cargo.toml" | head -1)
log() { printf '[build.sh] %s\n' "$*"; }
die() { printf '[build.sh] error: %s\n' "$*" >&2; exit 1; }

# One version everywhere: Cargo.toml, debian/changelog, the spec.
deb_version=$(sed -n '1s/^rgunicorn (\([^)]*\)).*/\1/p' "$ROOT/packaging/debian/changelog")
rpm_version=$(sed -n 's/^Version:[[:space:]]*//p' "$ROOT/packaging/rpm/rgunicorn.spec")
[ "${deb_version%-*}" = "$VERSION" ] ||
    die "packaging/debian/changelog is at $deb_version, Cargo.toml at $VERSION"
[ "$rpm_version" = "$VERSION" ] ||
    die "packaging/rpm/rgunicorn.spec is at $rpm_version, Cargo.toml at $VERSION"

for tool in cargo dpkg-buildpackage dh chrpath rpmbuild lintian rpmlint; do
    command -v "$tool" >/dev/null || die "missing $tool (run: sh .ci/install-deps)"
done
[ -e /usr/include/python3.11/Python.h ] || [ -n "$(ls /usr/include/python3.*/Python.h 2>/dev/null)" ] ||
    die "missing Debian's python3-dev (run: sh .ci/install-deps)"

export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}/package-build"
export PYO3_PYTHON=/usr/bin/python3

# --------------------------------------------------------------------------
# The clean tree
# --------------------------------------------------------------------------
STAGE=$OUT/build/rgunicorn-$VERSION
rm -rf "$OUT"
mkdir -p "$STAGE"
log "copying the tree to $STAGE"
if git -C "$ROOT" rev-parse --is-inside-work-tree >/dev/null 2>&1; then
    # Files deleted in the work tree but still in the index are skipped.
    (cd "$ROOT" && git ls-files -z --cached --others --exclude-standard |
        xargs -0 sh -c 'for f; do [ -e "$f" ] && printf "%s\0" "$f"; done' sh |
        tar --null -T - -cf -) | tar -C "$STAGE" -xf -
else
    (cd "$ROOT" && tar --exclude=./target -cf - .) | tar -C "$STAGE" -xf -
fi
cp -a "$STAGE/packaging/debian" "$STAGE/debian"

# --------------------------------------------------------------------------
# .deb
# --------------------------------------------------------------------------
log "dpkg-buildpackage (cargo target: $CARGO_TARGET_DIR)"
(cd "$STAGE" && dpkg-buildpackage -b --no-sign) >"$OUT/deb-build.log" 2>&1 || {
    tail -40 "$OUT/deb-build.log"
    die "dpkg-buildpackage failed (full log: $OUT/deb-build.log)"
}
arch=$(dpkg-architecture -qDEB_HOST_ARCH)
deb=$OUT/rgunicorn_${deb_version}_${arch}.deb
mv "$OUT/build/rgunicorn_${deb_version}_${arch}.deb" "$deb"
log "built $deb"
dpkg-deb --info "$deb" | sed -n 's/^ \(Depends\|Recommends\|Suggests\):/  \1:/p'

# --------------------------------------------------------------------------
# .rpm
# --------------------------------------------------------------------------
# Debian's rpm lacks the systemd macros (Fedora's come from
# systemd-rpm-macros) and has a broken brp-compress: load
# packaging/rpm/macros.debian-host only on such a host.
set -- --define "_topdir $OUT/rpmbuild"
if [ -z "$(rpm --eval '%{?systemd_post:yes}')" ]; then
    set -- "$@" --load="$ROOT/packaging/rpm/macros.debian-host"
fi
# Who built it, unless ~/.rpmmacros says.
if [ -z "$(rpm --eval '%{?packager}')" ]; then
    set -- "$@" --define "packager $(sed -n 's/^Maintainer: //p' "$ROOT/packaging/debian/control")"
fi
log "rpmbuild --build-in-place"
# --nodeps: BuildRequires names Fedora packages; rpm's database here is empty.
(cd "$STAGE" && rpmbuild -bb --build-in-place --nodeps "$@" packaging/rpm/rgunicorn.spec) \
    >"$OUT/rpm-build.log" 2>&1 || {
    tail -40 "$OUT/rpm-build.log"
    die "rpmbuild failed (full log: $OUT/rpm-build.log)"
}
for f in "$OUT"/rpmbuild/RPMS/*/rgunicorn-"$VERSION"-*.rpm; do
    [ -e "$f" ] || die "rpmbuild made no rgunicorn rpm"
    mv "$f" "$OUT/"
    rpm=$OUT/$(basename "$f")
done
log "built $rpm"
rpm -qp --requires "$rpm" 2>/dev/null | grep -v '^rpmlib(' | sed 's/^/  Requires: /'

[ "${SKIP_LINT:-0}" = 1 ] && exit 0

# --------------------------------------------------------------------------
# Lint: errors fail the build; every warning is overridden with a reason
# --------------------------------------------------------------------------
status=0
log "lintian"
# Overridden tags are listed (O:) with the rest; the verdict is ours, since
# lintian's --fail-on would count them too when they are shown.
lintian --fail-on none --display-info --show-overrides "$deb" >"$OUT/lintian.txt" 2>&1 || status=1
sed 's/^/  /' "$OUT/lintian.txt"
grep -q '^[EW]:' "$OUT/lintian.txt" && status=1
log "lintian: $(grep -c '^E:' "$OUT/lintian.txt") errors, $(grep -c '^W:' "$OUT/lintian.txt") warnings, $(grep -c "^I:" "$OUT/lintian.txt") info, $(grep -c "^O:" "$OUT/lintian.txt") overridden"

log "rpmlint"
rpmlint -c "$ROOT/packaging/rpm/rpmlint.toml" -r "$ROOT/packaging/rpm/rpmlintrc" "$ROOT/packaging/rpm/rgunicorn.spec" "$rpm" \
    >"$OUT/rpmlint.txt" 2>&1 || status=1
sed 's/^/  /' "$OUT/rpmlint.txt"
# rpmlint exits 0 with warnings; an unfiltered warning fails the build too.
grep -q ' 0 errors, 0 warnings' "$OUT/rpmlint.txt" || status=1

[ "$status" = 0 ] || die "lint failed: see $OUT/lintian.txt and $OUT/rpmlint.txt"
log "done: $deb $rpm"
