"""Resumable streams through restarts: a server killed (SIGKILL) or stopped (SIGTERM) while a
writer saves through the other one; its clients come back, resume from their last cursors and
miss nothing; a Redis that restarts without its data starts a new history, and a cursor from
before it is CURSOR_EXPIRED on both protocols. A cluster of its own per test (servers and Redis
restart)."""

from __future__ import annotations

import asyncio
import contextlib
import signal
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from .clients import StreamSocket, TypedSocket, stream_socket, typed_socket
from .cluster import Cluster, http_clients_of, running_cluster
from .harness import RESUME, control, create_product, update_product

pytestmark = [pytest.mark.e2e, pytest.mark.services]


@pytest.fixture
def fresh_cluster(scale_out_db: None, tmp_path: Path) -> Iterator[Cluster]:
    # Servers whose Redis restarts log the outage: their logs are not checked.
    with running_cluster(tmp_path, check_logs=False) as cluster:
        yield cluster


@pytest.fixture
async def http_pair(fresh_cluster: Cluster) -> AsyncIterator[tuple[httpx.AsyncClient, ...]]:
    async with http_clients_of(fresh_cluster) as clients:
        yield clients


def name_and_cursor(message: dict[str, Any]) -> tuple[str, str]:
    if "stream" in message:
        return message["payload"]["data"]["name"], message["cursor"]
    assert message.get("type") == "next", message
    change = message["payload"]["data"]["productChanged"]
    return change["data"]["name"], change["cursor"]


def received(sock: StreamSocket | TypedSocket) -> list[tuple[str, str]]:
    return [
        name_and_cursor(m)
        for m in sock.messages
        if ("stream" in m and "payload" in m) or m.get("type") == "next"
    ]


async def subscribe(
    sock: StreamSocket | TypedSocket, http: httpx.AsyncClient, pk: int, after: str
) -> None:
    if isinstance(sock, StreamSocket):
        await sock.subscribe(http, action="UPDATE", pk=pk, data=["NAME"], after=after)
    else:
        await sock.start("1", RESUME, {"id": pk, "after": after})


@pytest.mark.parametrize("how", [signal.SIGKILL, signal.SIGTERM], ids=["SIGKILL", "SIGTERM"])
async def test_clients_of_a_server_that_dies_resume_and_miss_nothing(
    fresh_cluster: Cluster, http_pair: tuple[httpx.AsyncClient, ...], how: signal.Signals
) -> None:
    cluster = fresh_cluster
    http_a, http_b = http_pair
    pk = await create_product(http_b, "through a restart")
    written: list[str] = []
    last: dict[str, str] = {}
    async with contextlib.AsyncExitStack() as stack:
        stream = await stack.enter_async_context(stream_socket(cluster.a.ws_url, "A stream"))
        typed = await stack.enter_async_context(typed_socket(cluster.a.ws_url, "A typed"))
        for sock in (stream, typed):
            await subscribe(sock, http_a, pk, "")
        for i in range(3):
            written.append(f"before {i}")
            await update_product(http_b, pk, written[-1])
        for sock in (stream, typed):
            await sock.wait_for(lambda m: "before 2" in str(m), "the last update before")
            last[sock.label] = received(sock)[-1][1]
        assert cluster.a.process is not None
        cluster.a.process.send_signal(how)
        for i in range(5):  # saved while server A is down or coming back
            written.append(f"meanwhile {i}")
            await update_product(http_b, pk, written[-1])
        await asyncio.to_thread(cluster.a.process.wait, 30)
    cluster.a.stop()
    cluster.a.start()
    written.append("after")
    async with contextlib.AsyncExitStack() as stack:
        again: dict[str, StreamSocket | TypedSocket] = {
            "A stream": await stack.enter_async_context(stream_socket(cluster.a.ws_url)),
            "A typed": await stack.enter_async_context(typed_socket(cluster.a.ws_url)),
        }
        for label, sock in again.items():
            await subscribe(sock, http_a, pk, last[label])
        await update_product(http_b, pk, "after")
        for label, sock in again.items():
            await sock.wait_for(lambda m: '"after"' in str(m).replace("'", '"'), "the update after")
            names = [name for name, _ in received(sock)]
            assert names == written[3:], f"{label} resumed with {names}, not {written[3:]}"


async def test_a_cursor_from_before_redis_lost_its_data_is_expired(
    fresh_cluster: Cluster, http_pair: tuple[httpx.AsyncClient, ...]
) -> None:
    cluster = fresh_cluster
    http_a, _ = http_pair
    pk = await create_product(http_a, "before the restart")
    async with typed_socket(cluster.a.ws_url, "typed") as typed:
        await typed.start("1", RESUME, {"id": pk, "after": ""})
        await update_product(http_a, pk, "seen")
        await typed.wait_for(lambda m: m.get("type") == "next", "the update")
        _, cursor = received(typed)[-1]
    cluster.redis.stop()
    cluster.redis.start()  # same port, empty
    # The stream socket: ok false with the code, once the layer answers again.
    async with stream_socket(cluster.b.ws_url, "stream") as stream:
        answer = await control(
            http_a, stream.channel_id, action="UPDATE", pk=pk, data=["NAME"], after=cursor
        )
    assert answer.get("data"), (answer, cluster.a.log_text()[-3000:])
    result = answer["data"]["productSubscription"]
    assert result["ok"] is False
    assert result["error"].startswith("CURSOR_EXPIRED: ")
    async with typed_socket(cluster.b.ws_url, "typed") as typed:
        await typed.start("1", RESUME, {"id": pk, "after": cursor})
        index = await typed.wait_for(lambda m: m.get("type") == "error", "the error")
    (error,) = typed.messages[index]["payload"]
    assert error["extensions"] == {"code": "CURSOR_EXPIRED"}
