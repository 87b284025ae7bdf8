"""Waits 10 ms per request, as an app blocked on a database would
(bench/run.py workload `sleep10`, bench/threads.sh)."""

import time


def app(environ, start_response):
    time.sleep(0.01)
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", "3")])
    return [b"ok\n"]
