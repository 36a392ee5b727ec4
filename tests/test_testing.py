"""``strawberry_model_subs.testing``'s clients, as a project's tests use them (the stream client
is used throughout the suite): the typed-subscription client, raw frames, closes, and the
frames a client must refuse."""

from __future__ import annotations

from typing import Any

import pytest

from strawberry_model_subs.consumers import GraphQLWSConsumer
from strawberry_model_subs.cursors import parse_cursor
from strawberry_model_subs.hub import get_hub
from strawberry_model_subs.testing import StreamClient, TypedClient
from tests.conftest import wait_until
from tests.testapp.asgi import application
from tests.testapp.models import Category
from tests.testapp.schema import schema

pytestmark = pytest.mark.django_db(transaction=True)

CATEGORIES = "subscription { categoryChanged { action data { id name } } }"


async def test_typed_client_receives_each_operations_events_and_completes() -> None:
    async with TypedClient(application, "/ws") as client:
        first = await client.subscribe(CATEGORIES, stream="categories")
        second = await client.subscribe(
            "subscription Only($id: ID) { categoryChanged(id: $id) { action } }",
            {"id": "999999"},
            stream="categories",
        )
        assert first != second
        category = await Category.objects.acreate(name="tea")
        result = await client.receive_next(first)
        assert result["data"]["categoryChanged"] == {
            "action": "CREATE",
            "data": {"id": category.pk, "name": "tea"},
        }
        await client.complete(first)
        await client.complete(second)
        await wait_until(
            lambda: get_hub().state().references.get("categories", 0) == 0, "no subscription"
        )
        await Category.objects.acreate(name="after")
        await client.assert_no_message()


async def test_typed_client_reports_a_refused_operation() -> None:
    async with TypedClient(application, "/ws") as client:
        op = await client.subscribe('subscription { categoryChanged(id: "abc") { action } }')
        errors = await client.receive_error(op)
        assert "not a valid primary key" in errors[0]["message"]
        other = await client.subscribe('subscription { categoryChanged(id: "abc") { action } }')
        with pytest.raises(AssertionError, match="failed"):
            await client.receive_next(other)


async def test_subscribe_with_a_stream_fails_clearly_when_nothing_subscribes() -> None:
    async with TypedClient(application, "/ws", timeout=0.5) as client:
        with pytest.raises(AssertionError, match="did not subscribe to 'categories'"):
            await client.subscribe(
                "subscription { productChanged { action } }", stream="categories"
            )


# -- raw frames, any message, closes -------------------------------------------------------------


def scripted(*outputs: dict[str, Any], accept: bool = True) -> Any:
    """An ASGI websocket application that accepts (or refuses) the handshake, sends ``outputs``
    and waits for the client's disconnect: server behaviour the test site never shows."""

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        assert (await receive())["type"] == "websocket.connect"
        if not accept:
            await send({"type": "websocket.close", "code": 4000})
            return
        await send({"type": "websocket.accept"})
        for output in outputs:
            await send(output)
        while (await receive())["type"] != "websocket.disconnect":
            pass

    return app


def text(frame: str) -> dict[str, Any]:
    return {"type": "websocket.send", "text": frame}


async def test_stream_client_sends_raw_frames_and_receives_whatever_comes_next() -> None:
    async with StreamClient(application) as client:
        await client.send_text("")  # an empty frame too
        assert await client.receive() == {
            "data": None,
            "errors": [
                {"message": "frame is not valid JSON: Expecting value: line 1 column 1 (char 0)"}
            ],
        }
        await client.send_bytes(b'{"query": "{ productCount }"}')
        answer = await client.receive(timeout=1.0)
        assert answer["errors"][0]["message"].startswith("binary frames are not accepted")
        await client.assert_no_frame()


async def test_receive_hands_over_a_frame_an_earlier_wait_kept_first() -> None:
    async with StreamClient(application) as client:
        await client.send_text('{"query": "{ productCount }"}')
        await client.send_text("{not json")
        error = await client.receive_matching(lambda frame: bool(frame.get("errors")))
        assert error["errors"][0]["message"].startswith("frame is not valid JSON")
        assert await client.receive() == {"data": {"productCount": 0}}


async def test_a_read_that_times_out_fails_clearly_and_the_client_still_disconnects() -> None:
    client = StreamClient(application)
    await client.connect()
    with pytest.raises(AssertionError, match=r"no frame arrived within 0\.05 s"):
        await client.receive(timeout=0.05)
    await client.disconnect()  # the communicator cancelled the application: nothing to raise


async def test_an_accepted_then_closed_socket_fails_the_read_and_holds_its_close() -> None:
    client = StreamClient(application, "/ws?token=not-a-token")
    assert client.closed is None
    with pytest.raises(AssertionError, match=r"^the server closed the socket \(4403\)$"):
        await client.connect()
    assert client.closed == (4403, "")
    with pytest.raises(AssertionError, match="the server closed the socket"):
        await client.receive(timeout=5.0)  # at once: nothing comes after the close
    assert await client.receive_close() == (4403, "")
    await client.disconnect()


