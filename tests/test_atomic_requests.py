"""``ATOMIC_REQUESTS``: a sync view's saves are announced when the request's transaction commits.

The view (``tests.testapp.views.create_products``) runs through Django's request handling, so
``ATOMIC_REQUESTS`` wraps it in a transaction. While still inside it, the view publishes a marker
event straight to the layer: the saves' events, sent on commit, must arrive after the marker, and
none at all when the view raises. Runs on SQLite and on PostgreSQL.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
from asgiref.sync import sync_to_async
from django.db import connection
from django.test import Client

from strawberry_model_subs.testing import StreamClient
from tests.testapp.asgi import application
from tests.testapp.models import Product
from tests.testapp.views import MARKER_PK

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def atomic_requests() -> Iterator[None]:
    """``ATOMIC_REQUESTS`` on for the default database during the test."""
    settings_dict = connection.settings_dict
    before = settings_dict["ATOMIC_REQUESTS"]
    settings_dict["ATOMIC_REQUESTS"] = True
    try:
        yield
    finally:
        settings_dict["ATOMIC_REQUESTS"] = before


@pytest.fixture
async def client(atomic_requests: None) -> AsyncIterator[StreamClient]:
    """A stream socket subscribed to every product change (id and name)."""
    async with StreamClient(application) as stream:
        result = await stream.subscribe("products", "ALL_ACTIONS", fields=["id", "name"])
        assert result["ok"], result
        yield stream


def payload(action: str, pk: int, name: str) -> dict[str, Any]:
    return {"action": action, "model": "testapp.product", "data": {"id": pk, "name": name}}


async def next_payload(stream: StreamClient) -> dict[str, Any]:
    frame = await stream.receive_event()
    assert frame["stream"] == "products", frame
    result: dict[str, Any] = frame["payload"]
    return result


async def assert_nothing_else(stream: StreamClient) -> None:
    """The next event is that of a product created now: nothing else was queued before it."""
    later = await Product.objects.acreate(name="created afterwards")
    assert await next_payload(stream) == payload("create", later.pk, "created afterwards")


async def test_sync_view_saves_are_sent_after_its_request_transaction_commits_in_order(
    client: StreamClient,
) -> None:
    response = await sync_to_async(Client().post)(
        "/sync/products", {"name": ["first", "second"], "marker": "inside the transaction"}
    )
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["in_atomic_block"] is True, "ATOMIC_REQUESTS did not wrap the view"
    first, second = body["ids"]
    received = [await next_payload(client) for _ in range(3)]
    assert received == [
        payload("update", MARKER_PK, "inside the transaction"),
        payload("create", first, "first"),
        payload("create", second, "second"),
    ]
    await assert_nothing_else(client)


async def test_sync_view_that_raises_after_saving_sends_no_event(client: StreamClient) -> None:
    response = await sync_to_async(Client(raise_request_exception=False).post)(
        "/sync/products",
        {"name": ["doomed 1", "doomed 2"], "fail": "1", "marker": "before the failure"},
    )
    assert response.status_code == 500, response.content
    assert not await Product.objects.filter(name__startswith="doomed").aexists(), (
        "the failed request's saves were committed: ATOMIC_REQUESTS did not apply"
    )
    # The marker proves the view saved both products before it raised.
    assert await next_payload(client) == payload("update", MARKER_PK, "before the failure")
    await assert_nothing_else(client)
