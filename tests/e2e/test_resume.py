"""Resumable streams across processes: a client that leaves one server and comes back on the
other with its last cursor gets exactly what it missed, then the live events, on both protocols
and both Redis layers (``tests/run_services.py`` runs this module once per layer); fifty
clients resuming while a writer saves without pause lose and duplicate nothing at the seam."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

import httpx
import pytest

from strawberry_model_subs.cursors import parse_cursor

from .clients import StreamSocket, TypedSocket, stream_socket, typed_socket
from .cluster import Cluster
from .harness import RESUME, create_product, update_product

pytestmark = [pytest.mark.e2e, pytest.mark.services]


def stream_name(frame: dict[str, Any]) -> str:
    return str(frame["payload"]["data"]["name"])


def typed_name(message: dict[str, Any]) -> str:
    return str(message["payload"]["data"]["productChanged"]["data"]["name"])


async def stream_names(sock: StreamSocket, count: int, what: str) -> list[dict[str, Any]]:
    return [await sock.next_frame(f"{what} {i + 1} of {count}") for i in range(count)]


async def typed_frames(sock: TypedSocket, count: int, what: str) -> list[dict[str, Any]]:
    frames = [await sock.next_frame(f"{what} {i + 1} of {count}") for i in range(count)]
    for frame in frames:
        assert frame["type"] == "next", f"{sock.label}: {frame}"
        assert "errors" not in frame["payload"], f"{sock.label}: {frame}"
    return frames


async def test_clients_that_leave_one_server_resume_on_the_other_with_exactly_what_they_missed(
    cluster: Cluster, http_clients: tuple[httpx.AsyncClient, ...]
) -> None:
    http_a, http_b = http_clients
    pk = await create_product(http_a, "resumed")
    async with (
        stream_socket(cluster.a.ws_url, "server A stream socket") as stream,
        typed_socket(cluster.a.ws_url, "server A graphql-transport-ws") as typed,
    ):
        await stream.subscribe(http_a, action="UPDATE", pk=pk, data=["NAME"], after="")
        await typed.start("1", RESUME, {"id": pk, "after": ""})
        await update_product(http_b, pk, "seen")
        (seen_frame,) = await stream_names(stream, 1, "the update seen")
        (seen_message,) = await typed_frames(typed, 1, "the update seen")
    assert stream_name(seen_frame) == typed_name(seen_message) == "seen"
    missed = [f"missed {i}" for i in range(5)]
    for name in missed:
        await update_product(http_a, pk, name)
    async with (
        stream_socket(cluster.b.ws_url, "server B stream socket") as stream,
        typed_socket(cluster.b.ws_url, "server B graphql-transport-ws") as typed,
    ):
        await stream.subscribe(
            http_b, action="UPDATE", pk=pk, data=["NAME"], after=seen_frame["cursor"]
        )
        cursor = seen_message["payload"]["data"]["productChanged"]["cursor"]
        await typed.start("1", RESUME, {"id": pk, "after": cursor})
        replayed_frames = await stream_names(stream, 5, "the missed update")
        replayed_messages = await typed_frames(typed, 5, "the missed update")
        await update_product(http_a, pk, "live")
        (live_frame,) = await stream_names(stream, 1, "the live update")
        (live_message,) = await typed_frames(typed, 1, "the live update")
    assert [stream_name(f) for f in replayed_frames] == missed
    assert [typed_name(m) for m in replayed_messages] == missed
    assert stream_name(live_frame) == typed_name(live_message) == "live"
    cursors = [f["cursor"] for f in [seen_frame, *replayed_frames, live_frame]]
    offsets = [parse_cursor(c).offset for c in cursors]
    assert offsets == sorted(offsets)
    assert len(set(offsets)) == len(offsets)
    # The same events have the same cursors on both protocols and both servers.
    assert cursors[1:] == [
        m["payload"]["data"]["productChanged"]["cursor"] for m in [*replayed_messages, live_message]
    ]


async def test_fifty_clients_resuming_while_a_writer_saves_lose_and_duplicate_nothing(
    cluster: Cluster, http_clients: tuple[httpx.AsyncClient, ...]
) -> None:
    http_a, http_b = http_clients
    pk = await create_product(http_a, "busy")
    async with typed_socket(cluster.a.ws_url, "the cursor reader") as reader:
        await reader.start("1", RESUME, {"id": pk, "after": ""})
        await update_product(http_a, pk, "start")
        (start,) = await typed_frames(reader, 1, "the start")
    cursor = start["payload"]["data"]["productChanged"]["cursor"]
    written: list[str] = []
    #: The writer stops once it has written this many (set when every client has resumed).
    until: list[int] = []
    done = asyncio.Event()

    async def write() -> None:
        while not until or len(written) < until[0]:
            name = f"write {len(written)}"
            await update_product(http_a, pk, name)
            written.append(name)
        done.set()

    writer = asyncio.create_task(write())
    async with contextlib.AsyncExitStack() as stack:
        clients: list[StreamSocket | TypedSocket] = []
        for i in range(50):
            server, http = (cluster.a, http_a) if i % 2 else (cluster.b, http_b)
            if i % 4 < 2:
                sock: StreamSocket | TypedSocket = await stack.enter_async_context(
                    stream_socket(server.ws_url, f"{server.name} stream socket {i}")
                )
                assert isinstance(sock, StreamSocket)
                await sock.subscribe(http, action="UPDATE", pk=pk, data=["NAME"], after=cursor)
            else:
                sock = await stack.enter_async_context(
                    typed_socket(server.ws_url, f"{server.name} graphql-transport-ws {i}")
                )
                assert isinstance(sock, TypedSocket)
                await sock.start("1", RESUME, {"id": pk, "after": cursor})
            clients.append(sock)
        until.append(len(written) + 10)  # saves go on past the last resume
        await asyncio.wait_for(done.wait(), 60)
        await writer
        await update_product(http_a, pk, "the end")
        written.append("the end")
        for sock in clients:
            index = await sock.wait_for(
                lambda m: "the end" in str(m), "the last update", timeout=30.0
            )
            got = [
                stream_name(m) if isinstance(sock, StreamSocket) else typed_name(m)
                for m in sock.messages[: index + 1]
                if "payload" in m and m.get("type") in (None, "next")
            ]
            assert got == written, f"{sock.label} received {got}, not {written}"
