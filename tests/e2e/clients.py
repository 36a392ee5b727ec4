"""The e2e suite's protocol clients: real websockets (the ``websockets`` library) on a live server.

* :class:`Arrivals`: messages in arrival order, and a bounded wait for one of them (also what
  ``test_gql_client`` records of gql's transport);
* :class:`Socket`: a websocket whose JSON messages a background task collects; read them in
  order (:meth:`Socket.next_frame`) or find one by a predicate (:meth:`Arrivals.wait_for`);
* :class:`StreamSocket`: the stream protocol (no subprotocol): its connect frame, and control
  operations over HTTP checked with their ack;
* :class:`TypedSocket`: graphql-transport-ws: connection_init and its ack, subscribe, queries,
  pings (the server's pings are answered, and not collected);
* :func:`connecting`, :func:`raw_socket`, :func:`stream_socket`, :func:`typed_socket`: open them
  (the last three are async context managers that close the socket on exit).

Every wait is bounded (``FRAME_TIMEOUT`` unless told) and fails with an ``AssertionError`` that
names the socket, what was awaited and what arrived instead; :class:`FrameTimeout` when nothing
did in time.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, Protocol, TypeVar

import httpx
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed
from websockets.typing import Origin, Subprotocol

from .harness import FRAME_TIMEOUT, ack, control, control_answer

GRAPHQL_TRANSPORT_WS = Subprotocol("graphql-transport-ws")

Message = dict[str, Any]


class FrameTimeout(AssertionError):
    """Nothing that was awaited arrived within the bound."""


class Arrivals:
    """JSON messages in arrival order, and a bounded wait for one of them."""

    def __init__(self, label: str) -> None:
        self.label = label
        self.messages: list[Message] = []
        #: Why no more messages will come (the socket closed, say); None while they may.
        self.ended: str | None = None
        self._arrived = asyncio.Event()

    def add(self, message: Message) -> None:
        self.messages.append(message)
        self._arrived.set()

    def end(self, why: str) -> None:
        if self.ended is None:
            self.ended = why
        self._arrived.set()

    async def wait_for(
        self,
        predicate: Callable[[Message], bool],
        what: str,
        *,
        start: int = 0,
        timeout: float = FRAME_TIMEOUT,
    ) -> int:
        """The index of the first message from ``start`` on that ``predicate`` accepts."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        index = start
        while True:
            while index < len(self.messages):
                if predicate(self.messages[index]):
                    return index
                index += 1
            if self.ended is not None:
                raise AssertionError(
                    f"{self.label} {self.ended} while waiting for {what}; "
                    f"received since: {self.messages[start:][-20:]}"
                )
            self._arrived.clear()
            try:
                await asyncio.wait_for(self._arrived.wait(), max(deadline - loop.time(), 0))
            except asyncio.TimeoutError:
                raise FrameTimeout(
                    f"{self.label}: {what} did not arrive within {timeout} s; "
                    f"received since: {self.messages[start:][-20:]}"
                ) from None


