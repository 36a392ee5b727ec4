"""Strawberry's two websocket protocol handlers, with what they lack.

graphql-transport-ws: Strawberry answers the client's pings; this handler also sends its own
``ping`` every ``ping_interval`` seconds once the connection is acknowledged, and closes the socket
(code 1001, "Pong timeout") when nothing at all arrives from the client within ``ping_timeout``
seconds of a ping. Any message counts as a sign of life, a ``pong`` above all.

graphql-ws (subscriptions-transport-ws): Strawberry runs every operation through
``schema.subscribe``, which refuses queries and mutations; this handler runs them too, as the
protocol allows (one ``data``, then ``complete``).

Both handlers check a message's shape (``message_problem``) before Strawberry reads it:
Strawberry indexes every message as an object and uses its id as a dict key, so a message that
is not an object, an id that is not a string or a payload that is not an object would kill the
connection's handler. graphql-transport-ws closes such a connection with 4400, as its
specification says; graphql-ws answers an ``error`` for a ``start`` it can name by id and drops
any other malformed message, as subscriptions-transport-ws servers do.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from typing import Any, Literal, Protocol, runtime_checkable

from strawberry.subscriptions.protocols.graphql_transport_ws.handlers import (
    BaseGraphQLTransportWSHandler,
)
from strawberry.subscriptions.protocols.graphql_transport_ws.types import Message
from strawberry.subscriptions.protocols.graphql_ws.handlers import BaseGraphQLWSHandler
from strawberry.types.graphql import OperationType

from .deadlines import Deadlines
from .frames import request_problem
from .outbox import Outbox
from .shared import DIRECT, DirectTarget

#: Close code when a peer stops answering pings (RFC 6455 "going away").
PONG_TIMEOUT_CLOSE_CODE = 1001


def message_problem(message: object, protocol: str) -> str | None:
    """Why a message of ``protocol`` (``"graphql-transport-ws"`` or ``"graphql-ws"``) is
    malformed, or None. On graphql-transport-ws this is the reason of the 4400 close.

    >>> message_problem({"type": "complete", "id": ["1"]}, "graphql-transport-ws")
    'the message id must be a string'
    """
    operation, id_types = _MESSAGE_SHAPES[protocol]
    if not isinstance(message, dict):
        return "a message must be a JSON object"
    if not isinstance(message.get("type"), str):
        return 'a message must have a "type" string'
    if message["type"] in id_types and not isinstance(message.get("id"), str):
        return "the message id must be a string"
    if message["type"] == operation:
        return request_problem(message.get("payload"), "the payload")
    return None


#: protocol -> (the message type that starts an operation, the message types with an ``id``)
_MESSAGE_SHAPES = {
    "graphql-transport-ws": ("subscribe", frozenset({"subscribe", "complete", "next", "error"})),
    "graphql-ws": ("start", frozenset({"start", "stop"})),
}


@runtime_checkable
class OperationHost(Protocol):
    """What the handlers ask of the consumer that runs them (``consumers.GraphQLWSConsumer``).

    The one seam between Strawberry's handlers and the shared execution: the socket's outbox,
    to which shared results and pings are written without going through Strawberry.
    """

    #: Seconds between the server's graphql-transport-ws pings (None: none).
    ping_interval: float | None
    #: Seconds a peer has to answer a ping.
    ping_timeout: float

    def operation_outbox(self) -> Outbox:
        """The outbox of the socket's operation frames."""
        ...


def host_of(view: object) -> OperationHost | None:
    """``view`` (Strawberry's ``self.view``) as an :class:`OperationHost`, or None when it is
    another consumer: its operations then run exactly as Strawberry runs them, with no pings."""
    kind = type(view)
    hosts = _hosts.get(kind)
    if hosts is None:
        # A runtime protocol check inspects the class's attributes: once per class, not per
        # operation.
        hosts = _hosts[kind] = isinstance(view, OperationHost)
    return view if hosts else None  # type: ignore[return-value]  # checked for its class


#: Whether instances of a class are :class:`OperationHost`\ s (see :func:`host_of`).
_hosts: dict[type, bool] = {}


