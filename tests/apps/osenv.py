"""Returns the process environment the app sees (os.environ) as JSON."""

import json
import os


def app(environ, start_response):
    data = json.dumps(dict(os.environ), sort_keys=True).encode()
    start_response("200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(data)))])
    return [data]
