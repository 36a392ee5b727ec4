"""Strawberry's two websocket protocol handlers, with what they lack.

graphql-transport-ws: Strawberry answers the client's pings; this handler also sends its own
``ping`` every ``ping_interval`` seconds once the connection is acknowledged, and closes the socket
(code 1001, "Pong timeout") when nothing at all arrives from the client within ``ping_timeout``
seconds of a ping. Any message counts as a sign of life, a ``pong`` above all.

graphql-ws (subscriptions-transport-ws): Strawberry runs every operation through
``schema.subscribe``, which refuses queries and mutations; this handler runs them too, as the
protocol allows (one ``data``, then ``complete``).
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

from strawberry.subscriptions.protocols.graphql_transport_ws.handlers import (
    BaseGraphQLTransportWSHandler,
)
from strawberry.subscriptions.protocols.graphql_transport_ws.types import Message, PingMessage
from strawberry.subscriptions.protocols.graphql_ws.handlers import BaseGraphQLWSHandler
from strawberry.types.graphql import OperationType

#: Close code when a peer stops answering pings (RFC 6455 "going away").
PONG_TIMEOUT_CLOSE_CODE = 1001


class PingingGraphQLTransportWSHandler(BaseGraphQLTransportWSHandler[Any, Any]):
    """Strawberry's graphql-transport-ws handler plus server-initiated pings.

    The interval and timeout are read from the view (``GraphQLWSConsumer``): ``ping_interval``
    (None: no pings) and ``ping_timeout``.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.ping_task: asyncio.Task[None] | None = None
        self.heard = asyncio.Event()

    async def handle_message(self, message: Message) -> None:
        self.heard.set()
        await super().handle_message(message)

    async def handle_connection_init(self, message: Any) -> None:
        await super().handle_connection_init(message)
        interval = getattr(self.view, "ping_interval", None)
        if self.connection_acknowledged and interval and self.ping_task is None:
            self.ping_task = asyncio.create_task(self._ping_loop(interval))

    async def _ping_loop(self, interval: float) -> None:
        timeout = getattr(self.view, "ping_timeout", 20.0)
        while True:
            await asyncio.sleep(interval)
            self.heard.clear()
            ping: PingMessage = {"type": "ping"}  # type: ignore[typeddict-item]
            await self.send_message(ping)
            try:
                await asyncio.wait_for(self.heard.wait(), timeout)
            except asyncio.TimeoutError:
                await self.websocket.close(code=PONG_TIMEOUT_CLOSE_CODE, reason="Pong timeout")
                return

    async def shutdown(self) -> None:
        task, self.ping_task = self.ping_task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await super().shutdown()


class _AnyOperationSchema:
    """A schema whose ``subscribe`` runs any operation, for the graphql-ws handler."""

    def __init__(self, schema: Any) -> None:
        self._schema = schema

    def __getattr__(self, name: str) -> Any:
        return getattr(self._schema, name)

    async def subscribe(self, **kwargs: Any) -> Any:
        return await self._schema.stream(**kwargs, allowed_operation_types=tuple(OperationType))


class GraphQLWSHandler(BaseGraphQLWSHandler[Any, Any]):
    """Strawberry's graphql-ws handler, running queries and mutations as well as subscriptions."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.schema = _AnyOperationSchema(self.schema)  # type: ignore[assignment]
