# tests/systemd/container.sh: a throw-away systemd 252 for the end-to-end
# checks, sourced by run.sh (the binary and units from this tree) and
# package.sh (the built .deb).
#
# container_boot starts systemd as PID 1 in a systemd-nspawn container whose
# root is a volatile overlay of the host's own root file system, with no
# network. The host is left as it was: all mounts happen in a private mount
# namespace, the container writes only to a tmpfs overlay, and the child
# cgroups and work directory are removed on exit, whatever happens (trap).
#
# The sourcing script sets ALL_CHECKS and CHECKS, defines check_NAME for each
# check, and calls: host_packages, container_boot, then run_checks.
#
# Env read here:
#   SKIP_APT=1        never call apt-get
#   KEEP=1            leave the container running; prints how to enter it
#   MAX_LIFETIME=900  hard limit in seconds for the container

MACHINE=rgunicorn-test-$$
MAX_LIFETIME=${MAX_LIFETIME:-900}
PAYLOAD=/var/lib/rgunicorn-test # inside the container (its /tmp is private)
export LC_ALL=C SYSTEMD_PAGER= SYSTEMD_COLORS=0 DEBIAN_FRONTEND=noninteractive

log() { printf '[%s] %s\n' "$(date +%T)" "$*"; }
PASSED=0 FAILED=0 FATAL=0
RESULTS=()
pass() { PASSED=$((PASSED + 1)); RESULTS+=("PASS $CHECK: $*"); log "PASS $CHECK: $*"; }
fail() { FAILED=$((FAILED + 1)); RESULTS+=("FAIL $CHECK: $*"); log "FAIL $CHECK: $*"; }
die() { FATAL=1; log "FATAL: $*"; exit 2; }

# Checks the CHECKS words against ALL_CHECKS, and that we are root.
validate_checks() {
    local c
    for c in $CHECKS; do
        case " $ALL_CHECKS " in *" $c "*) ;; *) die "unknown check '$c' (known: $ALL_CHECKS)" ;; esac
    done
    [ "$(id -u)" = 0 ] || die "must run as root (systemd-nspawn)"
}

# host_packages PKG...: apt-get install the host packages given (and
# systemd-container, curl) that are missing. The container sees the host's
# root, so what is installed here is installed there.
host_packages() {
    local need=() p pkgs=() sdver
    command -v systemd-nspawn >/dev/null || need+=(systemd-container)
    command -v curl >/dev/null || need+=(curl)
    for p in "$@"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || need+=("$p")
    done
    if [ ${#need[@]} -gt 0 ]; then
        [ "${SKIP_APT:-0}" = 1 ] && die "missing ${need[*]} and SKIP_APT=1"
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
    for p in systemd-nspawn nsenter unshare setsid timeout mountpoint curl; do
        command -v "$p" >/dev/null || die "missing $p"
    done
}

# --------------------------------------------------------------------------
# Boot
# --------------------------------------------------------------------------

NSPAWN_PID="" LEADER="" LAUNCH_PID="" WORK=""
RUN_SYSTEMD_CREATED=0
is_our_nspawn() { [ -n "$NSPAWN_PID" ] && [ "$(cat /proc/"$NSPAWN_PID"/comm 2>/dev/null)" = systemd-nspawn ]; }

container_cleanup() {
    set +e
    [ -n "$WORK" ] || return
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

# Sets WORK (a host directory for the run's files) and LEADER (the host pid
# of the container's PID 1), and waits until systemd is up.
container_boot() {
    WORK=$(mktemp -d /var/tmp/rgunicorn-systemd.XXXXXX) || die "mktemp"
    mkdir -p "$WORK/root"
    [ -d /run/systemd ] || RUN_SYSTEMD_CREATED=1
    trap container_cleanup EXIT
    trap 'exit 130' INT TERM

    # Boot only the systemd core: units the host enabled (ssh, cron, ...) are masked.
    local init_args=() u
    for u in $(find /etc/systemd/system -mindepth 2 -maxdepth 2 -path '*.wants/*' -printf '%f\n' | sort -u); do
        init_args+=("systemd.mask=$u")
    done
    local nspawn_args=(--directory="$WORK/root" --volatile=overlay --boot --register=no --keep-unit
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
exec systemd-nspawn $(printf '%q ' "${nspawn_args[@]}") $(printf '%q ' "${init_args[@]}")
EOF

    log "booting systemd in container $MACHINE"
    setsid -w timeout -k 10 "$MAX_LIFETIME" unshare -m --propagation private /bin/sh "$WORK/launch.sh" \
        </dev/null >"$WORK/console.log" 2>&1 &
    LAUNCH_PID=$!
    local c
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

    for _ in $(seq 1 300); do
        timeout 5 nsenter -t "$LEADER" -m -- test -S /run/systemd/private && break
        sleep 0.1
    done
    local state
    state=$(CT_TIMEOUT=120 CT systemctl is-system-running --wait 2>&1)
    case "$state" in
        running) log "container up (PID 1 is host pid $LEADER)" ;;
        degraded) log "container degraded:"; CT systemctl --failed --no-pager ;;
        *) tail -30 "$WORK/console.log"; die "container did not boot ($state)" ;;
    esac
}

# --------------------------------------------------------------------------
# Talking to the container
# --------------------------------------------------------------------------

# Run a command in the container (all its namespaces), bounded in time.
CT() { timeout "${CT_TIMEOUT:-30}" nsenter -t "$LEADER" -m -u -i -n -p -C -- "$@"; }
prop() { CT systemctl show -p "$1" --value "$2"; }
put() { # put MODE PATH < content
    CT sh -c "mkdir -p \"\$(dirname '$2')\" && cat > '$2' && chmod $1 '$2'"
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
# Sets LOAD_OK (lines starting with $LOAD_EXPECT, which the sourcing script
# may set first) and LOAD_FAIL.
LOAD_EXPECT=${LOAD_EXPECT:-Hello from rgunicorn}
load_summary() {
    wait "$LOAD_PID"
    LOAD_OK=$(grep -c "^$LOAD_EXPECT" "$WORK/load.out")
    LOAD_FAIL=$(grep -c '^FAIL' "$WORK/load.out")
}

# --------------------------------------------------------------------------
# Running the checks
# --------------------------------------------------------------------------

# Runs check_NAME for each NAME in CHECKS, prints the summary line
# (`LABEL: N passed, M failed`); returns 0 only when all passed.
run_checks() { # run_checks LABEL
    for CHECK in $CHECKS; do
        log "--- $CHECK"
        "check_$CHECK"
    done
    echo
    local r
    for r in "${RESULTS[@]}"; do echo "$r"; done
    echo "$1: $PASSED passed, $FAILED failed"
    [ "$FAILED" = 0 ] && [ "$PASSED" -gt 0 ]
}
