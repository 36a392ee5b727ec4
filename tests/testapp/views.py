"""Plain Django views of the test site (tests/test_atomic_requests.py)."""

from __future__ import annotations

from django.db import transaction
from django.http import HttpRequest, JsonResponse
from django.views.decorators.http import require_POST

from strawberry_model_subs import Action
from strawberry_model_subs.conf import get_settings
from strawberry_model_subs.events import event_message, group_name
from strawberry_model_subs.layers import publish

from .models import Product

#: The primary key of the marker event (no product has it).
MARKER_PK = 0


@require_POST
def create_products(request: HttpRequest) -> JsonResponse:
    """A SYNC view: create one product per ``name`` posted, then fail if ``fail`` is posted.

    With ``ATOMIC_REQUESTS`` Django runs it in a transaction, committed when it returns and rolled
    back when it raises. The answer says whether the view ran inside that transaction. With
    ``marker``, after the saves and still inside the transaction, a product update event of
    id 0 named ``marker`` is published straight to the layer (not on commit): the saves' events
    must arrive after it.
    """
    products = [Product.objects.create(name=name) for name in request.POST.getlist("name")]
    if marker := request.POST.get("marker"):
        data = {"id": MARKER_PK, "name": marker}
        message = event_message("products", Action.UPDATE, "testapp.product", MARKER_PK, data)
        publish(group_name(get_settings().GROUP_PREFIX, "products"), dict(message))
    if request.POST.get("fail"):
        raise RuntimeError("failed after saving, on purpose")
    return JsonResponse(
        {
            "ids": [product.pk for product in products],
            "in_atomic_block": transaction.get_connection().in_atomic_block,
        }
    )
