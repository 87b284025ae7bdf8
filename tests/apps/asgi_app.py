"""A hand-written ASGI 3 app (no framework), one route per behaviour the ASGI
worker tests check.

HTTP routes:
  /hello            fixed body with Content-Length
  /scope...         the scope as JSON (bytes shown as latin-1 strings), plus
                    the Python type of each value; then sets
                    scope["state"]["mutated"] so a test can see that the next
                    request's state is a fresh copy
  /echo             streams the request body back as it arrives (more_body)
  /body-info        reads the whole body; JSON: event count, length
  /stream?n=N       N chunks "chunk I\\n", no Content-Length
  /held             one chunk, then waits until GET /release, then the rest
  /release          releases /held
  /slow-stream?total=N  N chunks of 64 KiB with Content-Length; counts in
                    SENT how many `await send` calls have returned
  /progress         that count
  /disconnect       sends part of a response, then waits for http.disconnect
  /seen             "yes" once /disconnect saw http.disconnect, else "no"
  /late-receive     reads the body, answers, then calls receive() once more
                    (10 s bound)
  /late             what that receive() returned ("http.disconnect", ..)
  /pathsend[?file=PATH]  this file (or PATH), by http.response.pathsend
  /raise            raises before http.response.start
  /sleep?s=SECS&marker=PATH  reads the body, creates PATH, sleeps, answers
  /loop             the running event loop's class module and name
  /block            blocks the event loop (time.sleep(60) in the coroutine)
  /pid              the worker's pid

WebSocket routes:
  /ws               echo: text as text, bytes as bytes; "close:CODE" closes
                    with CODE; "scope" answers the scope as JSON text. Accepts
                    with the first offered subprotocol among chat.v1/chat.v2
  /ws-reject        websocket.close before accept (the server answers 403)

Lifespan: startup puts "greeting" in the state; with ASGI_LIFESPAN_LOG set,
startup, each finished HTTP request ("http PATH") and shutdown append a line
to that file, so a test can check their order.
"""

import asyncio
import json
import os
import time
from urllib.parse import parse_qs

CHUNK = 64 * 1024
SENT = {"count": 0}
SEEN = {"disconnect": False}
RELEASE = {"event": None}
SUBPROTOCOLS = ("chat.v1", "chat.v2")


def log(line):
    path = os.environ.get("ASGI_LIFESPAN_LOG")
    if path:
        with open(path, "a") as f:
            f.write(line + "\n")


def plain(value):
    """JSON-able copy of a scope value: bytes become latin-1 strings."""
    if isinstance(value, bytes):
        return value.decode("latin-1")
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    return repr(value)


def describe(scope):
    out = {k: plain(v) for k, v in scope.items()}
    out["types"] = {k: type(v).__name__ for k, v in scope.items()}
    out["header_types"] = sorted(
        {
            "%s(%s,%s)" % (type(h).__name__, type(h[0]).__name__, type(h[1]).__name__)
            for h in scope.get("headers", [])
        }
    )
    return out


def query(scope):
    return {
        k: v[0] for k, v in parse_qs(scope.get("query_string", b"").decode()).items()
    }


