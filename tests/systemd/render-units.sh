#!/bin/sh
# Render units/*.in into OUTDIR with @BINDIR@ replaced.
#
#   tests/systemd/render-units.sh BINDIR OUTDIR
#
# Regenerate the goldens with: tests/systemd/render-units.sh /usr/bin tests/units
# (tests/systemd.rs compares them with the templates rendered the same way).
set -eu
[ $# = 2 ] || { echo "usage: $0 BINDIR OUTDIR" >&2; exit 2; }
root=$(cd "$(dirname "$0")/../.." && pwd)
mkdir -p "$2"
for f in "$root"/units/*.in; do
    sed "s|@BINDIR@|$1|g" "$f" > "$2/$(basename "$f" .in)"
done
