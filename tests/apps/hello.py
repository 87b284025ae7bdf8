"""Smallest WSGI app: a fixed body with an exact Content-Length."""

BODY = b"Hello, World!\n"


def app(environ, start_response):
    start_response(
        "200 OK",
        [("Content-Type", "text/plain"), ("Content-Length", str(len(BODY)))],
    )
    return [BODY]


# `rgunicorn hello` (no attribute) must find this default name.
application = app
