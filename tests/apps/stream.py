"""A generator body with no Content-Length: chunked on 1.1, close-delimited on 1.0."""

CHUNKS = [b"chunk%d\n" % i for i in range(5)]


def app(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain")])
    for chunk in CHUNKS:
        yield chunk
