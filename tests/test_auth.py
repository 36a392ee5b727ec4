"""Who is on the other end of a socket: the session cookie (Channels' ``AuthMiddlewareStack``) or
the ``AUTHENTICATE`` hook (a token in ``connection_init`` or in the stream socket's query string);
a refused connection is closed with 4403.

Real users, real sessions (``Client.force_login`` and its cookie) and real tokens (``ApiToken``),
in-process through ``WebsocketCommunicator``. The helpers here are shared by the other security
test modules (``test_permissions``, ``test_limits``, ``test_fuzz``).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import secrets
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
from asgiref.sync import sync_to_async
from channels.testing import WebsocketCommunicator
from django.conf import settings
from django.contrib.auth.models import User
from django.test import Client, override_settings

from strawberry_model_subs import control
from strawberry_model_subs.hub import get_hub
from strawberry_model_subs.session import StreamSession
from strawberry_model_subs.testing import StreamClient
from tests.conftest import make_user, wait_until
from tests.testapp.asgi import application
from tests.testapp.models import ApiToken, Note

pytestmark = pytest.mark.django_db(transaction=True)

#: Seconds any single frame may take to arrive.
TIMEOUT = 5.0
REJECTED_CLOSE_CODE = 4403
REQUIRED_HOOK = "tests.testapp.auth.authenticate_required"

Headers = list[tuple[bytes, bytes]]


def subs_settings(**changes: Any) -> override_settings:
    """``STRAWBERRY_MODEL_SUBS`` of the test settings with ``changes`` (the hook kept)."""
    return override_settings(STRAWBERRY_MODEL_SUBS={**settings.STRAWBERRY_MODEL_SUBS, **changes})


# -- users, sessions, tokens ----------------------------------------------------------------------


def _session_cookie(user: User) -> str:
    client = Client()
    client.force_login(user)
    return str(client.cookies["sessionid"].value)


async def session_headers(user: User) -> Headers:
    """The ``Cookie`` header of a real logged-in session of ``user``."""
    key = await sync_to_async(_session_cookie)(user)
    return [(b"cookie", f"sessionid={key}".encode())]


async def make_token(user: User) -> str:
    token = await ApiToken.objects.acreate(key=secrets.token_urlsafe(32), user=user)
    return token.key


def session_of(client: StreamClient) -> StreamSession:
    """The server side of a stream socket (to read whom the server thinks it belongs to)."""
    assert client.channel_id is not None
    return control._sessions[control.channel_name_of(client.channel_id)]


# -- graphql-transport-ws -------------------------------------------------------------------------


class TransportWS:
    """A graphql-transport-ws (or graphql-ws) client on ``WebsocketCommunicator``."""

    def __init__(
        self,
        app: Any = application,
        path: str = "/ws",
        *,
        headers: Headers | None = None,
        protocol: str = "graphql-transport-ws",
    ) -> None:
        self.protocol = protocol
        self.ws = WebsocketCommunicator(app, path, headers=headers, subprotocols=[protocol])

    async def open(self, payload: dict[str, Any] | None = None) -> dict[str, Any]:
        """Connect and send ``connection_init``; return the server's first answer (raw output:
        ``websocket.send`` with the ack, or ``websocket.close``)."""
        connected, subprotocol = await self.ws.connect(timeout=TIMEOUT)
        assert connected, f"the handshake was refused ({subprotocol})"
        assert subprotocol == self.protocol
        init: dict[str, Any] = {"type": "connection_init"}
        if payload is not None:
            init["payload"] = payload
        await self.ws.send_json_to(init)
        return await self.output()

    async def open_acked(self, payload: dict[str, Any] | None = None) -> TransportWS:
        first = await self.open(payload)
        assert first.get("type") == "websocket.send", first
        assert json.loads(first["text"])["type"] == "connection_ack", first
        return self

    async def output(self) -> dict[str, Any]:
        """The next raw ASGI message from the server (a send or a close), graphql-ws keep-alives
        (``ka``) skipped."""
        while True:
            message: dict[str, Any] = await self.ws.receive_output(timeout=TIMEOUT)
            if message.get("text") != '{"type":"ka"}':
                return message

    async def receive(self) -> dict[str, Any]:
        """The next protocol message, graphql-ws keep-alives (``ka``) skipped."""
        while True:
            message: dict[str, Any] = await self.ws.receive_json_from(timeout=TIMEOUT)
            if message.get("type") != "ka":
                return message

    async def subscribe(
        self, op_id: str, query: str, variables: dict[str, Any] | None = None
    ) -> None:
        kind = "subscribe" if self.protocol == "graphql-transport-ws" else "start"
        await self.ws.send_json_to(
            {"id": op_id, "type": kind, "payload": {"query": query, "variables": variables}}
        )

    async def close(self) -> None:
        await self.ws.disconnect()


async def wait_subscribed(stream: str, count: int = 1) -> None:
    """Typed subscriptions send no ack: wait (bounded) until the hub holds ``count`` of them."""
    hub = get_hub()
    await wait_until(
        lambda: hub.refs.get(stream, 0) >= count, f"{count} subscription(s) to {stream!r}"
    )


NOTE_CHANGED = "subscription { noteChanged { action data { id owner text } } }"


def note_data(message: dict[str, Any]) -> dict[str, Any]:
    """The ``data`` of a ``noteChanged`` next message."""
    assert message["type"] in ("next", "data"), message
    data: dict[str, Any] = message["payload"]["data"]["noteChanged"]["data"]
    return data


# -- fixtures -------------------------------------------------------------------------------------


@pytest.fixture
async def opened() -> AsyncIterator[Callable[[TransportWS], Awaitable[TransportWS]]]:
    """Register transport clients to be closed when the test ends."""
    clients: list[TransportWS] = []

    async def register(client: TransportWS) -> TransportWS:
        clients.append(client)
        return client

    yield register
    for client in clients:
        await client.close()


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
    alice: User, bob: User, opened: Any
) -> None:
    gql = await opened(TransportWS(headers=await session_headers(alice)))
    await gql.open_acked()
    await gql.subscribe("1", NOTE_CHANGED)
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
    alice: User, opened: Any
) -> None:
    headers = await session_headers(alice)
    alice.set_password("a new one")
    await alice.asave()
    gql = await opened(TransportWS(headers=headers))
    await gql.open_acked()
    await gql.subscribe("1", NOTE_CHANGED)
    message = await gql.receive()
    assert message["type"] == "error"
    assert message["payload"][0]["message"].startswith("permission denied for stream 'notes'")


# -- tokens through the AUTHENTICATE hook ---------------------------------------------------------


@pytest.mark.parametrize("protocol", ["graphql-transport-ws", "graphql-ws"])
async def test_token_in_connection_init_authenticates_the_connection(
    alice: User, bob: User, opened: Any, protocol: str
) -> None:
    gql = await opened(TransportWS(protocol=protocol))
    await gql.open_acked({"token": await make_token(alice)})
    await gql.subscribe("1", NOTE_CHANGED)
    await wait_subscribed("notes")
    await Note.objects.acreate(owner=bob, text="bob's")
    mine = await Note.objects.acreate(owner=alice, text="alice's")
    assert note_data(await gql.receive())["id"] == mine.pk


async def test_token_in_the_query_string_authenticates_the_stream_socket(alice: User) -> None:
    token = await make_token(alice)
    async with StreamClient(application, f"/ws?token={token}") as client:
        assert session_of(client).owner == str(alice.pk)


async def test_token_user_takes_precedence_over_the_session_user(
    alice: User, bob: User, opened: Any
) -> None:
    gql = await opened(TransportWS(headers=await session_headers(bob)))
    await gql.open_acked({"token": await make_token(alice)})
    await gql.subscribe("1", NOTE_CHANGED)
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
    alice: User, token: object, opened: Any
) -> None:
    await make_token(alice)
    gql = await opened(TransportWS())
    assert await gql.open({"token": token}) == {
        "type": "websocket.close",
        "code": REJECTED_CLOSE_CODE,
        "reason": "Forbidden",
    }


async def test_bad_token_answers_graphql_ws_with_connection_error_and_closes(
    opened: Any,
) -> None:
    """graphql-ws has no 4403: Strawberry answers ``connection_error`` and closes (1011)."""
    gql = await opened(TransportWS(protocol="graphql-ws"))
    first = await gql.open({"token": "not-a-token"})
    assert json.loads(first["text"]) == {
        "type": "connection_error",
        "payload": {"reason": "invalid token"},
    }
    assert await gql.output() == {"type": "websocket.close", "code": 1011}


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
    before = set(control._sessions)
    ws = WebsocketCommunicator(application, path, headers=headers)
    try:
        connected, _ = await ws.connect(timeout=TIMEOUT)
        assert connected  # accepted, so that the close code reaches the client
        assert await ws.receive_output(timeout=TIMEOUT) == {
            "type": "websocket.close",
            "code": REJECTED_CLOSE_CODE,
        }
        assert set(control._sessions) == before
    finally:
        await abandon(ws)


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
    ws = WebsocketCommunicator(application, "/ws?token=not-a-token")
    try:
        assert (await ws.connect(timeout=TIMEOUT))[0]
        assert (await ws.receive_output(timeout=TIMEOUT))["code"] == REJECTED_CLOSE_CODE
        for frame in frames:  # sent before the client saw the close: ignored
            await ws.send_to(text_data=frame)
            assert await ws.receive_nothing(timeout=0.1)
        try:
            await ws.disconnect()  # the client's close: the consumer must end without an error
        except Exception as exc:
            raise ApplicationCrashed(f"the consumer raised {exc!r} on disconnect") from exc
    finally:
        if not ws.future.done():
            await abandon(ws)


async def test_empty_token_in_the_query_string_is_no_token_and_the_socket_anonymous() -> None:
    """``parse_qsl`` drops blank values: ``?token=`` is a connection without a token."""
    async with StreamClient(application, "/ws?token=") as client:
        assert session_of(client).owner is None


async def test_token_of_an_inactive_user_is_refused(opened: Any) -> None:
    retired = await make_user("retired", active=False)
    gql = await opened(TransportWS())
    first = await gql.open({"token": await make_token(retired)})
    assert first["code"] == REJECTED_CLOSE_CODE


async def test_refused_connection_leaves_the_others_working(alice: User, opened: Any) -> None:
    good = await opened(TransportWS())
    await good.open_acked({"token": await make_token(alice)})
    bad = await opened(TransportWS())
    assert (await bad.open({"token": "nope"}))["code"] == REJECTED_CLOSE_CODE
    await good.subscribe("1", NOTE_CHANGED)
    await wait_subscribed("notes")
    mine = await Note.objects.acreate(owner=alice, text="still here")
    assert note_data(await good.receive())["id"] == mine.pk


# -- a hook that refuses anonymous connections ----------------------------------------------------


@override_settings(STRAWBERRY_MODEL_SUBS={"AUTHENTICATE": REQUIRED_HOOK})
@pytest.mark.parametrize("protocol", ["graphql-transport-ws", "stream"])
async def test_unauthenticated_connection_is_refused_with_4403(protocol: str) -> None:
    if protocol == "stream":
        await assert_stream_socket_refused("/ws")
    else:
        gql = TransportWS()
        try:
            assert (await gql.open())["code"] == REJECTED_CLOSE_CODE
        finally:
            await gql.close()


@override_settings(STRAWBERRY_MODEL_SUBS={"AUTHENTICATE": REQUIRED_HOOK})
async def test_required_hook_accepts_a_session_or_a_token(alice: User, opened: Any) -> None:
    async with StreamClient(application, headers=await session_headers(alice)) as by_cookie:
        assert session_of(by_cookie).owner == str(alice.pk)
    token = await make_token(alice)
    async with StreamClient(application, f"/ws?token={token}") as by_query:
        assert session_of(by_query).owner == str(alice.pk)
    gql = await opened(TransportWS())
    await gql.open_acked({"token": token})
