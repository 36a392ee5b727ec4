"""Test helpers for projects that use strawberry-model-subs.

:class:`StreamClient` drives the stream protocol against your ASGI application in-process, through
Channels' ``WebsocketCommunicator``, and :class:`TypedClient` the typed subscriptions over
graphql-transport-ws. Save models with ``database_sync_to_async`` (or through your
own API) and assert on the frames that arrive.

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
from typing import Any

from channels.testing import WebsocketCommunicator

from .hub import get_hub
from .registry import registration_for_stream
from .typegen import enum_member


def control_document(stream: str) -> str:
    """The control operation of ``stream`` as a GraphQL document taking variables."""
    registration = registration_for_stream(stream)
    if registration is None:
        raise LookupError(f"no serializer is registered for stream {stream!r}")
    return (
        f"subscription Control($operation: Operation!, $action: Action!, $channelId: String!, "
        f"$id: ID, $data: [{registration.name}Fields!]) {{ "
        f"{registration.control_field}(operation: $operation, action: $action, "
        f"channelId: $channelId, id: $id, data: $data) {{ ok error stream operation action }} }}"
    )


class _Reader:
    """What both clients share: JSON messages read in order, those a wait skipped kept for the
    next read. A subclass sets ``communicator`` and ``_pending`` and reads one with ``_read``."""

    communicator: WebsocketCommunicator
    _pending: deque[dict[str, Any]]

    async def _read(self) -> dict[str, Any]:
        raise NotImplementedError

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

    async def _assert_nothing(self, timeout: float) -> None:
        if self._pending:
            raise AssertionError(f"unexpected message {self._pending[0]!r}")
        if not await self.communicator.receive_nothing(timeout=timeout):
            raise AssertionError(f"unexpected message {await self._read()!r}")


class StreamClient(_Reader):
    """A stream-protocol websocket client for tests.

    Frames are read in order; helpers that wait for one kind of frame keep the others, in order,
    for the next read, so an event that arrives before an awaited answer is not lost.
    """

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
        self._pending: deque[dict[str, Any]] = deque()

    async def __aenter__(self) -> StreamClient:
        await self.connect()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.disconnect()

    async def connect(self) -> str:
        """Open the socket and return the channel_id from the connect frame."""
        connected, _ = await self.communicator.connect(timeout=self.timeout)
        if not connected:
            raise AssertionError("the websocket connection was refused")
        frame = await self._read()
        if frame.get("connect") != "success" or not frame.get("channel_id"):
            raise AssertionError(f"expected the connect frame, got {frame!r}")
        self.channel_id = frame["channel_id"]
        return self.channel_id

    async def disconnect(self) -> None:
        """Close the socket; the application has a second to finish before it is cancelled, and
        what it raised is raised here."""
        await self.communicator.disconnect()

    async def send_text(self, text: str) -> None:
        """Send ``text`` as one text frame, unchecked: malformed frames can be tested too."""
        await self.communicator.send_to(text_data=text)

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
    ) -> dict[str, Any]:
        """Run the control operation for this socket; return its result (``ok``, ``error``...).

        ``fields`` are serializer field names (``in_stock``), turned into enum members. When the
        result is ok, the ack frame is read and checked too.
        """
        registration = registration_for_stream(stream)
        assert registration is not None, f"no serializer is registered for stream {stream!r}"
        variables = {
            "operation": operation,
            "action": action,
            "channelId": self.channel_id,
            "id": None if id is None else str(id),
            "data": None if fields is None else [enum_member(f) for f in fields],
        }
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
        self, stream: str, action: str = "ALL_ACTIONS", *, id: object = None
    ) -> dict[str, Any]:
        """Run the unsubscribe control operation; returns and checks as :meth:`subscribe`."""
        return await self.subscribe(stream, action, id=id, operation="UNSUBSCRIBE")

    async def receive_event(self) -> dict[str, Any]:
        """The next ``{"stream", "payload"}`` frame."""
        return await self.receive_matching(lambda f: "stream" in f and "payload" in f)

    async def receive_response(self) -> dict[str, Any]:
        """The next GraphQL response frame."""
        return await self.receive_matching(lambda f: "data" in f or "errors" in f)

    async def assert_no_frame(self, timeout: float = 0.2) -> None:
        """Fail if a frame is pending or arrives within ``timeout`` seconds."""
        await self._assert_nothing(timeout)

    async def _read(self) -> dict[str, Any]:
        try:
            text = await self.communicator.receive_from(timeout=self.timeout)
        except asyncio.TimeoutError:
            raise AssertionError(f"no frame arrived within {self.timeout} s") from None
        frame = json.loads(text)
        if not isinstance(frame, dict):
            raise AssertionError(f"frame is not a JSON object: {text!r}")
        return frame


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
    the next read. The server's pings are answered.
    """

    def __init__(
        self,
        application: Any,
        path: str = "/ws",
        *,
        timeout: float = 5.0,
        headers: list[tuple[bytes, bytes]] | None = None,
        connection_params: dict[str, Any] | None = None,
    ) -> None:
        self.communicator = WebsocketCommunicator(
            application, path, headers=headers, subprotocols=["graphql-transport-ws"]
        )
        self.timeout = timeout
        self.connection_params = connection_params
        self._pending: deque[dict[str, Any]] = deque()
        self._ids = 0

    async def __aenter__(self) -> TypedClient:
        await self.connect()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.disconnect()

    async def connect(self) -> dict[str, Any]:
        """Open the socket, send ``connection_init`` (with ``connection_params`` as its payload)
        and return the ``connection_ack``; AssertionError if the server refuses or closes."""
        connected, subprotocol = await self.communicator.connect(timeout=self.timeout)
        if not connected or subprotocol != "graphql-transport-ws":
            raise AssertionError(f"the websocket connection was refused ({subprotocol!r})")
        init: dict[str, Any] = {"type": "connection_init"}
        if self.connection_params is not None:
            init["payload"] = self.connection_params
        await self.communicator.send_json_to(init)
        return await self.receive_matching(lambda m: m.get("type") == "connection_ack")

    async def disconnect(self) -> None:
        """Close the socket; the application has a second to finish before it is cancelled, and
        what it raised is raised here."""
        await self.communicator.disconnect()

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
        the client's timeout) until this process's hub holds one more subscriber of that stream,
        so that a save made next is seen. The application runs in the test's process and loop
        (``WebsocketCommunicator``), so its hub is the one this looks at.
        """
        hub = get_hub() if stream is not None else None
        before = hub.refs.get(stream, 0) if hub is not None and stream is not None else 0
        if operation_id is None:
            self._ids += 1
            operation_id = str(self._ids)
        payload: dict[str, Any] = {"query": query}
        if variables is not None:
            payload["variables"] = variables
        await self.communicator.send_json_to(
            {"type": "subscribe", "id": operation_id, "payload": payload}
        )
        if hub is not None and stream is not None:
            deadline = asyncio.get_running_loop().time() + self.timeout
            while hub.refs.get(stream, 0) <= before:
                if asyncio.get_running_loop().time() > deadline:
                    raise AssertionError(
                        f"operation {operation_id} did not subscribe to {stream!r} within "
                        f"{self.timeout} s"
                    )
                await asyncio.sleep(0.01)  # bounded poll of the hub: the protocol has no ack
        return operation_id

    async def receive_next(self, operation_id: str) -> dict[str, Any]:
        """The payload (``data``, maybe ``errors``) of the operation's next ``next`` message;
        AssertionError with the errors if the server answers ``error`` instead."""
        message = await self.receive_matching(
            lambda m: m.get("id") == operation_id and m.get("type") in ("next", "error")
        )
        if message["type"] == "error":
            raise AssertionError(f"operation {operation_id} failed: {message.get('payload')!r}")
        payload: dict[str, Any] = message["payload"]
        return payload

    async def receive_error(self, operation_id: str) -> list[dict[str, Any]]:
        """The GraphQL errors of the operation's ``error`` message."""
        message = await self.receive_matching(
            lambda m: m.get("id") == operation_id and m.get("type") == "error"
        )
        errors: list[dict[str, Any]] = message["payload"]
        return errors

    async def receive_complete(self, operation_id: str) -> None:
        """Wait for the server's ``complete`` of the operation."""
        await self.receive_matching(
            lambda m: m.get("id") == operation_id and m.get("type") == "complete"
        )

    async def complete(self, operation_id: str) -> None:
        """Stop the operation (the client's ``complete``)."""
        await self.communicator.send_json_to({"type": "complete", "id": operation_id})

    async def assert_no_message(self, timeout: float = 0.2) -> None:
        """Fail if a message is pending or arrives within ``timeout`` seconds."""
        await self._assert_nothing(timeout)

    async def _read(self) -> dict[str, Any]:
        while True:
            try:
                output = await self.communicator.receive_output(timeout=self.timeout)
            except asyncio.TimeoutError:
                raise AssertionError(f"no message arrived within {self.timeout} s") from None
            if output["type"] == "websocket.close":
                raise AssertionError(f"the server closed the socket ({output.get('code')})")
            message = json.loads(output["text"])
            if not isinstance(message, dict):
                raise AssertionError(f"message is not a JSON object: {output['text']!r}")
            if message.get("type") == "ping":
                await self.communicator.send_json_to({"type": "pong"})
                continue
            return message
