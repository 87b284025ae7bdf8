"""Breaks the start_response contract (PEP 3333) in one way per path.

Every path must become a 500 without leaking the app's headers or body;
anything else gets hello.
"""


def app(environ, start_response):
    path = environ.get("PATH_INFO")
    if path == "/bad-status":
        start_response("abc", [("Content-Type", "text/plain")])
        return [b"never sent\n"]
    if path == "/newline-header":
        start_response("200 OK", [("X-Bad", "a\r\nX-Injected: 1")])
        return [b"never sent\n"]
    if path == "/bad-header-name":
        start_response("200 OK", [("X Bad", "v")])
        return [b"never sent\n"]
    if path == "/non-str-header":
        start_response("200 OK", [("X-Number", 5)])
        return [b"never sent\n"]
    if path == "/str-body":
        start_response("200 OK", [("Content-Type", "text/plain")])
        return ["a str, not bytes\n"]
    if path == "/no-start-response":
        return [b"never sent\n"]
    if path == "/double-start":
        start_response("200 OK", [("Content-Type", "text/plain")])
        start_response("201 Created", [("Content-Type", "text/plain")])
        return [b"never sent\n"]
    body = b"Hello, World!\n"
    start_response(
        "200 OK",
        [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))],
    )
    return [body]
