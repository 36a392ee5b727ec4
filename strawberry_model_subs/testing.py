"""Test helpers for projects that use strawberry-model-subs.

:class:`StreamClient` drives the stream protocol against your ASGI application in-process, through
Channels' ``WebsocketCommunicator``, and :class:`TypedClient` the typed subscriptions over
graphql-transport-ws (or the older graphql-ws). Save models with ``database_sync_to_async`` (or
through your own API) and assert on the frames that arrive.

Example::

    from strawberry_model_subs.testing import StreamClient
    from myproject.asgi import application

    @pytest.mark.django_db(transaction=True)
    async def test_product_updates_are_pushed():
        product = await Product.objects.acreate(name="Old name")
        async with StreamClient(application, "/ws") as client:
            result = await client.subscribe("products", "UPDATE", fields=["id", "name"])
            assert result["ok"], result["error"]
            product.name = "New name"
            await product.asave()
            frame = await client.receive_event()
            assert frame["payload"]["data"] == {"id": product.pk, "name": "New name"}
"""

from __future__ import annotations

import asyncio
import json
from collections import deque
from collections.abc import Callable
from typing import Any, Literal

from channels.testing import WebsocketCommunicator

from .hub import get_hub
from .registry import registration_for_stream
from .typegen import enum_member

#: The subprotocols :class:`TypedClient` speaks.
Subprotocol = Literal["graphql-transport-ws", "graphql-ws"]


def control_document(stream: str) -> str:
    """The control operation of ``stream`` as a GraphQL document taking variables."""
    registration = registration_for_stream(stream)
    if registration is None:
        raise LookupError(f"no serializer is registered for stream {stream!r}")
    declare, where = "", ""
    if registration.filter_type is not None:
        declare, where = f", $where: {registration.name}Filter", ", where: $where"
    return (
        f"subscription Control($operation: Operation!, $action: Action!, $channelId: String!, "
        f"$id: ID, $data: [{registration.name}Fields!], $after: String{declare}) {{ "
        f"{registration.control_field}(operation: $operation, action: $action, "
        f"channelId: $channelId, id: $id, data: $data, after: $after{where}) "
        f"{{ ok error stream operation action }} }}"
    )


