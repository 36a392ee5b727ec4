"""The stream protocol on GraphQLWSConsumer, in-process through WebsocketCommunicator."""

from __future__ import annotations

import json
import math
from collections.abc import AsyncIterator

import pytest
from channels.layers import InMemoryChannelLayer
from channels.testing import WebsocketCommunicator
from django.test import AsyncClient, override_settings

from strawberry_model_subs import consumers, control
from strawberry_model_subs.control import CHANNEL_NAME_RE, held_sockets
from strawberry_model_subs.events import Action
from strawberry_model_subs.exceptions import ControlError
from strawberry_model_subs.hub import get_hub
from strawberry_model_subs.layers import get_layer, is_process_local
from strawberry_model_subs.testing import StreamClient, control_document
from tests.conftest import group_members, session_of, wait_until
from tests.testapp.asgi import application
from tests.testapp.models import Category, Product, Review, Tag, Ticket

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
async def other_client() -> AsyncIterator[StreamClient]:
    async with StreamClient(application) as client:
        yield client


def payload(frame: dict) -> tuple[str, dict]:
    return frame["payload"]["action"], frame["payload"]["data"]


async def test_connect_frame_names_the_sockets_channel(stream_client: StreamClient) -> None:
    channel_id = stream_client.channel_id
    assert channel_id is not None
    name = control.channel_name_of(channel_id)
    assert name in held_sockets()
    assert CHANNEL_NAME_RE.match(name)


async def test_a_channel_id_cannot_be_forged_from_a_channel_name(
    stream_client: StreamClient, other_client: StreamClient
) -> None:
    assert stream_client.channel_id is not None
    assert other_client.channel_id is not None
    other_name = control.channel_name_of(other_client.channel_id)
    signature = stream_client.channel_id.rsplit(":", 1)[1]
    for forged in (other_name, f"{other_name}:{signature}"):
        result = await stream_client.execute(
            control_document("products"),
            {"operation": "SUBSCRIBE", "action": "UPDATE", "channelId": forged},
        )
        answer = result["data"]["productSubscription"]
        assert answer["ok"] is False
        assert "is malformed" in answer["error"]
    await other_client.assert_no_frame()


async def test_a_stream_socket_on_the_in_memory_layer_has_no_layer_queue(
    stream_client: StreamClient, other_client: StreamClient
) -> None:
    """Control reaches it directly; a queue per socket would make every receive scan them all."""
    layer = get_layer()
    if not is_process_local(layer):
        pytest.skip("the in-memory layer only: on Redis the channel carries control messages")
    assert stream_client.channel_id is not None
    name = control.channel_name_of(stream_client.channel_id)
    result = await other_client.execute(
        control_document("products"),
        {"operation": "SUBSCRIBE", "action": "UPDATE", "channelId": stream_client.channel_id},
    )
    assert result["data"]["productSubscription"]["ok"] is True  # anonymous, like the socket
    assert ("products", Action.UPDATE, None, None) in session_of(stream_client).subscriptions
    assert other_client.channel_id is not None
    other = control.channel_name_of(other_client.channel_id)
    assert isinstance(layer, InMemoryChannelLayer)  # is_process_local: the in-memory layer
    assert name not in layer.channels
    assert other not in layer.channels


def test_channel_ids_follow_secret_key_rotation() -> None:
    name = "specific.abc!def"
    with override_settings(SECRET_KEY="old-key"):
        old_id = control.channel_id_for(name)
    with override_settings(SECRET_KEY="new-key", SECRET_KEY_FALLBACKS=["old-key"]):
        assert control.channel_name_of(old_id) == name  # still valid while rotating
        assert control.channel_id_for(name) != old_id  # new ids use the new key
    with (
        override_settings(SECRET_KEY="new-key", SECRET_KEY_FALLBACKS=[]),
        pytest.raises(ControlError, match="is malformed"),
    ):
        control.channel_name_of(old_id)


