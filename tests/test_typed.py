"""``{name}Changed`` over graphql-transport-ws, in-process (the full suite is end to end)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from channels.testing import WebsocketCommunicator

from strawberry_model_subs.hub import get_hub
from tests.conftest import wait_until
from tests.testapp.asgi import application
from tests.testapp.models import Category, Everything, Product

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
async def gql_ws() -> AsyncIterator[WebsocketCommunicator]:
    ws = WebsocketCommunicator(application, "/ws", subprotocols=["graphql-transport-ws"])
    connected, _ = await ws.connect()
    assert connected
    await ws.send_json_to({"type": "connection_init"})
    assert (await ws.receive_json_from())["type"] == "connection_ack"
    try:
        yield ws
    finally:
        await ws.disconnect()


async def subscribe(ws: WebsocketCommunicator, op_id: str, query: str, **variables: Any) -> None:
    await ws.send_json_to(
        {"id": op_id, "type": "subscribe", "payload": {"query": query, "variables": variables}}
    )


async def wait_subscribed(stream: str, count: int = 1) -> None:
    """Typed subscriptions have no ack: wait (bounded) until the hub holds their references."""
    hub = get_hub()
    await wait_until(
        lambda: hub.refs.get(stream, 0) >= count, f"a subscription to {stream!r} in the hub"
    )


async def test_changed_yields_typed_events(gql_ws: WebsocketCommunicator) -> None:
    await subscribe(
        gql_ws,
        "1",
        "subscription { productChanged(action: UPDATE) { stream action model "
        "data { id name price inStock status created tags } } }",
    )
    await wait_subscribed("products")
    product = await Product.objects.acreate(name="Tea", price="1.50", tags=["hot"])
    product.status = "published"
    await product.asave()
    message = await gql_ws.receive_json_from()
    assert message["id"] == "1"
    assert message["type"] == "next"
    event = message["payload"]["data"]["productChanged"]
    assert event["stream"] == "products"
    assert event["action"] == "UPDATE"
    assert event["model"] == "testapp.product"
    data = event["data"]
    assert data["id"] == product.pk
    assert data["price"] == "1.50"
    assert data["status"] == "PUBLISHED"
    assert data["tags"] == ["hot"]
    assert data["created"].startswith(str(product.created.year))


async def test_everything_type_resolves(gql_ws: WebsocketCommunicator) -> None:
    await subscribe(
        gql_ws,
        "1",
        "subscription { everythingChanged(action: CREATE) { data { id bigIntegerField "
        "dateField dateTimeField timeField decimalField uuidField size priority nextCheck "
        "moments nestedCategory { name } tagList { code } scores anything } } }",
    )
    await wait_subscribed("everything")
    category = await Category.objects.acreate(name="c")
    thing = await Everything.objects.acreate(big_integer_field=2**40, category=category)
    message = await gql_ws.receive_json_from()
    assert message["type"] == "next", message
    data = message["payload"]["data"]["everythingChanged"]["data"]
    assert data["id"] == thing.pk
    assert data["bigIntegerField"] == 2**40
    assert data["dateField"] == "2024-01-01"
    assert data["dateTimeField"] == "2024-01-01T00:00:00+00:00"
    assert data["timeField"] == "00:00:00"
    assert data["size"] == "M"
    assert data["priority"] == 2
    assert data["nestedCategory"] == {"name": "c"}
    assert data["anything"] == {"pk": thing.pk}
