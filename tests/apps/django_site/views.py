"""Views mirroring flask_site.py: streaming, 204, a CSRF-protected form,
absolute URIs and a multipart upload."""

import asyncio
import time
import zlib

from django.http import HttpResponse, JsonResponse, StreamingHttpResponse
from django.template import engines
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_POST

FORM = engines["django"].from_string(
    '<form method="post">{% csrf_token %}<input name="name"></form>\n'
)


@require_GET
def stream(request):
    def events():
        for n in range(4):
            if n:
                time.sleep(0.5)
            yield f"data: {n} {time.time():.6f}\n\n"

    return StreamingHttpResponse(events(), content_type="text/event-stream")


@require_GET
def empty(request):
    return HttpResponse(status=204)


def form(request):
    # CsrfViewMiddleware has already refused a POST without a valid token.
    if request.method == "POST":
        return HttpResponse(f"hello {request.POST['name']}\n")
    return HttpResponse(FORM.render({}, request))


# Exempt, so a POST reaches require_GET and is refused with 405 as in Flask.
@csrf_exempt
@require_GET
def where(request):
    return HttpResponse(request.build_absolute_uri())


@csrf_exempt
@require_POST
def upload(request):
    f = request.FILES["file"]
    size = 0
    checksum = zlib.adler32(b"")
    for chunk in f.chunks():
        size += len(chunk)
        checksum = zlib.adler32(chunk, checksum)
    return JsonResponse(
        {
            "name": f.name,
            "bytes": size,
            "adler32": checksum,
            "note": request.POST.get("note"),
        }
    )


@require_GET
async def pause(request):
    """An async view: runs on the server's event loop under ASGI."""
    await asyncio.sleep(0.01)
    return JsonResponse({"async": True, "path": request.path})

