"""Sleeps, then answers "slept N".

Query: sleep=SECONDS (float), marker=PATH (optional). When marker is given the
file is created as the request starts, so a test knows the request is in
flight without guessing.
"""

import time
from urllib.parse import parse_qs


def app(environ, start_response):
    qs = parse_qs(environ.get("QUERY_STRING", ""))
    seconds = float(qs.get("sleep", ["1"])[0])
    marker = qs.get("marker", [None])[0]
    if marker:
        with open(marker, "w") as f:
            f.write("started\n")
    time.sleep(seconds)
    body = ("slept %g\n" % seconds).encode()
    start_response(
        "200 OK",
        [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))],
    )
    return [body]
