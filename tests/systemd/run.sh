#!/usr/bin/env bash
# tests/systemd/run.sh: rgunicorn under a real systemd, end to end.
#
# Boots systemd (PID 1) in a throw-away systemd-nspawn container whose root is a
# volatile overlay of the host's own root file system, installs the rendered
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
#   verify    `systemd-analyze verify --man=no` of the units prints nothing
#   manpages  Documentation=man:... pages resolve (verify with --man=yes)
#   security  `systemd-analyze security rgunicorn@demo.service` exposure <= 4.0
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
ALL_CHECKS="activate status journal reload restart watchdog fdstore verify manpages security"
CHECKS=${*:-${RGUNICORN_SYSTEMD_CHECKS:-$ALL_CHECKS}}
MACHINE=rgunicorn-test-$$
MAX_LIFETIME=${MAX_LIFETIME:-900}
BINDIR=/usr/local/bin
PAYLOAD=/var/lib/rgunicorn-test # inside the container (its /tmp is private)
SOCK=/run/rgunicorn/demo.sock
export LC_ALL=C SYSTEMD_PAGER= SYSTEMD_COLORS=0 DEBIAN_FRONTEND=noninteractive

log() { printf '[%s] %s\n' "$(date +%T)" "$*"; }
PASSED=0 FAILED=0 FATAL=0
RESULTS=()
pass() { PASSED=$((PASSED + 1)); RESULTS+=("PASS $CHECK: $*"); log "PASS $CHECK: $*"; }
fail() { FAILED=$((FAILED + 1)); RESULTS+=("FAIL $CHECK: $*"); log "FAIL $CHECK: $*"; }
die() { FATAL=1; log "FATAL: $*"; exit 2; }

for c in $CHECKS; do
    case " $ALL_CHECKS " in *" $c "*) ;; *) die "unknown check '$c' (known: $ALL_CHECKS)" ;; esac
done
[ "$(id -u)" = 0 ] || die "must run as root (systemd-nspawn)"

# --------------------------------------------------------------------------
# Packages and the binary
# --------------------------------------------------------------------------
need=()
command -v systemd-nspawn >/dev/null || need+=(systemd-container)
command -v curl >/dev/null || need+=(curl)
[ -n "${RGUNICORN_BIN:-}" ] || [ -e /usr/include/python3.11/Python.h ] || need+=(python3-dev)
if [ ${#need[@]} -gt 0 ]; then
    [ "${SKIP_APT:-0}" = 1 ] && die "missing ${need[*]} and SKIP_APT=1"
    pkgs=()
    sdver=$(dpkg-query -W -f='${Version}' systemd 2>/dev/null || true)
    timeout 300 apt-get -o DPkg::Lock::Timeout=120 update -q >/dev/null 2>&1 ||
        log "warning: apt-get update failed"
    for p in "${need[@]}"; do
        # systemd-container at exactly the installed systemd version, so apt does
        # not upgrade systemd itself when a newer point release exists.
        if [ "$p" = systemd-container ] && [ -n "$sdver" ] &&
            apt-cache madison systemd-container | awk -F'|' '{gsub(/ /,"",$2); print $2}' | grep -qx "$sdver"; then
            p="systemd-container=$sdver"
        fi
        pkgs+=("$p")
    done
    log "apt-get install ${pkgs[*]}"
    timeout 600 apt-get -o DPkg::Lock::Timeout=120 install -y -q --no-install-recommends "${pkgs[@]}" \
        </dev/null >/dev/null 2>&1 || die "apt-get install ${pkgs[*]} failed"
fi
for b in systemd-nspawn nsenter unshare setsid timeout mountpoint curl; do
    command -v "$b" >/dev/null || die "missing $b"
done

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
# Work dir, rendered units, container launcher, cleanup
# --------------------------------------------------------------------------
WORK=$(mktemp -d /var/tmp/rgunicorn-systemd.XXXXXX) || die "mktemp"
mkdir -p "$WORK/root" "$WORK/units"
"$HERE/render-units.sh" "$BINDIR" "$WORK/units" || die "cannot render units/"

# Boot only the systemd core: units the host enabled (ssh, cron, ...) are masked.
INIT_ARGS=()
for u in $(find /etc/systemd/system -mindepth 2 -maxdepth 2 -path '*.wants/*' -printf '%f\n' | sort -u); do
    INIT_ARGS+=("systemd.mask=$u")
done
NSPAWN_ARGS=(--directory="$WORK/root" --volatile=overlay --boot --register=no --keep-unit
    --link-journal=no --machine="$MACHINE" --console=passive --private-network)

# Runs inside `unshare -m --propagation private`: its mounts vanish with it.
cat >"$WORK/launch.sh" <<EOF
#!/bin/sh
set -e
echo \$\$ > "$WORK/nspawn.pid"
# Non-recursive bind of / (nspawn refuses -D / with --volatile=overlay).
mount --bind / "$WORK/root"
# nspawn keeps state in /run/systemd; give it a private tmpfs there.
mkdir -p /run/systemd
mount -t tmpfs -o mode=0755 nspawn-run /run/systemd
# No host systemd makes a scope for us: nest the container's cgroups below ours.
while IFS=: read -r _id ctrl path; do
    case "\$ctrl" in
        "")           mnt=/sys/fs/cgroup/unified; [ -e "\$mnt/cgroup.procs" ] || mnt=/sys/fs/cgroup ;;
        name=systemd) mnt=/sys/fs/cgroup/systemd ;;
        name=*|cpuset|net_cls*|net_prio|perf_event|hugetlb|rdma|misc|freezer) continue ;;
        *)            mnt=/sys/fs/cgroup/\$ctrl ;;
    esac
    [ -e "\$mnt/cgroup.procs" ] || continue
    d="\$mnt\${path%/}/nspawn-$MACHINE"
    if mkdir -p "\$d" 2>/dev/null && echo \$\$ > "\$d/cgroup.procs" 2>/dev/null; then
        echo "\$d" >> "$WORK/cgroups.list"
    fi
