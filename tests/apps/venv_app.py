"""Imports a module that exists only inside the test's virtualenv."""

import only_in_venv

BODY = only_in_venv.VALUE.encode()


def app(environ, start_response):
    start_response(
        "200 OK",
        [("Content-Type", "text/plain"), ("Content-Length", str(len(BODY)))],
    )
    return [BODY]
