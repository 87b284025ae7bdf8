#!/usr/bin/env bash
# tests/systemd/run.sh: rgunicorn under a real systemd, end to end.
#
# Boots systemd (PID 1) in a throw-away systemd-nspawn container whose root is a
# volatile overlay of the host's own root file system (container.sh; package.sh
# runs the installed .deb through the same container), installs the rendered
# units from units/, the binary and a hello app, and runs these checks:
#
#   activate  rgunicorn@demo.socket + a request starts rgunicorn@demo.service
#   status    `systemctl status` shows active (running) and the STATUS= text
#   journal   access entries carry REQUEST_METHOD/STATUS/DURATION_US/...; a
#             traceback is one journal entry
#   reload    `systemctl reload` under 300 requests: none lost, same MainPID,
#             new workers serve
#   restart   `systemctl restart` under 300 requests: none lost, new MainPID
#   watchdog  WATCHDOG=1 keeps a WatchdogSec=3 service alive; SIGSTOP of the
#             master gets it killed and restarted, and it serves again
#   fdstore   rgunicorn.service (binds itself) restarted under 300 TCP requests:
#             none lost, because the socket waits in systemd's fd store
#   tls       rgunicorn@tls: certificate and key from LoadCredential=, the
#             key file root-only (the service user cannot read it), HTTPS served
#   verify    `systemd-analyze verify --man=no` of the units prints nothing
#   manpages  Documentation=man:... pages resolve (verify with --man=yes)
#   security  `systemd-analyze security rgunicorn@demo.service` exposure <= 4.0
#   flask     Flask's `app.logger.handlers = logging.getLogger('gunicorn.error')
#             .handlers` recipe: an app message is a journal entry with
#             PYTHON_LOGGER naming the app's logger
#   metrics   a second socket unit with FileDescriptorName=metrics gives the
#             master its metrics listener: /metrics counts the request that
#             activated the service, /readyz and /healthz answer 200
#   asgi      rgunicorn@asgi (worker_class = asgi, a plain ASGI app) is
#             socket-activated by a request, answers it, and its lifespan
#             startup and shutdown reach the journal around a clean stop
#
# Usage: tests/systemd/run.sh [CHECK...]   (or RGUNICORN_SYSTEMD_CHECKS="a b")
# Prints PASS/FAIL per check and `systemd: N passed, M failed`; exits 0 only when
# every selected check passed, 2 when the harness itself could not run.
#
# Needs root. Installs (apt) systemd-container, curl and python3-dev when
# missing. The host is left as it was: all mounts happen in a private mount
# namespace, the container writes only to a tmpfs overlay, and the child cgroups
# and work directory are removed on exit, whatever happens.
#
# Env:
#   RGUNICORN_BIN=path     use this binary instead of building one; it must be
#                          linked against Debian's libpython (not /root's pyenv,
#                          which the sandboxed service cannot read)
#   RGUNICORN_TEST_ARGS=.. replace `-c /etc/rgunicorn/NAME.conf` in ExecStart=
#                          with these arguments (for binaries without INI configs)
#   SKIP_APT=1             never call apt-get
#   KEEP=1                 leave the container running; prints how to enter it
#   MAX_LIFETIME=900       hard limit in seconds for the container
set -uo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
ALL_CHECKS="activate status journal reload restart watchdog fdstore tls verify manpages security flask metrics asgi"
CHECKS=${*:-${RGUNICORN_SYSTEMD_CHECKS:-$ALL_CHECKS}}
BINDIR=/usr/local/bin
SOCK=/run/rgunicorn/demo.sock
# shellcheck source=tests/systemd/container.sh
. "$HERE/container.sh"
validate_checks

# --------------------------------------------------------------------------
# Packages and the binary
# --------------------------------------------------------------------------
if [ -n "${RGUNICORN_BIN:-}" ] || [ -e /usr/include/python3.11/Python.h ]; then
    host_packages
else
    host_packages python3-dev
fi

if [ -n "${RGUNICORN_BIN:-}" ]; then
    BIN=$RGUNICORN_BIN
