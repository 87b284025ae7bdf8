#!/bin/sh
# What scraping /metrics costs (issue #14): hello-world keep-alive throughput
# with the master's /metrics scraped every 100 ms, side by side with the same
# server not scraped. Runs alternate (off, on, off, on) so drift on a shared
# machine hits both; loopback only. Not part of `cargo test`.
#
#   sh bench/metrics.sh [SECONDS]     (default 10 s per run; ROUNDS=2 pairs,
#                                      WORKERS=2)
#
# Installs wrk (apt) when missing. Prints req/s per run, the scrape count and
# the mean scrape time (as the scraper sees it, waiting for a CPU included), the
# CPU time the master spent in each run (what scraping really costs: the
# workers never see a scrape), and the on/off ratio.
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

scrape_loop() { # until killed: GET /metrics every 100 ms; one line (seconds) per scrape
    # One Python process rather than a curl per scrape: on a small machine
    # forking curl ten times a second costs more CPU than the scrapes do.
    # exec: the background job is the scraper itself, so `kill` stops it.
    exec python3 -u -c '
import socket, sys, time
port = int(sys.argv[1])
while True:
    t = time.perf_counter()
    try:
        s = socket.create_connection(("127.0.0.1", port))
    except OSError:
        sys.exit(0)
    s.sendall(b"GET /metrics HTTP/1.1\r\nHost: b\r\n\r\n")
    while s.recv(65536):
        pass
    s.close()
    print("%.6f" % (time.perf_counter() - t))
    time.sleep(0.1)
' "$MPORT"
}

rps() { wrk -t1 -c64 -d"${SECS}s" "http://127.0.0.1:$PORT/" | awk '/Requests\/sec/ {print $2}'; }
# The master's user+system CPU time so far, in clock ticks.
ticks() { awk '{print $14 + $15}' "/proc/$SERVER/stat"; }
HZ=$(getconf CLK_TCK)
cpu_ms() { echo $(( ($(ticks) - $1) * 1000 / HZ )); }

OFF=""; ON=""
for round in $(seq "${ROUNDS:-2}"); do
    t=$(ticks)
    r=$(rps); OFF="$OFF $r"
    printf 'round %s  scraping off: %s req/s  (master CPU %s ms)\n' "$round" "$r" "$(cpu_ms "$t")"
    scrape_loop >/tmp/bench-metrics-scrapes.$round &
    LOOP=$!
    t=$(ticks)
    r=$(rps); ON="$ON $r"
    used=$(cpu_ms "$t")
    kill $LOOP; wait $LOOP 2>/dev/null || true
    n=$(wc -l </tmp/bench-metrics-scrapes.$round)
    ms=$(awk '{s += $1} END {if (NR) printf "%.2f", s * 1000 / NR}' /tmp/bench-metrics-scrapes.$round)
    printf 'round %s  scraping on:  %s req/s  (%s scrapes, mean %s ms each; master CPU %s ms)\n' \
        "$round" "$r" "$n" "$ms" "$used"
done
echo "$OFF|$ON" | awk -F'|' '{
    n = split($1, a, " "); split($2, b, " ");
    for (i = 1; i <= n; i++) { off += a[i]; on += b[i] }
    printf "mean: off %.0f req/s, on %.0f req/s, on/off %.3f (%+.1f%%)\n", off / n, on / n, on / off, (on / off - 1) * 100
}'

# The robust number on a noisy machine: the master's CPU per scrape, from a
# burst of back-to-back scrapes, and what ten a second cost of one core.
t=$(ticks)
python3 -c '
import socket, sys
for _ in range(2000):
    s = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
    s.sendall(b"GET /metrics HTTP/1.1\r\nHost: b\r\n\r\n")
    while s.recv(65536):
        pass
    s.close()
' "$MPORT"
used=$(cpu_ms "$t")
echo "$used" | awk '{ printf "2000 scrapes back to back: master CPU %d ms, %.0f us per scrape; scraping every 100 ms costs %.3f%% of one core\n", $1, $1 * 1000 / 2000, $1 / 2000 * 10 / 10 }'