class DirectOperations:
    """The shared-execution targets of a handler's running operations (see ``shared``).

    A target is made in its operation's own task (so no other operation sees it) and ended the
    moment the operation is cleaned up (complete, stop, a reused id, the connection's end), not
    when its cancelled task gets round to its ``finally``. A target the hub holds (see
    ``DirectTarget.hold``) outlives its task, which then ends: until the operation is cleaned
    up, nothing of the operation is kept but its target, its sink and the hub's entry.
    """

    view: Any

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._targets: dict[str, DirectTarget] = {}

    @contextlib.asynccontextmanager
    async def _direct(
        self,
        operation_id: str,
        message_type: Literal["next", "data"],
        query: str,
        variables: dict[str, Any] | None,
        operation_name: str | None,
        on_hold: Callable[[], None] | None = None,
    ) -> AsyncIterator[None]:
        """Run the block (the operation) with its target set, and end the target after unless
        the hub holds it and the block ended without an error."""
        host = host_of(self.view)
        if host is None:
            yield
            return
        target = DirectTarget(
            operation_id,
            message_type,
            query,
            variables,
            operation_name,
            host.operation_outbox(),
            on_hold,
        )
        await self._end_direct(operation_id)
        self._targets[operation_id] = target
        DIRECT.set(target)
        failed = True
        try:
            yield
            failed = False
        finally:
            if failed or target.release is None:
                await self._end_direct(operation_id, target)

    async def _end_direct(self, operation_id: str, target: DirectTarget | None = None) -> None:
        """End the operation's target (only ``target``, when given: the id may be reused), and
        drop the subscription the hub holds for it."""
        current = self._targets.get(operation_id)
        if current is not None and (target is None or current is target):
            del self._targets[operation_id]
            release = current.end()
            if release is not None:
                await release

    async def cleanup_operation(self, operation_id: str) -> None:
        """End the operation's direct target, then let the handler forget the operation."""
        await self._end_direct(operation_id)
        await super().cleanup_operation(operation_id)  # type: ignore[misc]  # the handler's