else
    # Debian's python3, not the pyenv one under /root: the service runs as a
    # dynamic user with ProtectHome=yes and could not load that libpython.
    log "building rgunicorn against /usr/bin/python3"
    (cd "$ROOT" && PYO3_PYTHON=/usr/bin/python3 timeout 1200 "${CARGO:-cargo}" build -q \
        --target-dir target/system-python) || die "cargo build failed"
    BIN=$ROOT/target/system-python/debug/rgunicorn
fi
[ -x "$BIN" ] || die "no binary at $BIN"
libpython=$(ldd "$BIN" | awk '/libpython/ {print $3}')
case "$libpython" in
    /usr/lib/*) log "binary $BIN uses $libpython" ;;
    *) die "$BIN links libpython at '$libpython', not under /usr/lib (build with PYO3_PYTHON=/usr/bin/python3)" ;;
esac

# --------------------------------------------------------------------------
# Boot
# --------------------------------------------------------------------------
container_boot
mkdir -p "$WORK/units"
"$HERE/render-units.sh" "$BINDIR" "$WORK/units" || die "cannot render units/"

# One HTTP request to the demo instance; prints the body.
GET() { CT curl -sS -m 10 --unix-socket "$SOCK" "$@"; }

# --------------------------------------------------------------------------
# Install: binary, man pages, units, configs, app
# --------------------------------------------------------------------------
put 0755 "$BINDIR/rgunicorn" <"$BIN" || die "cannot copy the binary"
for page in "$ROOT"/man/*.[1-8]; do
    [ -e "$page" ] || continue
    put 0644 "/usr/local/share/man/man${page##*.}/$(basename "$page")" <"$page"
done
for u in "$WORK"/units/*; do
    put 0644 "/etc/systemd/system/$(basename "$u")" <"$u" || die "cannot install $u"
done
put 0644 /etc/rgunicorn/demo.conf <"$HERE/demo.conf"
put 0644 /etc/rgunicorn/rgunicorn.conf <"$HERE/plain.conf"
put 0644 /srv/demo/hello.py <"$HERE/hello.py"
put 0644 /srv/demo/flask_logging.py <"$ROOT/tests/apps/flask_logging.py"
printf '[rgunicorn]\nwsgi_app = flask_logging:app\nchdir = /srv/demo\nworkers = 1\n' |
    put 0644 /etc/rgunicorn/flask.conf
printf '[rgunicorn]\nwsgi_app = hello:app\nchdir = /srv/demo\nworkers = 2\n' |
    put 0644 /etc/rgunicorn/ops.conf
put 0644 /srv/demo/asgi_app.py <"$ROOT/tests/apps/asgi_app.py"
printf '[rgunicorn]\nwsgi_app = asgi_app:app\nworker_class = asgi\nasgi_loop = asyncio\nchdir = /srv/demo\nworkers = 2\n' |
    put 0644 /etc/rgunicorn/asgi.conf
printf '[Socket]\nListenStream=127.0.0.1:9100\nFileDescriptorName=metrics\nService=rgunicorn@ops.service\n' |
    put 0644 /etc/systemd/system/rgunicorn-ops-metrics.socket
# AF_NETLINK: the unix listener's accept queue is read through sock_diag.
printf '[Unit]\nRequires=rgunicorn-ops-metrics.socket\nAfter=rgunicorn-ops-metrics.socket\n[Service]\nSockets=rgunicorn@ops.socket rgunicorn-ops-metrics.socket\nRestrictAddressFamilies=AF_NETLINK\n' |
    put 0644 /etc/systemd/system/rgunicorn@ops.service.d/60-metrics.conf
CT chmod 0755 /srv/demo /etc/rgunicorn
if [ -n "${RGUNICORN_TEST_ARGS:-}" ]; then
    log "ExecStart= overridden: rgunicorn $RGUNICORN_TEST_ARGS"
    for unit in rgunicorn@demo.service rgunicorn.service; do
        extra=""
        [ "$unit" = rgunicorn.service ] && extra=" -b 127.0.0.1:8000"
        printf '[Service]\nExecStart=\nExecStart=%s/rgunicorn%s %s\n' "$BINDIR" "$extra" "$RGUNICORN_TEST_ARGS" |
            put 0644 "/etc/systemd/system/$unit.d/50-test-args.conf"
    done
fi
CT systemctl daemon-reload || die "daemon-reload failed"

# Start the socket and make one request, unless the demo service already runs.
ensure_running() {
    [ "$(prop ActiveState rgunicorn@demo.service)" = active ] && return 0
    CT systemctl start rgunicorn@demo.socket || return 1
    GET -o /dev/null http://x/ && [ "$(prop ActiveState rgunicorn@demo.service)" = active ]
}

worker_pids() { grep -o 'pid=[0-9]*' | sort -u | tr '\n' ' '; }

# --------------------------------------------------------------------------
# Checks
# --------------------------------------------------------------------------
check_activate() {
    CT systemctl start rgunicorn@demo.socket || { fail "cannot start rgunicorn@demo.socket"; return; }
    local sock before body after
    sock=$(prop ActiveState rgunicorn@demo.socket)
    before=$(prop ActiveState rgunicorn@demo.service)
    body=$(GET http://x/)
    # The first worker may answer before the second has booted, that is
    # before READY=1 turns "activating" into "active".
    wait_prop ActiveState rgunicorn@demo.service active 10
    after=$(prop ActiveState rgunicorn@demo.service)
    if [ "$sock" = active ] && [ "$before" != active ] && [[ "$body" == "Hello from rgunicorn!"* ]] &&
        [ "$after" = active ]; then
        pass "a request on $SOCK started the service ($body)"
    else
        CT journalctl -u rgunicorn@demo.service --no-pager -n 20 | sed 's/^/    /'
        fail "socket=$sock service before=$before after=$after reply='$body'"
    fi
}

check_status() {
    ensure_running || { fail "service not running"; return; }
    local st text
    st=$(CT systemctl status rgunicorn@demo.service --no-pager 2>&1)
    text=$(prop StatusText rgunicorn@demo.service)
    echo "$st" | head -6 | sed 's/^/    /'
    if echo "$st" | grep -q 'Active: active (running)' && echo "$st" | grep -q 'Status: "' &&
        [ -n "$text" ]; then
        pass "active (running), Status: \"$text\""
    else
        fail "no 'active (running)' or no Status: line (StatusText='$text')"
    fi
}

check_journal() {
    ensure_running || { fail "service not running"; return; }
    local code
    code=$(GET -o /dev/null -w '%{http_code}' http://x/raise)
    GET -o /dev/null -H 'X-Request-Id: systemd-check-42' -H 'User-Agent: run.sh' \
        'http://x/journal-probe?q=1'
    sleep 0.5
    CT journalctl --sync 2>/dev/null
    CT journalctl -u rgunicorn@demo.service -o json --all --no-pager >"$WORK/journal.json"
    local verdict
    verdict=$(python3 - "$WORK/journal.json" <<'PY'
import json, sys
entries = []
for line in open(sys.argv[1], encoding="utf-8", errors="replace"):
    line = line.strip()
    if line:
        entries.append(json.loads(line))
def text(v):
    return bytes(v).decode("utf-8", "replace") if isinstance(v, list) else (v or "")
problems = []
access = [e for e in entries if e.get("REQUEST_URI") == "/journal-probe?q=1"]
if not access:
    problems.append("no access entry with REQUEST_URI=/journal-probe?q=1")
else:
    e = access[-1]
    want = {"REQUEST_METHOD": "GET", "STATUS": "200", "REQUEST_ID": "systemd-check-42",
            "USER_AGENT": "run.sh", "PRIORITY": "6", "SYSLOG_IDENTIFIER": "rgunicorn",
            "_TRANSPORT": "journal"}
    for k, v in want.items():
        if e.get(k) != v:
            problems.append(f"access {k}={e.get(k)!r}, want {v!r}")
    for k in ("DURATION_US", "RESPONSE_BYTES", "WORKER_PID"):
        if not str(e.get(k, "")).isdigit():
            problems.append(f"access {k}={e.get(k)!r} is not a number")
    print("access entry: " + " ".join(f"{k}={e.get(k)}" for k in (
        "REQUEST_METHOD", "REQUEST_URI", "STATUS", "RESPONSE_BYTES", "DURATION_US",
        "REMOTE_ADDR", "USER_AGENT", "WORKER_PID", "REQUEST_ID", "_TRANSPORT")))
tb = [e for e in entries if "Traceback (most recent call last)" in text(e.get("MESSAGE"))]
if not tb:
    problems.append("no entry holds a traceback")
else:
    m = text(tb[-1]["MESSAGE"])
    if "ValueError: rgunicorn systemd check: deliberate failure" not in m:
        problems.append("the traceback is split across entries")
    if tb[-1].get("PRIORITY") != "3":
        problems.append(f"traceback PRIORITY={tb[-1].get('PRIORITY')!r}, want '3'")
    print(f"traceback: one entry of {m.count(chr(10)) + 1} lines, PRIORITY={tb[-1].get('PRIORITY')}, "
          f"_TRANSPORT={tb[-1].get('_TRANSPORT')}")
print("PROBLEMS: " + "; ".join(problems) if problems else "OK")
PY
)
    echo "$verdict" | grep -v '^OK$\|^PROBLEMS' | sed 's/^/    /'
    if [ "$code" = 500 ] && [ "$(echo "$verdict" | tail -1)" = OK ]; then
        pass "access fields and a one-entry traceback in journalctl -o json"
    else
        fail "/raise answered $code; $(echo "$verdict" | tail -1)"
    fi
}

check_reload() {
    ensure_running || { fail "service not running"; return; }
    local main old new extra i
    main=$(prop MainPID rgunicorn@demo.service)
    load_start 300 --unix-socket "$SOCK" http://x/
    load_reach 50 || { fail "the client loop stalled before the reload"; wait "$LOAD_PID"; return; }
    old=$(worker_pids <"$WORK/load.out")
    CT systemctl reload rgunicorn@demo.service
    local rc=$?
    load_summary
    # New workers must take over (bounded); the loop may end before they do.
    new=""
    for i in $(seq 1 100); do
        extra=$(GET http://x/ | worker_pids)
        case " $old " in *" ${extra% } "*) ;; *) new=$extra; break ;; esac
        sleep 0.1
    done
    local main2
    main2=$(prop MainPID rgunicorn@demo.service)
    if [ $rc = 0 ] && [ "$LOAD_OK" = 300 ] && [ "$main2" = "$main" ] && [ -n "$new" ]; then
        pass "300/300 requests answered, MainPID $main kept, workers ${old}-> ${new}"
    else
        fail "reload rc=$rc, $LOAD_OK/300 answered ($LOAD_FAIL failed), MainPID $main -> $main2, workers before: ${old}after: ${new:-unchanged}"
    fi
}

check_restart() {
    ensure_running || { fail "service not running"; return; }
    local main main2
    main=$(prop MainPID rgunicorn@demo.service)
    load_start 300 --unix-socket "$SOCK" http://x/
    load_reach 50 || { fail "the client loop stalled before the restart"; wait "$LOAD_PID"; return; }
    CT_TIMEOUT=60 CT systemctl restart rgunicorn@demo.service
    local rc=$?
    load_summary
    main2=$(prop MainPID rgunicorn@demo.service)
    if [ $rc = 0 ] && [ "$LOAD_OK" = 300 ] && [ "$main2" != "$main" ] && [ "$main2" != 0 ]; then
        pass "300/300 requests answered across the restart, MainPID $main -> $main2"
    else
        fail "restart rc=$rc, $LOAD_OK/300 answered ($LOAD_FAIL failed), MainPID $main -> $main2"
    fi
}

check_watchdog() {
    local dropin=/etc/systemd/system/rgunicorn@demo.service.d/50-watchdog.conf
    printf '[Service]\nWatchdogSec=3\nTimeoutAbortSec=5\n' | put 0644 "$dropin"
    CT systemctl daemon-reload
    CT_TIMEOUT=60 CT systemctl restart rgunicorn@demo.service
    GET -o /dev/null http://x/
    local main restarts wd
    main=$(prop MainPID rgunicorn@demo.service)
    restarts=$(prop NRestarts rgunicorn@demo.service)
    wd=$(prop WatchdogUSec rgunicorn@demo.service)
    # Three watchdog periods: only WATCHDOG=1 pings keep it alive this long.
    sleep 9
    local main_alive
    main_alive=$(prop MainPID rgunicorn@demo.service)
    if [ "$main_alive" != "$main" ] || [ "$(prop NRestarts rgunicorn@demo.service)" != "$restarts" ]; then
        CT journalctl -u rgunicorn@demo.service --no-pager -n 8 -o cat | sed 's/^/    /'
        fail "WatchdogUSec=$wd: master $main did not survive 9 s (no WATCHDOG=1 pings?), MainPID now $main_alive"
        CT rm -f "$dropin"; CT systemctl daemon-reload
        return
    fi
    CT kill -STOP "$main"
    local i main2=$main
    for i in $(seq 1 200); do
        main2=$(prop MainPID rgunicorn@demo.service)
        [ "$main2" != "$main" ] && [ "$main2" != 0 ] &&
            [ "$(prop ActiveState rgunicorn@demo.service)" = active ] && break
        sleep 0.1
    done
    local body wdlog
    body=$(GET http://x/)
    wdlog=$(CT journalctl -u rgunicorn@demo.service --no-pager -o cat | grep -c 'Watchdog timeout')
    CT rm -f "$dropin"
    CT systemctl daemon-reload
    if [ "$main2" != "$main" ] && [ "$main2" != 0 ] && [ "$wdlog" -ge 1 ] &&
        [[ "$body" == "Hello from rgunicorn!"* ]]; then
        pass "alive 9 s with WatchdogSec=3; SIGSTOP -> watchdog timeout -> MainPID $main -> $main2, serving"
    else
        fail "after SIGSTOP of $main: MainPID $main2, 'Watchdog timeout' logged $wdlog times, reply '$body'"
    fi
}

check_fdstore() {
    CT systemctl stop rgunicorn@demo.service rgunicorn@demo.socket
    CT_TIMEOUT=60 CT systemctl start rgunicorn.service || {
        CT journalctl -u rgunicorn.service --no-pager -n 10 -o cat | sed 's/^/    /'
        fail "rgunicorn.service did not start"
        return
    }
    local main main2 stored
    main=$(prop MainPID rgunicorn.service)
    load_start 300 http://127.0.0.1:8000/
    load_reach 50 || { fail "the client loop stalled before the restart"; wait "$LOAD_PID"; return; }
    CT_TIMEOUT=60 CT systemctl restart rgunicorn.service
    local rc=$?
    load_summary
    main2=$(prop MainPID rgunicorn.service)
    stored=$(prop NFileDescriptorStore rgunicorn.service 2>/dev/null)
    CT systemctl stop rgunicorn.service
    if [ $rc = 0 ] && [ "$LOAD_OK" = 300 ] && [ "$main2" != "$main" ]; then
        pass "300/300 TCP requests answered across the restart (fd store entries: ${stored:-?})"
    else
        fail "restart rc=$rc, $LOAD_OK/300 answered ($LOAD_FAIL failed, connection refused while no one held the socket?), MainPID $main -> $main2"
    fi
}

# Instance copies of the templates, so %i resolves and verify sees real names.
verify_units() { # verify_units yes|no
    CT mkdir -p "$PAYLOAD/verify"
    put 0644 "$PAYLOAD/verify/rgunicorn@demo.socket" <"$WORK/units/rgunicorn@.socket"
    put 0644 "$PAYLOAD/verify/rgunicorn@demo.service" <"$WORK/units/rgunicorn@.service"
    put 0644 "$PAYLOAD/verify/rgunicorn.service" <"$WORK/units/rgunicorn.service"
    put 0644 "$PAYLOAD/verify/rgunicorn.target" <"$WORK/units/rgunicorn.target"
    CT systemd-analyze verify --man="$1" "$PAYLOAD/verify/rgunicorn@demo.socket" \
        "$PAYLOAD/verify/rgunicorn@demo.service" "$PAYLOAD/verify/rgunicorn.service" \
        "$PAYLOAD/verify/rgunicorn.target" 2>&1
}

check_tls() {
    local dir=/etc/rgunicorn sock=/run/rgunicorn/tls.sock body uid mode
    # A root-only key and its certificate, as an operator would keep them.
    CT openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
        -keyout "$dir/tls.key" -out "$dir/tls.crt" -days 2 -subj /CN=localhost \
        -addext subjectAltName=DNS:localhost >/dev/null 2>&1 || { fail "openssl req failed"; return; }
    CT chmod 0600 "$dir/tls.key"
    printf '[rgunicorn]\nwsgi_app = hello:app\nchdir = /srv/demo\ncertfile = tls.crt\nkeyfile = tls.key\n' |
        put 0644 "$dir/tls.conf"
    printf '[Service]\nLoadCredential=tls.crt:%s/tls.crt\nLoadCredential=tls.key:%s/tls.key\n' "$dir" "$dir" |
        put 0644 /etc/systemd/system/rgunicorn@tls.service.d/50-credentials.conf
    CT systemctl daemon-reload
    CT systemctl start rgunicorn@tls.socket || { fail "cannot start rgunicorn@tls.socket"; return; }
    body=$(CT curl -sS -m 10 --unix-socket "$sock" --cacert "$dir/tls.crt" https://localhost/)
    wait_prop ActiveState rgunicorn@tls.service active 10
    uid=$(CT awk '/^Uid:/ {print $2}' "/proc/$(prop MainPID rgunicorn@tls.service)/status")
    mode=$(CT stat -c '%U %a' "$dir/tls.key")
    if [[ "$body" == "Hello from rgunicorn!"* ]] && [ -n "$uid" ] && [ "$uid" != 0 ] &&
        [ "$mode" = "root 600" ] && ! CT setpriv --reuid="$uid" --regid="$uid" --clear-groups \
        cat "$dir/tls.key" >/dev/null 2>&1; then
        pass "HTTPS over $sock with the key from LoadCredential= ($dir/tls.key: $mode, service uid $uid cannot read it)"
    else
        CT journalctl -u rgunicorn@tls.service --no-pager -n 20 | sed 's/^/    /'
        fail "reply='$body' service uid='$uid' key='$mode'"
    fi
    CT systemctl stop rgunicorn@tls.socket rgunicorn@tls.service
}

check_verify() {
    local out
    out=$(verify_units no)
    if [ -z "$out" ]; then
        pass "systemd-analyze verify: no complaints about the four units"
    else
        echo "$out" | sed 's/^/    /'
        fail "systemd-analyze verify printed the lines above"
    fi
}

check_manpages() {
    local out
    out=$(verify_units yes)
    if [ -z "$out" ]; then
        pass "Documentation= man pages resolve"
    else
        echo "$out" | sed 's/^/    /'
        fail "systemd-analyze verify --man=yes printed the lines above (pages installed from man/: $(cd "$ROOT/man" 2>/dev/null && echo *))"
    fi
}

check_security() {
    local out level
    out=$(CT systemd-analyze security --no-pager rgunicorn@demo.service 2>&1)
    echo "$out" | grep -E '^✗' | sed 's/^/    /'
    level=$(echo "$out" | sed -n 's/.*Overall exposure level for rgunicorn@demo.service: \([0-9.]*\).*/\1/p')
    if [ -n "$level" ] && awk -v l="$level" 'BEGIN { exit !(l <= 4.0) }'; then
        pass "systemd-analyze security rgunicorn@demo.service: exposure $level"
    else
        echo "$out" | tail -3 | sed 's/^/    /'
        fail "exposure '${level:-?}' (must be <= 4.0)"
    fi
}

