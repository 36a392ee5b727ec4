"""Limits: subscriptions per connection, frame size, control operations per second, query depth
of typed subscriptions (Strawberry's ``QueryDepthLimiter``), and origins (Channels'
``AllowedHostsOriginValidator``, the consumer's ``allowed_origins``)."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
from collections.abc import AsyncIterator
from typing import Any

import pytest
import strawberry
from channels.auth import AuthMiddlewareStack
from channels.testing import WebsocketCommunicator
from django.contrib.auth.models import User
from django.test import AsyncClient, override_settings
from strawberry.extensions import QueryDepthLimiter

from strawberry_model_subs import session as session_module
from strawberry_model_subs import subscription_type
from strawberry_model_subs.consumers import GraphQLWSConsumer
from strawberry_model_subs.testing import StreamClient, Subprotocol, TypedClient, control_document
from tests.conftest import AnyClient, make_user, session_headers, typed_client, wait_subscribed
from tests.testapp.asgi import application
from tests.testapp.models import Category, Everything, Product
from tests.testapp.schema import Mutation, Query

pytestmark = pytest.mark.django_db(transaction=True)

TIMEOUT = 5.0


@pytest.fixture
async def client() -> AsyncIterator[StreamClient]:
    async with StreamClient(application) as stream:
        yield stream


def payload(frame: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    return frame["payload"]["action"], frame["payload"]["data"]


# -- subscriptions per connection -----------------------------------------------------------------


@override_settings(STRAWBERRY_MODEL_SUBS={"MAX_SUBSCRIPTIONS_PER_CONNECTION": 3})
async def test_stream_socket_holds_at_most_max_subscriptions_and_stays_usable() -> None:
    async with StreamClient(application) as client, StreamClient(application) as other:
        for action in ("CREATE", "UPDATE", "DELETE"):
            assert (await client.subscribe("products", action, fields=["name"]))["ok"]
        refused = await client.subscribe("categories", "CREATE")
        assert refused["ok"] is False
        assert refused["error"] == (
            "this socket already holds 3 subscriptions, the most allowed "
            "(MAX_SUBSCRIPTIONS_PER_CONNECTION); unsubscribe some first"
        )
        # Changing the fields of a subscription it holds is no new subscription.
        assert (await client.subscribe("products", "CREATE", fields=["id"]))["ok"]
        # The limit is per socket: another socket has its own.
        for action in ("CREATE", "UPDATE", "DELETE"):
            assert (await other.subscribe("categories", action))["ok"]
        assert (await client.unsubscribe("products", "DELETE"))["ok"]
        assert (await client.subscribe("categories", "CREATE", fields=["name"]))["ok"]
        product = await Product.objects.acreate(name="Tea")
        await Category.objects.acreate(name="Hot")
        assert payload(await client.receive_event()) == ("create", {"id": product.pk})
        assert payload(await client.receive_event()) == ("create", {"name": "Hot"})
        await client.assert_no_frame()


async def test_typed_subscriptions_beyond_the_consumers_limit_get_an_error(
    clients: list[AnyClient],
) -> None:
    limited = AuthMiddlewareStack(
        GraphQLWSConsumer.as_asgi(
            schema=strawberry.Schema(
                query=Query, mutation=Mutation, subscription=subscription_type()
            ),
            max_subscriptions_per_connection=2,
        )
    )
    gql = await typed_client(clients, limited)
    for op in ("1", "2", "3"):
        await gql.subscribe("subscription { categoryChanged { data { name } } }", operation_id=op)
    message = await gql.receive()
    assert message == {
        "id": "3",
        "type": "error",
        "payload": [{"message": "Subscription limit reached"}],
    }
    await wait_subscribed("categories", 2)
    await Category.objects.acreate(name="Hot")
    received = sorted([(await gql.receive())["id"] for _ in range(2)])
    assert received == ["1", "2"]


# -- frame size -----------------------------------------------------------------------------------


def padded(frame: dict[str, Any], size: int) -> str:
    """``frame`` as JSON text of exactly ``size`` characters (spaces before the closing brace)."""
    text = json.dumps(frame)
    assert len(text) <= size
    return text[:-1] + " " * (size - len(text)) + "}"


@override_settings(STRAWBERRY_MODEL_SUBS={"MAX_FRAME_SIZE": 1000})
async def test_stream_frame_over_max_frame_size_gets_an_error_and_the_socket_stays_usable(
    client: StreamClient,
) -> None:
    await client.send_text(padded({"query": "{ productCount }"}, 1000))
    assert await client.receive_response() == {"data": {"productCount": 0}}
    await client.send_text(padded({"query": "{ productCount }"}, 1001))
    too_large = {
        "data": None,
        "errors": [{"message": "frame too large: at most 1000 characters (MAX_FRAME_SIZE)"}],
    }
    assert await client.receive_response() == too_large
    await client.send_bytes(b"\x00" * 1001)
    assert await client.receive_response() == too_large
    result = await client.subscribe("categories", "CREATE", fields=["name"])
    assert result["ok"], result
    await Category.objects.acreate(name="after")
    assert payload(await client.receive_event()) == ("create", {"name": "after"})


@override_settings(STRAWBERRY_MODEL_SUBS={"MAX_FRAME_SIZE": 300})
@pytest.mark.parametrize("protocol", ["graphql-transport-ws", "graphql-ws"])
async def test_subscription_protocol_frame_over_max_frame_size_closes_with_1009(
    protocol: Subprotocol, clients: list[AnyClient]
) -> None:
    gql = await typed_client(clients, subprotocol=protocol)
    kind = "subscribe" if protocol == "graphql-transport-ws" else "start"
    query = {"query": "subscription { categoryChanged { data { name } } }"}
    await gql.send_text(padded({"id": "1", "type": kind, "payload": query}, 300))
    await wait_subscribed("categories")  # a frame of exactly the limit is taken
    await gql.send_text(padded({"id": "2", "type": kind, "payload": query}, 301))
    assert await gql.receive_close() == (1009, "")


# -- control operations per second ----------------------------------------------------------------


class FakeClock:
    """``time`` for the session module: ``monotonic()`` moves only when told."""

    def __init__(self) -> None:
        self.now = 1000.0

    def monotonic(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> FakeClock:
    fake = FakeClock()
    monkeypatch.setattr(session_module, "time", fake)
    return fake


RATE_LIMITED = "too many control operations: at most 5 a second on one socket (CONTROL_RATE)"


async def toggle(client: StreamClient, n: int) -> dict[str, Any]:
    """The n-th of a run of control operations: subscribe, unsubscribe, subscribe..."""
    operation = "UNSUBSCRIBE" if n % 2 else "SUBSCRIBE"
    return await client.subscribe("categories", "CREATE", operation=operation)


@override_settings(STRAWBERRY_MODEL_SUBS={"CONTROL_RATE": 5.0})
async def test_control_operations_beyond_the_rate_are_refused_until_tokens_refill(
    clock: FakeClock,
) -> None:
    async with StreamClient(application) as client:
        for n in range(10):  # the burst: twice the rate
            assert (await toggle(client, n))["ok"], n
        refused = await toggle(client, 10)
        assert (refused["ok"], refused["error"]) == (False, RATE_LIMITED)
        await client.assert_no_frame(timeout=0.05)  # no ack for a refused operation
        clock.now += 0.2  # one token (5 a second)
        assert (await toggle(client, 10))["ok"]
        assert (await toggle(client, 11))["error"] == RATE_LIMITED
        clock.now += 60  # the bucket refills to the burst, no more
        assert all([(await toggle(client, n))["ok"] for n in range(11, 21)])
        assert (await toggle(client, 21))["error"] == RATE_LIMITED


@override_settings(STRAWBERRY_MODEL_SUBS={"CONTROL_RATE": 5.0})
async def test_control_rate_is_per_socket_and_counts_http_requests_too(clock: FakeClock) -> None:
    async with StreamClient(application) as flooded, StreamClient(application) as calm:
        http = AsyncClient()
        body = {
            "query": control_document("categories"),
            "variables": {
                "operation": "SUBSCRIBE",
                "action": "UPDATE",
                "channelId": flooded.channel_id,
            },
        }
        answers = []
        for _ in range(11):
            response = await http.post(
                "/graphql", json.dumps(body), content_type="application/json"
            )
            answers.append(response.json()["data"]["categorySubscription"]["error"])
        assert answers == [None] * 10 + [RATE_LIMITED]
        assert (await flooded.subscribe("categories", "DELETE"))["error"] == RATE_LIMITED
        assert (await calm.subscribe("categories", "CREATE"))["ok"]


# -- query depth ----------------------------------------------------------------------------------

depth_limited_schema = strawberry.Schema(
    query=Query,
    mutation=Mutation,
    subscription=subscription_type(),
    extensions=[lambda: QueryDepthLimiter(max_depth=2)],
)
depth_limited = AuthMiddlewareStack(GraphQLWSConsumer.as_asgi(schema=depth_limited_schema))
TOO_DEEP = "subscription Deep { everythingChanged { data { nestedCategory { name } } } }"
SHALLOW = "subscription { everythingChanged { data { charField } } }"


@pytest.mark.parametrize("protocol", ["graphql-transport-ws", "graphql-ws"])
async def test_typed_subscription_deeper_than_the_depth_limit_is_refused(
    protocol: Subprotocol, clients: list[AnyClient]
) -> None:
    gql = await typed_client(clients, depth_limited, subprotocol=protocol)
    await gql.subscribe(TOO_DEEP, operation_id="deep")
    message = await gql.receive()
    assert message["id"] == "deep"
    assert message["type"] == "error"
    errors = message["payload"] if isinstance(message["payload"], list) else [message["payload"]]
    assert errors[0]["message"] == "'Deep' exceeds maximum operation depth of 2"
    await gql.subscribe(SHALLOW, operation_id="shallow")
    await wait_subscribed("everything")
    await Everything.objects.acreate(char_field="within the limit")
    message = await gql.receive()
    assert message["id"] == "shallow"
    data = message["payload"]["data"]["everythingChanged"]["data"]
    assert data == {"charField": "within the limit"}


flat_schema = strawberry.Schema(
    query=Query,
    mutation=Mutation,
    subscription=subscription_type(),
    extensions=[lambda: QueryDepthLimiter(max_depth=0)],
)
flat = AuthMiddlewareStack(GraphQLWSConsumer.as_asgi(schema=flat_schema))


async def test_stream_socket_requests_are_held_to_the_schemas_depth_limit() -> None:
    """The test site has no deep query: a limit of 0 shows the stream socket applies it, to
    queries, mutations and control operations alike."""
    async with StreamClient(flat) as client:
        assert await client.execute("{ productCount }") == {"data": {"productCount": 0}}
        response = await client.execute('mutation Make { createProduct(name: "x") { id } }')
        assert response["data"] is None
        assert response["errors"][0]["message"] == "'Make' exceeds maximum operation depth of 0"
        result = await client.subscribe("categories", "CREATE")
        assert result["errors"][0]["message"] == "'Control' exceeds maximum operation depth of 0"
        assert await Product.objects.acount() == 0


# -- origins --------------------------------------------------------------------------------------

FOREIGN = [(b"origin", b"http://evil.example"), (b"host", b"testserver")]


@pytest.mark.parametrize("subprotocols", [[], ["graphql-transport-ws"]], ids=["stream", "gtws"])
async def test_allowed_hosts_origin_validator_refuses_a_foreign_origin_even_with_a_session(
    subprotocols: list[str],
) -> None:
    user = await make_user("victim")
    ws = WebsocketCommunicator(
        application,
        "/ws-origin-checked",
        headers=FOREIGN + await session_headers(user),
        subprotocols=subprotocols,
    )
    connected, _ = await ws.connect(timeout=TIMEOUT)
    assert not connected


@pytest.mark.parametrize(
    ("origin", "host"),
    [
        (b"http://testserver", b"testserver"),
        (b"https://127.0.0.1:8443", b"127.0.0.1:8443"),
        (b"http://localhost:8000", b"localhost:8000"),
    ],
)
async def test_allowed_hosts_origin_validator_accepts_the_sites_own_origins(
    origin: bytes, host: bytes
) -> None:
    """A browser on the site itself: its Origin names the Host it connects to."""
    headers = [(b"origin", origin), (b"host", host)]
    client = StreamClient(application, "/ws-origin-checked", headers=headers)
    await client.connect()
    try:
        assert (await client.subscribe("categories", "CREATE"))["ok"]
    finally:
        await client.disconnect()


async def test_consumer_refuses_a_cross_origin_graphql_transport_ws_handshake() -> None:
    """The consumer's own check (``allowed_origins``, same origin only by default)."""
    ws = WebsocketCommunicator(
        application, "/ws", headers=FOREIGN, subprotocols=["graphql-transport-ws"]
    )
    connected, _ = await ws.connect(timeout=TIMEOUT)
    assert not connected


