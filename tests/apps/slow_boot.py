"""Takes 1.5 s to import, so READY=1 must wait for it."""

import time

time.sleep(1.5)

BODY = b"booted\n"


def app(environ, start_response):
    start_response(
        "200 OK",
        [("Content-Type", "text/plain"), ("Content-Length", str(len(BODY)))],
    )
    return [BODY]
