"""Responses of 1 KiB, 64 KiB and 1 MiB (bench/run.py workloads `1k`, `64k`,
`1m`), as bytes from memory, and `/file1m` as a wsgi.file_wrapper over a file
(sent with sendfile(2) by servers that can)."""

import os
import tempfile

SIZES = {"/1k": 1024, "/64k": 64 * 1024, "/1m": 1024 * 1024}
BODIES = {path: b"x" * n for path, n in SIZES.items()}
FILE = os.path.join(tempfile.gettempdir(), "rgunicorn-bench-1m.bin")
if not os.path.exists(FILE) or os.path.getsize(FILE) != SIZES["/1m"]:
    with open(FILE + ".tmp", "wb") as f:
        f.write(BODIES["/1m"])
    os.replace(FILE + ".tmp", FILE)


def app(environ, start_response):
    path = environ["PATH_INFO"]
    if path == "/file1m":
        start_response(
            "200 OK",
            [("Content-Type", "application/octet-stream"), ("Content-Length", str(SIZES["/1m"]))],
        )
        f = open(FILE, "rb")
        wrapper = environ.get("wsgi.file_wrapper")
        return wrapper(f, 65536) if wrapper else iter(lambda: f.read(65536), b"")
    body = BODIES.get(path)
    if body is None:
        start_response("404 Not Found", [("Content-Length", "0")])
        return [b""]
    start_response(
        "200 OK", [("Content-Type", "application/octet-stream"), ("Content-Length", str(len(body)))]
    )
    return [body]