class _Reader:
    """What both clients share: JSON messages read in order, those a wait skipped kept for the
    next read. A subclass sets ``communicator``, ``timeout`` and ``_pending``, and may handle
    messages of its own protocol's housekeeping in ``_handled``."""

    communicator: WebsocketCommunicator
    timeout: float
    closed: tuple[int, str] | None
    _pending: deque[dict[str, Any]]
    #: What the protocol calls one message, for the errors.
    _noun = "message"

    async def disconnect(self) -> None:
        """Close the socket; the application has a second to finish before it is cancelled, and
        what it raised is raised here."""
        if self.communicator.future.cancelled():
            return  # cancelled by a read that timed out: that read failed already
        await self.communicator.disconnect()

    async def send_text(self, text: str) -> None:
        """Send ``text`` as one text frame, unchecked (empty too): malformed frames can be
        tested as well.

        Example::

            await client.send_text("{not json")
        """
        await self.communicator.send_input({"type": "websocket.receive", "text": text})

    async def send_bytes(self, data: bytes) -> None:
        """Send ``data`` as one binary frame, which the library's protocols refuse.

        Example::

            await client.send_bytes(b"binary")
        """
        await self.communicator.send_input({"type": "websocket.receive", "bytes": data})

    async def receive(self, timeout: float | None = None) -> dict[str, Any]:
        """The next message, whatever it is (one an earlier wait kept comes first).

        Args:
            timeout: Seconds to wait for it; the client's ``timeout`` by default.

        Raises:
            AssertionError: The server closed the socket instead (``closed`` then holds its
                code and reason), none arrived in time, or it is no JSON object in a text
                frame that a real server could send (valid UTF-8).

        Example::

            await client.send_text('{"query": "{ productCount }"}')
            assert await client.receive() == {"data": {"productCount": 0}}
        """
        if self._pending:
            return self._pending.popleft()
        return await self._read(timeout)

    async def receive_matching(self, predicate: Callable[[dict[str, Any]], bool]) -> dict[str, Any]:
        """The next message for which ``predicate`` is true; the others are kept, in order.
        AssertionError when none arrives within the client's ``timeout``."""
        for index, message in enumerate(self._pending):
            if predicate(message):
                del self._pending[index]
                return message
        while True:
            message = await self._read()
            if predicate(message):
                return message
            self._pending.append(message)

    async def receive_close(self, timeout: float | None = None) -> tuple[int, str]:
        """Wait for the server to close the socket; return its close code and reason (1000 and
        "" when it gave none), as ``closed`` then holds them.

        Args:
            timeout: Seconds to wait for it; the client's ``timeout`` by default.

        Raises:
            AssertionError: A message is kept or arrives first, or nothing comes in time.

        Example::

            await typed_client.send_text("x" * 70_000)  # over MAX_FRAME_SIZE
            assert await typed_client.receive_close() == (1009, "")
        """
        if self._pending:
            raise AssertionError(
                f"expected the server to close the socket, got {self._pending[0]!r}"
            )
        if self.closed is None:
            try:
                message = await self._read(timeout)
            except AssertionError:
                if self.closed is None:
                    raise
            else:
                raise AssertionError(f"expected the server to close the socket, got {message!r}")
        return self.closed

    async def _read(self, timeout: float | None = None) -> dict[str, Any]:
        wait = self.timeout if timeout is None else timeout
        while True:
            if self.closed is not None:  # nothing comes after the close
                raise AssertionError(self._closed_message())
            try:
                output = await self.communicator.receive_output(timeout=wait)
            except asyncio.TimeoutError:
                raise AssertionError(f"no {self._noun} arrived within {wait} s") from None
            message = self._decode(output)
            if not await self._handled(message):
                return message

    async def _handled(self, message: dict[str, Any]) -> bool:
        """Whether ``message`` was housekeeping the client took care of (not to hand over)."""
        return False

    def _decode(self, output: dict[str, Any]) -> dict[str, Any]:
        if output["type"] == "websocket.close":
            self.closed = (output.get("code") or 1000, output.get("reason") or "")
            raise AssertionError(self._closed_message())
        text = output.get("text")
        if output["type"] != "websocket.send" or not isinstance(text, str):
            raise AssertionError(f"expected a text {self._noun}, got {output!r}")
        try:
            text.encode("utf-8")
        except UnicodeEncodeError as exc:
            # The in-process communicator passes it on; a real server could not send it.
            raise AssertionError(f"the {self._noun} is not valid UTF-8: {exc}") from None
        try:
            message = json.loads(text)
        except ValueError:
            raise AssertionError(f"the {self._noun} is not JSON: {text!r}") from None
        if not isinstance(message, dict):
            raise AssertionError(f"the {self._noun} is not a JSON object: {text!r}")
        return message

    def _closed_message(self) -> str:
        assert self.closed is not None
        code, reason = self.closed
        return f"the server closed the socket ({code}{f' {reason}' if reason else ''})"

    async def _assert_nothing(self, timeout: float) -> None:
        if self._pending:
            raise AssertionError(f"unexpected {self._noun} {self._pending[0]!r}")
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while not await self.communicator.receive_nothing(timeout=max(0.0, deadline - loop.time())):
            message = self._decode(await self.communicator.receive_output())
            if not await self._handled(message):
                raise AssertionError(f"unexpected {self._noun} {message!r}")