async def test_update_reaches_subscriber_with_only_requested_fields(
    stream_client: StreamClient,
) -> None:
    product = await Product.objects.acreate(name="Tea", price="1.50")
    result = await stream_client.subscribe("products", "UPDATE", fields=["id", "price"])
    assert result == {
        "ok": True,
        "error": None,
        "stream": "products",
        "operation": "SUBSCRIBE",
        "action": "UPDATE",
    }
    product.name = "Green tea"
    await product.asave()
    assert await stream_client.receive_event() == {
        "stream": "products",
        "payload": {
            "action": "update",
            "model": "testapp.product",
            "data": {"id": product.pk, "price": "1.50"},
        },
    }


async def test_without_fields_every_serializer_field_is_sent(stream_client: StreamClient) -> None:
    await stream_client.subscribe("categories", "CREATE")
    category = await Category.objects.acreate(name="Hot drinks")
    assert payload(await stream_client.receive_event()) == (
        "create",
        {"id": category.pk, "name": "Hot drinks"},
    )


async def test_all_actions_delivers_create_update_delete_in_order(
    stream_client: StreamClient,
) -> None:
    await stream_client.subscribe("categories", "ALL_ACTIONS", fields=["name"])
    category = await Category.objects.acreate(name="a")
    category.name = "b"
    await category.asave()
    await category.adelete()
    actions = [payload(await stream_client.receive_event()) for _ in range(3)]
    assert actions == [
        ("create", {"name": "a"}),
        ("update", {"name": "b"}),
        ("delete", {"name": "b"}),
    ]


async def test_action_filter_skips_other_actions(stream_client: StreamClient) -> None:
    await stream_client.subscribe("categories", "DELETE", fields=["id"])
    category = await Category.objects.acreate(name="a")  # a create: not subscribed
    category.name = "b"
    await category.asave()  # an update: not subscribed
    pk = category.pk
    await category.adelete()
    assert payload(await stream_client.receive_event()) == ("delete", {"id": pk})
    await stream_client.assert_no_frame()


async def test_id_filter_limits_to_one_object(stream_client: StreamClient) -> None:
    first = await Category.objects.acreate(name="first")
    second = await Category.objects.acreate(name="second")
    await stream_client.subscribe("categories", "UPDATE", id=second.pk, fields=["name"])
    first.name = "first!"
    await first.asave()
    second.name = "second!"
    await second.asave()
    assert payload(await stream_client.receive_event()) == ("update", {"name": "second!"})
    await stream_client.assert_no_frame()


async def test_overlapping_subscriptions_deliver_once_with_the_union_of_fields(
    stream_client: StreamClient,
) -> None:
    product = await Product.objects.acreate(name="Tea")
    other = await Product.objects.acreate(name="Coffee")
    await stream_client.subscribe("products", "UPDATE", id=product.pk, fields=["name"])
    await stream_client.subscribe("products", "UPDATE", fields=["id"])
    product.name = "Tea!"
    await product.asave()
    other.name = "Coffee!"
    await other.asave()
    assert payload(await stream_client.receive_event()) == (
        "update",
        {"id": product.pk, "name": "Tea!"},
    )
    assert payload(await stream_client.receive_event()) == ("update", {"id": other.pk})
    await stream_client.assert_no_frame()


async def test_each_socket_keeps_its_own_fields(
    stream_client: StreamClient, other_client: StreamClient
) -> None:
    await stream_client.subscribe("products", "CREATE", fields=["name"])
    await other_client.subscribe("products", "CREATE", fields=["price"])
    await Product.objects.acreate(name="Tea", price="2.00")
    assert payload(await stream_client.receive_event()) == ("create", {"name": "Tea"})
    assert payload(await other_client.receive_event()) == ("create", {"price": "2.00"})


async def test_unsubscribe_stops_exactly_what_it_names(stream_client: StreamClient) -> None:
    await stream_client.subscribe("categories", "CREATE", fields=["name"])
    await stream_client.subscribe("categories", "UPDATE", fields=["name"])
    result = await stream_client.unsubscribe("categories", "CREATE")
    assert result["ok"] is True
    category = await Category.objects.acreate(name="quiet")
    category.name = "loud"
    await category.asave()
    assert payload(await stream_client.receive_event()) == ("update", {"name": "loud"})
    await stream_client.assert_no_frame()


