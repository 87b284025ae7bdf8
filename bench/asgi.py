"""Side-by-side ASGI benchmark: `rgunicorn -k asgi` against Gunicorn's own
ASGI worker (`gunicorn -k asgi`), Uvicorn and Granian (`--interface asgi`) on
loopback, every server with the same number of workers, in the same run.

Run through bench/asgi.sh, which installs the peers first:

    sh bench/asgi.sh                # 2 repetitions of 6 s per server and workload
    sh bench/asgi.sh --quick        # smoke: 1 repetition of 2 s
    sh bench/asgi.sh --help         # every option

Workloads: a bare ASGI 3 hello (bench/apps/asgi_hello.py) and a FastAPI JSON
route (bench/apps/fastapi_json.py), both keep-alive over 50 connections
(wrk -t1). For each it reports req/s, p99 latency and server CPU time per
request (user + system of the whole server process tree over the wrk run);
every response's status and body is checked (bench/check.lua) unless
--no-check. Servers alternate between repetitions so drift hits all alike;
the figure is the median. A server that does not start (rgunicorn before it
has `-k asgi`) is reported as failed and shown as `–`; the others carry on.
The markdown is printed and written to bench/asgi-results.md.

Shares its helpers with bench/run.py (wrk and its parsing, the process-tree
CPU time, the machine description).
"""

import argparse
import importlib.util
import os
import shutil
import signal
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import run  # noqa: E402  (bench/run.py)
from run import APPS, BENCH, ROOT, VENV, Workload, log, measured, wrk  # noqa: E402

# The binary the release build produced: cargo honours CARGO_TARGET_DIR, so
# does this (RGUNICORN names another binary outright).
RGUNICORN = os.environ.get("RGUNICORN") or os.path.join(
    os.environ.get("CARGO_TARGET_DIR") or os.path.join(ROOT, "target"), "release", "rgunicorn")

WORKLOADS = [
    Workload("hello", "bare ASGI hello keep-alive", "asgi_hello:app", expect=b"Hello, World!"),
    Workload("fastapi", "FastAPI JSON keep-alive", "fastapi_json:app", path="/json",
             expect=b'{"message":"Hello, World!"}'),
]
SERVERS = ["gunicorn", "uvicorn", "granian", "rgunicorn"]
TITLES = {"gunicorn": "Gunicorn -k asgi", "uvicorn": "Uvicorn", "granian": "Granian",
          "rgunicorn": "rgunicorn -k asgi"}


def have(module):
    """Whether `module` is importable here (asgi.py runs on bench/.venv's python)."""
    return importlib.util.find_spec(module) is not None


class AsgiServer(run.Server):
    """One ASGI server process tree on 127.0.0.1:port (run.Server's start,
    readiness wait and stop; ASGI command lines)."""

    def __init__(self, kind, app, port, workers, loop, tmp):
        self.loop = loop
        super().__init__(kind, app, port, workers, (), tmp)

    def command(self, kind, app, port, workers, extra):
        bind, loop = f"127.0.0.1:{port}", self.loop
        if kind == "rgunicorn":
            # As bench/run.py starts it for WSGI (no access log is the default).
            return [RGUNICORN, "-k", "asgi", "-w", str(workers), "-b", bind, "--chdir", APPS,
                    "--virtualenv", os.path.dirname(VENV), "--asgi-loop", loop, app], APPS
        if kind == "gunicorn":
            return [f"{VENV}/gunicorn", "-k", "asgi", "-w", str(workers), "-b", bind,
                    "--chdir", APPS, "--asgi-loop", loop, app], APPS
        if kind == "uvicorn":
            return [f"{VENV}/uvicorn", "--workers", str(workers), "--no-access-log",
                    "--host", "127.0.0.1", "--port", str(port), "--app-dir", APPS,
                    "--loop", loop, app], APPS
        if kind == "granian":
            return [f"{VENV}/granian", "--interface", "asgi", "--workers", str(workers),
                    "--host", "127.0.0.1", "--port", str(port), "--no-ws", "--loop", loop,
                    app], APPS
        raise ValueError(kind)

    def wait_ready(self):
        try:
            super().wait_ready()
        except RuntimeError:
            self.kill()
            raise

    def kill(self):
        """Ends whatever is left of a server that did not come up."""
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.proc.wait()
        self.log.close()


def log_tail(path, n=3):
    try:
        with open(path, "rb") as f:
            lines = [l.strip() for l in f.read().decode(errors="replace").splitlines() if l.strip()]
    except OSError:
        return ""
    return " | ".join(lines[-n:])


