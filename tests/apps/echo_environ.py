"""Returns the WSGI environ as JSON, plus the request body it read.

str values are copied as is; anything else is repr()'d. The body read from
wsgi.input is added as "body" (latin-1 decoded) and "body_len".
"""

import json


def app(environ, start_response):
    body = environ["wsgi.input"].read()
    out = {k: (v if isinstance(v, str) else repr(v)) for k, v in environ.items()}
    out["body"] = body.decode("latin-1")
    out["body_len"] = len(body)
    data = json.dumps(out, sort_keys=True).encode()
    start_response(
        "200 OK",
        [("Content-Type", "application/json"), ("Content-Length", str(len(data)))],
    )
    return [data]
