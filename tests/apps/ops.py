"""Operations test app: answers with a chosen status, sleeps, or grows.

Paths:
  /status/NNN          answer with status NNN
  /sleep?s=SECONDS     sleep, then 200
  /grow?mb=N           allocate N MiB (touched, kept for the worker's life), 200
  /log?msg=TEXT        log TEXT through Flask-style logging to gunicorn.error, 200
  /print?msg=TEXT      print TEXT to stdout and TEXT-err to stderr, 200
  anything else        200 "ok"
Boot delay: OPS_BOOT_SLEEP seconds at import (for reload tests).
"""

import logging
import os
import sys
import time
from urllib.parse import parse_qs

time.sleep(float(os.environ.get("OPS_BOOT_SLEEP", "0")))

KEPT = []
REASONS = {200: "OK", 302: "Found", 404: "Not Found", 500: "Internal Server Error"}


def app(environ, start_response):
    path = environ.get("PATH_INFO", "/")
    qs = parse_qs(environ.get("QUERY_STRING", ""))
    status = 200
    headers = [("Content-Type", "text/plain")]
    if path.startswith("/status/"):
        status = int(path[len("/status/"):])
        if status == 302:
            headers.append(("Location", "/"))
    elif path == "/sleep":
        time.sleep(float(qs.get("s", ["1"])[0]))
    elif path == "/grow":
        block = bytearray(int(qs.get("mb", ["1"])[0]) << 20)
        for i in range(0, len(block), 4096):
            block[i] = 1
        KEPT.append(block)
    elif path == "/print":
        msg = qs.get("msg", ["hi"])[0]
        print(msg, flush=True)
        sys.stderr.write(msg + "-err\n")
        sys.stderr.flush()
    elif path == "/log":
        logging.getLogger("gunicorn.error").warning(qs.get("msg", ["hi"])[0])
    body = b"ok\n"
    headers.append(("Content-Length", str(len(body))))
    start_response("%d %s" % (status, REASONS.get(status, "Other")), headers)
    return [body]