check_flask() {
    CT systemctl start rgunicorn@flask.socket || { fail "cannot start rgunicorn@flask.socket"; return; }
    local body verdict
    body=$(CT curl -sS -m 20 --unix-socket /run/rgunicorn/flask.sock http://x/)
    sleep 0.5
    CT journalctl --sync 2>/dev/null
    CT journalctl -u rgunicorn@flask.service -o json --all --no-pager >"$WORK/flask.json"
    verdict=$(python3 - "$WORK/flask.json" <<'PY'
import json, sys
entries = [json.loads(l) for l in open(sys.argv[1], encoding="utf-8", errors="replace") if l.strip()]
hits = [e for e in entries if e.get("MESSAGE") == "hello from the flask app"]
if not hits:
    print("no journal entry with the app's message")
else:
    e = hits[-1]
    print(f"PYTHON_LOGGER={e.get('PYTHON_LOGGER')} PRIORITY={e.get('PRIORITY')} "
          f"SYSLOG_IDENTIFIER={e.get('SYSLOG_IDENTIFIER')} _TRANSPORT={e.get('_TRANSPORT')}")
    ok = (e.get("PYTHON_LOGGER") == "flask_logging" and e.get("PRIORITY") == "6"
          and e.get("_TRANSPORT") == "journal")
    print("OK" if ok else "wrong fields")
PY
)
    CT systemctl stop rgunicorn@flask.socket rgunicorn@flask.service
    echo "$verdict" | head -1 | sed 's/^/    /'
    if [ "$body" = logged ] && [ "$(echo "$verdict" | tail -1)" = OK ]; then
        pass "the Flask recipe's message is a journal entry with PYTHON_LOGGER"
    else
        fail "reply '$body'; $(echo "$verdict" | tail -1)"
    fi
}

check_metrics() {
    CT systemctl start rgunicorn-ops-metrics.socket rgunicorn@ops.socket ||
        { fail "cannot start the ops sockets"; return; }
    local body metrics ready health
    body=$(CT curl -sS -m 20 --unix-socket /run/rgunicorn/ops.sock http://x/)
    wait_prop ActiveState rgunicorn@ops.service active 10
    # Worker sizes are sampled every second: wait (bounded) for the first.
    for _ in $(seq 30); do
        metrics=$(CT curl -sS -m 5 http://127.0.0.1:9100/metrics)
        echo "$metrics" | grep -q '^rgunicorn_worker_pss_bytes{' && break
        sleep 0.1
    done
    ready=$(CT curl -sS -m 5 -o /dev/null -w '%{http_code}' http://127.0.0.1:9100/readyz)
    health=$(CT curl -sS -m 5 -o /dev/null -w '%{http_code}' http://127.0.0.1:9100/healthz)
    CT systemctl stop rgunicorn@ops.service rgunicorn@ops.socket rgunicorn-ops-metrics.socket
    echo "$metrics" | grep -E '^rgunicorn_(requests_total|workers\{state="idle"\}|listen_queue_limit|worker_pss_bytes)' | sed 's/^/    /'
    if [[ "$body" == "Hello from rgunicorn!"* ]] && [ "$ready" = 200 ] && [ "$health" = 200 ] &&
        echo "$metrics" | grep -q '^rgunicorn_requests_total{method="GET",status="2xx"} 1$' &&
        echo "$metrics" | grep -q 'listener="unix:/run/rgunicorn/ops.sock"' &&
        echo "$metrics" | grep -q '^rgunicorn_worker_pss_bytes{'; then
        pass "FileDescriptorName=metrics serves /metrics, /readyz and /healthz from the master"
    else
        fail "reply '$body', /readyz $ready, /healthz $health"
    fi
}

check_asgi() {
    CT systemctl start rgunicorn@asgi.socket || { fail "cannot start rgunicorn@asgi.socket"; return; }
    local body journal
    body=$(CT curl -sS -m 20 --unix-socket /run/rgunicorn/asgi.sock http://x/hello)
    wait_prop ActiveState rgunicorn@asgi.service active 10
    CT systemctl stop rgunicorn@asgi.service rgunicorn@asgi.socket
    CT journalctl --sync 2>/dev/null
    journal=$(CT journalctl -u rgunicorn@asgi.service -o cat --all --no-pager)
    echo "$journal" | grep -E 'Using worker|lifespan|Shutting down' | sed 's/^/    /'
    if [ "$body" = "Hello, ASGI!" ] &&
        [ "$(echo "$journal" | grep -c 'ASGI lifespan startup complete')" = 2 ] &&
        [ "$(echo "$journal" | grep -c 'ASGI lifespan shutdown complete')" = 2 ] &&
        echo "$journal" | grep -q 'Using worker: asgi'; then
        pass "an ASGI app is socket-activated, answers, and runs lifespan in both workers"
    else
        fail "reply '$body'"
    fi
}

run_checks systemd
