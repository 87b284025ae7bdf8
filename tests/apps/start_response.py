"""Legal but less common start_response uses (PEP 3333).

/write: the legacy write() callable, then an iterable.
/exc-info: replace the status with exc_info before anything is sent.
/log: write to wsgi.errors, which must reach the error log.
"""

import sys


def app(environ, start_response):
    path = environ.get("PATH_INFO")
    if path == "/write":
        write = start_response("200 OK", [("Content-Type", "text/plain")])
        write(b"written, ")
        return [b"then returned\n"]
    if path == "/exc-info":
        start_response("200 OK", [("Content-Type", "text/plain")])
        try:
            raise ValueError("changed my mind")
        except ValueError:
            start_response(
                "503 Service Unavailable",
                [("Content-Type", "text/plain"), ("Retry-After", "7")],
                sys.exc_info(),
            )
        return [b"replaced\n"]
    if path == "/log":
        environ["wsgi.errors"].write("message from wsgi.errors\n")
        environ["wsgi.errors"].flush()
        start_response("204 No Content", [])
        return []
    start_response("404 Not Found", [("Content-Type", "text/plain")])
    return [b"unknown path\n"]