done < /proc/self/cgroup
exec systemd-nspawn $(printf '%q ' "${NSPAWN_ARGS[@]}") $(printf '%q ' "${INIT_ARGS[@]}")
EOF

NSPAWN_PID="" LEADER="" LAUNCH_PID=""
RUN_SYSTEMD_CREATED=0
[ -d /run/systemd ] || RUN_SYSTEMD_CREATED=1
is_our_nspawn() { [ -n "$NSPAWN_PID" ] && [ "$(cat /proc/"$NSPAWN_PID"/comm 2>/dev/null)" = systemd-nspawn ]; }
cleanup() {
    set +e
    if [ "${KEEP:-0}" = 1 ] && [ -n "$LEADER" ] && [ -d "/proc/$LEADER" ]; then
        log "KEEP=1: enter with: nsenter -t $LEADER -m -u -i -n -p -C -- bash"
        log "stop with: kill $NSPAWN_PID; then remove $WORK and the cgroups in $WORK/cgroups.list"
        return
    fi
    if is_our_nspawn; then
        kill -TERM "$NSPAWN_PID" # nspawn turns this into a clean halt of the container
        for _ in $(seq 1 300); do is_our_nspawn || break; sleep 0.1; done
        is_our_nspawn && { log "container did not halt in 30 s, SIGKILL"; kill -KILL "$NSPAWN_PID"; sleep 1; }
    fi
    if [ -n "$LAUNCH_PID" ]; then
        kill -TERM "$LAUNCH_PID" 2>/dev/null
        wait "$LAUNCH_PID" 2>/dev/null
    fi
    [ "$RUN_SYSTEMD_CREATED" = 1 ] && rmdir /run/systemd 2>/dev/null
    if [ -f "$WORK/cgroups.list" ]; then
        while read -r d; do
            case "$d" in */nspawn-"$MACHINE") ;; *) continue ;; esac
            [ -d "$d" ] && find "$d" -depth -type d -exec rmdir {} \; 2>/dev/null
            [ -d "$d" ] && log "warning: could not remove cgroup $d"
        done <"$WORK/cgroups.list"
    fi
    if mountpoint -q "$WORK/root"; then
        log "warning: $WORK/root still mounted; leaving $WORK"
    elif [ "$FAILED" != 0 ] || [ "$FATAL" = 1 ]; then
        rm -rf "$WORK/root" "$WORK/units"
        log "container console log kept: $WORK/console.log"
    else
        rm -rf "$WORK"
    fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# --------------------------------------------------------------------------