class Bench(run.Results):
    def __init__(self, args):
        self.args = args
        self.tmp = tempfile.mkdtemp(prefix="rgunicorn-bench-asgi-")
        self.port = 18600
        self.results = {}  # (workload, server) -> list of runs
        self.failed = {}   # (workload, server) -> why it did not start

    def one_run(self, kind, wl):
        self.port += 1
        srv = AsgiServer(kind, wl.app, self.port, self.args.workers, self.args.loop, self.tmp)
        try:
            url = f"http://127.0.0.1:{srv.port}{wl.path}"
            # Warm-up (imports, caches, connection set-up), then measure.
            wrk(url, wl, 1, wl.conns, False, self.tmp)
            return measured(srv, url, wl, self.args, self.tmp)
        finally:
            srv.stop()

    def throughput(self):
        for rep, wl, kind in self.rounds(SERVERS, lambda wl, kind: (wl.name, kind) in self.failed):
            try:
                r = self.one_run(kind, wl)
            except (RuntimeError, OSError) as e:
                why = log_tail(os.path.join(self.tmp, f"{kind}-{self.port}.log")) or str(e)
                self.failed[(wl.name, kind)] = why
                log(f"rep {rep + 1} {wl.name:8} {kind:9} FAILED TO START: {why}")
                continue
            self.record(rep, wl, kind, r)

    def workloads(self):
        # This harness's own workload list.
        return [w for w in WORKLOADS if w.name in self.args.workloads]


# ------------------------------------------------------------------ report

def versions():
    """Every server's version, FastAPI's and Starlette's."""
    out = run.tool_versions((("rgunicorn", [RGUNICORN, "--version"]),
                             ("Gunicorn", [f"{VENV}/gunicorn", "--version"]),
                             ("Granian", [f"{VENV}/granian", "--version"]),
                             ("wrk", ["wrk", "-v"])))
    if not os.access(RGUNICORN, os.X_OK):
        out.insert(0, f"rgunicorn not built ({RGUNICORN})")
    import importlib.metadata as md  # noqa: PLC0415
    for name in ("uvicorn", "fastapi", "starlette"):
        try:
            out.append(f"{name.capitalize() if name == 'uvicorn' else name} {md.version(name)}")
        except md.PackageNotFoundError:
            out.append(f"{name} not installed")
    return out


def stacks(loop, workers):
    """How each server runs the app: event loop and HTTP parser."""
    gunicorn_parser = ("gunicorn_h1c (C)" if have("gunicorn_h1c")
                       else "pure-Python parser (gunicorn_h1c not installed)")
    uvicorn_http = ("httptools" if have("httptools")
                    else "h11 (httptools not installed)")
    extras = ", ".join(f"{m} {'installed' if have(m) else 'not installed'}"
                       for m in ("uvloop", "httptools"))
    return {
        "gunicorn": f"`--asgi-loop {loop}`, {gunicorn_parser}",
        "uvicorn": f"`--loop {loop}`, `--http auto` = {uvicorn_http} (plain `uvicorn`, {extras})"
                   + ("" if workers < 2 else
                      "; with `--workers` > 1 its accepted sockets miss TCP_NODELAY (the "
                      "listener it binds has proto 0, so asyncio skips it: Kludex/uvicorn#3149), "
                      "so each "
                      "keep-alive response waits ~40 ms for the client's delayed ACK and req/s "
                      "stays near connections / 40 ms whatever the CPU"),
        "granian": f"`--loop {loop}`, its Rust (hyper) HTTP stack, `--no-ws`",
        "rgunicorn": f"`--asgi-loop {loop}`, its own Rust HTTP stack (mio event loop, httparse)",
    }


def fmt(v, spec="{:,.0f}"):
    return "–" if v is None else spec.format(v)


