"""/spin loops in C while holding the GIL (no bytecode runs, so no Python
signal handler can); anything else answers "fine"."""


def app(environ, start_response):
    if environ["PATH_INFO"] == "/spin":
        # sum() over a range is one C loop: it never releases the GIL.
        sum(range(10**12))
    body = b"fine\n"
    start_response("200 OK", [("Content-Length", str(len(body)))])
    return [body]
