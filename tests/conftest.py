from __future__ import annotations

import asyncio
import os
import secrets
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from typing import Any, cast

import pytest
from asgiref.sync import sync_to_async
from channels.layers import (
    BaseChannelLayer,
    InMemoryChannelLayer,
    channel_layers,
    get_channel_layer,
)
from channels_redis.core import RedisChannelLayer
from channels_redis.pubsub import RedisPubSubChannelLayer
from django.conf import settings
from django.contrib.auth.models import User
from django.db import connections
from django.test import Client, override_settings

from strawberry_model_subs import Action, Event
from strawberry_model_subs.control import channel_name_of, held_sockets
from strawberry_model_subs.hub import get_hub
from strawberry_model_subs.layers import ChannelLayer
from strawberry_model_subs.publisher import get_publisher
from strawberry_model_subs.session import StreamSession
from strawberry_model_subs.testing import StreamClient, TypedClient
from tests.testapp.asgi import application
from tests.testapp.models import ApiToken

#: The two-server cluster fixtures of the scale-out and writer e2e tests.
pytest_plugins = ["tests.e2e.cluster"]

#: The layers of the services configuration, which tests/run_services.py selects.
SERVICE_LAYERS = ("redis", "redis-pubsub")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Skip the tests marked ``services`` unless this run is on PostgreSQL and Redis."""
    if os.environ.get("SMS_CHANNEL_LAYER") in SERVICE_LAYERS:
        return
    skip = pytest.mark.skip(
        reason="needs PostgreSQL and Redis: run by tests/run_services.py (make test)"
    )
    for item in items:
        if item.get_closest_marker("services") is not None:
            item.add_marker(skip)


@pytest.fixture(autouse=True)
def _fresh_layer() -> Iterator[None]:
    """Every test starts with an empty in-memory layer (no group left over from another)."""
    channel_layers.backends.clear()
    yield
    channel_layers.backends.clear()


def subs_settings(**changes: Any) -> override_settings:
    """``STRAWBERRY_MODEL_SUBS`` of the test settings with ``changes`` (the hook kept)."""
    return override_settings(STRAWBERRY_MODEL_SUBS={**settings.STRAWBERRY_MODEL_SUBS, **changes})


# -- clients --------------------------------------------------------------------------------------

#: The in-process clients of both protocols (strawberry_model_subs.testing).
AnyClient = StreamClient | TypedClient


@pytest.fixture
async def stream_client() -> AsyncIterator[StreamClient]:
    client = StreamClient(application)
    await client.connect()
    try:
        yield client
    finally:
        await client.disconnect()


@pytest.fixture
async def clients() -> AsyncIterator[list[AnyClient]]:
    """Clients to disconnect when the test ends: append them (and remove one closed already)."""
    opened: list[AnyClient] = []
    yield opened
    for client in opened:
        await client.disconnect()


async def typed_client(
    clients: list[AnyClient], app: Any = application, **options: Any
) -> TypedClient:
    """A ``TypedClient(app, **options)``, connected (acknowledged), disconnected when the test
    ends (``clients`` is the fixture's list)."""
    client = TypedClient(app, **options)
    clients.append(client)
    await client.connect()
    return client


async def closed_on_connect(client: AnyClient) -> tuple[int, str]:
    """The close code and reason with which the server answers ``client.connect()``: an
    accepted socket, closed before anything else was sent (a refused handshake fails)."""
    with pytest.raises(AssertionError, match="the server closed the socket"):
        await client.connect()
    assert client.closed is not None
    return client.closed


def session_of(client: StreamClient) -> StreamSession:
    """The server side of a stream socket (to read whom the server thinks it belongs to)."""
    assert client.channel_id is not None
    session = held_sockets()[channel_name_of(client.channel_id)]
    assert isinstance(session, StreamSession), session
    return session


async def wait_subscribed(stream: str, count: int = 1) -> None:
    """Typed subscriptions send no ack: wait (bounded) until the hub holds ``count`` references
    on ``stream``."""
    hub = get_hub()
    await wait_until(
        lambda: hub.state().references.get(stream, 0) >= count,
        f"{count} subscription(s) to {stream!r}",
    )


async def wait_until(condition: Callable[[], bool], what: str, timeout: float = 15.0) -> None:
    """Wait, bounded, for ``condition`` to hold: for state that no message announces."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        await asyncio.sleep(0.005)


def as_channel_layer(layer: BaseChannelLayer) -> ChannelLayer:
    """``layer`` as the library types a layer: types-channels types messages as
    ``dict[str, Any]``, the library's protocol as ``Mapping`` (the cast ``layers.get_layer``
    makes too)."""
    return cast(ChannelLayer, layer)


#: A hub's layer, for the tests that build a ``Hub`` without one on purpose: they exercise only
#: its in-process index and dispatch, which never touch the layer (the type is deliberately wrong).
NO_LAYER = cast(ChannelLayer, None)


async def group_members(group: str) -> set[str]:
    """The channels in a layer group, read from the layer itself (in-memory or Redis).

    Test-only seam: no layer has a public way to list a group, so this reads each one's
    internals (channels_redis's per-loop layers and keys) to check memberships really left.
    """
    layer = get_channel_layer()
    if isinstance(layer, InMemoryChannelLayer):
        return set(layer.groups.get(group, {}))
    if isinstance(layer, RedisPubSubChannelLayer):  # memberships live in the loop's layer
        # Test-only seam (as below for the Redis layer): the layer's own bookkeeping.
        loop_layer = layer._layers.get(asyncio.get_running_loop())
        if loop_layer is None:
            return set()
        return set(loop_layer.groups.get(loop_layer._get_group_channel_name(group), ()))
    assert isinstance(layer, RedisChannelLayer), layer
    members = await layer.connection(layer.consistent_hash(group)).zrange(
        layer._group_key(group), 0, -1
    )
    return {m.decode() for m in members}


@pytest.fixture(scope="session", autouse=True)
def _close_worker_thread_connections(
    django_db_setup: None, django_db_blocker: Any
) -> Iterator[None]:
    """Close the database connection of the thread that runs the async tests' ORM calls
    (asgiref's thread-sensitive executor) before the test database is dropped: PostgreSQL
    refuses to drop a database someone is still connected to."""
    yield
    with django_db_blocker.unblock():
        asyncio.run(sync_to_async(connections.close_all)())
        # The publisher reads changed objects back on a connection of its own thread.
        assert get_publisher().release_connections(), "the publisher kept its connections"


# -- users ----------------------------------------------------------------------------------------


async def make_user(username: str, *, staff: bool = False, active: bool = True) -> User:
    """A user without a usable password (hashing one costs a third of a second)."""
    return await User.objects.acreate_user(username=username, is_staff=staff, is_active=active)


Headers = list[tuple[bytes, bytes]]


def _session_cookie(user: User) -> str:
    client = Client()
    client.force_login(user)
    return str(client.cookies["sessionid"].value)


async def session_headers(user: User) -> Headers:
    """The ``Cookie`` header of a real logged-in session of ``user``."""
    key = await sync_to_async(_session_cookie)(user)
    return [(b"cookie", f"sessionid={key}".encode())]


async def make_token(user: User) -> str:
    """A real ``ApiToken`` of ``user``, as the test site's AUTHENTICATE hook reads it."""
    token = await ApiToken.objects.acreate(key=secrets.token_urlsafe(32), user=user)
    return token.key


@pytest.fixture
async def alice() -> User:
    return await make_user("alice")


@pytest.fixture
async def bob() -> User:
    return await make_user("bob")


Receive = Callable[[], Awaitable[dict[str, Any]]]
Listen = Callable[[str], Awaitable[Receive]]


class Inbox:
    """A subscriber of every action of one stream, straight on the process's hub."""

    user = None

    def __init__(self, stream: str) -> None:
        self.stream = stream
        self.queue: asyncio.Queue[Event] = asyncio.Queue()

    def push(self, event: Event, fields: object) -> None:
        self.queue.put_nowait(event)

    async def receive(self) -> dict[str, Any]:
        try:
            event = await asyncio.wait_for(self.queue.get(), 5)
        except asyncio.TimeoutError:
            raise AssertionError(f"no event on stream {self.stream!r} within 5 s") from None
        return {
            "stream": event.stream,
            "action": event.action.value,
            "model": event.model,
            "pk": event.pk,
            "data": event.data,
        }


@pytest.fixture
async def listen() -> AsyncIterator[Listen]:
    """``await (await listen("categories"))()`` is the next event of that stream."""
    hub = get_hub()
    joined: list[Inbox] = []

    async def join(stream: str) -> Receive:
        inbox = Inbox(stream)
        await hub.join(stream, inbox, (Action.ALL_ACTIONS, None, None))
        joined.append(inbox)
        return inbox.receive

    yield join
    for inbox in joined:
        hub.discard(inbox, inbox.stream, Action.ALL_ACTIONS, None)
        await hub.leave(inbox.stream)
