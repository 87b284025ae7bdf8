#!/usr/bin/env bash
# tests/systemd/package.sh: the built .deb under a real systemd, installed and
# deployed the way README.md says, in the throw-away container of
# container.sh (systemd 252 booted by systemd-nspawn over an overlay of the
# host root, no network).
#
#   install   README's "Install from a package" block (apt-get install of the
#             .deb): binary in /usr/bin loading Debian's libpython, units in
#             /usr/lib/systemd/system with /usr/bin rendered, both man pages,
#             /etc/rgunicorn/example.conf.sample; nothing enabled or running
#   deploy    README's "Deploy an app as an instance" block, run literally: a
#             Flask app in a venv made by Debian's python3, a 5-line
#             /etc/rgunicorn/demo.conf, `systemctl enable --now
#             rgunicorn@demo.socket`; the app answers through the socket
#   reload    `systemctl reload rgunicorn@demo` under 200 requests: none
#             failed, same MainPID
#   restart   `systemctl restart rgunicorn@demo` under 200 requests: none
#             failed, new MainPID
#   journal   `journalctl -u rgunicorn@demo` holds the access fields
#             (REQUEST_METHOD, REQUEST_URI, STATUS, DURATION_US, ...)
#   nginx     README's "nginx in front" server block, as written, in the
#             host's nginx (started by hand: the container masks nginx.service
#             with the host's other enabled units): the app answers through
#             nginx
#   upgrade   `dpkg -i` of the package again (an upgrade for the maintainer
#             scripts) under 200 requests: the running instance is restarted
#             (new MainPID) through rgunicorn.target, the socket is not
#             (same inode), none failed
#   remove    `apt-get remove rgunicorn`: no rgunicorn unit or process left
#             running, the socket file gone, the admin's demo.conf kept
#
# Usage: tests/systemd/package.sh [CHECK...]   (or RGUNICORN_PACKAGE_CHECKS)
# README blocks are found by the `<!-- package.sh: NAME -->` line above them.
# Prints PASS/FAIL per check and `package: N passed, M failed`; exits 0 only
# when every selected check passed, 2 when the harness itself could not run.
# Checks run in order and build on each other (deploy needs install, ...).
#
# Needs root. Env:
#   RGUNICORN_DEB=path  test this .deb; without it, packaging/build.sh builds
#                       one (which needs what .ci/install-deps installs)
#   SKIP_APT, KEEP, MAX_LIFETIME  as in container.sh
set -uo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
ALL_CHECKS="install deploy reload restart journal nginx upgrade remove"
CHECKS=${*:-${RGUNICORN_PACKAGE_CHECKS:-$ALL_CHECKS}}
SOCK=/run/rgunicorn/demo.sock
LOAD_EXPECT="Hello from Flask"
# shellcheck source=tests/systemd/container.sh
. "$HERE/container.sh"
validate_checks
# python3-venv and python3-flask: the README's deploy block uses them, and
# the container (no network) sees the host's packages.
host_packages python3-venv python3-flask

if [ -n "${RGUNICORN_DEB:-}" ]; then
    DEB=$RGUNICORN_DEB
else
    log "building the packages: packaging/build.sh"
    "$ROOT/packaging/build.sh" >/dev/null || die "packaging/build.sh failed"
    DEB=$(ls "$ROOT"/target/packages/rgunicorn_*.deb 2>/dev/null | head -1)
fi
[ -f "$DEB" ] || die "no .deb at '$DEB'"
log "package: $DEB"