# Boot
# --------------------------------------------------------------------------
log "booting systemd in container $MACHINE"
setsid -w timeout -k 10 "$MAX_LIFETIME" unshare -m --propagation private /bin/sh "$WORK/launch.sh" \
    </dev/null >"$WORK/console.log" 2>&1 &
LAUNCH_PID=$!
for _ in $(seq 1 300); do
    [ -s "$WORK/nspawn.pid" ] && NSPAWN_PID=$(cat "$WORK/nspawn.pid")
    if [ -n "$NSPAWN_PID" ]; then
        for c in $(cat /proc/"$NSPAWN_PID"/task/*/children 2>/dev/null); do
            [ "$(cat /proc/"$c"/comm 2>/dev/null)" = systemd ] && LEADER=$c
        done
    fi
    [ -n "$LEADER" ] && break
    [ -d /proc/$LAUNCH_PID ] || break
    sleep 0.1
done
[ -n "$LEADER" ] || { tail -30 "$WORK/console.log"; die "container PID 1 did not appear"; }

# Run a command in the container (all its namespaces), bounded in time.
CT() { timeout "${CT_TIMEOUT:-30}" nsenter -t "$LEADER" -m -u -i -n -p -C -- "$@"; }
# One HTTP request to the demo instance; prints the body.
GET() { CT curl -sS -m 10 --unix-socket "$SOCK" "$@"; }
prop() { CT systemctl show -p "$1" --value "$2"; }

for _ in $(seq 1 300); do
    timeout 5 nsenter -t "$LEADER" -m -- test -S /run/systemd/private && break
    sleep 0.1
done
state=$(CT_TIMEOUT=120 CT systemctl is-system-running --wait 2>&1)
case "$state" in
    running) log "container up (PID 1 is host pid $LEADER)" ;;
    degraded) log "container degraded:"; CT systemctl --failed --no-pager ;;
    *) tail -30 "$WORK/console.log"; die "container did not boot ($state)" ;;
esac

# --------------------------------------------------------------------------
# Install: binary, man pages, units, configs, app
# --------------------------------------------------------------------------
put() { # put MODE PATH < content
    CT sh -c "mkdir -p \"\$(dirname '$2')\" && cat > '$2' && chmod $1 '$2'"
}
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

# Wait (bounded) until `prop NAME UNIT` is VALUE.
wait_prop() { # wait_prop NAME UNIT VALUE SECONDS
    local i
    for i in $(seq 1 $(($4 * 10))); do
        [ "$(prop "$1" "$2")" = "$3" ] && return 0
        sleep 0.1
    done
    return 1
}

# Fire N requests one after another from inside the container, in the
# background; each prints its body or FAIL. Output goes to $WORK/load.out.
load_start() { # load_start N curl-args...
    local n=$1
    shift
    CT_TIMEOUT=300 CT sh -c 'n=$1; shift; i=0
        while [ $i -lt $n ]; do
            curl -sS -m 10 --fail "$@" 2>/dev/null || echo FAIL
            i=$((i + 1))
        done' load "$n" "$@" >"$WORK/load.out" 2>/dev/null &
    LOAD_PID=$!
}
# Wait until the background load has answered at least N requests.
load_reach() {
    local i
    for i in $(seq 1 200); do
        [ "$(wc -l <"$WORK/load.out")" -ge "$1" ] && return 0
        sleep 0.05
    done
    return 1
}
load_summary() { # sets LOAD_OK LOAD_FAIL
    wait "$LOAD_PID"
    LOAD_OK=$(grep -c '^Hello from rgunicorn' "$WORK/load.out")
    LOAD_FAIL=$(grep -c '^FAIL' "$WORK/load.out")
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
    CT systemd-analyze verify --man="$1" "$PAYLOAD/verify/rgunicorn@demo.socket" \
        "$PAYLOAD/verify/rgunicorn@demo.service" "$PAYLOAD/verify/rgunicorn.service" 2>&1
}

check_verify() {
    local out
    out=$(verify_units no)
    if [ -z "$out" ]; then
        pass "systemd-analyze verify: no complaints about the three units"
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

for CHECK in $CHECKS; do
    log "--- $CHECK"
    "check_$CHECK"
done

echo
for r in "${RESULTS[@]}"; do echo "$r"; done
echo "systemd: $PASSED passed, $FAILED failed"
[ "$FAILED" = 0 ] && [ "$PASSED" -gt 0 ]
