"""``{name}Changed`` over graphql-transport-ws, in-process (the full suite is end to end)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from channels.testing import WebsocketCommunicator

from strawberry_model_subs.consumers import GraphQLWSConsumer
from strawberry_model_subs.hub import get_hub
from tests.conftest import group_members, wait_subscribed, wait_until
from tests.testapp.asgi import application
from tests.testapp.models import Category, Everything, Product
from tests.testapp.schema import schema

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


async def next_message(ws: WebsocketCommunicator) -> dict[str, Any]:
    return await ws.receive_json_from(timeout=5)


async def test_complete_of_one_subscription_leaves_its_sibling_running(
    gql_ws: WebsocketCommunicator,
) -> None:
    query = "subscription { categoryChanged(action: CREATE) { data { name } } }"
    await subscribe(gql_ws, "a", query)
    await subscribe(gql_ws, "b", query)
    await wait_subscribed("categories", count=2)
    await gql_ws.send_json_to({"id": "a", "type": "complete"})
    await wait_until(
        lambda: get_hub().state().references.get("categories") == 1, "one reference left"
    )
    await Category.objects.acreate(name="after complete")
    message = await next_message(gql_ws)
    assert message == {
        "id": "b",
        "type": "next",
        "payload": {"data": {"categoryChanged": {"data": {"name": "after complete"}}}},
    }
    assert await gql_ws.receive_nothing(timeout=0.2)


async def test_abrupt_close_leaves_no_group_index_or_task_behind() -> None:
    ws = WebsocketCommunicator(application, "/ws", subprotocols=["graphql-transport-ws"])
    await ws.connect()
    await ws.send_json_to({"type": "connection_init"})
    await next_message(ws)
    for op_id in ("1", "2"):
        await subscribe(ws, op_id, "subscription { productChanged { action } }")
    await wait_subscribed("products", count=2)
    hub = get_hub()
    await ws.disconnect(code=1006)
    await wait_until(lambda: not hub.state().references, "the hub to drop every reference")
    assert hub.state().subscriptions == {}
    await wait_until(lambda: not hub.state().receiving, "the hub's receive loop to stop")
    # This hub's membership: a hub of another test whose loop ended mid-join may linger.
    assert hub.state().channel not in await group_members("sms.products")


async def test_invalid_arguments_answer_an_error_and_the_connection_goes_on(
    gql_ws: WebsocketCommunicator,
) -> None:
    await subscribe(gql_ws, "ok", "subscription { categoryChanged { data { name } } }")
    await wait_subscribed("categories")
    cases = {
        "enum": ("subscription { productChanged(action: SOMETIMES) { model } }", "SOMETIMES"),
        "id": ('subscription { productChanged(id: "abc") { model } }', "not a valid primary key"),
        "field": ("subscription { productChanged { colour } }", "colour"),
    }
    for op_id, (query, needle) in cases.items():
        await subscribe(gql_ws, op_id, query)
        message = await next_message(gql_ws)
        assert message["id"] == op_id
        assert message["type"] == "error"
        assert needle in message["payload"][0]["message"]
    await Category.objects.acreate(name="still served")
    message = await next_message(gql_ws)
    assert message["id"] == "ok"
    assert message["payload"]["data"]["categoryChanged"]["data"] == {"name": "still served"}


async def test_queries_and_mutations_run_beside_subscriptions(
    gql_ws: WebsocketCommunicator,
) -> None:
    await subscribe(
        gql_ws, "sub", "subscription { productChanged(action: CREATE) { data { name } } }"
    )
    await wait_subscribed("products")
    await subscribe(gql_ws, "mut", 'mutation { createProduct(name: "Tea") { name } }')
    received = [await next_message(gql_ws) for _ in range(3)]
    by_id = {(m["id"], m["type"]): m.get("payload") for m in received}
    assert by_id[("mut", "next")] == {"data": {"createProduct": {"name": "Tea"}}}
    assert ("mut", "complete") in by_id
    assert by_id[("sub", "next")] == {"data": {"productChanged": {"data": {"name": "Tea"}}}}


async def test_server_pings_and_closes_a_peer_that_never_answers() -> None:
    app = GraphQLWSConsumer.as_asgi(schema=schema, ping_interval=0.05, ping_timeout=0.05)
    ws = WebsocketCommunicator(app, "/ws", subprotocols=["graphql-transport-ws"])
    await ws.connect()
    await ws.send_json_to({"type": "connection_init"})
    assert (await next_message(ws))["type"] == "connection_ack"
    assert await next_message(ws) == {"type": "ping"}
    await ws.send_json_to({"type": "pong"})
    assert await next_message(ws) == {"type": "ping"}
    closed = await ws.receive_output(timeout=5)
    assert closed == {"type": "websocket.close", "code": 1001, "reason": "Pong timeout"}
    await ws.wait()


async def test_graphql_ws_clients_get_keep_alive_frames() -> None:
    app = GraphQLWSConsumer.as_asgi(schema=schema, keep_alive_interval=0.05)
    ws = WebsocketCommunicator(app, "/ws", subprotocols=["graphql-ws"])
    connected, subprotocol = await ws.connect()
    assert connected
    assert subprotocol == "graphql-ws"
    await ws.send_json_to({"type": "connection_init"})
    assert await next_message(ws) == {"type": "connection_ack"}
    assert await next_message(ws) == {"type": "ka"}
    await ws.send_json_to(
        {
            "id": "1",
            "type": "start",
            "payload": {"query": "subscription { categoryChanged { action data { name } } }"},
        }
    )
    await wait_subscribed("categories")
    await Category.objects.acreate(name="legacy")
    message = await receive_skipping_ka(ws)
    assert message == {
        "id": "1",
        "type": "data",
        "payload": {"data": {"categoryChanged": {"action": "CREATE", "data": {"name": "legacy"}}}},
    }
    await ws.disconnect()


async def receive_skipping_ka(ws: WebsocketCommunicator) -> dict[str, Any]:
    while (message := await next_message(ws)) == {"type": "ka"}:
        pass
    return message
