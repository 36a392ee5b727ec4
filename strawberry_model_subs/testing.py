"""Test helpers for projects that use strawberry-model-subs.

:class:`StreamClient` drives the stream protocol against your ASGI application in-process, through
Channels' ``WebsocketCommunicator``. Save models with ``database_sync_to_async`` (or through your
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


class StreamClient:
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
        await self.communicator.disconnect()

    async def send_text(self, text: str) -> None:
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
        return await self.subscribe(stream, action, id=id, operation="UNSUBSCRIBE")

    async def receive_event(self) -> dict[str, Any]:
        """The next ``{"stream", "payload"}`` frame."""
        return await self.receive_matching(lambda f: "stream" in f and "payload" in f)

    async def receive_response(self) -> dict[str, Any]:
        """The next GraphQL response frame."""
        return await self.receive_matching(lambda f: "data" in f or "errors" in f)

    async def receive_matching(self, predicate: Callable[[dict[str, Any]], bool]) -> dict[str, Any]:
        for index, frame in enumerate(self._pending):
            if predicate(frame):
                del self._pending[index]
                return frame
        while True:
            frame = await self._read()
            if predicate(frame):
                return frame
            self._pending.append(frame)

    async def assert_no_frame(self, timeout: float = 0.2) -> None:
        """Fail if a frame is pending or arrives within ``timeout`` seconds."""
        if self._pending:
            raise AssertionError(f"unexpected frame {self._pending[0]!r}")
        if not await self.communicator.receive_nothing(timeout=timeout):
            raise AssertionError(f"unexpected frame {await self._read()!r}")

    async def _read(self) -> dict[str, Any]:
        try:
            text = await self.communicator.receive_from(timeout=self.timeout)
        except asyncio.TimeoutError:
            raise AssertionError(f"no frame arrived within {self.timeout} s") from None
        frame = json.loads(text)
        if not isinstance(frame, dict):
            raise AssertionError(f"frame is not a JSON object: {text!r}")
        return frame