async def test_resubscribing_the_same_flow_replaces_its_fields(stream_client: StreamClient) -> None:
    await stream_client.subscribe("categories", "CREATE", fields=["name"])
    await stream_client.subscribe("categories", "CREATE", fields=["id"])
    category = await Category.objects.acreate(name="x")
    assert payload(await stream_client.receive_event()) == ("create", {"id": category.pk})
    await stream_client.unsubscribe("categories", "CREATE")
    assert get_hub().state().subscriptions == {}


async def test_two_sockets_are_independent(
    stream_client: StreamClient, other_client: StreamClient
) -> None:
    await stream_client.subscribe("categories", "CREATE", fields=["name"])
    await other_client.subscribe("categories", "CREATE", fields=["name"])
    await other_client.unsubscribe("categories", "CREATE")
    await Category.objects.acreate(name="only one")
    assert payload(await stream_client.receive_event()) == ("create", {"name": "only one"})
    await other_client.assert_no_frame()


async def test_closing_a_socket_leaves_its_groups_and_the_hub_stops() -> None:
    hub = get_hub()
    async with StreamClient(application) as client:
        await client.subscribe("categories", "CREATE")
        await client.subscribe("products", "UPDATE", id=3)
        assert set(hub.state().references) == {"categories", "products"}
        assert hub.state().channel in await group_members("sms.categories")
    state = hub.state()
    assert state.subscriptions == {}
    assert not state.references
    await wait_until(lambda: not hub.state().receiving, "the hub's receive loop to stop")
    # This hub's membership: a hub of another test whose loop ended mid-join may linger.
    assert state.channel not in await group_members("sms.categories")
    assert state.channel not in await group_members("sms.products")


async def test_cascade_delete_sends_a_delete_for_every_child(stream_client: StreamClient) -> None:
    product = await Product.objects.acreate(name="Tea")
    reviews = [await Review.objects.acreate(product=product, rating=r) for r in (4, 5)]
    await stream_client.subscribe("reviews", "DELETE", fields=["id", "product"])
    product_pk = product.pk
    await product.adelete()
    received = [payload(await stream_client.receive_event()) for _ in reviews]
    assert sorted(received, key=lambda p: p[1]["id"]) == [
        ("delete", {"id": review.pk, "product": product_pk}) for review in reviews
    ]


@pytest.mark.parametrize("code", ["0", "café-au-lait"])
async def test_string_primary_keys_work(stream_client: StreamClient, code: str) -> None:
    tag = await Tag.objects.acreate(code=code, label="x")
    assert (await stream_client.subscribe("tags", "UPDATE", id=code))["ok"]
    tag.label = "y"
    await tag.asave()
    assert payload(await stream_client.receive_event()) == ("update", {"code": code, "label": "y"})


async def test_uuid_primary_key_matches_whatever_its_spelling(stream_client: StreamClient) -> None:
    ticket = await Ticket.objects.acreate(title="a")
    spelled = ticket.pk.hex.upper()  # no dashes, upper case: the same UUID
    assert (await stream_client.subscribe("tickets", "UPDATE", id=spelled))["ok"]
    ticket.title = "b"
    await ticket.asave()
    assert payload(await stream_client.receive_event()) == (
        "update",
        {"id": str(ticket.pk), "title": "b"},
    )


async def test_primary_key_zero_is_an_id_not_every_object(stream_client: StreamClient) -> None:
    zero = await Category.objects.acreate(id=0, name="zero")
    other = await Category.objects.acreate(name="other")
    await stream_client.subscribe("categories", "UPDATE", id=0, fields=["id"])
    other.name = "x"
    await other.asave()
    zero.name = "y"
    await zero.asave()
    assert payload(await stream_client.receive_event()) == ("update", {"id": 0})
    await stream_client.assert_no_frame()


# -- bad input ----------------------------------------------------------------------------------


