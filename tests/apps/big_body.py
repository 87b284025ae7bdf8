"""Returns `?size=N` bytes (default 32 MiB) in 64 KiB chunks, with Content-Length."""

from urllib.parse import parse_qs

CHUNK = b"z" * 65536


def app(environ, start_response):
    qs = parse_qs(environ.get("QUERY_STRING", ""))
    size = int(qs.get("size", [str(32 * 1024 * 1024)])[0])
    start_response(
        "200 OK",
        [("Content-Type", "application/octet-stream"), ("Content-Length", str(size))],
    )

    def body():
        left = size
        while left > 0:
            piece = CHUNK[: min(left, len(CHUNK))]
            left -= len(piece)
            yield piece

    return body()
