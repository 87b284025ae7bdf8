"""WSGI app served by the systemd container checks (tests/systemd/run.sh).

/        200, names the worker pid (reload checks see workers change)
/raise   raises, so the worker logs a multi-line traceback
"""
import os


def app(environ, start_response):
    if environ.get("PATH_INFO") == "/raise":
        fail_on_purpose()
    body = f"Hello from rgunicorn! pid={os.getpid()}\n".encode()
    start_response(
        "200 OK",
        [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))],
    )
    return [body]


def fail_on_purpose():
    raise ValueError("rgunicorn systemd check: deliberate failure")
