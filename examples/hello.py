"""The example application served by README's first command.

    rgunicorn --chdir examples hello:app
"""


def app(environ, start_response):
    body = b"Hello from rgunicorn!\n"
    start_response(
        "200 OK",
        [("Content-Type", "text/plain; charset=utf-8"), ("Content-Length", str(len(body)))],
    )
    return [body]
