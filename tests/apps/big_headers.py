"""Responds with 100 headers of 100 bytes each and two Set-Cookie headers,
one of them 6000 bytes long."""

HEADERS = [("X-Header-%03d" % i, "v%03d" % i + "x" * 96) for i in range(100)]
COOKIES = [("Set-Cookie", "big=" + "c" * 6000), ("Set-Cookie", "small=1")]
BODY = b"big headers\n"


def app(environ, start_response):
    start_response(
        "200 OK",
        [("Content-Type", "text/plain"), ("Content-Length", str(len(BODY)))]
        + HEADERS
        + COOKIES,
    )
    return [BODY]