class Socket(Arrivals):
    """A websocket whose JSON messages a background task collects, in arrival order.

    A frame that is not a JSON object in text ends the collection (and fails the next wait).
    """

    #: Answer graphql-transport-ws pings with a pong, and leave them out of ``messages``.
    answers_pings = False

    def __init__(self, ws: ClientConnection, label: str) -> None:
        super().__init__(label)
        self.ws = ws
        #: The index of the message :meth:`next_frame` returns next.
        self.cursor = 0
        #: The close code the server sent (None: none yet, or the connection just dropped).
        self.close_received: int | None = None
        self._task = asyncio.create_task(self._collect(), name=f"collect {label}")

    async def _collect(self) -> None:
        try:
            while True:
                text = await self.ws.recv()
                try:
                    message = json.loads(text) if isinstance(text, str) else None
                except ValueError:
                    message = None
                if not isinstance(message, dict):
                    self.end(f"sent a frame that is not a JSON object in text: {text[:200]!r}")
                    return
                if self.answers_pings and message.get("type") == "ping":
                    await self.ws.send(json.dumps({"type": "pong"}))
                    continue
                self.add(message)
        except ConnectionClosed as closed:
            self.close_received = closed.rcvd.code if closed.rcvd is not None else None
            self.end(f"closed: {closed}")
        finally:
            self.end("closed by the test")

    async def send(self, message: object) -> None:
        """Send ``message`` as a JSON text frame."""
        await self.ws.send(json.dumps(message))

    async def send_raw(self, data: str | bytes) -> None:
        """Send ``data`` as it is: a text frame for ``str``, a binary one for ``bytes``."""
        await self.ws.send(data)

    async def next_frame(self, what: str, timeout: float = FRAME_TIMEOUT) -> Message:
        """The next message not read yet by this method, which the caller expects to be
        ``what``; fail after ``timeout`` s."""
        index = await self.wait_for(lambda _: True, what, start=self.cursor, timeout=timeout)
        self.cursor = index + 1
        return self.messages[index]

    async def wait_closed(self, timeout: float = FRAME_TIMEOUT) -> int | None:
        """Return once the server has closed this socket (bounded): the close code it sent."""
        try:
            await asyncio.wait_for(asyncio.shield(self._task), timeout)
            await asyncio.wait_for(self.ws.wait_closed(), timeout)
        except asyncio.TimeoutError:
            raise FrameTimeout(
                f"{self.label} was not closed within {timeout} s ({self.ended or 'still open'}); "
                f"received: {self.messages[self.cursor :]}"
            ) from None
        return self.close_received

    async def close(self) -> None:
        await self.ws.close()
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task


class StreamSocket(Socket):
    """A stream-protocol socket (no subprotocol); ``channel_id`` is its connect frame's."""

    def __init__(self, ws: ClientConnection, label: str | None = None) -> None:
        super().__init__(ws, label or "stream socket")
        self.named = label is not None
        self.channel_id = ""
        self.connect_frame: Message = {}

    async def connected(self) -> None:
        """Read and check the connect frame."""
        frame = await self.next_frame("the connect frame")
        problem = f"{self.label}: not a successful connect frame: {frame}"
        assert set(frame) == {"channel_id", "connect"}, problem
        assert frame["connect"] == "success", problem
        assert isinstance(frame["channel_id"], str), problem
        assert frame["channel_id"], problem
        self.channel_id = frame["channel_id"]
        self.connect_frame = frame
        if not self.named:
            self.label = f"stream socket {self.channel_id}"

    async def subscribe(self, http: httpx.AsyncClient, **kwargs: Any) -> None:
        """Run a control operation for this socket over ``http`` (any server, see
        :func:`harness.control_request` for ``kwargs``): its answer must be ok, and the next
        frame on this socket its ack."""
        kwargs.setdefault("stream", "products")
        kwargs.setdefault("operation", "SUBSCRIBE")
        kwargs.setdefault("action", "UPDATE")
        answer = await control(http, self.channel_id, **kwargs)
        assert answer == control_answer(kwargs["stream"], ok=True), f"{self.label}: {answer}"
        frame = await self.next_frame("the ack")
        expected = ack(kwargs["operation"], kwargs["action"], kwargs["stream"])
        assert frame == expected, f"{self.label}: {frame} instead of the ack {expected}"

    async def unsubscribe(self, http: httpx.AsyncClient, **kwargs: Any) -> None:
        await self.subscribe(http, operation="UNSUBSCRIBE", **kwargs)


