"""``GraphQLWSConsumer``: Strawberry's websocket consumer plus the stream protocol.

A client offering the ``graphql-transport-ws`` or ``graphql-ws`` subprotocol is handled by
Strawberry; a client offering no subprotocol speaks the stream protocol (see ``frames``).

Example::

    application = ProtocolTypeRouter({
        "http": get_asgi_application(),
        "websocket": URLRouter([re_path(r"^ws$", GraphQLWSConsumer.as_asgi(schema=schema))]),
    })
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl

from strawberry.channels import GraphQLWSConsumer as StrawberryGraphQLWSConsumer
from strawberry.exceptions import ConnectionRejectionError
from strawberry.schema.exceptions import CannotGetOperationTypeError

from .auth import Rejected, connection_user
from .conf import get_settings
from .control import (
    CONTROL_MESSAGE_TYPE,
    ControlMessage,
    channel_id_for,
    register_session,
    reply_message,
    unregister_session,
)
from .exceptions import ControlError
from .execution import execute_once, operation_kind
from .frames import FrameError, connect_frame, decode_request, dumps, error_frame
from .hub import get_hub
from .layers import is_process_local
from .outbox import Outbox
from .permissions import anonymous
from .session import StreamSession
from .ws_protocols import GraphQLWSHandler, PingingGraphQLTransportWSHandler

if TYPE_CHECKING:
    from strawberry.schema import BaseSchema

logger = logging.getLogger(__name__)

#: Close code of a connection refused by the AUTHENTICATE hook (as graphql-transport-ws's).
REJECTED_CLOSE_CODE = 4403
#: Close code of a subscription-protocol socket that sent a frame over MAX_FRAME_SIZE (RFC 6455).
FRAME_TOO_LARGE_CLOSE_CODE = 1009


def resilient(
    receive: Callable[[], Awaitable[dict[str, Any]]],
) -> Callable[[], Awaitable[dict[str, Any]]]:
    """``receive`` retried every second while the layer fails, logged once per outage.

    The receive runs as a task of its own: when the consumer ends and cancels the wait, the
    receive is cancelled until it stops, since redis-py can lose one cancellation and leave a
    receive running forever.
    """

    async def receive_until_it_works() -> dict[str, Any]:
        global _layer_down
        while True:
            task = asyncio.ensure_future(receive())
            try:
                message = await asyncio.shield(task)
            except asyncio.CancelledError:
                if not task.done():
                    asyncio.get_running_loop().create_task(_cancel_until_done(task))
                raise
            except Exception:
                if not _layer_down:
                    _layer_down = True
                    logger.exception("channel layer receive failed; sockets stay open, retrying")
                await asyncio.sleep(1.0)
                continue
            _layer_down = False
            return message

    return receive_until_it_works


async def _cancel_until_done(task: asyncio.Future[Any], tries: int = 50) -> None:
    for _ in range(tries):
        task.cancel()
        with contextlib.suppress(BaseException):
            await asyncio.wait_for(asyncio.shield(task), 0.2)
        if task.done():
            return
    logger.warning("a channel layer receive ignored %d cancellations", tries)


_layer_down = False


async def _never() -> dict[str, Any]:
    """A receive that never returns (until cancelled with its consumer)."""
    await asyncio.get_running_loop().create_future()
    raise AssertionError("unreachable")


class GraphQLWSConsumer(StrawberryGraphQLWSConsumer):
    """Serves graphql-transport-ws, graphql-ws and the stream protocol on one websocket route.

    Takes Strawberry's arguments (``connection_init_wait_timeout``,
    ``max_subscriptions_per_connection``, ``allowed_origins``...) with two more, and other
    defaults for keep-alive:

    Args:
        ping_interval: seconds between the server's graphql-transport-ws pings (None: none).
        ping_timeout: seconds a graphql-transport-ws peer has to answer a ping before it is
            closed with code 1001.
        keep_alive: send graphql-ws ``ka`` frames (default True).
        keep_alive_interval: seconds between ``ka`` frames (default 15).
    """

    graphql_transport_ws_handler_class = PingingGraphQLTransportWSHandler
    graphql_ws_handler_class = GraphQLWSHandler
    session: StreamSession | None = None
    _operation_outbox: Outbox | None = None
    #: The connection's user (see ``auth``): set on connect (stream protocol) or on
    #: ``connection_init`` (graphql-transport-ws, graphql-ws).
    user: Any = None

    def __init__(
        self,
        schema: BaseSchema,
        *,
        ping_interval: float | None = 30.0,
        ping_timeout: float = 20.0,
        keep_alive: bool = True,
        keep_alive_interval: float = 15.0,
        **kwargs: Any,
    ) -> None:
        self.ping_interval = ping_interval
        self.ping_timeout = ping_timeout
        self.user = anonymous()
        super().__init__(
            schema, keep_alive=keep_alive, keep_alive_interval=keep_alive_interval, **kwargs
        )

    # Channels sets ``channel_receive`` to the layer's receive for this socket's channel and
    # lets an exception from it end the consumer: one Redis outage would drop every socket.
    # The setter wraps it so a socket outlives the outage (control messages resume after).
    @property
    def channel_receive(self) -> Callable[[], Awaitable[dict[str, Any]]]:
        return self._channel_receive

    @channel_receive.setter
    def channel_receive(self, receive: Callable[[], Awaitable[dict[str, Any]]]) -> None:
        if not is_process_local(self.channel_layer):
            self._channel_receive = resilient(receive)
        elif self.scope.get("subprotocols"):
            # The in-memory layer's receive neither fails nor loses a cancellation: it is kept as
            # it is (the wrapper costs a task per socket).
            self._channel_receive = receive
        else:
            # A stream socket on the in-memory layer is reached directly (its control operations
            # through control.register_session): its layer channel would never carry a message,
            # and listening costs a queue per socket plus, on every receive of every channel, a
            # scan of all the queues (InMemoryChannelLayer), quadratic in the sockets.
            self._channel_receive = _never

    async def connect(self) -> None:
        if self.scope.get("subprotocols"):
            await super().connect()
            return
        if not self._check_websocket_origin(self):
            await self.close()  # before accepting: the handshake is refused with 403
            return
        if self.channel_layer is None:
            logger.error("stream socket refused: no channel layer is configured (CHANNEL_LAYERS)")
            await self.close(code=1011)
            return
        await self.accept()
        params = dict(parse_qsl(self.scope.get("query_string", b"").decode("latin1")))
        try:
            self.user = await connection_user(self.scope, params)
        except Rejected as exc:
            logger.info("stream socket refused by AUTHENTICATE: %s", exc)
            await self.close(code=REJECTED_CLOSE_CODE)
            return
        self.session = StreamSession(get_hub(), self.send, self.close, self.user)
        # Strawberry's protocol queue is never used by a stream socket with a session: an
        # asyncio.Queue per socket is 3 KB of idle memory.
        del self.message_queue
        register_session(self.channel_name, self.session)
        await self.send(text_data=connect_frame(channel_id_for(self.channel_name)))

    async def on_ws_connect(self, context: Any) -> Any:
        """graphql-transport-ws / graphql-ws ``connection_init``: who is connecting."""
        params = context.get("connection_params") if isinstance(context, dict) else None
        try:
            self.user = await connection_user(
                self.scope, params if isinstance(params, dict) else {}
            )
        except Rejected as exc:
            raise ConnectionRejectionError({"reason": str(exc)}) from exc
        return await super().on_ws_connect(context)

    def decode_json(self, data: str | bytes) -> object:
        # JSON nested deeper than the recursion limit is invalid JSON to the protocol handlers
        # (graphql-transport-ws closes with 4400), not a crash of the connection's handler.
        try:
            return super().decode_json(data)
        except RecursionError:
            raise json.JSONDecodeError("JSON nested too deeply", "", 0) from None

    def operation_outbox(self) -> Outbox:
        """The send queue of this connection's typed subscriptions (see ``shared``)."""
        if self._operation_outbox is None:
            self._operation_outbox = Outbox(self.send, self.close)
        return self._operation_outbox

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        limit = get_settings().MAX_FRAME_SIZE
        too_large = len(text_data or bytes_data or "") > limit
        if self.session is None:
            if not self.scope.get("subprotocols"):
                return  # a refused stream socket, closing: what its client still sends is moot
            if too_large:
                await self.close(code=FRAME_TOO_LARGE_CLOSE_CODE)
                return
            await super().receive(text_data, bytes_data)
            return
        if too_large:
            self.session.push_text(
                error_frame(f"frame too large: at most {limit} characters (MAX_FRAME_SIZE)")
            )
            return
        self.session.push_text(await self._answer(text_data))

    async def _answer(self, text: str | None) -> str:
        """The response frame to one client frame on the stream socket."""
        try:
            request = decode_request(text)
        except FrameError as exc:
            return error_frame(str(exc))
        query = request["query"]
        variables = request.get("variables")
        operation_name = request.get("operationName")
        kind = operation_kind(query, operation_name)
        context = await self.get_context(self, response=self)  # type: ignore[func-returns-value]
        if kind == "control":
            result = await execute_once(self.schema, query, variables, operation_name, context)
        elif kind == "subscription":
            return error_frame(
                "only the control operations (the *Subscription fields) run on a stream socket; "
                "connect with the graphql-transport-ws subprotocol for other subscriptions"
            )
        else:
            try:
                result = await self.schema.execute(
                    query,
                    variable_values=variables,
                    context_value=context,
                    operation_name=operation_name,
                )
            except CannotGetOperationTypeError as exc:
                return error_frame(exc.as_http_error_reason())
        return dumps(await self.process_result(self, result))

    async def disconnect(self, code: int) -> None:
        if self.session is None:
            if self.run_task is not None:  # None: refused before any protocol ran
                await super().disconnect(code)
            if self._operation_outbox is not None:
                await self._operation_outbox.close()
            return
        unregister_session(self.channel_name)
        await self.session.close()

    async def dispatch(self, message: Any) -> None:
        if message.get("type") == CONTROL_MESSAGE_TYPE:
            await self._control_from_layer(message)
        else:
            await super().dispatch(message)

    async def _control_from_layer(self, message: ControlMessage) -> None:
        """A control operation for this socket, run by another process."""
        error: str | None = None
        try:
            if self.session is None:
                raise ControlError("this socket speaks a subscription protocol, not the stream one")
            await self.session.apply(message["request"])
        except ControlError as exc:
            error = str(exc)
        assert self.channel_layer is not None
        await self.channel_layer.send(message["reply_to"], dict(reply_message(error)))