class StreamClient(_Reader):
    """A stream-protocol websocket client for tests.

    Frames are read in order; helpers that wait for one kind of frame keep the others, in order,
    for the next read, so an event that arrives before an awaited answer is not lost.

    Example::

        async with StreamClient(application, "/ws") as client:
            assert (await client.subscribe("products", "CREATE", fields=["name"]))["ok"]
            await Product.objects.acreate(name="Kettle")
            frame = await client.receive_event()
            assert frame["payload"]["data"] == {"name": "Kettle"}
    """

    _noun = "frame"

    def __init__(
        self,
        application: Any,
        path: str = "/ws",
        *,
        timeout: float = 5.0,
        headers: list[tuple[bytes, bytes]] | None = None,
    ) -> None:
        self.communicator = WebsocketCommunicator(application, path, headers=headers)
        self.timeout = timeout
        self.channel_id: str | None = None
        #: The close code and reason of the server, once a read met its close (None before).
        self.closed: tuple[int, str] | None = None
        self._pending: deque[dict[str, Any]] = deque()

    async def __aenter__(self) -> StreamClient:
        await self.connect()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.disconnect()

    async def connect(self) -> str:
        """Open the socket and return the channel_id from the connect frame.

        Raises:
            AssertionError: The server refused the handshake, or closed the socket instead of
                sending the connect frame (an ``AUTHENTICATE`` hook that raised ``Rejected``:
                4403; ``closed`` then holds the code and reason), or sent another frame.

        Example::

            client = StreamClient(application, "/ws?token=wrong")
            with pytest.raises(AssertionError, match="the server closed the socket"):
                await client.connect()
            assert client.closed == (4403, "")
        """
        connected, code = await self.communicator.connect(timeout=self.timeout)
        if not connected:
            raise AssertionError(f"the websocket connection was refused ({code})")
        frame = await self._read()
        if frame.get("connect") != "success" or not frame.get("channel_id"):
            raise AssertionError(f"expected the connect frame, got {frame!r}")
        self.channel_id = frame["channel_id"]
        return self.channel_id

    async def execute(self, query: str, variables: dict[str, Any] | None = None) -> dict[str, Any]:
        """Send a GraphQL request frame and return its response frame (``data``/``errors``)."""
        await self.send_text(json.dumps({"query": query, "variables": variables}))
        return await self.receive_response()

    async def subscribe(
        self,
        stream: str,
        action: str = "ALL_ACTIONS",
        *,
        id: object = None,
        fields: list[str] | None = None,
        operation: str = "SUBSCRIBE",
        after: str | None = None,
        where: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        """Run the control operation for this socket; return its result (``ok``, ``error``...).

        ``fields`` are serializer field names (``in_stock``), turned into enum members. With
        ``after`` (a cursor, or ``""`` for from now on) the subscription resumes: its frames
        carry a ``cursor``, and what was missed after that cursor follows the ack. ``where`` is
        the filter as GraphQL variables give it (``{"price": {"lt": "10"}}``). When the result
        is ok, the ack frame is read and checked too.

        Example::

            frame = await client.receive_event()
            # ... reconnect, then:
            await other.subscribe("products", "UPDATE", after=frame["cursor"])
            missed = await other.receive_event()
        """
        registration = registration_for_stream(stream)
        assert registration is not None, f"no serializer is registered for stream {stream!r}"
        variables: dict[str, Any] = {
            "operation": operation,
            "action": action,
            "channelId": self.channel_id,
            "id": None if id is None else str(id),
            "data": None if fields is None else [enum_member(f) for f in fields],
            "after": after,
        }
        if where is not None:
            variables["where"] = where
        response = await self.execute(control_document(stream), variables)
        if response.get("errors"):
            return {"ok": False, "errors": response["errors"]}
        result = response["data"][registration.control_field]
        if result["ok"]:
            ack = await self.receive_matching(lambda f: "operation" in f and "ok" in f)
            expected = {
                "action": action.lower(),
                "operation": operation.lower(),
                "ok": True,
                "stream": stream,
                "error": None,
            }
            if ack != expected:
                raise AssertionError(f"expected the ack {expected!r}, got {ack!r}")
        return dict(result)

    async def unsubscribe(
        self,
        stream: str,
        action: str = "ALL_ACTIONS",
        *,
        id: object = None,
        where: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        """Run the unsubscribe control operation; returns and checks as :meth:`subscribe`."""
        return await self.subscribe(stream, action, id=id, operation="UNSUBSCRIBE", where=where)

    async def receive_event(self) -> dict[str, Any]:
        """The next ``{"stream", "payload"}`` frame."""
        return await self.receive_matching(lambda f: "stream" in f and "payload" in f)

    async def receive_response(self) -> dict[str, Any]:
        """The next GraphQL response frame."""
        return await self.receive_matching(lambda f: "data" in f or "errors" in f)

    async def assert_no_frame(self, timeout: float = 0.2) -> None:
        """Fail if a frame is pending or arrives within ``timeout`` seconds."""
        await self._assert_nothing(timeout)


class TypedClient(_Reader):
    """A graphql-transport-ws client for tests of typed subscriptions (``{name}Changed``).

    Example::

        async with TypedClient(application, "/ws") as client:
            op = await client.subscribe(
                "subscription { productChanged { action data { name } } }", stream="products"
            )
            await Product.objects.acreate(name="Kettle")
            result = await client.receive_next(op)
            assert result["data"]["productChanged"]["data"] == {"name": "Kettle"}

    Messages are read in order; one awaited for one operation keeps the others, in order, for
    the next read. The server's pings are answered. With ``subprotocol="graphql-ws"`` it speaks
    the older protocol instead (``start``, ``stop``, ``data``; keep-alives skipped).
    """

    def __init__(
        self,
        application: Any,
        path: str = "/ws",
        *,
        timeout: float = 5.0,
        headers: list[tuple[bytes, bytes]] | None = None,
        connection_params: dict[str, Any] | None = None,
        subprotocol: Subprotocol = "graphql-transport-ws",
    ) -> None:
        self.communicator = WebsocketCommunicator(
            application, path, headers=headers, subprotocols=[subprotocol]
        )
        self.timeout = timeout
        self.connection_params = connection_params
        self.subprotocol = subprotocol
        #: The close code and reason of the server, once a read met its close (None before).
        self.closed: tuple[int, str] | None = None
        self._legacy = subprotocol == "graphql-ws"
        self._pending: deque[dict[str, Any]] = deque()
        self._ids = 0

    async def __aenter__(self) -> TypedClient:
        await self.connect()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.disconnect()

    async def handshake(self) -> None:
        """Open the socket and send nothing: :meth:`connect` without its ``connection_init``,
        for tests of what the server does with a client that skips or mangles it.

        Raises:
            AssertionError: The server refused the handshake or chose another subprotocol.

        Example::

            client = TypedClient(application, "/ws")
            await client.handshake()
            await client.send_text('{"type": "connection_init", "payload": [1]}')
            assert await client.receive_close() == (4400, "Invalid connection init payload")
        """
        connected, subprotocol = await self.communicator.connect(timeout=self.timeout)
        if not connected:
            raise AssertionError(f"the websocket connection was refused ({subprotocol!r})")
        if subprotocol != self.subprotocol:
            raise AssertionError(f"the server chose the subprotocol {subprotocol!r}")

    async def connect(self) -> dict[str, Any]:
        """Open the socket, send ``connection_init`` (with ``connection_params`` as its payload)
        and return the ``connection_ack``, which must be the server's first answer.

        Raises:
            AssertionError: The server refused the handshake, closed the socket instead (an
                ``AUTHENTICATE`` hook that raised ``Rejected``: 4403; ``closed`` then holds the
                code and reason) or answered something else.

        Example::

            client = TypedClient(application, "/ws", connection_params={"token": "wrong"})
            with pytest.raises(AssertionError, match="the server closed the socket"):
                await client.connect()
            assert client.closed == (4403, "Forbidden")
        """
        await self.handshake()
        init: dict[str, Any] = {"type": "connection_init"}
        if self.connection_params is not None:
            init["payload"] = self.connection_params
        await self.communicator.send_json_to(init)
        message = await self.receive()
        if message.get("type") != "connection_ack":
            raise AssertionError(f"expected the connection_ack, got {message!r}")
        return message

    async def subscribe(
        self,
        query: str,
        variables: dict[str, Any] | None = None,
        *,
        operation_id: str | None = None,
        stream: str | None = None,
    ) -> str:
        """Start an operation; return its id (for ``receive_next``, ``complete``).

        graphql-transport-ws acknowledges no subscription: with ``stream``, this waits (up to
        the client's timeout) until this process's hub holds one more reference on that stream,
        so that a save made next is seen. The application runs in the test's process and loop
        (``WebsocketCommunicator``), so its hub is the one this looks at.
        """
        hub = get_hub() if stream is not None else None
        before = 0 if hub is None or stream is None else hub.state().references.get(stream, 0)
        if operation_id is None:
            self._ids += 1
            operation_id = str(self._ids)
        payload: dict[str, Any] = {"query": query}
        if variables is not None:
            payload["variables"] = variables
        await self.communicator.send_json_to(
            {
                "type": "start" if self._legacy else "subscribe",
                "id": operation_id,
                "payload": payload,
            }
        )
        if hub is not None and stream is not None:
            deadline = asyncio.get_running_loop().time() + self.timeout
            while hub.state().references.get(stream, 0) <= before:
                if asyncio.get_running_loop().time() > deadline:
                    raise AssertionError(
                        f"operation {operation_id} did not subscribe to {stream!r} within "
                        f"{self.timeout} s"
                    )
                await asyncio.sleep(0.01)  # bounded poll of the hub: the protocol has no ack
        return operation_id

    async def execute(self, query: str, variables: dict[str, Any] | None = None) -> dict[str, Any]:
        """Run a query or mutation over the socket; its result (``data``, maybe ``errors``).

        Example::

            result = await client.execute(
                'mutation { refreshConnection(params: {token: "..."}) { ok expiresAt } }'
            )
            assert result["data"]["refreshConnection"]["ok"]
        """
        operation_id = await self.subscribe(query, variables)
        payload = await self.receive_next(operation_id)
        await self.receive_complete(operation_id)
        return payload

    async def receive_next(self, operation_id: str) -> dict[str, Any]:
        """The payload (``data``, maybe ``errors``) of the operation's next result (``next``;
        ``data`` on graphql-ws); AssertionError with the errors if the server answers
        ``error`` instead."""
        result = "data" if self._legacy else "next"
        message = await self.receive_matching(
            lambda m: m.get("id") == operation_id and m.get("type") in (result, "error")
        )
        if message["type"] == "error":
            raise AssertionError(f"operation {operation_id} failed: {message.get('payload')!r}")
        payload: dict[str, Any] = message["payload"]
        return payload

    async def receive_error(self, operation_id: str) -> list[dict[str, Any]]:
        """The GraphQL errors of the operation's ``error`` message (a list on both protocols:
        graphql-ws sends one error)."""
        message = await self.receive_matching(
            lambda m: m.get("id") == operation_id and m.get("type") == "error"
        )
        payload = message["payload"]
        errors: list[dict[str, Any]] = payload if isinstance(payload, list) else [payload]
        return errors

    async def receive_complete(self, operation_id: str) -> None:
        """Wait for the server's ``complete`` of the operation."""
        await self.receive_matching(
            lambda m: m.get("id") == operation_id and m.get("type") == "complete"
        )

    async def complete(self, operation_id: str) -> None:
        """Stop the operation (the client's ``complete``; ``stop`` on graphql-ws)."""
        kind = "stop" if self._legacy else "complete"
        await self.communicator.send_json_to({"type": kind, "id": operation_id})

    async def assert_no_message(self, timeout: float = 0.2) -> None:
        """Fail if a message is pending or arrives within ``timeout`` seconds."""
        await self._assert_nothing(timeout)

    async def _handled(self, message: dict[str, Any]) -> bool:
        kind = message.get("type")
        if self._legacy:
            return kind == "ka"
        if kind == "ping":
            await self.communicator.send_json_to({"type": "pong"})
            return True
        return False
