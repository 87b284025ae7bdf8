"""A Flask site for the framework tests (tests/frameworks.rs).

GET /stream   four server-sent events, 0.5 s apart, each carrying the
              time.time() of its yield: `data: N T\n\n`
GET /empty    204 No Content
GET /form     a form with a CSRF token kept in the signed session cookie
POST /form    200 "hello NAME" if the token matches the session's, else 403
GET /where    url_for(..., _external=True) of itself (GET only: POST is 405)
POST /upload  multipart: JSON with the file's name, size and zlib.adler32,
              and the "note" field
"""

import hmac
import secrets
import time
import zlib

from flask import (
    Flask,
    Response,
    abort,
    jsonify,
    request,
    session,
    stream_with_context,
    url_for,
)

app = Flask(__name__)
app.secret_key = "rgunicorn-tests-only"


@app.get("/stream")
def stream():
    def events():
        for n in range(4):
            if n:
                time.sleep(0.5)
            # The request context stays usable while streaming.
            assert request.path == "/stream"
            yield f"data: {n} {time.time():.6f}\n\n"

    return Response(stream_with_context(events()), mimetype="text/event-stream")


@app.get("/empty")
def empty():
    return "", 204


@app.get("/form")
def form():
    token = session.setdefault("csrf_token", secrets.token_urlsafe(32))
    return (
        '<form method="post">'
        f'<input type="hidden" name="csrf_token" value="{token}">'
        '<input name="name"></form>\n'
    )


@app.post("/form")
def form_post():
    sent = request.form.get("csrf_token", "")
    expected = session.get("csrf_token", "")
    if not expected or not hmac.compare_digest(sent, expected):
        abort(403)
    return f"hello {request.form['name']}\n"


@app.get("/where")
def where():
    return url_for("where", _external=True)


@app.post("/upload")
def upload():
    f = request.files["file"]
    size = 0
    checksum = zlib.adler32(b"")
    while chunk := f.stream.read(65536):
        size += len(chunk)
        checksum = zlib.adler32(chunk, checksum)
    return jsonify(
        name=f.filename, bytes=size, adler32=checksum, note=request.form.get("note")
    )
