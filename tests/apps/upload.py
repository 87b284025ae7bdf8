"""Streams wsgi.input in 64 KiB reads; reports byte count, CRC-32 and memory.

The response is JSON: bytes, crc32, and this process's VmHWM/VmRSS in KiB
from /proc/self/status, so a test can tell whether the body was buffered.
"""

import json
import zlib


def _status_kib(name):
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(name + ":"):
                return int(line.split()[1])
    return -1


def app(environ, start_response):
    stream = environ["wsgi.input"]
    total = 0
    crc = 0
    if environ.get("QUERY_STRING") == "whole":
        # One read() of everything: the body is held once, as the app asked.
        data = stream.read()
        total, crc = len(data), zlib.crc32(data)
    while True:
        data = stream.read(65536)
        if not data:
            break
        total += len(data)
        crc = zlib.crc32(data, crc)
    out = json.dumps(
        {
            "bytes": total,
            "crc32": crc,
            "vmhwm_kib": _status_kib("VmHWM"),
            "vmrss_kib": _status_kib("VmRSS"),
        }
    ).encode()
    start_response(
        "200 OK",
        [("Content-Type", "application/json"), ("Content-Length", str(len(out)))],
    )
    return [out]
