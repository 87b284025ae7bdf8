#!/bin/sh
# Side-by-side benchmark for --threads (issue #11): rgunicorn against Gunicorn's
# gthread worker on an app that waits 10 ms per request, W=2, threads 8, 64
# connections; then rgunicorn hello-world keep-alive with threads 1 vs 4, to show
# what the hand-off to a request thread costs. Loopback only.
#
#   sh bench/threads.sh [SECONDS]     (default 10 s per run)
#
# Installs wrk (apt) and Gunicorn (pip, into bench/.venv) by itself. Prints
# req/s and latency percentiles as wrk reports them.
set -eu
cd "$(dirname "$0")/.."
SECS=${1:-10}
SUDO=""; [ "$(id -u)" = 0 ] || SUDO=sudo
command -v wrk >/dev/null || { $SUDO apt-get update -q; $SUDO apt-get install -y -q wrk; }
PY=${PYO3_PYTHON:-python3}
[ -x bench/.venv/bin/gunicorn ] || { "$PY" -m venv bench/.venv; bench/.venv/bin/pip install -q gunicorn; }
cargo build --release -q
BIN=target/release/rgunicorn
APPS=$(pwd)/bench/apps

run() { # name port command...
    name=$1; port=$2; shift 2
    "$@" >/tmp/bench-$name.log 2>&1 &
    pid=$!
    for _ in $(seq 100); do curl -s -o /dev/null "127.0.0.1:$port/" && break; sleep 0.1; done
    wrk -t1 -c64 -d2s "http://127.0.0.1:$port/" >/dev/null
    printf '%s\n' "== $name"
    wrk -t1 -c64 -d"${SECS}s" --latency "http://127.0.0.1:$port/" | grep -E "Requests/sec|Latency  |50%|99%|Non-2xx|Socket errors"
    kill "$pid"; wait "$pid" 2>/dev/null || true
}

run "rgunicorn -w2 --threads 8 (10 ms app)" 18101 $BIN -w 2 --threads 8 -b 127.0.0.1:18101 --chdir "$APPS" wait10:app
run "gunicorn -k gthread -w2 --threads 8 (10 ms app)" 18102 bench/.venv/bin/gunicorn -k gthread -w 2 --threads 8 -b 127.0.0.1:18102 --chdir "$APPS" wait10:app
run "rgunicorn -w2 --threads 1 (hello)" 18103 $BIN -w 2 --threads 1 -b 127.0.0.1:18103 --chdir "$APPS" hello:app
run "rgunicorn -w2 --threads 4 (hello)" 18104 $BIN -w 2 --threads 4 -b 127.0.0.1:18104 --chdir "$APPS" hello:app