def report(b):
    servers = [s for s in SERVERS if s in b.args.servers]
    wls = b.workloads()
    head = "| workload | " + " | ".join(TITLES[s] for s in servers) + " |"
    rule = "|---" * (len(servers) + 1) + "|"
    lines = [f"Measured {time.strftime('%Y-%m-%d')} on {run.host()}; "
             + ", ".join(versions()) + ". "
             f"wrk -t1 -c50 on loopback, keep-alive, W={b.args.workers} for every server, "
             f"median of {b.args.reps} run(s) of {b.args.secs} s, servers alternating, every server "
             f"in the same run{', every response body checked' if b.args.check else ''}.", ""]
    lines += [f"- {TITLES[s]}: {how}" for s, how in stacks(b.args.loop, b.args.workers).items() if s in servers]
    lines += ["", "req/s (p99 ms):", "", head, rule]
    for wl in wls:
        cells = [b.rate_cell(wl.name, s) for s in servers]
        lines.append(f"| {wl.label} | " + " | ".join(cells) + " |")
    lines += ["", "Server CPU time per request (µs, user + system of the whole process tree):",
              "", head, rule]
    for wl in wls:
        lines.append(f"| {wl.label} | " + " | ".join(
            fmt(b.median(wl.name, s, "cpu_us"), "{:.1f}") for s in servers) + " |")
    peers = [s for s in servers if s != "rgunicorn"]
    if "rgunicorn" in servers and peers:
        lines += ["", "rgunicorn relative to each peer (req/s ratio, above 1 is better; CPU per "
                  "request ratio, below 1 is better; p99 ratio, below 1 is better):", "",
                  "| workload | " + " | ".join(TITLES[s] for s in peers) + " |",
                  "|---" * (len(peers) + 1) + "|"]
        for wl in wls:
            cells = [b.ratio_cell(wl.name, s) for s in peers]
            lines.append(f"| {wl.label} | " + " | ".join(cells) + " |")
    if b.failed:
        lines += [""] + [f"- **{TITLES[s]} failed to start** ({w}): {why}"
                         for (w, s), why in b.failed.items()]
    lines += ["", goal(b)]
    return "\n".join(lines) + "\n"


def goal(b):
    """rgunicorn's req/s ahead of Granian's on both workloads."""
    desc = "Goal: rgunicorn -k asgi ahead of Granian in req/s on both workloads"
    if "rgunicorn" not in b.args.servers or "granian" not in b.args.servers:
        return f"{desc}: not measured (needs both in --servers)."
    parts, ok = [], True
    for wl in WORKLOADS:
        mine, theirs = b.median(wl.name, "rgunicorn", "rps"), b.median(wl.name, "granian", "rps")
        if wl.name not in b.args.workloads or not mine or not theirs:
            ok = False
            parts.append(f"{wl.name}: " + ("rgunicorn did not run" if not mine
                                           else "Granian did not run"))
            continue
        ok = ok and mine > theirs
        parts.append(f"{wl.name} {mine:,.0f} vs {theirs:,.0f} ({mine / theirs:.2f}×)")
    return f"{desc}: **{'holds' if ok else 'MISSED'}** — " + "; ".join(parts) + "."


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="1 repetition of 2 s (smoke)")
    p.add_argument("--secs", type=int, default=6, help="seconds per measured run (default 6)")
    p.add_argument("--reps", type=int, default=2, help="repetitions (default 2)")
    p.add_argument("--workers", type=int, default=2, help="workers per server (default 2)")
    p.add_argument("--servers", default=",".join(SERVERS),
                   help=f"comma-separated subset of {','.join(SERVERS)}")
    p.add_argument("--workloads", default=",".join(w.name for w in WORKLOADS),
                   help=f"comma-separated subset of {','.join(w.name for w in WORKLOADS)}")
    p.add_argument("--loop", default="asyncio", choices=["asyncio", "uvloop"],
                   help="event loop of Gunicorn, Uvicorn and Granian (default asyncio; "
                        "uvloop must be installed in bench/.venv)")
    p.add_argument("--no-check", dest="check", action="store_false",
                   help="don't check response bodies (wrk's Lua callback costs ~10%% of its ceiling)")
    p.add_argument("--out", default=os.path.join(BENCH, "asgi-results.md"))
    args = p.parse_args()
    if args.quick:
        args.secs, args.reps = 2, 1
    args.servers = args.servers.split(",")
    args.workloads = args.workloads.split(",")
    unknown = [s for s in args.servers if s not in SERVERS] + [
        w for w in args.workloads if w not in {x.name for x in WORKLOADS}]
    if unknown:
        p.error(f"unknown server or workload: {', '.join(unknown)}")
    b = Bench(args)
    try:
        b.throughput()
    finally:
        shutil.rmtree(b.tmp, ignore_errors=True)
    text = report(b)
    with open(args.out, "w") as f:
        f.write(text)
    print(text)
    if not b.results:
        log("failed: no server started")
        sys.exit(1)
    # The CI smoke's contract: rgunicorn ran every workload, and no response
    # of any server failed its check.
    missing = [w for w in args.workloads
               if "rgunicorn" in args.servers and not b.results.get((w, "rgunicorn"))]
    errors = sum(r["errors"] for rs in b.results.values() for r in rs)
    if missing or errors:
        log(f"failed: rgunicorn did not run {missing or 'nothing missing'}; {errors} bad responses")
        sys.exit(1)


if __name__ == "__main__":
    main()
