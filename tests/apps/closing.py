"""A response iterable whose close() leaves a marker file (PEP 3333: the
server must call close() however the response ends).

Query: marker=PATH, chunks=N (1 KiB each, default 3), delay=SECONDS between
chunks (default 0).
"""

import time
from urllib.parse import parse_qs


class Body:
    def __init__(self, marker, chunks, delay):
        self.marker = marker
        self.chunks = chunks
        self.delay = delay

    def __iter__(self):
        for _ in range(self.chunks):
            if self.delay:
                time.sleep(self.delay)
            yield b"x" * 1024

    def close(self):
        if self.marker:
            with open(self.marker, "w") as f:
                f.write("closed\n")


def app(environ, start_response):
    qs = parse_qs(environ.get("QUERY_STRING", ""))
    marker = qs.get("marker", [None])[0]
    chunks = int(qs.get("chunks", ["3"])[0])
    delay = float(qs.get("delay", ["0"])[0])
    start_response("200 OK", [("Content-Type", "application/octet-stream")])
    return Body(marker, chunks, delay)
