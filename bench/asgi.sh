#!/bin/sh
# Side-by-side ASGI benchmark: `rgunicorn -k asgi` against Gunicorn's ASGI
# worker (`gunicorn -k asgi`), Uvicorn and Granian (`--interface asgi`), 2
# workers each, on a bare ASGI hello and a FastAPI JSON route. Installs the
# peers, builds rgunicorn in release mode (when it is among --servers) and
# runs bench/asgi.py, which prints markdown tables and writes them to
# bench/asgi-results.md. Loopback only.
#
#   sh bench/asgi.sh            # full: 2 repetitions of 6 s per server and workload
#   sh bench/asgi.sh --quick    # smoke: 1 repetition of 2 s
#   sh bench/asgi.sh --help     # every option
#   sh bench/asgi.sh --quick --servers gunicorn,uvicorn,granian   # no rgunicorn build
#
# Installs by itself: wrk and libev-dev (for bjoern) from apt; the packages
# bench/run.sh puts into bench/.venv (Gunicorn, Granian, bjoern, Flask) plus
# FastAPI and plain Uvicorn (no uvloop, no httptools: asyncio and h11), from
# the python3 that rgunicorn embeds, so every server runs the same
# interpreter. Honours CARGO_TARGET_DIR for the rgunicorn binary.
set -eu
cd "$(dirname "$0")/.."
PY=${PYO3_PYTHON:-python3}
for arg in "$@"; do
    case $arg in -h|--help) exec "$PY" bench/asgi.py --help ;; esac
done
SUDO=""; [ "$(id -u)" = 0 ] || SUDO=sudo
need=""
for pkg in wrk libev-dev; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "ok installed" || need="$need $pkg"
done
if [ -n "$need" ]; then
    $SUDO apt-get update -q
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q $need
fi
[ -x bench/.venv/bin/python ] || "$PY" -m venv bench/.venv
bench/.venv/bin/python -c "import gunicorn, granian, bjoern, flask, fastapi, uvicorn" 2>/dev/null ||
    bench/.venv/bin/pip install -q gunicorn granian bjoern flask fastapi uvicorn
# --loop uvloop runs every server on uvloop: install it then.
case " $* " in *" uvloop "*|*"=uvloop "*)
    bench/.venv/bin/python -c "import uvloop" 2>/dev/null || bench/.venv/bin/pip install -q uvloop ;;
esac
# rgunicorn is built only when it is benchmarked (the default).
servers=rgunicorn; prev=""
for arg in "$@"; do
    case $arg in --servers=*) servers=${arg#--servers=} ;; esac
    [ "$prev" = --servers ] && servers=$arg
    prev=$arg
done
case ",$servers," in *,rgunicorn,*) cargo build --release -q ;; esac
exec bench/.venv/bin/python bench/asgi.py "$@"
