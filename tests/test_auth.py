"""Who is on the other end of a socket: the session cookie (Channels' ``AuthMiddlewareStack``) or
the ``AUTHENTICATE`` hook (a token in ``connection_init`` or in the stream socket's query string);
a refused connection is closed with 4403.

Real users, real sessions (``Client.force_login`` and its cookie) and real tokens (``ApiToken``),
in-process through ``WebsocketCommunicator`` (``strawberry_model_subs.testing``'s clients); the
helpers the security test modules share are in ``tests/conftest.py``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from typing import Any

import pytest
from channels.testing import WebsocketCommunicator
from django.contrib.auth.models import User
from django.test import override_settings

from strawberry_model_subs.control import held_sockets
from strawberry_model_subs.testing import StreamClient, Subprotocol, TypedClient
from tests.conftest import (
    AnyClient,
    Headers,
    closed_on_connect,
    make_token,
    make_user,
    session_headers,
    session_of,
    typed_client,
    wait_subscribed,
)
from tests.testapp.asgi import application
from tests.testapp.models import Note

pytestmark = pytest.mark.django_db(transaction=True)

#: Seconds any single frame may take to arrive.
TIMEOUT = 5.0
REJECTED_CLOSE_CODE = 4403
REQUIRED_HOOK = "tests.testapp.auth.authenticate_required"

NOTE_CHANGED = "subscription { noteChanged { action data { id owner text } } }"


def note_data(message: dict[str, Any]) -> dict[str, Any]:
    """The ``data`` of a ``noteChanged`` next message."""
    assert message["type"] in ("next", "data"), message
    data: dict[str, Any] = message["payload"]["data"]["noteChanged"]["data"]
    return data


async def refusal(clients: list[AnyClient], **options: Any) -> tuple[int, str]:
    """The close code and reason with which the server answers the ``connection_init`` of a
    ``TypedClient(application, **options)``: it must be its first answer."""
    client = TypedClient(application, timeout=TIMEOUT, **options)
    clients.append(client)
    return await closed_on_connect(client)


# -- the session cookie ---------------------------------------------------------------------------


async def test_session_cookie_makes_the_stream_socket_belong_to_the_logged_in_user(
    alice: User,
) -> None:
    async with StreamClient(application, headers=await session_headers(alice)) as client:
        session = session_of(client)
        assert session.user.pk == alice.pk
        assert session.owner == str(alice.pk)


async def test_stream_socket_without_a_cookie_is_anonymous() -> None:
    async with StreamClient(application) as client:
        session = session_of(client)
        assert not session.user.is_authenticated
        assert session.owner is None


async def test_session_cookie_authenticates_a_typed_subscription(
    alice: User, bob: User, clients: list[AnyClient]
) -> None:
    gql = await typed_client(clients, headers=await session_headers(alice))
    await gql.subscribe(NOTE_CHANGED, operation_id="1")
    await wait_subscribed("notes")
    await Note.objects.acreate(owner=bob, text="bob's")
    mine = await Note.objects.acreate(owner=alice, text="alice's")
    # Bob's note was saved first: had it been delivered, it would be the first message.
    assert note_data(await gql.receive()) == {
        "id": mine.pk,
        "owner": str(alice.pk),
        "text": "alice's",
    }


async def test_session_invalidated_by_a_password_change_is_anonymous(
    alice: User, clients: list[AnyClient]
) -> None:
    headers = await session_headers(alice)
    alice.set_password("a new one")
    await alice.asave()
    gql = await typed_client(clients, headers=headers)
    await gql.subscribe(NOTE_CHANGED, operation_id="1")
    message = await gql.receive()
    assert message["type"] == "error"
    assert message["payload"][0]["message"].startswith("permission denied for stream 'notes'")


# -- tokens through the AUTHENTICATE hook ---------------------------------------------------------


@pytest.mark.parametrize("protocol", ["graphql-transport-ws", "graphql-ws"])
async def test_token_in_connection_init_authenticates_the_connection(
    alice: User, bob: User, clients: list[AnyClient], protocol: Subprotocol
) -> None:
    token = await make_token(alice)
    gql = await typed_client(clients, subprotocol=protocol, connection_params={"token": token})
    await gql.subscribe(NOTE_CHANGED, operation_id="1")
    await wait_subscribed("notes")
    await Note.objects.acreate(owner=bob, text="bob's")
    mine = await Note.objects.acreate(owner=alice, text="alice's")
    assert note_data(await gql.receive())["id"] == mine.pk


async def test_token_in_the_query_string_authenticates_the_stream_socket(alice: User) -> None:
    token = await make_token(alice)
    async with StreamClient(application, f"/ws?token={token}") as client:
        assert session_of(client).owner == str(alice.pk)


async def test_token_user_takes_precedence_over_the_session_user(
    alice: User, bob: User, clients: list[AnyClient]
) -> None:
    gql = await typed_client(
        clients,
        headers=await session_headers(bob),
        connection_params={"token": await make_token(alice)},
    )
    await gql.subscribe(NOTE_CHANGED, operation_id="1")
    await wait_subscribed("notes")
    await Note.objects.acreate(owner=bob, text="bob's")
    mine = await Note.objects.acreate(owner=alice, text="alice's")
    assert note_data(await gql.receive())["id"] == mine.pk


BAD_TOKENS: dict[str, object] = {
    "unknown": "not-a-token",
    "empty": "",
    "number": 12345,
    "list": ["a"],
    "unicode": "jeton-\u00e9\u20ac\U0001f600",
}


@pytest.mark.parametrize("token", list(BAD_TOKENS.values()), ids=list(BAD_TOKENS))
async def test_bad_token_closes_graphql_transport_ws_with_4403(
    alice: User, token: object, clients: list[AnyClient]
) -> None:
    await make_token(alice)
    closed = await refusal(clients, connection_params={"token": token})
    assert closed == (REJECTED_CLOSE_CODE, "Forbidden")


async def test_bad_token_answers_graphql_ws_with_connection_error_and_closes(
    clients: list[AnyClient],
) -> None:
    """graphql-ws has no 4403: Strawberry answers ``connection_error`` and closes (1011)."""
    gql = TypedClient(application, timeout=TIMEOUT, subprotocol="graphql-ws")
    clients.append(gql)
    await gql.handshake()
    await gql.send_text(
        json.dumps({"type": "connection_init", "payload": {"token": "not-a-token"}})
    )
    assert await gql.receive() == {
        "type": "connection_error",
        "payload": {"reason": "invalid token"},
    }
    assert await gql.receive_close() == (1011, "")


async def abandon(ws: WebsocketCommunicator) -> None:
    """Stop an in-process connection without sending it a disconnect."""
    ws.future.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await ws.future


async def assert_stream_socket_refused(path: str, headers: Headers | None = None) -> None:
    """The stream socket at ``path`` is accepted, then closed with 4403 before any frame, and
    no session is registered for it.

    The client's disconnect is not sent: see
    ``test_refused_stream_socket_handles_the_clients_frames_and_disconnect``.
    """
    before = set(held_sockets())
    client = StreamClient(application, path, headers=headers, timeout=TIMEOUT)
    try:
        # Accepted (a refused handshake fails otherwise), so that the close code reaches the
        # client, and closed before the connect frame.
        assert await closed_on_connect(client) == (REJECTED_CLOSE_CODE, "")
        assert set(held_sockets()) == before
    finally:
        await abandon(client.communicator)


@pytest.mark.parametrize(
    "query",
    ["token=not-a-token", "token=%00%ff", "token=x&token=not-a-token", "token=" + "9" * 500],
)
async def test_bad_token_closes_the_stream_socket_with_4403_before_any_frame(query: str) -> None:
    await assert_stream_socket_refused(f"/ws?{query}")


class ApplicationCrashed(Exception):
    """The in-process application raised instead of handling a message."""


@pytest.mark.parametrize(
    "frames", [[], ['{"query": "{ productCount }"}']], ids=["disconnect", "frame-then-disconnect"]
)
async def test_refused_stream_socket_handles_the_clients_frames_and_disconnect(
    frames: list[str],
) -> None:
    client = StreamClient(application, "/ws?token=not-a-token", timeout=TIMEOUT)
    try:
        code, _ = await closed_on_connect(client)  # accepted, then closed
        assert code == REJECTED_CLOSE_CODE
        for frame in frames:  # sent before the client saw the close: ignored
            await client.send_text(frame)
            await client.assert_no_frame(timeout=0.1)
        try:
            await client.disconnect()  # the client's close: the consumer must end without an error
        except Exception as exc:
            raise ApplicationCrashed(f"the consumer raised {exc!r} on disconnect") from exc
    finally:
        if not client.communicator.future.done():
            await abandon(client.communicator)


async def test_empty_token_in_the_query_string_is_no_token_and_the_socket_anonymous() -> None:
    """``parse_qsl`` drops blank values: ``?token=`` is a connection without a token."""
    async with StreamClient(application, "/ws?token=") as client:
        assert session_of(client).owner is None


async def test_token_of_an_inactive_user_is_refused(clients: list[AnyClient]) -> None:
    retired = await make_user("retired", active=False)
    code, _ = await refusal(clients, connection_params={"token": await make_token(retired)})
    assert code == REJECTED_CLOSE_CODE


async def test_refused_connection_leaves_the_others_working(
    alice: User, clients: list[AnyClient]
) -> None:
    good = await typed_client(clients, connection_params={"token": await make_token(alice)})
    code, _ = await refusal(clients, connection_params={"token": "nope"})
    assert code == REJECTED_CLOSE_CODE
    await good.subscribe(NOTE_CHANGED, operation_id="1")
    await wait_subscribed("notes")
    mine = await Note.objects.acreate(owner=alice, text="still here")
    assert note_data(await good.receive())["id"] == mine.pk


# -- a hook that refuses anonymous connections ----------------------------------------------------


@override_settings(STRAWBERRY_MODEL_SUBS={"AUTHENTICATE": REQUIRED_HOOK})
@pytest.mark.parametrize("protocol", ["graphql-transport-ws", "stream"])
async def test_unauthenticated_connection_is_refused_with_4403(
    protocol: str, clients: list[AnyClient]
) -> None:
    if protocol == "stream":
        await assert_stream_socket_refused("/ws")
    else:
        code, _ = await refusal(clients)
        assert code == REJECTED_CLOSE_CODE


@override_settings(STRAWBERRY_MODEL_SUBS={"AUTHENTICATE": REQUIRED_HOOK})
async def test_required_hook_accepts_a_session_or_a_token(
    alice: User, clients: list[AnyClient]
) -> None:
    async with StreamClient(application, headers=await session_headers(alice)) as by_cookie:
        assert session_of(by_cookie).owner == str(alice.pk)
    token = await make_token(alice)
    async with StreamClient(application, f"/ws?token={token}") as by_query:
        assert session_of(by_query).owner == str(alice.pk)
    await typed_client(clients, connection_params={"token": token})
