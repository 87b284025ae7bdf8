"""A FastAPI app for the ASGI worker: a JSON route, a POST echoing its body,
a StreamingResponse and a WebSocket echo (text as text, bytes as bytes)."""

from fastapi import FastAPI, Request, WebSocket, WebSocketDisconnect
from fastapi.responses import Response, StreamingResponse

app = FastAPI()


@app.get("/items/{item_id}")
async def item(item_id: int, q: str = ""):
    return {"framework": "fastapi", "item_id": item_id, "q": q}


@app.post("/echo")
async def echo(request: Request):
    body = await request.body()
    return Response(body, media_type="application/octet-stream")


@app.get("/stream")
async def stream(n: int = 5):
    async def lines():
        for i in range(n):
            yield b"line %d\n" % i

    return StreamingResponse(lines(), media_type="text/plain")


@app.websocket("/ws")
async def ws(websocket: WebSocket):
    await websocket.accept()
    try:
        while True:
            msg = await websocket.receive()
            if msg["type"] == "websocket.disconnect":
                return
            if msg.get("text") is not None:
                await websocket.send_text(msg["text"])
            else:
                await websocket.send_bytes(msg.get("bytes") or b"")
    except WebSocketDisconnect:
        return
