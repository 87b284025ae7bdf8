"""Declares a Content-Length that the body doesn't match.

/short: declares 100, sends 10. /long: declares 5, sends 10.
"""


def app(environ, start_response):
    body = b"0123456789"
    declared = {"/short": "100", "/long": "5"}.get(environ.get("PATH_INFO"), "10")
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", declared)])
    return [body]
