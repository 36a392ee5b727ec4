"""``POST /trigger?seq=N[&pad=K]`` saves item 1 once (a model change through ``Model.save()``, so
each contender's signal handling runs); ``GET /health`` tells the driver the server is up."""

from __future__ import annotations

import gcstats
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseNotAllowed, JsonResponse
from django.views.decorators.csrf import csrf_exempt

from .models import Item

#: The object every event changes (created by ``prepare_db.py``).
ITEM_PK = 1


@csrf_exempt
def trigger(request: HttpRequest) -> HttpResponse:
    if request.method != "POST":
        return HttpResponseNotAllowed(["POST"])
    seq = int(request.GET["seq"])
    pad = int(request.GET.get("pad", "0"))
    name = "x" * pad if pad else f"item-{seq}"
    # An UPDATE of an existing row (Django tries UPDATE first when the pk is set): post_save
    # fires with created=False, as for any edit.
    Item(pk=ITEM_PK, name=name, seq=seq).save()
    response = HttpResponse(b"ok", content_type="text/plain")
    response["Content-Length"] = "2"
    return response


def health(request: HttpRequest) -> HttpResponse:
    return HttpResponse(b"ok", content_type="text/plain")


def gc_stats(request: HttpRequest) -> HttpResponse:
    """The server's garbage-collector pauses (only with ``BENCH_GC_STATS=1``)."""
    if not gcstats.enabled():
        raise Http404
    return JsonResponse(gcstats.snapshot())
