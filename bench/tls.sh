#!/bin/sh
# Side-by-side TLS benchmark (issue 13): rgunicorn against Granian (WSGI, TLS)
# and nginx (TLS, a fixed `return 200`), each with 2 workers, hello world,
# loopback. Two rates per server, both with wrk over TLS 1.3:
#
#   keep-alive      64 connections, many requests each (goal: >= Granian)
#   new connection  `Connection: close` on every request, so each one is a
#                   full handshake (wrk resumes no sessions; goal: >= 0.8x nginx)
#
#   sh bench/tls.sh [SECONDS]     (default 10 s per run)
#
# Not part of `cargo test`. Installs wrk and nginx (apt) and Granian (pip, into
# a venv under the target dir) when missing; builds the release binary. Prints
# req/s per run and the ratios. On a shared machine the numbers are noisy.
set -eu
cd "$(dirname "$0")/.."
SECS=${1:-10}
SUDO=""; [ "$(id -u)" = 0 ] || SUDO=sudo
TARGET=${CARGO_TARGET_DIR:-target}
command -v wrk >/dev/null || { $SUDO apt-get update -q; $SUDO apt-get install -y -q wrk; }
command -v nginx >/dev/null || [ -x /usr/sbin/nginx ] || { $SUDO apt-get update -q; $SUDO apt-get install -y -q nginx; }
NGINX=$(command -v nginx || echo /usr/sbin/nginx)
PY=${PYO3_PYTHON:-python3}
VENV=$TARGET/bench-venv
[ -x "$VENV/bin/granian" ] || { "$PY" -m venv "$VENV"; "$VENV/bin/pip" install -q granian; }
cargo build --release -q
BIN=$TARGET/release/rgunicorn

WORK=$(mktemp -d /tmp/rgunicorn-bench-tls.XXXXXX)
trap 'rm -rf "$WORK"' EXIT
cp examples/hello.py "$WORK/hello.py"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
    -keyout "$WORK/key.pem" -out "$WORK/cert.pem" -days 2 -subj /CN=localhost \
    -addext subjectAltName=DNS:localhost,IP:127.0.0.1 2>/dev/null
cat > "$WORK/nginx.conf" <<EOF
worker_processes 2;
pid $WORK/nginx.pid;
error_log $WORK/nginx-error.log;
events { worker_connections 1024; }
http {
    access_log off;
    client_body_temp_path $WORK/nginx-body;
    server {
        listen 127.0.0.1:18203 ssl;
        ssl_certificate $WORK/cert.pem;
        ssl_certificate_key $WORK/key.pem;
        ssl_protocols TLSv1.2 TLSv1.3;
        ssl_session_cache off;
        ssl_session_tickets off;
        keepalive_requests 1000000;
        location / { return 200 "Hello, World!\n"; }
    }
}
EOF

# rate NAME PORT [wrk args...]: print and remember req/s.
# (Shell functions share variables: rate's are prefixed r_.)
rate() {
    r_name=$1; r_port=$2; shift 2
    r=$(wrk -t2 -c64 -d"${SECS}s" "$@" "https://127.0.0.1:$r_port/" |
        awk '/Requests\/sec/ {print int($2)}')
    printf '%-34s %8s req/s\n' "$r_name" "$r"
    echo "$r" > "$WORK/rate-$(echo "$r_name" | tr -c 'a-z0-9' _)"
}
get() { cat "$WORK/rate-$(echo "$1" | tr -c 'a-z0-9' _)"; }

bench() { # bench NAME PORT command...
    name=$1; port=$2; shift 2
    "$@" >"$WORK/$name.log" 2>&1 &
    pid=$!
    for _ in $(seq 100); do curl -sk -o /dev/null "https://127.0.0.1:$port/" && break; sleep 0.1; done
    wrk -t1 -c16 -d1s "https://127.0.0.1:$port/" >/dev/null
    rate "$name keep-alive" "$port"
    rate "$name new connection" "$port" -H "Connection: close"
    kill "$pid"; wait "$pid" 2>/dev/null || true
}

bench rgunicorn 18201 "$BIN" -w 2 -b 127.0.0.1:18201 --chdir "$WORK" \
    --certfile "$WORK/cert.pem" --keyfile "$WORK/key.pem" --worker-connections 1000 hello:app
bench granian 18202 sh -c "cd '$WORK' && exec '$VENV/bin/granian' --interface wsgi \
    --host 127.0.0.1 --port 18202 --workers 2 \
    --ssl-certificate '$WORK/cert.pem' --ssl-keyfile '$WORK/key.pem' hello:app"
bench nginx 18203 "$NGINX" -c "$WORK/nginx.conf" -g "daemon off;"

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "n/a" }'; }
echo
echo "keep-alive:     rgunicorn/granian $(ratio "$(get 'rgunicorn keep-alive')" "$(get 'granian keep-alive')")" \
    " rgunicorn/nginx $(ratio "$(get 'rgunicorn keep-alive')" "$(get 'nginx keep-alive')")"
echo "new connection: rgunicorn/granian $(ratio "$(get 'rgunicorn new connection')" "$(get 'granian new connection')")" \
    " rgunicorn/nginx $(ratio "$(get 'rgunicorn new connection')" "$(get 'nginx new connection')")"