async def test_consumer_refuses_a_cross_origin_stream_socket_handshake(
    caplog: pytest.LogCaptureFixture,
) -> None:
    victim: User = await make_user("victim")
    ws = WebsocketCommunicator(application, "/ws", headers=FOREIGN + await session_headers(victim))
    connected, _ = await ws.connect(timeout=TIMEOUT)
    try:
        assert not connected, "a page on http://evil.example opened a stream socket as the victim"
    finally:
        if connected:
            await ws.disconnect()


async def test_consumer_allowed_origins_accepts_a_listed_origin_on_both_protocols(
    clients: list[AnyClient],
) -> None:
    consumer = AuthMiddlewareStack(
        GraphQLWSConsumer.as_asgi(
            schema=depth_limited_schema, allowed_origins=["http://partner.example"]
        )
    )
    headers = [(b"origin", b"http://partner.example"), (b"host", b"testserver")]
    async with StreamClient(consumer, headers=headers) as client:
        assert client.channel_id
    await typed_client(clients, consumer, headers=headers)


# -- connection_init ------------------------------------------------------------------------------


async def test_a_graphql_transport_ws_client_that_never_inits_is_closed_with_4408(
    clients: list[AnyClient],
) -> None:
    patient = AuthMiddlewareStack(
        GraphQLWSConsumer.as_asgi(
            schema=strawberry.Schema(query=Query, subscription=subscription_type()),
            connection_init_wait_timeout=dt.timedelta(seconds=0.2),
        )
    )
    silent = TypedClient(patient)
    clients.append(silent)
    await silent.handshake()
    assert await silent.receive_close() == (4408, "Connection initialisation timeout")
    prompt = await typed_client(clients, patient)  # acknowledged: connection_init in time
    await prompt.subscribe("subscription { categoryChanged { data { name } } }", operation_id="1")
    await wait_subscribed("categories")
    await asyncio.sleep(0.3)  # not a wait for anything: the timeout passes, and must not fire
    await Category.objects.acreate(name="still open")
    assert (await prompt.receive())["id"] == "1"
