"""``GraphQLWSConsumer``: one websocket route for three protocols, a thin Channels adapter.

The consumer picks one handler per socket by the subprotocol its client offers:
``graphql-transport-ws`` and ``graphql-ws`` get Strawberry's handlers (with what
``ws_protocols`` adds), no subprotocol the stream protocol's (``stream_handler``). What stays here
is Channels: accepting or refusing the socket (its origin: ``origins``), who is connecting
(``auth``), the layer channel (control messages for a stream socket held here), and two
documented seams, each commented where it is: the layer receive wrapped so that a Redis outage
does not end every socket, and a stream socket's unused Strawberry queue released.

Example::

    application = ProtocolTypeRouter({
        "http": get_asgi_application(),
        "websocket": URLRouter([re_path(r"^ws$", GraphQLWSConsumer.as_asgi(schema=schema))]),
    })
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl

from channels.consumer import get_handler_name
from channels.db import aclose_old_connections
from strawberry.channels import GraphQLWSConsumer as StrawberryGraphQLWSConsumer
from strawberry.exceptions import ConnectionRejectionError

from .auth import Identity, Rejected, connection_identity, refresh_hook_configured
from .conf import get_settings
from .control import (
    CONTROL_MESSAGE_TYPE,
    ControlMessage,
    channel_id_for,
    register_session,
    reply_message,
    unregister_session,
)
from .execution import prepared_schema
from .frames import connect_frame
from .hub import Hub, get_hub
from .layers import is_process_local, never_receive, resilient
from .mailbox import Mailbox
from .origins import handshake_headers, normalize_allowed_origins, normalize_origin, origin_allowed
from .outbox import Outbox
from .permissions import anonymous, user_key
from .stream_handler import StreamHandler
from .transports import abort_connection
from .ws_protocols import GraphQLWSHandler, PingingGraphQLTransportWSHandler

if TYPE_CHECKING:
    from strawberry.schema import BaseSchema

logger = logging.getLogger(__name__)

#: Close code of a connection refused by the AUTHENTICATE hook (as graphql-transport-ws's).
REJECTED_CLOSE_CODE = 4403
#: Close code of a subscription-protocol socket that sent a frame over MAX_FRAME_SIZE (RFC 6455).
FRAME_TOO_LARGE_CLOSE_CODE = 1009
#: Seconds a close may wait for the socket to take its close frame before the connection is
#: aborted (a peer that stopped reading: see ``transports``).
CLOSE_TIMEOUT = 5.0


def _once_listening(
    listen: asyncio.Future[None], receive: Callable[[], Awaitable[dict[str, Any]]]
) -> Callable[[], Awaitable[dict[str, Any]]]:
    """``receive``, once ``listen`` is done."""

    async def receive_once_listening() -> dict[str, Any]:
        if not listen.done():
            # Not shielded (a shield is one more future per socket): the consumer's end cancels
            # this wait and with it ``listen``, which no one else awaits, and which reading
            # ``channel_name`` then leaves as it is.
            await listen
        return await receive()

    return receive_once_listening


_old_connections_closed_at = -math.inf


async def close_old_connections_now_and_then() -> None:
    """Close the database connections that are too old (``CONN_MAX_AGE``) or broken, as Django
    does around a request, unless that was done less than the ``OLD_CONNECTIONS_INTERVAL``
    setting's seconds ago (one second by default).

    Channels does it before every message of every socket: a hop to the thread that runs sync
    code and back, one socket after the other, which took a sixth of a server's time while
    thousands of sockets connected. A connection past its age or broken is closed within a
    second instead of at the next message.
    """
    global _old_connections_closed_at
    now = time.monotonic()
    if now - _old_connections_closed_at < get_settings().OLD_CONNECTIONS_INTERVAL:
        return
    _old_connections_closed_at = now
    await aclose_old_connections()


class GraphQLWSConsumer(StrawberryGraphQLWSConsumer):
    """Serves graphql-transport-ws, graphql-ws and the stream protocol on one websocket route.

    Takes Strawberry's arguments (``connection_init_wait_timeout``,
    ``max_subscriptions_per_connection``...) and these, with other defaults for keep-alive:

    Args:
        ping_interval: seconds between the server's graphql-transport-ws pings (None: none).
        ping_timeout: seconds a graphql-transport-ws peer has to answer a ping before it is
            closed with code 1001.
        keep_alive: send graphql-ws ``ka`` frames (default True).
        keep_alive_interval: seconds between ``ka`` frames (default 15).
        allowed_origins: the origins (``"https://app.example.com"``, or ``"*"`` for any) whose
            pages may open a socket besides the site's own (see
            :meth:`is_websocket_origin_allowed`); a handshake without ``Origin`` always may.
    """

    graphql_transport_ws_handler_class = PingingGraphQLTransportWSHandler
    graphql_ws_handler_class = GraphQLWSHandler
    #: The stream protocol's handler, on a stream socket once accepted (else None).
    stream: StreamHandler | None = None
    _operation_outbox: Outbox | None = None
    #: The connection's user (see ``auth``): set on connect (stream protocol) or on
    #: ``connection_init`` (graphql-transport-ws, graphql-ws).
    user: Any = None
    #: The origins besides the site's own whose pages may open a socket, normalized.
    allowed_origins: frozenset[str] = frozenset()
    #: Whether the socket was closed (or its handshake refused): nothing is sent after that.
    closed = False
    #: The hub holding this signed-in user's connection, and the user's key (see ``_hold``).
    _held: tuple[Hub, str] | None = None
    _ending: asyncio.Future[None] | None = None
    #: The timer that closes the connection when its credential expires (see ``auth``).
    _expiry: asyncio.TimerHandle | None = None
    #: A typed socket's layer channel is received from once this is done (see
    #: ``channel_receive``): when its name is first read after Channels set it up.
    _listen: asyncio.Future[None] | None = None
    _channel_receive: Callable[[], Awaitable[dict[str, Any]]]

    def __init__(
        self,
        schema: BaseSchema,
        *,
        ping_interval: float | None = 30.0,
        ping_timeout: float = 20.0,
        keep_alive: bool = True,
        keep_alive_interval: float = 15.0,
        allowed_origins: Sequence[str] = (),
        **kwargs: Any,
    ) -> None:
        self.ping_interval = ping_interval
        self.ping_timeout = ping_timeout
        self.user = anonymous()
        super().__init__(
            prepared_schema(schema),
            keep_alive=keep_alive,
            keep_alive_interval=keep_alive_interval,
            **kwargs,
        )
        # After Strawberry's constructor, which from 0.335 sets an empty allowed_origins of its
        # own (0.334 takes no such argument: it is not passed on).
        self.allowed_origins = normalize_allowed_origins(allowed_origins)
        # Strawberry's protocol queue, read by its handler alone (put_nowait, get): an
        # asyncio.Queue on every socket is 3 KB of idle memory.
        self.message_queue = Mailbox()  # type: ignore[assignment]

    # Channels sets ``channel_receive`` to the layer's receive for this socket's channel and
    # lets an exception from it end the consumer: one Redis outage would drop every socket.
    # The setter wraps it so a socket outlives the outage (control messages resume after).
    # The stubs type a layer channel's receive as an ASGI receive; it yields layer messages.
    @property  # type: ignore[override]
    def channel_receive(self) -> Callable[[], Awaitable[dict[str, Any]]]:
        """The receive of this socket's layer channel, as the setter below wrapped it."""
        return self._channel_receive

    @channel_receive.setter
    def channel_receive(self, receive: Callable[[], Awaitable[dict[str, Any]]]) -> None:
        local = is_process_local(self.channel_layer)
        if not self.scope.get("subprotocols"):
            # A stream socket on the in-memory layer is reached directly (its control operations
            # through control.register_session): its layer channel would never carry a message,
            # and listening costs a queue per socket plus, on every receive of every channel, a
            # scan of all the queues (InMemoryChannelLayer), quadratic in the sockets.
            self._channel_receive = never_receive if local else resilient(receive)
            return
        # Nothing of the library's reaches a typed socket through its layer channel, but a
        # user's resolver may (Strawberry's listen_to_channel, a group of the consumer's): each
        # reads channel_name to join a group or to give the name out. Listening waits for that
        # first read: until then it costs no queue, no buffer in channels_redis and, on the
        # in-memory layer, no scan of every channel's queue per connection. Channels has just
        # read the name, to make ``receive``: later reads count. (The in-memory layer's receive
        # neither fails nor loses a cancellation: it is kept as it is.)
        self._listen = asyncio.get_running_loop().create_future()
        self._channel_receive = _once_listening(
            self._listen, receive if local else resilient(receive)
        )

    # Channels sets the layer channel's name once (AsyncConsumer.__call__); reading it is what a
    # typed socket's listening waits for (see channel_receive).
    @property
    def channel_name(self) -> str:
        """This socket's channel in the channel layer."""
        listen, self._listen = self._listen, None
        if listen is not None and not listen.done():
            listen.set_result(None)
        return self._channel_name

    @channel_name.setter
    def channel_name(self, name: str) -> None:
        self._channel_name = name

    async def connect(self) -> None:
        """Refuse a handshake from an origin not allowed; hand a subprotocol socket to
        Strawberry; accept a stream socket, learn its user (close 4403 if the ``AUTHENTICATE``
        hook refuses) and send its connect frame."""
        # Every socket is checked here: Strawberry 0.334 checks no origin (from 0.335 its view
        # checks a subprotocol socket again, through this class's _check_websocket_origin).
        if not self._check_websocket_origin(self):
            await self.close()  # before accepting: the handshake is refused with 403
            return
        if self.scope.get("subprotocols"):
            await super().connect()
            return
        if self.channel_layer is None:
            logger.error("stream socket refused: no channel layer is configured (CHANNEL_LAYERS)")
            await self.close(code=1011)
            return
        await self.accept()
        params = dict(parse_qsl(self.scope.get("query_string", b"").decode("latin1")))
        try:
            identity = await connection_identity(self.scope, params)
        except Rejected as exc:
            logger.info("stream socket refused by AUTHENTICATE: %s", exc)
            await self.close(code=REJECTED_CLOSE_CODE)
            return
        self.user = identity.user
        self._arm(identity)
        await self._hold()
        self.stream = StreamHandler(self.schema, get_hub(), self.user, self)
        # Strawberry's protocol queue is never used by a stream socket.
        del self.message_queue
        register_session(self.channel_name, self.stream.session)
        await self.send(text_data=connect_frame(channel_id_for(self.channel_name)))

    def is_websocket_origin_allowed(
        self, request: StrawberryGraphQLWSConsumer, origin: str
    ) -> bool:
        """Whether a page on ``origin``, not the site's own, may open a socket: an origin of
        ``allowed_origins``, or any if they hold ``"*"``.

        Asked only of a cross-origin handshake (one without ``Origin``, or from the site's own
        origin, is let in). Override it for rules a list cannot express, such as every
        subdomain: a page on an origin allowed acts with its visitors' cookies.
        """
        if "*" in self.allowed_origins:
            return True
        normalized = normalize_origin(origin)
        return normalized is not None and normalized in self.allowed_origins

    def _check_websocket_origin(self, request: StrawberryGraphQLWSConsumer) -> bool:
        """Whether the handshake of ``request`` (this consumer) may open a socket (see
        ``origins``)."""
        return origin_allowed(
            handshake_headers(request.scope),
            lambda origin: self.is_websocket_origin_allowed(request, origin),
        )

    async def on_ws_connect(self, context: Any) -> Any:
        """graphql-transport-ws / graphql-ws ``connection_init``: who is connecting."""
        params = context.get("connection_params") if isinstance(context, dict) else None
        try:
            identity = await connection_identity(
                self.scope, params if isinstance(params, dict) else {}
            )
        except Rejected as exc:
            raise ConnectionRejectionError({"reason": str(exc)}) from exc
        self.user = identity.user
        self._arm(identity)
        await self._hold()
        return await super().on_ws_connect(context)

    async def _hold(self) -> None:
        """A signed-in user's connection is held by the hub, to be ended by ``revoke()``."""
        key = user_key(self.user)
        if key is not None and self._held is None:
            self._held = (get_hub(), key)
            await self._held[0].hold_connection(key, self)

    def revoke(self) -> None:
        """End this connection: its user was revoked (``revoke()``), closed with 4403."""
        self._ending = asyncio.ensure_future(self._end("revoked"))

    async def refresh_connection(self, params: Mapping[str, Any]) -> Identity:
        """Run the ``AUTHENTICATE`` hook again with ``params`` (the ``refreshConnection``
        mutation, sent over this socket): the connection's expiry becomes the new answer's.

        Raises:
            Rejected: the hook refused, no hook is configured, or the answer is another user;
                the connection keeps its expiry.
        """
        if not refresh_hook_configured():
            raise Rejected("no AUTHENTICATE hook is configured: there is nothing to refresh")
        identity = await connection_identity(self.scope, params)
        if user_key(identity.user) != user_key(self.user):
            raise Rejected("a refresh cannot change the connection's user")
        self._arm(identity)
        return identity

    def _arm(self, identity: Identity) -> None:
        """Close the connection when ``identity`` expires (replacing an earlier expiry)."""
        self._disarm()
        seconds = identity.seconds_left()
        if seconds is not None and not self.closed:
            self._expiry = asyncio.get_running_loop().call_later(seconds, self._expire)

    def _disarm(self) -> None:
        if self._expiry is not None:
            self._expiry.cancel()
            self._expiry = None

    def _expire(self) -> None:
        self._expiry = None
        logger.info("connection of user %s expired: closed with 4403", user_key(self.user))
        self._ending = asyncio.ensure_future(self._end("expired"))

    async def _end(self, reason: str) -> None:
        """Close with 4403 and ``reason`` (revoked, expired), and stop being held by the hub."""
        await self.close(code=REJECTED_CLOSE_CODE, reason=reason)
        await self._drop()

    async def _drop(self) -> None:
        """Stop being held by the hub (once)."""
        if self._held is not None:
            hub, key = self._held
            self._held = None
            await hub.drop_connection(key, self)

    def decode_json(self, data: str | bytes) -> object:
        """Strawberry's decoding, with JSON nested too deeply counted as invalid JSON."""
        # JSON nested deeper than the recursion limit is invalid JSON to the protocol handlers
        # (graphql-transport-ws closes with 4400), not a crash of the connection's handler.
        try:
            return super().decode_json(data)
        except RecursionError:
            raise json.JSONDecodeError("JSON nested too deeply", "", 0) from None

    # Channels' websocket consumer narrows AsyncConsumer.send so (its stubs say it too).
    async def send(  # type: ignore[override]
        self, text_data: str | None = None, bytes_data: bytes | None = None, close: bool = False
    ) -> None:
        """Channels' send, dropped once the socket is closed: a client that sent operations
        before its refusal reached it gets one close, and the ASGI server no error."""
        if self.closed:
            return
        await super().send(text_data, bytes_data, close)

    async def close(self, code: int | bool | None = None, reason: str | None = None) -> None:
        """Close (or refuse the handshake) once; later closes are dropped (see :meth:`send`).
        A close that does not go out within :data:`CLOSE_TIMEOUT` (a peer that stopped
        reading takes not even the close frame) aborts the connection (see ``transports``)."""
        if self.closed:
            return
        self.closed = True
        # Not asyncio.wait_for: before Python 3.12 it swallows a cancellation that comes as the
        # close completes (a consumer being stopped would then run on).
        closing = asyncio.ensure_future(super().close(code, reason))
        try:
            done, _ = await asyncio.wait({closing}, timeout=CLOSE_TIMEOUT)
        except asyncio.CancelledError:
            closing.cancel()
            raise
        if not done:
            closing.cancel()
            abort_connection(self.base_send, CLOSE_TIMEOUT)
        else:
            closing.result()

    def operation_outbox(self) -> Outbox:
        """The send queue of this connection's typed subscriptions (see ``shared``)."""
        if self._operation_outbox is None:
            self._operation_outbox = Outbox(self.send, self.close)
        return self._operation_outbox

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        """One client frame: to the stream handler, or (under MAX_FRAME_SIZE, else close 1009)
        to Strawberry's; ignored on a stream socket being refused."""
        size = len(text_data or bytes_data or "")
        if self.stream is not None:
            await self.stream.handle_text(text_data, size)
            return
        if not self.scope.get("subprotocols"):
            return  # a refused stream socket, closing: what its client still sends is moot
        if size > get_settings().MAX_FRAME_SIZE:
            await self.close(code=FRAME_TOO_LARGE_CLOSE_CODE)
            return
        await super().receive(text_data, bytes_data)

    async def disconnect(self, code: int) -> None:
        """End the socket's handler, its subscriptions and its send queues."""
        self._disarm()
        await self._drop()
        if self.stream is None:
            if self.run_task is not None:  # None: refused before any protocol ran
                await super().disconnect(code)
            if self._operation_outbox is not None:
                await self._operation_outbox.close()
            return
        unregister_session(self.channel_name)
        await self.stream.close()

    async def dispatch(self, message: Any) -> None:
        """A control operation from another process; a websocket message to its handler as
        Channels does, but with the database connections too old or broken closed at most once
        a second (see :func:`close_old_connections_now_and_then`); any other message as
        Strawberry does (to ``listen_to_channel``)."""
        type_ = message.get("type")
        if type_ == CONTROL_MESSAGE_TYPE:
            await self._control_from_layer(message)
            return
        if not isinstance(type_, str) or not type_.startswith("websocket."):
            await super().dispatch(message)
            return
        handler = getattr(self, get_handler_name(message), None)
        if handler is None:
            raise ValueError(f"No handler for message type {message['type']}")
        await close_old_connections_now_and_then()
        await handler(message)

    async def _control_from_layer(self, message: ControlMessage) -> None:
        """A control operation for this socket, run by another process."""
        if self.stream is None:
            reply = reply_message("this socket speaks a subscription protocol, not the stream one")
        else:
            reply = await self.stream.control_from_layer(message)
        assert self.channel_layer is not None
        await self.channel_layer.send(message["reply_to"], dict(reply))
