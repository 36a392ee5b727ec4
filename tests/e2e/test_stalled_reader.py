"""A reader that stops reading, on a real server: its queue fills, the library closes it, and
as it takes not even the close frame the connection is aborted; the other subscribers get
every event meanwhile.

The server runs on a host of its own (a network namespace, ``netns``) whose TCP send buffers
are 16 KB at most, so that the kernel holds little of what the stalled socket does not read
(on this machine's own settings it holds up to 4 MB per socket before the library sees
anything). Skipped without root or ``ip``, except under CI (``CI`` set), where that fails.
"""

from __future__ import annotations

import asyncio
import json
import os
import socket
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from websockets.asyncio.client import ClientConnection, connect

from tests.conftest import wait_until
from tests.e2e import netns
from tests.e2e.harness import LiveServer, control_request, create_product

pytestmark = pytest.mark.e2e

#: A small queue, so that the test needs a few hundred events, not thousands.
QUEUE = 5
#: The socket's TCP state once the server has reset it (TCP_INFO's first byte: 1 established).
ESTABLISHED = 1


@pytest.fixture
def server(tmp_path: Path) -> Iterator[LiveServer]:
    why = netns.unavailable()
    if why is not None:
        if os.environ.get("CI"):
            pytest.fail(f"the stalled-reader test cannot run under CI: {why}")
        pytest.skip(why)
    small_buffers = {"net.ipv4.tcp_wmem": "4096 8192 16384", "net.ipv4.tcp_rmem": "4096 8192 16384"}
    with netns.host(small_buffers) as namespace:
        live = LiveServer(
            tmp_path,
            host=namespace.address,
            prefix=namespace.prefix,
            settings={"SEND_QUEUE_SIZE": QUEUE},
        )
        live.migrate()
        live.start()
        try:
            yield live
        finally:
            live.stop()


async def subscribe(ws: ClientConnection) -> None:
    hello = json.loads(await ws.recv())
    await ws.send(json.dumps(control_request(hello["channel_id"], action="CREATE")))
    ack = json.loads(await ws.recv())  # the stream protocol's ack, then the operation's answer
    assert ack["ok"] is True, ack
    answer = json.loads(await ws.recv())
    assert answer["data"]["productSubscription"]["ok"] is True, answer


def tcp_state(sock: socket.socket) -> int:
    return sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 8)[0]


async def test_a_reader_that_stops_reading_is_closed_and_aborted_and_the_others_get_everything(
    server: LiveServer,
) -> None:
    host, port = server.host, server.port
    raw = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    raw.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # before connecting: its window
    raw.connect((host, port))
    # Uncompressed: permessage-deflate makes these frames a few bytes each.
    stalled = await connect(server.ws_url, sock=raw, compression=None)
    healthy = await connect(server.ws_url, compression=None)
    await subscribe(stalled)
    await subscribe(healthy)
    stalled.transport.pause_reading()  # from here the kernel's buffers fill, then the queue

    received: list[str] = []

    async def read() -> None:
        async for frame in healthy:
            received.append(json.loads(frame)["payload"]["data"]["name"])

    reader = asyncio.create_task(read())
    created: list[str] = []
    async with httpx.AsyncClient(base_url=server.http_url, timeout=30) as http:
        for i in range(3000):
            name = f"p{i}"
            await create_product(http, name)
            created.append(name)
            if "closing a socket with" in server.log_text():
                break

        else:
            pytest.fail(f"the stalled socket was not closed after {len(created)} events")
        await wait_until(
            lambda: tcp_state(raw) != ESTABLISHED,
            "the server to end the stalled connection it closed",
            timeout=20,
        )
        # The server goes on: one more event reaches the healthy subscriber.
        await create_product(http, "after")
        created.append("after")
    await wait_until(lambda: len(received) >= len(created), "the healthy socket's frames")
    reader.cancel()
    assert received == created
    log = server.log_text()
    assert f"closing a socket with {QUEUE} unsent frames (SEND_QUEUE_SIZE)" in log
    assert "a socket took not even its close frame in 5 s: aborted" in log
    await healthy.close()
    stalled.transport.abort()
