"""An app wrapped in wsgiref.validate.validator.

Any PEP 3333 violation by the server raises AssertionError (in the app or when
the validator's iterator is collected without close()). The path picks how
the body is read: /read (read(n) loop), /readline, /iter; the body is returned.
"""

from wsgiref.validate import validator


def _read_body(environ):
    stream = environ["wsgi.input"]
    path = environ.get("PATH_INFO", "")
    parts = []
    if path == "/readline":
        while True:
            line = stream.readline()
            if not line:
                break
            parts.append(line)
    elif path == "/iter":
        for line in stream:
            parts.append(line)
    else:
        while True:
            data = stream.read(7)
            if not data:
                break
            parts.append(data)
    return b"".join(parts)


def _app(environ, start_response):
    body = _read_body(environ)
    start_response(
        "200 OK",
        [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))],
    )
    return [body]


app = validator(_app)
