"""A Starlette app for the ASGI worker: a JSON route, a POST echoing its body,
a StreamingResponse and a WebSocket echo (text as text, bytes as bytes)."""

from starlette.applications import Starlette
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route, WebSocketRoute


async def item(request):
    return JSONResponse(
        {
            "framework": "starlette",
            "item_id": int(request.path_params["item_id"]),
            "q": request.query_params.get("q", ""),
        }
    )


async def echo(request):
    body = await request.body()
    return Response(body, media_type="application/octet-stream")


async def stream(request):
    n = int(request.query_params.get("n", "5"))

    async def lines():
        for i in range(n):
            yield b"line %d\n" % i

    return StreamingResponse(lines(), media_type="text/plain")


async def ws(websocket):
    await websocket.accept()
    while True:
        msg = await websocket.receive()
        if msg["type"] == "websocket.disconnect":
            return
        if msg.get("text") is not None:
            await websocket.send_text(msg["text"])
        else:
            await websocket.send_bytes(msg.get("bytes") or b"")


app = Starlette(
    routes=[
        Route("/items/{item_id:int}", item),
        Route("/echo", echo, methods=["POST"]),
        Route("/stream", stream),
        WebSocketRoute("/ws", ws),
    ]
)
