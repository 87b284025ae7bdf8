"""Returns a real file through wsgi.file_wrapper.

The file holds PATTERN (bytes 0..255 repeated, 102400 bytes). It is unlinked
right after opening, so nothing is left behind. Query: `nolength` omits
Content-Length; `seek=N` starts the file at offset N (body = PATTERN[N:]).
"""

import os
import tempfile
from urllib.parse import parse_qs

PATTERN = bytes(range(256)) * 400


def app(environ, start_response):
    fd, path = tempfile.mkstemp(prefix="rgunicorn-filewrapper-")
    with os.fdopen(fd, "wb") as f:
        f.write(PATTERN)
    f = open(path, "rb")
    os.unlink(path)
    qs = parse_qs(environ.get("QUERY_STRING", ""), keep_blank_values=True)
    offset = int(qs.get("seek", ["0"])[0])
    f.seek(offset)
    headers = [("Content-Type", "application/octet-stream")]
    if "nolength" not in qs:
        headers.append(("Content-Length", str(len(PATTERN) - offset)))
    start_response("200 OK", headers)
    return environ["wsgi.file_wrapper"](f, 8192)