class TypedSocket(Socket):
    """A graphql-transport-ws connection (see :func:`typed_socket`)."""

    answers_pings = True

    async def start(
        self, operation_id: str, query: str, variables: dict[str, Any] | None = None
    ) -> None:
        """Send a ``subscribe`` message (a subscription, a query or a mutation)."""
        payload: dict[str, Any] = {"query": query}
        if variables is not None:
            payload["variables"] = variables
        await self.send({"id": operation_id, "type": "subscribe", "payload": payload})

    async def operation(
        self, operation_id: str, query: str, variables: dict[str, Any] | None = None
    ) -> list[Message]:
        """Start an operation that ends by itself; every message read from then on, up to and
        including its ``complete`` or ``error``."""
        await self.start(operation_id, query, variables)
        messages = [await self.next_frame(f"the first message of operation {operation_id}")]
        while messages[-1].get("type") not in ("complete", "error"):
            messages.append(await self.next_frame(f"the complete or error of {operation_id}"))
        return messages

    async def query(self, operation_id: str, query: str) -> Message:
        """Run a query on this socket, beside whatever else arrives on it: its ``next``
        payload (``complete`` must follow)."""
        start = len(self.messages)
        await self.start(operation_id, query)
        index = await self.wait_for(
            lambda m: m.get("id") == operation_id, f"the answer to {query}", start=start
        )
        assert self.messages[index]["type"] == "next", f"{self.label}: {self.messages[index]}"
        await self.wait_for(
            lambda m: m.get("id") == operation_id and m.get("type") == "complete",
            "complete",
            start=index + 1,
        )
        payload: Message = self.messages[index]["payload"]
        return payload

    async def ping(self) -> None:
        """Ping; the pong must arrive."""
        start = len(self.messages)
        await self.send({"type": "ping"})
        await self.wait_for(lambda m: m.get("type") == "pong", "the pong", start=start)


# -- opening them -----------------------------------------------------------------------------


def connecting(
    url: str,
    *,
    subprotocol: Subprotocol | None = None,
    headers: dict[str, str] | None = None,
    origin: str | None = None,
) -> connect:
    """The websockets handshake with the suite's time limits (await it, or ``async with``)."""
    return connect(
        url,
        subprotocols=None if subprotocol is None else [subprotocol],
        additional_headers=headers,
        origin=None if origin is None else Origin(origin),
        open_timeout=FRAME_TIMEOUT,
        close_timeout=FRAME_TIMEOUT,
    )


S = TypeVar("S", bound=Socket)


@contextlib.asynccontextmanager
async def _held(
    url: str, make: Callable[[ClientConnection], S], **options: Any
) -> AsyncIterator[S]:
    async with connecting(url, **options) as ws:
        sock = make(ws)
        try:
            yield sock
        finally:
            await sock.close()


@contextlib.asynccontextmanager
async def raw_socket(
    url: str, label: str = "websocket", *, headers: dict[str, str] | None = None
) -> AsyncIterator[Socket]:
    """A websocket without a subprotocol, nothing read or checked yet."""
    async with _held(url, lambda ws: Socket(ws, label), headers=headers) as sock:
        yield sock


@contextlib.asynccontextmanager
async def stream_socket(
    url: str,
    label: str | None = None,
    *,
    headers: dict[str, str] | None = None,
    origin: str | None = None,
) -> AsyncIterator[StreamSocket]:
    """A stream socket, its connect frame checked."""
    options = {"headers": headers, "origin": origin}
    async with _held(url, lambda ws: StreamSocket(ws, label), **options) as sock:
        await sock.connected()
        yield sock


@contextlib.asynccontextmanager
async def typed_socket(
    url: str,
    label: str = "graphql-transport-ws",
    *,
    headers: dict[str, str] | None = None,
    payload: dict[str, Any] | None = None,
    acknowledged: bool = True,
) -> AsyncIterator[TypedSocket]:
    """A graphql-transport-ws connection, ``connection_init`` sent (with ``payload``, if any);
    with ``acknowledged``, its first message must be exactly ``{"type": "connection_ack"}``."""
    options = {"subprotocol": GRAPHQL_TRANSPORT_WS, "headers": headers}
    async with _held(url, lambda ws: TypedSocket(ws, label), **options) as sock:
        assert sock.ws.subprotocol == GRAPHQL_TRANSPORT_WS, (
            f"the server chose {sock.ws.subprotocol!r}"
        )
        init: Message = {"type": "connection_init"}
        if payload is not None:
            init["payload"] = payload
        await sock.send(init)
        if acknowledged:
            message = await sock.next_frame("connection_ack")
            assert message == {"type": "connection_ack"}, f"{label}: {message}"
        yield sock


class OpenSocket(Protocol):
    """The ``open_socket`` fixture: stream sockets closed when the test ends."""

    def __call__(self, *, headers: dict[str, str] | None = None) -> Awaitable[StreamSocket]: ...