# The shell block after `<!-- package.sh: NAME -->` in README.md.
readme_block() {
    awk -v tag="<!-- package.sh: $1 -->" '
        $0 == tag { found = 1; next }
        found && /^```/ { if (inside) exit; inside = 1; next }
        inside { print }
    ' "$ROOT/README.md"
}
# Runs README block NAME in the container from $PAYLOAD (where
# target/packages/ holds the .deb), as `sh -eu` with the environment of a
# fresh root login (not this script's PATH, which may lead to a pyenv);
# output in $WORK/NAME.out.
run_readme_block() {
    local block
    block=$(readme_block "$1")
    [ -n "$block" ] || { echo "README.md has no block tagged package.sh: $1" >"$WORK/$1.out"; return 1; }
    printf '%s\n' "$block" | sed 's/^/    $ /'
    CT_TIMEOUT=180 CT env -i PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
        HOME=/root LC_ALL=C.UTF-8 DEBIAN_FRONTEND=noninteractive \
        sh -euc "cd $PAYLOAD && $block" >"$WORK/$1.out" 2>&1
}

container_boot
# A host built as a container image may carry Docker's policy-rc.d ("exit
# 101"), which makes deb-systemd-invoke skip every start, restart and stop in
# maintainer scripts. A booted Debian has none; remove it in the container
# (its overlay; the host keeps its file).
CT rm -f /usr/sbin/policy-rc.d
CT mkdir -p "$PAYLOAD/target/packages"
put 0644 "$PAYLOAD/target/packages/$(basename "$DEB")" <"$DEB" || die "cannot copy the .deb"

GET() { CT curl -sS -m 10 --unix-socket "$SOCK" "$@"; }
active_rgunicorn_units() {
    CT systemctl list-units --all --no-legend --plain 'rgunicorn*' |
        awk '$3 == "active" || $3 == "activating" || $3 == "reloading" || $3 == "deactivating" {print $1}' |
        tr '\n' ' '
}

# --------------------------------------------------------------------------
# Checks
# --------------------------------------------------------------------------
check_install() {
    if ! run_readme_block install; then
        tail -20 "$WORK/install.out" | sed 's/^/    /'
        fail "README's install block failed"
        return
    fi
    local problems=() f lib active enabled
    lib=$(CT ldd /usr/bin/rgunicorn | awk '/libpython/ {print $3}')
    case "$lib" in /usr/lib/*/libpython3.* | /lib/*/libpython3.*) ;; *) problems+=("/usr/bin/rgunicorn loads libpython from '$lib'") ;; esac
    CT /usr/bin/rgunicorn --help >/dev/null 2>&1 || problems+=("rgunicorn --help failed")
    for f in rgunicorn.service rgunicorn.target rgunicorn@.service rgunicorn@.socket; do
        CT test -f "/usr/lib/systemd/system/$f" || problems+=("no /usr/lib/systemd/system/$f")
    done
    CT grep -q '^ExecStart=/usr/bin/rgunicorn -c /etc/rgunicorn/%i.conf$' /usr/lib/systemd/system/rgunicorn@.service ||
        problems+=("rgunicorn@.service does not run /usr/bin/rgunicorn")
    CT grep -l '@BINDIR@' /usr/lib/systemd/system/rgunicorn* >/dev/null 2>&1 && problems+=("a unit still has @BINDIR@")
    for f in /usr/share/man/man1/rgunicorn.1.gz /usr/share/man/man5/rgunicorn.conf.5.gz \
        /etc/rgunicorn/example.conf.sample /usr/share/doc/rgunicorn/README.Debian /usr/share/doc/rgunicorn/copyright; do
        CT test -f "$f" || problems+=("no $f")
    done
    enabled=$(CT systemctl is-enabled rgunicorn.service 2>&1)
    [ "$enabled" = disabled ] || problems+=("rgunicorn.service is '$enabled' after install")
    active=$(active_rgunicorn_units)
    [ -z "$active" ] || problems+=("running after install: $active")
    if [ ${#problems[@]} = 0 ]; then
        pass "installed; $lib; units, man pages, example, README.Debian in place; nothing enabled or running"
    else
        fail "$(printf '%s; ' "${problems[@]}")"
    fi
}

check_deploy() {
    if ! run_readme_block deploy; then
        tail -20 "$WORK/deploy.out" | sed 's/^/    /'
        CT journalctl -u rgunicorn@demo.service --no-pager -n 20 -o cat | sed 's/^/    /'
        fail "README's deploy block failed"
        return
    fi
    local answer lines
    answer=$(tail -1 "$WORK/deploy.out")
    lines=$(CT grep -cv '^[[:space:]]*$' /etc/rgunicorn/demo.conf)
    if [[ "$answer" == "$LOAD_EXPECT"* ]] && [ "$(prop ActiveState rgunicorn@demo.service)" = active ] &&
        [ "$(prop ActiveState rgunicorn@demo.socket)" = active ]; then
        pass "README's deploy block: the app answered '$answer' through $SOCK ($lines-line demo.conf)"
    else
        tail -10 "$WORK/deploy.out" | sed 's/^/    /'
        fail "last line '$answer', service $(prop ActiveState rgunicorn@demo.service)"
    fi
}

check_reload() {
    local main main2 rc
    main=$(prop MainPID rgunicorn@demo.service)
    load_start 200 --unix-socket "$SOCK" http://localhost/
    load_reach 30 || { fail "the client loop stalled before the reload"; wait "$LOAD_PID"; return; }
    CT systemctl reload rgunicorn@demo.service
    rc=$?
    load_summary
    main2=$(prop MainPID rgunicorn@demo.service)
    if [ $rc = 0 ] && [ "$LOAD_OK" = 200 ] && [ "$main2" = "$main" ]; then
        pass "200/200 requests answered across systemctl reload, MainPID $main kept"
    else
        fail "reload rc=$rc, $LOAD_OK/200 answered ($LOAD_FAIL failed), MainPID $main -> $main2"
    fi
}

check_restart() {
    local main main2 rc
    main=$(prop MainPID rgunicorn@demo.service)
    load_start 200 --unix-socket "$SOCK" http://localhost/
    load_reach 30 || { fail "the client loop stalled before the restart"; wait "$LOAD_PID"; return; }
    CT_TIMEOUT=60 CT systemctl restart rgunicorn@demo.service
    rc=$?
    load_summary
    main2=$(prop MainPID rgunicorn@demo.service)
    if [ $rc = 0 ] && [ "$LOAD_OK" = 200 ] && [ "$main2" != "$main" ] && [ "$main2" != 0 ]; then
        pass "200/200 requests answered across systemctl restart, MainPID $main -> $main2"
    else
        fail "restart rc=$rc, $LOAD_OK/200 answered ($LOAD_FAIL failed), MainPID $main -> $main2"
    fi
}

check_journal() {
    GET -o /dev/null -H 'X-Request-Id: package-check-7' -H 'User-Agent: package.sh' \
        'http://localhost/?probe=journal'
    sleep 0.5
    CT journalctl --sync 2>/dev/null
    CT journalctl -u rgunicorn@demo -o json --no-pager >"$WORK/journal.json"
    local verdict
    verdict=$(python3 - "$WORK/journal.json" <<'PY'
import json, sys
entries = [json.loads(l) for l in open(sys.argv[1], encoding="utf-8", errors="replace") if l.strip()]
hits = [e for e in entries if e.get("REQUEST_URI") == "/?probe=journal"]
if not hits:
    print("no access entry with REQUEST_URI=/?probe=journal")
    sys.exit()
e = hits[-1]
want = {"REQUEST_METHOD": "GET", "STATUS": "200", "REQUEST_ID": "package-check-7",
        "USER_AGENT": "package.sh", "SYSLOG_IDENTIFIER": "rgunicorn", "_TRANSPORT": "journal"}
bad = [f"{k}={e.get(k)!r}" for k, v in want.items() if e.get(k) != v]
bad += [f"{k}={e.get(k)!r}" for k in ("DURATION_US", "RESPONSE_BYTES", "WORKER_PID")
        if not str(e.get(k, "")).isdigit()]
fields = " ".join(f"{k}={e.get(k)}" for k in ("REQUEST_METHOD", "REQUEST_URI", "STATUS",
                  "RESPONSE_BYTES", "DURATION_US", "WORKER_PID", "REQUEST_ID"))
print(("OK " if not bad else "BAD " + ", ".join(bad) + " in ") + fields)
PY
)
    case "$verdict" in
        OK*) pass "journalctl -u rgunicorn@demo: ${verdict#OK }" ;;
        *) fail "$verdict" ;;
    esac
}

check_nginx() {
    local conf
    conf=$(readme_block nginx)
    [ -n "$conf" ] || { fail "README.md has no block tagged package.sh: nginx"; return; }
    command -v nginx >/dev/null || { fail "nginx is not installed (.ci/install-deps installs it)"; return; }
    printf '%s\n' "$conf" | put 0644 /etc/nginx/sites-available/demo
    CT ln -sf /etc/nginx/sites-available/demo /etc/nginx/sites-enabled/demo
    if ! CT nginx -t >"$WORK/nginx.out" 2>&1 || ! CT nginx >>"$WORK/nginx.out" 2>&1; then
        sed 's/^/    /' "$WORK/nginx.out"
        fail "nginx refused README's server block"
        return
    fi
    local body keepalive
    body=$(CT curl -sS -m 10 -H 'Host: demo.example.org' http://127.0.0.1/)
    # Two requests on one client connection, through nginx's upstream pool.
    keepalive=$(CT curl -sS -m 10 -H 'Host: demo.example.org' http://127.0.0.1/ http://127.0.0.1/ |
        grep -c "^$LOAD_EXPECT")
    CT nginx -s quit
    if [[ "$body" == "$LOAD_EXPECT"* ]] && [ "$keepalive" = 2 ]; then
        pass "README's nginx block: nginx -t accepts it; the app answered '$body' through nginx and $SOCK"
    else
        sed 's/^/    /' "$WORK/nginx.out"
        fail "through nginx: '$body', $keepalive/2 on one connection"
    fi
}

check_upgrade() {
    local main main2 ino ino2 rc deb
    deb=$PAYLOAD/target/packages/$(basename "$DEB")
    main=$(prop MainPID rgunicorn@demo.service)
    ino=$(CT stat -c %i "$SOCK")
    load_start 200 --unix-socket "$SOCK" http://localhost/
    load_reach 30 || { fail "the client loop stalled before the upgrade"; wait "$LOAD_PID"; return; }
    CT_TIMEOUT=120 CT dpkg -i "$deb" >"$WORK/upgrade.out" 2>&1
    rc=$?
    load_summary
    wait_prop ActiveState rgunicorn@demo.service active 10
    main2=$(prop MainPID rgunicorn@demo.service)
    ino2=$(CT stat -c %i "$SOCK")
    if [ $rc = 0 ] && [ "$LOAD_OK" = 200 ] && [ "$main2" != "$main" ] && [ "$main2" != 0 ] &&
        [ "$ino2" = "$ino" ]; then
        pass "dpkg -i over itself: MainPID $main -> $main2 (restarted), socket inode $ino kept, 200/200 answered"
    else
        sed 's/^/    /' "$WORK/upgrade.out"
        fail "dpkg -i rc=$rc, $LOAD_OK/200 answered ($LOAD_FAIL failed), MainPID $main -> $main2, socket inode $ino -> $ino2"
    fi
}

check_remove() {
    local active procs problems=()
    CT_TIMEOUT=120 CT apt-get remove -y -q rgunicorn >"$WORK/remove.out" 2>&1 ||
        { sed 's/^/    /' "$WORK/remove.out"; fail "apt-get remove failed"; return; }
    active=$(active_rgunicorn_units)
    [ -z "$active" ] || problems+=("still active: $active")
    procs=$(CT ps -e -o comm= | grep -c '^rgunicorn')
    [ "$procs" = 0 ] || problems+=("$procs rgunicorn processes left")
    CT test -e "$SOCK" && problems+=("$SOCK still exists")
    CT test -e /usr/bin/rgunicorn && problems+=("/usr/bin/rgunicorn still installed")
    CT test -f /etc/rgunicorn/demo.conf || problems+=("the admin's /etc/rgunicorn/demo.conf was removed")
    if [ ${#problems[@]} = 0 ]; then
        pass "apt-get remove: no rgunicorn unit or process running, socket gone, demo.conf kept"
    else
        fail "$(printf '%s; ' "${problems[@]}")"
    fi
}

run_checks package
