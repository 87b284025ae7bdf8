"""/boom raises before start_response; /boom-late raises mid-body; else hello."""


class DeliberateFailure(Exception):
    pass


def _late():
    yield b"first part\n"
    raise DeliberateFailure("deliberate failure mid-stream in raises.py")


def app(environ, start_response):
    path = environ.get("PATH_INFO")
    if path == "/boom":
        raise DeliberateFailure("deliberate failure in raises.py")
    if path == "/boom-late":
        start_response("200 OK", [("Content-Type", "text/plain")])
        return _late()
    body = b"Hello, World!\n"
    start_response(
        "200 OK",
        [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))],
    )
    return [body]