@override_settings(STRAWBERRY_MODEL_SUBS={"CONTROL_TIMEOUT": 0.5})
async def test_unknown_channel_id_is_refused(stream_client: StreamClient) -> None:
    """On the in-memory layer at once; on Redis once no socket answers within CONTROL_TIMEOUT."""
    result = await stream_client.execute(
        control_document("products"),
        {
            "operation": "SUBSCRIBE",
            "action": "UPDATE",
            "channelId": control.channel_id_for("specific.nope!nothing"),
        },
    )
    answer = result["data"]["productSubscription"]
    assert answer["ok"] is False
    assert "no open stream socket has channelId" in answer["error"]
    await stream_client.assert_no_frame()


@pytest.mark.parametrize("channel_id", ["", "has space", "x" * 120, "a!b!c", "ünïcode"])
async def test_malformed_channel_id_is_refused(
    stream_client: StreamClient, channel_id: str
) -> None:
    result = await stream_client.execute(
        control_document("products"),
        {"operation": "SUBSCRIBE", "action": "UPDATE", "channelId": channel_id},
    )
    answer = result["data"]["productSubscription"]
    assert answer["ok"] is False
    assert "is malformed" in answer["error"]


@pytest.mark.parametrize(
    ("stream", "bad_id", "reason"),
    [
        ("products", "abc", "must be an integer"),
        ("tickets", "not-a-uuid", "is not a valid UUID"),
    ],
)
async def test_id_that_is_no_primary_key_is_refused(
    stream_client: StreamClient, stream: str, bad_id: str, reason: str
) -> None:
    result = await stream_client.subscribe(stream, "UPDATE", id=bad_id)
    assert result["ok"] is False
    assert f"id '{bad_id}' is not a valid primary key" in result["error"]
    assert reason in result["error"]
    await stream_client.assert_no_frame()


async def test_unsubscribing_what_was_never_subscribed_is_refused(
    stream_client: StreamClient,
) -> None:
    await stream_client.subscribe("products", "ALL_ACTIONS")
    result = await stream_client.unsubscribe("products", "UPDATE", id=5)
    assert result["ok"] is False
    assert result["error"] == (
        "this socket has no subscription to products update id 5 to unsubscribe "
        "(it holds: products all_actions)"
    )


async def test_an_empty_field_list_is_refused(stream_client: StreamClient) -> None:
    result = await stream_client.subscribe("products", "UPDATE", fields=[])
    assert result["ok"] is False
    assert "data names no field" in result["error"]
    await stream_client.assert_no_frame()


async def test_unknown_field_name_is_a_graphql_error(stream_client: StreamClient) -> None:
    result = await stream_client.execute(
        control_document("products"),
        {
            "operation": "SUBSCRIBE",
            "action": "UPDATE",
            "channelId": stream_client.channel_id,
            "data": ["NAME", "COLOUR"],
        },
    )
    assert result["data"] is None
    assert "COLOUR" in result["errors"][0]["message"]
    assert "ProductFields" in result["errors"][0]["message"]


@pytest.mark.parametrize(
    "frame",
    ["{not json", "[]", '{"query": 5}', '{"query": "subscription { productChanged { model } }"}'],
)
async def test_bad_frames_get_an_error_frame_and_the_socket_keeps_working(
    stream_client: StreamClient, frame: str
) -> None:
    await stream_client.send_text(frame)
    response = await stream_client.receive_response()
    assert response["data"] is None
    assert response["errors"][0]["message"]
    assert (await stream_client.subscribe("categories", "CREATE"))["ok"] is True


async def test_binary_frame_gets_an_error_frame(stream_client: StreamClient) -> None:
    await stream_client.communicator.send_to(bytes_data=b"\x00\x01")
    response = await stream_client.receive_response()
    assert "binary frames are not accepted" in response["errors"][0]["message"]


async def test_queries_and_mutations_run_on_the_stream_socket(stream_client: StreamClient) -> None:
    await stream_client.subscribe("products", "CREATE", fields=["name"])
    response = await stream_client.execute('mutation { createProduct(name: "Tea") { name } }')
    assert response == {"data": {"createProduct": {"name": "Tea"}}}
    assert payload(await stream_client.receive_event()) == ("create", {"name": "Tea"})
    assert await stream_client.execute("{ productCount }") == {"data": {"productCount": 1}}


# -- the control operation over other transports --------------------------------------------------


