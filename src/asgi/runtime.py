# The asyncio side of rgunicorn's ASGI worker: the event loop, the wrapper
# each app call runs in, and the lifespan protocol. Everything per request
# (scope, receive, send) is in Rust (src/asgi/call.rs).
import asyncio


class ClientDisconnected(OSError):
    """send() on a connection the client has closed (ASGI spec 2.4)."""


def new_loop(kind):
    if kind in ("auto", "uvloop"):
        try:
            import uvloop
        except ImportError:
            if kind == "uvloop":
                raise
        else:
            return uvloop.new_event_loop(), "uvloop"
    return asyncio.new_event_loop(), "asyncio"


async def run_call(app, scope, call):
    try:
        await app(scope, call.receive, call.send)
    except BaseException as e:
        call.finish(e)
    else:
        call.finish(None)


class Lifespan:
    def __init__(self, app, loop, state):
        self.app = app
        self.loop = loop
        self.state = state
        self.events = asyncio.Queue()
        self.startup = loop.create_future()
        self.shutdown = loop.create_future()
        self.task = None

    async def receive(self):
        return await self.events.get()

    async def send(self, message):
        kind = message["type"]
        if kind in ("lifespan.startup.complete", "lifespan.shutdown.complete"):
            result = None
        elif kind in ("lifespan.startup.failed", "lifespan.shutdown.failed"):
            result = ("failed", str(message.get("message", "")))
        else:
            raise RuntimeError(f"unexpected ASGI lifespan message type {kind!r}")
        done = self.startup if kind.startswith("lifespan.startup.") else self.shutdown
        if not done.done():
            done.set_result(result)

    async def main(self):
        scope = {
            "type": "lifespan",
            "asgi": {"version": "3.0", "spec_version": "2.0"},
            "state": self.state,
        }
        try:
            await self.app(scope, self.receive, self.send)
        except BaseException:
            import traceback

            outcome = ("raised", traceback.format_exc())
        else:
            outcome = ("returned", "")
        for done in (self.startup, self.shutdown):
            if not done.done():
                done.set_result(outcome)

    async def run_startup(self):
        self.task = self.loop.create_task(self.main())
        self.events.put_nowait({"type": "lifespan.startup"})
        return await self.startup

    async def run_shutdown(self):
        if self.task is None or self.task.done():
            return None
        self.events.put_nowait({"type": "lifespan.shutdown"})
        return await self.shutdown


def finish_loop(loop):
    """Cancel what is still running (background tasks past the grace), close."""
    pending = [t for t in asyncio.all_tasks(loop) if not t.done()]
    for t in pending:
        t.cancel()
    if pending:
        loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
    loop.run_until_complete(loop.shutdown_asyncgens())
    loop.close()
