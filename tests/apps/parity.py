"""What real WSGI apps do that Gunicorn serves: streaming, no-body statuses,
unread bodies, the connection socket, early hints, failed body reads.

Routes by PATH_INFO; each block a streaming route yields names the wall-clock
time it was yielded, so the test can measure how late it arrived.
"""

import json
import sys
import time

KEPT = {}


def sse(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/event-stream")])
    for n in range(4):
        if n:
            time.sleep(0.5)
        yield b"data: %d %.6f\n\n" % (n, time.time())


def big_blocks(environ, start_response):
    """Blocks too large for the socket buffers of a slow reader."""
    start_response("200 OK", [("Content-Type", "application/octet-stream")])
    for n in range(4):
        if n:
            time.sleep(0.4)
        head = b"block %d t=%.6f\n" % (n, time.time())
        yield head + b"x" * (200 * 1024 - len(head))


def no_body(environ, start_response):
    status = environ["QUERY_STRING"] or "204"
    reason = {"204": "No Content", "304": "Not Modified", "200": "OK"}[status]
    start_response(
        "%s %s" % (status, reason),
        [("Content-Length", "5"), ("Content-Type", "text/plain")],
    )
    return [b"hello"]


def refuse(environ, start_response):
    start_response("405 Method Not Allowed", [("Content-Type", "text/plain")])
    return [b"not here\n"]


def server_address(environ, start_response):
    body = json.dumps({k: environ[k] for k in ("SERVER_NAME", "SERVER_PORT")})
    start_response("200 OK", [("Content-Type", "application/json")])
    return [body.encode()]


def connection_socket(environ, start_response):
    sock = environ["gunicorn.socket"]
    KEPT["sock"] = sock
    dup = sock.dup()
    facts = {
        "peer": list(sock.getpeername()),
        "local": list(sock.getsockname()),
        "fileno": sock.fileno(),
        "family": sock.family.name,
        "type": sock.type.name,
        "nodelay": sock.getsockopt(6, 1),  # IPPROTO_TCP, TCP_NODELAY
        "dup_peer": list(dup.getpeername()),
        "remote": [environ["REMOTE_ADDR"], int(environ["REMOTE_PORT"])],
    }
    dup.close()
    start_response("200 OK", [("Content-Type", "application/json")])
    return [json.dumps(facts).encode()]


def stale_socket(environ, start_response):
    try:
        KEPT["sock"].fileno()
        result = "usable"
    except OSError as e:
        result = "closed: %s" % type(e).__name__
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [result.encode()]


def hints(environ, start_response):
    environ["wsgi.early_hints"]([("Link", "</style.css>; rel=preload; as=style")])
    time.sleep(0.3)
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"after hints\n"]


def read_body(environ, start_response):
    try:
        data = environ["wsgi.input"].read()
    except OSError as e:
        sys.stderr.write("caught %s: %s\n" % (type(e).__name__, e))
        sys.stderr.flush()
        raise
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"%d\n" % len(data)]


def protocol(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [environ["SERVER_PROTOCOL"].encode()]


ROUTES = {
    "/sse": sse,
    "/big-blocks": big_blocks,
    "/no-body": no_body,
    "/refuse": refuse,
    "/server": server_address,
    "/socket": connection_socket,
    "/stale-socket": stale_socket,
    "/hints": hints,
    "/read": read_body,
    "/protocol": protocol,
}


def app(environ, start_response):
    return ROUTES[environ["PATH_INFO"]](environ, start_response)
