#!/bin/sh
# Side-by-side benchmark (README "Performance"): installs the peers, builds
# rgunicorn in release mode and runs bench/run.py, which prints markdown tables
# and writes them to bench/results.md. Loopback only.
#
#   sh bench/run.sh            # full: 2 repetitions of 6 s per server and workload
#   sh bench/run.sh --quick    # smoke: 1 repetition of 2 s
#   sh bench/run.sh --help     # every option
#
# Installs by itself: wrk, nginx, libev-dev (for bjoern) and curl from apt;
# Gunicorn, Granian, bjoern and Flask into bench/.venv (from the python3 that
# rgunicorn embeds, so every server runs the same interpreter); oha from
# crates.io (cargo install oha --locked).
set -eu
cd "$(dirname "$0")/.."
SUDO=""; [ "$(id -u)" = 0 ] || SUDO=sudo
need=""
for pkg in wrk nginx libev-dev curl; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "ok installed" || need="$need $pkg"
done
if [ -n "$need" ]; then
    $SUDO apt-get update -q
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q $need
fi
PY=${PYO3_PYTHON:-python3}
[ -x bench/.venv/bin/python ] || "$PY" -m venv bench/.venv
bench/.venv/bin/python -c "import gunicorn, granian, bjoern, flask" 2>/dev/null ||
    bench/.venv/bin/pip install -q gunicorn granian bjoern flask
CARGO_BIN="${CARGO_HOME:-$HOME/.cargo}/bin"
command -v oha >/dev/null 2>&1 || [ -x "$CARGO_BIN/oha" ] || cargo install oha --locked
PATH="$PATH:$CARGO_BIN"
cargo build --release -q
# 10,000 connections need file descriptors on both ends.
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"
exec bench/.venv/bin/python bench/run.py "$@"