async def test_a_refused_handshake_is_no_close_of_the_socket() -> None:
    client = StreamClient(scripted(accept=False))
    with pytest.raises(AssertionError, match=r"refused \(4000\)"):
        await client.connect()
    assert client.closed is None


@pytest.mark.parametrize(
    ("output", "close"),
    [
        ({"type": "websocket.close", "code": 4000, "reason": "bye"}, (4000, "bye")),
        ({"type": "websocket.close"}, (1000, "")),
    ],
    ids=["code-and-reason", "neither"],
)
async def test_receive_close_returns_the_code_and_reason(
    output: dict[str, Any], close: tuple[int, str]
) -> None:
    client = StreamClient(scripted(text('{"connect": "success", "channel_id": "x"}'), output))
    await client.connect()
    assert await client.receive_close() == close
    await client.disconnect()


async def test_receive_close_fails_when_a_message_comes_first() -> None:
    async with TypedClient(application) as client:
        await client.send_text('{"type": "ping"}')
        with pytest.raises(AssertionError, match="expected the server to close the socket, got"):
            await client.receive_close()


@pytest.mark.parametrize(
    ("frame", "error"),
    [
        ('{"connect": "success", "channel_id": "\ud800"}', "is not valid UTF-8"),
        ('["connect"]', "is not a JSON object"),
        ("{not json", "is not JSON"),
    ],
    ids=["lone-surrogate", "array", "not-json"],
)
async def test_a_frame_a_real_server_could_not_send_or_no_json_object_fails(
    frame: str, error: str
) -> None:
    client = StreamClient(scripted(text(frame)))
    with pytest.raises(AssertionError, match=error):
        await client.connect()
    await client.disconnect()


# -- graphql-transport-ws without its connection_init, and graphql-ws -----------------------------


async def test_handshake_opens_the_socket_without_connection_init() -> None:
    client = TypedClient(application)
    await client.handshake()
    await client.send_text('{"type": "connection_init", "payload": [1]}')
    assert await client.receive_close() == (4400, "Invalid connection init payload")
    await client.disconnect()


async def test_connect_refused_by_authenticate_fails_and_holds_the_close() -> None:
    client = TypedClient(application, connection_params={"token": "not-a-token"})
    with pytest.raises(AssertionError, match=r"^the server closed the socket \(4403 Forbidden\)$"):
        await client.connect()
    assert client.closed == (4403, "Forbidden")
    await client.disconnect()


async def test_typed_client_answers_server_pings_while_it_waits() -> None:
    pinging = GraphQLWSConsumer.as_asgi(schema=schema, ping_interval=0.05, ping_timeout=0.3)
    async with TypedClient(pinging) as client:
        # Unanswered, the first ping would have closed the socket after 0.35 s.
        await client.assert_no_message(timeout=0.6)  # pings came and were answered
        await client.send_text('{"type": "ping"}')
        assert await client.receive() == {"type": "pong"}  # still open


async def test_typed_client_speaks_graphql_ws() -> None:
    keeping_alive = GraphQLWSConsumer.as_asgi(schema=schema, keep_alive_interval=0.05)
    async with TypedClient(keeping_alive, subprotocol="graphql-ws") as client:
        await client.assert_no_message(timeout=0.2)  # keep-alives are skipped
        op = await client.subscribe(CATEGORIES, stream="categories")
        refused = await client.subscribe('subscription { categoryChanged(id: "abc") { action } }')
        errors = await client.receive_error(refused)
        assert "not a valid primary key" in errors[0]["message"]
        category = await Category.objects.acreate(name="legacy")
        result = await client.receive_next(op)
        assert result["data"]["categoryChanged"] == {
            "action": "CREATE",
            "data": {"id": category.pk, "name": "legacy"},
        }
        await client.complete(op)  # a stop message
        await client.receive_complete(op)
        await wait_until(
            lambda: get_hub().state().references.get("categories", 0) == 0, "no subscription"
        )
        await Category.objects.acreate(name="after")
        await client.assert_no_message()


@pytest.mark.django_db(transaction=True)
async def test_stream_client_subscribes_from_a_cursor() -> None:
    async with StreamClient(application) as client:
        assert (await client.subscribe("categories", "CREATE", after=""))["ok"]
        await Category.objects.acreate(name="first")
        first = await client.receive_event()
    await Category.objects.acreate(name="missed")
    async with StreamClient(application) as client:
        assert (await client.subscribe("categories", "CREATE", after=first["cursor"]))["ok"]
        missed = await client.receive_event()
    assert missed["payload"]["data"]["name"] == "missed"
    assert parse_cursor(missed["cursor"]).offset > parse_cursor(first["cursor"]).offset
