"""An ASGI app whose lifespan startup fails, so its worker must not boot.

ASGI_FAIL_MODE=message (the default) sends lifespan.startup.failed with
"database unreachable"; ASGI_FAIL_MODE=raise raises RuntimeError with that
message instead (fatal with --asgi-lifespan on; in auto mode the server may
take it as "no lifespan support" and serve). HTTP requests get "served\\n".
"""

import os

MESSAGE = "database unreachable"


async def app(scope, receive, send):
    if scope["type"] == "lifespan":
        msg = await receive()
        assert msg["type"] == "lifespan.startup", msg
        if os.environ.get("ASGI_FAIL_MODE", "message") == "raise":
            raise RuntimeError(MESSAGE)
        await send({"type": "lifespan.startup.failed", "message": MESSAGE})
        return
    body = b"served\n"
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [(b"content-length", str(len(body)).encode())],
        }
    )
    await send({"type": "http.response.body", "body": body})