async def respond(send, status, body, content_type=b"text/plain"):
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", content_type),
                (b"content-length", str(len(body)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


async def read_body(receive):
    """The whole request body and how many http.request events carried it."""
    body, events = b"", 0
    while True:
        msg = await receive()
        if msg["type"] == "http.disconnect":
            break
        events += 1
        body += msg.get("body", b"")
        if not msg.get("more_body", False):
            break
    return body, events


async def lifespan(scope, receive, send):
    while True:
        msg = await receive()
        if msg["type"] == "lifespan.startup":
            if "state" in scope:
                scope["state"]["greeting"] = "hello from lifespan"
            log("startup")
            await send({"type": "lifespan.startup.complete"})
        elif msg["type"] == "lifespan.shutdown":
            log("shutdown")
            await send({"type": "lifespan.shutdown.complete"})
            return


async def websocket(scope, receive, send):
    msg = await receive()
    assert msg["type"] == "websocket.connect", msg
    if scope["path"] == "/ws-reject":
        await send({"type": "websocket.close", "code": 1008})
        return
    accept = {"type": "websocket.accept"}
    for proto in scope.get("subprotocols", []):
        if proto in SUBPROTOCOLS:
            accept["subprotocol"] = proto
            break
    await send(accept)
    while True:
        msg = await receive()
        if msg["type"] == "websocket.disconnect":
            return
        text = msg.get("text")
        if text is not None:
            if text.startswith("close:"):
                await send({"type": "websocket.close", "code": int(text[6:])})
                return
            if text == "scope":
                text = json.dumps(describe(scope))
            await send({"type": "websocket.send", "text": text})
        else:
            await send({"type": "websocket.send", "bytes": msg.get("bytes") or b""})


async def http(scope, receive, send):
    path = scope["path"]
    q = query(scope)
    if path == "/hello":
        await respond(send, 200, b"Hello, ASGI!\n")
    elif path.startswith("/scope"):
        body = json.dumps(describe(scope)).encode()
        if isinstance(scope.get("state"), dict):
            scope["state"]["mutated"] = True
        await respond(send, 200, body, b"application/json")
    elif path == "/echo":
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-type", b"application/octet-stream")],
            }
        )
        while True:
            msg = await receive()
            if msg["type"] == "http.disconnect":
                return
            more = msg.get("more_body", False)
            data = msg.get("body", b"")
            if data or not more:
                await send(
                    {"type": "http.response.body", "body": data, "more_body": more}
                )
            if not more:
                break
    elif path == "/body-info":
        body, events = await read_body(receive)
        info = {"events": events, "length": len(body)}
        await respond(send, 200, json.dumps(info).encode(), b"application/json")
    elif path == "/stream":
        n = int(q.get("n", "5"))
        await send({"type": "http.response.start", "status": 200, "headers": []})
        for i in range(n):
            chunk = b"chunk %d\n" % i
            await send({"type": "http.response.body", "body": chunk, "more_body": True})
        await send({"type": "http.response.body", "body": b""})
    elif path == "/held":
        RELEASE["event"] = asyncio.Event()
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"first\n", "more_body": True})
        await RELEASE["event"].wait()
        await send({"type": "http.response.body", "body": b"second\n"})
    elif path == "/release":
        released = RELEASE["event"] is not None
        if released:
            RELEASE["event"].set()
        await respond(send, 200, b"released\n" if released else b"nothing held\n")
    elif path == "/slow-stream":
        total = int(q.get("total", "1024"))
        SENT["count"] = 0
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-length", str(total * CHUNK).encode())],
            }
        )
        chunk = b"s" * CHUNK
        for i in range(total):
            await send(
                {"type": "http.response.body", "body": chunk, "more_body": i + 1 < total}
            )
            SENT["count"] = i + 1
    elif path == "/progress":
        await respond(send, 200, str(SENT["count"]).encode())
    elif path == "/disconnect":
        SEEN["disconnect"] = False
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"partial\n", "more_body": True})
        while True:
            msg = await receive()
            if msg["type"] == "http.disconnect":
                SEEN["disconnect"] = True
                return
    elif path == "/seen":
        await respond(send, 200, b"yes" if SEEN["disconnect"] else b"no")
    elif path == "/late-receive":
        SEEN["late"] = "waiting"
        # Drain the (empty) body first: until then receive() rightly
        # returns the http.request event.
        await read_body(receive)
        await respond(send, 200, b"done\n")
        try:
            msg = await asyncio.wait_for(receive(), 10)
            SEEN["late"] = msg["type"]
        except asyncio.TimeoutError:
            SEEN["late"] = "timeout"
    elif path == "/late":
        await respond(send, 200, SEEN.get("late", "none").encode())
    elif path == "/pathsend":
        if "http.response.pathsend" not in scope.get("extensions", {}):
            await respond(send, 501, b"no http.response.pathsend extension\n")
            return
        me = q.get("file", os.path.abspath(__file__))
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [
                    (b"content-type", b"text/x-python"),
                    (b"content-length", str(os.path.getsize(me)).encode()),
                ],
            }
        )
        await send({"type": "http.response.pathsend", "path": me})
    elif path == "/raise":
        raise RuntimeError("asgi_app /raise refuses")
    elif path == "/sleep":
        await read_body(receive)
        marker = q.get("marker")
        if marker:
            with open(marker, "w") as f:
                f.write("started\n")
        seconds = float(q.get("s", "0.5"))
        await asyncio.sleep(seconds)
        await respond(send, 200, b"slept %g\n" % seconds)
    elif path == "/block":
        time.sleep(60)
        await respond(send, 200, b"unblocked\n")
    elif path == "/pid":
        await respond(send, 200, str(os.getpid()).encode())
    elif path == "/loop":
        loop = type(asyncio.get_running_loop())
        await respond(send, 200, ("%s.%s" % (loop.__module__, loop.__name__)).encode())
    else:
        await respond(send, 404, b"no route\n")
    log("http " + path)


async def app(scope, receive, send):
    if scope["type"] == "lifespan":
        await lifespan(scope, receive, send)
    elif scope["type"] == "websocket":
        await websocket(scope, receive, send)
    else:
        await http(scope, receive, send)
