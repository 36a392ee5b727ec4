"""The stream protocol end to end: a real uvicorn server, real websockets, real HTTP.

Models change only through the server's GraphQL mutations, so every event travels the real path:
signal, ``on_commit``, the in-memory channel layer, the hub, the socket. Absence is proven by
ordering: after the change that must not arrive, a later "marker" change that must arrive is
made, and the first frame received has to be the marker's.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import httpx
import pytest

from strawberry_model_subs.control import channel_id_for, channel_name_of

from .clients import OpenSocket, StreamSocket, stream_socket, typed_socket
from .harness import (
    FRAME_TIMEOUT,
    LiveServer,
    LogWatch,
    ack,
    add_review,
    control,
    control_answer,
    control_request,
    create_product,
    create_product_then_fail,
    delete_product,
    event,
    post_graphql,
    product_event,
    update_product,
)

pytestmark = pytest.mark.e2e

#: ProductSerializer's fields in its output order (DRF puts relations after plain fields).
PRODUCT_FIELDS = ["id", "name", "price", "in_stock", "created", "tags", "status", "category"]


def review_event(pk: int, rating: int, product: int) -> dict[str, Any]:
    return event(
        "delete", "testapp.review", {"id": pk, "rating": rating, "product": product}, "reviews"
    )


def by_json(frames: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """``frames`` in a canonical order, to compare frames whose relative order is not promised."""
    return sorted(frames, key=lambda frame: json.dumps(frame, sort_keys=True))


async def transport_ws_control(
    e2e_server: LiveServer, request: dict[str, Any]
) -> list[dict[str, Any]]:
    """Run a control document as a one-shot subscription over graphql-transport-ws.

    Returns every message for the operation, up to and including ``complete`` or ``error``.
    """
    async with typed_socket(e2e_server.ws_url) as ws:
        return await ws.operation("control", request["query"], request["variables"])


async def failing_control(
    transport: str,
    http: httpx.AsyncClient,
    e2e_server: LiveServer,
    sock: StreamSocket,
    request: dict[str, Any],
) -> dict[str, Any]:
    """Send a control request that must fail, by ``transport``; return its GraphQL answer.

    A stream-socket request is sent on ``sock``; its answer must be the next frame (an ack
    sent for a failed request would arrive first and fail the caller's comparison).
    """
    if transport == "http":
        return await post_graphql(http, request["query"], request["variables"])
    if transport == "stream-socket":
        await sock.send(request)
        return await sock.next_frame("the GraphQL answer")
    messages = await transport_ws_control(e2e_server, request)
    if messages[0]["type"] == "error":
        assert messages == [{"id": "control", "type": "error", "payload": messages[0]["payload"]}]
        return {"data": None, "errors": messages[0]["payload"]}
    assert messages == [
        {"id": "control", "type": "next", "payload": messages[0]["payload"]},
        {"id": "control", "type": "complete"},
    ]
    answer: dict[str, Any] = messages[0]["payload"]
    return answer


async def wait_until_closed_on_server(http: httpx.AsyncClient, channel_id: str) -> None:
    """Return once the server has processed the close of ``channel_id``'s socket.

    Probes with an unsubscribe the socket never subscribed, which changes nothing either way:
    it fails with "no subscription" while the socket is open and "no open stream socket" after.
    """
    loop = asyncio.get_running_loop()
    deadline = loop.time() + FRAME_TIMEOUT
    while True:
        answer = await control(http, channel_id, operation="UNSUBSCRIBE", action="DELETE", pk=1)
        error = answer["data"]["productSubscription"]["error"]
        if error.startswith("no open stream socket"):
            return
        assert "no subscription" in error, answer
        assert loop.time() < deadline, f"the server still holds {channel_id} after its close"


# -- 1. the connect frame ---------------------------------------------------------------------


async def test_connect_frame_gives_each_socket_its_own_channel_id(
    e2e_server: LiveServer,
) -> None:
    channel_ids = []
    for _ in range(2):
        async with stream_socket(e2e_server.ws_url) as sock:
            frame = sock.connect_frame
            assert frame == {"channel_id": frame.get("channel_id"), "connect": "success"}
            assert isinstance(frame["channel_id"], str)
            assert frame["channel_id"]
            channel_ids.append(frame["channel_id"])
    assert channel_ids[0] != channel_ids[1]


# -- 2. three ways to send the control document -----------------------------------------------


async def test_control_over_http_is_answered_then_acked_on_the_named_socket(
    http: httpx.AsyncClient, open_socket: OpenSocket
) -> None:
    sock = await open_socket()
    bystander = await open_socket()
    await bystander.subscribe(http, action="UPDATE", data=["ID"])
    answer = await control(http, sock.channel_id, action="UPDATE", data=["ID", "NAME"])
    assert answer == {
        "data": {"productSubscription": {"ok": True, "error": None, "stream": "products"}}
    }
    assert await sock.next_frame("the ack") == {
        "action": "update",
        "operation": "subscribe",
        "ok": True,
        "stream": "products",
        "error": None,
    }
    pk = await create_product(http, "Tea")
    await update_product(http, pk, "Green tea")
    assert await sock.next_frame("the update") == product_event(
        "update", {"id": pk, "name": "Green tea"}
    )
    # The ack went to the named socket only: the bystander's first frame is the event.
    assert await bystander.next_frame("the update") == product_event("update", {"id": pk})


async def test_control_as_a_text_frame_is_answered_on_the_stream_socket_with_the_ack(
    http: httpx.AsyncClient, open_socket: OpenSocket
) -> None:
    sock = await open_socket()
    await sock.send(control_request(sock.channel_id, action="ALL_ACTIONS", data=["NAME"]))
    frames = [await sock.next_frame("the answer or the ack") for _ in range(2)]
    assert by_json(frames) == by_json(
        [control_answer("products", ok=True), ack("SUBSCRIBE", "ALL_ACTIONS")]
    )
    await create_product(http, "Coffee")
    assert await sock.next_frame("the create") == product_event("create", {"name": "Coffee"})


async def test_control_frame_naming_another_socket_acks_that_socket_only(
    http: httpx.AsyncClient, open_socket: OpenSocket
) -> None:
    sender, named = await open_socket(), await open_socket()
    await sender.send(control_request(named.channel_id, action="CREATE", data=["NAME"]))
    assert await sender.next_frame("the answer") == control_answer("products", ok=True)
    assert await named.next_frame("the ack") == ack("SUBSCRIBE", "CREATE")
    await sender.send(control_request(sender.channel_id, action="UPDATE", data=["ID"]))
    frames = [await sender.next_frame("the answer or the ack") for _ in range(2)]
    assert by_json(frames) == by_json(
        [control_answer("products", ok=True), ack("SUBSCRIBE", "UPDATE")]
    )
    pk = await create_product(http, "Named")
    await update_product(http, pk, "Named, changed")
    assert await named.next_frame("the create") == product_event("create", {"name": "Named"})
    assert await sender.next_frame("the update") == product_event("update", {"id": pk})


async def test_control_as_a_graphql_transport_ws_one_shot_sends_next_then_complete(
    http: httpx.AsyncClient, e2e_server: LiveServer, open_socket: OpenSocket
) -> None:
    sock = await open_socket()
    request = control_request(sock.channel_id, action="CREATE", data=["ID", "NAME"])
    messages = await transport_ws_control(e2e_server, request)
    assert messages == [
        {"id": "control", "type": "next", "payload": control_answer("products", ok=True)},
        {"id": "control", "type": "complete"},
    ]
    assert await sock.next_frame("the ack") == ack("SUBSCRIBE", "CREATE")
    pk = await create_product(http, "Cocoa")
    assert await sock.next_frame("the create") == product_event(
        "create", {"id": pk, "name": "Cocoa"}
    )


# -- 3. notification frames and their fields --------------------------------------------------


async def test_without_data_every_serializer_field_is_sent(
    http: httpx.AsyncClient, open_socket: OpenSocket
) -> None:
    sock = await open_socket()
    await sock.subscribe(http, action="CREATE")
    pk = await create_product(http, "Juice", price="1.5")
    frame = await sock.next_frame("the create")
    data = frame["payload"]["data"]
    assert list(data) == PRODUCT_FIELDS
    assert isinstance(data["created"], str)
    assert data["created"]
    assert frame == product_event(
        "create",
        {
            "id": pk,
            "name": "Juice",
            "price": "1.50",
            "in_stock": True,
            "category": None,
            "created": data["created"],
            "tags": [],
            "status": "draft",
        },
    )


async def test_notification_holds_only_the_requested_fields(
    http: httpx.AsyncClient, open_socket: OpenSocket
) -> None:
    sock = await open_socket()
    pk = await create_product(http, "Soda", price="2.25")
    await sock.subscribe(http, action="UPDATE", data=["PRICE", "IN_STOCK"])
    await update_product(http, pk, "Diet soda")
    assert await sock.next_frame("the update") == {
        "stream": "products",
        "payload": {
            "action": "update",
            "model": "testapp.product",
            "data": {"price": "2.25", "in_stock": True},
        },
    }


# -- 4. which changes a subscription matches --------------------------------------------------


async def test_id_limits_the_subscription_to_one_object(
    http: httpx.AsyncClient, open_socket: OpenSocket
) -> None:
    sock = await open_socket()
    watched = await create_product(http, "Watched")
    other = await create_product(http, "Other")
    await sock.subscribe(http, action="UPDATE", pk=str(watched), data=["ID", "NAME"])
    await update_product(http, other, "Other, changed")
    await update_product(http, watched, "Watched, changed")
    assert await sock.next_frame("the watched object's update") == product_event(
        "update", {"id": watched, "name": "Watched, changed"}
    )


async def test_action_limits_the_subscription_to_one_action(
    http: httpx.AsyncClient, open_socket: OpenSocket
) -> None:
    sock = await open_socket()
    pk = await create_product(http, "Doomed")
    await sock.subscribe(http, action="DELETE", data=["ID"])
    await create_product(http, "Created meanwhile")
    await update_product(http, pk, "Doomed, renamed")
    await delete_product(http, pk)
    assert await sock.next_frame("the delete") == product_event("delete", {"id": pk})


async def test_all_actions_delivers_create_update_delete_in_order(
    http: httpx.AsyncClient, open_socket: OpenSocket
) -> None:
    sock = await open_socket()
    await sock.subscribe(http, action="ALL_ACTIONS", data=["ID", "NAME"])
    pk = await create_product(http, "Short-lived")
    await update_product(http, pk, "Renamed")
    await delete_product(http, pk)
    frames = [await sock.next_frame("create, update, then delete") for _ in range(3)]
    assert frames == [
        product_event("create", {"id": pk, "name": "Short-lived"}),
        product_event("update", {"id": pk, "name": "Renamed"}),
        product_event("delete", {"id": pk, "name": "Renamed"}),
    ]


async def test_unsubscribe_stops_exactly_the_subscription_it_names_and_is_acked(
    http: httpx.AsyncClient, open_socket: OpenSocket
) -> None:
    sock = await open_socket()
    a = await create_product(http, "A")
    b = await create_product(http, "B")
    await sock.subscribe(http, action="UPDATE", pk=a, data=["PRICE"])
    await sock.subscribe(http, action="UPDATE", data=["ID", "NAME"])
    await sock.subscribe(http, action="CREATE", data=["NAME"])

    # Unsubscribing the per-object subscription (PRICE) keeps the wildcard one (ID, NAME).
    answer = await control(http, sock.channel_id, operation="UNSUBSCRIBE", action="UPDATE", pk=a)
    assert answer == control_answer("products", ok=True)
    assert await sock.next_frame("the unsubscribe ack") == {
        "action": "update",
        "operation": "unsubscribe",
        "ok": True,
        "stream": "products",
        "error": None,
    }
    await update_product(http, a, "A2")
    assert await sock.next_frame("A's update") == product_event("update", {"id": a, "name": "A2"})

    # Unsubscribing UPDATE stops updates but not creates.
    await sock.unsubscribe(http, action="UPDATE")
    await update_product(http, b, "B2")
    await create_product(http, "Marker")
    assert await sock.next_frame("the marker's create") == product_event(
        "create", {"name": "Marker"}
    )


async def test_overlapping_subscriptions_deliver_each_event_once_with_the_union_of_fields(
    http: httpx.AsyncClient, open_socket: OpenSocket
) -> None:
    sock = await open_socket()
    a = await create_product(http, "A", price="1")
    b = await create_product(http, "B", price="2")
    await sock.subscribe(http, action="UPDATE", pk=a, data=["ID", "NAME"])
    await sock.subscribe(http, action="UPDATE", data=["ID", "PRICE"])
    await sock.subscribe(http, action="ALL_ACTIONS", pk=a, data=["STATUS"])
    await update_product(http, a, "A2")
    await update_product(http, b, "B2")
    assert await sock.next_frame("A's update, once") == product_event(
        "update", {"id": a, "name": "A2", "price": "1.00", "status": "draft"}
    )
    assert await sock.next_frame("B's update") == product_event(
        "update", {"id": b, "price": "2.00"}
    )


async def test_each_subscription_keeps_its_own_fields(
    http: httpx.AsyncClient, open_socket: OpenSocket
) -> None:
    names, prices, everything = await open_socket(), await open_socket(), await open_socket()
    pk = await create_product(http, "Kept", price="3")
    await names.subscribe(http, action="UPDATE", data=["NAME"])
    await names.subscribe(http, action="CREATE", data=["ID"])
    await prices.subscribe(http, action="UPDATE", data=["PRICE"])
    await everything.subscribe(http, action="UPDATE")
    await update_product(http, pk, "Kept, renamed")
    assert await names.next_frame("names' update") == product_event(
        "update", {"name": "Kept, renamed"}
    )
    assert await prices.next_frame("prices' update") == product_event("update", {"price": "3.00"})
    full = await everything.next_frame("everything's update")
    assert list(full["payload"]["data"]) == PRODUCT_FIELDS
    assert full["payload"]["data"]["name"] == "Kept, renamed"
    created = await create_product(http, "New")
    assert await names.next_frame("names' create") == product_event("create", {"id": created})


async def test_two_sockets_are_independent(
    http: httpx.AsyncClient, open_socket: OpenSocket
) -> None:
    first, second = await open_socket(), await open_socket()
    pk = await create_product(http, "Shared")
    await first.subscribe(http, action="UPDATE", data=["NAME"])
    await second.subscribe(http, action="UPDATE", data=["NAME"])
    await second.subscribe(http, action="CREATE", data=["NAME"])

    await first.unsubscribe(http, action="UPDATE")
    await update_product(http, pk, "Shared, changed")
    await create_product(http, "Only for second")
    assert await second.next_frame("the update") == product_event(
        "update", {"name": "Shared, changed"}
    )
    assert await second.next_frame("the create") == product_event(
        "create", {"name": "Only for second"}
    )
    # first unsubscribed: its next frame is the ack of a new subscription, nothing before it.
    await first.subscribe(http, action="DELETE", data=["ID"])
    await delete_product(http, pk)
    assert await first.next_frame("the delete") == product_event("delete", {"id": pk})


async def test_rolled_back_save_sends_nothing(
    http: httpx.AsyncClient, open_socket: OpenSocket
) -> None:
    sock = await open_socket()
    await sock.subscribe(http, action="CREATE", data=["NAME"])
    await create_product_then_fail(http, "Rolled back")
    await create_product(http, "Committed")
    assert await sock.next_frame("the committed create") == product_event(
        "create", {"name": "Committed"}
    )


async def test_delete_carries_the_data_as_it_was_with_its_id(
    http: httpx.AsyncClient, open_socket: OpenSocket
) -> None:
    sock = await open_socket()
    pk = await create_product(http, "Before", price="4.5")
    await sock.subscribe(http, action="UPDATE", pk=pk)
    await sock.subscribe(http, action="DELETE", pk=pk)
    await update_product(http, pk, "Last name")
    last = (await sock.next_frame("the update"))["payload"]["data"]
    assert list(last) == PRODUCT_FIELDS
    assert (last["id"], last["name"], last["price"]) == (pk, "Last name", "4.50")
    await delete_product(http, pk)
    assert await sock.next_frame("the delete") == product_event("delete", last)


async def test_cascade_delete_sends_a_delete_for_every_review(
    http: httpx.AsyncClient, open_socket: OpenSocket
) -> None:
    sock = await open_socket()
    doomed = await create_product(http, "Doomed")
    other = await create_product(http, "Other")
    first = await add_review(http, doomed, 4)
    second = await add_review(http, doomed, 2)
    third = await add_review(http, other, 5)
    await sock.subscribe(http, stream="reviews", action="DELETE")
    await sock.subscribe(http, action="DELETE", data=["ID"])

    await delete_product(http, doomed)
    frames = [await sock.next_frame("a delete of the doomed product") for _ in range(3)]
    assert by_json(frames) == by_json(
        [
            review_event(first, 4, doomed),
            review_event(second, 2, doomed),
            product_event("delete", {"id": doomed}),
        ]
    )
    await delete_product(http, other)
    frames = [await sock.next_frame("a delete of the other product") for _ in range(2)]
    assert by_json(frames) == by_json(
        [review_event(third, 5, other), product_event("delete", {"id": other})]
    )


# -- bad input: ok false with a reason, no ack, the socket keeps working ----------------------

BAD_CONTROLS: dict[str, tuple[str, dict[str, Any], str]] = {
    "unknown-channel-id": ("unknown", {}, "no open stream socket has channelId"),
    "forged-channel-id": ("forged", {}, "is malformed"),
    "malformed-channel-id": ("not a channel id!", {}, "is malformed"),
    "overlong-channel-id": ("x" * 150, {}, "is malformed"),
    "id-not-a-primary-key": ("own", {"pk": "abc"}, "is not a valid primary key"),
    "unsubscribe-never-subscribed": (
        "own",
        {"operation": "UNSUBSCRIBE", "action": "DELETE"},
        "has no subscription",
    ),
}
TRANSPORTS = ["http", "stream-socket", "graphql-transport-ws"]


@pytest.mark.parametrize("transport", TRANSPORTS)
@pytest.mark.parametrize("case", list(BAD_CONTROLS))
async def test_bad_control_gets_ok_false_with_a_reason_and_no_ack(
    case: str,
    transport: str,
    http: httpx.AsyncClient,
    e2e_server: LiveServer,
    open_socket: OpenSocket,
) -> None:
    sock = await open_socket()
    channel, kwargs, reason = BAD_CONTROLS[case]
    if channel == "own":
        channel = sock.channel_id
    elif channel == "unknown":
        # Signed with the server's SECRET_KEY (the same settings), but no socket has it.
        channel = channel_id_for(f"{channel_name_of(sock.channel_id)}0")
    elif channel == "forged":
        channel = f"{channel_name_of(sock.channel_id)}0:{sock.channel_id.rsplit(':', 1)[1]}"
    request = control_request(channel, **kwargs)
    answer = await failing_control(transport, http, e2e_server, sock, request)
    assert set(answer) == {"data"}, answer
    result = answer["data"]["productSubscription"]
    assert result["ok"] is False
    assert result["stream"] == "products"
    assert reason in result["error"]
    assert "Traceback" not in result["error"]
    # No ack was sent: the next frame is the ack of a good request; the socket still works.
    await sock.subscribe(http, action="CREATE", data=["NAME"])
    await create_product(http, "After a bad request")
    assert await sock.next_frame("the create") == product_event(
        "create", {"name": "After a bad request"}
    )


@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_field_name_not_in_the_enum_is_a_graphql_error_naming_it(
    transport: str,
    http: httpx.AsyncClient,
    e2e_server: LiveServer,
    open_socket: OpenSocket,
    server_log: LogWatch,
) -> None:
    # Strawberry logs every GraphQL error with its cause: expected here, and only this one.
    server_log.allow("'NO_SUCH_FIELD'")
    sock = await open_socket()
    request = control_request(sock.channel_id, data=["NAME", "NO_SUCH_FIELD"])
    answer = await failing_control(transport, http, e2e_server, sock, request)
    assert answer.get("data") is None, answer
    messages = [error["message"] for error in answer["errors"]]
    assert len(messages) == 1, messages
    assert "NO_SUCH_FIELD" in messages[0]
    assert "ProductFields" in messages[0]
    await sock.subscribe(http, action="CREATE", data=["NAME"])
    await create_product(http, "After a bad field")
    assert await sock.next_frame("the create") == product_event(
        "create", {"name": "After a bad field"}
    )


MALFORMED_FRAMES = {
    "not-json": ("{not json", "frame is not valid JSON"),
    "json-array": ("[1, 2]", "frame must be a JSON object"),
    "no-query": ('{"variables": {}}', 'frame must have a "query" string'),
    "empty-query": ('{"query": "  "}', 'frame must have a "query" string'),
    "variables-not-an-object": (
        '{"query": "{ productCount }", "variables": [1]}',
        '"variables" must be a JSON object or null',
    ),
}


@pytest.mark.parametrize("case", list(MALFORMED_FRAMES))
async def test_malformed_frame_gets_an_error_frame_and_the_socket_still_works(
    case: str, http: httpx.AsyncClient, open_socket: OpenSocket
) -> None:
    sock = await open_socket()
    text, reason = MALFORMED_FRAMES[case]
    await sock.send_raw(text)
    frame = await sock.next_frame("the error frame")
    assert frame == {"data": None, "errors": [{"message": frame["errors"][0]["message"]}]}
    assert frame["errors"][0]["message"].startswith(reason)
    await sock.send(control_request(sock.channel_id, action="CREATE", data=["NAME"]))
    frames = [await sock.next_frame("the answer or the ack") for _ in range(2)]
    assert by_json(frames) == by_json(
        [control_answer("products", ok=True), ack("SUBSCRIBE", "CREATE")]
    )
    await create_product(http, "After a malformed frame")
    assert await sock.next_frame("the create") == product_event(
        "create", {"name": "After a malformed frame"}
    )


async def test_binary_frame_gets_an_error_frame_and_the_socket_still_works(
    http: httpx.AsyncClient, open_socket: OpenSocket
) -> None:
    sock = await open_socket()
    request = control_request(sock.channel_id, action="CREATE", data=["NAME"])
    await sock.send_raw(json.dumps(request).encode())
    frame = await sock.next_frame("the error frame")
    assert frame == {
        "data": None,
        "errors": [{"message": "binary frames are not accepted: send a JSON text frame"}],
    }
    await sock.send(request)
    frames = [await sock.next_frame("the answer or the ack") for _ in range(2)]
    assert by_json(frames) == by_json(
        [control_answer("products", ok=True), ack("SUBSCRIBE", "CREATE")]
    )
    await create_product(http, "After a binary frame")
    assert await sock.next_frame("the create") == product_event(
        "create", {"name": "After a binary frame"}
    )


UNRUNNABLE_FRAMES = {
    "operation-name-matching-nothing": (
        {"query": "query Count { productCount }", "operationName": "Nope"},
        "Nope",
    ),
    "no-operation-in-document": (
        {"query": "fragment F on Query { productCount }"},
        "operation",
    ),
}


@pytest.mark.parametrize("case", list(UNRUNNABLE_FRAMES))
async def test_frame_naming_no_runnable_operation_gets_an_error_frame_and_the_socket_still_works(
    case: str, http: httpx.AsyncClient, open_socket: OpenSocket, server_log: LogWatch
) -> None:
    sock = await open_socket()
    frame, reason = UNRUNNABLE_FRAMES[case]
    await sock.send(frame)
    answer = await sock.next_frame("the error frame")
    assert answer.get("data") is None, answer
    assert len(answer["errors"]) == 1, answer
    assert reason in answer["errors"][0]["message"]
    await sock.send(control_request(sock.channel_id, action="CREATE", data=["NAME"]))
    frames = [await sock.next_frame("the answer or the ack") for _ in range(2)]
    assert by_json(frames) == by_json(
        [control_answer("products", ok=True), ack("SUBSCRIBE", "CREATE")]
    )


async def test_other_subscription_on_the_stream_socket_is_refused_and_the_socket_still_works(
    http: httpx.AsyncClient, open_socket: OpenSocket
) -> None:
    sock = await open_socket()
    await sock.send({"query": "subscription { productChanged { stream } }"})
    frame = await sock.next_frame("the error frame")
    assert frame["data"] is None
    assert "graphql-transport-ws" in frame["errors"][0]["message"]
    await sock.subscribe(http, action="CREATE", data=["NAME"])
    await create_product(http, "After a refused subscription")
    assert await sock.next_frame("the create") == product_event(
        "create", {"name": "After a refused subscription"}
    )


# -- a socket that closes ---------------------------------------------------------------------


@pytest.mark.parametrize("how", ["close-handshake", "dropped-connection"])
async def test_closed_socket_drops_its_subscriptions_and_others_still_receive(
    how: str, http: httpx.AsyncClient, open_socket: OpenSocket
) -> None:
    leaving, staying = await open_socket(), await open_socket()
    pk = await create_product(http, "Survivor")
    await leaving.subscribe(http, action="UPDATE", data=["NAME"])
    await leaving.subscribe(http, stream="categories", action="CREATE")
    await staying.subscribe(http, action="UPDATE", data=["NAME"])
    if how == "close-handshake":
        await leaving.close()
    else:
        leaving.ws.transport.abort()
    await wait_until_closed_on_server(http, leaving.channel_id)

    await update_product(http, pk, "Survivor, changed")
    assert await staying.next_frame("the update") == product_event(
        "update", {"name": "Survivor, changed"}
    )
    newcomer = await open_socket()
    await newcomer.subscribe(http, action="UPDATE", data=["ID"])
    await update_product(http, pk, "Survivor, again")
    assert await newcomer.next_frame("the update") == product_event("update", {"id": pk})
    assert await staying.next_frame("the update") == product_event(
        "update", {"name": "Survivor, again"}
    )