async def test_control_over_graphql_transport_ws_is_a_one_shot(stream_client: StreamClient) -> None:
    ws = WebsocketCommunicator(application, "/ws", subprotocols=["graphql-transport-ws"])
    connected, subprotocol = await ws.connect()
    assert connected
    assert subprotocol == "graphql-transport-ws"
    try:
        await ws.send_json_to({"type": "connection_init"})
        assert (await ws.receive_json_from())["type"] == "connection_ack"
        variables = {
            "operation": "SUBSCRIBE",
            "action": "CREATE",
            "channelId": stream_client.channel_id,
            "data": ["NAME"],
        }
        await ws.send_json_to(
            {
                "id": "1",
                "type": "subscribe",
                "payload": {"query": control_document("categories"), "variables": variables},
            }
        )
        assert await ws.receive_json_from() == {
            "id": "1",
            "type": "next",
            "payload": {
                "data": {
                    "categorySubscription": {
                        "ok": True,
                        "error": None,
                        "stream": "categories",
                        "operation": "SUBSCRIBE",
                        "action": "CREATE",
                    }
                }
            },
        }
        assert await ws.receive_json_from() == {"id": "1", "type": "complete"}
    finally:
        await ws.disconnect()
    ack = await stream_client.receive_matching(lambda f: "operation" in f)
    assert ack == {
        "action": "create",
        "operation": "subscribe",
        "ok": True,
        "stream": "categories",
        "error": None,
    }
    await Category.objects.acreate(name="via gql")
    assert payload(await stream_client.receive_event()) == ("create", {"name": "via gql"})


async def test_control_over_http_post(
    stream_client: StreamClient, async_client: AsyncClient
) -> None:
    query = (
        "subscription { productSubscription(operation: SUBSCRIBE, action: CREATE, "
        f'channelId: "{stream_client.channel_id}", data: [NAME]) {{ ok error stream }} }}'
    )
    response = await async_client.post(
        "/graphql", json.dumps({"query": query}), content_type="application/json"
    )
    assert response.status_code == 200
    assert response.json() == {
        "data": {"productSubscription": {"ok": True, "error": None, "stream": "products"}}
    }
    ack = await stream_client.receive_matching(lambda f: "operation" in f)
    assert ack["ok"] is True
    await Product.objects.acreate(name="posted")
    assert payload(await stream_client.receive_event()) == ("create", {"name": "posted"})


async def test_other_subscriptions_over_http_are_still_refused(async_client: AsyncClient) -> None:
    response = await async_client.post(
        "/graphql",
        json.dumps({"query": "subscription { productChanged { model } }"}),
        content_type="application/json",
    )
    assert response.status_code == 400
    assert b"graphql-transport-ws" in response.content


@pytest.fixture
def closings(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Every closing of the old database connections the consumer asks for, counted."""
    calls: list[int] = []

    async def counting() -> None:
        calls.append(1)

    # Test-only seam: Channels' closing of old connections (a thread hop), counted.
    monkeypatch.setattr(consumers, "aclose_old_connections", counting)
    monkeypatch.setattr(consumers, "_old_connections_closed_at", -math.inf)
    return calls


async def run_control_operations(count: int) -> None:
    """Connect a stream socket and run ``count`` subscribes on it."""
    client = StreamClient(application)
    try:
        await client.connect()
        for _ in range(count):
            assert (await client.subscribe("products", "CREATE"))["ok"]
    finally:
        await client.disconnect()


@override_settings(STRAWBERRY_MODEL_SUBS={"OLD_CONNECTIONS_INTERVAL": 3600})
async def test_old_database_connections_are_closed_at_most_once_an_interval(
    closings: list[int],
) -> None:
    await run_control_operations(5)
    assert closings == [1]  # 6 messages within the interval, one closing


@override_settings(STRAWBERRY_MODEL_SUBS={"OLD_CONNECTIONS_INTERVAL": 0})
async def test_an_interval_of_0_closes_old_database_connections_before_every_message(
    closings: list[int],
) -> None:
    await run_control_operations(5)
    assert len(closings) >= 6  # the connect, 5 control operations (and the disconnect)
