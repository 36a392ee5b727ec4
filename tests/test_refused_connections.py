"""A refused connection ignores whatever the client sends after it: one close, nothing else."""

from __future__ import annotations

import asyncio

import pytest
from channels.testing import WebsocketCommunicator

from tests.testapp.asgi import application

pytestmark = pytest.mark.django_db(transaction=True)

START = {"graphql-ws": "start", "graphql-transport-ws": "subscribe"}


@pytest.mark.parametrize("protocol", ["graphql-ws", "graphql-transport-ws"])
async def test_operations_sent_before_the_refusal_is_read_get_nothing(protocol: str) -> None:
    ws = WebsocketCommunicator(application, "/ws", subprotocols=[protocol])
    connected, _ = await ws.connect()
    assert connected
    await ws.send_json_to({"type": "connection_init", "payload": {"token": "not-a-token"}})
    for op_id, query in (("1", "subscription { productChanged { action } }"), ("2", "{ hello }")):
        await ws.send_json_to({"type": START[protocol], "id": op_id, "payload": {"query": query}})
    sent = []
    while True:
        try:
            sent.append(await asyncio.wait_for(ws.output_queue.get(), 1.0))
        except asyncio.TimeoutError:
            break
    closes = [m for m in sent if m["type"] == "websocket.close"]
    assert len(closes) == 1, sent
    assert sent[-1]["type"] == "websocket.close", sent
    await ws.disconnect()