class PingingGraphQLTransportWSHandler(DirectOperations, BaseGraphQLTransportWSHandler[Any, Any]):
    """Strawberry's graphql-transport-ws handler plus server-initiated pings.

    The interval and timeout are read from the view, an :class:`OperationHost`
    (``GraphQLWSConsumer``): ``ping_interval`` (None: no pings) and ``ping_timeout``; pings go
    through its ``operation_outbox()``.
    """

    # A deadline (see ``deadlines``) rather than a task or a loop timer of its own: a task
    # sleeping on every idle connection costs kilobytes each and the garbage collector scans it,
    # and a uvloop timer is 600 bytes. One deadline at a time: the init's, then pings and pongs.

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._deadlines: Deadlines | None = None
        #: What the handler's deadline is for (None: nothing).
        self._waiting_for: Literal["init", "ping", "pong"] | None = None
        #: The deadline's tick (kept by ``Deadlines``).
        self.due_tick: int | None = None
        self._interval = 0.0
        self._closing: asyncio.Task[None] | None = None
        self._host: OperationHost | None = None
        #: Whether anything arrived from the client since the last ping.
        self.heard = False

    def on_request_accepted(self) -> None:
        """Close with 4408 a connection whose ``connection_init`` does not come within
        ``connection_init_wait_timeout``, as Strawberry does, with a deadline instead of its
        task (a task cancelled by the init stays in memory for the connection's life)."""
        self._deadlines = Deadlines.of_running_loop()
        self._wait_for("init", self.connection_init_wait_timeout.total_seconds())

    def _wait_for(self, what: Literal["init", "ping", "pong"], delay: float) -> None:
        assert self._deadlines is not None  # set as the socket is accepted
        self._waiting_for = what
        self._deadlines.set(self, delay)

    def due(self) -> None:
        """The deadline came: the init's timeout, a ping to send, or a ping's answer missed."""
        waiting, self._waiting_for = self._waiting_for, None
        if waiting == "init":
            self._init_timed_out()
        elif waiting == "ping":
            self._ping()
        elif waiting == "pong":
            self._check_pong()

    def _init_timed_out(self) -> None:
        if self.connection_init_received:
            return
        self.connection_timed_out = True
        self._closing = asyncio.get_running_loop().create_task(
            self.websocket.close(code=4408, reason="Connection initialisation timeout")
        )

    async def handle_message(self, message: Message) -> None:
        """Note the peer is alive, refuse a malformed message with 4400, else handle it."""
        self.heard = True
        problem = message_problem(message, "graphql-transport-ws")
        if problem is not None:
            await self.handle_invalid_message(f"Invalid message: {problem}")
            return
        await super().handle_message(message)

    async def handle_connection_init(self, message: Any) -> None:
        """Acknowledge as Strawberry does, then start pinging if the view asks for it."""
        if self._waiting_for == "init" and self._deadlines is not None:
            self._deadlines.cancel(self)
            self._waiting_for = None
        await super().handle_connection_init(message)
        host = self._host = host_of(self.view)
        if host is None or not host.ping_interval or self._deadlines is None:
            return
        if self.connection_acknowledged and self._waiting_for is None:
            self._interval = host.ping_interval
            self._wait_for("ping", self._interval)

    def _ping(self) -> None:
        assert self._host is not None  # pings start only with a host
        self.heard = False
        self._host.operation_outbox().push('{"type":"ping"}')
        self._wait_for("pong", self._host.ping_timeout)

    def _check_pong(self) -> None:
        if not self.heard:
            self._closing = asyncio.get_running_loop().create_task(
                self.websocket.close(code=PONG_TIMEOUT_CLOSE_CODE, reason="Pong timeout")
            )
            return
        # The next ping ``ping_interval`` after the last one.
        assert self._host is not None
        self._wait_for("ping", max(0.0, self._interval - self._host.ping_timeout))

    async def run_operation(self, operation: Any) -> None:
        """Run the operation, its results written straight to the socket where shared. A
        shared subscription the hub holds ends the task at once (see ``DirectTarget.hold``):
        the operation, marked completed, sends no ``complete`` until the client ends it."""

        def on_hold() -> None:
            # Strawberry sends nothing more for a completed operation (its ``complete`` at the
            # stream's end included) but keeps it, so ids and limits still count it.
            operation.completed = True

        async with self._direct(
            operation.id,
            "next",
            operation.query,
            operation.variables,
            operation.operation_name,
            on_hold,
        ):
            await super().run_operation(operation)

    async def shutdown(self) -> None:
        """Stop pinging, then shut the handler down as Strawberry does."""
        self._waiting_for = None
        if self._deadlines is not None:
            self._deadlines.cancel(self)
        await super().shutdown()


class _AnyOperationSchema:
    """A schema whose ``subscribe`` runs any operation, for the graphql-ws handler."""

    def __init__(self, schema: Any) -> None:
        self._schema = schema

    def __getattr__(self, name: str) -> Any:
        return getattr(self._schema, name)

    async def subscribe(self, **kwargs: Any) -> Any:
        return await self._schema.stream(**kwargs, allowed_operation_types=tuple(OperationType))


class GraphQLWSHandler(DirectOperations, BaseGraphQLWSHandler[Any, Any]):
    """Strawberry's graphql-ws handler, running queries and mutations as well as subscriptions."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.schema = _AnyOperationSchema(self.schema)  # type: ignore[assignment]

    async def handle_message(self, message: Any) -> None:
        """Handle a valid message; answer a malformed ``start`` with an ``error`` for its id
        (and ignore other malformed messages, as the protocol has no way to refuse them)."""
        problem = message_problem(message, "graphql-ws")
        if problem is None:
            await super().handle_message(message)
        elif (
            isinstance(message, dict)
            and message.get("type") == "start"
            and isinstance(message.get("id"), str)
        ):
            error: Any = {"type": "error", "id": message["id"], "payload": {"message": problem}}
            await self.send_message(error)

    async def handle_async_results(
        self,
        operation_id: str,
        query: str,
        operation_name: str | None,
        variables: dict[str, object] | None,
    ) -> None:
        """Stream the operation's results, written straight to the socket where shared."""
        async with self._direct(operation_id, "data", query, variables, operation_name):
            await super().handle_async_results(operation_id, query, operation_name, variables)
