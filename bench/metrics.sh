#!/bin/sh
# What scraping /metrics costs (issue #14): hello-world keep-alive throughput
# with the master's /metrics scraped every 100 ms, side by side with the same
# server not scraped. Runs alternate (off, on, off, on) so drift on a shared
# machine hits both; loopback only. Not part of `cargo test`.
#
#   sh bench/metrics.sh [SECONDS]     (default 10 s per run)
#
# Installs wrk (apt) when missing. Prints req/s per run, the scrape count and
# the mean scrape time, and the on/off ratio.
set -eu
cd "$(dirname "$0")/.."
SECS=${1:-10}
W=${WORKERS:-2}
SUDO=""; [ "$(id -u)" = 0 ] || SUDO=sudo
command -v wrk >/dev/null || { $SUDO apt-get update -q; $SUDO apt-get install -y -q wrk; }
cargo build --release -q
BIN=${CARGO_TARGET_DIR:-target}/release/rgunicorn
APPS=$(pwd)/bench/apps
mkdir -p "$APPS"
cp examples/hello.py "$APPS/hello.py"
PORT=18141
MPORT=18142

"$BIN" -w "$W" -b "127.0.0.1:$PORT" --metrics-bind "127.0.0.1:$MPORT" --chdir "$APPS" hello:app \
    >/tmp/bench-metrics-server.log 2>&1 &
SERVER=$!
trap 'kill $SERVER 2>/dev/null || true' EXIT INT TERM
for _ in $(seq 100); do curl -s -o /dev/null "127.0.0.1:$MPORT/readyz" && break; sleep 0.1; done
wrk -t1 -c64 -d2s "http://127.0.0.1:$PORT/" >/dev/null

scrape_loop() { # until killed: GET /metrics every 100 ms; one line per scrape
    while :; do
        curl -s -o /dev/null -w '%{time_total}\n' "127.0.0.1:$MPORT/metrics"
        sleep 0.1
    done
}

rps() { wrk -t1 -c64 -d"${SECS}s" "http://127.0.0.1:$PORT/" | awk '/Requests\/sec/ {print $2}'; }

OFF=""; ON=""
for round in 1 2; do
    r=$(rps); OFF="$OFF $r"; printf 'round %s  scraping off: %s req/s\n' "$round" "$r"
    scrape_loop >/tmp/bench-metrics-scrapes.$round &
    LOOP=$!
    r=$(rps); ON="$ON $r"
    kill $LOOP; wait $LOOP 2>/dev/null || true
    n=$(wc -l </tmp/bench-metrics-scrapes.$round)
    ms=$(awk '{s += $1} END {if (NR) printf "%.2f", s * 1000 / NR}' /tmp/bench-metrics-scrapes.$round)
    printf 'round %s  scraping on:  %s req/s  (%s scrapes, mean %s ms each)\n' "$round" "$r" "$n" "$ms"
done
echo "$OFF|$ON" | awk -F'|' '{
    n = split($1, a, " "); split($2, b, " ");
    for (i = 1; i <= n; i++) { off += a[i]; on += b[i] }
    printf "mean: off %.0f req/s, on %.0f req/s, on/off %.3f (%+.1f%%)\n", off / n, on / n, on / off, (on / off - 1) * 100
}'
